/// The ignition (ACC sense) as the daemon should react to it. Pure: events and the time in,
/// actions out; the caller calls `tick` at `nextDeadline`.
///
/// ACC off fades out and saves at once, then waits a grace period: an ACC blip while cranking
/// the engine resumes at once when ACC comes back within it; after it, the unit powers off.
public struct IgnitionPolicy: Sendable, Equatable {
    public enum Action: Sendable, Equatable {
        /// Fade out and save the state (ACC just went off).
        case fadeOutAndSave
        /// ACC came back within the grace period: resume the music at once.
        case resume
        /// The grace period passed with ACC off: power the unit off.
        case powerOff
    }

    public enum State: Sendable, Equatable {
        case unknown, on
        case off(since: Nanos)
        case poweringOff
    }

    public var grace: Nanos
    public private(set) var state: State = .unknown
    public private(set) var blips = 0

    public init(grace: Nanos = 60 * nanosPerSecond) { self.grace = grace }

    public var accOn: Bool? {
        switch state {
        case .unknown: nil
        case .on: true
        case .off, .poweringOff: false
        }
    }

    /// ACC sensed on (an edge, or the level read when the input opens).
    public mutating func on(at t: Nanos) -> Action? {
        switch state {
        case .on: return nil
        case .unknown: state = .on; return nil
        case .off:
            state = .on; blips += 1
            return .resume
        case .poweringOff:
            // Too late to stay off for sure, but while the unit still runs the music comes back.
            state = .on
            return .resume
        }
    }

    /// ACC sensed off.
    public mutating func off(at t: Nanos) -> Action? {
        switch state {
        case .off, .poweringOff: return nil
        case .on, .unknown:
            state = .off(since: t)
            return .fadeOutAndSave
        }
    }

    public mutating func tick(at t: Nanos) -> Action? {
        guard case .off(let since) = state, t - since >= grace else { return nil }
        state = .poweringOff
        return .powerOff
    }

    public var nextDeadline: Nanos? {
        if case .off(let since) = state { return since + grace }
        return nil
    }
}
