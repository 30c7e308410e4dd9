import Foundation
import JamzCore
import JamzStore
import Logging

/// Walks a folder tree for MP3 files and takes each new one into the cache and catalog. A file
/// that is not a playable MP3 is skipped with one line saying why, and the import goes on.
/// Blocking (hashing, decoding, copying): run it on its own thread.
public struct Importer: Sendable {
    public enum Result: Sendable, Equatable {
        case added(TrackInfo)
        case duplicate(TrackID)
        case skipped(String)
    }

    public struct Progress: Sendable {
        public var done: Int
        public var total: Int
        public var file: String
        public var result: Result
    }

    public struct Summary: Sendable, Equatable, Codable {
        public var found = 0
        public var added = 0
        public var duplicates = 0
        public var skipped = 0
        public var evicted = 0
    }

    public let cache: TrackCache
    public let rate: Int
    public let logger: Logger

    public init(cache: TrackCache, rate: Int, logger: Logger) {
        self.cache = cache; self.rate = rate; self.logger = logger
    }

    /// The `.mp3` files under `root` (any case), sorted, following no symlinked folders.
    public static func mp3Files(under root: String) throws -> [String] {
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: root, isDirectory: &isDir) else {
            throw ImportRejection(reason: "\(root): no such file or folder")
        }
        if !isDir.boolValue { return [root] }
        guard let e = FileManager.default.enumerator(atPath: root) else { return [] }
        var out: [String] = []
        while let rel = e.nextObject() as? String {
            if rel.lowercased().hasSuffix(".mp3") {
                let full = (root as NSString).appendingPathComponent(rel)
                var d: ObjCBool = false
                if FileManager.default.fileExists(atPath: full, isDirectory: &d), !d.boolValue { out.append(full) }
            }
        }
        return out.sorted()
    }

    public func importFile(_ path: String) -> Result {
        do {
            let (id, bytes) = try TrackProbe.sha256(path: path)
            if let known = try cache.store.catalog.track(id: id), known.cached {
                return .duplicate(id)
            }
            let info = try TrackProbe.probe(path: path, id: id, bytes: bytes, rate: rate)
            try cache.store(file: path, as: id)
            try cache.store.catalog.insert(info)
            return .added(info)
        } catch {
            cache.store.counters.add("import.skipped")
            return .skipped("\(error)")
        }
    }

    /// Imports the tree file by file; `stop` is asked between files (a shutdown ends an import
    /// after the file in hand, and what was imported stays).
    public func importTree(_ root: String, stop: () -> Bool = { false }, progress: (Progress) -> Void) throws -> Summary {
        let files = try Importer.mp3Files(under: root)
        var s = Summary()
        s.found = files.count
        for (i, f) in files.enumerated() {
            if stop() { logger.notice("import of \(root) stopped after \(i) of \(files.count) files"); break }
            let r = importFile(f)
            switch r {
            case .added(let info):
                s.added += 1
                logger.info("imported \(f) as \(info.id.short) \"\(info.title)\"")
                s.evicted += (try? cache.enforceLimits().count) ?? 0
            case .duplicate: s.duplicates += 1
            case .skipped(let why):
                s.skipped += 1
                logger.warning("skipped \(f): \(why)")
            }
            progress(Progress(done: i + 1, total: files.count, file: f, result: r))
        }
        return s
    }
}
