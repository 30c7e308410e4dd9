import Foundation
import JamzTestSupport
import JamzAudio

/// Whole-file decodes through libmpg123, the reference the audio path is checked against.
enum Reference {
    static func decode(_ name: String, rate: Int = 44_100) throws -> [Int16] {
        let h = try Mpg123Handle(outputRate: rate)
        try h.open(path: Fixtures.path(name))
        var out: [Int16] = []
        var buf = [Int16](repeating: 0, count: 8192)
        while true {
            let n = try buf.withUnsafeMutableBufferPointer { try h.read(into: $0) }
            if n == 0 { break }
            out.append(contentsOf: buf[0..<(n * 2)])
        }
        return out
    }

    /// Raw S16 stereo file as samples.
    static func samples(ofFile path: String) throws -> [Int16] {
        let d = try Data(contentsOf: URL(fileURLWithPath: path))
        return d.withUnsafeBytes { Array($0.bindMemory(to: Int16.self)) }
    }

    /// Index of the first frame with a non-zero sample.
    static func firstAudibleFrame(_ s: [Int16]) -> Int? {
        s.firstIndex(where: { $0 != 0 }).map { $0 / 2 }
    }
}

/// Where two sample arrays first differ (nil: equal), without printing megabytes on failure.
func firstDifference(_ a: [Int16], _ b: [Int16]) -> Int? {
    if a == b { return nil }
    for i in 0..<min(a.count, b.count) where a[i] != b[i] { return i }
    return min(a.count, b.count)
}

/// The frame offset `o` (within ±`range`) at which `got[o...]` best matches `ref` (for diagnostics).
func bestOffset(_ got: ArraySlice<Int16>, in ref: [Int16], around: Int, range: Int, length: Int = 2048) -> Int {
    var best = (Int.max, 0)
    for o in max(0, around - range)...min(ref.count / 2 - length, around + range) {
        var err = 0
        for i in 0..<(length * 2) { err += abs(Int(got[got.startIndex + i]) - Int(ref[o * 2 + i])); if err > best.0 { break } }
        if err < best.0 { best = (err, o) }
    }
    return best.1
}
