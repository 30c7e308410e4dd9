import Foundation
import JamzCore
import Testing

private let A = MemberID(0xA), B = MemberID(0xB), C = MemberID(0xC)

/// A distinct track per number.
private func track(_ n: Int) -> TrackID { tid(prefix: String(n, radix: 16)) }

private extension PlaylistLog {
    var ids: [OpID] { entries.map(\.id) }
}

/// `a` sends its high-water map to `b` and takes in `b`'s answer.
private func pull(_ logs: inout [PlaylistLog], _ a: Int, from b: Int, limit: Int = 10_000) {
    let answer = logs[b].missing(for: logs[a].highWater, limit: limit)
    _ = logs[a].receive(contentsOf: answer)
}

/// Lossless anti-entropy between every pair until nobody learns anything; returns the rounds.
@discardableResult
private func syncAll(_ logs: inout [PlaylistLog], limit: Int = 10_000) -> Int {
    for round in 1...1000 {
        let before = logs.map(\.highWater)
        for a in logs.indices { for b in logs.indices where a != b { pull(&logs, a, from: b, limit: limit) } }
        if logs.map(\.highWater) == before { return round }
    }
    Issue.record("anti-entropy did not settle")
    return 1000
}

/// The merge rules stated again, naively and independently of `PlaylistLog`: drop the
/// unauthorized, sort by (lamport, origin, seq), replay on a plain array.
private func referenceList(_ ops: [PlaylistOp]) -> [OpID] {
    let valid = ops.filter { op in
        if case .add = op.edit { return op.lamport < PlaylistLog.lamportLimit }
        return op.term.dj == op.id.origin && op.lamport < PlaylistLog.lamportLimit
    }
    let sorted = valid.sorted {
        ($0.lamport, $0.id.origin.raw, $0.id.seq) < ($1.lamport, $1.id.origin.raw, $1.id.seq)
    }
    var list: [OpID] = []
    var removed: Set<OpID> = []
    for op in sorted {
        switch op.edit {
        case .add(_, _, let after):
            if removed.contains(op.id) { continue }
            if let after, let i = list.firstIndex(of: after) { list.insert(op.id, at: i + 1) } else { list.append(op.id) }
        case .remove(let entry):
            removed.insert(entry)
            list.removeAll { $0 == entry }
        case .move(let entry, let after):
            guard let i = list.firstIndex(of: entry), entry != after else { continue }
            list.remove(at: i)
            if after == nil { list.insert(entry, at: 0) }
            else if let j = list.firstIndex(of: after!) { list.insert(entry, at: j + 1) }
            else { list.append(entry) }
        }
    }
    return list
}

/// A random edit by a car: an add by anyone, a remove or move if it is the DJ in its own view.
private func randomEdit(_ log: PlaylistLog, isDJ: Bool, rng: inout SplitMix64, nextTrack: inout Int) -> PlaylistEdit {
    let entries = log.entries
    func someEntry() -> OpID { entries[Int(rng.next() % UInt64(entries.count))].id }
    let roll = rng.unit()
    if !isDJ || entries.isEmpty || roll < 0.5 {
        nextTrack += 1
        let after = entries.isEmpty || rng.unit() < 0.5 ? nil : someEntry()
        return .add(track: track(nextTrack), frames: Int64(1000 + rng.next() % 100_000), after: after)
    }
    if roll < 0.75 { return .remove(entry: someEntry()) }
    return .move(entry: someEntry(), after: rng.unit() < 0.3 ? nil : someEntry())
}

@Suite struct PlaylistLogTests {
    // MARK: 1. Basic semantics and authority

    @Test func addRemoveMoveAsTheDJ() throws {
        var log = PlaylistLog(me: A)
        let t = Term(number: 1, dj: A)
        let x = try log.make(.add(track: track(1), frames: 100, after: nil), term: t).id
        let y = try log.make(.add(track: track(2), frames: 200, after: nil), term: t).id
        let z = try log.make(.add(track: track(3), frames: 300, after: nil), term: t).id
        #expect(log.ids == [x, y, z])
        // The same track queued twice is a second, distinct entry.
        let w = try log.make(.add(track: track(1), frames: 100, after: x), term: t).id
        #expect(log.ids == [x, w, y, z])
        _ = try log.make(.move(entry: z, after: nil), term: t)
        #expect(log.ids == [z, x, w, y])
        _ = try log.make(.move(entry: x, after: y), term: t)
        #expect(log.ids == [z, w, y, x])
        _ = try log.make(.move(entry: y, after: y), term: t)  // after itself: stays put
        #expect(log.ids == [z, w, y, x])
        _ = try log.make(.remove(entry: w), term: t)
        #expect(log.entries == [
            PlaylistEntry(id: z, track: track(3), frames: 300),
            PlaylistEntry(id: y, track: track(2), frames: 200),
            PlaylistEntry(id: x, track: track(1), frames: 100),
        ])
        #expect(log.ops.map(\.id) == (1...8).map { OpID(origin: A, seq: $0) })
        #expect(log.ops.map(\.lamport) == Array(1...8))
        #expect(log.highWater == [A: 8])

        // Edits may only name entries on this car's list; a refused edit consumes no seq.
        #expect(throws: PlaylistError.notAlive(w)) { try log.make(.remove(entry: w), term: t) }
        #expect(throws: PlaylistError.notAlive(w)) { try log.make(.move(entry: w, after: nil), term: t) }
        #expect(throws: PlaylistError.notAlive(w)) { try log.make(.move(entry: x, after: w), term: t) }
        #expect(throws: PlaylistError.notAlive(w)) { try log.make(.add(track: track(4), frames: 1, after: w), term: t) }
        let unknown = OpID(origin: B, seq: 1)
        #expect(throws: PlaylistError.notAlive(unknown)) { try log.make(.remove(entry: unknown), term: t) }
        #expect(throws: PlaylistError.invalidFrames(-1)) { try log.make(.add(track: track(4), frames: -1, after: nil), term: t) }
        #expect(log.highWater == [A: 8])
        #expect(log.counters == .init())
    }

    @Test func onlyTheDJOfTheTermMayRemoveOrMove() throws {
        var a = PlaylistLog(me: A), b = PlaylistLog(me: B)
        let t = Term(number: 1, dj: A)
        let x = try a.make(.add(track: track(1), frames: 10, after: nil), term: t)
        #expect(b.receive(x) == .applied)
        let y = try b.make(.add(track: track(2), frames: 20, after: x.id), term: t)  // anyone may add
        #expect(throws: PlaylistError.notDJ(term: t)) { try b.make(.remove(entry: x.id), term: t) }
        #expect(throws: PlaylistError.notDJ(term: t)) { try b.make(.move(entry: y.id, after: nil), term: t) }
        #expect(b.highWater == [A: 1, B: 1])
        #expect(a.receive(y) == .applied)

        // B forges a remove in A's term: rejected, counted, never applied.
        let forged = PlaylistOp(id: OpID(origin: B, seq: 2), lamport: 9, term: t, edit: .remove(entry: x.id))
        #expect(a.receive(forged) == .rejected(.notDJ))
        let forgedMove = PlaylistOp(id: OpID(origin: B, seq: 3), lamport: 10, term: t, edit: .move(entry: y.id, after: nil))
        #expect(a.receive(forgedMove) == .rejected(.notDJ))
        #expect(a.counters == .init(duplicates: 0, rejected: 2, buffered: 0))
        #expect(a.ids == [x.id, y.id])

        // A rejected op still fills its slot, so B's later ops are not stuck behind a hole…
        let next = PlaylistOp(id: OpID(origin: B, seq: 4), lamport: 11, term: t,
                              edit: .add(track: track(3), frames: 30, after: nil))
        #expect(a.receive(next) == .applied)
        #expect(a.highWater == [A: 1, B: 4])
        #expect(a.ids == [x.id, y.id, next.id])
        // …and it is forwarded, so every car reaches the same verdict.
        var c = PlaylistLog(me: C)
        let results = c.receive(contentsOf: a.missing(for: [:], limit: 100))
        #expect(results == [.applied, .applied, .rejected(.notDJ), .rejected(.notDJ), .applied])
        #expect(c.entries == a.entries)
        #expect(PlaylistLog(me: C, ops: c.ops).entries == a.entries)

        // Other malformed ops.
        let seqZero = PlaylistOp(id: OpID(origin: C, seq: 0), lamport: 1, term: t, edit: .add(track: track(5), frames: 1, after: nil))
        #expect(c.receive(seqZero) == .rejected(.invalidSeq))
        let negative = PlaylistOp(id: OpID(origin: C, seq: 1), lamport: 12, term: t, edit: .add(track: track(5), frames: -5, after: nil))
        #expect(c.receive(negative) == .rejected(.invalidFrames))
        let huge = PlaylistOp(id: OpID(origin: C, seq: 2), lamport: .max, term: t, edit: .add(track: track(5), frames: 5, after: nil))
        #expect(c.receive(huge) == .rejected(.lamportOutOfRange))
        #expect(c.entries == a.entries)
        // The clock was not pushed by the bad op.
        #expect(try c.make(.add(track: track(6), frames: 1, after: nil), term: t).lamport == 12)
    }

    // MARK: 2. Arrival-order independence

    /// Three cars editing with partial knowledge of each other (and DJ changes): a realistic op
    /// set with concurrent adds, removes and moves, including removes of entries some cars have
    /// moved.
    static func history(seed: UInt64) throws -> [PlaylistOp] {
        var rng = SplitMix64(seed: seed)
        var logs = [A, B, C].map { PlaylistLog(me: $0) }
        var term = Term(number: 1, dj: A)
        var terms = [term, term, term]
        var nextTrack = 0
        for _ in 0..<80 {
            let roll = rng.unit()
            let i = Int(rng.next() % 3)
            if roll < 0.6 {
                let edit = randomEdit(logs[i], isDJ: terms[i].dj == logs[i].me, rng: &rng, nextTrack: &nextTrack)
                _ = try logs[i].make(edit, term: terms[i])
            } else if roll < 0.7 {
                term = term.next(for: logs[i].me)
                terms[i] = term
            } else {
                let j = (i + 1 + Int(rng.next() % 2)) % 3
                pull(&logs, i, from: j, limit: 1 + Int(rng.next() % 8))
                terms[i] = max(terms[i], terms[j])
            }
        }
        return logs.flatMap(\.ops).reduce(into: [OpID: PlaylistOp]()) { $0[$1.id] = $1 }.values.sorted { $0.id < $1.id }
    }

    @Test func anyArrivalOrderGivesTheSameList() throws {
        for historySeed in UInt64(1)...5 {
            let all = try Self.history(seed: historySeed)
            let expected = referenceList(all)
            #expect(expected.count > 5)
            #expect(all.contains { if case .remove = $0.edit { true } else { false } })
            #expect(all.contains { if case .move = $0.edit { true } else { false } })
            var reference: [PlaylistEntry]?
            for seed in UInt64(1)...40 {
                var rng = SplitMix64(seed: seed &* 7919 &+ historySeed)
                var order = all
                order.shuffle(using: &rng)
                var log = PlaylistLog(me: MemberID(0xD))
                if seed % 2 == 0 {
                    for op in order { _ = log.receive(op) }
                } else {
                    // In random chunks, as anti-entropy answers arrive.
                    var rest = order[...]
                    while !rest.isEmpty {
                        let n = 1 + Int(rng.next() % 12)
                        _ = log.receive(contentsOf: rest.prefix(n))
                        rest = rest.dropFirst(n)
                    }
                }
                #expect(log.ids == expected, "history \(historySeed), order \(seed)")
                #expect(log.ops == all)
                #expect(log.waitingCount == 0)
                #expect(log.counters.rejected == 0)
                if let reference { #expect(log.entries == reference) } else { reference = log.entries }
            }
        }
    }

    // MARK: 3. Property test: partitions, take-overs, lossy gossip, merge

    struct Car {
        var log: PlaylistLog
        var term: Term
    }

    @Test func randomPartitionsAndMergesConverge() throws {
        var supersededEdits = 0, restores = 0, buffered = 0
        for seed in UInt64(1)...100 {
            let stats = try Self.runSchedule(seed: seed)
            supersededEdits += stats.superseded
            restores += stats.restores
            buffered += stats.buffered
        }
        // The schedules did exercise what they are meant to.
        #expect(supersededEdits > 20)
        #expect(restores > 20)
        #expect(buffered > 100)
    }

    static func runSchedule(seed: UInt64) throws -> (superseded: Int, restores: Int, buffered: Int) {
        var rng = SplitMix64(seed: seed)
        let n = 4 + Int(rng.next() % 3)
        // Distinct ids in a random order of rank, so "car 0" is not always the smallest id.
        let members = (0..<n).map { MemberID(UInt64($0 + 1) << 8 | (rng.next() & 0xFF)) }.shuffled(using: &rng)
        let first = Term(number: 1, dj: members[0])
        var cars = members.map { Car(log: PlaylistLog(me: $0), term: first) }
        var group = [Int](repeating: 0, count: n)
        var made: Set<OpID> = []
        var highestTerm = first
        var superseded = 0, restores = 0, bufferedTotal = 0
        var nextTrack = 0

        /// `a` asks `b` for what it lacks; requests and individual ops may be lost; terms are
        /// swapped on the way (the session's own gossip, modelled as "adopt the highest").
        func gossip(_ a: Int, _ b: Int, lossy: Bool) {
            if lossy && rng.unit() < 0.1 { return }
            var answer = cars[b].log.missing(for: cars[a].log.highWater, limit: 1 + Int(rng.next() % 24))
            answer.shuffle(using: &rng)
            if lossy { answer.removeAll { _ in rng.unit() < 0.15 } }
            if rng.unit() < 0.5 {
                for op in answer { _ = cars[a].log.receive(op) }
            } else {
                _ = cars[a].log.receive(contentsOf: answer)
            }
            if !lossy || rng.unit() < 0.8 { cars[a].term = max(cars[a].term, cars[b].term) }
        }

        for _ in 0..<70 {
            let roll = rng.unit()
            let i = Int(rng.next() % UInt64(n))
            switch roll {
            case ..<0.40:  // an edit
                let isDJ = cars[i].term.dj == members[i]
                let edit = randomEdit(cars[i].log, isDJ: isDJ, rng: &rng, nextTrack: &nextTrack)
                let op = try cars[i].log.make(edit, term: cars[i].term)
                made.insert(op.id)
                if op.edit.needsDJ && op.term < highestTerm { superseded += 1 }
            case ..<0.50:  // a take-over, heard by some of the partition
                let t = cars[i].term.next(for: members[i])
                cars[i].term = t
                highestTerm = max(highestTerm, t)
                for j in cars.indices where group[j] == group[i] && rng.unit() < 0.6 {
                    cars[j].term = max(cars[j].term, t)
                }
            case ..<0.56:  // the convoy splits into 1–3 groups
                let k = 1 + Int(rng.next() % 3)
                group = group.map { _ in Int(rng.next() % UInt64(k)) }
            case ..<0.60:  // everyone meets again
                group = group.map { _ in 0 }
            case ..<0.64:  // a power cut: restart from what was persisted
                cars[i].log = PlaylistLog(me: members[i], ops: cars[i].log.ops)
                restores += 1
            default:  // gossip with someone in the same group
                let peers = cars.indices.filter { $0 != i && group[$0] == group[i] }
                guard !peers.isEmpty else { continue }
                let j = peers[Int(rng.next() % UInt64(peers.count))]
                gossip(i, j, lossy: true)
                gossip(j, i, lossy: true)
            }
        }

        // The final merge: everyone together, lossless anti-entropy until quiescent.
        var settled = false
        for _ in 0..<200 {
            let before = cars.map(\.log.highWater)
            for a in cars.indices { for b in cars.indices where a != b { gossip(a, b, lossy: false) } }
            if cars.map(\.log.highWater) == before { settled = true; break }
        }
        #expect(settled, "seed \(seed)")

        let expected = referenceList(cars[0].log.ops)
        for car in cars {
            #expect(car.log.entries == cars[0].log.entries, "seed \(seed): car \(car.log.me)")
            #expect(Set(car.log.ops.map(\.id)) == made, "seed \(seed): no op lost")
            #expect(car.log.ops.count == made.count)
            #expect(car.log.waitingCount == 0)
            #expect(car.log.counters.rejected == 0, "honest edits are never rejected")
            let restored = PlaylistLog(me: car.log.me, ops: car.log.ops)
            #expect(restored.entries == car.log.entries)
            #expect(restored.highWater == car.log.highWater)
            bufferedTotal += car.log.counters.buffered
        }
        #expect(cars[0].log.ids == expected, "seed \(seed): matches the reference merge")
        return (superseded, restores, bufferedTotal)
    }

    // MARK: 4. The superseded DJ

    /// DJ A of term (3, A) is cut off; B takes over as (4, B) in the other half. A, not knowing,
    /// removes X; B moves X. On merge X is gone, whichever op sorts later.
    @Test(arguments: [false, true])
    func supersededDJRemoveIsAppliedAndBeatsTheNewDJsMove(removeSortsLater: Bool) throws {
        let t3 = Term(number: 3, dj: A)
        var logs = [A, B, C].map { PlaylistLog(me: $0) }
        let x = try logs[0].make(.add(track: track(1), frames: 10, after: nil), term: t3).id
        let y = try logs[0].make(.add(track: track(2), frames: 20, after: nil), term: t3).id
        let z = try logs[0].make(.add(track: track(3), frames: 30, after: nil), term: t3).id
        syncAll(&logs)
        #expect(logs.allSatisfy { $0.ids == [x, y, z] })

        // Split: {A} | {B, C}. B takes over in its half.
        let t4 = t3.next(for: B)
        if removeSortsLater {  // A's lamport runs ahead before it removes
            _ = try logs[0].make(.move(entry: z, after: nil), term: t3)
            _ = try logs[0].make(.move(entry: z, after: y), term: t3)
        }
        let remove = try logs[0].make(.remove(entry: x), term: t3)
        #expect(logs[0].ids == [y, z])  // A's half hears X disappear at once
        let w = try logs[2].make(.add(track: track(4), frames: 40, after: nil), term: t4)
        pull(&logs, 1, from: 2)
        let move = try logs[1].make(.move(entry: x, after: w.id), term: t4)
        pull(&logs, 2, from: 1)
        #expect(logs[1].ids == [y, z, w.id, x])
        #expect(PlaylistOp.mergeOrder(move, remove) == removeSortsLater)
        // A superseded DJ can only touch entries it knew about.
        #expect(throws: PlaylistError.notAlive(w.id)) { try logs[0].make(.remove(entry: w.id), term: t3) }

        // Merge. A's remove is valid (A was the DJ of 3/A) and final: B's move is a no-op.
        syncAll(&logs)
        for log in logs {
            #expect(log.ids == [y, z, w.id])
            #expect(log.counters.rejected == 0)
            #expect(log.ops.contains(remove) && log.ops.contains(move))
        }

        // The same two ops delivered to a fresh car in both orders.
        let base = logs[0].ops.filter { $0 != remove && $0 != move }
        for pair in [[remove, move], [move, remove]] {
            var fresh = PlaylistLog(me: MemberID(0xD))
            _ = fresh.receive(contentsOf: base)
            #expect(pair.map { fresh.receive($0) } == [.applied, .applied])
            #expect(fresh.ids == [y, z, w.id])
        }
    }

    @Test func removeArrivingBeforeItsAddStillRemoves() throws {
        // Only a malformed lamport can put a remove before its add in the merge order; the
        // tombstone is remembered so the add creates nothing.
        let t = Term(number: 1, dj: A)
        let add = PlaylistOp(id: OpID(origin: B, seq: 1), lamport: 5, term: t, edit: .add(track: track(1), frames: 1, after: nil))
        let remove = PlaylistOp(id: OpID(origin: A, seq: 1), lamport: 2, term: t, edit: .remove(entry: add.id))
        for pair in [[add, remove], [remove, add]] {
            var log = PlaylistLog(me: C)
            _ = log.receive(contentsOf: pair)
            #expect(log.entries.isEmpty)
        }
    }

    @Test func opFromATermNotYetHeardOfIsApplied() throws {
        // This car knows term 3/A at most; C acted as DJ of 9/C, a term we have not heard of yet.
        var a = PlaylistLog(me: A)
        let x = try a.make(.add(track: track(1), frames: 10, after: nil), term: Term(number: 3, dj: A))
        var c = PlaylistLog(me: C)
        _ = c.receive(x)
        let remove = try c.make(.remove(entry: x.id), term: Term(number: 9, dj: C))
        #expect(a.receive(remove) == .applied)
        #expect(a.entries.isEmpty)
        // Later edits of A sort after it (A's clock moved on).
        #expect(try a.make(.add(track: track(2), frames: 1, after: nil), term: Term(number: 3, dj: A)).lamport == remove.lamport + 1)
    }

    // MARK: 5. Duplicates, holes, buffering, anti-entropy

    @Test func duplicatesGapsAndBuffering() throws {
        let t = Term(number: 1, dj: C)
        var c = PlaylistLog(me: C)
        var ops: [PlaylistOp] = []
        for k in 1...5 { ops.append(try c.make(.add(track: track(k), frames: Int64(k), after: nil), term: t)) }
        var a = PlaylistLog(me: A)

        #expect(a.receive(ops[0]) == .applied)
        #expect(a.receive(ops[2]) == .buffered)
        #expect(a.receive(ops[4]) == .buffered)
        #expect(a.highWater == [C: 1])
        #expect(a.ids == [ops[0].id])
        #expect(a.ops == [ops[0]])  // buffered ops are not held for persistence
        #expect(a.waitingCount == 2)
        #expect(a.missing(for: [:], limit: 10) == [ops[0]])  // nor offered to peers
        #expect(a.receive(ops[2]) == .duplicate)  // a second copy of a buffered op

        #expect(a.receive(ops[1]) == .applied)  // fills the hole: 3 follows
        #expect(a.highWater == [C: 3])
        #expect(a.waitingCount == 1)
        #expect(a.receive(ops[2]) == .duplicate)

        var conflicting = ops[2]
        conflicting.edit = .add(track: track(9), frames: 9, after: nil)
        #expect(a.receive(conflicting) == .rejected(.conflictingDuplicate))  // the first stays
        var conflictingBuffered = ops[4]
        conflictingBuffered.lamport += 1
        #expect(a.receive(conflictingBuffered) == .rejected(.conflictingDuplicate))

        #expect(a.receive(ops[3]) == .applied)  // 5 follows
        #expect(a.highWater == [C: 5])
        #expect(a.waitingCount == 0)
        #expect(a.ops == ops)
        #expect(a.entries == c.entries)
        #expect(a.counters == .init(duplicates: 2, rejected: 2, buffered: 2))

        // Lamport: receive raises the clock, make goes one past it.
        let mine = try a.make(.add(track: track(6), frames: 6, after: nil), term: t)
        #expect(mine.id == OpID(origin: A, seq: 1))
        #expect(mine.lamport == ops.map(\.lamport).max()! + 1)
    }

    @Test func missingAnswersWhatThePeerLacksInOriginSeqOrder() throws {
        var logs = [C, A, B].map { PlaylistLog(me: $0) }
        let t = Term(number: 1, dj: A)
        for k in 0..<9 { _ = try logs[k % 3].make(.add(track: track(k), frames: 1, after: nil), term: t) }
        syncAll(&logs)
        let log = logs[0]
        #expect(log.highWater == [A: 3, B: 3, C: 3])
        let all = log.ops
        #expect(all.map(\.id) == [A, B, C].flatMap { o in (1...3).map { OpID(origin: o, seq: $0) } })
        #expect(log.missing(for: log.highWater, limit: 100).isEmpty)
        #expect(log.missing(for: [:], limit: 0).isEmpty)
        #expect(log.missing(for: [:], limit: 100) == all)
        #expect(log.missing(for: [A: 3, B: 1], limit: 100).map(\.id) ==
                [OpID(origin: B, seq: 2), OpID(origin: B, seq: 3)] + (1...3).map { OpID(origin: C, seq: $0) })
        #expect(log.missing(for: [A: 1], limit: 3).map(\.id) ==
                [OpID(origin: A, seq: 2), OpID(origin: A, seq: 3), OpID(origin: B, seq: 1)])
        // A peer that claims more than we hold (or knows origins we don't) is owed nothing for them.
        #expect(log.missing(for: [A: 7, B: 3, C: 3, MemberID(0xD): 4], limit: 100).isEmpty)

        // Paging with a small limit reaches everything.
        var peer = PlaylistLog(me: MemberID(0xD))
        var rounds = 0
        while peer.highWater != log.highWater && rounds < 50 {
            _ = peer.receive(contentsOf: log.missing(for: peer.highWater, limit: 2))
            rounds += 1
        }
        #expect(rounds == 5)
        #expect(peer.entries == log.entries)
    }

    // MARK: Persistence

    @Test func restoreFromPersistedOpsInAnyOrder() throws {
        var logs = [A, B].map { PlaylistLog(me: $0) }
        let t = Term(number: 2, dj: B)
        let x = try logs[0].make(.add(track: track(1), frames: 1, after: nil), term: t)
        pull(&logs, 1, from: 0)
        _ = try logs[1].make(.add(track: track(2), frames: 2, after: nil), term: t)
        _ = try logs[1].make(.move(entry: x.id, after: nil), term: t)
        _ = try logs[1].make(.add(track: track(3), frames: 3, after: x.id), term: t)
        let b = logs[1]

        let restored = PlaylistLog(me: B, ops: b.ops.reversed())
        #expect(restored.entries == b.entries)
        #expect(restored.highWater == b.highWater)
        #expect(restored.ops == b.ops)
        #expect(restored.counters == .init())
        // Numbering and the clock carry on where they stopped.
        var again = restored
        let next = try again.make(.remove(entry: x.id), term: t)
        #expect(next.id == OpID(origin: B, seq: 4))
        #expect(next.lamport == b.ops.map(\.lamport).max()! + 1)

        // A car whose store lost some of its own ops refuses to number new ones until the
        // hole is filled from a peer that has them.
        var amnesiac = PlaylistLog(me: B, ops: Array(b.ops.prefix(2)))
        #expect(amnesiac.receive(b.ops[3]) == .buffered)  // B's seq 3, from a peer
        #expect(throws: PlaylistError.ownHistoryIncomplete) {
            try amnesiac.make(.add(track: track(7), frames: 1, after: nil), term: t)
        }
        #expect(amnesiac.receive(b.ops[2]) == .applied)
        #expect(try amnesiac.make(.add(track: track(7), frames: 1, after: nil), term: t).id == OpID(origin: B, seq: 4))
    }

    @Test func opsRoundTripThroughCodable() throws {
        let ops = [
            PlaylistOp(id: OpID(origin: A, seq: 1), lamport: 1, term: Term(number: 1, dj: A),
                       edit: .add(track: track(1), frames: 44_100, after: nil)),
            PlaylistOp(id: OpID(origin: A, seq: 2), lamport: 2, term: Term(number: 1, dj: A),
                       edit: .add(track: track(2), frames: 1, after: OpID(origin: A, seq: 1))),
            PlaylistOp(id: OpID(origin: A, seq: 3), lamport: 3, term: Term(number: 1, dj: A),
                       edit: .move(entry: OpID(origin: A, seq: 2), after: nil)),
            PlaylistOp(id: OpID(origin: A, seq: 4), lamport: 4, term: Term(number: 1, dj: A),
                       edit: .remove(entry: OpID(origin: A, seq: 1))),
        ]
        let data = try JSONEncoder().encode(ops)
        #expect(try JSONDecoder().decode([PlaylistOp].self, from: data) == ops)
    }
}
