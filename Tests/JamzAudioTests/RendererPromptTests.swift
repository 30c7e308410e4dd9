import Foundation
import JamzAudio
import JamzCore
import JamzTestSupport
import Logging
import Testing

/// Spoken prompts through the real renderer and `file:` output (issue 17): real MP3 music,
/// real espeak-ng pieces (scripts/make-prompts.sh, in the fixtures' prompts/ folder).
extension RendererTests {
    /// A piece as the renderer takes it: the file's mono 22050 Hz samples, each one frame of
    /// both channels, twice (44100 Hz; the daemon interpolates, this test needs exact samples).
    static func piece(_ name: String) throws -> [Int16] {
        let mono = try Reference.samples(ofFile: Fixtures.path("prompts/\(name).raw"))
        return mono.flatMap { [$0, $0, $0, $0] }
    }

    static func rms(_ s: some Collection<Double>) -> Double { sqrt(s.reduce(0) { $0 + $1 * $1 } / Double(max(1, s.count))) }

    /// Over music: the prompt is mixed in exactly, the music under it is ducked by 15 dB, and
    /// outside the prompt's window the music is bit-exact on its own timeline.
    @Test func aPromptIsMixedOverTheMusicWhichIsDuckedUnderIt() async throws {
        let (e, hex, path) = try Self.entry(1, "cbr.mp3")
        let prompt = try Self.piece("joined-the-convoy")
        let promptFrames = prompt.count / 2
        let rig = try await Rig(tracks: [hex: path])
        rig.renderer.setPromptVolume(1)
        rig.play([e])
        try await Task.sleep(for: .milliseconds(700))
        #expect(rig.renderer.say(key: "joined", samples: prompt))
        #expect(!rig.renderer.say(key: "joined", samples: prompt), "the same prompt twice is said once")
        var waited = 0
        while rig.renderer.isSpeaking && waited < 200 { try await Task.sleep(for: .milliseconds(20)); waited += 1 }
        try await Task.sleep(for: .milliseconds(300))
        let got = await rig.stop()
        let ref = try Reference.decode("cbr.mp3")
        let s = try #require(Reference.firstAudibleFrame(got))
        // (The last two blocks are left out: the stop's fade ends the music there.)
        let n = min(got.count / 2 - s, ref.count / 2) - 2 * 2048
        func g(_ f: Int, _ c: Int = 0) -> Double { Double(got[(s + f) * 2 + c]) }
        func r(_ f: Int, _ c: Int = 0) -> Double { Double(ref[f * 2 + c]) }
        // Where the output leaves the music: the ramp down, the prompt, the ramp up.
        let changed = (Self.settle..<n).filter { abs(g($0) - r($0)) > 1 || abs(g($0, 1) - r($0, 1)) > 1 }
        let d0 = try #require(changed.first), d1 = try #require(changed.last)
        let ramp = 44_100 / 20
        #expect(d1 - d0 + 1 >= promptFrames)
        #expect(d1 - d0 + 1 <= promptFrames + 2 * ramp + 4)
        #expect(n - d1 > 5_000, "music after the prompt was captured")
        // Unity outside the window: the music on its frames, bit-exact (its timeline did not move).
        #expect((Self.settle..<d0).allSatisfy { g($0) == r($0) && g($0, 1) == r($0, 1) })
        #expect(((d1 + 1)..<n).allSatisfy { g($0) == r($0) && g($0, 1) == r($0, 1) })
        // Under the prompt: output = music * duck + prompt, to rounding, at the prompt's place.
        let duck = pow(10, -15.0 / 20)
        let start = try #require((d0 + ramp - 3...d0 + ramp + 3).min { a, b in
            func err(_ p: Int) -> Double { (0..<2000).reduce(0) { $0 + abs(g(p + $1) - r(p + $1) * duck - Double(prompt[$1 * 2])) } }
            return err(a) < err(b)
        })
        var worst = 0.0
        for k in 0..<promptFrames { worst = max(worst, abs(g(start + k) - r(start + k) * duck - Double(prompt[k * 2]))) }
        #expect(worst <= 2, "output minus ducked music differs from the prompt by up to \(worst)")
        // Speech energy in the window, and the music's level under it vs before it.
        let window = start..<(start + promptFrames)
        let speech = Self.rms(window.map { g($0) - r($0) * duck })
        let music = Self.rms(window.map { g($0) - Double(prompt[($0 - start) * 2]) })
        let musicBefore = Self.rms(window.map { r($0) })
        let duckDB = 20 * log10(music / musicBefore)
        print("prompt over music: speech RMS \(Int(speech)) (\(20 * log10(speech / 32768)) dBFS), music ducked by \(duckDB) dB")
        #expect(speech > 1000)
        #expect(abs(duckDB + 15) < 0.2)
    }

    /// Paused with the device let go: a prompt takes the device, is written over silence, and the
    /// device is let go again after it.
    @Test func aPromptWithTheMusicPausedIsHeardAndTheDeviceLetGoAgain() async throws {
        let prompt = try Self.piece("you-are-the-dj")
        let clock = SystemClock()
        let sink = Fixtures.tempDir().appendingPathComponent("sink.raw").path
        let out = CountingOutput(FileOutput(path: sink, clock: clock))
        var settings = Renderer.Settings()
        settings.releaseAfter = 500_000_000
        let r = Renderer(settings: settings, output: out, logger: Logger(label: "test"), trackPath: { _ in "/nonexistent" })
        try await withCheckedThrowingContinuation { (c: CheckedContinuation<Void, any Error>) in
            r.start { err in if let err { c.resume(throwing: err) } else { c.resume() } }
        }
        r.setPromptVolume(1)
        var waited = 0
        while out.counts.withLock({ $0.release }) == 0 && waited < 200 { try await Task.sleep(for: .milliseconds(20)); waited += 1 }
        #expect(out.counts.withLock { $0.release } == 1, "idle from the start: the device was let go")
        #expect(r.say(key: "dj", samples: prompt))
        waited = 0
        while out.counts.withLock({ $0.release }) < 2 && waited < 400 { try await Task.sleep(for: .milliseconds(20)); waited += 1 }
        #expect(out.counts.withLock { $0.writesAfterRelease } > 0, "the prompt took the device")
        #expect(out.counts.withLock { $0.release } == 2, "the device was let go again after the prompt")
        #expect(r.isParked)
        await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in r.stop(fadeOut: 0) { c.resume() } }
        let got = try Reference.samples(ofFile: sink)
        let s = try #require(Reference.firstAudibleFrame(got))
        // The prompt over silence, sample for sample (a leading zero sample may sit before s).
        let first = prompt.firstIndex { $0 != 0 }! / 2
        let heard = Array(got[((s - first) * 2)...].prefix(prompt.count))
        #expect(firstDifference(heard, prompt) == nil)
        #expect(got[((s - first) * 2 + prompt.count)...].allSatisfy { $0 == 0 }, "silence after the prompt")
        print("prompt while paused: \(prompt.count / 2) frames written, RMS \(Int(Self.rms(prompt.map(Double.init))))")
    }
}
