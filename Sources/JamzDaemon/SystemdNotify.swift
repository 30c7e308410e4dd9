import Foundation
import Glibc
import JamzPlatform

/// sd_notify(3) without libsystemd: one datagram to `$NOTIFY_SOCKET` (a path, or an abstract
/// socket when it starts with '@'). Does nothing when the variable is unset.
enum SystemdNotify {
    @discardableResult
    static func send(_ state: String) -> Bool {
        guard let raw = getenv("NOTIFY_SOCKET") else { return false }
        guard let address = UnixAddress(String(cString: raw)) else { return false }
        let fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        let msg = Array(state.utf8)
        let n = address.withSockaddr { sa, len in retryingEINTR { sendto(fd, msg, msg.count, Int32(MSG_NOSIGNAL), sa, len) } }
        return n == msg.count
    }

    /// How often to send `WATCHDOG=1`: half of `$WATCHDOG_USEC` (sd_watchdog_enabled(3)), or nil
    /// when systemd set no watchdog for this process (`$WATCHDOG_PID`, when set, must be ours).
    static func watchdogInterval(environment env: [String: String] = ProcessInfo.processInfo.environment) -> Duration? {
        guard let raw = env["WATCHDOG_USEC"], let usec = UInt64(raw), usec > 0 else { return nil }
        if let pid = env["WATCHDOG_PID"], let p = Int32(pid), p != getpid() { return nil }
        return .microseconds(Int64(min(usec / 2, UInt64(Int64.max))))
    }
}
