import Glibc

/// An AF_UNIX socket address: a filesystem path, or an abstract name when it starts with '@'
/// (as systemd writes `$NOTIFY_SOCKET`). The one place a `sockaddr_un` is filled in.
public struct UnixAddress: Sendable {
    private let path: [UInt8]

    /// Nil for an empty path or one too long for `sun_path` (107 bytes and a NUL).
    public init?(_ path: String) {
        var bytes = Array(path.utf8)
        guard !bytes.isEmpty, bytes.count < MemoryLayout.size(ofValue: sockaddr_un().sun_path) else { return nil }
        if bytes[0] == UInt8(ascii: "@") { bytes[0] = 0 }
        self.path = bytes
    }

    /// Calls `body` with the address and its length (family and name only, so an abstract
    /// name is not padded with NULs that would become part of it).
    public func withSockaddr<R>(_ body: (UnsafePointer<sockaddr>, socklen_t) throws -> R) rethrows -> R {
        var addr = sockaddr_un()
        addr.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &addr.sun_path) { dst in for (i, b) in path.enumerated() { dst[i] = b } }
        let len = socklen_t(MemoryLayout<sa_family_t>.size + path.count + (path[0] == 0 ? 0 : 1))
        return try withUnsafePointer(to: &addr) { p in
            try p.withMemoryRebound(to: sockaddr.self, capacity: 1) { try body($0, len) }
        }
    }
}
