import Foundation
import JamzAudio
import JamzCore
import JamzLibrary
import JamzStore
import Logging
import NIOPosix
import Synchronization

/// The music library side of the daemon: imports (one at a time, on their own thread, while
/// playback goes on), the cache report and counters.
final class Library: Sendable {
    let cache: TrackCache
    let importer: Importer
    let logger: Logger
    private let importLock = NSLock()

    init(cache: TrackCache, rate: Int, logger: Logger) {
        self.cache = cache
        self.importer = Importer(cache: cache, rate: rate, logger: logger)
        self.logger = logger
    }

    func count(_ name: String, _ n: Int64 = 1) {
        cache.store.counters.add(name, n)
    }

    func importTree(_ dir: String, progress: @escaping @Sendable (Importer.Progress) async -> Void) async throws -> Importer.Summary {
        let (events, cont) = AsyncStream<Importer.Progress>.makeStream(bufferingPolicy: .unbounded)
        let importer = self.importer
        let lock = importLock
        let cancelled = Mutex(false)
        let result: Task<Importer.Summary, any Error> = Task {
            try await onThread("jamz-import") {
                lock.lock()
                defer { lock.unlock(); cont.finish() }
                return try importer.importTree(dir, stop: { cancelled.withLock { $0 } }) { cont.yield($0) }
            }
        }
        return try await withTaskCancellationHandler {
            for await p in events { await progress(p) }
            return try await result.value
        } onCancel: {
            cancelled.withLock { $0 = true }
        }
    }

    func cacheReport() async throws -> CacheReport {
        let usage = try await cache.store.catalog.usage()
        let counters = cache.store.counters.all
        var r = CacheReport()
        r.tracks = usage.tracks
        r.bytes = usage.bytes
        r.maxTracks = cache.limits.maxTracks
        r.maxBytes = cache.limits.maxBytes
        r.hits = counters["cache.hits"] ?? 0
        r.misses = counters["cache.misses"] ?? 0
        r.evictions = counters["cache.evictions"] ?? 0
        r.hitRate = r.hits + r.misses > 0 ? Double(r.hits) / Double(r.hits + r.misses) : nil
        return r
    }
}

/// Runs blocking work (file I/O, fsync, SQLite from a thread of its own) on SwiftNIO's
/// blocking-work thread pool, never on the Swift concurrency pool. `name` says what it is for
/// (the pool's threads are shared).
func onThread<T: Sendable>(_ name: String, _ body: @escaping @Sendable () throws -> T) async throws -> T {
    try await NIOThreadPool.singleton.runIfActive(body)
}
