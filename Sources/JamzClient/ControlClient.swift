import Foundation
import Glibc
import JamzCore
import JamzPlatform

/// A blocking client of the daemon's control socket (JSON lines), for the CLI, the benchmark
/// and the process tests.
public struct ControlClient: Sendable {
    public let path: String
    /// Longest silence (s) from jamzd before the request is given up (progress lines count as an
    /// answer, so a long import is fine): a stuck daemon must not hang the CLI or a test.
    public let silence: Double

    public init(path: String, silence: Double = 120) { self.path = path; self.silence = silence }

    public struct Failure: Error, CustomStringConvertible { public let description: String }

    /// Sends one command; calls `onProgress` for each progress line; returns the reply, its
    /// `data` read as `R`.
    public func send<R: Decodable>(_ cmd: ControlCommand, expecting: R.Type = JSONValue.self,
                                   onProgress: (ImportProgressReport) -> Void = { _ in }) throws -> ControlReply<R> {
        try send(cmd.request, expecting: R.self, onProgress: onProgress)
    }

    /// The same for a request as it goes on the wire (which may name no command: tests).
    public func send<R: Decodable>(_ req: ControlRequest, expecting: R.Type = JSONValue.self,
                                   onProgress: (ImportProgressReport) -> Void = { _ in }) throws -> ControlReply<R> {
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw Failure(description: "socket: \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        let wait = silence.isFinite ? min(max(silence, 0.001), 86_400) : 86_400
        var tv = timeval(tv_sec: Int(wait), tv_usec: Int((wait - wait.rounded(.down)) * 1e6))
        _ = setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        guard let address = UnixAddress(path) else { throw Failure(description: "not a usable socket path: \(path)") }
        let rc = address.withSockaddr { sa, len in retryingEINTR { connect(fd, sa, len) } }
        guard rc == 0 else {
            throw Failure(description: "cannot reach jamzd at \(path): \(String(cString: strerror(errno))). Is it running? (systemctl status jamzd, or --socket PATH / $JAMZ_SOCKET)")
        }
        var out = try JSONEncoder().encode(req)
        out.append(UInt8(ascii: "\n"))
        try out.withUnsafeBytes { raw in
            var off = 0
            while off < raw.count {
                let n = retryingEINTR { write(fd, raw.baseAddress! + off, raw.count - off) }
                if n < 0 { throw Failure(description: "write: \(errnoText())") }
                off += n
            }
        }
        var pending = [UInt8]()
        var buf = [UInt8](repeating: 0, count: 65536)
        while true {
            while let nl = pending.firstIndex(of: UInt8(ascii: "\n")) {
                let line = Data(pending[..<nl])
                pending.removeSubrange(...nl)
                if let p = try JSONDecoder().decode(Progress.self, from: line).progress { onProgress(p); continue }
                return try JSONDecoder().decode(ControlReply<R>.self, from: line)
            }
            let n = retryingEINTR { read(fd, &buf, buf.count) }
            if n < 0 {
                if errno == EAGAIN || errno == EWOULDBLOCK {
                    throw Failure(description: "jamzd did not answer \(req.cmd) within \(String(format: "%g", wait)) s (is it stuck? journalctl -u jamzd)")
                }
                throw Failure(description: "read: \(errnoText())")
            }
            if n == 0 { throw Failure(description: "jamzd closed the connection without answering") }
            pending.append(contentsOf: buf[0..<n])
        }
    }
}

/// A line that may be a progress line.
private struct Progress: Decodable {
    var progress: ImportProgressReport?
}

extension ControlClient {
    /// Sends a command and returns the reply; throws when the daemon answers ok=false.
    @discardableResult
    public func call<R: Decodable>(_ cmd: ControlCommand, expecting: R.Type = JSONValue.self) throws -> ControlReply<R> {
        let r = try send(cmd, expecting: R.self)
        guard r.ok else { throw Failure(description: "\(cmd.name.rawValue): \(r.message)") }
        return r
    }

    /// The same from the words of a request (tests, the benchmark): `call("group", "join", code)`.
    @discardableResult
    public func call(_ cmd: String, _ args: String...) throws -> ControlReply<JSONValue> {
        do { return try call(try ControlCommand(ControlRequest(cmd: cmd, args: args))) } catch let e as ControlCommand.ParseError {
            throw Failure(description: "\(cmd): \(e)")
        }
    }

    /// `status --json` decoded.
    public func status() throws -> StatusReport {
        guard let s = try call(.status, expecting: StatusReport.self).data else { throw Failure(description: "status: no data") }
        return s
    }
}
