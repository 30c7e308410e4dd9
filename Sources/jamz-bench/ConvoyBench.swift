import ArgumentParser
import Foundation
import Glibc
import JamzClient
import JamzCore
import JamzTestSupport

/// `jamz-bench convoy`: real `jamzd` processes as separate hosts (network namespaces on a bridge,
/// scripts/netns.sh; needs root), each with its own skewed clock and a `file:` FIFO sink read by
/// this process, which stamps every block with the host's monotonic clock. Which track frame
/// each car emits at a host instant comes from matching the captured samples against a decode
/// of the file, so the figure does not trust anything the daemons say.
struct ConvoyBench: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "convoy",
        abstract: "Inter-car offset, discovery, take-over and bytes of real jamzd processes in network namespaces (root).")

    @Option(help: "Convoy sizes, comma separated") var cars: String = "3,5,10"
    @Option(help: "Link profiles, comma separated: clean, jitter (20 ms + exp(10 ms) each way, the transport's test impairment); through an MQTT relay with no LAN (issue 12): relay, relay-nogps (40 ms + exp(20 ms) each way, 2 % loss, a 1 s outage every 15 s, with and without GPS time), relay-asym, relay-asym-nogps (odd cars' mobile links 5 ms up / 60 ms down, even cars' 60 up / 5 down)") var links: String = "clean,jitter"
    @Option(help: "Seconds measured per convoy, after it settled") var seconds: Double = 30
    @Option(help: "Seconds to settle before measuring") var settle: Double = 15
    @Option(help: "Fixture to play (default: $JAMZ_FIXTURES/long65.mp3)") var file: String?

    func run() throws {
        guard getuid() == 0 else { throw BenchError("jamz-bench convoy needs root (network namespaces)") }
        let bin = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath().deletingLastPathComponent().path
        let repo = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path
        let fixture = file ?? ((ProcessInfo.processInfo.environment["JAMZ_FIXTURES"] ?? ".build/fixtures") + "/long65.mp3")
        guard FileManager.default.fileExists(atPath: fixture) else { throw BenchError("no fixture at \(fixture): run `make fixtures`") }
        let work = NSTemporaryDirectory() + "jamz-convoy-bench-\(getpid())"
        try FileManager.default.createDirectory(atPath: work, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: work) }
        let ref = try decodeReference(fixture, work: work)
        // A 4 MB track (≈ 250 s at 128 kb/s) only car 1 has, for the copy throughput.
        let big = work + "/big/big.mp3"
        try FileManager.default.createDirectory(atPath: work + "/big", withIntermediateDirectories: true)
        let sox = try Child.spawn("/usr/bin/sox", ["-n", "-r", "44100", "-c", "2", "-C", "128", big, "synth", "250", "pinknoise", "vol", "0.3"])
        guard sox.wait().status == 0 else { throw BenchError("sox could not make the 4 MB track") }
        print("jamz-bench convoy: \(fixture), real jamzd processes in network namespaces, clocks 1 s apart and ±50 ppm")
        print("inter-car offset = max − min over cars of the track frame each sink emits at a host instant (sample-matched), every 100 ms;")
        print("a sample where one car is exactly one 2048-frame sink block off is the reader having read a block late (it is stamped at read time): counted, left out\n")
        for n in cars.split(separator: ",").compactMap({ Int($0) }) {
            for link in links.split(separator: ",").map(String.init) {
                guard let impair = ["clean": "", "jitter": "20+exp10", "relay": "", "relay-nogps": "", "relay-asym": "", "relay-asym-nogps": ""][link] else {
                    throw BenchError("unknown link profile \(link)")
                }
                try measure(n: n, link: link, impair: impair, bin: bin, script: repo + "/scripts/netns.sh", fixture: fixture, big: link == "clean" ? big : nil,
                            ref: ref, work: work + "/n\(n)-\(link)")
            }
        }
    }

    static func netns(_ script: String, _ args: String...) throws {
        let c = try Child.spawn("/bin/bash", [script] + args)
        guard c.wait().status == 0 else { throw BenchError("netns.sh \(args.joined(separator: " ")) failed") }
    }

    /// The relay's bad paths (tcp-impair.py profiles; car i uses path (i − 1) mod count).
    static func relayPaths(_ link: String) -> [[String]]? {
        switch link {
        case "relay", "relay-nogps": return [["--delay", "40", "--exp", "20", "--loss", "0.02", "--outage", "1/15"]]
        case "relay-asym", "relay-asym-nogps": return [["--delay", "60", "--up-delay", "5", "--exp", "2"], ["--delay", "5", "--up-delay", "60", "--exp", "2"]]
        default: return nil
        }
    }

    /// Bytes through car i's mobile-data link (both ways), read off the cloud's end of it.
    static func wanBytes(_ i: Int) -> Int64 {
        let out = NSTemporaryDirectory() + "jamz-wan-\(getpid())-\(i).json"
        defer { try? FileManager.default.removeItem(atPath: out) }
        let fd = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        defer { close(fd) }
        guard let c = try? Child.spawn("/usr/sbin/ip", ["-n", "jamz-cloud", "-s", "-j", "link", "show", "wan\(i)"], stdoutFD: fd), c.wait().status == 0,
              let d = FileManager.default.contents(atPath: out),
              let j = (try? JSONSerialization.jsonObject(with: d)) as? [[String: Any]], let st = j.first?["stats64"] as? [String: Any],
              let rx = (st["rx"] as? [String: Any])?["bytes"] as? Int64 ?? ((st["rx"] as? [String: Any])?["bytes"] as? Int).map(Int64.init),
              let tx = (st["tx"] as? [String: Any])?["bytes"] as? Int64 ?? ((st["tx"] as? [String: Any])?["bytes"] as? Int).map(Int64.init)
        else { return 0 }
        return rx + tx
    }

    func measure(n: Int, link: String, impair: String, bin: String, script: String, fixture: String, big: String?, ref: [Int16], work: String) throws {
        let relayPaths = Self.relayPaths(link)
        try Self.netns(script, relayPaths == nil ? "up" : "cloud", "\(n)")
        defer { try? Self.netns(script, "down") }
        // The relay: a real mosquitto in the cloud namespace, behind one bad path per profile.
        var broker: MosquittoRig?
        var pathProcs: [GroupProcess] = []
        defer { pathProcs.forEach { $0.killGroup() }; broker?.kill() }
        if let relayPaths {
            broker = try MosquittoRig(port: 1883, netns: "jamz-cloud")
            for (k, profile) in relayPaths.enumerated() {
                let p = try GroupProcess(["ip", "netns", "exec", "jamz-cloud", "/usr/bin/python3", (script as NSString).deletingLastPathComponent + "/tcp-impair.py",
                                          "--listen", "10.79.255.1:\(1884 + k)", "--to", "127.0.0.1:1883", "--seed", "\(k + 1)"] + profile, log: "/dev/null")
                _ = try p.waitFor("the impaired path listens") { $0.contains("listening") }
                pathProcs.append(p)
            }
        }
        let rate = 44_100
        var daemons: [Child] = []
        var readers: [FifoReader] = []
        var clients: [ControlClient] = []
        var ppms: [Double] = []
        var offsetsMs: [Int] = []
        defer { for d in daemons { d.kill(SIGKILL); _ = d.wait() } }
        for i in 1...n {
            let dir = work + "/car\(i)"
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
            let fifo = dir + "/sink.fifo"
            guard mkfifo(fifo, 0o600) == 0 else { throw BenchError("mkfifo: \(String(cString: strerror(errno)))") }
            readers.append(FifoReader(path: fifo, keepSamples: true))
            let ppm = i == 1 ? 0 : (i % 2 == 0 ? 50 : -50)
            ppms.append(Double(ppm))
            offsetsMs.append(i * 1000)
            let args = ["netns", "exec", "jamz-car\(i)", bin + "/jamzd", "--data-dir", dir + "/data", "--socket", dir + "/jamz.sock",
                        "--output", "file:" + fifo, "--log-level", "warning", "--car-name", "car\(i)",
                        "--clock-offset-ms=\(offsetsMs.last!)", "--clock-drift-ppm=\(ppm)"]
                + (impair.isEmpty ? [] : ["--test-link-impair", "\(impair),seed=\(i)"])
                + (relayPaths.map { ["--convoy-port", "0", "--relay", "mqtt://10.79.255.1:\(1884 + (i - 1) % $0.count)"] } ?? [])
                + (link.hasPrefix("relay") && !link.hasSuffix("nogps") ? ["--test-gps-time", "50"] : [])
            daemons.append(try Child.spawn("/usr/sbin/ip", args, log: dir + "/jamzd.log"))
            clients.append(ControlClient(path: dir + "/jamz.sock"))
        }
        for c in clients {
            try waitFor("jamzd's socket", timeout: 30) { (try? c.status()) != nil }
            try c.call("import", fixture)
            try c.call("volume", "100")   // the sinks must carry the samples of the file unscaled
        }
        // Each car's true clock (the test hook's offset, drift and the raw instant it counts
        // from, which jamzd logs): c_i(r) = r + offset_i + (r − origin_i)·ppm_i.
        let origins = try (1...n).map { i -> Int64 in
            let log = (try? String(contentsOfFile: work + "/car\(i)/jamzd.log", encoding: .utf8)) ?? ""
            guard let line = log.split(separator: "\n").first(where: { $0.contains("raw monotonic ") }),
                  let r = line.components(separatedBy: "raw monotonic ").last?.split(separator: " ").first, let v = Int64(r)
            else { throw BenchError("car\(i) did not log its test clock") }
            return v
        }
        func trueClock(_ i: Int, _ r: Int64) -> Double {
            Double(r) + Double(offsetsMs[i]) * 1e6 + Double(r - origins[i]) * ppms[i] * 1e-6
        }
        let created = try clients[0].call("group", "create", "bench")
        guard let code = created.data?["code"]?.string else { throw BenchError("no join code") }
        let joinedAt = monotonicNow()
        for c in clients.dropFirst() { try c.call("group", "join", code) }
        try waitFor("every car hears every other", timeout: relayPaths == nil ? 30 : 90) {
            clients.allSatisfy { c in (try? c.call(.peers))?.data?.array?.count == n - 1 }
        }
        let discovery = Double(monotonicNow() - joinedAt) / 1e6
        // Idle traffic (in a convoy, nothing playing), once the start-up bursts of clock
        // exchanges are over.
        Thread.sleep(forTimeInterval: 10)
        let idle = try bytesPerCar(clients, over: 10)
        let wanIdle = relayPaths == nil ? [] : try wanPerCar(n, over: 10)
        try clients[0].call("add", "long sixty-five")
        try waitFor("the playlist everywhere", timeout: 20) {
            clients.allSatisfy { c in (try? c.call(.queue))?.data?.array?.count == 1 }
        }
        try clients[0].call("play")
        Thread.sleep(forTimeInterval: settle)

        // Measure: every 100 ms, which track frame each sink emits now.
        let bytesBefore = clients.map { counter($0, "convoy.bytes_sent") }
        let wanBefore = relayPaths == nil ? [] : (1...n).map(Self.wanBytes)
        let jumpsBefore = clients.map { counter($0, "renderer.jumps") }
        let start = monotonicNow()
        // Meanwhile, twice a second: each follower's estimate of the DJ's clock against the truth.
        var clockSpreads: [Double] = []
        var clockErrors: [Double] = []
        var signedErrors = [[Double]](repeating: [], count: n)
        while monotonicNow() < start + Int64(seconds * 1e9) {
            var errs: [Double] = [0]
            for (i, c) in clients.enumerated().dropFirst() {
                let before = monotonicNow()
                guard let ps = (try? c.call(.peers))?.data?.array,
                      let dj = ps.first(where: { $0["isDJ"]?.bool == true }), let off = dj["offsetMs"]?.double else { continue }
                let r = (before + monotonicNow()) / 2
                let e = off * 1e6 - (trueClock(0, r) - trueClock(i, r))
                errs.append(e / 1e3)
                signedErrors[i].append(e / 1e3)
                clockErrors.append(abs(e) / 1e3)
            }
            if errs.count == n { clockSpreads.append(errs.max()! - errs.min()!) }
            Thread.sleep(forTimeInterval: 0.5)
        }
        let bytesAfter = clients.map { counter($0, "convoy.bytes_sent") }
        let wanPlaying = relayPaths == nil ? [] : zip(wanBefore, (1...n).map(Self.wanBytes)).map { Double($1 - $0) / (Double(monotonicNow() - start) / 1e9) }
        let jumps = zip(jumpsBefore, clients.map { counter($0, "renderer.jumps") }).map { $1 - $0 }
        let playing = zip(bytesBefore, bytesAfter).map { Double($1 - $0) / seconds }
        var guess = [Int?](repeating: nil, count: n)
        // Each sink's frame length in host time, from its own stamps (not from the drift the
        // bench configured): what the grid figure and the wake-up delays are measured against.
        let frameNs = readers.map { $0.nsPerFrame(from: start, to: start + Int64(seconds * 1e9), rate: rate) }
        var spreads: [Double] = []
        var gridSpreads: [Double] = []
        var readerLags = 0
        let samples = readers.map(\.allSamples)
        var t = start
        while t < start + Int64(seconds * 1e9) - 500_000_000 {
            var frames: [Int] = []
            var gridFrames: [Double] = []
            for (i, r) in readers.enumerated() {
                guard let sf = r.frame(at: t, rate: rate), Int(sf) + 1024 < samples[i].count / 2,
                      let gf = r.gridFrame(at: t, ns: frameNs[i]), Int(gf) + 1024 < samples[i].count / 2 else { break }
                let whole = Int(gf.rounded(.down))
                let at = Int(sf)
                // Track frame − stream frame changes only when the car inserts, drops or jumps:
                // predict from the last match, search ±10 ms around it.
                let g = guess[i].map { at + $0 }
                let f = bestMatch(samples[i], at: at, in: ref, around: g ?? at, range: g == nil ? 2 * rate : 441)
                guess[i] = f - at
                frames.append(f)
                // The track frame at the whole stream frame, plus how far into it the DAC is.
                gridFrames.append(Double(bestMatch(samples[i], at: whole, in: ref, around: whole + guess[i]!, range: 441)) + (gf - Double(whole)))
            }
            if frames.count == n {
                let d = frames.max()! - frames.min()!
                // One sink block (2048 frames) ± 3 ms of real error: the reader read a block late.
                if abs(d - 2048) < 130 && n > 1 { readerLags += 1 } else { spreads.append(Double(d) * 1000 / Double(rate)) }
                gridSpreads.append((gridFrames.max()! - gridFrames.min()!) * 1000 / Double(rate))
            }
            if ProcessInfo.processInfo.environment["JAMZ_BENCH_DEBUG"] != nil, Int((t - start) / 100_000_000) % 20 == 0 {
                print("  t+\(Double(t - start) / 1e9) s: track frames \(frames)")
            }
            t += 100_000_000
        }
        spreads.sort()
        gridSpreads.sort()
        clockSpreads.sort()
        clockErrors.sort()
        let late = readers.indices.flatMap { readers[$0].lateness(from: start, to: start + Int64(seconds * 1e9), ns: frameNs[$0]) }.sorted()
        if ProcessInfo.processInfo.environment["JAMZ_BENCH_DEBUG"] != nil {
            for c in clients {
                if let st = try? c.status() {
                    print("  \(st.state) pos \(st.position) counters \(st.counters.filter { $0.key.hasPrefix("renderer") || $0.key.hasPrefix("decode") })")
                }
            }
        }

        // Take-over by the last car: effective everywhere when every car names it DJ.
        let member = try clients[n - 1].call(.group(.show)).data?["member"]?.string
        let pressed = monotonicNow()
        try clients[n - 1].call("take-control")
        try waitFor("every car sees the new DJ", timeout: relayPaths == nil ? 10 : 30) {
            clients.allSatisfy { c in (try? c.call(.group(.show)))?.data?["dj"]?.string == member }
        }
        let takeover = Double(monotonicNow() - pressed) / 1e6

        // A 4 MB track only car 1 has, added as the next entry: every other car copies it.
        var copy: (everywhere: Double, rates: [Double])?
        if let big {
            try clients[0].call("import", (big as NSString).deletingLastPathComponent)
            let before = clients.map { counter($0, "convoy.tracks_copied") }
            let added = monotonicNow()
            try clients[0].call("add", "big")
            try waitFor("every car copied the 4 MB track", timeout: 120) {
                zip(clients, before).dropFirst().allSatisfy { c, b in counter(c, "convoy.tracks_copied") > b }
            }
            let everywhere = Double(monotonicNow() - added) / 1e6
            // Each car's own figure: bytes over the time its copy took (connect to verified file).
            let rates = clients.dropFirst().map { c -> Double in
                let ns = counter(c, "convoy.track_copy_ns")
                return ns > 0 ? Double(counter(c, "convoy.track_copy_bytes")) / Double(ns) * 1e3 : 0   // MB/s
            }.sorted()
            copy = (everywhere, rates)
        }

        func f(_ v: Double) -> String { String(format: "%.3f", v) }
        let what = ["clean": "clean bridge", "jitter": "jittered link (\(impair) ms each way)",
                    "relay": "through the relay, no LAN: 40 ms + exp(20 ms) each way, 2 % loss, 1 s outage every 15 s; GPS time",
                    "relay-nogps": "through the relay, no LAN: 40 ms + exp(20 ms) each way, 2 % loss, 1 s outage every 15 s; no GPS time",
                    "relay-asym": "through the relay, no LAN: odd cars 5 ms up / 60 ms down, even cars 60 / 5; GPS time",
                    "relay-asym-nogps": "through the relay, no LAN: odd cars 5 ms up / 60 ms down, even cars 60 / 5; no GPS time"][link] ?? link
        print("\(n) cars, \(what):")
        if spreads.isEmpty {
            print("  inter-car offset: no sample matched (see the jamzd logs)")
        } else {
            print("  inter-car offset (\(spreads.count) samples, \(readerLags) left out as reader lag): p50 \(f(percentile(spreads, 50))) ms, p99 \(f(percentile(spreads, 99))) ms, max \(f(spreads.last!)) ms (target p99 <= \(link == "clean" ? "0.1" : link.hasPrefix("relay") ? (link.hasSuffix("nogps") ? "none: report" : "1") : "0.5") ms)")
            print("  same, each sink's block grid from its earliest stamps (what a crystal-driven DAC plays; \(gridSpreads.count) samples): p50 \(f(percentile(gridSpreads, 50))) ms, p99 \(f(percentile(gridSpreads, 99))) ms, max \(f(gridSpreads.last ?? 0)) ms")
            print("  fade-and-jump corrections while measured (a car more than 20 ms off, or its sink restarted): \(jumps.map(String.init).joined(separator: " "))")
            let fitted = zip(frameNs, ppms).map { ns, ppm in String(format: "%+.1f", (1e9 / 44_100 / ns - 1) * 1e6 - ppm) }
            print("  each sink's rate from its stamps, ppm off the drift the bench set: \(fitted.joined(separator: " "))")
            print("  sink + reader wake-up delay per block (stamp − grid, all cars): p50 \(f(percentile(late, 50) / 1e3)) ms, p99 \(f(percentile(late, 99) / 1e3)) ms, max \(f((late.last ?? 0) / 1e3)) ms")
        }
        if !clockSpreads.isEmpty {
            let medians = signedErrors.dropFirst().map { $0.isEmpty ? 0 : percentile($0.sorted(), 50) }
            let kernel = clients.map { counter($0, "convoy.rx_stamped_kernel") }.reduce(0, +)
            let loop = clients.map { counter($0, "convoy.rx_stamped_loop") }.reduce(0, +)
            print("  per follower, median (estimate − truth): \(medians.map { String(format: "%+.1f", $0) }.joined(separator: " ")) µs; datagrams stamped by the kernel \(kernel), by the event loop \(loop)")
            print("  followers' estimate of the DJ's clock − truth (\(clockErrors.count) polls): |error| p50 \(f(percentile(clockErrors, 50) / 1e3)) ms, p99 \(f(percentile(clockErrors, 99) / 1e3)) ms; spread over cars p50 \(f(percentile(clockSpreads, 50) / 1e3)) ms, p99 \(f(percentile(clockSpreads, 99) / 1e3)) ms")
        }
        print("  discovery after join: \(f(discovery)) ms (every car lists every other, polled over the control socket)")
        print("  take-over effective everywhere: \(f(takeover)) ms (polled; target <= 300 ms)")
        print("  bytes/s per car: idle \(f(idle.reduce(0, +) / Double(n))) (max \(f(idle.max() ?? 0))), playing \(f(playing.reduce(0, +) / Double(n))) (target idle <= 2000; the max is the DJ, which answers every car's clock exchanges)")
        if relayPaths != nil {
            let mbh = { (v: [Double]) in f(v.reduce(0, +) / Double(n) * 3600 / 1e6) }
            print("  mobile data per car (the car's link, both ways, TCP/IP and MQTT included): idle \(mbh(wanIdle)) MB/h, playing \(mbh(wanPlaying)) MB/h (max \(f((wanPlaying.max() ?? 0) * 3600 / 1e6)); target playing <= 10 MB/h)")
        }
        if let copy {
            let total = Double(try FileManager.default.attributesOfItem(atPath: big!)[.size] as? Int ?? 0) / 1e6
            print("  4 MB track copy (\(f(total)) MB, \(n - 1) cars at once from car 1): on every car \(f(copy.everywhere)) ms after `add` (incl. up to 500 ms until the fetch check); per-copy throughput median \(f(percentile(copy.rates, 50))) MB/s, slowest \(f(copy.rates.first ?? 0)) MB/s")
        }
    }

    func counter(_ c: ControlClient, _ name: String) -> Int64 {
        guard let s = try? c.status() else { return 0 }
        return s.counters[name] ?? 0
    }

    func wanPerCar(_ n: Int, over s: Double) throws -> [Double] {
        let a = (1...n).map(Self.wanBytes)
        Thread.sleep(forTimeInterval: s)
        return zip(a, (1...n).map(Self.wanBytes)).map { Double($1 - $0) / s }
    }

    func bytesPerCar(_ clients: [ControlClient], over s: Double) throws -> [Double] {
        let a = clients.map { counter($0, "convoy.bytes_sent") }
        Thread.sleep(forTimeInterval: s)
        let b = clients.map { counter($0, "convoy.bytes_sent") }
        return zip(a, b).map { Double($1 - $0) / s }
    }
}
