import Foundation
import GRDB
import JamzCore

/// The car's durable state in one SQLite file in WAL mode (GRDB): catalog, queue, player state
/// and counters. Every write is a small transaction, so a power cut at any instant leaves a
/// database that opens and has lost nothing that was acknowledged.
///
/// Queries live in `Catalog`, `PlayQueue`, `PlayerState`, `ConvoyLog` and `LocationHistory` as
/// functions of a GRDB `Database`. Outside this module the store is reached through one small
/// API per aggregate (`store.catalog`, `.queue`, `.playerState`, `.convoyLog`, `.locations`,
/// `.counters`): each call is one transaction. Their async forms run SQLite off the concurrency
/// pool (GRDB's async access); the blocking forms are for the library's and benches' own threads.
/// The pool itself stays inside the module.
public final class Store: Sendable {
    let pool: DatabasePool
    public let path: String
    public let counters: Counters

    public struct OpenResult: Sendable {
        public let store: Store
        /// Set when the old database could not be used and was moved aside: the caller re-indexes the cache.
        public let movedAside: String?
        public let reason: String?
    }

    /// Opens (creating or migrating) the database at `path`. A file that is not a database, is
    /// corrupt or fails SQLite's quick check is renamed `<path>.broken-N` (with its -wal/-shm) and a fresh
    /// database takes its place.
    public static func open(path: String) throws -> OpenResult {
        do {
            let store = try Store(path: path)
            let check = try store.pool.read { db in try String.fetchOne(db, sql: "PRAGMA quick_check") }
            if check == "ok" { return OpenResult(store: store, movedAside: nil, reason: nil) }
            try? store.pool.close()
            let aside = try moveAside(path)
            return OpenResult(store: try Store(path: path), movedAside: aside, reason: "integrity check: \(check ?? "no answer")")
        } catch let error as DatabaseError where error.resultCode == .SQLITE_CORRUPT || error.resultCode == .SQLITE_NOTADB {
            // Only a database that is not one, or is damaged: a busy, full or failing disk is
            // reported as it is (the file may be fine).
            let aside = try moveAside(path)
            return OpenResult(store: try Store(path: path), movedAside: aside, reason: "\(error)")
        }
    }

    private static func moveAside(_ path: String) throws -> String {
        let fm = FileManager.default
        var n = 1
        while fm.fileExists(atPath: "\(path).broken-\(n)") { n += 1 }
        let aside = "\(path).broken-\(n)"
        try fm.moveItem(atPath: path, toPath: aside)
        for suffix in ["-wal", "-shm"] where fm.fileExists(atPath: path + suffix) {
            try? fm.moveItem(atPath: path + suffix, toPath: aside + suffix)
        }
        return aside
    }

    public init(path: String) throws {
        self.path = path
        var config = Configuration()
        config.busyMode = .timeout(5)
        config.prepareDatabase { db in
            // FULL: a commit is on disk before it is acknowledged (WAL keeps this cheap).
            try db.execute(sql: "PRAGMA synchronous = FULL")
        }
        pool = try DatabasePool(path: path, configuration: config)
        // GRDB sets NORMAL on the writer when it switches to WAL, after prepareDatabase.
        try pool.writeWithoutTransaction { db in try db.execute(sql: "PRAGMA synchronous = FULL") }
        try Store.migrator.migrate(pool)
        counters = try Counters(pool: pool)
    }

    /// Closes the database (a bench or a test that reopens the file).
    public func close() throws { try pool.close() }

    /// Moves the write-ahead log into the database file and truncates it (a bench measuring the
    /// file's size).
    public func checkpoint() throws {
        try pool.writeWithoutTransaction { try $0.execute(sql: "PRAGMA wal_checkpoint(TRUNCATE)") }
    }

    static var migrator: DatabaseMigrator {
        var m = DatabaseMigrator()
        m.registerMigration("v1") { db in
            try db.create(table: "track") { t in
                t.primaryKey("id", .text)
                t.column("title", .text).notNull()
                t.column("artist", .text).notNull()
                t.column("album", .text).notNull()
                t.column("frames", .integer).notNull()
                t.column("sourceRate", .integer).notNull()
                t.column("sourceChannels", .integer).notNull()
                t.column("bytes", .integer).notNull()
                t.column("cached", .boolean).notNull().defaults(to: true)
                t.column("importSeq", .integer).notNull()
                // Least-recently-played order: a sequence number, not a clock reading.
                t.column("playSeq", .integer).notNull().defaults(to: 0)
                t.column("playCount", .integer).notNull().defaults(to: 0)
            }
            try db.create(table: "queueEntry") { t in
                t.autoIncrementedPrimaryKey("id")
                t.column("ord", .double).notNull().indexed()
                t.column("trackId", .text).notNull().references("track", onDelete: .restrict)
            }
            try db.create(table: "player") { t in
                t.primaryKey("id", .integer).check { $0 == 1 }
                t.column("playing", .boolean).notNull()
                t.column("entryId", .integer)
                t.column("frame", .integer).notNull()
                t.column("volume", .integer).notNull()
            }
            try db.create(table: "counter") { t in
                t.primaryKey("name", .text)
                t.column("value", .integer).notNull()
            }
        }
        // The convoy's playlist op log and session (`ConvoyLog`). UInt64 values (member ids, seqs,
        // lamports, term numbers, versions) are stored as their Int64 bit pattern.
        m.registerMigration("v2-convoy") { db in
            // One row per op, named (origin, seq). The edit is spread over real columns so the
            // log can be read with sqlite3; the CHECKs pin which columns each kind uses.
            try db.execute(sql: """
                CREATE TABLE playlist_op (
                    origin       INTEGER NOT NULL,
                    seq          INTEGER NOT NULL,
                    lamport      INTEGER NOT NULL,
                    term_number  INTEGER NOT NULL,
                    term_dj      INTEGER NOT NULL,
                    kind         TEXT    NOT NULL CHECK (kind IN ('add', 'remove', 'move')),
                    track        TEXT    CHECK (track IS NULL OR length(track) = 64),
                    frames       INTEGER,
                    after_origin INTEGER,
                    after_seq    INTEGER,
                    entry_origin INTEGER,
                    entry_seq    INTEGER,
                    PRIMARY KEY (origin, seq),
                    CHECK ((after_origin IS NULL) = (after_seq IS NULL)),
                    CHECK ((entry_origin IS NULL) = (entry_seq IS NULL)),
                    CHECK (CASE kind
                        WHEN 'add'    THEN track IS NOT NULL AND frames IS NOT NULL AND entry_origin IS NULL
                        WHEN 'remove' THEN track IS NULL AND frames IS NULL AND entry_origin IS NOT NULL AND after_origin IS NULL
                        WHEN 'move'   THEN track IS NULL AND frames IS NULL AND entry_origin IS NOT NULL
                        ELSE 0 END)
                ) WITHOUT ROWID
                """)
            // One row: this car's identity and the timeline it follows. Anchor columns are all
            // NULL (no anchor) or all set; so are the timeline's own.
            try db.execute(sql: """
                CREATE TABLE convoy_session (
                    id                  INTEGER PRIMARY KEY CHECK (id = 1),
                    member_id           INTEGER,
                    term_number         INTEGER,
                    term_dj             INTEGER,
                    version             INTEGER,
                    anchor_entry_origin INTEGER,
                    anchor_entry_seq    INTEGER,
                    anchor_track        TEXT,
                    anchor_frame        INTEGER,
                    anchor_time         INTEGER,
                    anchor_rate         INTEGER,
                    previous_entry_origin INTEGER,
                    previous_entry_seq    INTEGER,
                    previous_track        TEXT,
                    previous_frame        INTEGER,
                    previous_time         INTEGER,
                    previous_rate         INTEGER,
                    CHECK ((term_number IS NULL) = (term_dj IS NULL) AND (term_number IS NULL) = (version IS NULL)),
                    CHECK (CASE WHEN anchor_entry_origin IS NULL
                        THEN anchor_entry_seq IS NULL AND anchor_track IS NULL AND anchor_frame IS NULL
                             AND anchor_time IS NULL AND anchor_rate IS NULL
                        ELSE term_number IS NOT NULL AND anchor_entry_seq IS NOT NULL AND anchor_track IS NOT NULL
                             AND anchor_frame IS NOT NULL AND anchor_time IS NOT NULL AND anchor_rate IS NOT NULL END),
                    CHECK (CASE WHEN previous_entry_origin IS NULL
                        THEN previous_entry_seq IS NULL AND previous_track IS NULL AND previous_frame IS NULL
                             AND previous_time IS NULL AND previous_rate IS NULL
                        ELSE term_number IS NOT NULL AND previous_entry_seq IS NOT NULL AND previous_track IS NOT NULL
                             AND previous_frame IS NOT NULL AND previous_time IS NOT NULL AND previous_rate IS NOT NULL END)
                )
                """)
        }
        // Location history (`LocationHistory`): one row per validated fix of a member.
        m.registerMigration("v3-locations") { db in
            try db.execute(sql: """
                CREATE TABLE location (
                    id        INTEGER PRIMARY KEY,
                    member    INTEGER NOT NULL,
                    session   INTEGER NOT NULL,
                    latitude  REAL    NOT NULL CHECK (latitude BETWEEN -90 AND 90),
                    longitude REAL    NOT NULL CHECK (longitude BETWEEN -180 AND 180),
                    altitude  REAL,
                    accuracy  REAL    CHECK (accuracy IS NULL OR accuracy >= 0),
                    speed     REAL    CHECK (speed IS NULL OR speed >= 0),
                    heading   REAL,
                    mode      INTEGER NOT NULL CHECK (mode IN (2, 3)),
                    time      INTEGER NOT NULL,
                    mono      INTEGER NOT NULL
                )
                """)
            try db.execute(sql: "CREATE UNIQUE INDEX location_member_time ON location (member, time)")
            try db.execute(sql: "CREATE INDEX location_time ON location (time)")
        }
        return m
    }
}
