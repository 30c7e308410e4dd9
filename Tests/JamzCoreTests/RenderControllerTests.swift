import JamzCore
import Testing

@Suite struct RenderControllerTests {
    let rate = 44_100

    /// A DAC running `dacPPM` fast against the timeline, 1024-frame blocks: the controller must
    /// learn the drift, hold the error near zero, and never correct faster than its limit.
    func drive(dacPPM: Double, initialError: Double, blocks: Int) -> (c: RenderController, errors: [Double], adjusted: Int) {
        var c = RenderController(settings: .init(rate: rate))
        var error = initialError
        var errors: [Double] = []
        var adjusted = 0
        for _ in 0..<blocks {
            errors.append(error)
            switch c.decide(error: error, blockFrames: 1024) {
            case .none: break
            case .adjust(let n): error -= Double(n); adjusted += abs(n)   // repeating frames holds the music back
            case .jump(let n): error += Double(n)
            }
            error += dacPPM * 1e-6 * 1024  // the DAC consumed a little more than the timeline advanced
        }
        return (c, errors, adjusted)
    }

    @Test(arguments: [100.0, -100.0, 37.0, 0.0])
    func absorbsTheDacDrift(ppm: Double) {
        let r = drive(dacPPM: ppm, initialError: 0, blocks: 43 * 120)  // two minutes
        let tail = r.errors.suffix(43 * 30)
        #expect(tail.allSatisfy { abs($0) < 2 }, "max \(tail.map(abs).max()!)")
        #expect(abs(r.c.driftPPM - ppm) < 5, "learned \(r.c.driftPPM)")
    }

    @Test func smallErrorsAreRemovedSoftlyWithinTheRateLimit() {
        let r = drive(dacPPM: 0, initialError: 400, blocks: 43 * 60)  // 9 ms: below the jump
        #expect(r.errors.suffix(43 * 10).allSatisfy { abs($0) < 2 })
        // Never more than 500 ppm: at most 0.512 frames a block on average, checked per second.
        for s in stride(from: 0, to: r.errors.count - 43, by: 43) {
            let removed = r.errors[s] - r.errors[s + 43]
            #expect(removed <= 1024 * 43 * 500e-6 + 1, "second \(s / 43): \(removed) frames")
        }
    }

    @Test func largeErrorsJumpToTheWantedFrame() {
        var c = RenderController(settings: .init(rate: rate))
        #expect(c.decide(error: 1000.4, blockFrames: 1024) == .jump(-1000))
        #expect(c.decide(error: -5000, blockFrames: 1024) == .jump(5000))
        #expect(c.decide(error: 100, blockFrames: 1024) != .jump(-100))
    }

    /// Measurement noise inside the dead band must not make the music wobble: over a minute of
    /// zero-mean noise of ±0.25 frames, hardly a frame is touched.
    @Test func noiseInsideTheDeadBandTouchesAlmostNoFrames() {
        var c = RenderController(settings: .init(rate: rate))
        #expect(c.decide(error: 0.2, blockFrames: 1024) == .none)
        var rng = SplitMix64(seed: 5)
        var touched = 0
        for _ in 0..<(43 * 60) {
            if case .adjust(let n) = c.decide(error: (rng.unit() - 0.5) * 0.5, blockFrames: 1024) { touched += abs(n) }
        }
        #expect(touched <= 3, "\(touched) frames")
    }
}
