import JamzCore

/// The GPS device boundary: a source of position, mode, time and connection events. One real
/// implementation (`GPSDClient`, gpsd through libgps); tests feed a real gpsd.
public protocol GPSSource: AnyObject, Sendable {
    /// Every event, in order. One consumer; the stream ends after `stop()`.
    var events: AsyncStream<GPSEvent> { get }
    func start()
    func stop()
    /// What the source knows right now (for status).
    var status: GPSStatus { get }
}

public enum GPSEvent: Sendable, Equatable {
    /// The link to gpsd changed.
    case connection(GPSConnection)
    /// A validated fix (2D or 3D).
    case fix(Fix)
    /// The receiver's mode changed (e.g. into a tunnel: `.none`), at our mono time `at`.
    case mode(FixMode, at: Nanos)
    /// A TOFF or PPS report for the sync core (`GPSTimeReport.wallClockSample`).
    case time(GPSTimeReport)
}

public enum GPSConnection: Sendable, Equatable, CustomStringConvertible {
    case connecting
    case connected
    /// Not connected; `reason` says why, the client retries with backoff.
    case disconnected(reason: String)
    public var description: String {
        switch self {
        case .connecting: "connecting"
        case .connected: "connected"
        case .disconnected(let r): "disconnected (\(r))"
        }
    }
    public var isConnected: Bool { self == .connected }
}

/// Counters a source keeps (all since start). `rejected` is keyed by `FixRejection.key`.
public struct GPSCounters: Sendable, Equatable {
    /// Fixes delivered.
    public var fixes = 0
    /// Epochs (one GPS second) without a fix.
    public var noFixEpochs = 0
    /// Fixes not used, by reason; never delivered, never stored.
    public var rejected: [String: Int] = [:]
    /// TPV reports without a time (gpsd before it knows the date): ignored.
    public var untimed = 0
    /// Reports of a second already delivered (a slow serial line): dropped, not a fault.
    public var lateReports = 0
    /// TOFF and PPS reports seen.
    public var toffReports = 0
    public var ppsReports = 0
    /// Successful connections to gpsd (1 + reconnections) and failed attempts.
    public var connections = 0
    public var connectFailures = 0
    /// Events the consumer was too slow to take (the stream keeps the newest).
    public var droppedEvents = 0
    /// CPU time the reader thread has used (CLOCK_THREAD_CPUTIME_ID), ns.
    public var readerCPU: Nanos = 0
    public var rejectedTotal: Int { rejected.values.reduce(0, +) }
}

public struct GPSStatus: Sendable, Equatable {
    public var connection: GPSConnection
    public var mode: FixMode
    /// The last validated fix (check `Fix.isStale(at:)` before calling it "where we are").
    public var latestFix: Fix?
    /// The last time report, if gpsd sent any.
    public var latestTime: GPSTimeReport?
    public var counters: GPSCounters

    /// The latest fix if it is fresh at our mono time `now` (see `Fix.staleAfter`), else nil.
    public func currentFix(at now: Nanos) -> Fix? {
        guard let f = latestFix, !f.isStale(at: now) else { return nil }
        return f
    }
}
