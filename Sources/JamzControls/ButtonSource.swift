import JamzCore
import Synchronization

/// What a control input reports, named as the board file names it, at a time on the daemon's
/// monotonic clock.
public struct ControlEvent: Sendable, Equatable {
    public enum Change: Sendable, Equatable {
        /// A button pressed, a switch (ACC) on, a GPIO line active.
        case pressed
        case released
        /// EV_REL counts of a rotary encoder.
        case relative(Int)
    }
    public var name: String
    public var change: Change
    public var time: Nanos
    public init(name: String, change: Change, time: Nanos) { self.name = name; self.change = change; self.time = time }
}

/// How a device's timestamps become the daemon's clock: `fromRaw` converts a kernel
/// CLOCK_MONOTONIC time, `now` reads the clock (for devices whose timestamps are not monotonic).
public struct ReaderClock: Sendable {
    public let now: @Sendable () -> Nanos
    public let fromRaw: @Sendable (Nanos) -> Nanos
    public init(now: @escaping @Sendable () -> Nanos, fromRaw: @escaping @Sendable (Nanos) -> Nanos) {
        self.now = now; self.fromRaw = fromRaw
    }
}

/// A device's state for `jamz status`.
public struct SourceReport: Sendable, Equatable, Codable {
    /// What the board file names ("input TrafficJamz Buttons", "gpio DJ_BTN").
    public var device: String
    /// "open", "missing" or "stopped".
    public var state: String
    /// Where it was found (/dev/input/event3, gpiochip0 line 17).
    public var path: String?
    /// Why it is missing, if it is.
    public var problem: String?
    public var opens: Int = 0
    public var losses: Int = 0
    public var events: Int = 0
    public var badRecords: Int = 0
    public init(device: String, state: String) { self.device = device; self.state = state }
}

/// The device boundary: a source of control events that opens its device, reopens it when it
/// comes back, and delivers events on its own thread (never the concurrency pool).
public protocol ButtonSource: AnyObject, Sendable {
    /// Starts reading; `sink` is called on the source's thread, in event order.
    func start(_ sink: @escaping @Sendable (ControlEvent) -> Void)
    /// Stops reading and closes the device (returns at once; the thread, woken by the stop, ends
    /// as soon as it runs).
    func stop()
    var report: SourceReport { get }
}

/// The state a reader shares with the rest: its report, its stop, and (for tests and figures)
/// its thread and how many times it looked for its device.
final class ReaderState: Sendable {
    let report: Mutex<SourceReport>
    let stop = StopSignal()
    let thread = Mutex<Int32>(0)
    let looks = Mutex(0)
    init(device: String) { report = Mutex(SourceReport(device: device, state: "missing")) }
    var isStopped: Bool { stop.isStopped }
    func update(_ f: (inout SourceReport) -> Void) { report.withLock { f(&$0) } }
}
