import ArgumentParser
import Foundation
import Glibc
import JamzAudio
import JamzCore
import JamzGPS
import JamzStore
import JamzTestSupport
import Logging

/// `jamz-bench gps`: the GPS path's figures. A real gpsd (3.22) fed with the committed highway
/// log (`GPSDRig`: gpsd reading a `tcp://` NMEA source), the real `GPSDClient`, `LocationHistory`
/// in a real SQLite file (WAL, synchronous = FULL).
struct GPSBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "gps",
        abstract: "GPS: fixes/s gpsd → stored, CPU per 10 min of 1 Hz fixes, history size after an 8-hour drive.")

    @Flag(help: "Measure CPU over a real 10-minute 1 Hz stream instead of a time-compressed one.") var realtime = false
    @Option(help: "Hours of the simulated drive for the history size.") var hours: Double = 8
    @Option(help: "Cars whose history is kept (this one + members heard).") var members: Int = 1

    func run() throws {
        LoggingSystem.bootstrap { _ in SwiftLogNoOpLogHandler() }
        print("jamz-bench gps: real gpsd 3.22 (tcp:// NMEA source), GPSDClient, LocationHistory (SQLite WAL, synchronous=FULL)\n")
        try throughput(batch: 1)
        try throughput(batch: 64)
        try cpu()
        try historySize()
    }

    struct Run {
        var fixes = 0
        var seconds = 0.0
        var clientCPU = 0.0
        var processCPU = 0.0
    }

    /// Feeds `log` through gpsd at `pace` s/epoch; the consumer stores every fix, `batch` fixes a
    /// transaction (1: as a daemon at 1 Hz does).
    func feed(_ log: String, pace: Double, batch: Int) throws -> Run {
        let dir = Fixtures.tempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        let store = try Store.open(path: dir.appendingPathComponent("jamz.sqlite").path).store
        defer { try? store.close() }
        let rig = try GPSDRig(log: log, pace: pace)
        defer { rig.stop() }
        var c = GPSDClient.Config(host: "127.0.0.1", port: rig.gpsdPort)
        c.backoffMax = nanosPerSecond
        let gps = GPSDClient(config: c, clock: SystemClock())
        let me = MemberID(1)
        let lastStored = LockedBox<Int64>(0), stored = LockedBox(0)
        let done = DispatchSemaphore(value: 0)
        Task {
            var pending: [Fix] = []
            func flush() async throws {
                guard !pending.isEmpty else { return }
                let fixes = pending
                pending.removeAll()
                try await store.locations.append(session: 1, fixes.map { (me, $0) })
                let now = monotonicNow()
                lastStored.update { $0 = now }
                stored.update { $0 += fixes.count }
            }
            for await e in gps.events {
                if case .fix(let f) = e {
                    pending.append(f)
                    if pending.count >= batch { try? await flush() }
                }
            }
            try? await flush()
            done.signal()
        }
        gps.start()
        try waitFor("gpsd connection", timeout: 20) { gps.status.connection == .connected }
        let cpu0 = gps.status.counters.readerCPU
        var ru0 = rusage(); getrusage(RUSAGE_SELF.rawValue, &ru0)
        let t0 = monotonicNow()
        rig.go()
        debug("fed \(log), waiting for the feeder")
        try rig.waitSent(timeout: 1200)
        debug("feeder done; fixes \(gps.status.counters.fixes), stored \(stored.value)")
        // The feeder is done; wait until nothing more arrives and every full batch is stored.
        var last = -1
        while gps.status.counters.fixes != last || stored.value < gps.status.counters.fixes / batch * batch {
            last = gps.status.counters.fixes
            usleep(300_000)
        }
        let cpu1 = gps.status.counters.readerCPU
        var ru1 = rusage(); getrusage(RUSAGE_SELF.rawValue, &ru1)
        let storedByNow = stored.value, end = lastStored.value
        gps.stop()
        done.wait()
        debug("stored \(storedByNow) before the client stopped, \(stored.value) in all")
        return Run(fixes: storedByNow, seconds: Double(end - t0) / 1e9, clientCPU: Double(cpu1 - cpu0) / 1e9,
                   processCPU: seconds(ru1) - seconds(ru0))
    }

    func debug(_ s: String) {
        if ProcessInfo.processInfo.environment["JAMZ_BENCH_DEBUG"] != nil { FileHandle.standardError.write(Data((s + "\n").utf8)) }
    }

    func seconds(_ r: rusage) -> Double {
        Double(r.ru_utime.tv_sec) + Double(r.ru_utime.tv_usec) / 1e6 + Double(r.ru_stime.tv_sec) + Double(r.ru_stime.tv_usec) / 1e6
    }

    func throughput(batch: Int) throws {
        let r = try feed("highway.nmea", pace: 0, batch: batch)
        print("end to end, gpsd → GPSDClient → stored (\(batch == 1 ? "one transaction per fix" : "\(batch) fixes per transaction")), feeder as fast as it can:")
        print("  \(r.fixes) fixes in \(fmtd(r.seconds, 2)) s = \(fmtd(Double(r.fixes) / r.seconds, 0)) fixes/s (from the feeder's first epoch to the last commit)")
        fflush(nil)
        print("  CPU: client thread \(fmtd(r.clientCPU, 3)) s, whole benchmark process \(fmtd(r.processCPU, 3)) s\n")
    }

    func cpu() throws {
        // 600 fixes at 1 Hz is 10 minutes. Time-compressed: 0.02 s between epochs.
        let pace = realtime ? 1.0 : 0.02
        let r = try feed("convoy-car1.nmea", pace: pace, batch: 1)
        let per600 = 600 / Double(max(r.fixes, 1))
        print("CPU per 10 min of a 1 Hz fix stream (\(realtime ? "real time" : "time-compressed 50×: 20 ms between epochs"), \(r.fixes) fixes, scaled to 600):")
        print("  client thread (libgps read, JSON parse, merge, validate): \(fmtd(r.clientCPU * per600, 3)) s")
        print("  whole process incl. one SQLite transaction per fix: \(fmtd(r.processCPU * per600, 3)) s"
              + " = \(fmtd(r.processCPU * per600 / 600 * 100, 3)) % of one core at 1 Hz")
        if !realtime {
            print("  (at 1 Hz the reader also wakes 5×/s when idle; `--realtime` measures the real 10 minutes)")
        }
        print("")
        fflush(nil)
    }

    /// A synthetic drive written as the daemon would (one transaction a second per car),
    /// compacted every 10 simulated minutes with the default policy.
    func historySize() throws {
        let dir = Fixtures.tempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("jamz.sqlite").path
        let store = try Store.open(path: path).store
        let policy = HistoryPolicy()
        let seconds = Int(hours * 3600)
        var rng = SplitMix64(seed: 8)
        var point = GeoPoint(latitude: 45.7578, longitude: 4.8320)
        var heading = 170.0
        let start: Nanos = 1_778_745_600 * nanosPerSecond
        var written = 0
        let t0 = monotonicNow()
        for s in 0..<seconds {
            // 50 min highway (32 m/s), 5 min town (12 m/s), 5 min stopped, repeated.
            let phase = s % 3600
            let speed = phase < 3000 ? 32.0 : (phase < 3300 ? 12.0 : 0.0)
            heading = Geo.normalize(heading + (Double(rng.next() % 1000) / 1000 - 0.5) * (speed > 20 ? 0.5 : 8))
            point = Geo.destination(from: point, bearing: heading, distance: speed)
            let wall = start + Nanos(s) * nanosPerSecond
            let fixes = (0..<members).map { m in
                Fix(mono: Nanos(s) * nanosPerSecond, wall: wall,
                    point: Geo.destination(from: point, bearing: heading + 180, distance: Double(m) * 400),
                    altitude: 170, mode: .threeD, speed: speed, track: heading, eph: 4, epv: 8)
            }
            try store.locations.append(session: 1, fixes.enumerated().map { (MemberID(UInt64($0.offset + 1)), $0.element) })
            written += fixes.count
            if s % 600 == 599 { _ = try store.locations.compact(now: wall, policy: policy) }
        }
        let elapsed = Double(monotonicNow() - t0) / 1e9
        let rows = try store.locations.count()
        try store.checkpoint()
        try store.close()
        let size = (try FileManager.default.attributesOfItem(atPath: path)[.size] as? Int) ?? 0
        print("history after a simulated \(fmtd(hours, 1))-hour drive (1 Hz, \(members) car\(members == 1 ? "" : "s"); 50 min highway / 5 min town / 5 min stopped per hour),")
        print("default policy (last hour whole; older one point per 30 s or 100 m; \(policy.retention / 86_400 / nanosPerSecond) days), compacted every 10 min:")
        print("  \(written) fixes written, \(rows) rows kept (\(fmtd(Double(rows) / Double(max(written, 1)) * 100, 1)) %), database \(fmtd(Double(size) / 1_048_576, 2)) MiB after checkpoint")
        print("  (\(fmtd(Double(size) / Double(max(rows, 1)), 0)) bytes/row incl. indexes; written in \(fmtd(elapsed, 1)) s: \(fmtd(Double(written) / elapsed, 0)) fix transactions/s)")
    }
}

/// A value shared between the consumer task and the benchmark's thread.
final class LockedBox<T: Sendable>: @unchecked Sendable {
    // @unchecked: `v` is only touched under `lock`.
    private let lock = NSLock()
    private var v: T
    init(_ v: T) { self.v = v }
    var value: T { lock.withLock { v } }
    func update(_ f: (inout T) -> Void) { lock.withLock { f(&v) } }
}
