/// How much location history a car keeps: every point of the last `fullRateFor`; older ones one
/// per `minInterval` or per `minDistance` moved (whichever comes first); nothing older than
/// `retention`.
public struct HistoryPolicy: Sendable, Equatable {
    public var fullRateFor: Nanos = 3600 * nanosPerSecond
    public var minInterval: Nanos = 30 * nanosPerSecond
    public var minDistance: Double = 100
    public var retention: Nanos = 7 * 86_400 * nanosPerSecond
    public init() {}
    public init(fullRateFor: Nanos = 3600 * nanosPerSecond, minInterval: Nanos = 30 * nanosPerSecond,
                minDistance: Double = 100, retention: Nanos = 7 * 86_400 * nanosPerSecond) {
        self.fullRateFor = fullRateFor; self.minInterval = minInterval
        self.minDistance = minDistance; self.retention = retention
    }
}

/// One stored point, as the downsampler sees it.
public struct HistoryPoint: Sendable, Equatable {
    public var id: Int64
    /// GPS time, UTC ns.
    public var wall: Nanos
    public var point: GeoPoint
    public init(id: Int64, wall: Nanos, point: GeoPoint) { self.id = id; self.wall = wall; self.point = point }
}

public enum HistoryDownsampler {
    /// The ids to delete from one member's points (sorted by `wall`), at GPS time `now`.
    /// Idempotent: what it keeps, it keeps again on the next run, so compaction can run at any
    /// rate with the same result.
    public static func dropList(_ points: [HistoryPoint], now: Nanos, policy: HistoryPolicy = HistoryPolicy()) -> [Int64] {
        let expireBefore = now - policy.retention
        let fullRateFrom = now - policy.fullRateFor
        var drop: [Int64] = []
        var kept: HistoryPoint? = nil
        for p in points {
            if p.wall < expireBefore { drop.append(p.id); continue }
            if p.wall >= fullRateFrom { break }
            if let k = kept, p.wall - k.wall < policy.minInterval, Geo.distance(k.point, p.point) < policy.minDistance {
                drop.append(p.id)
            } else {
                kept = p
            }
        }
        return drop
    }
}
