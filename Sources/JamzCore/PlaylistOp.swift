/// The name of one playlist op: the car that made it and its place in that car's own sequence.
///
/// `seq` starts at 1 for every origin and has no holes (a car numbers its ops 1, 2, 3 …). That
/// is what lets a per-origin high-water mark summarise exactly which ops a car holds, so two
/// cars find what the other lacks by swapping one small map. The `OpID` of an `add` is also the
/// id of the entry it creates: removes and moves name entries by it, in every car alike.
/// Ordered by `(origin, seq)`, the order in which ops are exchanged and persisted.
public struct OpID: Hashable, Comparable, Sendable, Codable, CustomStringConvertible {
    public var origin: MemberID
    public var seq: UInt64
    public init(origin: MemberID, seq: UInt64) { self.origin = origin; self.seq = seq }
    public static func < (a: OpID, b: OpID) -> Bool {
        a.origin != b.origin ? a.origin < b.origin : a.seq < b.seq
    }
    public var description: String { "\(origin):\(seq)" }

    /// The renderer's id for the entry this op added: the entry is named by its OpID in every
    /// car; the renderer (`QueueEntry`, `PlayAnchor`) and the heard map key on an Int64, so the
    /// OpID is mixed into one (one SplitMix64 step: distinct OpIDs collide with probability
    /// ~2⁻⁶⁴ per pair). The daemon's player and the simulator's cars use the same.
    public var queueEntryID: Int64 {
        var g = SplitMix64(seed: origin.raw &+ 0x9E37_79B9_7F4A_7C15 &* seq)
        return Int64(bitPattern: g.next())
    }
}

/// One change to the convoy's playlist, as the person in the car meant it. Entries are named by
/// the `OpID` of the `add` that created them, never by position or track: positions differ
/// between cars until they have merged, and the same track may be queued twice.
public enum PlaylistEdit: Sendable, Equatable, Codable {
    /// Queue `track` (`frames` long at the output rate) right after entry `after`;
    /// `nil` appends it at the end. Anyone may add.
    case add(track: TrackID, frames: Int64, after: OpID?)
    /// Take entry `entry` (the id of the add that created it) off the list, for good.
    /// Only the DJ of the op's term may remove.
    case remove(entry: OpID)
    /// Put entry `entry` right after entry `after`; `nil` moves it to the head.
    /// Only the DJ of the op's term may move.
    case move(entry: OpID, after: OpID?)

    /// Whether only the DJ of the term the op is made in may make it (remove and move).
    public var needsDJ: Bool {
        if case .add = self { return false }
        return true
    }
}

/// A playlist edit as it is stored and sent: who made it (`id`), where it falls in the merge
/// order (`lamport`), which term of control its author was in when it was made (`term`, used to
/// check that a remove or move came from that term's DJ), and the edit itself.
public struct PlaylistOp: Sendable, Equatable, Codable {
    public var id: OpID
    /// Lamport time: one more than the highest lamport the author held when it made the op, so
    /// an op always sorts after every op its author could see (an edit after what it edits).
    public var lamport: UInt64
    public var term: Term
    public var edit: PlaylistEdit
    public init(id: OpID, lamport: UInt64, term: Term, edit: PlaylistEdit) {
        self.id = id; self.lamport = lamport; self.term = term; self.edit = edit
    }

    /// The merge order `(lamport, origin, seq)`: total, and the same in every car.
    public static func mergeOrder(_ a: PlaylistOp, _ b: PlaylistOp) -> Bool {
        if a.lamport != b.lamport { return a.lamport < b.lamport }
        return a.id < b.id
    }
}

/// One entry of the materialized playlist. `id` is the `OpID` of the add that queued it: stable
/// across cars, merges and restarts, and distinct for two queueings of the same track.
public struct PlaylistEntry: Sendable, Equatable {
    public var id: OpID
    public var track: TrackID
    /// Track length in frames at the output rate.
    public var frames: Int64
    public init(id: OpID, track: TrackID, frames: Int64) {
        self.id = id; self.track = track; self.frames = frames
    }
}

/// Why `PlaylistLog.make` refused a local edit. Nothing was stored or numbered: the next edit
/// gets the sequence number this one would have had.
public enum PlaylistError: Error, Sendable, Equatable {
    /// A remove or move asked in a term whose DJ is another car (`term.dj != me`).
    case notDJ(term: Term)
    /// The edit names an entry (to remove, to move, or as the place to insert after) that is
    /// not on this car's list: never heard of here, or already removed. A car can only edit
    /// what it can see.
    case notAlive(OpID)
    /// A track length below zero.
    case invalidFrames(Int64)
    /// This car holds ops of its own numbered past a hole it does not hold (its store lost ops
    /// it had made and sent). Numbering a new op now could reuse a sequence number the convoy
    /// already knows with other content; wait until anti-entropy has filled the hole.
    case ownHistoryIncomplete
    /// The Lamport clock reached `PlaylistLog.lamportLimit` (only a bad op can push it there).
    case clockExhausted
}

extension PlaylistError: CustomStringConvertible {
    public var description: String {
        switch self {
        case .notDJ(let t): "only the DJ removes or moves entries (the DJ is \(t.dj), term \(t.number); `jamz take-control` first)"
        case .notAlive(let id): "entry \(id) is not on this car's list (removed, or not heard of yet)"
        case .invalidFrames(let f): "a track length of \(f) frames"
        case .ownHistoryIncomplete: "this car is still fetching its own earlier edits from the others; try again in a few seconds"
        case .clockExhausted: "the playlist's clock is exhausted (a bad op from another car)"
        }
    }
}
