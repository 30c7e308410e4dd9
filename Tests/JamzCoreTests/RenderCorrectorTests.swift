import JamzCore
import Testing

@Suite struct RenderCorrectorTests {
    /// 10-frame dead band, jump beyond 1000 frames, 400 ppm: a 10 000-frame block earns exactly
    /// 4 frames of correction, a 1024-frame block 0.4096.
    let settings = RenderCorrector.Settings(deadbandFrames: 10, jumpFrames: 1000, maxPPM: 400)

    @Test func defaultsScaleWithTheRate() {
        #expect(RenderCorrector.Settings.defaults(rate: 44_100) == .init(deadbandFrames: 22, jumpFrames: 882, maxPPM: 400))
        #expect(RenderCorrector.Settings.defaults(rate: 48_000) == .init(deadbandFrames: 24, jumpFrames: 960, maxPPM: 400))
        #expect(RenderCorrector.Settings.defaults(rate: 22_050) == .init(deadbandFrames: 11, jumpFrames: 441, maxPPM: 400))
        #expect(RenderCorrector.Settings(deadbandFrames: 1, jumpFrames: 2).maxPPM == 400)
    }

    @Test func insideTheDeadBandNothingHappens() {
        var c = RenderCorrector(settings: settings)
        for e: Int64 in -10...10 {
            for _ in 0..<50 { #expect(c.decide(error: e, blockFrames: 10_000) == .none, "error \(e)") }
        }
        // Nothing was earned meanwhile: the first correction is one block's worth.
        #expect(c.decide(error: 11, blockFrames: 10_000) == .adjust(4))
    }

    @Test func beyondJumpFramesJumps() {
        var c = RenderCorrector(settings: settings)
        #expect(c.decide(error: 1001, blockFrames: 1024) == .jump)
        #expect(c.decide(error: -1001, blockFrames: 1024) == .jump)
        #expect(c.decide(error: 1_000_000_000, blockFrames: 1024) == .jump)
        #expect(c.decide(error: .max, blockFrames: 1024) == .jump)
        #expect(c.decide(error: .min, blockFrames: 1024) == .jump)
        // Exactly jumpFrames is still corrected softly.
        var d = RenderCorrector(settings: settings)
        #expect(d.decide(error: 1000, blockFrames: 10_000) == .adjust(4))
        var n = RenderCorrector(settings: settings)
        #expect(n.decide(error: -1000, blockFrames: 10_000) == .adjust(-4))
    }

    @Test func signOfTheAdjustment() {
        // Ahead (positive error): repeat frames. Behind (negative): drop frames.
        var ahead = RenderCorrector(settings: settings)
        #expect(ahead.decide(error: 50, blockFrames: 10_000) == .adjust(4))
        var behind = RenderCorrector(settings: settings)
        #expect(behind.decide(error: -50, blockFrames: 10_000) == .adjust(-4))
    }

    @Test func smallBlocksAccumulateTheirAllowance() {
        // 1024 frames at 400 ppm earn 0.4096 frames: the first whole frame comes with the third block.
        var c = RenderCorrector(settings: settings)
        #expect(c.decide(error: 50, blockFrames: 1024) == .none)
        #expect(c.decide(error: 50, blockFrames: 1024) == .none)
        #expect(c.decide(error: 50, blockFrames: 1024) == .adjust(1))
        #expect(c.decide(error: 49, blockFrames: 1024) == .none)   // 0.2288 left + 0.4096
        #expect(c.decide(error: 49, blockFrames: 1024) == .adjust(1))
        var d = RenderCorrector(settings: settings)
        #expect(d.decide(error: -50, blockFrames: 1024) == .none)
        #expect(d.decide(error: -50, blockFrames: 1024) == .none)
        #expect(d.decide(error: -50, blockFrames: 1024) == .adjust(-1))
    }

    @Test func neverMoreThanTheErrorNorPastZero() {
        var c = RenderCorrector(settings: settings)
        #expect(c.decide(error: 11, blockFrames: 1_000_000) == .adjust(11))   // 400 allowed, 11 needed
        var d = RenderCorrector(settings: settings)
        #expect(d.decide(error: -13, blockFrames: 100_000) == .adjust(-13))   // 40 allowed
    }

    @Test func aCorrectionRunsToZeroThenStops() {
        var c = RenderCorrector(settings: settings)
        #expect(c.decide(error: 20, blockFrames: 10_000) == .adjust(4))
        #expect(c.decide(error: 16, blockFrames: 10_000) == .adjust(4))
        #expect(c.decide(error: 12, blockFrames: 10_000) == .adjust(4))
        // Inside the dead band now, but a correction once started runs to zero.
        #expect(c.decide(error: 8, blockFrames: 10_000) == .adjust(4))
        #expect(c.decide(error: 4, blockFrames: 10_000) == .adjust(4))
        #expect(c.decide(error: 0, blockFrames: 10_000) == .none)
        // Stopped: small errors are left alone again.
        for e: Int64 in [1, 5, 10, -10, -3] {
            #expect(c.decide(error: e, blockFrames: 10_000) == .none, "error \(e)")
        }
    }

    @Test func aNegativeCorrectionAlsoRunsToZero() {
        var c = RenderCorrector(settings: settings)
        #expect(c.decide(error: -14, blockFrames: 10_000) == .adjust(-4))
        #expect(c.decide(error: -10, blockFrames: 10_000) == .adjust(-4))
        #expect(c.decide(error: -6, blockFrames: 10_000) == .adjust(-4))
        #expect(c.decide(error: -2, blockFrames: 10_000) == .adjust(-2))
        #expect(c.decide(error: 0, blockFrames: 10_000) == .none)
        #expect(c.decide(error: -9, blockFrames: 10_000) == .none)
    }

    @Test func anOvershootIsCorrectedTheOtherWay() {
        // The error crossed zero without hitting it: still correcting, now in the other direction.
        var c = RenderCorrector(settings: settings)
        #expect(c.decide(error: 20, blockFrames: 10_000) == .adjust(4))
        #expect(c.decide(error: -3, blockFrames: 10_000) == .adjust(-3))
    }

    @Test func resetForgetsACorrectionInProgress() {
        var c = RenderCorrector(settings: settings)
        #expect(c.decide(error: 20, blockFrames: 10_000) == .adjust(4))
        var kept = c
        #expect(kept.decide(error: 5, blockFrames: 10_000) == .adjust(4))  // without reset: still correcting
        c.reset()
        #expect(c.decide(error: 5, blockFrames: 10_000) == .none)

        // reset also drops earned allowance.
        var e = RenderCorrector(settings: settings)
        #expect(e.decide(error: 50, blockFrames: 1024) == .none)
        #expect(e.decide(error: 50, blockFrames: 1024) == .none)   // 0.8192 frames earned
        var notReset = e
        #expect(notReset.decide(error: 50, blockFrames: 1024) == .adjust(1))
        e.reset()
        #expect(e.decide(error: 50, blockFrames: 1024) == .none)
        #expect(e.decide(error: 50, blockFrames: 1024) == .none)
        #expect(e.decide(error: 50, blockFrames: 1024) == .adjust(1))
    }

    @Test func aJumpEndsTheCorrection() {
        var c = RenderCorrector(settings: settings)
        #expect(c.decide(error: 50, blockFrames: 1024) == .none)
        #expect(c.decide(error: 50, blockFrames: 1024) == .none)   // 0.8192 frames earned
        #expect(c.decide(error: 5000, blockFrames: 1024) == .jump)
        #expect(c.decide(error: 5, blockFrames: 1024) == .none)    // no longer correcting
        #expect(c.decide(error: 50, blockFrames: 1024) == .none)   // allowance started again from zero
        #expect(c.decide(error: 50, blockFrames: 1024) == .none)
        #expect(c.decide(error: 50, blockFrames: 1024) == .adjust(1))
    }

    /// Plays `blocks` blocks against a simulated error: each adjustment moves the error toward
    /// zero by its amount, `drift(i)` adds what the clocks disagree by in block i. Checks at every
    /// block that the adjustment has the error's sign, never exceeds it, and that the frames
    /// adjusted so far never exceed maxPPM of the frames played so far (+1).
    func simulate(_ c: inout RenderCorrector, error start: Int64, blocks: Int, blockFrames: (Int) -> Int,
                  drift: (Int) -> Int64 = { _ in 0 }) -> (error: Int64, adjusted: Int64, jumps: Int) {
        var error = start, adjusted: Int64 = 0, played: Int64 = 0, jumps = 0
        for i in 0..<blocks {
            let n = blockFrames(i)
            played += Int64(n)
            switch c.decide(error: error, blockFrames: n) {
            case .none: break
            case .jump: jumps += 1; error = 0
            case .adjust(let k):
                if k == 0 || (k > 0) != (error > 0) || Int64(k).magnitude > error.magnitude {
                    Issue.record("block \(i): adjust(\(k)) for error \(error)")
                }
                adjusted += Int64(k.magnitude)
                error -= Int64(k)
            }
            let bound = Int64(c.settings.maxPPM) * played / 1_000_000 + 1
            if adjusted > bound {
                Issue.record("block \(i): \(adjusted) frames adjusted in \(played) frames, bound \(bound)")
                break
            }
            error += drift(i)
        }
        return (error, adjusted, jumps)
    }

    @Test(arguments: [64, 256, 1024, 4096, 44_100])
    func aCorrectionConvergesWithinTheRateBound(blockFrames: Int) {
        for start: Int64 in [11, 37, 500, 1000, -11, -999] {
            var c = RenderCorrector(settings: settings)
            // Enough blocks to close the error at 400 ppm, with a margin.
            let needed = Int(start.magnitude) * 1_000_000 / (400 * blockFrames) + 10
            let r = simulate(&c, error: start, blocks: needed, blockFrames: { _ in blockFrames })
            #expect(r.error == 0, "start \(start)")
            #expect(r.adjusted == Int64(start.magnitude))
            #expect(r.jumps == 0)
            #expect(c.decide(error: 10, blockFrames: blockFrames) == .none)  // stopped at zero
        }
    }

    @Test func theRateBoundHoldsUnderDriftAndNoise() {
        let defaults = RenderCorrector.Settings.defaults(rate: 44_100)
        for seed: UInt64 in 1...20 {
            var rng = SplitMix64(seed: seed)
            let sizes = (0..<5_000).map { _ in [64, 441, 1024, 2048, 4096].randomElement(using: &rng)! }
            // A DAC up to 300 ppm off plus ±3 frames of measurement noise.
            let ppm = Int64.random(in: -300...300, using: &rng)
            let noise = (0..<5_000).map { _ in Int64.random(in: -3...3, using: &rng) }
            var owed: Int64 = 0
            var c = RenderCorrector(settings: defaults)
            let r = simulate(&c, error: Int64.random(in: -800...800, using: &rng), blocks: 5_000,
                             blockFrames: { sizes[$0] }, drift: { i in
                owed += ppm * Int64(sizes[i])
                let whole = owed / 1_000_000
                owed -= whole * 1_000_000
                return whole + noise[i] - (i > 0 ? noise[i - 1] : 0)
            })
            #expect(r.jumps == 0, "seed \(seed)")
            // 300 ppm of drift is within what 400 ppm can absorb: the error stays bounded.
            #expect(r.error.magnitude <= UInt64(defaults.jumpFrames), "seed \(seed): error \(r.error)")
        }
    }

    @Test func overAnyStretchOfBlocksTheRateStaysUnderMaxPPM() {
        // The allowance is meant to spread corrections out at ≤ maxPPM. Here the error hovers at
        // ±1 frame (measurement noise) while a correction is running: each block earns 4 frames
        // and spends 1, and the unspent allowance piles up; a later 500-frame error is then
        // "corrected" in a single 10 000-frame block, far above 400 ppm.
        do {
            var c = RenderCorrector(settings: settings)
            var spent: [Int] = []
            func step(_ e: Int64) {
                if case .adjust(let k) = c.decide(error: e, blockFrames: 10_000) { spent.append(Int(k.magnitude)) } else { spent.append(0) }
            }
            step(20)
            for i in 0..<100 { step(i % 2 == 0 ? 1 : -1) }
            step(500)
            // One 10 000-frame block at 400 ppm may carry 4 frames (+1 of rounding).
            #expect(spent.allSatisfy { $0 <= 5 }, "largest single-block adjustment: \(spent.max()!) frames")
        }
    }
}
