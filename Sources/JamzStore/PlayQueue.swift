import GRDB
import JamzCore

/// The play queue: entries in `ord` order, each naming a catalog track.
public enum PlayQueue {
    public struct Item: Sendable, Equatable {
        public var entry: QueueEntry
        public var track: TrackRecord
        public init(entry: QueueEntry, track: TrackRecord) { self.entry = entry; self.track = track }
    }

    public static func items(_ db: Database) throws -> [Item] {
        let rows = try Row.fetchAll(db, sql: """
            SELECT q.id AS qid, t.* FROM queueEntry q JOIN track t ON t.id = q.trackId ORDER BY q.ord, q.id
            """)
        return try rows.map { row in
            let t = try TrackRecord(row: row)
            return Item(entry: QueueEntry(id: row["qid"], trackID: TrackID(hex: t.id)!, frames: t.frames), track: t)
        }
    }

    public static func entries(_ db: Database) throws -> [QueueEntry] { try items(db).map(\.entry) }

    /// Appends tracks at the end of the queue; returns the new entries.
    public static func append(_ db: Database, _ tracks: [TrackRecord]) throws -> [QueueEntry] {
        var ord = (try Double.fetchOne(db, sql: "SELECT MAX(ord) FROM queueEntry") ?? 0)
        var out: [QueueEntry] = []
        for t in tracks {
            ord += 1
            try db.execute(sql: "INSERT INTO queueEntry (ord, trackId) VALUES (?, ?)", arguments: [ord, t.id])
            out.append(QueueEntry(id: db.lastInsertedRowID, trackID: TrackID(hex: t.id)!, frames: t.frames))
        }
        return out
    }

    /// The queue becomes these entries, in this order, under these ids (a convoy's playlist,
    /// kept when the car leaves: the ids stay the ones the renderer plays, so the music goes on).
    public static func replace(_ db: Database, with entries: [(id: Int64, trackID: String)]) throws {
        try db.execute(sql: "DELETE FROM queueEntry")
        for (i, e) in entries.enumerated() {
            try db.execute(sql: "INSERT INTO queueEntry (id, ord, trackId) VALUES (?, ?, ?)", arguments: [e.id, Double(i + 1), e.trackID])
        }
    }

    /// An entry a remove or a move names is not in the queue (another command took it away).
    public struct MissingEntry: Error, Sendable, Equatable, CustomStringConvertible {
        public let entryID: Int64
        public var description: String { "queue entry \(entryID) is no longer in the queue; look at it again" }
    }

    public static func remove(_ db: Database, entryID: Int64) throws {
        try db.execute(sql: "DELETE FROM queueEntry WHERE id = ?", arguments: [entryID])
        guard db.changesCount == 1 else { throw MissingEntry(entryID: entryID) }
    }

    /// Puts entry `entryID` right after entry `after` (nil: first), by giving it an order
    /// between its new neighbours' (one row written; when repeated moves have left no room
    /// between two orders, the queue is numbered 1, 2, 3… again first).
    public static func move(_ db: Database, entryID: Int64, after: Int64?) throws {
        func others() throws -> [(id: Int64, ord: Double)] {
            try Row.fetchAll(db, sql: "SELECT id, ord FROM queueEntry WHERE id != ? ORDER BY ord, id", arguments: [entryID])
                .map { (id: $0["id"] as Int64, ord: $0["ord"] as Double) }
        }
        guard try Bool.fetchOne(db, sql: "SELECT 1 FROM queueEntry WHERE id = ?", arguments: [entryID]) == true else {
            throw MissingEntry(entryID: entryID)
        }
        var ords = try others()
        var at = 0
        if let a = after {
            guard let i = ords.firstIndex(where: { $0.id == a }) else { throw MissingEntry(entryID: a) }
            at = i + 1
        }
        func between() -> Double? {
            let below = at > 0 ? ords[at - 1].ord : (ords.first?.ord ?? 1) - 1
            let above = at < ords.count ? ords[at].ord : below + 2
            let mid = (below + above) / 2
            return mid > below && mid < above ? mid : nil
        }
        if between() == nil {
            for (i, o) in ords.enumerated() {
                try db.execute(sql: "UPDATE queueEntry SET ord = ? WHERE id = ?", arguments: [Double(i + 1), o.id])
            }
            ords = try others()
        }
        guard let ord = between() else { return }
        try db.execute(sql: "UPDATE queueEntry SET ord = ? WHERE id = ?", arguments: [ord, entryID])
    }
}

/// The player's durable state: play/pause, where (entry and frame), volume.
public struct PlayerRecord: Codable, FetchableRecord, PersistableRecord, Sendable, Equatable {
    public static let databaseTableName = "player"
    public var id: Int64 = 1
    public var playing: Bool
    public var entryId: Int64?
    public var frame: Int64
    public var volume: Int

    public init(playing: Bool, entryId: Int64?, frame: Int64, volume: Int) {
        self.playing = playing; self.entryId = entryId; self.frame = frame; self.volume = volume
    }
}

public enum PlayerState {
    public static func load(_ db: Database) throws -> PlayerRecord? { try PlayerRecord.fetchOne(db, key: 1) }
    public static func save(_ db: Database, _ r: PlayerRecord) throws { try r.save(db) }
}


extension Store {
    /// The local play queue, one transaction per call.
    public var queue: PlayQueue.Access { PlayQueue.Access(pool: pool) }
    /// The player's saved state (the one row), one transaction per call.
    public var playerState: PlayerState.Access { PlayerState.Access(pool: pool) }
}

extension PlayQueue {
    public struct Access: Sendable {
        let pool: DatabasePool
        public func items() async throws -> [Item] { try await pool.read(PlayQueue.items) }
        public func append(_ tracks: [TrackRecord]) async throws -> [QueueEntry] { try await pool.write { try PlayQueue.append($0, tracks) } }
        public func remove(entryID: Int64) async throws { try await pool.write { try PlayQueue.remove($0, entryID: entryID) } }
        public func move(entryID: Int64, after: Int64?) async throws { try await pool.write { try PlayQueue.move($0, entryID: entryID, after: after) } }
        public func replace(with entries: [(id: Int64, trackID: String)]) async throws { try await pool.write { try PlayQueue.replace($0, with: entries) } }
    }
}

extension PlayerState {
    public struct Access: Sendable {
        let pool: DatabasePool
        public func load() async throws -> PlayerRecord? { try await pool.read(PlayerState.load) }
        public func save(_ r: PlayerRecord) async throws { try await pool.write { try PlayerState.save($0, r) } }
    }
}
