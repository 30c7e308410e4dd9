import CBluetooth
import Glibc

/// LE L2CAP connection-oriented channels (LE CoC) between two cars' controllers: sequenced
/// packets, one send is one sealed envelope, over the controllers' own LE link (docs/ble.md).
/// Sockets are non-blocking; the BLE link's thread polls them. Security level low (no pairing:
/// the envelopes are sealed with the convoy key like on every other link).
enum BLEChannel {
    /// The convoy's PSM, in the LE dynamic range (0x0080–0x00FF).
    static let psm: UInt16 = 0x0081
    /// The largest envelope either side takes (BT_RCVMTU; set after bind, ≤ 16384 per docs/ble.md).
    static let mtu: UInt16 = 4096
    /// LE public address (btvirt's, and a controller's identity address).
    static let publicAddress: UInt8 = 1

    struct Failure: Error, CustomStringConvertible {
        let description: String
        init(_ what: String) { description = "\(what): \(String(cString: strerror(errno)))" }
    }

    static func address(_ a: Mgmt.Address, psm: UInt16, type: UInt8) -> sockaddr_l2 {
        var s = sockaddr_l2()
        s.l2_family = sa_family_t(AF_BLUETOOTH)
        s.l2_psm = psm.littleEndian
        let b = a.bytes
        s.l2_bdaddr.b = (b[0], b[1], b[2], b[3], b[4], b[5])
        s.l2_cid = 0
        s.l2_bdaddr_type = type
        return s
    }

    static func peer(of s: sockaddr_l2) -> Mgmt.Address {
        let b = s.l2_bdaddr.b
        return Mgmt.Address(bytes: [b.0, b.1, b.2, b.3, b.4, b.5])
    }

    /// A socket bound to this controller (by its address), with our receive MTU.
    private static func bound(to me: Mgmt.Address, psm: UInt16) throws -> Int32 {
        let fd = socket(AF_BLUETOOTH, Int32(SOCK_SEQPACKET.rawValue) | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue), BTPROTO_L2CAP)
        guard fd >= 0 else { throw Failure("L2CAP socket") }
        var a = address(me, psm: psm, type: publicAddress)
        let rc = withUnsafePointer(to: &a) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_l2>.size)) } }
        guard rc == 0 else { let f = Failure("L2CAP bind to \(me) psm \(psm)"); Glibc.close(fd); throw f }
        var mtu = mtu
        guard setsockopt(fd, SOL_BLUETOOTH, BT_RCVMTU, &mtu, socklen_t(MemoryLayout<UInt16>.size)) == 0 else {
            // Left at the kernel's 672 bytes, a timeline or an op batch would not fit: refused.
            let f = Failure("L2CAP receive MTU \(mtu)"); Glibc.close(fd); throw f
        }
        return fd
    }

    /// The channel's MTUs (out: the largest envelope the other car takes; in: ours), 0 if unknown.
    static func mtus(_ fd: Int32) -> (out: UInt16, in: UInt16) {
        func get(_ opt: Int32) -> UInt16 {
            var v: UInt16 = 0
            var len = socklen_t(MemoryLayout<UInt16>.size)
            return getsockopt(fd, SOL_BLUETOOTH, opt, &v, &len) == 0 ? v : 0
        }
        return (get(BT_SNDMTU), get(BT_RCVMTU))
    }

    static func listen(on me: Mgmt.Address) throws -> Int32 {
        let fd = try bound(to: me, psm: psm)
        guard Glibc.listen(fd, 8) == 0 else { let f = Failure("L2CAP listen"); Glibc.close(fd); throw f }
        return fd
    }

    /// A connect under way (EINPROGRESS): the socket becomes writable when it is done (SO_ERROR).
    static func connect(from me: Mgmt.Address, to peer: Mgmt.Address, type: UInt8) throws -> Int32 {
        let fd = try bound(to: me, psm: 0)
        var a = address(peer, psm: psm, type: type)
        let rc = withUnsafePointer(to: &a) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_l2>.size)) } }
        guard rc == 0 || errno == EINPROGRESS else { let f = Failure("L2CAP connect to \(peer)"); Glibc.close(fd); throw f }
        return fd
    }

    static func connectResult(_ fd: Int32) -> Int32 {
        var err: Int32 = 0
        var len = socklen_t(MemoryLayout<Int32>.size)
        guard getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) == 0 else { return errno }
        return err
    }

    static func accept(_ listener: Int32) -> (fd: Int32, peer: Mgmt.Address)? {
        var a = sockaddr_l2()
        var len = socklen_t(MemoryLayout<sockaddr_l2>.size)
        let fd = withUnsafeMutablePointer(to: &a) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.accept(listener, $0, &len) }
        }
        guard fd >= 0 else { return nil }
        _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
        _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
        return (fd, peer(of: a))
    }
}
