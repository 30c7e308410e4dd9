/// The convoy's playlist, kept as an op log that every car merges to the same list.
///
/// This comment is the design record of the playlist merge.
///
/// ## Ops and their ids
/// Every edit is a `PlaylistOp` named `(origin, seq)`: the car that made it and that car's own
/// counter, from 1 with no holes. An `add`'s id is also the id of the entry it creates, so
/// removes and moves name entries, never positions. Each op carries a Lamport time (one more
/// than the highest lamport its author held) and the term its author was in.
///
/// ## Durability contract
/// `make` numbers and applies a local edit. The caller must store the returned op durably
/// **before** sending it to any peer, and must restore this log on start from what it stored
/// (`init(me:ops:)` with the stored `ops`). Then no op a peer has seen is ever forgotten by
/// its author, and a sequence number is never reused with other content. (If a car lost its
/// store anyway it must take a fresh `MemberID`; a visible hole in its own numbers makes
/// `make` refuse with `ownHistoryIncomplete`.)
///
/// ## Deterministic merge
/// The list is the replay, from an empty list, of every applied op sorted by
/// `(lamport, origin, seq)` — a total order that is the same in every car, so cars holding the
/// same ops show the same list, whatever order the ops arrived in. Replay rules:
/// - `add(after:)` inserts a new entry (id = the add's id) right after `after` if that entry is
///   alive, else (or when `after` is nil) at the end.
/// - `remove` tombstones the entry: it leaves the list and never comes back. A later `move` of
///   it is a no-op. A remove of an entry not (yet) seen is remembered, so if the add shows up
///   later in the order it creates nothing.
/// - `move(after:)` relocates an alive entry right after `after` (to the end if `after` is not
///   alive; a move after itself is a no-op); `after == nil` moves it to the head. A move of an
///   entry that is not alive does nothing.
/// Concurrent moves of one entry: the one later in the merge order wins. Term numbers play no
/// part in the order; they only decide whether a remove or move is valid (below).
/// An honest op always sorts after what it names (its author had applied those ops, so its
/// lamport is higher); the tombstone rule makes even a malformed order harmless.
///
/// ## Authority
/// Anyone may add. A remove or move is valid only if `op.term.dj == op.id.origin`: its author
/// was the DJ of the term it was made in. `make` refuses one when `term.dj != me`; `receive`
/// rejects one that fails the check (a forgery or a bug), counts it and never applies it.
/// The check reads only the op itself, so every car reaches the same verdict.
/// The log never compares an op's term with the term the session is in now:
/// - **An op from a term number higher than any term this car knows is applied.** It only
///   means that term has not reached us yet; its author was that term's DJ.
/// - **A superseded DJ's edit made while apart is applied.** DJ A of term (3, A) is cut off;
///   the other half of the convoy elects B as (4, B); A, not knowing, removes entry X. On
///   merge the remove IS applied: A was the legitimate DJ of the term it acted in, and the
///   drivers of A's half already heard X disappear. The convoy loses no edit. If B moved X
///   meanwhile, the remove still wins, in either merge order: a tombstone is final and a move
///   of a removed entry is a no-op. A superseded DJ can only touch entries it knew about: its
///   ops name entry ids, and `make` only accepts ids on its own list, so entries queued in the
///   other half while apart are out of its reach. Once A hears of (4, B) it is no longer the
///   DJ and the session stops it from making removes or moves (`make` is given the current
///   term by the caller).
///
/// ## Duplicates and rejected ops
/// A second copy of an op already held is a `duplicate`. An op with the id of one held but
/// different content is rejected as a `conflictingDuplicate`: the first one stays. A rejected
/// op that has a proper id (seq ≥ 1) is still kept, inert: it fills its `(origin, seq)` slot so
/// that origin's later ops are not stuck behind a hole, it is persisted and forwarded like any
/// op (every receiver rejects it too), and it never touches the list.
///
/// ## Anti-entropy
/// Because seqs are contiguous per origin, `highWater` (per origin, the highest seq held with
/// all lower ones held too) is an exact summary of what a car holds. A peer sends its
/// high-water map; `missing(for:limit:)` answers with what it lacks, in `(origin, seq)` order.
/// An op that arrives past a hole is `buffered` and applied when the hole fills; it counts in
/// `highWater` (and in `ops`) only then. Buffered ops are not persisted: after a power cut they
/// are pulled again.
///
/// ## Lamport clock
/// `make` stamps `max(lamport of every op received or made) + 1`; `receive` raises that
/// maximum. Lamports at or above `lamportLimit` are rejected so the clock cannot be driven to
/// overflow by a bad op (`make` refuses with `clockExhausted` rather than stamp one there;
/// an honest clock, one tick per edit, never gets near).
///
/// ## Cost
/// An op that sorts after every applied op (the usual case) is applied in O(list). One that
/// sorts earlier triggers a full replay, O(ops × list); `receive(contentsOf:)` replays at most
/// once per batch. Lists are a few hundred entries and logs a few thousand ops.
public struct PlaylistLog: Sendable {
    /// What happened to a received op.
    public enum ReceiveResult: Sendable, Equatable {
        /// Held and applied (with any buffered ops of the same origin it unblocked).
        case applied
        /// Already held or already buffered, with the same content: nothing changed.
        case duplicate
        /// Numbered past a hole of its origin: held back until the hole fills.
        case buffered
        /// Never applied; see `RejectReason`.
        case rejected(RejectReason)
    }

    /// Why a received op was rejected.
    public enum RejectReason: Sendable, Equatable {
        /// A remove or move whose author was not the DJ of its term (`term.dj != id.origin`).
        case notDJ
        /// An op with the id of one already held (or buffered) but other content.
        case conflictingDuplicate
        /// `seq` 0: sequence numbers start at 1.
        case invalidSeq
        /// An add with a negative track length.
        case invalidFrames
        /// A lamport at or above `PlaylistLog.lamportLimit`.
        case lamportOutOfRange
    }

    /// Counts of what `receive` saw since `init` (diagnostics for the status output).
    public struct Counters: Sendable, Equatable {
        public var duplicates = 0
        public var rejected = 0
        /// Ops that arrived past a hole and had to wait (whether or not they are applied by now).
        public var buffered = 0
        public init(duplicates: Int = 0, rejected: Int = 0, buffered: Int = 0) {
            self.duplicates = duplicates; self.rejected = rejected; self.buffered = buffered
        }
    }

    /// Received lamports at or above this are rejected: far beyond any honest clock
    /// (one tick per edit), and it keeps `make`'s `+ 1` from overflowing.
    public static let lamportLimit: UInt64 = 1 << 62

    /// The car this log belongs to: the origin of the ops `make` creates.
    public let me: MemberID
    /// What `receive` saw since `init`.
    public private(set) var counters = Counters()

    /// Every op held, per origin, at index `seq - 1` (contiguous by construction).
    private var held: [MemberID: [PlaylistOp]] = [:]
    /// Ops past a hole of their origin, by seq.
    private var waiting: [MemberID: [UInt64: PlaylistOp]] = [:]
    /// Applied ops in merge order.
    private var merged: [PlaylistOp] = []
    /// The materialized list and the set of removed entry ids, as of `merged`.
    private var list: [PlaylistEntry] = []
    private var tombstones: Set<OpID> = []
    /// `merged` changed somewhere other than at its end: `list` must be replayed.
    private var needsReplay = false
    private var maxLamport: UInt64 = 0

    /// A log for car `me`, holding `ops`: what was persisted (restore after a power cut). The
    /// ops may come in any order; they are checked exactly as received ones are (the counters
    /// start at zero afterwards).
    public init(me: MemberID, ops: [PlaylistOp] = []) {
        self.me = me
        for op in ops.sorted(by: { $0.id < $1.id }) { _ = accept(op) }
        settle()
        counters = Counters()
    }

    /// Make a local edit: numbered with the next seq of `me`, stamped with lamport = highest
    /// seen + 1, and applied at once. **The caller stores the returned op durably before sending
    /// it** (see the durability contract above). `term` is the term this car is in now; a
    /// remove or move is refused unless `term.dj == me`. Edits may only name entries that are
    /// on this car's list (`notAlive` otherwise). A refused edit consumes no seq.
    public mutating func make(_ edit: PlaylistEdit, term: Term) throws(PlaylistError) -> PlaylistOp {
        if edit.needsDJ && term.dj != me { throw .notDJ(term: term) }
        switch edit {
        case .add(_, let frames, let after):
            if frames < 0 { throw .invalidFrames(frames) }
            if let a = after, !isAlive(a) { throw .notAlive(a) }
        case .remove(let entry):
            if !isAlive(entry) { throw .notAlive(entry) }
        case .move(let entry, let after):
            if !isAlive(entry) { throw .notAlive(entry) }
            if let a = after, !isAlive(a) { throw .notAlive(a) }
        }
        if waiting[me] != nil { throw .ownHistoryIncomplete }
        if maxLamport + 1 >= Self.lamportLimit { throw .clockExhausted }
        let seq = UInt64(held[me]?.count ?? 0) + 1
        let op = PlaylistOp(id: OpID(origin: me, seq: seq), lamport: maxLamport + 1, term: term, edit: edit)
        let result = accept(op)
        settle()
        precondition(result == .applied, "a local op must apply: \(result)")
        return op
    }

    /// Take in an op from a peer (or from this car's own store). See `ReceiveResult`.
    public mutating func receive(_ op: PlaylistOp) -> ReceiveResult {
        let result = accept(op)
        settle()
        return result
    }

    /// Take in a batch of ops (e.g. one answer to `missing(for:limit:)`), in any order, with at
    /// most one replay of the list. Results are in the order of `ops`.
    public mutating func receive(contentsOf ops: some Sequence<PlaylistOp>) -> [ReceiveResult] {
        let results = ops.map { accept($0) }
        settle()
        return results
    }

    /// Per origin, the highest seq held with every lower seq held too. Exact, because seqs are
    /// contiguous: a peer holding a smaller mark lacks precisely the ops above it. Origins with
    /// no op held are absent.
    public var highWater: [MemberID: UInt64] {
        held.mapValues { UInt64($0.count) }
    }

    /// The held ops a peer with high-water map `peer` lacks, in `(origin, seq)` order, at most
    /// `limit` of them (ask again for the rest). Buffered ops are not offered.
    public func missing(for peer: [MemberID: UInt64], limit: Int) -> [PlaylistOp] {
        guard limit > 0 else { return [] }
        var out: [PlaylistOp] = []
        for origin in held.keys.sorted() {
            let ops = held[origin]!
            let have = peer[origin] ?? 0
            guard have < UInt64(ops.count) else { continue }
            for op in ops[Int(have)...] {
                out.append(op)
                if out.count == limit { return out }
            }
        }
        return out
    }

    /// The materialized playlist: identical on every car holding the same ops.
    public var entries: [PlaylistEntry] { list }

    /// Every op held (applied, or kept inert after a rejection), in `(origin, seq)` order: what
    /// to persist, and what `init(me:ops:)` restores from. Buffered ops are not included.
    public var ops: [PlaylistOp] {
        held.keys.sorted().flatMap { held[$0]! }
    }

    /// How many received ops wait behind a hole right now.
    public var waitingCount: Int {
        waiting.values.reduce(0) { $0 + $1.count }
    }

    // MARK: - Internals

    private func isAlive(_ id: OpID) -> Bool {
        list.contains { $0.id == id }
    }

    /// The checks every car makes the same way: they read the op and nothing else.
    private static func verdict(_ op: PlaylistOp) -> RejectReason? {
        if op.lamport >= lamportLimit { return .lamportOutOfRange }
        if op.edit.needsDJ && op.term.dj != op.id.origin { return .notDJ }
        if case .add(_, let frames, _) = op.edit, frames < 0 { return .invalidFrames }
        return nil
    }

    /// Receive one op without replaying; `settle()` must follow.
    private mutating func accept(_ op: PlaylistOp) -> ReceiveResult {
        let origin = op.id.origin, seq = op.id.seq
        guard seq >= 1 else {
            counters.rejected += 1
            return .rejected(.invalidSeq)
        }
        let count = UInt64(held[origin]?.count ?? 0)
        let earlier = seq <= count ? held[origin]![Int(seq - 1)] : waiting[origin]?[seq]
        if let earlier {
            if earlier == op {
                counters.duplicates += 1
                return .duplicate
            }
            counters.rejected += 1
            return .rejected(.conflictingDuplicate)
        }
        let verdict = Self.verdict(op)
        if verdict == nil { maxLamport = max(maxLamport, op.lamport) }
        if seq == count + 1 {
            hold(op)
            while let next = waiting[origin]?.removeValue(forKey: UInt64(held[origin]!.count) + 1) {
                hold(next)
            }
            if waiting[origin]?.isEmpty == true { waiting[origin] = nil }
        } else {
            waiting[origin, default: [:]][seq] = op
        }
        if let verdict {
            counters.rejected += 1
            return .rejected(verdict)
        }
        if seq == count + 1 { return .applied }
        counters.buffered += 1
        return .buffered
    }

    /// Put the next op of its origin in its slot and, if valid, into the merge.
    private mutating func hold(_ op: PlaylistOp) {
        held[op.id.origin, default: []].append(op)
        guard Self.verdict(op) == nil else { return }  // inert: fills its slot, never replayed
        if !needsReplay, merged.last.map({ PlaylistOp.mergeOrder($0, op) }) ?? true {
            merged.append(op)
            Self.step(op, list: &list, tombstones: &tombstones)
            return
        }
        // Lands before some applied op: insert in order and replay the list.
        var lo = 0, hi = merged.count
        while lo < hi {
            let mid = (lo + hi) / 2
            if PlaylistOp.mergeOrder(merged[mid], op) { lo = mid + 1 } else { hi = mid }
        }
        merged.insert(op, at: lo)
        needsReplay = true
    }

    private mutating func settle() {
        guard needsReplay else { return }
        list.removeAll(keepingCapacity: true)
        tombstones.removeAll(keepingCapacity: true)
        for op in merged { Self.step(op, list: &list, tombstones: &tombstones) }
        needsReplay = false
    }

    /// Apply one op to the list: the replay rules of the design record above.
    private static func step(_ op: PlaylistOp, list: inout [PlaylistEntry], tombstones: inout Set<OpID>) {
        func index(_ id: OpID) -> Int? { list.firstIndex { $0.id == id } }
        switch op.edit {
        case .add(let track, let frames, let after):
            guard !tombstones.contains(op.id) else { return }
            let entry = PlaylistEntry(id: op.id, track: track, frames: frames)
            if let after, let i = index(after) {
                list.insert(entry, at: i + 1)
            } else {
                list.append(entry)
            }
        case .remove(let entry):
            tombstones.insert(entry)
            if let i = index(entry) { list.remove(at: i) }
        case .move(let entry, let after):
            guard entry != after, let i = index(entry) else { return }
            let moved = list.remove(at: i)
            if let after {
                if let j = index(after) { list.insert(moved, at: j + 1) } else { list.append(moved) }
            } else {
                list.insert(moved, at: 0)
            }
        }
    }
}
