import Foundation
import GRDB
import JamzCore
@testable import JamzStore
import Testing

/// Member ids on both sides of 2^63: stored as Int64 bit patterns, they must come back exact.
private let small = MemberID(1)
private let half = MemberID(0x8000_0000_0000_0000)
private let top = MemberID(UInt64.max)

private func oid(_ m: MemberID, _ seq: UInt64) -> OpID { OpID(origin: m, seq: seq) }

private func randomTrack(_ rng: inout SplitMix64) -> TrackID {
    TrackID(hex: (0..<4).map { _ in
        let h = String(rng.next(), radix: 16)
        return String(repeating: "0", count: 16 - h.count) + h
    }.joined())!
}

@Suite final class ConvoyLogTests {
    let dir: TempDir
    let store: Store

    init() throws {
        dir = try TempDir()
        store = try Store.open(path: dir.file("convoy.sqlite")).store
    }

    deinit { try? store.pool.close() }

    func stored() throws -> [PlaylistOp] { try store.pool.read { try ConvoyLog.loadOps($0) } }

    // MARK: ops

    /// Every kind of edit, nil and non-nil `after`, and the extremes of every UInt64/Int64 field.
    static let everyKind: [PlaylistOp] = [
        PlaylistOp(id: oid(top, 1), lamport: 1, term: Term(number: 0, dj: top),
                   edit: .add(track: tid("a"), frames: 44_100 * 200, after: nil)),
        PlaylistOp(id: oid(half, 1), lamport: 2, term: Term(number: 1, dj: small),
                   edit: .add(track: tid("b"), frames: 0, after: oid(top, 1))),
        PlaylistOp(id: oid(small, 1), lamport: 3, term: Term(number: UInt64.max, dj: small),
                   edit: .move(entry: oid(half, 1), after: nil)),
        PlaylistOp(id: oid(small, 2), lamport: 4, term: Term(number: 1 << 63, dj: small),
                   edit: .move(entry: oid(top, 1), after: oid(half, 1))),
        PlaylistOp(id: oid(small, 3), lamport: 5, term: Term(number: 2, dj: small),
                   edit: .remove(entry: oid(half, 1))),
        // Values only a rejected, inert op can carry (still held and persisted as they are).
        PlaylistOp(id: oid(top, UInt64.max), lamport: UInt64.max, term: Term(number: 7, dj: half),
                   edit: .add(track: tid("f"), frames: Int64.min, after: oid(top, UInt64.max - 1))),
        PlaylistOp(id: oid(half, 1 << 63), lamport: PlaylistLog.lamportLimit, term: Term(number: 3, dj: top),
                   edit: .remove(entry: oid(top, UInt64.max))),
        PlaylistOp(id: oid(MemberID(0), 9), lamport: 0, term: Term(number: 0, dj: MemberID(0)),
                   edit: .add(track: tid("0"), frames: Int64.max, after: nil)),
    ]

    @Test func everyEditKindRoundTripsInOriginSeqOrder() throws {
        try store.pool.write { try ConvoyLog.append($0, Self.everyKind.reversed()) }
        let back = try stored()
        // Unsigned order: origin 2^63 and UInt64.max come after 1, although negative in SQLite.
        #expect(back == Self.everyKind.sorted { $0.id < $1.id })
        #expect(back.map(\.id.origin) == [MemberID(0), small, small, small, half, half, top, top])
        for op in Self.everyKind {
            #expect(try store.pool.read { try ConvoyLog.op($0, id: op.id) } == op)
        }
        #expect(try store.pool.read { try ConvoyLog.op($0, id: oid(top, 2)) } == nil)
    }

    @Test func opsAreRealColumnsReadableWithSQL() throws {
        try store.pool.write { try ConvoyLog.append($0, Self.everyKind) }
        let row = try #require(try store.pool.read { db in
            try Row.fetchOne(db, sql: "SELECT * FROM playlist_op WHERE origin = -1 AND seq = 1")
        })
        #expect(row["origin"] as Int64 == -1)          // UInt64.max as its bit pattern
        #expect(row["term_dj"] as Int64 == -1)
        #expect(row["kind"] as String == "add")
        #expect(row["track"] as String == String(repeating: "a", count: 64))
        #expect(row["frames"] as Int64 == 44_100 * 200)
        #expect(row["after_origin"] as Int64? == nil)
        #expect(row["entry_origin"] as Int64? == nil)
        let kinds = try store.pool.read { db in
            try String.fetchAll(db, sql: "SELECT kind FROM playlist_op WHERE origin = 1 ORDER BY seq")
        }
        #expect(kinds == ["move", "move", "remove"])
        // The schema refuses a row that is no edit.
        #expect(throws: DatabaseError.self) {
            try self.store.pool.write { db in
                try db.execute(sql: "INSERT INTO playlist_op (origin, seq, lamport, term_number, term_dj, kind) VALUES (5, 1, 1, 0, 5, 'remove')")
            }
        }
    }

    @Test func reAppendingTheSameOpsIsANoOp() throws {
        let ops = Self.everyKind
        try store.pool.write { try ConvoyLog.append($0, ops) }
        try store.pool.write { try ConvoyLog.append($0, ops) }
        try store.pool.write { try ConvoyLog.append($0, ops + ops.reversed()) }
        try store.pool.write { try ConvoyLog.append($0, []) }
        #expect(try stored() == ops.sorted { $0.id < $1.id })
        #expect(try store.pool.read { try Int.fetchOne($0, sql: "SELECT COUNT(*) FROM playlist_op") } == ops.count)
    }

    @Test func aConflictingReAppendThrowsAndKeepsTheStoredOp() throws {
        let first = PlaylistOp(id: oid(top, 1), lamport: 1, term: Term(number: 0, dj: top),
                               edit: .add(track: tid("a"), frames: 1000, after: nil))
        try store.pool.write { try ConvoyLog.append($0, [first]) }
        var others: [PlaylistOp] = []
        for change in 0..<4 {
            var other = first
            switch change {
            case 0: other.lamport = 2
            case 1: other.term = Term(number: 1, dj: top)
            case 2: other.edit = .add(track: tid("a"), frames: 1001, after: nil)
            default: other.edit = .remove(entry: oid(top, 1))
            }
            others.append(other)
            #expect(throws: ConvoyLogError.conflictingOp(stored: first, offered: other)) {
                try self.store.pool.write { try ConvoyLog.append($0, [other]) }
            }
        }
        #expect(try stored() == [first])
        // A batch holding a conflict is stored not at all: the caller's transaction rolls back.
        let fresh = PlaylistOp(id: oid(small, 1), lamport: 2, term: Term(number: 0, dj: top),
                               edit: .add(track: tid("b"), frames: 5, after: oid(top, 1)))
        #expect(throws: ConvoyLogError.self) {
            try self.store.pool.write { try ConvoyLog.append($0, [fresh, others[2]]) }
        }
        #expect(try stored() == [first])
        let message = "\(ConvoyLogError.conflictingOp(stored: first, offered: others[0]))"
        #expect(message.contains("\(first.id)") && message.contains("already stored"))
    }

    /// Three cars (two with ids ≥ 2^63) edit at random, change DJ and exchange ops in any order
    /// (some arrive past a hole and wait); each stores what it makes before "sending" and what
    /// it holds after receiving. Restored from its store, every car's log is the same.
    @Test(arguments: [1, 2, 3, 0xC0FFEE] as [UInt64])
    func aRestoredLogIsTheSameAsTheOriginal(seed: UInt64) async throws {
        var rng = SplitMix64(seed: seed)
        let members = [MemberID(7), half, MemberID(UInt64.max - 7)]
        var logs = members.map { PlaylistLog(me: $0) }
        var saved = members.map { _ in Set<OpID>() }
        let stores = try members.indices.map { try Store.open(path: dir.file("car\($0).sqlite")).store }
        defer { for s in stores { try? s.pool.close() } }
        var term = Term(number: 1, dj: members[0])
        var waited = 0

        func persist(_ i: Int) async throws {
            let new = logs[i].ops.filter { !saved[i].contains($0.id) }
            try await stores[i].pool.write { try ConvoyLog.append($0, new) }
            saved[i].formUnion(new.map(\.id))
        }

        for _ in 0..<250 {
            let r = rng.next() % 10
            if r < 6 {
                let i = Int(rng.next() % 3)
                let list = logs[i].entries
                let pick = { (rng: inout SplitMix64) in list[Int(rng.next() % UInt64(list.count))].id }
                let edit: PlaylistEdit
                switch (list.isEmpty, term.dj == members[i], rng.next() % 4) {
                case (false, true, 0): edit = .remove(entry: pick(&rng))
                case (false, true, 1): edit = .move(entry: pick(&rng), after: rng.next() % 4 == 0 ? nil : pick(&rng))
                case (false, _, _): edit = .add(track: randomTrack(&rng), frames: Int64(rng.next() % 20_000_000),
                                                after: rng.next() % 3 == 0 ? nil : pick(&rng))
                case (true, _, _): edit = .add(track: randomTrack(&rng), frames: Int64(rng.next() % 20_000_000), after: nil)
                }
                let op = try logs[i].make(edit, term: term)
                try await stores[i].pool.write { try ConvoyLog.append($0, [op]) }   // stored before it is sent
                saved[i].insert(op.id)
            } else if r < 9 {
                let from = Int(rng.next() % 3), to = (from + 1 + Int(rng.next() % 2)) % 3
                var batch = logs[from].missing(for: logs[to].highWater, limit: 1 + Int(rng.next() % 40))
                batch.removeAll { _ in rng.next() % 4 == 0 }    // lost on the way: later ones wait
                batch.shuffle(using: &rng)
                _ = logs[to].receive(contentsOf: batch)
                waited = max(waited, logs[to].waitingCount)
                try await persist(to)
            } else {
                term = term.next(for: members[Int(rng.next() % 3)])
            }
        }
        #expect(waited > 0, "the scenario should deliver some ops past a hole")
        let edits = logs.flatMap(\.ops).map(\.edit)
        #expect(edits.contains { if case .remove = $0 { true } else { false } })
        #expect(edits.contains { if case .move(_, nil) = $0 { true } else { false } })
        #expect(edits.contains { if case .move(_, .some) = $0 { true } else { false } })
        #expect(edits.contains { if case .add(_, _, nil) = $0 { true } else { false } })
        for i in members.indices {
            let restored = try await PlaylistLog.restore(from: stores[i], me: members[i])
            #expect(restored.me == members[i])
            #expect(restored.entries == logs[i].entries)
            #expect(restored.highWater == logs[i].highWater)
            #expect(restored.ops == logs[i].ops)
            #expect(!logs[i].ops.isEmpty)
        }
    }

    /// Ops a log rejects but holds (so later ops of their origin are not stuck) are stored too,
    /// and the restored log holds and rejects them the same way.
    @Test func inertOpsAreStoredAndRestoredInert() async throws {
        let me = top
        var log = PlaylistLog(me: me)
        let a = try log.make(.add(track: tid("a"), frames: 100, after: nil), term: Term(number: 1, dj: half))
        let incoming = [
            PlaylistOp(id: oid(half, 1), lamport: 2, term: Term(number: 1, dj: small),   // not that term's DJ
                       edit: .remove(entry: a.id)),
            PlaylistOp(id: oid(half, 2), lamport: 3, term: Term(number: 1, dj: half),
                       edit: .add(track: tid("b"), frames: -5, after: nil)),              // negative length
            PlaylistOp(id: oid(half, 3), lamport: UInt64.max, term: Term(number: 1, dj: half),
                       edit: .add(track: tid("c"), frames: 5, after: nil)),               // lamport out of range
            PlaylistOp(id: oid(half, 4), lamport: 4, term: Term(number: 1, dj: half),
                       edit: .add(track: tid("d"), frames: 5, after: a.id)),
        ]
        _ = log.receive(contentsOf: incoming)
        #expect(log.highWater == [me: 1, half: 4])
        #expect(log.entries.map(\.id) == [a.id, oid(half, 4)])
        let held = log.ops
        try await store.pool.write { try ConvoyLog.append($0, held) }
        let restored = try await PlaylistLog.restore(from: store, me: me)
        #expect(restored.ops == log.ops)
        #expect(restored.entries == log.entries)
        #expect(restored.highWater == log.highWater)
    }

    // MARK: session

    @Test func nothingStoredYet() throws {
        try store.pool.read { db throws in
            #expect(try ConvoyLog.loadOps(db).isEmpty)
            #expect(try ConvoyLog.loadTimeline(db) == nil)
            #expect(try ConvoyLog.memberID(db) == nil)
        }
    }

    @Test func aTimelineWithNoAnchorRoundTrips() throws {
        let t = ConvoyTimeline(term: Term(number: 3, dj: top), version: 0)
        try store.pool.write { try ConvoyLog.saveTimeline($0, t) }
        #expect(try store.pool.read { try ConvoyLog.loadTimeline($0) } == t)
        #expect(try store.pool.read { try ConvoyLog.memberID($0) } == nil)
    }

    static let playing = ConvoyTimeline(
        term: Term(number: UInt64.max, dj: half), version: (1 << 63) + 5,
        anchor: TimelineAnchor(entry: oid(top, UInt64.max), track: tid("e"), frame: Int64.max, time: Int64.min, rate: 1),
        previous: TimelineAnchor(entry: oid(small, 2), track: tid("d"), frame: 0, time: -1, rate: 0))

    @Test func aTimelineWithAnchorAndPreviousRoundTrips() throws {
        try store.pool.write { try ConvoyLog.saveTimeline($0, Self.playing) }
        #expect(try store.pool.read { try ConvoyLog.loadTimeline($0) } == Self.playing)
        var onlyAnchor = Self.playing
        onlyAnchor.previous = nil
        try store.pool.write { try ConvoyLog.saveTimeline($0, onlyAnchor) }
        #expect(try store.pool.read { try ConvoyLog.loadTimeline($0) } == onlyAnchor)
    }

    @Test func savingReplacesTheWholeTimeline() throws {
        try store.pool.write { try ConvoyLog.saveTimeline($0, Self.playing) }
        let bare = ConvoyTimeline(term: Term(number: 4, dj: small), version: 1)
        try store.pool.write { try ConvoyLog.saveTimeline($0, bare) }
        #expect(try store.pool.read { try ConvoyLog.loadTimeline($0) } == bare)
        #expect(try store.pool.read { try Int.fetchOne($0, sql: "SELECT COUNT(*) FROM convoy_session") } == 1)
        #expect(try store.pool.read { try Int.fetchOne($0, sql: "SELECT COUNT(*) FROM convoy_session WHERE anchor_track IS NOT NULL OR previous_track IS NOT NULL") } == 0)
    }

    @Test func theMemberIDIsSetOnceAndKept() throws {
        let me = MemberID(0xFEDC_BA98_7654_3210)
        try store.pool.write { try ConvoyLog.setMemberID($0, me) }
        #expect(try store.pool.read { try ConvoyLog.memberID($0) } == me)
        try store.pool.write { try ConvoyLog.setMemberID($0, me) }    // the same id again: nothing changes
        #expect(throws: ConvoyLogError.memberIDAlreadySet(stored: me, offered: small)) {
            try self.store.pool.write { try ConvoyLog.setMemberID($0, small) }
        }
        #expect(try store.pool.read { try ConvoyLog.memberID($0) } == me)
        #expect(try store.pool.read { try Int64.fetchOne($0, sql: "SELECT member_id FROM convoy_session") } == Int64(bitPattern: me.raw))
    }

    @Test func identityAndTimelineShareTheRowWithoutClobbering() throws {
        // Timeline first, then identity: both kept; and again the other way round.
        try store.pool.write { try ConvoyLog.saveTimeline($0, Self.playing) }
        try store.pool.write { try ConvoyLog.setMemberID($0, top) }
        try store.pool.write { try ConvoyLog.saveTimeline($0, Self.playing) }
        try store.pool.read { db throws in
            #expect(try ConvoyLog.memberID(db) == top)
            #expect(try ConvoyLog.loadTimeline(db) == Self.playing)
        }
        let other = try Store.open(path: dir.file("other.sqlite")).store
        defer { try? other.pool.close() }
        try other.pool.write { try ConvoyLog.setMemberID($0, half) }
        #expect(try other.pool.read { try ConvoyLog.loadTimeline($0) } == nil)
        try other.pool.write { try ConvoyLog.saveTimeline($0, Self.playing) }
        #expect(try other.pool.read { try ConvoyLog.memberID($0) } == half)
    }

    // MARK: power loss

    /// Copies the database files as they are on disk right now, as a power cut would leave them,
    /// without closing anything. `walBytes` keeps only that much of the WAL (a torn write).
    func snapshot(of path: String, into name: String, shm: Bool, walBytes: Int? = nil) throws -> String {
        let fm = FileManager.default
        let copy = dir.file(name)
        try fm.createDirectory(atPath: copy, withIntermediateDirectories: true)
        let target = (copy as NSString).appendingPathComponent("jamz.sqlite")
        try fm.copyItem(atPath: path, toPath: target)
        let wal = try #require(fm.contents(atPath: path + "-wal"))
        try (walBytes.map { wal.prefix($0) } ?? wal).write(to: URL(fileURLWithPath: target + "-wal"))
        if shm { try fm.copyItem(atPath: path + "-shm", toPath: target + "-shm") }
        return target
    }

    func reopenChecked(_ path: String) throws -> Store {
        let r = try Store.open(path: path)
        #expect(r.movedAside == nil && r.reason == nil)
        #expect(try r.store.pool.read { try String.fetchAll($0, sql: "PRAGMA integrity_check") } == ["ok"])
        return r.store
    }

    /// Every op whose write returned (acknowledged: it may have been sent) is in the copy, and
    /// so are the identity and timeline. With the -shm and without it (rebuilt from the WAL).
    @Test(arguments: [true, false])
    func acknowledgedOpsSurviveAPowerCut(keepShm: Bool) async throws {
        let me = MemberID(0x9000_0000_0000_0001)
        try await store.pool.write { try ConvoyLog.setMemberID($0, me) }
        var log = PlaylistLog(me: me)
        var rng = SplitMix64(seed: 99)
        var sent: [PlaylistOp] = []
        for n in 0..<60 {
            let list = log.entries
            let edit: PlaylistEdit = n % 5 == 4 && !list.isEmpty
                ? .move(entry: list[Int(rng.next() % UInt64(list.count))].id, after: nil)
                : .add(track: randomTrack(&rng), frames: Int64(rng.next() % 10_000_000), after: list.last?.id)
            let op = try log.make(edit, term: Term(number: 2, dj: me))
            try await store.pool.write { try ConvoyLog.append($0, [op]) }
            sent.append(op)
        }
        try await store.pool.write { try ConvoyLog.saveTimeline($0, Self.playing) }
        // The data is still in the WAL, not checkpointed into the main file.
        let walSize = try FileManager.default.attributesOfItem(atPath: store.path + "-wal")[.size] as? Int
        #expect((walSize ?? 0) > 0)

        let copy = try reopenChecked(try snapshot(of: store.path, into: "cut", shm: keepShm))
        defer { try? copy.pool.close() }
        #expect(try await copy.pool.read { try ConvoyLog.loadOps($0) } == sent)
        #expect(try await copy.pool.read { try ConvoyLog.memberID($0) } == me)
        #expect(try await copy.pool.read { try ConvoyLog.loadTimeline($0) } == Self.playing)
        let restored = try await PlaylistLog.restore(from: copy, me: me)
        #expect(restored.entries == log.entries && restored.highWater == log.highWater)
        // The restored car numbers its next op after the last one it sent: no seq is reused.
        var next = restored
        let op = try next.make(.add(track: tid("9"), frames: 1, after: nil), term: Term(number: 2, dj: me))
        #expect(op.id == oid(me, 61))
    }

    /// A cut in the middle of a commit: that write never returned (so its ops were never sent)
    /// and is lost whole; everything before it is there and the database is sound.
    @Test func aTornLastCommitIsLostWhole() throws {
        let ops = (1...12).map { i in
            PlaylistOp(id: oid(half, UInt64(i)), lamport: UInt64(i), term: Term(number: 0, dj: half),
                       edit: .add(track: tid(prefix: String(i, radix: 16)), frames: Int64(i), after: nil))
        }
        for op in ops.prefix(8) { try store.pool.write { try ConvoyLog.append($0, [op]) } }
        let walPath = store.path + "-wal"
        let before = try #require(FileManager.default.attributesOfItem(atPath: walPath)[.size] as? Int)
        try store.pool.write { try ConvoyLog.append($0, Array(ops.suffix(4))) }
        let after = try #require(FileManager.default.attributesOfItem(atPath: walPath)[.size] as? Int)
        try #require(after > before, "the last commit should append to the WAL")

        for (name, cut) in [("torn-mid", (before + after) / 2), ("torn-last-byte", after - 1)] {
            let copy = try reopenChecked(try snapshot(of: store.path, into: name, shm: false, walBytes: cut))
            defer { try? copy.pool.close() }
            #expect(try copy.pool.read { try ConvoyLog.loadOps($0) } == Array(ops.prefix(8)), "\(name)")
        }
        let whole = try reopenChecked(try snapshot(of: store.path, into: "whole", shm: false))
        defer { try? whole.pool.close() }
        #expect(try whole.pool.read { try ConvoyLog.loadOps($0) } == ops)
    }
}
