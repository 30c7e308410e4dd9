import Foundation
import GRDB
import JamzCore
@testable import JamzStore

/// A TrackID from a 64-digit hex string made of one repeated digit, e.g. `tid("a")`.
func tid(_ digit: Character) -> TrackID {
    TrackID(hex: String(repeating: digit, count: 64))!
}

/// A TrackID whose first digits are `prefix`, padded with `fill` to 64 hex digits.
func tid(prefix: String, fill: Character = "0") -> TrackID {
    TrackID(hex: prefix + String(repeating: fill, count: 64 - prefix.count))!
}

func track(_ id: TrackID, _ title: String = "Title", artist: String = "Artist", album: String = "Album",
           frames: Int64 = 44_100 * 180, bytes: Int64 = 3_000_000) -> TrackInfo {
    TrackInfo(id: id, title: title, artist: artist, album: album, frames: frames,
              sourceRate: 44_100, sourceChannels: 2, bytes: bytes)
}

/// A fresh directory under the system temporary directory, removed when the value goes away.
final class TempDir: Sendable {
    let path: String
    init() throws {
        path = (NSTemporaryDirectory() as NSString).appendingPathComponent("jamz-store-tests-\(UUID().uuidString)")
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }
    func file(_ name: String) -> String { (path as NSString).appendingPathComponent(name) }
    func contents() -> Set<String> { Set((try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []) }
    deinit { try? FileManager.default.removeItem(atPath: path) }
}

/// Deterministic bytes that are certainly not an SQLite database.
func garbage(count: Int, seed: UInt64) -> Data {
    var state = seed
    var bytes = [UInt8]()
    bytes.reserveCapacity(count)
    for _ in 0..<count {
        state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
        bytes.append(UInt8(truncatingIfNeeded: state >> 56))
    }
    return Data(bytes)
}

/// `Catalog.Usage` has no public initializer: compare through this.
struct UsageSnapshot: Equatable, CustomStringConvertible {
    var tracks: Int
    var bytes: Int64
    init(tracks: Int, bytes: Int64) { self.tracks = tracks; self.bytes = bytes }
    init(_ u: Catalog.Usage) { tracks = u.tracks; bytes = u.bytes }
    var description: String { "\(tracks) tracks, \(bytes) bytes" }
}

func usage(_ store: Store) throws -> UsageSnapshot {
    UsageSnapshot(try store.pool.read { try Catalog.usage($0) })
}
