import Foundation
import GRDB
import JamzCore
@testable import JamzStore
import Testing

@Suite final class CatalogTests {
    let dir: TempDir
    let store: Store

    init() throws {
        dir = try TempDir()
        store = try Store.open(path: dir.file("catalog.sqlite")).store
    }

    deinit { try? store.pool.close() }

    func write<T>(_ body: (Database) throws -> T) throws -> T { try store.pool.write(body) }
    func search(_ q: String) throws -> [String] { try store.pool.read { try Catalog.search($0, q) }.map(\.title) }

    // MARK: insert

    @Test func insertStoresTheTrack() throws {
        let info = TrackInfo(id: tid("a"), title: "Song", artist: "Band", album: "LP", frames: 7_938_000,
                             sourceRate: 48_000, sourceChannels: 1, bytes: 2_875_000)
        #expect(try write { try Catalog.insert($0, info) })
        let rec = try #require(try store.pool.read { try Catalog.track($0, id: tid("a")) })
        #expect(rec.info == info)
        #expect(rec.id == String(repeating: "a", count: 64))
        #expect(rec.cached)
        #expect(rec.importSeq == 1)
        #expect(rec.playSeq == 1 && rec.playCount == 0)   // an import counts as a use, not a play
        #expect(try store.pool.read { try Catalog.track($0, id: tid("b")) } == nil)
    }

    @Test func importSeqIncreases() throws {
        try write { db in
            for d in "31a2" { try Catalog.insert(db, track(tid(d), "T\(d)")) }
        }
        let all = try store.pool.read { try Catalog.all($0) }
        #expect(all.map(\.title) == ["T3", "T1", "Ta", "T2"])   // import order, not id order
        #expect(all.map(\.importSeq) == [1, 2, 3, 4])
    }

    @Test func duplicateInsertReturnsFalseAndChangesNothing() throws {
        #expect(try write { try Catalog.insert($0, track(tid("a"), "Original", bytes: 100)) })
        #expect(try write { try Catalog.insert($0, track(tid("b"), "Other")) })
        #expect(try write { try Catalog.insert($0, track(tid("a"), "Changed", bytes: 999)) } == false)
        let rec = try #require(try store.pool.read { try Catalog.track($0, id: tid("a")) })
        #expect(rec.title == "Original")
        #expect(rec.bytes == 100)
        #expect(rec.importSeq == 1)
        #expect(try store.pool.read { try Catalog.all($0) }.count == 2)
    }

    @Test func anEvictedTrackCanBeInsertedAgain() throws {
        try write { db in
            try Catalog.insert(db, track(tid("a"), "A", bytes: 100))
            try Catalog.insert(db, track(tid("b"), "B", bytes: 200))
            try Catalog.markEvicted(db, id: tid("a").hex)
        }
        #expect(try store.pool.read { try Catalog.track($0, id: tid("a")) }?.cached == false)
        #expect(try usage(store) == UsageSnapshot(tracks: 1, bytes: 200))
        #expect(try write { try Catalog.insert($0, track(tid("a"), "A", bytes: 100)) })
        let rec = try #require(try store.pool.read { try Catalog.track($0, id: tid("a")) })
        #expect(rec.cached)
        #expect(rec.importSeq == 1)    // still the same catalog row
        #expect(try usage(store) == UsageSnapshot(tracks: 2, bytes: 300))
        // Cached again, so a further insert is a duplicate.
        #expect(try write { try Catalog.insert($0, track(tid("a"))) } == false)
    }

    // MARK: search

    func insertLibrary() throws {
        try write { db in
            try Catalog.insert(db, track(tid(prefix: "abcdef12"), "Highway Star", artist: "Deep Purple", album: "Machine Head"))
            try Catalog.insert(db, track(tid(prefix: "abcdef34"), "Smoke on the Water", artist: "Deep Purple", album: "Machine Head"))
            try Catalog.insert(db, track(tid(prefix: "123456"), "Highway to Hell", artist: "AC/DC", album: "Highway to Hell"))
            try Catalog.insert(db, track(tid(prefix: "fedcba"), "Born to Run", artist: "Bruce Springsteen", album: "Born to Run"))
            try Catalog.insert(db, track(tid(prefix: "0badf00d"), "Facade", artist: "Nobody", album: "Singles"))
        }
    }

    @Test func searchByIDPrefix() throws {
        try insertLibrary()
        #expect(try search("abcdef") == ["Highway Star", "Smoke on the Water"])
        #expect(try search("abcdef3") == ["Smoke on the Water"])
        #expect(try search("ABCDEF12") == ["Highway Star"])       // case-folded
        #expect(try search("  123456 ") == ["Highway to Hell"])   // trimmed
        #expect(try search(tid(prefix: "fedcba").hex) == ["Born to Run"])
        #expect(try search(tid(prefix: "fedcba").hex.uppercased()) == ["Born to Run"])
        #expect(try search("0badf00d") == ["Facade"])
    }

    @Test func shortOrNonMatchingHexFallsBackToWords() throws {
        try insertLibrary()
        // Five hex digits are too few for an id: searched as a word, and no title has it.
        #expect(try search("abcde") == [])
        #expect(try search("12345") == [])
        // "facade" is six hex digits but no id starts with it: found by title instead.
        #expect(try search("facade") == ["Facade"])
        #expect(try search("FACADE") == ["Facade"])
        // A hex-looking string matching neither.
        #expect(try search("eeeeee") == [])
    }

    @Test func searchByWordsInTitleArtistAndAlbum() throws {
        try insertLibrary()
        #expect(try search("highway") == ["Highway Star", "Highway to Hell"])
        #expect(try search("HIGHWAY purple") == ["Highway Star"])          // title + artist
        #expect(try search("deep machine") == ["Highway Star", "Smoke on the Water"])  // artist + album
        #expect(try search("water smoke") == ["Smoke on the Water"])       // any order
        #expect(try search("  born   run  ") == ["Born to Run"])           // extra spaces
        #expect(try search("springsteen") == ["Born to Run"])
        #expect(try search("ac/dc hell") == ["Highway to Hell"])
        #expect(try search("to") == ["Highway to Hell", "Born to Run"])    // substrings count
        #expect(try search("singles") == ["Facade"])
    }

    @Test func everyWordMustMatch() throws {
        try insertLibrary()
        #expect(try search("highway bruce") == [])
        #expect(try search("deep purple zeppelin") == [])
        #expect(try search("nothing") == [])
    }

    @Test func emptySearchListsEverythingInImportOrder() throws {
        try insertLibrary()
        let all = ["Highway Star", "Smoke on the Water", "Highway to Hell", "Born to Run", "Facade"]
        #expect(try search("") == all)
        #expect(try search("   ") == all)
    }

    @Test func caseInsensitiveBeyondASCII() throws {
        try write { db in
            try Catalog.insert(db, track(tid("1"), "Ljósið", artist: "Ólafur Arnalds", album: "Living Room Songs"))
            try Catalog.insert(db, track(tid("2"), "Über den Wolken", artist: "Reinhard Mey", album: "Mein Achtel Lorbeerblatt"))
        }
        // Lower-case non-ASCII letters in the data match as typed.
        #expect(try search("ljósið") == ["Ljósið"])
        do {
            #expect(try search("Ólafur") == ["Ljósið"])
            #expect(try search("über") == ["Über den Wolken"])
            #expect(try search("ÜBER") == ["Über den Wolken"])
        }
    }

    @Test func wordsAreMatchedLiterally() throws {
        try write { db in
            try Catalog.insert(db, track(tid("1"), "abc"))
            try Catalog.insert(db, track(tid("2"), "100% Pure", artist: "Band_One"))
        }
        #expect(try search("100%") == ["100% Pure"])
        #expect(try search("band_one") == ["100% Pure"])
        do {
            #expect(try search("a_c") == [])
            #expect(try search("_") == ["100% Pure"])
            #expect(try search("%") == ["100% Pure"])
        }
    }

    // MARK: usage

    @Test func usageCountsCachedTracksOnly() throws {
        #expect(try usage(store) == UsageSnapshot(tracks: 0, bytes: 0))
        try write { db in
            try Catalog.insert(db, track(tid("1"), bytes: 100))
            try Catalog.insert(db, track(tid("2"), bytes: 200))
            try Catalog.insert(db, track(tid("3"), bytes: 5_000_000_000))   // > 4 GiB: 64-bit sums
        }
        #expect(try usage(store) == UsageSnapshot(tracks: 3, bytes: 5_000_000_300))
        try write { try Catalog.markEvicted($0, id: tid("3").hex) }
        #expect(try usage(store) == UsageSnapshot(tracks: 2, bytes: 300))
        try write { db in
            try Catalog.markEvicted(db, id: tid("1").hex)
            try Catalog.markEvicted(db, id: tid("2").hex)
        }
        #expect(try usage(store) == UsageSnapshot(tracks: 0, bytes: 0))
        // Evicted tracks stay in the catalog.
        #expect(try store.pool.read { try Catalog.all($0) }.count == 3)
    }

    // MARK: play order and eviction

    @Test func markPlayedCountsPlays() throws {
        try write { db in
            try Catalog.insert(db, track(tid("1")))
            try Catalog.insert(db, track(tid("2")))
            try Catalog.markPlayed(db, id: tid("2"))
            try Catalog.markPlayed(db, id: tid("1"))
            try Catalog.markPlayed(db, id: tid("2"))
        }
        let one = try #require(try store.pool.read { try Catalog.track($0, id: tid("1")) })
        let two = try #require(try store.pool.read { try Catalog.track($0, id: tid("2")) })
        #expect(one.playCount == 1 && two.playCount == 2)
        #expect(two.playSeq > one.playSeq)
        #expect(one.playSeq > 0)
    }

    func candidates() throws -> [String] {
        try store.pool.read { try Catalog.evictionCandidates($0) }.map(\.title)
    }

    @Test func evictionCandidatesLeastRecentlyPlayedFirst() throws {
        try write { db in
            for name in ["A", "B", "C", "D"] {
                try Catalog.insert(db, track(tid(Character(name.lowercased())), name))
            }
        }
        #expect(try candidates() == ["A", "B", "C", "D"])            // never played: import order (each import a use)
        try write { db in
            try Catalog.markPlayed(db, id: tid("c"))
            try Catalog.markPlayed(db, id: tid("a"))
        }
        #expect(try candidates() == ["B", "D", "C", "A"])            // least recently used first
        try write { try Catalog.markPlayed($0, id: tid("c")) }
        #expect(try candidates() == ["B", "D", "A", "C"])
        try write { db in
            try Catalog.markPlayed(db, id: tid("b"))
            try Catalog.markPlayed(db, id: tid("d"))
        }
        #expect(try candidates() == ["A", "C", "B", "D"])
        // A track imported after all the others were played is the most recently used, not the
        // first to be evicted.
        try write { try Catalog.insert($0, track(tid("e"), "E")) }
        #expect(try candidates() == ["A", "C", "B", "D", "E"])
    }

    @Test func tracksOnTheConvoyPlaylistAreNotEvictedUntilRemoved() throws {
        try write { db in
            for name in ["A", "B", "C"] { try Catalog.insert(db, track(tid(Character(name.lowercased())), name)) }
        }
        let me = MemberID(5), dj = Term(number: 1, dj: me)
        let addB = PlaylistOp(id: OpID(origin: me, seq: 1), lamport: 1, term: dj, edit: .add(track: tid("b"), frames: 10, after: nil))
        let addC = PlaylistOp(id: OpID(origin: MemberID(9), seq: 1), lamport: 2, term: dj, edit: .add(track: tid("c"), frames: 10, after: nil))
        try write { try ConvoyLog.append($0, [addB, addC]) }
        #expect(try candidates() == ["A"])
        // A remove by a member that was not the DJ of its term is kept, inert: B stays pinned.
        let inert = PlaylistOp(id: OpID(origin: MemberID(9), seq: 2), lamport: 3, term: dj, edit: .remove(entry: addB.id))
        try write { try ConvoyLog.append($0, [inert]) }
        #expect(try candidates() == ["A"])
        let removeB = PlaylistOp(id: OpID(origin: me, seq: 2), lamport: 4, term: dj, edit: .remove(entry: addB.id))
        try write { try ConvoyLog.append($0, [removeB]) }
        #expect(try candidates() == ["A", "B"])
        try write { try ConvoyLog.clearOps($0) }   // left the convoy
        #expect(try candidates() == ["A", "B", "C"])
    }

    @Test func evictionCandidatesAreCachedAndNotQueued() throws {
        try write { db in
            for name in ["A", "B", "C", "D", "E"] {
                try Catalog.insert(db, track(tid(Character(name.lowercased())), name))
            }
        }
        let queued = try write { db in
            try PlayQueue.append(db, [try Catalog.track(db, id: tid("b"))!, try Catalog.track(db, id: tid("d"))!,
                                      try Catalog.track(db, id: tid("b"))!])
        }
        #expect(try candidates() == ["A", "C", "E"])
        try write { try Catalog.markEvicted($0, id: tid("a").hex) }
        #expect(try candidates() == ["C", "E"])
        // Off the queue: a candidate again. Queued twice: candidate only when both entries are gone.
        try write { try PlayQueue.remove($0, entryID: queued[1].id) }
        #expect(try candidates() == ["C", "D", "E"])
        try write { try PlayQueue.remove($0, entryID: queued[0].id) }
        #expect(try candidates() == ["C", "D", "E"])
        try write { try PlayQueue.remove($0, entryID: queued[2].id) }
        #expect(try candidates() == ["B", "C", "D", "E"])
    }

    @Test func allCandidatesAreEvictableInOrder() throws {
        // The cache's loop: evict candidates until usage fits.
        try write { db in
            for (i, d) in "123456".enumerated() { try Catalog.insert(db, track(tid(d), "T\(d)", bytes: Int64(100 * (i + 1)))) }
            try Catalog.markPlayed(db, id: tid("1"))
        }
        var evicted: [String] = []
        while try usage(store).bytes > 1000 {
            let next = try #require(try candidates().first)
            try #require(!evicted.contains(next), "\(next) offered for eviction twice")
            evicted.append(next)
            try write { db in
                let rec = try Catalog.search(db, "").first { $0.title == next }!
                try Catalog.markEvicted(db, id: rec.id)
            }
        }
        // Never-played tracks go first, in import order; the one played track (T1) is kept longest.
        #expect(evicted == ["T2", "T3", "T4", "T5"])
        #expect(try usage(store) == UsageSnapshot(tracks: 2, bytes: 100 + 600))
        #expect(try candidates() == ["T6", "T1"])
    }
}
