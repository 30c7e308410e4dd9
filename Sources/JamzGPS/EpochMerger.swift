import CGPS
import JamzCore

/// Merges the TPV reports gpsd sends for one GPS second into one candidate fix. A second ends
/// when a TPV with another time arrives, or when the reader has been idle (`flush`).
struct EpochMerger {
    enum Epoch: Equatable {
        case fix(Fix)
        case noFix(mono: Nanos)
        case untimed
    }

    private struct Pending {
        var wall: Nanos
        var mono: Nanos
        var mode: Int32
        var lat = Double.nan, lon = Double.nan, alt = Double.nan
        var speed = Double.nan, track = Double.nan, eph = Double.nan, epv = Double.nan
    }
    private var pending: Pending?
    /// GPS time of the last second handed on. A sentence of that second arriving after the idle
    /// flush (three NMEA sentences take ~260 ms at 9600 baud) is part of a second already
    /// delivered: dropped here, not a fix whose time failed to advance.
    private var lastDone: Nanos?
    /// Such late reports (for status).
    private(set) var late = 0

    /// Takes one TPV; returns the previous second when this one starts a new second.
    mutating func add(_ r: jamz_gps_report, mono: Nanos) -> Epoch? {
        guard r.has_time != 0, r.time_sec > 0 else {
            // gpsd reports position before it has the date (no RMC/ZDA yet): no time, no fix.
            return .untimed
        }
        // Years beyond 2262 do not fit nanoseconds in an Int64: not a time (a broken gpsd).
        guard r.time_sec < 9_000_000_000, (0..<nanosPerSecond).contains(r.time_nsec) else { return .untimed }
        let wall = r.time_sec * nanosPerSecond + r.time_nsec
        if wall == lastDone { late += 1; return nil }
        var done: Epoch? = nil
        if let p = pending, p.wall != wall { done = Self.finish(p); lastDone = p.wall; pending = nil }
        var p = pending ?? Pending(wall: wall, mono: mono, mode: r.mode)
        p.mode = max(p.mode, r.mode)
        // Later sentences of the second win where they say something.
        func take(_ v: Double, _ into: inout Double) { if !v.isNaN { into = v } }
        if r.mode >= 2 {
            take(r.latitude, &p.lat); take(r.longitude, &p.lon); take(r.alt_hae, &p.alt)
            take(r.speed, &p.speed); take(r.track, &p.track); take(r.eph, &p.eph); take(r.epv, &p.epv)
        }
        pending = p
        return done
    }

    mutating func flush() -> Epoch? {
        defer { pending = nil }
        if let p = pending { lastDone = p.wall }
        return pending.map(Self.finish)
    }

    private static func finish(_ p: Pending) -> Epoch {
        guard p.mode >= 2 else { return .noFix(mono: p.mono) }
        func opt(_ v: Double) -> Double? { v.isNaN ? nil : v }
        let mode: FixMode = p.mode >= 3 && !p.alt.isNaN ? .threeD : .twoD
        return .fix(Fix(mono: p.mono, wall: p.wall, point: GeoPoint(latitude: p.lat, longitude: p.lon),
                        altitude: mode == .threeD ? opt(p.alt) : nil, mode: mode,
                        speed: opt(p.speed), track: opt(p.track), eph: opt(p.eph), epv: mode == .threeD ? opt(p.epv) : nil))
    }
}
