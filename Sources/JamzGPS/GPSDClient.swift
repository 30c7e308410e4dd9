import CGPS
import Foundation
import JamzPlatform
import Glibc
import JamzCore
import Logging
import Synchronization

/// gpsd through libgps. All libgps calls (gps_open, gps_stream, gps_waiting, gps_read,
/// gps_close) run on one dedicated thread, never on the concurrency pool; the rest of the
/// daemon sees `events` and `status`. When gpsd is absent, stops or restarts, the thread
/// reports `.disconnected` and retries with backoff (0.5 s doubling to 10 s by default).
///
/// gpsd sends several TPV reports per GPS second (one per NMEA sentence that brought news);
/// the client merges those of one second and validates the result once (`FixValidator`), so a
/// second whose RMC carried an absurd speed is rejected whole. A 3D fix without an altitude is
/// reported as 2D (gpsd 3.22 keeps mode 3 when an NMEA receiver drops to 2D).
public final class GPSDClient: GPSSource, @unchecked Sendable {
    // @unchecked: shared state is in `shared` (a Mutex) and `wake` (an NSCondition guarding
    // `stopping`); the libgps handle and the merge state belong to the reader thread alone.
    public struct Config: Sendable, Equatable {
        public var host = "localhost"
        public var port = 2947
        public var backoffStart: Nanos = 500_000_000
        public var backoffMax: Nanos = 10 * nanosPerSecond
        /// How long the reader waits for data before flushing a pending GPS second.
        public var idleFlush: Nanos = 200_000_000
        /// Events buffered for a slow consumer before the oldest are dropped.
        public var eventBuffer = 10_000
        public init() {}
        public init(host: String, port: Int) { self.host = host; self.port = port }
    }

    public let config: Config
    public let events: AsyncStream<GPSEvent>
    private let continuation: AsyncStream<GPSEvent>.Continuation
    private let clock: any HostClock
    private let logger: Logger
    private let shared: Mutex<GPSStatus>
    private let wake = NSCondition()
    private var stopping = false      // guarded by wake
    private var started = false       // guarded by wake

    public init(config: Config = Config(), clock: any HostClock, logger: Logger = Logger(label: "jamz.gps")) {
        self.config = config
        self.clock = clock
        self.logger = logger
        (events, continuation) = AsyncStream.makeStream(of: GPSEvent.self, bufferingPolicy: .bufferingNewest(config.eventBuffer))
        shared = Mutex(GPSStatus(connection: .disconnected(reason: "not started"), mode: .none, latestFix: nil,
                                 latestTime: nil, counters: GPSCounters()))
    }

    public var status: GPSStatus { shared.withLock { $0 } }

    /// Starts the reader thread. Once: a stopped client is not restarted (make a new one).
    public func start() {
        wake.lock(); defer { wake.unlock() }
        guard !started else { return }
        started = true
        NamedThread.start("jamz-gps") { [self] in run() }
    }

    /// Asks the reader to stop: it closes the connection within `idleFlush` and ends `events`.
    public func stop() {
        wake.lock(); stopping = true; wake.broadcast(); wake.unlock()
        if !started { continuation.finish() }
    }

    private var isStopping: Bool { wake.lock(); defer { wake.unlock() }; return stopping }

    private func emit(_ e: GPSEvent) {
        if case .dropped = continuation.yield(e) { shared.withLock { $0.counters.droppedEvents += 1 } }
    }

    private func setConnection(_ c: GPSConnection) {
        let changed = shared.withLock { s -> Bool in
            guard s.connection != c else { return false }
            s.connection = c
            return true
        }
        if changed { emit(.connection(c)) }
    }

    // MARK: - The reader thread

    private func run() {
        var backoff = config.backoffStart
        var failedOnce = false
        while !isStopping {
            setConnection(.connecting)
            guard let gps = jamz_gps_new() else { fatalError("out of memory for gps_data_t") }
            defer { jamz_gps_free(gps) }
            errno = 0
            let rc = gps_open(config.host, String(config.port), gps)
            if rc != 0 {
                let why = String(cString: gps_errstr(errno))
                shared.withLock { $0.counters.connectFailures += 1 }
                if !failedOnce { logger.warning("gpsd at \(config.host):\(config.port) not reachable (\(why)); retrying with backoff up to \(config.backoffMax / nanosPerSecond) s") }
                failedOnce = true
                setConnection(.disconnected(reason: "cannot connect to gpsd at \(config.host):\(config.port): \(why)"))
                sleep(backoff)
                backoff = min(backoff * 2, config.backoffMax)
                continue
            }
            _ = jamz_gps_watch(gps)
            shared.withLock { $0.counters.connections += 1 }
            logger.notice("connected to gpsd at \(config.host):\(config.port)")
            failedOnce = false
            setConnection(.connected)
            let reason = readLoop(gps, resetBackoff: { backoff = self.config.backoffStart })
            _ = gps_close(gps)
            if let reason {
                logger.warning("gpsd connection lost: \(reason)")
                setConnection(.disconnected(reason: reason))
                // Without gpsd there is no fix, whatever the receiver last said.
                if shared.withLock({ s -> Bool in defer { s.mode = .none }; return s.mode != .none }) {
                    emit(.mode(.none, at: clock.now()))
                }
                sleep(backoff)
                backoff = min(backoff * 2, config.backoffMax)
            }
        }
        setConnection(.disconnected(reason: "stopped"))
        continuation.finish()
    }

    /// Waits on the stop condition for `ns` (so `stop()` is prompt).
    private func sleep(_ ns: Nanos) {
        wake.lock()
        if !stopping { _ = wake.wait(until: Date(timeIntervalSinceNow: Double(ns) / 1e9)) }
        wake.unlock()
    }

    /// Reads until gpsd goes away (returns why) or `stop()` (returns nil).
    private func readLoop(_ gps: UnsafeMutablePointer<gps_data_t>, resetBackoff: () -> Void) -> String? {
        var merger = EpochMerger()
        var validator = FixValidator()
        var report = jamz_gps_report()
        let waitMicros = Int32(config.idleFlush / 1000)
        defer { flush(&merger, &validator) }
        while !isStopping {
            errno = 0
            guard gps_waiting(gps, waitMicros) else {
                if errno != 0 && errno != EINTR && errno != EAGAIN { return "waiting for gpsd: \(String(cString: strerror(errno)))" }
                flush(&merger, &validator)
                noteCPU()
                continue
            }
            errno = 0
            if gps_read(gps, nil, 0) < 0 {
                return errno != 0 ? "gpsd read failed: \(String(cString: strerror(errno)))" : "gpsd closed the connection"
            }
            resetBackoff()
            jamz_gps_extract(gps, &report)
            defer { noteCPU() }
            let mono = clock.now()
            if report.has_toff != 0 || report.has_pps != 0 { timeReport(report, mono: mono) }
            if report.has_mode != 0 {
                let late = merger.late
                if let done = merger.add(report, mono: mono) { deliver(done, &validator) }
                if merger.late != late { shared.withLock { $0.counters.lateReports += 1 } }
            }
        }
        return nil
    }

    private func noteCPU() {
        var ts = timespec()
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts)
        let cpu = Nanos(ts.tv_sec) * nanosPerSecond + Nanos(ts.tv_nsec)
        shared.withLock { $0.counters.readerCPU = cpu }
    }

    private func flush(_ merger: inout EpochMerger, _ validator: inout FixValidator) {
        if let done = merger.flush() { deliver(done, &validator) }
    }

    private func timeReport(_ r: jamz_gps_report, mono: Nanos) {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        let wallNow = Nanos(ts.tv_sec) * nanosPerSecond + Nanos(ts.tv_nsec)
        var reports: [GPSTimeReport] = []
        if r.has_toff != 0 {
            reports.append(GPSTimeReport(kind: .toff, gpsTime: r.toff_real_sec * nanosPerSecond + r.toff_real_nsec,
                                         hostTime: r.toff_clock_sec * nanosPerSecond + r.toff_clock_nsec,
                                         receivedMono: mono, receivedWall: wallNow))
        }
        if r.has_pps != 0 {
            reports.append(GPSTimeReport(kind: .pps, gpsTime: r.pps_real_sec * nanosPerSecond + r.pps_real_nsec,
                                         hostTime: r.pps_clock_sec * nanosPerSecond + r.pps_clock_nsec,
                                         receivedMono: mono, receivedWall: wallNow))
        }
        for t in reports {
            shared.withLock { s in
                s.latestTime = t
                if t.kind == .pps { s.counters.ppsReports += 1 } else { s.counters.toffReports += 1 }
            }
            emit(.time(t))
        }
    }

    private func deliver(_ epoch: EpochMerger.Epoch, _ validator: inout FixValidator) {
        switch epoch {
        case .untimed:
            shared.withLock { $0.counters.untimed += 1 }
        case .noFix(let mono):
            let changed = shared.withLock { s -> Bool in
                s.counters.noFixEpochs += 1
                defer { s.mode = .none }
                return s.mode != .none
            }
            if changed { emit(.mode(.none, at: mono)) }
        case .fix(let fix):
            if let why = validator.check(fix) {
                let first = shared.withLock { s -> Bool in
                    s.counters.rejected[why.key, default: 0] += 1
                    return s.counters.rejected[why.key] == 1
                }
                if first { logger.warning("GPS fix ignored: \(why) (further ones counted as gps.rejected.\(why.key))") }
                else { logger.debug("GPS fix ignored: \(why)") }
                return
            }
            let changed = shared.withLock { s -> Bool in
                s.counters.fixes += 1
                s.latestFix = fix
                defer { s.mode = fix.mode }
                return s.mode != fix.mode
            }
            if changed { emit(.mode(fix.mode, at: fix.mono)) }
            emit(.fix(fix))
        }
    }
}
