import Foundation
import GRDB
import JamzCore
@testable import JamzStore
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
}
