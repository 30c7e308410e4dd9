import Foundation
import JamzClient
import JamzTestSupport
import Testing

/// The spoken prompts in a real jamzd (issue 17), captured through its `file:` output.
@Suite struct PromptsProcessTests {
    /// Frames of the longest run of sound (no 0.2 s of zeros inside it) in a raw S16 stereo capture.
    static func longestSound(_ path: String) throws -> Int {
        let d = try Data(contentsOf: URL(fileURLWithPath: path))
        let s = d.withUnsafeBytes { Array($0.bindMemory(to: Int16.self)) }
        var best = 0, start: Int?, lastLoud = 0
        for f in 0..<(s.count / 2) where s[2 * f] != 0 || s[2 * f + 1] != 0 {
            if let st = start, f - lastLoud < 8820 { best = max(best, f - st) } else { start = f }
            lastLoud = f
        }
        return best
    }

    /// Alone, a car that creates a convoy becomes its DJ and says so, through the same output as
    /// the music (nothing plays: the capture is the prompt alone); joining says "joined the convoy".
    @Test func becomingTheDJAndJoiningAreSaid() throws {
        let sink = Fixtures.tempDir().appendingPathComponent("sink.raw").path
        let car = Car(output: "file:\(sink)", args: ["--convoy-port", "0", "--prompts-dir", Fixtures.path("prompts")])
        try car.start()
        #expect(car.logText.contains("spoken prompts from"))
        let code = try #require(car.client.call("group", "create", "solo").data?["code"]?.string)
        try waitUntil("\"you are the DJ\" is said", timeout: 10) { (try? car.client.status().counters["prompts.said"]) == 1 }
        try waitUntil("the prompt is written", timeout: 10) { ((try? Self.longestSound(sink)) ?? 0) > 30_000 }
        try car.client.call("group", "join", code)
        try waitUntil("\"joined the convoy\" is said", timeout: 10) { car.logText.contains("spoken prompt: joinedConvoy") }
        #expect(car.logText.contains("spoken prompt: youAreDJ"))
        #expect(car.terminate() == 0)
    }

    /// No prompts directory: one clear line, a counter, and the daemon plays on without them.
    @Test func aMissingDirectorySwitchesThemOff() throws {
        let car = Car(args: ["--convoy-port", "0", "--prompts-dir", "/nonexistent/prompts"])
        try car.start()
        #expect(car.logText.contains("spoken prompts: off, no prompts directory /nonexistent/prompts"))
        try car.client.call("group", "create", "solo")
        let s = try car.client.status()
        #expect(s.counters["prompts.missing_dir"] == 1)
        #expect(s.counters["prompts.said"] == nil)
        #expect(car.terminate() == 0)
    }
}
