/// What the receiver can do right now.
public enum FixMode: Int, Sendable, Codable, Comparable, CustomStringConvertible {
    /// No position (a tunnel, a cold start): gpsd's MODE_NO_FIX or MODE_NOT_SEEN.
    case none = 1
    /// Latitude and longitude, no altitude.
    case twoD = 2
    /// Latitude, longitude and altitude.
    case threeD = 3
    public static func < (a: FixMode, b: FixMode) -> Bool { a.rawValue < b.rawValue }
    public var description: String { self == .none ? "no fix" : (self == .twoD ? "2D" : "3D") }
}

/// One position report of a car, as its GPS gave it.
public struct Fix: Sendable, Equatable, Codable {
    /// When the report reached the host, on the car's monotonic clock (stamped by the reader).
    public var mono: Nanos
    /// The GPS time of the fix: UTC nanoseconds since the Unix epoch.
    public var wall: Nanos
    public var point: GeoPoint
    /// Metres above the WGS84 ellipsoid (3D fixes only).
    public var altitude: Double?
    public var mode: FixMode
    /// Speed over ground, m/s.
    public var speed: Double?
    /// Course over ground, degrees from true north.
    public var track: Double?
    /// Horizontal / vertical position error estimates, metres (gpsd's eph / epv).
    public var eph: Double?
    public var epv: Double?

    public init(mono: Nanos, wall: Nanos, point: GeoPoint, altitude: Double? = nil, mode: FixMode,
                speed: Double? = nil, track: Double? = nil, eph: Double? = nil, epv: Double? = nil) {
        self.mono = mono; self.wall = wall; self.point = point; self.altitude = altitude; self.mode = mode
        self.speed = speed; self.track = track; self.eph = eph; self.epv = epv
    }

    /// A fix older than this (on the mono clock) is stale: shown as such, not used as "where we are".
    public static let staleAfter: Nanos = 3 * nanosPerSecond

    public func age(at now: Nanos) -> Nanos { now - mono }
    public func isStale(at now: Nanos, after limit: Nanos = Fix.staleAfter) -> Bool { now - mono > limit }
}

/// Why a fix was not used. Each reason is counted (`gps.rejected.<key>`) and never stored.
public enum FixRejection: Error, Sendable, Equatable, CustomStringConvertible {
    case notFinite(field: String)
    case latitudeOutOfRange(Double)
    case longitudeOutOfRange(Double)
    case noPosition
    case absurdSpeed(Double)
    case absurdAccuracy(Double)
    case timeNotAdvancing(previous: Nanos, got: Nanos)
    case timeJump(seconds: Double)
    case impossibleMove(metres: Double, seconds: Double)

    /// Stable counter key.
    public var key: String {
        switch self {
        case .notFinite: "notFinite"
        case .latitudeOutOfRange: "latitudeOutOfRange"
        case .longitudeOutOfRange: "longitudeOutOfRange"
        case .noPosition: "noPosition"
        case .absurdSpeed: "absurdSpeed"
        case .absurdAccuracy: "absurdAccuracy"
        case .timeNotAdvancing: "timeNotAdvancing"
        case .timeJump: "timeJump"
        case .impossibleMove: "impossibleMove"
        }
    }

    public var description: String {
        switch self {
        case .notFinite(let f): "\(f) is not a number"
        case .latitudeOutOfRange(let v): "latitude \(v) is outside ±90°"
        case .longitudeOutOfRange(let v): "longitude \(v) is outside ±180°"
        case .noPosition: "a 2D/3D fix without latitude/longitude"
        case .absurdSpeed(let v): "speed \(v) m/s is beyond any car (limit \(FixValidator.defaultMaxSpeed) m/s)"
        case .absurdAccuracy(let v): "position error estimate \(v) m is negative"
        case .timeNotAdvancing(let p, let g): "GPS time \(g) ns is not after the previous fix's \(p) ns"
        case .timeJump(let s): "GPS time jumped \(s) s further than the host clock moved"
        case .impossibleMove(let m, let s): "moved \(Int(m)) m in \(s) s, faster than any car"
        }
    }
}

/// Checks each fix on its own (finite, in range, plausible speed) and against the last accepted
/// one (time advances, no jump, no teleport). Pure: times come with the fixes.
public struct FixValidator: Sendable {
    public static let defaultMaxSpeed = 100.0   // m/s, 360 km/h
    public var maxSpeed = FixValidator.defaultMaxSpeed
    /// GPS time may run ahead of the host's monotonic clock by at most this much between two
    /// fixes (replayed logs run faster than real time, so only big jumps are caught).
    public var maxTimeJump: Nanos = 3600 * nanosPerSecond
    /// After this many consecutive time rejections the next fix is taken as the new baseline
    /// (the earlier time was the wrong one).
    public var rebaseAfter = 5
    public private(set) var last: Fix?
    private var timeRejections = 0

    public init() {}

    /// Nil when `fix` is accepted (and becomes the reference for the next one).
    public mutating func check(_ fix: Fix) -> FixRejection? {
        if let r = Self.checkValues(fix, maxSpeed: maxSpeed) { return r }
        if let last {
            let dWall = fix.wall - last.wall, dMono = fix.mono - last.mono
            var timeProblem: FixRejection? = nil
            if dWall <= 0 { timeProblem = .timeNotAdvancing(previous: last.wall, got: fix.wall) }
            else if dWall - max(dMono, 0) > maxTimeJump { timeProblem = .timeJump(seconds: Double(dWall - dMono) / 1e9) }
            if let timeProblem {
                timeRejections += 1
                if timeRejections <= rebaseAfter { return timeProblem }
            } else {
                let seconds = Double(dWall) / 1e9
                let metres = Geo.distance(last.point, fix.point)
                let slack = (last.eph ?? 0) + (fix.eph ?? 0) + 50
                if metres - slack > maxSpeed * seconds { return .impossibleMove(metres: metres, seconds: seconds) }
            }
        }
        timeRejections = 0
        last = fix
        return nil
    }

    /// The checks that need no history.
    public static func checkValues(_ fix: Fix, maxSpeed: Double = defaultMaxSpeed) -> FixRejection? {
        let p = fix.point
        if !p.latitude.isFinite { return .notFinite(field: "latitude") }
        if !p.longitude.isFinite { return .notFinite(field: "longitude") }
        if abs(p.latitude) > 90 { return .latitudeOutOfRange(p.latitude) }
        if abs(p.longitude) > 180 { return .longitudeOutOfRange(p.longitude) }
        for (name, v) in [("altitude", fix.altitude), ("speed", fix.speed), ("track", fix.track), ("eph", fix.eph), ("epv", fix.epv)] {
            if let v, !v.isFinite { return .notFinite(field: name) }
        }
        if let s = fix.speed, s < 0 || s > maxSpeed { return .absurdSpeed(s) }
        if let e = fix.eph, e < 0 { return .absurdAccuracy(e) }
        return nil
    }
}
