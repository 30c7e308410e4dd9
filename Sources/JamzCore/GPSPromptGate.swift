/// When the GPS prompts are said (issue 17), decided on the GPS's own reports, no timer: a fix
/// lost after a steady one says "no GPS"; a fix held `holdFor` after that says "GPS is back".
/// A flapping fix says "no GPS" once, and "GPS is back" only once it has held. The first
/// steady fix after start says nothing (there was nothing to come back from).
public struct GPSPromptGate: Sendable, Equatable {
    public var holdFor: Nanos
    /// Since when the fix is held (nil: no fix).
    public private(set) var fixSince: Nanos?
    /// Whether "has a fix" is what was last said (nil: no steady fix yet).
    public private(set) var fixSaid: Bool?

    public init(holdFor: Nanos = 10 * nanosPerSecond) { self.holdFor = holdFor }

    /// The receiver has no fix any more.
    public mutating func lost() -> Prompt? {
        fixSince = nil
        guard fixSaid == true else { return nil }
        fixSaid = false
        return .noGPS
    }

    /// A fix taken at `mono` (this car's monotonic clock).
    public mutating func fix(at mono: Nanos) -> Prompt? {
        guard fixSaid != true else { return nil }
        let since = fixSince ?? mono
        fixSince = since
        guard mono - since >= holdFor else { return nil }
        let wasLost = fixSaid == false
        fixSaid = true
        return wasLost ? .gpsBack : nil
    }
}
