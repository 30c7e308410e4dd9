import Foundation
import GRDB
import JamzCore
@testable import JamzStore
import Synchronization
import Testing

@Suite final class CountersTests {
    let dir: TempDir
    let path: String
    var store: Store

    init() throws {
        dir = try TempDir()
        path = dir.file("counters.sqlite")
        store = try Store.open(path: path).store
    }

    deinit { try? store.pool.close() }

    /// What SQLite holds.
    func stored() throws -> [String: Int64] {
        try store.pool.write { db in
            var d: [String: Int64] = [:]
            for row in try Row.fetchAll(db, sql: "SELECT name, value FROM counter") { d[row[0]] = row[1] }
            return d
        }
    }

    @Test func startEmpty() throws {
        #expect(store.counters.all == [:])
        #expect(store.counters["cacheHits"] == 0)
        #expect(try stored() == [:])
    }

    @Test func addAccumulates() throws {
        let c = store.counters
        c.add("cacheHits")
        c.add("cacheHits")
        c.add("badFrames", 40)
        c.add("cacheHits", 5)
        c.add("badFrames", -15)
        c.add("zero", 0)
        #expect(c.all == ["cacheHits": 7, "badFrames": 25, "zero": 0])
        #expect(c["cacheHits"] == 7)
        #expect(c["badFrames"] == 25)
        #expect(c["never"] == 0)
        c.add("big", 1 << 40)
        c.add("big", 1 << 40)
        #expect(c["big"] == Int64(1) << 41)
    }

    @Test func incrementsReachTheDatabaseWhenFlushed() async throws {
        let bell = Mutex(0)
        store.counters.whenUnsaved { bell.withLock { $0 += 1 } }
        store.counters.add("cacheHits")
        store.counters.add("cacheHits", 4)
        store.counters.add("evictions", 2)
        // In memory only until a flush: no write per increment.
        #expect(try stored() == [:])
        #expect(store.counters.hasUnsaved)
        #expect(bell.withLock { $0 } == 1)
        try await store.counters.flush()
        #expect(!store.counters.hasUnsaved)
        #expect(try stored() == ["cacheHits": 5, "evictions": 2])
        store.counters.add("evictions")
        #expect(bell.withLock { $0 } == 2)
        try store.counters.flushNow()
        #expect(try stored() == ["cacheHits": 5, "evictions": 3])
        // Nothing new: a flush writes nothing and does not ring.
        try await store.counters.flush()
        #expect(bell.withLock { $0 } == 2)
    }

    @Test func aFailedFlushKeepsTheCounts() async throws {
        store.counters.add("kept", 3)
        try store.pool.close()
        await #expect(throws: (any Error).self) { try await self.store.counters.flush() }
        #expect(store.counters.hasUnsaved)
        store = try Store.open(path: path).store
        #expect(store.counters["kept"] == 0)
    }

    @Test func countsSurviveAReopen() throws {
        store.counters.add("cacheHits", 3)
        store.counters.add("badFrames", 11)
        try store.counters.flushNow()
        try store.pool.close()
        store = try Store.open(path: path).store
        #expect(store.counters.all == ["cacheHits": 3, "badFrames": 11])
        store.counters.add("cacheHits")
        #expect(store.counters["cacheHits"] == 4)
        try store.counters.flushNow()
        #expect(try stored() == ["cacheHits": 4, "badFrames": 11])
    }

    @Test func concurrentAddsAreAllCounted() throws {
        let c = store.counters
        DispatchQueue.concurrentPerform(iterations: 8) { i in
            for _ in 0..<250 { c.add("hits") }
            c.add("worker\(i)", Int64(i))
        }
        #expect(c["hits"] == 2000)
        #expect(c.all.count == 9)
        try c.flushNow()
        #expect(try stored()["hits"] == 2000)
        #expect(try stored()["worker7"] == 7)
    }

    @Test func eachStoreReadsWhatIsStoredWhenOpened() throws {
        // A second Store on the same file sees what the first had written when it opened.
        store.counters.add("a", 2)
        try store.counters.flushNow()
        let other = try Store(path: path)
        defer { try? other.pool.close() }
        #expect(other.counters.all == ["a": 2])
    }
}
