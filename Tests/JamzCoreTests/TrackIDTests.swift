import Foundation
import JamzCore
import Testing

@Suite struct TrackIDTests {
    static let sample = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

    @Test func acceptsSixtyFourLowerCaseHexDigits() throws {
        let id = try #require(TrackID(hex: Self.sample))
        #expect(id.hex == Self.sample)
        #expect(id.description == Self.sample)
        #expect("\(id)" == Self.sample)
        for d in "0123456789abcdef" { #expect(TrackID(hex: String(repeating: d, count: 64)) != nil, "\(d)") }
    }

    @Test func foldsUpperCase() throws {
        let upper = try #require(TrackID(hex: Self.sample.uppercased()))
        #expect(upper.hex == Self.sample)
        #expect(upper == TrackID(hex: Self.sample))
        #expect(upper.hashValue == TrackID(hex: Self.sample)!.hashValue)
        let mixed = try #require(TrackID(hex: "ABCdef" + String(Self.sample.dropFirst(6))))
        #expect(mixed.hex == "abcdef" + Self.sample.dropFirst(6))
        #expect(Set([upper, mixed, TrackID(hex: Self.sample)!]).count == 2)
    }

    @Test(arguments: [
        "",
        String(repeating: "a", count: 63),
        String(repeating: "a", count: 65),
        String(repeating: "a", count: 128),
        String(repeating: "a", count: 63) + "g",
        String(repeating: "a", count: 63) + "G",
        String(repeating: "a", count: 63) + " ",
        " " + String(repeating: "a", count: 63),
        String(repeating: "a", count: 63) + "\n",
        "0x" + String(repeating: "a", count: 62),
        String(repeating: "a", count: 62) + "-1",
        String(repeating: "a", count: 62) + "é",      // 63 characters, 64 bytes
        String(repeating: "a", count: 63) + "٣",      // Arabic-Indic digit three
        String(repeating: "a", count: 63) + "ａ",     // full-width a
        String(repeating: "ä", count: 32),           // 32 characters, 64 bytes
    ])
    func rejects(_ s: String) {
        #expect(TrackID(hex: s) == nil)
    }

    @Test func short() {
        #expect(TrackID(hex: Self.sample)!.short == "0123456789ab")
        #expect(TrackID(hex: Self.sample.uppercased())!.short == "0123456789ab")
        #expect(tid("f").short == "ffffffffffff")
        #expect(tid("f").short.count == 12)
    }

    @Test func ordersByHex() {
        #expect(tid("0") < tid("1"))
        #expect(tid("9") < tid("a"))
        #expect(!(tid("a") < tid("a")))
        #expect([tid("c"), tid("a"), tid("b")].sorted() == [tid("a"), tid("b"), tid("c")])
    }

    @Test func digestBytesAndHexAreTheSameID() throws {
        let bytes = (0..<32).map { UInt8(($0 * 37 + 11) & 0xFF) }
        let id = try #require(TrackID(digest: bytes))
        #expect(id.bytes == bytes)
        #expect(id.hex == bytes.map { String(format: "%02x", $0) }.joined())
        #expect(TrackID(hex: id.hex) == id)
        #expect(TrackID(digest: bytes.dropLast()) == nil)
        #expect(TrackID(digest: bytes + [0]) == nil)
        #expect(TrackID(digest: []) == nil)
    }

    @Test func ordersAsItsHexAcrossTheWholeDigest() {
        var g = SystemRandomNumberGenerator()
        // Pairs differing in one byte anywhere, so every word of the digest decides some.
        for _ in 0..<500 {
            var a = (0..<32).map { _ in UInt8.random(in: 0...255, using: &g) }
            var b = a
            b[Int.random(in: 0..<32, using: &g)] = UInt8.random(in: 0...255, using: &g)
            if Bool.random(using: &g) { swap(&a, &b) }
            let (x, y) = (TrackID(digest: a)!, TrackID(digest: b)!)
            #expect((x < y) == (x.hex < y.hex))
            #expect((x == y) == (x.hex == y.hex))
        }
    }

    @Test func codableRoundTripAsAPlainString() throws {
        let id = TrackID(hex: Self.sample)!
        let data = try JSONEncoder().encode([id])
        #expect(String(decoding: data, as: UTF8.self) == "[\"\(Self.sample)\"]")
        #expect(try JSONDecoder().decode([TrackID].self, from: data) == [id])

        // Inside a larger value too.
        let entry = QueueEntry(id: 3, trackID: id, frames: 99)
        let back = try JSONDecoder().decode(QueueEntry.self, from: JSONEncoder().encode(entry))
        #expect(back == entry)
        let obj = try JSONSerialization.jsonObject(with: JSONEncoder().encode(entry)) as? [String: Any]
        #expect(obj?["trackID"] as? String == Self.sample)
    }

    @Test func decodingFoldsCase() throws {
        let data = Data("[\"\(Self.sample.uppercased())\"]".utf8)
        #expect(try JSONDecoder().decode([TrackID].self, from: data) == [TrackID(hex: Self.sample)!])
    }

    @Test(arguments: [
        "[\"\"]",
        "[\"abc\"]",
        "[\"\(String(repeating: "z", count: 64))\"]",
        "[\"\(String(repeating: "a", count: 65))\"]",
        "[42]",
        "[null]",
        "[{\"hex\": \"\(String(repeating: "a", count: 64))\"}]",
    ])
    func decodingRejectsBadStrings(_ json: String) {
        #expect(throws: DecodingError.self) {
            try JSONDecoder().decode([TrackID].self, from: Data(json.utf8))
        }
    }

    @Test func decodingErrorNamesTheBadValue() {
        do {
            _ = try JSONDecoder().decode([TrackID].self, from: Data("[\"nothex\"]".utf8))
            Issue.record("decoded a bad id")
        } catch let DecodingError.dataCorrupted(ctx) {
            #expect(ctx.debugDescription.contains("nothex"))
        } catch {
            Issue.record("unexpected error \(error)")
        }
    }

    @Test func trackInfoRoundTrip() throws {
        let info = TrackInfo(id: tid("7"), title: "Song", artist: "Band", album: "LP", frames: 1_234_567,
                             sourceRate: 48_000, sourceChannels: 1, bytes: 4_000_000)
        #expect(try JSONDecoder().decode(TrackInfo.self, from: JSONEncoder().encode(info)) == info)
    }

    @Test func audioFormat() {
        #expect(AudioFormat().sampleRate == 44_100)
        #expect(AudioFormat().channels == 2)
        #expect(AudioFormat().bytesPerFrame == 4)
        #expect(AudioFormat(sampleRate: 48_000, channels: 1).bytesPerFrame == 2)
        #expect(AudioFormat(sampleRate: 48_000, channels: 6).bytesPerFrame == 12)
    }
}
