import Foundation
import JamzTestSupport
import JamzCore
@testable import JamzDaemon
import Testing

/// The board file's [prompts] section, and the prompts' pieces (issue 17).
@Suite struct PromptsConfigTests {
    @Test func promptsSectionParses() {
        let (b, problems) = BoardConfig.parse(toml: """
            [prompts]
            enabled = false
            volume = 55
            dir = "/opt/prompts"
            """)
        #expect(problems.isEmpty)
        #expect(b.prompts == BoardConfig.PromptSettings(enabled: false, volume: 55, dir: "/opt/prompts"))
    }

    @Test func defaultsWithoutTheSection() {
        let (b, _) = BoardConfig.parse(toml: "[controls]\ngrab = true\n")
        #expect(b.prompts.enabled == nil)
        #expect(b.prompts.volume == 80)
        #expect(b.prompts.dir == "/usr/share/jamz/prompts")
    }

    @Test func badValuesAreReportedAndGetTheDefault() {
        let (b, problems) = BoardConfig.parse(toml: """
            [prompts]
            enabled = "yes"
            volume = 150
            dir = "relative/dir"
            speed = 2
            """, file: "car.toml")
        #expect(b.prompts == BoardConfig.PromptSettings())
        #expect(problems.count == 4)
        #expect(problems.contains { $0.hasPrefix("car.toml: prompts.enabled:") })
        #expect(problems.contains { $0.contains("prompts.volume: expected an integer in 0...100") })
        #expect(problems.contains { $0.contains("prompts.dir: expected an absolute path") })
        #expect(problems.contains { $0.contains("prompts.speed: unknown setting") })
    }

    @Test func everyPromptNamesPiecesTheDirectoryHolds() {
        let all = Set(Prompt.allPieces)
        #expect(all.count == 16 + 20 + 32)
        let prompts: [Prompt] = [.youAreDJ, .joinedConvoy, .leftConvoy, .carLeft(3), .carLeft(20), .noGPS, .gpsBack, .offline,
                                 .online, .joinWaiting, .joinFailed, .joinOverlap, .pairedConfirmed] + CheckWords.all.map { .paired(checkWord: $0) }
            + CheckWords.all.map { .compare(checkWord: $0, confirm: true) } + CheckWords.all.map { .compare(checkWord: $0, confirm: false) }
        for p in prompts { #expect(p.pieces.map { Set($0).isSubset(of: all) } == true, "\(p)") }
        #expect(Prompt.carLeft(3).pieces == ["car", "number-3", "left"])
        #expect(Prompt.carLeft(21).pieces == nil)
        #expect(Prompt.paired(checkWord: "not-a-word").pieces == nil)
        #expect(Prompt.paired(checkWord: "walnut tiger").pieces == ["paired", "check-word", "word-walnut", "word-tiger"])
        #expect(Prompt.paired(checkWord: "walnut not-a-word").pieces == nil)
        #expect(Prompt.compare(checkWord: "walnut tiger", confirm: true).pieces == ["check-word", "word-walnut", "word-tiger", "press-join-if-same"])
        #expect(Prompt.compare(checkWord: "walnut tiger", confirm: false).pieces?.last == "other-car-confirms")
        #expect(Prompt.compare(checkWord: "walnut nope", confirm: true).pieces == nil)
    }
}

/// Loading a prompt's pieces (the real espeak-ng files in the fixtures' prompts/ folder).
@Suite struct PromptsLoadTests {
    static let dir = Fixtures.path("prompts")

    static func fileFrames(_ name: String) throws -> Int {
        try FileManager.default.attributesOfItem(atPath: "\(dir)/\(name).raw")[.size] as! Int / 2
    }

    @Test(arguments: [44_100, 48_000]) func piecesAreJoinedAndConvertedToTheOutputFormat(rate: Int) throws {
        let pieces = try #require(Prompt.paired(checkWord: "walnut tiger").pieces)
        let (got, skipped) = try Prompts.load(pieces: pieces, dir: Self.dir, format: AudioFormat(sampleRate: rate, channels: 2))
        #expect(skipped.isEmpty)
        let mono = try pieces.reduce(0) { $0 + (try Self.fileFrames($1)) } + (pieces.count - 1) * (Prompts.fileRate / 20)   // 50 ms gaps
        #expect(got.count == mono * rate / Prompts.fileRate * 2)
        #expect(stride(from: 0, to: got.count, by: 2).allSatisfy { got[$0] == got[$0 + 1] }, "the same voice on both channels")
        let peak = got.map { abs(Int($0)) }.max() ?? 0
        #expect(peak > 16_000 && peak < 32_767, "speech near -3 dBFS (peak \(peak))")
    }

    /// A prompts directory made before the compare prompt's instructions existed: the check
    /// words are said without them; a missing word is still an error.
    @Test func anOlderDirectoryWithoutTheNewInstructionsSaysTheWords() throws {
        let tmp = Fixtures.tempDir().path
        let pieces = try #require(Prompt.compare(checkWord: "walnut tiger", confirm: true).pieces)
        for name in pieces.dropLast() {
            try FileManager.default.copyItem(atPath: "\(Self.dir)/\(name).raw", toPath: "\(tmp)/\(name).raw")
        }
        let (got, skipped) = try Prompts.load(pieces: pieces, dir: tmp, format: AudioFormat(sampleRate: Prompts.fileRate, channels: 1))
        #expect(skipped == ["press-join-if-same"])
        let frames = try pieces.dropLast().reduce(0) { $0 + (try Self.fileFrames($1)) } + (pieces.count - 2) * (Prompts.fileRate / 20)
        #expect(got.count == frames)
        try FileManager.default.removeItem(atPath: "\(tmp)/word-tiger.raw")
        #expect(throws: Prompts.PieceError.self) { try Prompts.load(pieces: pieces, dir: tmp, format: AudioFormat()) }
    }

    @Test func aMissingOrCorruptPieceIsAClearError() throws {
        let tmp = Fixtures.tempDir().path
        #expect(throws: Prompts.PieceError.self) { try Prompts.load(pieces: ["car"], dir: tmp, format: AudioFormat()) }
        FileManager.default.createFile(atPath: "\(tmp)/car.raw", contents: Data([1, 2, 3]))
        do {
            _ = try Prompts.load(pieces: ["car"], dir: tmp, format: AudioFormat())
            Issue.record("a 3-byte piece was taken")
        } catch {
            #expect("\(error)".contains("is not a prompt piece"))
        }
    }
}
