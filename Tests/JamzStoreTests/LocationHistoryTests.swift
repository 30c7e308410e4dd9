import Foundation
import GRDB
import JamzCore
@testable import JamzStore
import Testing

@Suite final class LocationHistoryTests {
    let dir: TempDir
    let store: Store
    static let base: Nanos = 1_778_745_600 * nanosPerSecond
    static let origin = GeoPoint(latitude: 45.7578, longitude: 4.8320)
    let me = MemberID(1)
    let other = MemberID(0xF000_0000_0000_0002)   // above 2^63: stored as a negative Int64

    init() throws {
        dir = try TempDir()
        store = try Store.open(path: dir.file("jamz.sqlite")).store
    }
    deinit { try? store.pool.close() }

    /// 1 Hz fixes from second `from` (count `n`) at `speed` m/s heading north.
    func drive(from: Int, count n: Int, speed: Double = 30, start: GeoPoint = origin) -> [Fix] {
        (0..<n).map { i in
            let t = Int64(from + i)
            return Fix(mono: t * nanosPerSecond + 7, wall: Self.base + t * nanosPerSecond,
                       point: Geo.destination(from: start, bearing: 0, distance: Double(from + i) * speed),
                       altitude: i % 2 == 0 ? 170.5 : nil, mode: i % 2 == 0 ? .threeD : .twoD,
                       speed: speed, track: 0, eph: 4.5, epv: nil)
        }
    }

    @Test func roundTripLatestAndRange() throws {
        let mine = drive(from: 0, count: 20), theirs = drive(from: 5, count: 10, speed: 20)
        try store.pool.write { db in
            try LocationHistory.append(db, member: me, session: 3, fixes: Array(mine.prefix(10)))
            try LocationHistory.append(db, member: other, session: 9, fixes: theirs)
        }
        try store.pool.write { try LocationHistory.append($0, member: me, session: 3, fixes: Array(mine.suffix(10))) }
        // A duplicate report (same member, same time) is not stored twice.
        try store.pool.write { try LocationHistory.append($0, member: me, session: 3, fixes: [mine[4]]) }
        try store.pool.read { db throws in
            #expect(try LocationHistory.count(db) == 30)
            #expect(try LocationHistory.range(db, member: me).map(\.fix) == mine)
            #expect(try LocationHistory.range(db, member: other).map(\.fix) == theirs)
            #expect(try LocationHistory.range(db, member: me, from: mine[3].wall, to: mine[6].wall).map(\.fix) == Array(mine[3..<6]))
            let latest = try LocationHistory.latest(db)
            #expect(Set(latest.map(\.member)) == [me, other])
            #expect(latest.first { $0.member == other } == LocationRecord(member: other, session: 9, fix: theirs.last!))
            #expect(try LocationHistory.latest(db, member: me)?.fix == mine.last)
            #expect(try LocationHistory.latest(db, member: MemberID(77)) == nil)
        }
    }

    @Test func impossibleCoordinatesAreRefusedByTheSchema() throws {
        var bad = drive(from: 0, count: 1)[0]
        bad.point.latitude = 95
        #expect(throws: DatabaseError.self) {
            try self.store.pool.write { try LocationHistory.append($0, member: self.me, session: 1, fixes: [bad]) }
        }
        let left = try store.pool.read(LocationHistory.count)
        #expect(left == 0)
    }

    /// Two hours at 30 m/s then stopped 20 min: the last hour whole, older one per 100 m
    /// (every 4th second at 30 m/s) or per 30 s stopped; a second compaction changes nothing;
    /// past the retention everything goes.
    @Test func compaction() throws {
        let moving = drive(from: 0, count: 7200)
        let stopPoint = moving.last!.point
        let stopped = (0..<1200).map { i -> Fix in
            var f = moving.last!
            f.wall += Int64(i + 1) * nanosPerSecond; f.mono += Int64(i + 1) * nanosPerSecond
            f.point = stopPoint; f.speed = 0
            return f
        }
        for chunk in stride(from: 0, to: moving.count, by: 600) {
            try store.pool.write { try LocationHistory.append($0, member: me, session: 1, fixes: Array(moving[chunk..<min(chunk + 600, moving.count)])) }
        }
        try store.pool.write { try LocationHistory.append($0, member: me, session: 1, fixes: stopped) }
        let now = stopped.last!.wall
        let r = try LocationHistory.compact(store.pool, now: now)
        #expect(r.expired == 0)
        let kept = try store.pool.read { try LocationHistory.range($0, member: me) }.map(\.fix)
        let hourAgo = now - 3600 * nanosPerSecond
        // Everything of the last hour.
        #expect(kept.filter { $0.wall >= hourAgo }.count == (moving + stopped).filter { $0.wall >= hourAgo }.count)
        // Older: moving 7200 − 1200 − 1… seconds thinned to one in four.
        let olderMoving = moving.filter { $0.wall < hourAgo }.count
        #expect(kept.filter { $0.wall < hourAgo }.count == (olderMoving + 3) / 4)
        #expect(r.thinned == olderMoving - (olderMoving + 3) / 4)
        let again = try LocationHistory.compact(store.pool, now: now)
        #expect(again == .init(expired: 0, thinned: 0))
        let gone = try LocationHistory.compact(store.pool, now: now + 7 * 86_400 * nanosPerSecond + 1)
        #expect(gone.expired == kept.count)
        let left = try store.pool.read(LocationHistory.count)
        #expect(left == 0)
    }

    /// Every fix whose write returned is in a copy of the files taken without closing anything,
    /// as `kill -9` or a power cut leaves them (with and without the -shm).
    @Test(arguments: [true, false])
    func writtenFixesSurviveAPowerCut(keepShm: Bool) throws {
        let fixes = drive(from: 0, count: 300)
        for f in fixes { try store.pool.write { try LocationHistory.append($0, member: me, session: 1, fixes: [f]) } }
        let fm = FileManager.default
        let copyDir = dir.file("cut-\(keepShm)")
        try fm.createDirectory(atPath: copyDir, withIntermediateDirectories: true)
        let target = copyDir + "/jamz.sqlite"
        try fm.copyItem(atPath: store.path, toPath: target)
        try fm.copyItem(atPath: store.path + "-wal", toPath: target + "-wal")
        if keepShm { try fm.copyItem(atPath: store.path + "-shm", toPath: target + "-shm") }
        let reopened = try Store.open(path: target)
        #expect(reopened.movedAside == nil)
        defer { try? reopened.store.pool.close() }
        try reopened.store.pool.read { db throws in
            #expect(try String.fetchAll(db, sql: "PRAGMA integrity_check") == ["ok"])
            #expect(try LocationHistory.range(db, member: me).map(\.fix) == fixes)
        }
    }
}
