import Foundation
import JamzCore
import JamzGPS
@testable import JamzStore
import JamzTestSupport
import Testing

/// gpsd → GPSDClient → LocationHistory in a real SQLite file, as the daemon will run it: each
/// fix written in its own small transaction as it arrives.
@Suite(.serialized)
struct EndToEndTests {
    @Test func storedHistoryMatchesTheRouteAndCompacts() async throws {
        let truth = try TruthRow.load("highway.truth.csv")
        let dir = Fixtures.tempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        let store = try Store.open(path: dir.appendingPathComponent("jamz.sqlite").path).store
        defer { try? store.pool.close() }
        let me = MemberID(0xC0FF_EE00_0000_0001)

        let rig = try GPSDRig(log: "highway.nmea")
        defer { rig.stop() }
        let gps = client(port: rig.gpsdPort)
        let writer = Task {
            var stored = 0
            for await event in gps.events {
                guard case .fix(let f) = event else { continue }
                try await store.pool.write { try LocationHistory.append($0, member: me, session: 1, fixes: [f]) }
                stored += 1
            }
            return stored
        }
        gps.start()
        try await eventually("connected to gpsd") { gps.status.connection == .connected }
        rig.go()
        try rig.waitSent()
        let last = try #require(truth.filter(\.deliverable).last)
        try await eventually("the last fix delivered") { gps.status.latestFix?.wall == last.wall }
        gps.stop()
        let written = try await writer.value

        let rows = try await store.pool.read { try LocationHistory.range($0, member: me) }
        #expect(rows.count == written && written == gps.status.counters.fixes)
        expectSameEpochs(rows.map(\.fix), truth)
        let byWall = Dictionary(uniqueKeysWithValues: truth.map { ($0.wall, $0) })
        for r in rows {
            let w = try #require(byWall[r.fix.wall])
            #expect(Geo.distance(r.fix.point, w.point) < 0.05, "t=\(w.t)")
            if w.kind != "bad-checksum" { #expect(abs((r.fix.speed ?? -1) - w.speed) < 0.01, "t=\(w.t)") }
            #expect(r.fix.mode.rawValue == w.mode && r.session == 1 && r.member == me)
        }
        #expect(try await store.pool.read { try LocationHistory.latest($0, member: me) }?.fix.wall == last.wall)

        // Compaction with the last 2 minutes at full rate: the 13 minutes before are thinned to
        // one point per 100 m (highway) or per 30 s (the stop), the last 2 minutes are whole.
        let now = last.wall
        var policy = HistoryPolicy()
        policy.fullRateFor = 120 * nanosPerSecond
        let result = try await LocationHistory.compact(store.pool, now: now, policy: policy)
        let kept = try await store.pool.read { try LocationHistory.range($0, member: me) }.map(\.fix)
        let cutoff = now - policy.fullRateFor
        #expect(kept.filter { $0.wall >= cutoff } == rows.map(\.fix).filter { $0.wall >= cutoff })
        let old = kept.filter { $0.wall < cutoff }
        let oldBefore = rows.map(\.fix).filter { $0.wall < cutoff }
        #expect(result.thinned == oldBefore.count - old.count && result.expired == 0)
        for (a, b) in zip(old, old.dropFirst()) {
            #expect(b.wall - a.wall >= policy.minInterval || Geo.distance(a.point, b.point) >= policy.minDistance)
        }
        // Every dropped point is near (< 100 m, < 30 s) the kept point before it.
        let keptWalls = Set(old.map(\.wall))
        var lastKept: Fix? = nil
        for f in oldBefore {
            if keptWalls.contains(f.wall) { lastKept = f; continue }
            let k = try #require(lastKept)
            #expect(f.wall - k.wall < policy.minInterval && Geo.distance(k.point, f.point) < policy.minDistance)
        }
        // The stop (t = 653…759: standing still) keeps one point per 30 s.
        let start: Nanos = 1_778_745_600 * nanosPerSecond
        let stopped = kept.filter { ($0.wall - start) / nanosPerSecond >= 653 && ($0.wall - start) / nanosPerSecond < 760 }
        #expect(stopped.count <= 5, "\(stopped.count) points kept while standing still")
        // Highway at ~32 m/s: about one point in four.
        #expect(old.count < oldBefore.count / 3)
        // Past the retention nothing is left.
        let gone = try await LocationHistory.compact(store.pool, now: now + policy.retention + policy.fullRateFor)
        #expect(gone.expired == kept.count)
    }
}
