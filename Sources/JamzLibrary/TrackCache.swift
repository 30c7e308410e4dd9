import Foundation
import JamzPlatform
import GRDB
import JamzCore
import JamzStore
import Logging

/// The content-addressed MP3 cache: `<dir>/<sha256>.mp3`, bounded by a track count and a byte
/// total. Eviction takes the least recently played track first and never one in the queue.
public final class TrackCache: Sendable {
    public struct Limits: Sendable, Equatable {
        public var maxTracks: Int
        public var maxBytes: Int64
        public init(maxTracks: Int = 50, maxBytes: Int64 = 2 << 30) { self.maxTracks = maxTracks; self.maxBytes = maxBytes }
    }

    public let dir: URL
    public let store: Store
    public let limits: Limits
    private let logger: Logger

    public init(dir: URL, store: Store, limits: Limits, logger: Logger) throws {
        self.dir = dir; self.store = store; self.limits = limits; self.logger = logger
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    }

    public func path(for id: TrackID) -> String { dir.appendingPathComponent("\(id.hex).mp3").path }

    /// Copies `source` into the cache under its hash (write to a temporary name, fsync, rename:
    /// a power cut leaves either no file or the whole file).
    public func store(file source: String, as id: TrackID) throws {
        let dest = path(for: id)
        if FileManager.default.fileExists(atPath: dest) { return }
        let tmp = dest + ".part"
        try? FileManager.default.removeItem(atPath: tmp)
        do {
            try FileManager.default.copyItem(atPath: source, toPath: tmp)
        } catch {
            try? FileManager.default.removeItem(atPath: tmp)   // a full disk leaves no half file
            throw ImportRejection(reason: "cannot store in the cache: \(error.localizedDescription)")
        }
        let fd = open(tmp, O_RDONLY)
        if fd >= 0 { fsync(fd); close(fd) }
        do { try DurableFile.commit(tmp, as: dest) } catch {
            try? FileManager.default.removeItem(atPath: tmp)
            throw ImportRejection(reason: "cannot store in the cache: \(error)")
        }
    }

    /// Evicts until the cache is within its limits; returns the evicted tracks. Blocking (SQLite
    /// and file removal): call from a thread or through `Task.detached`-free async GRDB access.
    @discardableResult
    public func enforceLimits() throws -> [TrackRecord] {
        let (evicted, usage) = try store.catalog.evict(maxTracks: limits.maxTracks, maxBytes: limits.maxBytes)
        if usage.tracks > limits.maxTracks || usage.bytes > limits.maxBytes {
            logger.warning("cache over its limits (\(usage.tracks) tracks, \(usage.bytes) bytes): the rest is queued")
        }
        if !evicted.isEmpty { store.counters.add("cache.evictions", Int64(evicted.count)) }
        for t in evicted {
            try? FileManager.default.removeItem(atPath: path(for: TrackID(hex: t.id)!))
            logger.info("evicted \(t.title) (\(t.id.prefix(12))) from the cache")
        }
        return evicted
    }

    /// Makes the catalog and the folder agree after a crash or a lost database: files the
    /// catalog does not know are probed and added; cached rows whose file is gone are marked so.
    /// A partial copy from another car (`.part`) is kept while its track is on the convoy's
    /// playlist (the copy resumes where it stopped), deleted otherwise.
    /// Returns (files added, rows marked missing).
    public func reconcile(rate: Int) throws -> (added: Int, missing: Int) {
        let files = (try? FileManager.default.contentsOfDirectory(atPath: dir.path)) ?? []
        let wanted = try store.convoyLog.playlistTracks()
        var onDisk = Set<String>()
        for f in files {
            if f.hasSuffix(".part") {
                if !wanted.contains(String(f.prefix(64))) { try? FileManager.default.removeItem(at: dir.appendingPathComponent(f)) }
                continue
            }
            if f.hasSuffix(".mp3"), let id = TrackID(hex: String(f.dropLast(4))) { onDisk.insert(id.hex) }
        }
        let known = try store.catalog.all()
        var missing = 0
        for t in known where t.cached && !onDisk.contains(t.id) {
            try store.catalog.markEvicted(t.id)
            missing += 1
        }
        let knownCached = Set(known.filter { $0.cached }.map(\.id))
        var added = 0
        for hex in onDisk.subtracting(knownCached).sorted() {
            let id = TrackID(hex: hex)!
            do {
                _ = try register(id, rate: rate)
                added += 1
            } catch {
                logger.warning("cache file \(hex.prefix(12)).mp3 dropped: \(error)")
                try? FileManager.default.removeItem(atPath: path(for: id))
            }
        }
        return (added, missing)
    }

    /// Adds a file that is already in the cache folder under its name (a track copied from
    /// another car, or found after a crash) to the catalog: checks that its content is its name,
    /// probes it. Blocking: call from a thread of its own.
    public func register(_ id: TrackID, rate: Int) throws -> TrackInfo {
        let p = path(for: id)
        let (realID, bytes) = try TrackProbe.sha256(path: p)
        guard realID == id else { throw ImportRejection(reason: "content does not match its name") }
        let info = try TrackProbe.probe(path: p, id: id, bytes: bytes, rate: rate)
        try store.catalog.insert(info)
        return info
    }
}
