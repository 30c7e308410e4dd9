import Foundation
import Glibc

/// A child process in a process group of its own (killed as a group, so nothing it started is
/// orphaned), with a pipe to its stdin and line-by-line reading of its stdout.
public final class GroupProcess: @unchecked Sendable {
    // @unchecked: used from one test at a time; the pipe fds are only touched by the caller.
    public let pid: pid_t
    private let stdinFD: Int32
    private let stdoutFD: Int32
    private var buffer = [UInt8]()
    private var exited = false
    public private(set) var lines: [String] = []

    public init(_ argv: [String], log: String) throws {
        var inPipe: [Int32] = [0, 0], outPipe: [Int32] = [0, 0]
        guard pipe(&inPipe) == 0, pipe(&outPipe) == 0 else { throw RigError("pipe: \(String(cString: strerror(errno)))") }
        var fa = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&fa)
        defer { posix_spawn_file_actions_destroy(&fa) }
        posix_spawn_file_actions_adddup2(&fa, inPipe[0], 0)
        posix_spawn_file_actions_adddup2(&fa, outPipe[1], 1)
        posix_spawn_file_actions_addopen(&fa, 2, log, O_WRONLY | O_CREAT | O_APPEND, 0o644)
        for fd in [inPipe[0], inPipe[1], outPipe[0], outPipe[1]] { posix_spawn_file_actions_addclose(&fa, fd) }
        var attr = posix_spawnattr_t()
        posix_spawnattr_init(&attr)
        defer { posix_spawnattr_destroy(&attr) }
        posix_spawnattr_setflags(&attr, Int16(POSIX_SPAWN_SETPGROUP))
        posix_spawnattr_setpgroup(&attr, 0)   // a new group, led by the child
        var pid: pid_t = 0
        let cargs = argv.map { strdup($0) } + [nil]
        defer { cargs.forEach { free($0) } }
        let rc = posix_spawnp(&pid, argv[0], &fa, &attr, cargs, environ)
        close(inPipe[0]); close(outPipe[1])
        guard rc == 0 else {
            close(inPipe[1]); close(outPipe[0])
            throw RigError("cannot start \(argv[0]): \(String(cString: strerror(rc)))")
        }
        self.pid = pid
        stdinFD = inPipe[1]
        stdoutFD = outPipe[0]
        // Our ends must not leak into other children: the child sees end of input when we go.
        _ = fcntl(stdinFD, F_SETFD, FD_CLOEXEC)
        _ = fcntl(stdoutFD, F_SETFD, FD_CLOEXEC)
        _ = fcntl(stdoutFD, F_SETFL, fcntl(stdoutFD, F_GETFL) | O_NONBLOCK)
        signal(SIGPIPE, SIG_IGN)
    }

    public func send(_ line: String) {
        let b = Array((line + "\n").utf8)
        _ = b.withUnsafeBytes { write(stdinFD, $0.baseAddress, $0.count) }
    }

    /// Reads what the child printed so far into `lines`; waits up to `wait` seconds for more.
    @discardableResult
    public func pump(wait: Double = 0) -> Bool {
        var pfd = pollfd(fd: stdoutFD, events: Int16(POLLIN), revents: 0)
        guard poll(&pfd, 1, Int32(wait * 1000)) > 0 else { return false }
        var chunk = [UInt8](repeating: 0, count: 65536)
        var got = false
        while true {
            let n = read(stdoutFD, &chunk, chunk.count)
            if n <= 0 { break }
            got = true
            buffer += chunk[0..<n]
        }
        while let nl = buffer.firstIndex(of: 10) {
            lines.append(String(decoding: buffer[0..<nl], as: UTF8.self))
            buffer.removeSubrange(0...nl)
        }
        return got
    }

    /// Drops the lines read so far (a long-running child's log, once nobody waits for a line).
    public func forget() { lines.removeAll() }

    /// Waits (up to `timeout` s) until a printed line satisfies `match`; returns it.
    public func waitFor(_ what: String, timeout: Double = 30, from: Int = 0, _ match: (String) -> Bool) throws -> String {
        let deadline = Date().addingTimeInterval(timeout)
        var checked = from
        while true {
            while checked < lines.count {
                if match(lines[checked]) { return lines[checked] }
                checked += 1
            }
            guard Date() < deadline, isRunning else { throw RigError("\(what): not seen (last lines: \(lines.suffix(3)))") }
            pump(wait: 0.05)
        }
    }

    public var isRunning: Bool {
        guard !exited else { return false }
        var st: Int32 = 0
        if waitpid(pid, &st, WNOHANG) == pid { exited = true }
        return !exited
    }

    /// Kills the whole group and reaps the child.
    public func killGroup(_ sig: Int32 = SIGKILL) {
        _ = kill(-pid, sig)
        if !exited {
            var st: Int32 = 0
            while waitpid(pid, &st, 0) < 0 && errno == EINTR {}
            exited = true
        }
    }

    deinit {
        killGroup()
        close(stdinFD); close(stdoutFD)
    }
}

public struct RigError: Error, CustomStringConvertible {
    public let description: String
    public init(_ s: String) { description = s }
}

/// A real gpsd (`gpsd -N -n -S PORT tcp://127.0.0.1:NMEAPORT`) fed by `scripts/nmea-feed.py`
/// with a committed NMEA log. The feeder runs gpsd as its child and kills it whenever it ends
/// (even when the test process dies: its stdin closes), and the rig kills the feeder's whole
/// process group at the end, so no gpsd is ever orphaned. Deterministic: the feeder sends
/// nothing until `go()`, which the test calls once its client is connected.
public final class GPSDRig: @unchecked Sendable {
    public let gpsdPort: Int
    public let nmeaPort: Int
    public let feeder: GroupProcess
    public let logDir: String
    /// Epochs in the log.
    public let epochs: Int

    public static func nmea(_ name: String) -> String {
        Fixtures.repo.appendingPathComponent("Tests/Fixtures/nmea/\(name)").path
    }

    /// `pace`: seconds between epochs (1.0 is real time). `netns`: run the feeder and its gpsd in
    /// that network namespace (a separate host of the convoy tests), on its own loopback.
    public init(log name: String, pace: Double = 0.005, netns: String? = nil) throws {
        logDir = Fixtures.tempDir().path
        nmeaPort = try Self.freePort()
        gpsdPort = try Self.freePort(avoiding: nmeaPort)
        feeder = try GroupProcess((netns.map { ["ip", "netns", "exec", $0] } ?? []) + ["python3", Fixtures.repo.appendingPathComponent("scripts/nmea-feed.py").path,
                                   String(nmeaPort), Self.nmea(name), String(pace), String(gpsdPort)],
                                  log: logDir + "/feeder-and-gpsd.log")
        let first = try feeder.waitFor("feeder listening", timeout: 10) { $0.hasPrefix("listening") }
        epochs = Int(first.split(separator: " ")[1]) ?? 0
        _ = try feeder.waitFor("gpsd connecting to the feeder", timeout: 15) { $0 == "connected" }
    }

    /// Starts gpsd again and waits until it has connected to the feeder.
    public func startGPSD() throws {
        let mark = feeder.lines.count
        feeder.send("gpsd-start")
        _ = try feeder.waitFor("gpsd connecting to the feeder", timeout: 15, from: mark) { $0 == "connected" }
    }

    /// Kills gpsd (SIGKILL) and waits until the feeder saw its connection go.
    public func killGPSD() throws {
        let mark = feeder.lines.count
        feeder.send("gpsd-kill")
        _ = try feeder.waitFor("gpsd killed", timeout: 15, from: mark) { $0 == "gpsd killed" }
        _ = try feeder.waitFor("gpsd gone", timeout: 15, from: mark) { $0 == "disconnected" }
    }

    public func go() { feeder.send("go") }

    /// Pauses the feeder; returns how many epochs it has sent.
    public func pause() throws -> Int {
        let mark = feeder.lines.count
        feeder.send("pause")
        let l = try feeder.waitFor("feeder paused", from: mark) { $0.hasPrefix("paused at ") }
        return Int(l.dropFirst("paused at ".count)) ?? 0
    }

    /// Waits until the feeder has sent `n` epochs (all of them by default).
    public func waitSent(_ n: Int? = nil, timeout: Double = 120) throws {
        let target = n ?? epochs
        _ = try feeder.waitFor("epoch \(target) sent", timeout: timeout) { $0 == "epoch \(target)" }
    }

    public func stop() {
        feeder.send("quit")
        feeder.killGroup()
    }

    deinit { stop(); try? FileManager.default.removeItem(atPath: logDir) }

    public static func freePort(avoiding: Int = 0) throws -> Int {
        for _ in 0..<20 {
            let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            defer { close(fd) }
            var addr = sockaddr_in()
            addr.sin_family = sa_family_t(AF_INET)
            addr.sin_addr.s_addr = inet_addr("127.0.0.1")
            addr.sin_port = 0
            var len = socklen_t(MemoryLayout<sockaddr_in>.size)
            let ok = withUnsafeMutablePointer(to: &addr) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    bind(fd, $0, len) == 0 && getsockname(fd, $0, &len) == 0
                }
            }
            if ok {
                let port = Int(UInt16(bigEndian: addr.sin_port))
                if port != avoiding { return port }
            }
        }
        throw RigError("no free TCP port")
    }
}

public enum GPSDRigPorts {
    /// A loopback TCP port nothing listens on (right now).
    public static func unused() throws -> Int { try GPSDRig.freePort() }
}
