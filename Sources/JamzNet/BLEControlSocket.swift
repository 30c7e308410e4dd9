import CBluetooth
import Glibc
import JamzPlatform
import JamzCore

/// The kernel's Bluetooth management interface as a socket: a raw HCI socket bound to the
/// control channel (`HCI_CHANNEL_CONTROL`, no controller), which shares every controller with
/// bluetoothd instead of taking one away (`HCI_CHANNEL_USER` would). Commands are datagrams of
/// `Mgmt.Command`; every event of every controller comes back, to be decoded by `Mgmt.decode`.
/// Changing a controller needs CAP_NET_ADMIN (jamzd.service runs as root). Blocking: `receive`
/// belongs on the BLE link's own thread, never on the Swift concurrency pool.
public final class BLEControlSocket: @unchecked Sendable {
    // @unchecked: the descriptor is written once (init) and closed once (close); send and
    // receive are single syscalls the kernel serialises.
    public let fd: Int32

    public enum OpenError: Error, Sendable, Equatable, CustomStringConvertible {
        /// This kernel has no Bluetooth (or not in this network namespace: Bluetooth sockets
        /// exist only in the initial one).
        case noBluetooth(String)
        case failed(String)
        public var description: String {
            switch self {
            case .noBluetooth(let why): "no Bluetooth in this kernel or network namespace (\(why))"
            case .failed(let why): "the Bluetooth management socket cannot be opened: \(why)"
            }
        }
    }

    public init() throws(OpenError) {
        let s = socket(AF_BLUETOOTH, Int32(SOCK_RAW.rawValue) | Int32(SOCK_CLOEXEC.rawValue), BTPROTO_HCI)
        guard s >= 0 else {
            let e = errno
            let why = String(cString: strerror(e))
            throw e == EAFNOSUPPORT || e == EPROTONOSUPPORT ? .noBluetooth(why) : .failed("socket: \(why)")
        }
        var a = sockaddr_hci()
        a.hci_family = sa_family_t(AF_BLUETOOTH)
        a.hci_dev = UInt16(HCI_DEV_NONE)
        a.hci_channel = UInt16(HCI_CHANNEL_CONTROL)
        let rc = withUnsafePointer(to: &a) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(s, $0, socklen_t(MemoryLayout<sockaddr_hci>.size)) }
        }
        guard rc == 0 else {
            let why = String(cString: strerror(errno))
            Glibc.close(s)
            throw .failed("bind to the control channel: \(why)")
        }
        fd = s
    }

    /// Sends one command; false when the kernel refused the datagram (the controller's answer,
    /// success or not, comes later as an event).
    @discardableResult
    public func send(_ c: Mgmt.Command) -> Bool {
        let b = c.bytes
        return b.withUnsafeBytes { p in retryingEINTR { Glibc.send(fd, p.baseAddress, p.count, 0) } } == b.count
    }

    /// The next event's bytes if one is waiting (never blocks).
    public func read() -> [UInt8]? {
        var buf = [UInt8](repeating: 0, count: 1024)
        let n = buf.withUnsafeMutableBytes { p in retryingEINTR { recv(fd, p.baseAddress, p.count, Int32(MSG_DONTWAIT)) } }
        guard n > 0 else { return nil }
        return Array(buf[0..<n])
    }

    public func close() { Glibc.close(fd) }
}
