import Foundation
import GRDB
import JamzCore
@testable import JamzStore
import Testing

@Suite struct StoreTests {
    @Test func opensANewFile() throws {
        let dir = try TempDir()
        let path = dir.file("jamz.sqlite")
        #expect(!FileManager.default.fileExists(atPath: path))
        let r = try Store.open(path: path)
        defer { try? r.store.pool.close() }
        #expect(r.movedAside == nil)
        #expect(r.reason == nil)
        #expect(r.store.path == path)
        #expect(FileManager.default.fileExists(atPath: path))
        let tables = try r.store.pool.read { db in
            try String.fetchAll(db, sql: "SELECT name FROM sqlite_master WHERE type = 'table'")
        }
        #expect(Set(tables).isSuperset(of: ["track", "queueEntry", "player", "counter"]))
        #expect(!dir.contents().contains { $0.contains(".broken") })
    }

    @Test func walModeAndFullSynchronousOnEveryConnection() throws {
        let dir = try TempDir()
        let r = try Store.open(path: dir.file("jamz.sqlite"))
        defer { try? r.store.pool.close() }
        let pool = r.store.pool
        #expect(try pool.read { try String.fetchOne($0, sql: "PRAGMA journal_mode") } == "wal")
        #expect(try pool.write { try String.fetchOne($0, sql: "PRAGMA journal_mode") } == "wal")
        #expect(try pool.read { try Int.fetchOne($0, sql: "PRAGMA synchronous") } == 2)
        // The writer is the connection whose commits must be durable.
        do {
            #expect(try pool.write { try Int.fetchOne($0, sql: "PRAGMA synchronous") } == 2)
            #expect(try pool.writeWithoutTransaction { try Int.fetchOne($0, sql: "PRAGMA synchronous") } == 2)
        }
        // Several readers at once: each connection is prepared the same way.
        let values = try (0..<4).map { _ in try pool.read { try Int.fetchOne($0, sql: "PRAGMA synchronous") } }
        #expect(values == [2, 2, 2, 2])
        // The queue's reference to the catalog is enforced.
        #expect(try pool.read { try Int.fetchOne($0, sql: "PRAGMA foreign_keys") } == 1)
    }

    @Test func plainInitAlsoMigrates() throws {
        let dir = try TempDir()
        let store = try Store(path: dir.file("plain.sqlite"))
        defer { try? store.pool.close() }
        #expect(try store.pool.write { try Catalog.insert($0, track(tid("a"))) })
        #expect(try store.pool.read { try String.fetchOne($0, sql: "PRAGMA journal_mode") } == "wal")
    }

    @Test func survivesCloseAndReopen() throws {
        let dir = try TempDir()
        let path = dir.file("jamz.sqlite")
        do {
            let store = try Store.open(path: path).store
            try store.pool.write { db in
                try Catalog.insert(db, track(tid("a"), "First", bytes: 10))
                try Catalog.insert(db, track(tid("b"), "Second", bytes: 20))
                try Catalog.markPlayed(db, id: tid("b"))
                let tracks = try Catalog.all(db)
                _ = try PlayQueue.append(db, [tracks[1], tracks[0]])
                try PlayerState.save(db, PlayerRecord(playing: true, entryId: 2, frame: 12_345, volume: 70))
            }
            store.counters.add("hits", 3)
            try store.counters.flushNow()
            try store.pool.close()
        }
        let r = try Store.open(path: path)
        defer { try? r.store.pool.close() }
        #expect(r.movedAside == nil && r.reason == nil)
        #expect(r.store.counters.all == ["hits": 3])
        try r.store.pool.read { db in
            let all = try Catalog.all(db)
            #expect(all.map(\.title) == ["First", "Second"])
            #expect(all.map(\.playCount) == [0, 1])
            #expect(try PlayQueue.items(db).map(\.track.title) == ["Second", "First"])
            #expect(try PlayQueue.entries(db).map(\.id) == [1, 2])
            #expect(try PlayerState.load(db) == PlayerRecord(playing: true, entryId: 2, frame: 12_345, volume: 70))
            #expect(UsageSnapshot(try Catalog.usage(db)) == UsageSnapshot(tracks: 2, bytes: 30))
        }
    }

    @Test func aGarbageFileIsMovedAsideAndReplaced() throws {
        let dir = try TempDir()
        let path = dir.file("jamz.sqlite")
        let junk = garbage(count: 8192, seed: 1)
        try junk.write(to: URL(fileURLWithPath: path))

        let r = try Store.open(path: path)
        defer { try? r.store.pool.close() }
        #expect(r.movedAside == path + ".broken-1")
        #expect(r.reason != nil && r.reason != "")
        #expect(FileManager.default.contents(atPath: path + ".broken-1") == junk)
        // The fresh database works and is empty.
        try r.store.pool.write { db throws in
            #expect(try Catalog.all(db).isEmpty)
            #expect(try Catalog.insert(db, track(tid("c"))))
        }
        #expect(try r.store.pool.read { try Catalog.all($0).count } == 1)
        #expect(try r.store.pool.read { try String.fetchOne($0, sql: "PRAGMA journal_mode") } == "wal")
    }

    @Test func aSecondBrokenFileGoesToBroken2() throws {
        let dir = try TempDir()
        let path = dir.file("jamz.sqlite")
        let first = garbage(count: 4096, seed: 1), second = garbage(count: 5000, seed: 2)
        try first.write(to: URL(fileURLWithPath: path))
        let r1 = try Store.open(path: path)
        #expect(r1.movedAside == path + ".broken-1")
        try r1.store.pool.close()

        for suffix in ["-wal", "-shm"] { try? FileManager.default.removeItem(atPath: path + suffix) }
        try second.write(to: URL(fileURLWithPath: path))
        let r2 = try Store.open(path: path)
        defer { try? r2.store.pool.close() }
        #expect(r2.movedAside == path + ".broken-2")
        #expect(r2.reason != nil)
        #expect(FileManager.default.contents(atPath: path + ".broken-1") == first)
        #expect(FileManager.default.contents(atPath: path + ".broken-2") == second)
        #expect(try r2.store.pool.write { try Catalog.insert($0, track(tid("d"))) })
    }

    @Test func aDatabaseWithCorruptPagesIsMovedAside() throws {
        let dir = try TempDir()
        let path = dir.file("jamz.sqlite")
        do {
            let store = try Store(path: path)
            try store.pool.write { db in
                for i in 0..<400 {
                    let hex = String(format: "%08x", i) + String(repeating: "e", count: 56)
                    try Catalog.insert(db, track(TrackID(hex: hex)!, "Track \(i) " + String(repeating: "x", count: 200)))
                }
            }
            // Everything into the main file, so the leftover -wal/-shm can go.
            _ = try store.pool.writeWithoutTransaction { try $0.checkpoint(.truncate) }
            try store.pool.close()
        }
        for suffix in ["-wal", "-shm"] { try? FileManager.default.removeItem(atPath: path + suffix) }
        // Keep page 1 (header and schema), scribble over everything after it.
        let original = try #require(FileManager.default.contents(atPath: path))
        #expect(original.count > 3 * 4096)
        var damaged = original.prefix(4096)
        damaged.append(garbage(count: original.count - 4096, seed: 3))
        try damaged.write(to: URL(fileURLWithPath: path))

        let r = try Store.open(path: path)
        defer { try? r.store.pool.close() }
        #expect(r.movedAside == path + ".broken-1")
        #expect(r.reason != nil)
        // SQLite may write to the file before the damage is found (GRDB's WAL setup), so only
        // check that the old file, not a fresh one, was moved aside.
        let aside = try #require(FileManager.default.contents(atPath: path + ".broken-1"))
        #expect(aside.count >= damaged.count)
        #expect(aside.prefix(16) == Data("SQLite format 3\0".utf8))
        #expect(try r.store.pool.read { try Catalog.all($0) }.isEmpty)
        #expect(try r.store.pool.read { try String.fetchOne($0, sql: "PRAGMA quick_check") } == "ok")
    }

    @Test func aHealthyDatabaseIsNeverMovedAside() throws {
        let dir = try TempDir()
        let path = dir.file("jamz.sqlite")
        for round in 1...3 {
            let r = try Store.open(path: path)
            #expect(r.movedAside == nil, "round \(round)")
            r.store.counters.add("opens")
            try r.store.counters.flushNow()
            try r.store.pool.close()
        }
        let r = try Store.open(path: path)
        defer { try? r.store.pool.close() }
        #expect(r.store.counters.all == ["opens": 3])
        #expect(!dir.contents().contains { $0.contains(".broken") })
    }

    @Test func aDatabaseFailingQuickCheckIsMovedAside() throws {
        let dir = try TempDir()
        let path = dir.file("jamz.sqlite")
        var pageSize = 0, trackRoot = 0, migrationsRoot = 0
        do {
            let store = try Store(path: path)
            try store.pool.write { db in
                for i in 0..<400 {
                    let hex = String(format: "%08x", i) + String(repeating: "e", count: 56)
                    try Catalog.insert(db, track(TrackID(hex: hex)!, "Track \(i) " + String(repeating: "x", count: 200)))
                }
            }
            (pageSize, trackRoot, migrationsRoot) = try store.pool.read { db in
                (try Int.fetchOne(db, sql: "PRAGMA page_size")!,
                 try Int.fetchOne(db, sql: "SELECT rootpage FROM sqlite_master WHERE name = 'track'")!,
                 try Int.fetchOne(db, sql: "SELECT rootpage FROM sqlite_master WHERE name = 'grdb_migrations'")!)
            }
            // Everything into the main file, so the leftover -wal/-shm can go.
            _ = try store.pool.writeWithoutTransaction { try $0.checkpoint(.truncate) }
            try store.pool.close()
        }
        for suffix in ["-wal", "-shm"] { try? FileManager.default.removeItem(atPath: path + suffix) }
        #expect(trackRoot > 1 && trackRoot != migrationsRoot)
        // Damage only the catalog's root page: the schema and migrations still read fine.
        var bytes = try #require(FileManager.default.contents(atPath: path))
        let at = (trackRoot - 1) * pageSize
        try #require(at + pageSize <= bytes.count)
        bytes.replaceSubrange(at..<at + pageSize, with: garbage(count: pageSize, seed: 4))
        try bytes.write(to: URL(fileURLWithPath: path))

        let r = try Store.open(path: path)
        defer { try? r.store.pool.close() }
        #expect(r.movedAside == path + ".broken-1")
        #expect(r.reason?.hasPrefix("integrity check:") == true, "\(r.reason ?? "nil")")
        #expect(FileManager.default.fileExists(atPath: path + ".broken-1"))
        #expect(try r.store.pool.read { try Catalog.all($0) }.isEmpty)
        #expect(try r.store.pool.read { try String.fetchOne($0, sql: "PRAGMA quick_check") } == "ok")
    }
}
