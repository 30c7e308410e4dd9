import Foundation
import JamzAudio
import JamzCore
import JamzLibrary
@testable import JamzStore
import JamzTestSupport
import Logging
import Testing

struct TrackCacheTests {
    /// After a restart, a partial copy from another car is kept while its track is on the
    /// convoy's playlist (the copy resumes), and deleted once nothing wants it.
    @Test func reconcileKeepsPartialCopiesTheConvoyStillWants() throws {
        let dir = Fixtures.tempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        let store = try Store(path: dir.appendingPathComponent("jamz.db").path)
        let cache = try TrackCache(dir: dir.appendingPathComponent("cache"), store: store, limits: .init(), logger: Logger(label: "test"))
        let wanted = TrackID(hex: String(repeating: "a1", count: 32))!, stale = TrackID(hex: String(repeating: "b2", count: 32))!
        for id in [wanted, stale] { try Data(repeating: 7, count: 1000).write(to: URL(fileURLWithPath: cache.path(for: id) + ".part")) }
        let add = PlaylistOp(id: OpID(origin: MemberID(1), seq: 1), lamport: 1, term: Term(number: 1, dj: MemberID(1)),
                             edit: .add(track: wanted, frames: 100, after: nil))
        try store.pool.write { try ConvoyLog.append($0, [add]) }
        _ = try cache.reconcile(rate: 44_100)
        #expect(FileManager.default.fileExists(atPath: cache.path(for: wanted) + ".part"))
        #expect(!FileManager.default.fileExists(atPath: cache.path(for: stale) + ".part"))
        try store.pool.write { try ConvoyLog.clearOps($0) }
        _ = try cache.reconcile(rate: 44_100)
        #expect(!FileManager.default.fileExists(atPath: cache.path(for: wanted) + ".part"))
    }
}
