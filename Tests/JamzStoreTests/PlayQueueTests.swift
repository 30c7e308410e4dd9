import Foundation
import GRDB
import JamzCore
@testable import JamzStore
import Testing

@Suite final class PlayQueueTests {
    let dir: TempDir
    let store: Store

    init() throws {
        dir = try TempDir()
        store = try Store.open(path: dir.file("queue.sqlite")).store
        try store.pool.write { db in
            try Catalog.insert(db, track(tid("a"), "Alpha", artist: "X", frames: 1000))
            try Catalog.insert(db, track(tid("b"), "Beta", artist: "Y", frames: 2000))
            try Catalog.insert(db, track(tid("c"), "Gamma", artist: "Z", frames: 3000))
        }
    }

    deinit { try? store.pool.close() }

    func records(_ digits: String) throws -> [TrackRecord] {
        try store.pool.read { db in try digits.map { try Catalog.track(db, id: tid($0))! } }
    }

    func append(_ digits: String) throws -> [QueueEntry] {
        let recs = try records(digits)
        return try store.pool.write { try PlayQueue.append($0, recs) }
    }

    func titles() throws -> [String] { try store.pool.read { try PlayQueue.items($0) }.map(\.track.title) }

    @Test func moveGivesOneEntryAnOrderBetweenItsNewNeighboursAndRemoveTakesItOut() throws {
        let e = try append("abc")
        try store.pool.write { try PlayQueue.move($0, entryID: e[2].id, after: nil) }
        #expect(try titles() == ["Gamma", "Alpha", "Beta"])
        try store.pool.write { try PlayQueue.move($0, entryID: e[2].id, after: e[1].id) }
        #expect(try titles() == ["Alpha", "Beta", "Gamma"])
        try store.pool.write { try PlayQueue.move($0, entryID: e[0].id, after: e[1].id) }
        #expect(try titles() == ["Beta", "Alpha", "Gamma"])
        // Many moves between the same two: the orders stay distinct.
        for _ in 0..<30 {
            try store.pool.write { try PlayQueue.move($0, entryID: e[0].id, after: e[1].id) }
            try store.pool.write { try PlayQueue.move($0, entryID: e[2].id, after: e[1].id) }
        }
        #expect(try titles() == ["Beta", "Gamma", "Alpha"])
        try store.pool.write { try PlayQueue.remove($0, entryID: e[2].id) }
        #expect(try titles() == ["Beta", "Alpha"])
    }

    @Test func anEmptyQueue() throws {
        #expect(try store.pool.read { try PlayQueue.items($0) }.isEmpty)
        #expect(try store.pool.read { try PlayQueue.entries($0) }.isEmpty)
        #expect(try store.pool.write { try PlayQueue.append($0, []) }.isEmpty)
    }

    @Test func appendReturnsEntriesInOrderWithIncreasingIDs() throws {
        let entries = try append("bca")
        #expect(entries.map(\.trackID) == [tid("b"), tid("c"), tid("a")])
        #expect(entries.map(\.frames) == [2000, 3000, 1000])
        #expect(zip(entries, entries.dropFirst()).allSatisfy { $0.id < $1.id })
        let more = try append("a")
        #expect(more.count == 1)
        #expect(more[0].id > entries.last!.id)
        #expect(try store.pool.read { try PlayQueue.entries($0) } == entries + more)
    }

    @Test func itemsJoinTrackInfo() throws {
        let entries = try append("cab")
        let items = try store.pool.read { try PlayQueue.items($0) }
        #expect(items.map(\.entry) == entries)
        #expect(items.map(\.track.title) == ["Gamma", "Alpha", "Beta"])
        #expect(items.map(\.track.artist) == ["Z", "X", "Y"])
        #expect(items.map(\.track.id) == [tid("c").hex, tid("a").hex, tid("b").hex])
        #expect(items[0].track == (try records("c"))[0])
        #expect(items.allSatisfy { $0.entry.frames == $0.track.frames && $0.entry.trackID.hex == $0.track.id })
    }

    @Test func theSameTrackMayBeQueuedTwice() throws {
        let entries = try append("aba")
        #expect(Set(entries.map(\.id)).count == 3)
        #expect(try titles() == ["Alpha", "Beta", "Alpha"])
    }

    @Test func removeTakesOutOneEntry() throws {
        let entries = try append("abca")
        try store.pool.write { try PlayQueue.remove($0, entryID: entries[1].id) }
        #expect(try store.pool.read { try PlayQueue.entries($0) } == [entries[0], entries[2], entries[3]])
        // Removing one of two entries of the same track leaves the other.
        try store.pool.write { try PlayQueue.remove($0, entryID: entries[3].id) }
        #expect(try titles() == ["Alpha", "Gamma"])
        // An unknown entry (another command took it away): refused, nothing happens.
        #expect(throws: PlayQueue.MissingEntry(entryID: 9_999)) {
            try self.store.pool.write { try PlayQueue.remove($0, entryID: 9_999) }
        }
        #expect(try titles() == ["Alpha", "Gamma"])
    }

    /// A move whose entry or neighbour is gone is refused (it used to land at the head).
    @Test func aMoveNamingAMissingEntryIsRefused() throws {
        let e = try append("abc")
        try store.pool.write { try PlayQueue.remove($0, entryID: e[1].id) }
        #expect(throws: PlayQueue.MissingEntry(entryID: e[1].id)) {
            try self.store.pool.write { try PlayQueue.move($0, entryID: e[2].id, after: e[1].id) }
        }
        #expect(throws: PlayQueue.MissingEntry(entryID: e[1].id)) {
            try self.store.pool.write { try PlayQueue.move($0, entryID: e[1].id, after: nil) }
        }
        #expect(try titles() == ["Alpha", "Gamma"])
    }

    /// A convoy's playlist kept when the car leaves: its ids (any 64-bit value) and order stay,
    /// and later appends still go to the end with fresh ids.
    @Test func replaceKeepsTheGivenIdsAndOrder() throws {
        _ = try append("ab")
        let ids: [Int64] = [-4_611_686_018_427_387_904, 7_000_000_000_000_000_000, 42]
        try store.pool.write { try PlayQueue.replace($0, with: zip(ids, ["c", "a", "c"]).map { ($0, tid($1).hex) }) }
        #expect(try store.pool.read { try PlayQueue.entries($0) }.map(\.id) == ids)
        #expect(try titles() == ["Gamma", "Alpha", "Gamma"])
        let more = try append("b")
        #expect(!ids.contains(more[0].id))
        #expect(try titles() == ["Gamma", "Alpha", "Gamma", "Beta"])
        try store.pool.write { try PlayQueue.move($0, entryID: more[0].id, after: ids[0]) }
        #expect(try titles() == ["Gamma", "Beta", "Alpha", "Gamma"])
    }

    @Test func appendAfterRemoveGoesToTheEnd() throws {
        let first = try append("ab")
        try store.pool.write { try PlayQueue.remove($0, entryID: first[1].id) }
        let next = try append("c")
        #expect(next[0].id > first[1].id)          // ids are not reused
        #expect(try titles() == ["Alpha", "Gamma"])
        // Emptied completely, then refilled.
        try store.pool.write { db in
            for e in try PlayQueue.entries(db) { try PlayQueue.remove(db, entryID: e.id) }
        }
        #expect(try titles().isEmpty)
        let again = try append("ba")
        #expect(try titles() == ["Beta", "Alpha"])
        #expect(again[0].id > next[0].id)
    }

    @Test func appendingAnUnknownTrackFailsAndAddsNothing() throws {
        var ghost = try records("a")[0]
        ghost.id = tid("f").hex
        let before = try append("b")
        #expect(throws: DatabaseError.self) {
            try self.store.pool.write { try PlayQueue.append($0, [ghost]) }
        }
        #expect(try store.pool.read { try PlayQueue.entries($0) } == before)
    }

    @Test func aQueuedTrackCannotLeaveTheCatalog() throws {
        let entries = try append("a")
        #expect(throws: DatabaseError.self) {
            try self.store.pool.write { try $0.execute(sql: "DELETE FROM track WHERE id = ?", arguments: [tid("a").hex]) }
        }
        try store.pool.write { try PlayQueue.remove($0, entryID: entries[0].id) }
        try store.pool.write { try $0.execute(sql: "DELETE FROM track WHERE id = ?", arguments: [tid("a").hex]) }
        #expect(try store.pool.read { try Catalog.track($0, id: tid("a")) } == nil)
    }
}
