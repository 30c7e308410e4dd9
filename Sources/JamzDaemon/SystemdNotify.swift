import Foundation
import Glibc

/// sd_notify(3) without libsystemd: one datagram to `$NOTIFY_SOCKET` (a path, or an abstract
/// socket when it starts with '@'). Does nothing when the variable is unset.
enum SystemdNotify {
    @discardableResult
    static func send(_ state: String) -> Bool {
        guard let raw = getenv("NOTIFY_SOCKET") else { return false }
        var path = Array(String(cString: raw).utf8)
        guard !path.isEmpty else { return false }
        if path[0] == UInt8(ascii: "@") { path[0] = 0 }
        let fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var addr = sockaddr_un()
        addr.sun_family = sa_family_t(AF_UNIX)
        let max = MemoryLayout.size(ofValue: addr.sun_path)
        guard path.count < max else { return false }
        withUnsafeMutableBytes(of: &addr.sun_path) { dst in
            for (i, b) in path.enumerated() { dst[i] = b }
        }
        let len = socklen_t(MemoryLayout<sa_family_t>.size + path.count)
        let msg = Array(state.utf8)
        let n = withUnsafePointer(to: &addr) { p in
            p.withMemoryRebound(to: sockaddr.self, capacity: 1) { sa in
                sendto(fd, msg, msg.count, Int32(MSG_NOSIGNAL), sa, len)
            }
        }
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
