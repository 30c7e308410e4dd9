import Foundation
import JamzAudio
import Testing

/// The prompt mixer on its own: a known tone as the music, a known prompt over it.
@Suite struct PromptMixerTests {
    static let rate = 44_100

    /// A stereo sine at `amp`, `frames` long, starting at frame `from`.
    static func tone(_ frames: Int, from: Int = 0, amp: Double = 30_000, hz: Double = 441) -> [Int16] {
        var out: [Int16] = []
        for f in from..<(from + frames) {
            let s = Int16((amp * sin(2 * .pi * hz * Double(f) / Double(rate))).rounded())
            out.append(s); out.append(s)
        }
        return out
    }

    @Test func musicIsDuckedUnderThePromptWithMonotoneRampsAndNoClipping() throws {
        var m = PromptMixer(rate: Self.rate, channels: 2, duckDB: -15, rampMillis: 50, volume: 0.64)
        // A constant "prompt" at 20000, 0.5 s: its contribution is exactly 20000 * 0.64.
        let promptFrames = Self.rate / 2
        let first = m.enqueue(key: "p", samples: [Int16](repeating: 20_000, count: promptFrames * 2))
        let again = m.enqueue(key: "p", samples: [1, 1])
        #expect(first)
        #expect(!again, "the same prompt queued twice collapses")
        #expect(m.active)
        // Music: a full-scale DC block (so the gain is readable off each frame), 1.5 s in blocks.
        var out: [Int16] = []
        let music: Int16 = 32_000
        for _ in 0..<(3 * Self.rate / 2 / 1024) {
            var block = [Int16](repeating: music, count: 1024 * 2)
            m.mix(&block)
            out += block
        }
        #expect(!m.active)
        let ramp = m.rampFrames
        let duck = Double(m.duckGain)
        #expect(abs(20 * log10(duck) + 15) < 0.01)
        let prompt = 20_000.0 * 0.64
        let frames = stride(from: 0, to: out.count, by: 2).map { Double(out[$0]) }
        // Ramp down: monotone, from just under unity to the duck gain; then the prompt comes in.
        let p0 = try #require((1..<frames.count).first { frames[$0] > frames[$0 - 1] })
        #expect((ramp - 1...ramp + 1).contains(p0), "the prompt starts once the ramp is down (\(p0))")
        #expect(abs(frames[p0 - 1] - Double(music) * duck) <= Double(music) * (1 - duck) / Double(ramp) + 1)   // one step above
        // Under the prompt: music at exactly the duck gain plus the prompt.
        for f in p0..<(p0 + promptFrames) {
            #expect(abs(frames[f] - (Double(music) * duck + prompt)) <= 1)
        }
        // Ramp up after it: monotone back to unity; unity (bit-exact) after.
        let upStart = p0 + promptFrames
        #expect(frames[upStart] < Double(music) * duck + 1000)
        for f in (upStart + 1)..<(upStart + ramp + 1) { #expect(frames[f] >= frames[f - 1]) }
        for f in (upStart + ramp + 1)..<frames.count { #expect(frames[f] == Double(music)) }
        #expect(out.allSatisfy { $0 < Int16.max && $0 > Int16.min }, "nothing clips")
    }

    @Test func aToneUnderThePromptLosesFifteenDecibels() {
        var m = PromptMixer(rate: Self.rate, channels: 2, volume: 0)   // a silent prompt: only the duck is heard
        m.enqueue(key: "p", samples: [Int16](repeating: 0, count: Self.rate * 2))
        var block = Self.tone(Self.rate / 2)
        let before = block
        m.mix(&block)
        func rms(_ s: ArraySlice<Int16>) -> Double { sqrt(s.reduce(0) { $0 + Double($1) * Double($1) } / Double(s.count)) }
        let w = (Self.rate / 10 * 2)..<(Self.rate / 2 * 2)
        let db = 20 * log10(rms(block[w]) / rms(before[w]))
        #expect(abs(db + 15) < 0.05, "ducked by \(db) dB")
    }

    @Test func withoutAPromptTheBlockIsUntouched() {
        var m = PromptMixer(rate: Self.rate, channels: 2)
        var block = Self.tone(4096)
        let before = block
        m.mix(&block)
        #expect(block == before)
        #expect(!m.active)
    }

    @Test func aLoudPromptOverLoudMusicIsClampedNotWrapped() {
        var m = PromptMixer(rate: Self.rate, channels: 2, duckDB: 0, rampMillis: 1, volume: 1)
        m.enqueue(key: "p", samples: [Int16](repeating: 30_000, count: 2000))
        var block = [Int16](repeating: 30_000, count: 2048)
        m.mix(&block)
        #expect(block.allSatisfy { $0 > 0 })
        #expect(block.contains(Int16.max))
    }
}
