import Foundation
import GRDB
import Synchronization

/// Named counters (bad input seen, cache hits, …) that survive restarts. They live in memory:
/// an increment is a locked add, nothing more (a flood of bad datagrams must not become a flood
/// of fsync'd commits). What changed since the last flush is written in one small transaction
/// by `flush()`, which the daemon calls a few seconds after the first unsaved change and at
/// shutdown; a power cut loses at most those few seconds of counts, never other data.
public final class Counters: Sendable {
    private struct State {
        var values: [String: Int64]
        /// Increments not in SQLite yet, by name.
        var unsaved: [String: Int64] = [:]
        /// Called (outside the lock) when the first unsaved increment arrives after a flush.
        var onUnsaved: (@Sendable () -> Void)?
    }
    private let state: Mutex<State>
    private let pool: DatabasePool

    init(pool: DatabasePool) throws {
        self.pool = pool
        var d: [String: Int64] = [:]
        try pool.read { db in
            for row in try Row.fetchAll(db, sql: "SELECT name, value FROM counter") { d[row[0]] = row[1] }
        }
        state = Mutex(State(values: d))
    }

    public func add(_ name: String, _ n: Int64 = 1) {
        let notify = state.withLock { s -> (@Sendable () -> Void)? in
            s.values[name, default: 0] += n
            let first = s.unsaved.isEmpty
            s.unsaved[name, default: 0] += n
            return first ? s.onUnsaved : nil
        }
        notify?()
    }

    /// `f` is called, on the thread that counted, whenever counts become unsaved after a flush
    /// (once per flush at most): the daemon schedules the next flush from it.
    public func whenUnsaved(_ f: @escaping @Sendable () -> Void) {
        let pending = state.withLock { s -> Bool in s.onUnsaved = f; return !s.unsaved.isEmpty }
        if pending { f() }
    }

    /// Whether some increments are not in SQLite yet.
    public var hasUnsaved: Bool { state.withLock { !$0.unsaved.isEmpty } }

    /// Writes the increments made since the last flush in one transaction (on GRDB's writer, not
    /// the caller's thread). On failure they stay unsaved for the next flush.
    public func flush() async throws {
        let batch = state.withLock { s -> [String: Int64] in defer { s.unsaved = [:] }; return s.unsaved }
        guard !batch.isEmpty else { return }
        do {
            try await pool.write { db in try Counters.write(batch, db) }
        } catch {
            restore(batch)
            throw error
        }
    }

    /// The same, blocking the calling thread (tests, shutdown paths off the concurrency pool).
    public func flushNow() throws {
        let batch = state.withLock { s -> [String: Int64] in defer { s.unsaved = [:] }; return s.unsaved }
        guard !batch.isEmpty else { return }
        do { try pool.write { db in try Counters.write(batch, db) } } catch { restore(batch); throw error }
    }

    private func restore(_ batch: [String: Int64]) {
        let notify = state.withLock { s -> (@Sendable () -> Void)? in
            let first = s.unsaved.isEmpty
            for (k, v) in batch { s.unsaved[k, default: 0] += v }
            return first ? s.onUnsaved : nil
        }
        notify?()
    }

    private static func write(_ batch: [String: Int64], _ db: Database) throws {
        for (name, n) in batch.sorted(by: { $0.key < $1.key }) {
            try db.execute(sql: """
                INSERT INTO counter (name, value) VALUES (?, ?)
                ON CONFLICT(name) DO UPDATE SET value = value + excluded.value
                """, arguments: [name, n])
        }
    }

    public subscript(name: String) -> Int64 { state.withLock { $0.values[name] ?? 0 } }

    public var all: [String: Int64] { state.withLock { $0.values } }
}
