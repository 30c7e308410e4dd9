import Crypto
import Foundation
import JamzAudio
import JamzCore

/// Why a file was not taken into the library: one line a person can act on.
public struct ImportRejection: Error, CustomStringConvertible, Sendable {
    public let reason: String
    public var description: String { reason }
}

/// Reads what the catalog needs from one MP3 file: the SHA-256 of its bytes (its track id), the
/// ID3v1/ID3v2 title, artist and album (libmpg123's id3 API), and the exact length in output
/// frames, found by decoding the whole file exactly as playback will (gapless, resampled), which
/// also proves the file plays to its end. Blocking: call from an import thread.
public enum TrackProbe {
    public static func sha256(path: String) throws -> (TrackID, Int64) {
        guard let fh = FileHandle(forReadingAtPath: path) else {
            throw ImportRejection(reason: "cannot be read")
        }
        defer { try? fh.close() }
        var hasher = SHA256()
        var total: Int64 = 0
        while let chunk = try fh.read(upToCount: 1 << 16), !chunk.isEmpty {
            hasher.update(data: chunk)
            total += Int64(chunk.count)
        }
        return (TrackID(digest: hasher.finalize())!, total)
    }

    public static func probe(path: String, id: TrackID, bytes: Int64, rate: Int) throws -> TrackInfo {
        if bytes == 0 { throw ImportRejection(reason: "empty file") }
        let h = try Mpg123Handle(outputRate: rate)
        do { try h.open(path: path) } catch { throw ImportRejection(reason: "cannot be opened by libmpg123: \(error)") }
        defer { h.close() }
        let declared = h.length
        var frames: Int64 = 0
        var scratch = [Int16](repeating: 0, count: 8192 * 2)
        var failure: Mpg123Error? = nil
        do {
            while true {
                let n = try scratch.withUnsafeMutableBufferPointer { try h.read(into: $0) }
                if n == 0 { break }
                frames += Int64(n)
            }
        } catch let e as Mpg123Error {
            failure = e
        }
        guard frames > 0, let info = h.streamInfo() else {
            throw ImportRejection(reason: "not an MP3: no MPEG audio frames found" + (failure.map { " (\($0.message))" } ?? ""))
        }
        let seconds = String(format: "%.1f", Double(frames) / Double(rate))
        if let failure {
            throw ImportRejection(reason: "corrupt: decoding stopped after \(seconds) s: \(failure.message)")
        }
        // A LAME/Info tag says how long the file should be (without one, libmpg123's length is
        // an estimate from the file size that ignores tags: no basis to call the file short).
        if h.hasInfoTag, let declared, declared > 0, frames * 100 < declared * 97 {
            let want = String(format: "%.1f", Double(declared) / Double(rate))
            throw ImportRejection(reason: "truncated: only \(seconds) s of the \(want) s its header announces")
        }
        let tags = h.tags()
        let fallbackTitle = URL(fileURLWithPath: path).deletingPathExtension().lastPathComponent
        return TrackInfo(id: id, title: tags.title.isEmpty ? fallbackTitle : tags.title, artist: tags.artist,
                         album: tags.album, frames: frames, sourceRate: info.rate, sourceChannels: info.channels,
                         bytes: bytes)
    }
}
