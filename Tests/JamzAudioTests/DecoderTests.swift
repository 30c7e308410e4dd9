import Foundation
import JamzTestSupport
import JamzAudio
import Testing

@Suite struct DecoderTests {
    /// Seeking lands on the exact output frame: what is read after a seek equals the same frames of
    /// a straight decode, for a file with a LAME tag (CBR), a VBR file, and one without a tag.
    @Test(arguments: ["cbr.mp3", "vbr.mp3", "noxing.mp3"])
    func seekIsFrameExact(name: String) throws {
        let full = try Reference.decode(name)
        let frames = full.count / 2
        for target in [0, 1, 1151, 1152, 44_100, frames / 2 + 7, frames - 300] {
            let h = try Mpg123Handle(outputRate: 44_100)
            try h.open(path: Fixtures.path(name))
            let landed = try h.seek(toFrame: Int64(target))
            #expect(landed == Int64(target), "\(name) seek to \(target)")
            var buf = [Int16](repeating: 0, count: 2 * 256)
            let n = try buf.withUnsafeMutableBufferPointer { try h.read(into: $0) }
            #expect(n > 0)
            let diff = firstDifference(Array(buf[0..<(n * 2)]), Array(full[(target * 2)..<((target + n) * 2)]))
            #expect(diff == nil, "\(name) frames after seek to \(target): first difference at sample \(diff ?? -1); it matches frame \(diff == nil ? target : bestOffset(buf[0...], in: full, around: target, range: 3000, length: 200))")
        }
    }

    @Test func opensAFileThatIsNotThereWithAClearError() throws {
        let h = try Mpg123Handle(outputRate: 44_100)
        #expect { try h.open(path: "/nonexistent/x.mp3") } throws: { "\($0)".contains("mpg123_open") }
    }
}
