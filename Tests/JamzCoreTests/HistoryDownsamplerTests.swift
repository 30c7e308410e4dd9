import JamzCore
import Testing

struct HistoryDownsamplerTests {
    static let hour: Nanos = 3600 * nanosPerSecond
    static let origin = GeoPoint(latitude: 45, longitude: 5)

    /// A 1 Hz track: `speeds[i]` m/s during second i, heading north.
    func track(_ speeds: [Double], start: Nanos = 0) -> [HistoryPoint] {
        var d = 0.0
        return speeds.enumerated().map { i, v in
            d += v
            return HistoryPoint(id: Int64(i), wall: start + Int64(i) * nanosPerSecond,
                                point: Geo.destination(from: Self.origin, bearing: 0, distance: d))
        }
    }

    @Test func theLastHourIsKeptWhole() {
        let pts = track(Array(repeating: 30, count: 3600))
        #expect(HistoryDownsampler.dropList(pts, now: Self.hour).isEmpty)
    }

    @Test func olderPointsKeepOnePer100MetresMovingAndOnePer30SecondsStopped() {
        // 10 min at 30 m/s then 10 min stopped, all older than an hour.
        let speeds = Array(repeating: 30.0, count: 600) + Array(repeating: 0.0, count: 600)
        let pts = track(speeds)
        let now = 1200 * nanosPerSecond + 2 * Self.hour
        let drop = Set(HistoryDownsampler.dropList(pts, now: now))
        let kept = pts.filter { !drop.contains($0.id) }
        // Moving: every 4th point (120 m ≥ 100 m; 90 m is not); stopped: every 30th.
        #expect(kept.filter { $0.id < 600 }.count == 150)
        #expect(kept.filter { $0.id >= 600 }.count == 20)
        for (a, b) in zip(kept, kept.dropFirst()) {
            let dt = b.wall - a.wall, dd = Geo.distance(a.point, b.point)
            #expect(dt == 30 * nanosPerSecond || dd >= 100)
        }
        // Idempotent: the kept points survive a second pass.
        #expect(HistoryDownsampler.dropList(kept, now: now).isEmpty)
        #expect(HistoryDownsampler.dropList(kept, now: now + 600 * nanosPerSecond).isEmpty)
    }

    @Test func pointsOlderThanTheRetentionGo() {
        let policy = HistoryPolicy(retention: 2 * 86_400 * nanosPerSecond)
        let pts = track(Array(repeating: 0, count: 120))
        let now = 2 * 86_400 * nanosPerSecond + 60 * nanosPerSecond
        let drop = HistoryDownsampler.dropList(pts, now: now, policy: policy)
        #expect(drop.prefix(60) == ArraySlice((0..<60).map(Int64.init)))
        // What is left (60..119, stopped, older than an hour) is thinned to one per 30 s: 60, 90.
        #expect(Set(pts.map(\.id)).subtracting(drop) == [60, 90])
    }
}
