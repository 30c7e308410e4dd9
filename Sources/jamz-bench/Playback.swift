import ArgumentParser
import Foundation
import Glibc
import JamzClient
import JamzCore

/// `jamz-bench playback`: jamzd playing a fixture through the `file:` sink (a FIFO read by this
/// process, which stamps every block with the host clock), against `mpg123 -q -t` decoding the
/// same file, in the same run.
struct Playback: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "CPU, memory, resume time and position accuracy of jamzd's playback.")

    @Option(help: "Seconds of playback to measure") var seconds = 60.0
    @Option(help: "kill -9 / restart rounds for the resume time") var resumes = 7
    @Option(help: "Fixture to play (default: $JAMZ_FIXTURES/long65.mp3)") var file: String?
    @Flag(help: "Also measure on a PulseAudio null sink through ALSA's pulse plugin") var pulse = false

    func run() throws {
        let bin = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath().deletingLastPathComponent().path
        let jamzd = bin + "/jamzd"
        let fixture = file ?? ((ProcessInfo.processInfo.environment["JAMZ_FIXTURES"] ?? ".build/fixtures") + "/long65.mp3")
        guard FileManager.default.fileExists(atPath: fixture) else { throw BenchError("no fixture at \(fixture): run `make fixtures`") }
        let work = NSTemporaryDirectory() + "jamz-bench-\(getpid())"
        try FileManager.default.createDirectory(atPath: work, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: work) }
        let fifo = work + "/sink.fifo"
        guard mkfifo(fifo, 0o600) == 0 else { throw BenchError("mkfifo: \(String(cString: strerror(errno)))") }
        let sock = work + "/jamz.sock"
        let rate = 44_100
        let args = ["--data-dir", work + "/data", "--socket", sock, "--output", "file:" + fifo, "--log-level", "warning"]
        let log = work + "/jamzd.log"
        print("jamz-bench playback: \(fixture), \(Int(seconds)) s through file:FIFO; jamzd = \(jamzd)")

        // 1. Play, measure CPU/RSS and the position error against the reader's clock.
        var reader = FifoReader(path: fifo, keepSamples: false)
        var daemon = try Child.spawn(jamzd, args, log: log)
        let client = ControlClient(path: sock)
        try waitFor("jamzd's socket") { FileManager.default.fileExists(atPath: sock) }
        try client.call("import", fixture)
        try client.call("add", "long sixty-five")
        let cpu0 = daemon.cpuSeconds
        let threads0 = daemon.threadCPU
        try client.call("play")
        let start = monotonicNow()
        var errorsMs: [Double] = []
        var skippedSamples = 0
        while Double(monotonicNow() - start) / 1e9 < seconds {
            usleep(500_000)
            let s = try client.status()
            guard s.state == "playing", let a = reader.audibleStart,
                  let consumed = reader.frame(at: s.sampledAt, rate: rate) else { skippedSamples += 1; continue }
            let actual = consumed - a.frame   // track frame: the track started at the first audible frame
            errorsMs.append(Double(s.positionFrames - actual) * 1000 / Double(rate))
        }
        let cpu = daemon.cpuSeconds - cpu0
        let threads1 = daemon.threadCPU
        let renderCPU = (threads1["jamz-renderer"] ?? 0) - (threads0["jamz-renderer"] ?? 0)
        let decodeCPU = (threads1["jamz-decoder"] ?? 0) - (threads0["jamz-decoder"] ?? 0)
        let rss = daemon.peakRSS
        let anon = daemon.anonRSS
        let counters = try client.status().counters

        // 2. The peer: mpg123 decoding the same file (scaled to the same length of audio).
        let peer = try Child.spawn("/usr/bin/mpg123", ["-q", "-t", fixture])
        let (_, ru) = peer.wait()
        let trackSeconds = 65.0
        let peerCPU = (Double(ru.ru_utime.tv_sec) + Double(ru.ru_utime.tv_usec) / 1e6
                       + Double(ru.ru_stime.tv_sec) + Double(ru.ru_stime.tv_usec) / 1e6) * seconds / trackSeconds
        let peerRSS = ru.ru_maxrss * 1024

        // 3. Resume after kill -9: process start to first audible frame at the sink.
        var resumeMs: [Double] = []
        var resumeErrMs: [Double] = []
        try client.call("seek", "5")   // room for the rounds before the track ends
        for _ in 0..<resumes {
            usleep(1_200_000)   // let it save a position (it saves twice a second)
            let before = try client.status()
            daemon.kill(SIGKILL)
            _ = daemon.wait()
            try waitFor("the sink reader to see EOF") { reader.finished }
            reader = FifoReader(path: fifo, keepSamples: false)
            let t0 = monotonicNow()
            daemon = try Child.spawn(jamzd, args, log: log)
            try waitFor("the first audible frame after restart") { reader.audibleStart != nil }
            let a = reader.audibleStart!
            resumeMs.append(Double(a.time - t0) / 1e6)
            try waitFor("jamzd's socket") { (try? client.status()) != nil }
            let after = try client.status()
            // Where it came back, against where it was last heard before the kill.
            let heardBefore = Double(before.positionFrames) / Double(rate) + Double(t0 - before.sampledAt) / 1e9
            let resumedAt = after.position - Double(after.sampledAt - a.time) / 1e9
            resumeErrMs.append((resumedAt - heardBefore) * 1000)
        }
        daemon.kill(SIGTERM)
        let (status, _) = daemon.wait()

        let abs = errorsMs.map { Swift.abs($0) }
        print("")
        print("position error, file: sink (reported − consumed, \(errorsMs.count) samples, \(skippedSamples) skipped):")
        print(String(format: "  median %+.3f ms   |err| p50 %.3f ms   p99 %.3f ms   max %.3f ms",
                     percentile(errorsMs, 50), percentile(abs, 50), percentile(abs, 99), abs.max() ?? .nan))
        print(String(format: "CPU over %.0f s of playback: jamzd %.3f s; mpg123 -q -t for the same audio %.3f s; ratio %.2f (target <= 2)",
                     seconds, cpu, peerCPU, cpu / peerCPU))
        print(String(format: "  of which: decoder thread %.3f s, renderer thread %.3f s, the rest (control socket, saves, status) %.3f s",
                     decodeCPU, renderCPU, cpu - decodeCPU - renderCPU))
        print(String(format: "peak RSS: jamzd %.1f MB (target <= 20), of which its own (RssAnon) %.1f MB, the rest shared code pages; mpg123 %.1f MB",
                     Double(rss) / 1e6, Double(anon) / 1e6, Double(peerRSS) / 1e6))
        print(String(format: "resume after kill -9, process start to first audible frame (%d rounds): median %.0f ms, p90 %.0f ms, max %.0f ms (target <= 300)",
                     resumeMs.count, percentile(resumeMs, 50), percentile(resumeMs, 90), resumeMs.max() ?? .nan))
        print(String(format: "resume position vs last heard before the kill: median %+.0f ms, max |.| %.0f ms (saved twice a second)",
                     percentile(resumeErrMs, 50), resumeErrMs.map { Swift.abs($0) }.max() ?? .nan))
        print("renderer counters: jumps \(counters["renderer.jumps"] ?? 0), repeated \(counters["renderer.frames_repeated"] ?? 0), dropped \(counters["renderer.frames_dropped"] ?? 0)")
        print("SIGTERM exit status: \(status >> 8)")
        if pulse { try PulseBench(seconds: seconds, fixture: fixture, jamzd: jamzd, work: work).run() }
    }
}
