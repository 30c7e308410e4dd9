import Foundation
import GRDB
import Synchronization

/// Named counters (bad input seen, cache hits, …) that survive restarts. Reads come from memory
/// (status is asked for often); each increment is also written to SQLite, off the caller's thread.
public final class Counters: Sendable {
    private let values: Mutex<[String: Int64]>
    private let pool: DatabasePool

    init(pool: DatabasePool) throws {
        self.pool = pool
        var d: [String: Int64] = [:]
        try pool.read { db in
            for row in try Row.fetchAll(db, sql: "SELECT name, value FROM counter") { d[row[0]] = row[1] }
        }
        values = Mutex(d)
    }

    public func add(_ name: String, _ n: Int64 = 1) {
        values.withLock { $0[name, default: 0] += n }
        pool.asyncWrite({ db in
            try db.execute(sql: """
                INSERT INTO counter (name, value) VALUES (?, ?)
                ON CONFLICT(name) DO UPDATE SET value = value + excluded.value
                """, arguments: [name, n])
        }, completion: { _, _ in })
    }

    public subscript(name: String) -> Int64 { values.withLock { $0[name] ?? 0 } }

    public var all: [String: Int64] { values.withLock { $0 } }
}
