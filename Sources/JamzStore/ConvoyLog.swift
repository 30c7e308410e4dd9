import GRDB
import JamzCore

/// The convoy's durable state: the playlist op log (`playlist_op`), this car's identity and the
/// session timeline it follows (`convoy_session`, one row).
///
/// Queries are functions of a GRDB `Database`; outside the module they are reached through
/// `store.convoyLog` (`ConvoyLog.Access`), one transaction per call. The writer commits with
/// `synchronous = FULL`, so a write that has returned is on disk.
///
/// **Durability contract** (see `PlaylistLog`): an op is stored before it is sent. The caller
/// awaits `try await store.convoyLog.append([op])` and only then hands the op to the network;
/// on start it restores the log with `PlaylistLog(me:ops:)` from the ops `loadSession` returns
/// (or `PlaylistLog.restore(from:me:)`). Ops received from peers are stored the same way, those
/// the log holds (`PlaylistLog.ops`), rejected-but-held ones included, buffered ones not.
///
/// UInt64 values (member ids, seqs, lamports, term numbers, versions) are stored as their
/// Int64 bit pattern and read back exactly: ids at or above 2^63 show as negative in sqlite3,
/// and SQL `ORDER BY` on them is not the Swift order (`loadOps` sorts in Swift).
///
/// The timeline is stored in columns too, not as JSON of `ConvoyTimeline`: resuming after a
/// power cut depends on that row, and columns tie its format to this file and the migration
/// (a renamed or added Core field is a compile error here, not a row that no longer decodes
/// after an update), and keep the UInt64 fields exact and readable with sqlite3.
public enum ConvoyLog {
    /// Appends ops to the log. An op whose `(origin, seq)` is already stored with the same
    /// content is skipped; one with other content throws `ConvoyLogError.conflictingOp` and is
    /// never written over. Within the caller's transaction (`pool.write`) a batch is stored whole
    /// or, after a throw, not at all. **Await the write before sending the ops to any peer.**
    public static func append(_ db: Database, _ ops: [PlaylistOp]) throws {
        let insert = try db.cachedStatement(sql: """
            INSERT INTO playlist_op (origin, seq, lamport, term_number, term_dj, kind, track, frames,
                                     after_origin, after_seq, entry_origin, entry_seq)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
            """)
        for op in ops {
            if let stored = try self.op(db, id: op.id) {
                guard stored == op else { throw ConvoyLogError.conflictingOp(stored: stored, offered: op) }
                continue
            }
            var track: String?, frames: Int64?, after: OpID?, entry: OpID?
            let kind: String
            switch op.edit {
            case .add(let t, let f, let a): kind = "add"; track = t.hex; frames = f; after = a
            case .remove(let e): kind = "remove"; entry = e
            case .move(let e, let a): kind = "move"; entry = e; after = a
            }
            try insert.execute(arguments: [
                bits(op.id.origin.raw), bits(op.id.seq), bits(op.lamport),
                bits(op.term.number), bits(op.term.dj.raw), kind, track, frames,
                after.map { bits($0.origin.raw) }, after.map { bits($0.seq) },
                entry.map { bits($0.origin.raw) }, entry.map { bits($0.seq) },
            ])
        }
    }

    /// Forget every op (joining another convoy: its playlist is not this one).
    public static func clearOps(_ db: Database) throws {
        try db.execute(sql: "DELETE FROM playlist_op")
    }

    /// The tracks (hex ids) the convoy's playlist holds: every add no remove by its term's DJ has
    /// taken off (a remove by another member is kept, inert, and takes nothing off).
    /// A superset of what `PlaylistLog` shows (it also counts an add whose merge was refused),
    /// which is the safe side for what it is used for: not evicting a track, keeping a partial copy.
    static let playlistTracksSQL = """
        SELECT a.track FROM playlist_op a WHERE a.kind = 'add' AND NOT EXISTS (
            SELECT 1 FROM playlist_op r WHERE r.kind = 'remove' AND r.entry_origin = a.origin AND r.entry_seq = a.seq
                AND r.term_dj = r.origin)
        """

    public static func playlistTracks(_ db: Database) throws -> Set<String> {
        Set(try String.fetchAll(db, sql: playlistTracksSQL))
    }

    /// Every stored op, in `(origin, seq)` order: what `PlaylistLog(me:ops:)` restores from.
    public static func loadOps(_ db: Database) throws -> [PlaylistOp] {
        try Row.fetchAll(db, sql: "SELECT * FROM playlist_op").map(decodeOp).sorted { $0.id < $1.id }
    }

    /// The stored op named `id`, if any.
    public static func op(_ db: Database, id: OpID) throws -> PlaylistOp? {
        try Row.fetchOne(db, sql: "SELECT * FROM playlist_op WHERE origin = ? AND seq = ?",
                         arguments: [bits(id.origin.raw), bits(id.seq)]).map(decodeOp)
    }

    /// Replaces the stored timeline with `timeline` (the one the session follows now).
    public static func saveTimeline(_ db: Database, _ timeline: ConvoyTimeline) throws {
        let values: [(any DatabaseValueConvertible)?] = [bits(timeline.term.number), bits(timeline.term.dj.raw), bits(timeline.version)]
            + anchorValues(timeline.anchor) + anchorValues(timeline.previous)
        try db.execute(sql: """
            INSERT INTO convoy_session (id, term_number, term_dj, version,
                anchor_entry_origin, anchor_entry_seq, anchor_track, anchor_frame, anchor_time, anchor_rate,
                previous_entry_origin, previous_entry_seq, previous_track, previous_frame, previous_time, previous_rate)
            VALUES (1, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
            ON CONFLICT (id) DO UPDATE SET
                term_number = excluded.term_number, term_dj = excluded.term_dj, version = excluded.version,
                anchor_entry_origin = excluded.anchor_entry_origin, anchor_entry_seq = excluded.anchor_entry_seq,
                anchor_track = excluded.anchor_track, anchor_frame = excluded.anchor_frame,
                anchor_time = excluded.anchor_time, anchor_rate = excluded.anchor_rate,
                previous_entry_origin = excluded.previous_entry_origin, previous_entry_seq = excluded.previous_entry_seq,
                previous_track = excluded.previous_track, previous_frame = excluded.previous_frame,
                previous_time = excluded.previous_time, previous_rate = excluded.previous_rate
            """, arguments: StatementArguments(values))
    }

    /// The stored timeline; nil when none was saved yet.
    public static func loadTimeline(_ db: Database) throws -> ConvoyTimeline? {
        guard let row = try Row.fetchOne(db, sql: "SELECT * FROM convoy_session WHERE id = 1"),
              let number: Int64 = try row.decode(forColumn: "term_number") else { return nil }
        return ConvoyTimeline(
            term: Term(number: UInt64(bitPattern: number), dj: MemberID(UInt64(bitPattern: try row.decode(forColumn: "term_dj")))),
            version: UInt64(bitPattern: try row.decode(forColumn: "version")),
            anchor: try decodeAnchor(row, "anchor"),
            previous: try decodeAnchor(row, "previous"))
    }

    /// This car's identity; nil before the first boot stored one.
    public static func memberID(_ db: Database) throws -> MemberID? {
        try Int64.fetchOne(db, sql: "SELECT member_id FROM convoy_session WHERE id = 1")
            .map { MemberID(UInt64(bitPattern: $0)) }
    }

    /// Stores this car's identity, made once on first boot by the caller. Storing the same id
    /// again does nothing; a different one throws `ConvoyLogError.memberIDAlreadySet`: the ops
    /// stored here were numbered under the first id, so it is never changed in place.
    public static func setMemberID(_ db: Database, _ id: MemberID) throws {
        if let stored = try memberID(db) {
            guard stored == id else { throw ConvoyLogError.memberIDAlreadySet(stored: stored, offered: id) }
            return
        }
        try db.execute(sql: """
            INSERT INTO convoy_session (id, member_id) VALUES (1, ?)
            ON CONFLICT (id) DO UPDATE SET member_id = excluded.member_id
            """, arguments: [bits(id.raw)])
    }

    // MARK: - Rows

    private static func bits(_ v: UInt64) -> Int64 { Int64(bitPattern: v) }

    private static func opID(_ row: Row, _ origin: String, _ seq: String) throws -> OpID? {
        guard let o: Int64 = try row.decode(forColumn: origin), let s: Int64 = try row.decode(forColumn: seq) else { return nil }
        return OpID(origin: MemberID(UInt64(bitPattern: o)), seq: UInt64(bitPattern: s))
    }

    private static func trackID(_ row: Row, _ column: String, _ key: String) throws -> TrackID {
        let hex: String = try row.decode(forColumn: column)
        guard let id = TrackID(hex: hex) else { throw ConvoyLogError.badRow(key: key, reason: "\(column) is not a track id: \(hex)") }
        return id
    }

    private static func decodeOp(_ row: Row) throws -> PlaylistOp {
        guard let id = try opID(row, "origin", "seq") else { throw ConvoyLogError.badRow(key: "playlist_op", reason: "no id") }
        let key = "playlist_op \(id)"
        let edit: PlaylistEdit
        let kind: String = try row.decode(forColumn: "kind")
        switch kind {
        case "add":
            edit = .add(track: try trackID(row, "track", key), frames: try row.decode(forColumn: "frames"),
                        after: try opID(row, "after_origin", "after_seq"))
        case "remove", "move":
            guard let entry = try opID(row, "entry_origin", "entry_seq") else {
                throw ConvoyLogError.badRow(key: key, reason: "\(kind) names no entry")
            }
            edit = kind == "remove" ? .remove(entry: entry) : .move(entry: entry, after: try opID(row, "after_origin", "after_seq"))
        default:
            throw ConvoyLogError.badRow(key: key, reason: "unknown kind \(kind)")
        }
        return PlaylistOp(
            id: id, lamport: UInt64(bitPattern: try row.decode(forColumn: "lamport")),
            term: Term(number: UInt64(bitPattern: try row.decode(forColumn: "term_number")),
                       dj: MemberID(UInt64(bitPattern: try row.decode(forColumn: "term_dj")))),
            edit: edit)
    }

    /// The six column values of an anchor, in table order (all nil for no anchor).
    private static func anchorValues(_ a: TimelineAnchor?) -> [(any DatabaseValueConvertible)?] {
        guard let a else { return Array(repeating: nil, count: 6) }
        return [bits(a.entry.origin.raw), bits(a.entry.seq), a.track.hex, a.frame, a.time, a.rate]
    }

    private static func decodeAnchor(_ row: Row, _ prefix: String) throws -> TimelineAnchor? {
        guard let entry = try opID(row, "\(prefix)_entry_origin", "\(prefix)_entry_seq") else { return nil }
        return TimelineAnchor(
            entry: entry, track: try trackID(row, "\(prefix)_track", "convoy_session \(prefix)"),
            frame: try row.decode(forColumn: "\(prefix)_frame"), time: try row.decode(forColumn: "\(prefix)_time"),
            rate: try row.decode(forColumn: "\(prefix)_rate"))
    }
}

/// Why a `ConvoyLog` write was refused or a stored row could not be read.
public enum ConvoyLogError: Error, Sendable, Equatable, CustomStringConvertible {
    /// An op with the id of a stored one but other content: the stored op stays as it is.
    /// (A car never numbers two ops alike; this is a bug or a forged op that should have been
    /// rejected by `PlaylistLog` before it reached the store.)
    case conflictingOp(stored: PlaylistOp, offered: PlaylistOp)
    /// This car already has an identity; it is never replaced.
    case memberIDAlreadySet(stored: MemberID, offered: MemberID)
    /// A stored row that does not describe a valid value (only a damaged database has one).
    case badRow(key: String, reason: String)

    public var description: String {
        switch self {
        case .conflictingOp(let stored, let offered):
            "playlist op \(stored.id) is already stored with other content (stored \(stored), offered \(offered)); the stored op is kept"
        case .memberIDAlreadySet(let stored, let offered):
            "this car's member id is already \(stored); refusing to replace it with \(offered)"
        case .badRow(let key, let reason):
            "unreadable row \(key): \(reason)"
        }
    }
}

extension PlaylistLog {
    /// The log of car `me` as stored in `store` (the restore after a start or a power cut).
    public static func restore(from store: Store, me: MemberID) async throws -> PlaylistLog {
        PlaylistLog(me: me, ops: try await store.convoyLog.loadOps())
    }
}

extension Store {
    /// The convoy's op log and session, one transaction per call.
    public var convoyLog: ConvoyLog.Access { ConvoyLog.Access(pool: pool) }
}

extension ConvoyLog {
    public struct Access: Sendable {
        let pool: DatabasePool

        /// What a start resumes from, read in one transaction: this car's identity (made by
        /// `newID` and stored on the first start), every stored op and the stored timeline.
        public func loadSession(newID: @Sendable () -> MemberID) async throws -> (me: MemberID, ops: [PlaylistOp], timeline: ConvoyTimeline?) {
            try await pool.write { db in
                let id: MemberID
                if let stored = try ConvoyLog.memberID(db) { id = stored } else {
                    id = newID()
                    try ConvoyLog.setMemberID(db, id)
                }
                return (id, try ConvoyLog.loadOps(db), try ConvoyLog.loadTimeline(db))
            }
        }
        public func loadOps() async throws -> [PlaylistOp] { try await pool.read(ConvoyLog.loadOps) }
        /// Stores ops (see `ConvoyLog.append`): await it before sending them to any peer.
        public func append(_ ops: [PlaylistOp]) async throws { try await pool.write { try ConvoyLog.append($0, ops) } }
        public func clearOps() async throws { try await pool.write(ConvoyLog.clearOps) }
        public func saveTimeline(_ t: ConvoyTimeline) async throws { try await pool.write { try ConvoyLog.saveTimeline($0, t) } }
        /// The tracks (hex ids) on the convoy's playlist (`ConvoyLog.playlistTracks`).
        public func playlistTracks() throws -> Set<String> { try pool.read(ConvoyLog.playlistTracks) }
    }
}
