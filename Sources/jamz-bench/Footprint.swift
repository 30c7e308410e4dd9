import ArgumentParser
import Foundation
import Glibc
import JamzClient

/// `jamz-bench footprint` (issue 15): what jamzd costs the car while playing, paused and idle in
/// a convoy, against MPD and mpg123 playing the same file to the same real-time paced sink, in
/// the same run. Every figure is read from outside, through /proc, over a window in which the
/// bench does not talk to the players: CPU (utime+stime of all threads), context switches of all
/// threads (the wake-ups) and which threads they come from, PSS / private dirty / RSS, and the
/// bytes each process caused to be written to disk.
struct Footprint: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "footprint",
        abstract: "CPU, wake-ups, memory and disk writes of jamzd playing, paused and idle in a convoy, against MPD and mpg123 on the same paced sink (root for the convoy).")

    @Option(help: "Seconds per measured window") var seconds: Double = 60
    @Option(help: "Windows per figure, back to back (the median is printed)") var repeats: Int = 1
    @Option(help: "Seconds after each change (start, play, pause) before a window") var settle: Double = 5
    @Option(help: "Cars in the convoy phase (0: leave it out; it needs root)") var cars: Int = 3
    @Option(help: "Fixture to play (default: $JAMZ_FIXTURES/long65.mp3)") var file: String?
    @Option(help: "Words of the fixture's title, for jamzd's `add`") var title: String = "long sixty-five"
    @Flag(help: "Leave out jamzd on its own file: FIFO sink (the sink of the earlier figures)") var noFileSink = false

    func run() throws {
        guard seconds > 0, repeats >= 1 else { throw BenchError("--seconds must be > 0 and --repeats >= 1") }
        let bin = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath().deletingLastPathComponent().path
        let repo = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path
        let fixture = file ?? ((ProcessInfo.processInfo.environment["JAMZ_FIXTURES"] ?? ".build/fixtures") + "/long65.mp3")
        guard FileManager.default.fileExists(atPath: fixture) else { throw BenchError("no fixture at \(fixture): run `make fixtures`") }
        for tool in ["/usr/bin/mpd", "/usr/bin/mpc", "/usr/bin/mpg123", "/usr/bin/pulseaudio"] where !FileManager.default.isExecutableFile(atPath: tool) {
            throw BenchError("\(tool) is missing: run scripts/install-deps.sh")
        }
        // A page of a file still dirty in the page cache counts as private dirty in every
        // process mapping it: a jamzd just built would show its whole binary (25 MB) as its own.
        sync()
        // On the disk (not a tmpfs), so that what the players write reaches write_bytes.
        let work = NSTemporaryDirectory() + "jamz-footprint-\(getpid())"
        try FileManager.default.createDirectory(atPath: work, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: work) }
        let r = FootprintRun(seconds: seconds, repeats: repeats, settle: settle, fixture: fixture, title: title,
                             jamzd: bin + "/jamzd", netnsScript: repo + "/scripts/netns.sh", work: work)
        try r.run(cars: getuid() == 0 ? cars : 0, fileSink: !noFileSink, rootless: getuid() != 0 && cars > 0)
    }
}

/// One process's figures over a window (the median of `repeats` windows).
struct Figures {
    struct PerThread { var count = 0; var wakeups = 0.0; var cpu = 0.0 }
    var cpu = 0.0            // CPU-s per 60 s
    var wakeups = 0.0        // context switches per second, all threads
    var involuntary = 0.0    // of which involuntary (preempted: other load on the CPUs)
    var writtenPerHour = 0.0 // bytes
    var rss = 0, pss = 0, privateDirty = 0
    var threads: [String: PerThread] = [:]   // by thread name: wake-ups/s and CPU-s per 60 s
    var threadsEnded = 0     // threads that ended within the windows (counted up to the bench's last look)
    var dirtyByMapping: [String: Int] = [:]   // private dirty by mapping, at the end of the last window
}

struct FootprintRun {
    let seconds: Double
    let repeats: Int
    let settle: Double
    let fixture: String
    let title: String
    let jamzd: String
    let netnsScript: String
    let work: String

    /// A row of the table: what was measured, the player's figures, the sink server's meanwhile.
    struct Row { var phase: String; var who: String; var fig: Figures; var server: Figures? }

    /// Figures of every process in `procs` over the same windows. The bench only reads /proc
    /// meanwhile, four times a second: a thread that ends within the window (a worker pool
    /// shrinking) still counts with what it had done at the last look.
    func measure(_ procs: [Child]) -> [Figures] {
        var runs: [[Figures]] = []
        for _ in 0..<repeats {
            typealias T = (name: String, switches: Int, involuntary: Int, cpuNs: Int)
            let start = monotonicNow()
            let cpu0 = procs.map(\.cpuSeconds)
            let written0 = procs.map(\.writeBytes)
            let base = procs.map(\.threads)
            var seen = base
            var ended = [Set<String>](repeating: [], count: procs.count)
            while monotonicNow() < start + Int64(seconds * 1e9) {
                Thread.sleep(forTimeInterval: min(0.25, max(0.001, Double(start + Int64(seconds * 1e9) - monotonicNow()) / 1e9)))
                for (i, p) in procs.enumerated() {
                    let now = p.threads
                    for tid in seen[i].keys where now[tid] == nil { ended[i].insert(tid) }
                    seen[i].merge(now) { $1 }
                }
            }
            let s = Double(monotonicNow() - start) / 1e9
            runs.append(procs.indices.map { i in
                var f = Figures()
                f.cpu = (procs[i].cpuSeconds - cpu0[i]) / s * 60
                var total = 0, involuntary = 0
                for (tid, t) in seen[i] {
                    let b: T = base[i][tid] ?? (t.name, 0, 0, 0)   // a thread new in the window: all of its own
                    total += t.switches - b.switches
                    involuntary += t.involuntary - b.involuntary
                    f.threads[t.name, default: .init()].count += 1
                    f.threads[t.name]!.wakeups += Double(t.switches - b.switches) / s
                    f.threads[t.name]!.cpu += Double(t.cpuNs - b.cpuNs) / 1e9 / s * 60
                }
                f.threadsEnded = ended[i].count
                f.wakeups = Double(total) / s
                f.involuntary = Double(involuntary) / s
                f.writtenPerHour = Double(procs[i].writeBytes - written0[i]) / s * 3600
                let m = procs[i].memory
                f.rss = m["Rss"] ?? 0; f.pss = m["Pss"] ?? 0; f.privateDirty = m["Private_Dirty"] ?? 0
                f.dirtyByMapping = procs[i].privateDirtyByMapping
                return f
            })
        }
        // Medians of the figures; threads averaged over the windows.
        return procs.indices.map { i in
            let rs = runs.map { $0[i] }
            func med(_ k: (Figures) -> Double) -> Double { percentile(rs.map(k), 50) }
            var f = Figures()
            f.cpu = med(\.cpu); f.wakeups = med(\.wakeups); f.involuntary = med(\.involuntary); f.writtenPerHour = med(\.writtenPerHour)
            f.rss = Int(med { Double($0.rss) }); f.pss = Int(med { Double($0.pss) }); f.privateDirty = Int(med { Double($0.privateDirty) })
            f.threadsEnded = rs.map(\.threadsEnded).reduce(0, +)
            f.dirtyByMapping = rs.last?.dirtyByMapping ?? [:]
            for r in rs {
                for (name, t) in r.threads {
                    f.threads[name, default: .init()].count = max(f.threads[name]?.count ?? 0, t.count)
                    f.threads[name]!.wakeups += t.wakeups / Double(rs.count)
                    f.threads[name]!.cpu += t.cpu / Double(rs.count)
                }
            }
            return f
        }
    }

    func run(cars: Int, fileSink: Bool, rootless: Bool) throws {
        let mpdVersion = (try? capture("/usr/bin/mpd", ["--version"]))?.split(separator: "\n").first.map(String.init) ?? "MPD"
        print("jamz-bench footprint: \(fixture); windows of \(fmtd(seconds, 0)) s × \(repeats) (median), \(fmtd(settle, 0)) s settling after each change")
        print("jamzd = \(jamzd) (--gpsd off, otherwise its defaults); peers: \(mpdVersion) with a config of its own; mpg123 \(((try? capture("/usr/bin/mpg123", ["--version"])) ?? "").split(separator: " ").dropFirst().first ?? "")")
        print("""
            sink: one PulseAudio null sink (a server of the bench's own; it paces every stream in real time by its clock), the same
              for all three players: jamzd through ALSA's pulse plugin (--output alsa:pulse, as PulseBench), MPD's "pulse" output,
              mpg123 -o pulse; each asks for the buffering it would on a car. MPD decodes MP3 with libmpg123 like jamzd and
              mpg123 (its mad plugin is switched off). The server's own figures while it serves each player are shown on the
              line below it (not added to the player's).\(fileSink ? """

              "jamzd file:" is jamzd on its own file: sink (paced by jamzd itself) into a FIFO the bench drains: the sink of the
              earlier figures; no peer has such a sink, so it is not compared.
            """ : "")
            convoy: \(cars > 0 ? "\(cars) jamzd in network namespaces on the same sink, in a group with the track on the playlist, played \(fmtd(settle, 0)) s and paused by the DJ (the idle convoy)" : "left out")
            wake-ups = context switches (voluntary + involuntary) of all threads from /proc/PID/task/*/status; CPU-s = utime+stime
            of /proc/PID/stat (10 ms ticks); memory from /proc/PID/smaps_rollup at the end of the window; disk = /proc/PID/io write_bytes.
            "invol." = the involuntary switches among them (preemptions: they grow with other load on the machine).
            """)
        if (try? capture("/usr/bin/stat", ["-f", "-c", "%T", work]))?.hasPrefix("tmpfs") == true {
            print("note: \(work) is on a tmpfs, so disk writes read 0: set TMPDIR to a folder on the disk")
        }
        let pulse = try PulseBench.startServer(work: work)
        defer { pulse.kill(SIGTERM); _ = pulse.wait() }
        var rows: [Row] = []

        // jamzd solo, on the common sink and (optionally) on its own FIFO sink: playing, then paused.
        for output in fileSink ? ["alsa:pulse", "file"] : ["alsa:pulse"] {
            var reader: FifoReader?
            var out = output
            if output == "file" {
                let fifo = work + "/sink.fifo"
                guard mkfifo(fifo, 0o600) == 0 else { throw BenchError("mkfifo: \(String(cString: strerror(errno)))") }
                reader = FifoReader(path: fifo, keepSamples: false)
                out = "file:" + fifo
            }
            let who = output == "file" ? "jamzd file:" : "jamzd"
            let (d, c) = try startJamzd("solo-\(output == "file" ? "file" : "pulse")", output: out)
            defer { d.kill(SIGTERM); _ = d.wait() }
            // The same track back to back, enough for every window.
            for _ in 0..<Int(((2 * settle + seconds * Double(repeats)) / 60).rounded(.up)) + 1 { try c.call("add", title) }
            try c.call("play")
            Thread.sleep(forTimeInterval: settle)
            try check(who, c.status().state == "playing", reader)
            var f = measure([d, pulse])
            rows.append(Row(phase: "playing", who: who, fig: f[0], server: reader == nil ? f[1] : nil))
            try c.call("pause")
            Thread.sleep(forTimeInterval: settle)
            try check(who, c.status().state == "paused", stream: false)
            f = measure([d, pulse])
            rows.append(Row(phase: "paused", who: who, fig: f[0], server: reader == nil ? f[1] : nil))
            _ = reader
        }

        // MPD: its own music dir, database, state file and socket; the same file on repeat.
        do {
            let dir = work + "/mpd"
            try FileManager.default.createDirectory(atPath: dir + "/music", withIntermediateDirectories: true)
            try FileManager.default.createDirectory(atPath: dir + "/playlists", withIntermediateDirectories: true)
            let name = (fixture as NSString).lastPathComponent
            try FileManager.default.copyItem(atPath: fixture, toPath: dir + "/music/" + name)
            let sock = dir + "/socket"
            try """
                music_directory    "\(dir)/music"
                playlist_directory "\(dir)/playlists"
                db_file            "\(dir)/db"
                state_file         "\(dir)/state"
                log_file           "\(dir)/log"
                bind_to_address    "\(sock)"
                auto_update        "no"
                zeroconf_enabled   "no"
                decoder {
                    plugin  "mad"
                    enabled "no"
                }
                audio_output {
                    type   "pulse"
                    name   "bench"
                    server "unix:\(work)/pulse/native"
                    sink   "jamzbench"
                }

                """.write(toFile: dir + "/mpd.conf", atomically: true, encoding: .utf8)
            let mpd = try Child.spawn("/usr/bin/mpd", ["--no-daemon", dir + "/mpd.conf"], log: dir + "/stderr.log")
            defer { mpd.kill(SIGTERM); _ = mpd.wait() }
            try waitFor("MPD's socket", timeout: 20) { FileManager.default.fileExists(atPath: sock) }
            func mpc(_ args: String...) throws {
                let c = try Child.spawn("/usr/bin/mpc", ["--host", sock] + args, log: dir + "/mpc.log")
                guard c.wait().status == 0 else { throw BenchError("mpc \(args.joined(separator: " ")) failed (see \(dir)/mpc.log, \(dir)/log)") }
            }
            try mpc("--wait", "update")
            try mpc("add", name)
            try mpc("repeat", "on")
            try mpc("play")
            Thread.sleep(forTimeInterval: settle)
            try check("MPD", (try capture("/usr/bin/mpc", ["--host", sock, "status"])).contains("[playing]"))
            var f = measure([mpd, pulse])
            rows.append(Row(phase: "playing", who: "MPD", fig: f[0], server: f[1]))
            try mpc("pause")
            Thread.sleep(forTimeInterval: settle)
            try check("MPD", (try capture("/usr/bin/mpc", ["--host", sock, "status"])).contains("[paused]"), stream: false)
            f = measure([mpd, pulse])
            rows.append(Row(phase: "paused", who: "MPD", fig: f[0], server: f[1]))
        }

        // mpg123 playing the file on a loop (it has no paused state to measure).
        do {
            let p = try Child.spawn("/usr/bin/mpg123", ["-q", "-o", "pulse", "--loop", "-1", fixture], log: work + "/mpg123.log")
            defer { p.kill(SIGTERM); _ = p.wait() }
            Thread.sleep(forTimeInterval: settle)
            try check("mpg123", true)
            let f = measure([p, pulse])
            rows.append(Row(phase: "playing", who: "mpg123", fig: f[0], server: f[1]))
        }

        // A convoy of `cars` jamzd in network namespaces on the common sink: in a group, the
        // playlist everywhere, played a moment and paused by the DJ; then measured all at once.
        if cars > 0 {
            try ConvoyBench.netns(netnsScript, "up", "\(cars)")
            defer { try? ConvoyBench.netns(netnsScript, "down") }
            var daemons: [Child] = []
            defer { for d in daemons { d.kill(SIGTERM); _ = d.wait() } }
            var clients: [ControlClient] = []
            for i in 1...cars {
                let (d, c) = try startJamzd("car\(i)", output: "alsa:pulse", netns: "jamz-car\(i)")
                daemons.append(d); clients.append(c)
            }
            let created = try clients[0].call("group", "create", "footprint")
            guard let code = created.data?["code"]?.string else { throw BenchError("no join code") }
            for c in clients.dropFirst() { try c.call("group", "join", code) }
            try waitFor("every car hears every other", timeout: 30) {
                clients.allSatisfy { c in (try? c.call(.peers))?.data?.array?.count == cars - 1 }
            }
            try clients[0].call("add", title)
            try waitFor("the playlist everywhere", timeout: 20) {
                clients.allSatisfy { c in (try? c.call(.queue))?.data?.array?.count == 1 }
            }
            try clients[0].call("play")
            Thread.sleep(forTimeInterval: settle)
            try clients[0].call("pause")
            try waitFor("every car paused", timeout: 20) { clients.allSatisfy { (try? $0.status().state) == "paused" } }
            Thread.sleep(forTimeInterval: settle)
            let f = measure(daemons + [pulse])
            for i in 0..<cars {
                rows.append(Row(phase: "convoy", who: "car\(i + 1)\(i == 0 ? " (DJ)" : "")", fig: f[i], server: i == cars - 1 ? f[cars] : nil))
            }
        }
        report(rows, cars: cars, rootless: rootless)
    }

    /// Starts jamzd (in network namespace `netns` if given) with the fixture imported.
    func startJamzd(_ name: String, output: String, netns: String? = nil) throws -> (Child, ControlClient) {
        let dir = work + "/" + name
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let args = ["--data-dir", dir + "/data", "--socket", dir + "/jamz.sock", "--output", output, "--log-level", "warning",
                    "--gpsd", "off", "--car-name", name]
        let d = try netns.map { try Child.spawn("/usr/sbin/ip", ["netns", "exec", $0, jamzd] + args, log: dir + "/jamzd.log") }
            ?? Child.spawn(jamzd, args, log: dir + "/jamzd.log")
        let c = ControlClient(path: dir + "/jamz.sock")
        do {
            try waitFor("\(name)'s socket", timeout: 30) { (try? c.status()) != nil }
            try c.call("import", fixture)
            try c.call("volume", "100")   // as MPD and mpg123: the samples unscaled
        } catch { d.kill(SIGKILL); _ = d.wait(); throw error }
        return (d, c)
    }

    /// Before a window: the player is in the state asked, and its stream is on the sink (or its
    /// FIFO is being drained).
    func check(_ who: String, _ state: Bool, stream: Bool = true, _ reader: FifoReader? = nil) throws {
        guard state else { throw BenchError("\(who) is not in the state to measure") }
        guard stream else { return }
        if let reader {
            guard reader.framesRead > 0 else { throw BenchError("\(who): nothing reached the FIFO") }
        } else {
            let inputs = try capture("/usr/bin/pactl", ["list", "short", "sink-inputs"])
            guard !inputs.isEmpty else { throw BenchError("\(who): no stream on the PulseAudio sink") }
        }
    }

    /// A short command's standard output.
    func capture(_ path: String, _ args: [String]) throws -> String {
        let out = work + "/capture.txt"
        let fd = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        guard fd >= 0 else { throw BenchError("cannot write \(out)") }
        let c = try Child.spawn(path, args, stdoutFD: fd)
        close(fd)
        _ = c.wait()
        return (try? String(contentsOfFile: out, encoding: .utf8)) ?? ""
    }

    func report(_ rows: [Row], cars: Int, rootless: Bool) {
        func mb(_ b: Int) -> String { fmtd(Double(b) / 1e6, 1) }
        func perHour(_ b: Double) -> String { b >= 1e6 ? fmtd(b / 1e6, 1) + " MB" : fmtd(b / 1e3, 0) + " kB" }
        print("")
        print("phase    process          CPU-s/60s  wake-ups/s (invol.)  disk writes/h    PSS MB  priv.dirty MB  RSS MB")
        var last = ""
        for r in rows {
            let phase = r.phase == last ? "" : r.phase
            last = r.phase
            let f = r.fig
            print(pad(phase, 9) + pad(r.who, 16) + lpad(fmtd(f.cpu, 3), 10) + lpad(fmtd(f.wakeups, 1), 12) + lpad("(\(fmtd(f.involuntary, 1)))", 9) + lpad(perHour(f.writtenPerHour), 15)
                  + lpad(mb(f.pss), 10) + lpad(mb(f.privateDirty), 15) + lpad(mb(f.rss), 8))
            if let s = r.server {
                print(pad("", 9) + pad("  + pulseaudio", 16) + lpad(fmtd(s.cpu, 3), 10) + lpad(fmtd(s.wakeups, 1), 12) + lpad("(\(fmtd(s.involuntary, 1)))", 9)
                      + "   (the sink's server meanwhile\(r.phase == "convoy" ? ", all cars" : ""))")
            }
        }
        if cars == 0 { print(rootless ? "convoy: left out (network namespaces need root)" : "convoy: left out (--cars 0)") }

        // The issue's targets, for jamzd on the common sink.
        func row(_ phase: String, _ who: String) -> Figures? { rows.first { $0.phase == phase && $0.who == who }?.fig }
        func verdict(_ ok: Bool) -> String { ok ? "PASS" : "MISS" }
        print("")
        print("targets (jamzd on the common sink; a benchmark prints, it does not fail):")
        if let p = row("paused", "jamzd") {
            print("  paused solo, wake-ups/s:              \(lpad(fmtd(p.wakeups, 1), 9))  <= 2            \(verdict(p.wakeups <= 2))")
            print("  paused solo, CPU-s per 60 s:          \(lpad(fmtd(p.cpu, 3), 9))  <= 0.01         \(verdict(p.cpu <= 0.01))")
        }
        if let j = row("playing", "jamzd"), let m = row("playing", "MPD") {
            print("  playing, CPU-s per 60 s:              \(lpad(fmtd(j.cpu, 3), 9))  <= 0.5 × MPD's \(fmtd(m.cpu, 3)) = \(fmtd(0.5 * m.cpu, 3))  \(verdict(j.cpu <= 0.5 * m.cpu))  (jamzd/MPD \(fmtd(j.cpu / m.cpu, 2)))")
        }
        let convoy = rows.filter { $0.phase == "convoy" }.map(\.fig)
        if let worst = convoy.map(\.wakeups).max() {
            print("  idle in a \(cars)-car convoy, wake-ups/s per car (max): \(lpad(fmtd(worst, 1), 7))  <= 20  \(verdict(worst <= 20))  (cars: \(convoy.map { fmtd($0.wakeups, 1) }.joined(separator: ", ")))")
        }
        let solo = rows.filter { $0.who == "jamzd" }.map(\.fig)
        if let dirty = solo.map(\.privateDirty).max() {
            print("  private dirty, max of jamzd's windows: \(lpad(mb(dirty), 8)) MB  <= 5 MB        \(verdict(Double(dirty) <= 5e6))")
        }
        if let j = row("playing", "jamzd"), let m = row("playing", "MPD") {
            print("  RSS playing:                          \(lpad(mb(j.rss), 8)) MB  < MPD's \(mb(m.rss)) MB    \(verdict(j.rss < m.rss))")
        }
        if let j = row("playing", "jamzd") {
            print("  (not a target) disk writes playing:   \(perHour(j.writtenPerHour))/h; MPD \(perHour(row("playing", "MPD")?.writtenPerHour ?? 0))/h")
        }

        // Where jamzd's wake-ups come from.
        print("")
        print("jamzd's wake-ups by thread (name ×threads seen: wake-ups/s, CPU-s per 60 s from schedstat; busiest first, under 0.1/s left out).")
        print("Names are the kernel's last 15 characters: \"oot.default-qos\" and \"-qos.overcommit\" are libdispatch's worker threads")
        print("(com.apple.root.*-qos[.overcommit]: Swift concurrency's global executor and Dispatch queues run there), \"threaded-ml\" is")
        print("libpulse's mainloop thread (ALSA's pulse plugin), \"NIO-…\" SwiftNIO's event loops, \"jamz-…\" jamzd's own threads.")
        for r in rows where r.who.hasPrefix("jamzd") || r.phase == "convoy" {
            let ts = r.fig.threads.sorted { $0.value.wakeups > $1.value.wakeups }
            let busy = ts.filter { $0.value.wakeups >= 0.1 }
            print("  \(r.phase), \(r.who): " + (busy.isEmpty ? "none" : busy.map { name, t in
                "\(name)\(t.count > 1 ? " ×\(t.count)" : "") \(fmtd(t.wakeups, 1))/s \(fmtd(t.cpu, 3)) s"
            }.joined(separator: "; ")) + (r.fig.threadsEnded > 0 ? " (\(r.fig.threadsEnded) thread\(r.fig.threadsEnded == 1 ? "" : "s") ended within the window)" : ""))
        }
        print("")
        print("jamzd's private dirty by mapping (MB, the largest five; \"anonymous\": malloc arenas, thread stacks, the runtime's own):")
        for r in rows where r.who.hasPrefix("jamzd") || r.phase == "convoy" {
            let top = r.fig.dirtyByMapping.sorted { $0.value > $1.value }.prefix(5)
            print("  \(r.phase), \(r.who): " + top.map { "\($0.key) \(fmtd(Double($0.value) / 1e6, 1))" }.joined(separator: "; "))
        }
    }
}

private func lpad(_ s: String, _ n: Int) -> String { s.count >= n ? " " + s : String(repeating: " ", count: n - s.count) + s }
