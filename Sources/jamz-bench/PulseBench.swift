import Foundation
import Glibc
import JamzClient
import JamzCore

/// The position error on a real-time paced ALSA device: jamzd plays through ALSA's `pulse`
/// plugin into a PulseAudio null sink (its own server, started here); `parec` records the sink's
/// monitor and this process stamps what arrives with the host clock. The recorded samples are
/// matched against a decode of the same file to know which track frame was consumed when.
/// The monitor path's own latency is included: it makes the figure an upper bound.
struct PulseBench {
    let seconds: Double
    let fixture: String
    let jamzd: String
    let work: String

    final class Capture: @unchecked Sendable {
        // @unchecked: written by the reader thread, read after it ended (joined by `done`);
        // `reads` is shared while it runs, under `lock`.
        var samples: [Int16] = []
        let lock = NSLock()
        var readsSoFar = 0
        var reads: Int { lock.lock(); defer { lock.unlock() }; return readsSoFar }
        var stamps: [(time: Int64, endFrame: Int)] = []
        let done = DispatchSemaphore(value: 0)
        init(fd: Int32) {
            Thread { [self] in
                var buf = [Int16](repeating: 0, count: 4096)
                var carry = [UInt8]()
                while true {
                    let n = buf.withUnsafeMutableBytes { read(fd, $0.baseAddress!, $0.count) }
                    let now = monotonicNow()
                    if n <= 0 { break }
                    carry += buf.withUnsafeBytes { Array($0[0..<n]) }
                    let whole = carry.count / 4 * 4
                    carry.withUnsafeBytes { raw in
                        samples += raw.bindMemory(to: Int16.self)[0..<(whole / 2)]
                    }
                    carry.removeFirst(whole)
                    stamps.append((now, samples.count / 2))
                    lock.lock(); readsSoFar += 1; lock.unlock()
                }
                done.signal()
            }.start()
        }
    }

    /// A PulseAudio server of the benchmark's own (in `work`/pulse) with one null sink,
    /// `jamzbench`, which it paces in real time by its clock; PULSE_* point every client this
    /// process starts (ALSA's pulse plugin too) at it.
    static func startServer(work: String) throws -> Child {
        let pdir = work + "/pulse"
        try FileManager.default.createDirectory(atPath: pdir, withIntermediateDirectories: true)
        setenv("PULSE_RUNTIME_PATH", pdir, 1)
        setenv("PULSE_SERVER", "unix:\(pdir)/native", 1)
        setenv("PULSE_SINK", "jamzbench", 1)
        let pulse = try Child.spawn("/usr/bin/pulseaudio", [
            "-n", "--daemonize=no", "--exit-idle-time=-1", "--system=false",
            "--load=module-null-sink sink_name=jamzbench rate=44100 channels=2",
            "--load=module-native-protocol-unix socket=\(pdir)/native auth-anonymous=1",
        ], log: work + "/pulse.log")
        do {
            try waitFor("PulseAudio's socket") { FileManager.default.fileExists(atPath: pdir + "/native") }
        } catch { pulse.kill(SIGTERM); _ = pulse.wait(); throw error }
        return pulse
    }

    func run() throws {
        // Start parec before the sink runs, at low latency, so the sink itself runs at low latency.
        let pulse = try Self.startServer(work: work)
        defer { pulse.kill(SIGTERM); _ = pulse.wait() }

        var fds: [Int32] = [0, 0]
        guard pipe(&fds) == 0 else { throw BenchError("pipe failed") }
        let parec = try Child.spawn("/usr/bin/parec", ["-d", "jamzbench.monitor", "--raw", "--format=s16le", "--rate=44100",
                                                      "--channels=2", "--latency-msec=5"], log: work + "/parec.log", stdoutFD: fds[1])
        close(fds[1])
        let capture = Capture(fd: fds[0])
        // The monitor runs (and with it the sink, at parec's 5 ms latency) before jamzd starts.
        try waitFor("parec to deliver", timeout: 20) { capture.reads > 20 }

        let sock = work + "/pulse-jamz.sock"
        let daemon = try Child.spawn(jamzd, ["--data-dir", work + "/pulse-data", "--socket", sock, "--output", "alsa:pulse",
                                             "--log-level", "warning"], log: work + "/jamzd-pulse.log")
        let client = ControlClient(path: sock)
        try waitFor("jamzd's socket") { FileManager.default.fileExists(atPath: sock) }
        try client.call("import", fixture)
        try client.call("add", "long sixty-five")
        try client.call("volume", "100")
        try client.call("play")
        let playAt = monotonicNow()
        var reports: [(at: Int64, frame: Int64)] = []
        let start = monotonicNow()
        usleep(1_000_000)
        while Double(monotonicNow() - start) / 1e9 < min(seconds, 60) {
            usleep(500_000)
            let s = try client.status()
            if s.state == "playing" { reports.append((s.sampledAt, s.positionFrames)) }
        }
        let output = try client.status().output
        let sinkLatencyMs = configuredSinkLatencyMs()
        daemon.kill(SIGTERM); _ = daemon.wait()
        usleep(300_000)
        parec.kill(SIGTERM); _ = parec.wait()
        capture.done.wait()
        close(fds[0])

        // Which track frame is each captured frame? Match a window of the capture against the
        // reference decode near the first audible frame; playback is continuous from there.
        let ref = try decodeReference(fixture, work: work)
        let cap = capture.samples
        guard let firstAudible = cap.firstIndex(where: { $0 != 0 }).map({ $0 / 2 }) else { throw BenchError("the capture is silent") }
        let probe = firstAudible + 44_100   // a second in: past the fade-in
        let trackFrame = bestMatch(cap, at: probe, in: ref, around: probe - firstAudible, range: 22_050)
        let captureToTrack = trackFrame - probe

        if ProcessInfo.processInfo.environment["JAMZ_BENCH_DEBUG"] != nil {
            let span = Double(capture.stamps.last!.time - capture.stamps.first!.time) / 1e9
            print("debug: captured \(cap.count / 2) frames over \(span) s in \(capture.stamps.count) reads; first audible \(firstAudible); probe→track \(trackFrame)")
            for st in capture.stamps.prefix(3) { print("debug: read at \(st.time) end \(st.endFrame)") }
            if let st = capture.stamps.first(where: { $0.endFrame > firstAudible }) { print("debug: first audible read \(Double(st.time - playAt) / 1e6) ms after play; capture began \(Double(capture.stamps[0].time - playAt) / 1e6) ms after play") }
            for r in reports.prefix(3) { print("debug: report at \(r.at) frame \(r.frame)") }
        }
        // The renderer repeats or drops single frames to keep the music on the timeline when the
        // device's clock runs off (this sink runs ~200 ppm fast): so which track frame a captured
        // frame holds is found by matching around each measurement, not by one fixed offset.
        var errorsMs: [Double] = []
        let half = 512
        for r in reports {
            // The capture frame consumed at r.at: the read that ended just after it.
            guard let i = capture.stamps.firstIndex(where: { $0.time >= r.at }) else { continue }
            let st = capture.stamps[i]
            let consumed = st.endFrame - Int(Double(st.time - r.at) * 44_100 / 1e9)
            guard consumed - half >= 0, (consumed + half) * 2 <= cap.count else { continue }
            let guess = consumed + captureToTrack
            let track = bestMatch(cap, at: consumed - half, in: ref, around: guess - half, range: 2_205, length: 2 * half) + half
            errorsMs.append(Double(r.frame - Int64(track)) * 1000 / 44_100)
        }
        let abs = errorsMs.map { Swift.abs($0) }
        if ProcessInfo.processInfo.environment["JAMZ_BENCH_DEBUG"] != nil {
            if let a = capture.stamps.first, let b = capture.stamps.last {
                let rate = Double(b.endFrame - a.endFrame) / (Double(b.time - a.time) / 1e9)
                print(String(format: "debug: capture rate %.2f Hz (%+.0f ppm vs 44100)", rate, (rate / 44_100 - 1) * 1e6))
            }
            if reports.count > 2 {
                let a = reports.first!, b = reports.last!
                let rate = Double(b.frame - a.frame) / (Double(b.at - a.at) / 1e9)
                print(String(format: "debug: reported position rate %.2f Hz (%+.0f ppm)", rate, (rate / 44_100 - 1) * 1e6))
            }
            let q = max(1, errorsMs.count / 4)
            for k in 0..<4 {
                let part = Array(errorsMs[(k * q)..<min(errorsMs.count, (k + 1) * q)])
                print(String(format: "debug: quarter %d raw median %+.3f ms", k + 1, percentile(part, 50)))
            }
        }
        print("")
        print("position error, PulseAudio null sink through ALSA pulse (\(output)), \(errorsMs.count) samples,")
        print("reported − consumed, where consumed is what reached the sink's monitor by then (parec, 5 ms fragments):")
        print(String(format: "  raw:       median %+.3f ms   |err| p50 %.3f ms   p99 %.3f ms   max %.3f ms",
                     percentile(errorsMs, 50), percentile(abs, 50), percentile(abs, 99), abs.max() ?? .nan))
        if let l = sinkLatencyMs {
            // The null sink renders one sink latency ahead of its clock and hands the rendered
            // block to its monitor at once: a monitored frame is played l ms after it arrives.
            let corrected = errorsMs.map { $0 + l }
            let cabs = corrected.map { Swift.abs($0) }
            print(String(format: "  corrected by the sink's configured latency (%.3f ms): median %+.3f ms   |err| p50 %.3f ms   p99 %.3f ms",
                         l, percentile(corrected, 50), percentile(cabs, 50), percentile(cabs, 99)))
        }
    }

    /// `pactl list sinks`: "Latency: N usec, configured M usec" of the benchmark's sink.
    func configuredSinkLatencyMs() -> Double? {
        let out = work + "/pactl.txt"
        let c = try? Child.spawn("/bin/sh", ["-c", "pactl list sinks > \"$0\"", out])
        _ = c?.wait()
        guard let text = try? String(contentsOfFile: out, encoding: .utf8),
              let r = text.range(of: #"configured (\d+) usec"#, options: .regularExpression) else { return nil }
        let digits = text[r].split(separator: " ")[1]
        return Double(digits).map { $0 / 1000 }
    }
}
