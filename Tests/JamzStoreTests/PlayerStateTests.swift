import Foundation
import GRDB
import JamzCore
import JamzStore
import Testing

@Suite final class PlayerStateTests {
    let dir: TempDir
    let store: Store

    init() throws {
        dir = try TempDir()
        store = try Store.open(path: dir.file("player.sqlite")).store
    }

    deinit { try? store.pool.close() }

    @Test func nothingSavedYet() throws {
        #expect(try store.pool.read { try PlayerState.load($0) } == nil)
    }

    @Test func saveAndLoad() throws {
        let r = PlayerRecord(playing: true, entryId: 17, frame: 9_876_543_210, volume: 65)
        try store.pool.write { try PlayerState.save($0, r) }
        let back = try #require(try store.pool.read { try PlayerState.load($0) })
        #expect(back == r)
        #expect(back.id == 1)
        #expect(back.playing && back.entryId == 17 && back.frame == 9_876_543_210 && back.volume == 65)
    }

    @Test func saveReplacesTheOneRow() throws {
        try store.pool.write { try PlayerState.save($0, PlayerRecord(playing: true, entryId: 3, frame: 100, volume: 50)) }
        let paused = PlayerRecord(playing: false, entryId: nil, frame: 0, volume: 10)
        try store.pool.write { try PlayerState.save($0, paused) }
        #expect(try store.pool.read { try PlayerState.load($0) } == paused)
        #expect(try store.pool.read { try Int.fetchOne($0, sql: "SELECT COUNT(*) FROM player") } == 1)
    }

    @Test func onlyRowOneIsAllowed() throws {
        var other = PlayerRecord(playing: false, entryId: nil, frame: 0, volume: 0)
        other.id = 2
        #expect(throws: DatabaseError.self) { try self.store.pool.write { try PlayerState.save($0, other) } }
    }

    // MARK: Counters

    @Test func countersStartEmpty() throws {
        #expect(try store.pool.read { try Counters.all($0) } == [:])
    }

    @Test func countersAccumulate() throws {
        try store.pool.write { db in
            try Counters.add(db, "cacheHits")
            try Counters.add(db, "cacheHits")
            try Counters.add(db, "badFrames", 40)
            try Counters.add(db, "cacheHits", 5)
            try Counters.add(db, "badFrames", -15)
            try Counters.add(db, "zero", 0)
        }
        #expect(try store.pool.read { try Counters.all($0) } == ["cacheHits": 7, "badFrames": 25, "zero": 0])
        try store.pool.write { try Counters.add($0, "big", 1 << 40) }
        try store.pool.write { try Counters.add($0, "big", 1 << 40) }
        #expect(try store.pool.read { try Counters.all($0) }["big"] == 1 << 41)
    }
}
