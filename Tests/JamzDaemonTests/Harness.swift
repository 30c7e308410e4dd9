import Foundation
import GRDB
import JamzClient
import JamzCore
import JamzTestSupport

/// One `jamzd` process with its own data folder, socket and `file:` sink, as a car would run it.
final class Car: @unchecked Sendable {
    // @unchecked: used from one test at a time; `process` is replaced only by start/kill.
    let dir: URL
    var dataDir: String { dir.appendingPathComponent("data").path }
    var socket: String { dir.appendingPathComponent("jamz.sock").path }
    var log: String { dir.appendingPathComponent("jamzd.log").path }
    var db: String { dataDir + "/jamz.sqlite" }
    let output: String
    var extraArgs: [String]
    var environment: [String: String] = [:]
    /// Run in this network namespace (a separate host; see scripts/netns.sh).
    let netns: String?
    private(set) var process: Process?

    init(output: String? = nil, args: [String] = [], netns: String? = nil) {
        dir = Fixtures.tempDir()
        self.output = output ?? "file:/dev/null"
        extraArgs = args
        self.netns = netns
    }

    var client: ControlClient { ControlClient(path: socket) }

    /// Starts jamzd and waits until its control socket answers.
    @discardableResult
    func start() throws -> Process {
        try? FileManager.default.removeItem(atPath: socket)
        let p = Process()
        let args = ["--data-dir", dataDir, "--socket", socket, "--output", output] + extraArgs
        if let netns {
            // `ip netns exec` execs jamzd itself: the process is jamzd, so kill and wait work as usual.
            p.executableURL = URL(fileURLWithPath: "/usr/sbin/ip")
            p.arguments = ["netns", "exec", netns, Binaries.jamzd] + args
        } else {
            p.executableURL = URL(fileURLWithPath: Binaries.jamzd)
            p.arguments = args
        }
        if !FileManager.default.fileExists(atPath: log) { FileManager.default.createFile(atPath: log, contents: nil) }
        let fh = try FileHandle(forWritingTo: URL(fileURLWithPath: log))
        fh.seekToEndOfFile()
        p.standardError = fh
        p.standardOutput = FileHandle.nullDevice
        var env = ProcessInfo.processInfo.environment
        env.removeValue(forKey: "NOTIFY_SOCKET")
        for (k, v) in environment { env[k] = v }
        p.environment = env
        try p.run()
        process = p
        try waitUntil("jamzd answers on \(socket)", timeout: 20) { (try? self.client.status()) != nil || !p.isRunning }
        if !p.isRunning { throw HarnessError("jamzd exited at start: \(logText.suffix(2000))") }
        return p
    }

    func kill9() {
        guard let p = process else { return }
        kill(p.processIdentifier, SIGKILL)
        p.waitUntilExit()
        process = nil
    }

    /// SIGTERM; returns the exit status.
    func terminate() -> Int32 {
        guard let p = process else { return -1 }
        p.terminate()
        p.waitUntilExit()
        process = nil
        return p.terminationStatus
    }

    var logText: String { (try? String(contentsOfFile: log, encoding: .utf8)) ?? "" }

    /// Runs the `jamz` CLI against this car; returns (exit status, stdout, stderr).
    func jamz(_ args: String...) throws -> (Int32, String, String) {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: Binaries.jamz)
        p.arguments = ["--socket", socket] + args
        let out = Pipe(), err = Pipe()
        p.standardOutput = out
        p.standardError = err
        try p.run()
        let o = out.fileHandleForReading.readDataToEndOfFile()
        let e = err.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return (p.terminationStatus, String(decoding: o, as: UTF8.self), String(decoding: e, as: UTF8.self))
    }

    /// One answer of `jamz … --json` (the stable `data` of the reply); nil when the command failed.
    func json(_ args: [String]) -> Any? {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: Binaries.jamz)
        p.arguments = ["--socket", socket] + args + ["--json"]
        let out = Pipe()
        p.standardOutput = out
        p.standardError = FileHandle.nullDevice
        guard (try? p.run()) != nil else { return nil }
        let d = out.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return p.terminationStatus == 0 ? try? JSONSerialization.jsonObject(with: d, options: [.fragmentsAllowed]) : nil
    }

    deinit {
        if let p = process, p.isRunning { kill(p.processIdentifier, SIGKILL); p.waitUntilExit() }
        // JAMZ_KEEP_TEST_DIRS=1 keeps each car's folder (its jamzd.log) for a post-mortem.
        if ProcessInfo.processInfo.environment["JAMZ_KEEP_TEST_DIRS"] == nil { try? FileManager.default.removeItem(at: dir) }
    }
}

struct HarnessError: Error, CustomStringConvertible {
    let description: String
    init(_ s: String) { description = s }
}

func waitUntil(_ what: String, timeout: Double = 10, _ cond: () -> Bool) throws {
    let end = Date().addingTimeInterval(timeout)
    while !cond() {
        if Date() > end { throw HarnessError("timed out waiting until \(what)") }
        usleep(20_000)
    }
}

/// A folder with a few valid fixtures (copied, so each test imports its own tree).
func musicFolder(_ names: [String]) throws -> String {
    let d = Fixtures.tempDir()
    for n in names {
        let src = Fixtures.path(n)
        try FileManager.default.copyItem(atPath: src, toPath: d.appendingPathComponent((n as NSString).lastPathComponent).path)
    }
    return d.path
}
