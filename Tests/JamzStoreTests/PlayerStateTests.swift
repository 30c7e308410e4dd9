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

    // MARK: savePosition

    @Test func savePositionSavesAndLoads() async throws {
        let r = PlayerRecord(playing: true, entryId: 4, frame: 441_000, volume: 55)
        try await PlayerState.savePosition(store.pool, r)
        #expect(try await store.pool.read { try PlayerState.load($0) } == r)
        var later = r
        later.frame = 882_000
        try await PlayerState.savePosition(store.pool, later)
        #expect(try await store.pool.read { try PlayerState.load($0) } == later)
        #expect(try await store.pool.read { try Int.fetchOne($0, sql: "SELECT COUNT(*) FROM player") } == 1)
    }

    @Test func savePositionLeavesTheWriterFullySynced() async throws {
        try await PlayerState.savePosition(store.pool, PlayerRecord(playing: false, entryId: nil, frame: 0, volume: 1))
        // Writes after a position save (queue edits, commands) are FULL again.
        #expect(try await store.pool.write { try Int.fetchOne($0, sql: "PRAGMA synchronous") } == 2)
        #expect(try await store.pool.writeWithoutTransaction { try Int.fetchOne($0, sql: "PRAGMA synchronous") } == 2)
    }

    @Test func aFailedPositionSaveChangesNothing() async throws {
        let good = PlayerRecord(playing: true, entryId: 1, frame: 10, volume: 5)
        try await PlayerState.savePosition(store.pool, good)
        var bad = good
        bad.id = 2    // violates the one-row check
        await #expect(throws: DatabaseError.self) { try await PlayerState.savePosition(self.store.pool, bad) }
        #expect(try await store.pool.read { try PlayerState.load($0) } == good)
        #expect(try await store.pool.write { try Int.fetchOne($0, sql: "PRAGMA synchronous") } == 2)
    }
}
