import GRDB
import JamzCore

/// One stored location of a member.
public struct LocationRecord: Sendable, Equatable {
    public var member: MemberID
    /// The drive this point belongs to (the caller's number, e.g. the daemon's boot counter).
    public var session: Int64
    public var fix: Fix
    public init(member: MemberID, session: Int64, fix: Fix) { self.member = member; self.session = session; self.fix = fix }
}

/// Location history (`location` table, migration "v3-locations"): every validated fix of this
/// car and of the members heard, bounded by `HistoryPolicy` through `compact`.
///
/// Queries are functions of a GRDB `Database`, run with `pool.write`/`pool.read` (the async forms
/// from async code). Write a few fixes per transaction (e.g. every second): each committed write
/// is on disk (`synchronous = FULL`), so `kill -9` or a power cut loses only fixes not yet
/// written. `time` is the GPS time (UTC ns), `mono` the receiving car's monotonic clock;
/// `accuracy` is gpsd's eph (m), `heading` the course over ground (degrees), `speed` m/s.
/// Member ids are stored as their Int64 bit pattern, as in `ConvoyLog`.
public enum LocationHistory {
    /// Appends fixes of `member`. A fix at a time already stored for that member is skipped
    /// (a replayed or duplicated report). Fixes must be validated (`FixValidator`); the table's
    /// CHECKs refuse impossible coordinates anyway.
    public static func append(_ db: Database, member: MemberID, session: Int64, fixes: [Fix]) throws {
        let insert = try db.cachedStatement(sql: """
            INSERT INTO location (member, session, latitude, longitude, altitude, accuracy,
                                  speed, heading, mode, time, mono)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
            ON CONFLICT (member, time) DO NOTHING
            """)
        for f in fixes {
            try insert.execute(arguments: [
                Int64(bitPattern: member.raw), session, f.point.latitude, f.point.longitude, f.altitude,
                f.eph, f.speed, f.track, f.mode.rawValue, f.wall, f.mono,
            ])
        }
    }

    /// The newest stored location of each member.
    public static func latest(_ db: Database) throws -> [LocationRecord] {
        try Row.fetchAll(db, sql: """
            SELECT l.* FROM location l
            JOIN (SELECT member, MAX(time) AS t FROM location GROUP BY member) m
              ON l.member = m.member AND l.time = m.t
            ORDER BY l.member
            """).map(decode)
    }

    /// The newest stored location of `member`, if any.
    public static func latest(_ db: Database, member: MemberID) throws -> LocationRecord? {
        try Row.fetchOne(db, sql: "SELECT * FROM location WHERE member = ? ORDER BY time DESC LIMIT 1",
                         arguments: [Int64(bitPattern: member.raw)]).map(decode)
    }

    /// `member`'s locations with `from ≤ time < to` (GPS time, UTC ns), oldest first.
    public static func range(_ db: Database, member: MemberID, from: Nanos = .min, to: Nanos = .max) throws -> [LocationRecord] {
        try Row.fetchAll(db, sql: "SELECT * FROM location WHERE member = ? AND time >= ? AND time < ? ORDER BY time",
                         arguments: [Int64(bitPattern: member.raw), from, to]).map(decode)
    }

    public static func count(_ db: Database) throws -> Int {
        try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM location") ?? 0
    }

    public static func members(_ db: Database) throws -> [MemberID] {
        try Int64.fetchAll(db, sql: "SELECT DISTINCT member FROM location ORDER BY member")
            .map { MemberID(UInt64(bitPattern: $0)) }
    }

    public struct Compaction: Sendable, Equatable {
        /// Rows older than the retention.
        public var expired = 0
        /// Rows thinned out of the part older than `fullRateFor`.
        public var thinned = 0
        public init(expired: Int = 0, thinned: Int = 0) { self.expired = expired; self.thinned = thinned }
    }

    /// Applies `policy` at GPS time `now` (UTC ns): drops what is older than the retention and
    /// thins what is older than `fullRateFor` (`HistoryDownsampler`). Idempotent. One call is one
    /// transaction per member (through `pool`), so it never holds the writer for long.
    public static func compact(_ pool: DatabasePool, now: Nanos, policy: HistoryPolicy = HistoryPolicy()) throws -> Compaction {
        var result = Compaction()
        result.expired = try pool.write { db in
            try db.execute(sql: "DELETE FROM location WHERE time < ?", arguments: [now - policy.retention])
            return db.changesCount
        }
        for member in try pool.read(members) {
            result.thinned += try pool.write { db in try thin(db, member: member, now: now, policy: policy) }
        }
        return result
    }

    /// The same from async code: the writes go through GRDB's async `write`, off the concurrency pool.
    public static func compact(_ pool: DatabasePool, now: Nanos, policy: HistoryPolicy = HistoryPolicy()) async throws -> Compaction {
        var result = Compaction()
        result.expired = try await pool.write { db in
            try db.execute(sql: "DELETE FROM location WHERE time < ?", arguments: [now - policy.retention])
            return db.changesCount
        }
        for member in try await pool.read({ try members($0) }) {
            result.thinned += try await pool.write { db in try thin(db, member: member, now: now, policy: policy) }
        }
        return result
    }

    /// Thins one member's points older than `fullRateFor` within the caller's transaction.
    public static func thin(_ db: Database, member: MemberID, now: Nanos, policy: HistoryPolicy = HistoryPolicy()) throws -> Int {
        let rows = try Row.fetchAll(db, sql: """
            SELECT id, time, latitude, longitude FROM location
            WHERE member = ? AND time >= ? AND time < ? ORDER BY time
            """, arguments: [Int64(bitPattern: member.raw), now - policy.retention, now - policy.fullRateFor])
        let points = rows.map { HistoryPoint(id: $0["id"], wall: $0["time"],
                                             point: GeoPoint(latitude: $0["latitude"], longitude: $0["longitude"])) }
        let drop = HistoryDownsampler.dropList(points, now: now, policy: policy)
        let delete = try db.cachedStatement(sql: "DELETE FROM location WHERE id = ?")
        for id in drop { try delete.execute(arguments: [id]) }
        return drop.count
    }

    private static func decode(_ row: Row) throws -> LocationRecord {
        let mode: Int = row["mode"]
        let fix = Fix(mono: row["mono"], wall: row["time"],
                      point: GeoPoint(latitude: row["latitude"], longitude: row["longitude"]),
                      altitude: row["altitude"], mode: FixMode(rawValue: mode) ?? .twoD,
                      speed: row["speed"], track: row["heading"], eph: row["accuracy"], epv: nil)
        return LocationRecord(member: MemberID(UInt64(bitPattern: row["member"])), session: row["session"], fix: fix)
    }
}

extension Store {
    /// The members' location history, one transaction per call.
    public var locations: LocationHistory.Access { LocationHistory.Access(pool: pool) }
}

extension LocationHistory {
    public struct Access: Sendable {
        let pool: DatabasePool

        /// Stores fixes, each of its member, in one transaction (see `LocationHistory.append`).
        public func append(session: Int64, _ rows: [(member: MemberID, fix: Fix)]) async throws {
            try await pool.write { db in for r in rows { try LocationHistory.append(db, member: r.member, session: session, fixes: [r.fix]) } }
        }
        public func append(session: Int64, _ rows: [(member: MemberID, fix: Fix)]) throws {
            try pool.write { db in for r in rows { try LocationHistory.append(db, member: r.member, session: session, fixes: [r.fix]) } }
        }
        public func count() throws -> Int { try pool.read(LocationHistory.count) }
        /// `LocationHistory.compact` (blocking: from a thread of its own).
        public func compact(now: Nanos, policy: HistoryPolicy = HistoryPolicy()) throws -> Compaction {
            try LocationHistory.compact(pool, now: now, policy: policy)
        }
    }
}
