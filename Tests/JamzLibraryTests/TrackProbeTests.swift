import Foundation
import JamzTestSupport
import JamzAudio
import JamzCore
import JamzLibrary
import Testing

@Suite struct TrackProbeTests {
    func probe(_ name: String) throws -> TrackInfo {
        let p = Fixtures.path(name)
        let (id, bytes) = try TrackProbe.sha256(path: p)
        return try TrackProbe.probe(path: p, id: id, bytes: bytes, rate: 44_100)
    }

    @Test(arguments: ["cbr.mp3", "vbr.mp3", "noxing.mp3", "id3v1.mp3", "id3v24.mp3", "long65.mp3", "nested/deeper/nested.mp3"])
    func exactLengthAt44k(name: String) throws {
        let info = try probe(name)
        #expect(info.frames == Fixtures.manifest[name]!.samples, "\(name)")
        #expect(info.sourceRate == 44_100)
    }

    @Test func monoFileIsResampledTo44kStereo() throws {
        let info = try probe("mono22k.mp3")
        #expect(info.sourceRate == 22_050)
        #expect(info.sourceChannels == 1)
        // 66150 frames at 22.05 kHz are 3 s: about 132300 frames at 44.1 kHz.
        #expect(abs(info.frames - 132_300) <= 64)
    }

    @Test func tags() throws {
        let cbr = try probe("cbr.mp3")
        #expect(cbr.title == "CBR Tone" && cbr.artist == "Fixture Artist" && cbr.album == "Fixtures")
        let v1 = try probe("id3v1.mp3")
        #expect(v1.title == "Only V1" && v1.artist == "Old Tagger" && v1.album == "Legacy")
        let v24 = try probe("id3v24.mp3")
        #expect(v24.title == "Café Ünïcode")
        #expect(v24.artist == "Zoë" && v24.album == "Ñandú")
    }

    @Test(arguments: [("truncated.mp3", "truncated"), ("corrupt.mp3", "corrupt"), ("notmp3.mp3", "not an MP3"),
                      ("text.mp3", "not an MP3"), ("empty.mp3", "empty")])
    func badFilesAreRejectedWithAReason(name: String, why: String) throws {
        #expect {
            _ = try probe(name)
        } throws: { error in
            "\(error)".contains(why)
        }
    }
}
