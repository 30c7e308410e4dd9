/// The data of `jamz where` and `jamz convoy` (the other replies: ControlProtocol.swift).
/// `jamz where --json`.
public struct WhereReport: Codable, Sendable {
    /// gpsd link: "connected", "connecting", "disconnected (why)" or "off".
    public var gpsd: String
    /// The receiver's mode now: "3D", "2D", "no fix".
    public var mode: String
    public var fixMode: String?
    public var latitude: Double?
    public var longitude: Double?
    public var altitude: Double?
    public var speedKmh: Double?
    public var heading: Double?
    public var accuracyM: Double?
    /// Seconds since the last fix; stale after 3 s.
    public var ageSeconds: Double?
    public var stale: Bool
    /// GPS time of the last fix (UTC, ISO 8601).
    public var time: String?
    /// What the GPS says about this car's wall clock.
    public var clock: String
    public var clockErrorMicros: Double?
    public var ppsDisciplined: Bool?
    public var fixes: Int
    public var rejected: Int
    /// The rest is nil until there is a fix or GPS time.
    public init(gpsd: String, mode: String, stale: Bool, clock: String, fixes: Int, rejected: Int) {
        self.gpsd = gpsd; self.mode = mode; self.stale = stale; self.clock = clock; self.fixes = fixes; self.rejected = rejected
    }
}

public struct ConvoyMemberReport: Codable, Sendable {
    public var member: String
    public var name: String
    /// Metres from us (their last position carried to the time of our fix); nil when either
    /// car has no fresh fix.
    public var distanceM: Double?
    /// Degrees from true north, from us to them.
    public var bearing: Double?
    public var speedKmh: Double?
    /// Along our heading: "ahead", "behind", "abreast", or "unknown" (stopped, no fix).
    public var position: String
    public var lastHeardSeconds: Double
    public var fixAgeSeconds: Double?
    public var latitude: Double?
    public var longitude: Double?
    public var together: Bool
    /// The rest is nil until that car's fix is heard.
    public init(member: String, name: String, position: String, lastHeardSeconds: Double, together: Bool) {
        self.member = member; self.name = name; self.position = position; self.lastHeardSeconds = lastHeardSeconds; self.together = together
    }
}

/// `jamz convoy --json`.
public struct ConvoyReport: Codable, Sendable {
    public var haveFix: Bool
    public var radiusM: Double
    public var members: [ConvoyMemberReport]
    /// Recent joins and departures of the convoy area, oldest first.
    public var changes: [String]
    public init(haveFix: Bool, radiusM: Double, members: [ConvoyMemberReport], changes: [String]) {
        self.haveFix = haveFix; self.radiusM = radiusM; self.members = members; self.changes = changes
    }
}
