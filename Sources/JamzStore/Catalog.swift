import Foundation
import GRDB
import JamzCore

/// One catalog row: a track's metadata and cache bookkeeping.
public struct TrackRecord: Codable, FetchableRecord, PersistableRecord, Sendable, Equatable {
    public static let databaseTableName = "track"
    public var id: String
    public var title: String
    public var artist: String
    public var album: String
    public var frames: Int64
    public var sourceRate: Int
    public var sourceChannels: Int
    public var bytes: Int64
    public var cached: Bool
    public var importSeq: Int64
    public var playSeq: Int64
    public var playCount: Int64

    public init(_ info: TrackInfo, importSeq: Int64) {
        id = info.id.hex; title = info.title; artist = info.artist; album = info.album
        frames = info.frames; sourceRate = info.sourceRate; sourceChannels = info.sourceChannels
        bytes = info.bytes; cached = true; self.importSeq = importSeq; playSeq = 0; playCount = 0
    }

    public var info: TrackInfo {
        TrackInfo(id: TrackID(hex: id)!, title: title, artist: artist, album: album, frames: frames,
                  sourceRate: sourceRate, sourceChannels: sourceChannels, bytes: bytes)
    }
}

public enum Catalog {
    public static func track(_ db: Database, id: TrackID) throws -> TrackRecord? {
        try TrackRecord.fetchOne(db, key: id.hex)
    }

    /// Adds a track (or marks a known one cached again). Returns false when it was already cached.
    /// An import counts as a use for eviction: a track just brought in is the most recently
    /// used, not the first to go.
    @discardableResult
    public static func insert(_ db: Database, _ info: TrackInfo) throws -> Bool {
        let use = try nextPlaySeq(db)
        if var existing = try TrackRecord.fetchOne(db, key: info.id.hex) {
            if existing.cached { return false }
            existing.cached = true
            existing.playSeq = use
            try existing.update(db)
            return true
        }
        let seq = (try Int64.fetchOne(db, sql: "SELECT MAX(importSeq) FROM track") ?? 0) + 1
        var record = TrackRecord(info, importSeq: seq)
        record.playSeq = use
        try record.insert(db)
        return true
    }

    private static func nextPlaySeq(_ db: Database) throws -> Int64 {
        (try Int64.fetchOne(db, sql: "SELECT MAX(playSeq) FROM track") ?? 0) + 1
    }

    /// Tracks matching a track id (or a unique prefix of at least 6 hex digits), else every
    /// word in title/artist/album (case-insensitive, any script; no wildcards), in import order.
    public static func search(_ db: Database, _ words: String) throws -> [TrackRecord] {
        let q = words.trimmingCharacters(in: .whitespaces).lowercased()
        if q.count >= 6, q.allSatisfy(\.isHexDigit) {
            let byID = try TrackRecord.filter(Column("id").like("\(q)%")).order(Column("importSeq")).fetchAll(db)
            if !byID.isEmpty { return byID }
        }
        // SQLite's LIKE folds ASCII only and treats % and _ as wildcards: match in Swift instead
        // (a head unit's catalog is a few thousand rows at most).
        let terms = q.split(separator: " ").map { $0.folding(options: [.caseInsensitive, .diacriticInsensitive], locale: nil) }
        return try all(db).filter { t in
            let hay = "\(t.title) \(t.artist) \(t.album)".folding(options: [.caseInsensitive, .diacriticInsensitive], locale: nil)
            return terms.allSatisfy { hay.contains($0) }
        }
    }

    public static func all(_ db: Database) throws -> [TrackRecord] {
        try TrackRecord.order(Column("importSeq")).fetchAll(db)
    }

    /// Marks a track played now (for least-recently-played eviction).
    public static func markPlayed(_ db: Database, id: TrackID) throws {
        let seq = try nextPlaySeq(db)
        try db.execute(sql: "UPDATE track SET playSeq = ?, playCount = playCount + 1 WHERE id = ?", arguments: [seq, id.hex])
    }

    public struct Usage: Sendable, Equatable {
        public var tracks: Int
        public var bytes: Int64
    }

    public static func usage(_ db: Database) throws -> Usage {
        let row = try Row.fetchOne(db, sql: "SELECT COUNT(*), COALESCE(SUM(bytes), 0) FROM track WHERE cached")!
        return Usage(tracks: row[0], bytes: row[1])
    }

    /// Cached tracks that may be evicted, least recently used (played or imported) first: never
    /// one in the queue, nor one on the convoy's playlist (an add no remove has taken off: the
    /// other cars may need to copy it from this one, and it will play here too).
    public static func evictionCandidates(_ db: Database) throws -> [TrackRecord] {
        try TrackRecord.fetchAll(db, sql: """
            SELECT * FROM track WHERE cached
              AND id NOT IN (SELECT trackId FROM queueEntry)
              AND id NOT IN (\(ConvoyLog.playlistTracksSQL))
            ORDER BY playSeq, importSeq
            """)
    }

    public static func markEvicted(_ db: Database, id: String) throws {
        try db.execute(sql: "UPDATE track SET cached = 0 WHERE id = ?", arguments: [id])
    }
}

extension Store {
    /// The catalog, one transaction per call.
    public var catalog: Catalog.Access { Catalog.Access(pool: pool) }
}

extension Catalog {
    public struct Access: Sendable {
        let pool: DatabasePool

        public func track(id: TrackID) throws -> TrackRecord? { try pool.read { try Catalog.track($0, id: id) } }
        public func track(id: TrackID) async throws -> TrackRecord? { try await pool.read { try Catalog.track($0, id: id) } }
        /// The records of those of `ids` the catalog knows.
        public func tracks(_ ids: some Collection<TrackID> & Sendable) async throws -> [TrackID: TrackRecord] {
            try await pool.read { db in
                var found: [TrackID: TrackRecord] = [:]
                for id in ids { found[id] = try Catalog.track(db, id: id) }
                return found
            }
        }
        @discardableResult
        public func insert(_ info: TrackInfo) throws -> Bool { try pool.write { try Catalog.insert($0, info) } }
        public func all() throws -> [TrackRecord] { try pool.read(Catalog.all) }
        public func search(_ words: String) async throws -> [TrackRecord] { try await pool.read { try Catalog.search($0, words) } }
        public func markPlayed(_ id: TrackID) async throws { try await pool.write { try Catalog.markPlayed($0, id: id) } }
        public func markEvicted(_ id: String) throws { try pool.write { try Catalog.markEvicted($0, id: id) } }
        public func usage() async throws -> Usage { try await pool.read(Catalog.usage) }

        /// Marks cached tracks evicted, least recently used first (`evictionCandidates`), until
        /// at most `maxTracks` tracks and `maxBytes` bytes are cached, in one transaction.
        /// Returns the evicted records and the usage after (still over the limits when the
        /// rest is queued or on the convoy's playlist).
        public func evict(maxTracks: Int, maxBytes: Int64) throws -> (evicted: [TrackRecord], usage: Usage) {
            try pool.write { db in
                var usage = try Catalog.usage(db)
                var evicted: [TrackRecord] = []
                guard usage.tracks > maxTracks || usage.bytes > maxBytes else { return ([], usage) }
                for t in try Catalog.evictionCandidates(db) {
                    guard usage.tracks > maxTracks || usage.bytes > maxBytes else { break }
                    try Catalog.markEvicted(db, id: t.id)
                    usage.tracks -= 1
                    usage.bytes -= t.bytes
                    evicted.append(t)
                }
                return (evicted, usage)
            }
        }
    }
}
