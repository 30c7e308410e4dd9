import JamzCore
import Testing

@Suite struct FrameMathTests {
    static let rates = [44_100, 48_000, 22_050]

    // MARK: frames(in:rate:)

    @Test(arguments: rates)
    func wholeSecondsAreExact(rate: Int) {
        for s: Int64 in [0, 1, 2, 59, 3600] {
            #expect(FrameMath.frames(in: seconds(s), rate: rate) == s * Int64(rate))
            #expect(FrameMath.duration(ofFrames: s * Int64(rate), rate: rate) == seconds(s))
        }
    }

    @Test func framesAreRoundedDown() {
        // One frame at 44.1 kHz lasts 22675.73… ns.
        #expect(FrameMath.frames(in: 0, rate: 44_100) == 0)
        #expect(FrameMath.frames(in: 1, rate: 44_100) == 0)
        #expect(FrameMath.frames(in: 22_675, rate: 44_100) == 0)
        #expect(FrameMath.frames(in: 22_676, rate: 44_100) == 1)
        #expect(FrameMath.frames(in: seconds(1) - 1, rate: 44_100) == 44_099)
        // 48 kHz: a frame is 20833.33… ns.
        #expect(FrameMath.frames(in: 20_833, rate: 48_000) == 0)
        #expect(FrameMath.frames(in: 20_834, rate: 48_000) == 1)
        #expect(FrameMath.frames(in: 41_667, rate: 48_000) == 2)
        #expect(FrameMath.frames(in: 41_666, rate: 48_000) == 1)
    }

    @Test func negativeDurationsRoundTowardMinusInfinity() {
        #expect(FrameMath.frames(in: -1, rate: 44_100) == -1)
        #expect(FrameMath.frames(in: -22_675, rate: 44_100) == -1)
        #expect(FrameMath.frames(in: -22_676, rate: 44_100) == -2)
        #expect(FrameMath.frames(in: -seconds(1), rate: 44_100) == -44_100)
        #expect(FrameMath.frames(in: -seconds(1) - 1, rate: 44_100) == -44_101)
        #expect(FrameMath.frames(in: -seconds(1) + 1, rate: 44_100) == -44_100)
        #expect(FrameMath.frames(in: -20_833, rate: 48_000) == -1)
        #expect(FrameMath.frames(in: -20_834, rate: 48_000) == -2)
        // Rounding down means frames(-d) == -frames(d) - 1 whenever d is not a whole number of frames.
        #expect(FrameMath.frames(in: -ms(7) - 3, rate: 22_050) == -FrameMath.frames(in: ms(7) + 3, rate: 22_050) - 1)
    }

    @Test(arguments: rates)
    func framesMatchFloorDefinition(rate: Int) {
        // f·1e9 ≤ d·rate < (f+1)·1e9, for durations small enough to check in Int64.
        var rng = SplitMix64(seed: UInt64(rate))
        let r = Int64(rate)
        for _ in 0..<5_000 {
            let d = Int64.random(in: -seconds(100_000)...seconds(100_000), using: &rng)
            let f = FrameMath.frames(in: d, rate: rate)
            #expect(f * nanosPerSecond <= d * r, "d=\(d)")
            #expect(d * r < (f + 1) * nanosPerSecond, "d=\(d)")
        }
    }

    // MARK: duration(ofFrames:rate:)

    @Test func durationIsRoundedToNearestNanosecond() {
        #expect(FrameMath.duration(ofFrames: 0, rate: 44_100) == 0)
        #expect(FrameMath.duration(ofFrames: 1, rate: 44_100) == 22_676)   // 22675.736…
        #expect(FrameMath.duration(ofFrames: 2, rate: 44_100) == 45_351)   // 45351.473…
        #expect(FrameMath.duration(ofFrames: 1, rate: 48_000) == 20_833)   // 20833.333…
        #expect(FrameMath.duration(ofFrames: 2, rate: 48_000) == 41_667)   // 41666.666…
        #expect(FrameMath.duration(ofFrames: 1, rate: 22_050) == 45_351)   // 45351.473…
        #expect(FrameMath.duration(ofFrames: 1024, rate: 44_100) == 23_219_955) // 23219954.648…
        // Exactly half a nanosecond rounds away from zero: 1e9 / 1024 = 976562.5.
        #expect(FrameMath.duration(ofFrames: 1, rate: 1024) == 976_563)
        #expect(FrameMath.duration(ofFrames: -1, rate: 1024) == -976_563)
    }

    @Test func negativeFrameCountsRoundToNearest() {
        #expect(FrameMath.duration(ofFrames: -1, rate: 44_100) == -22_676)
        #expect(FrameMath.duration(ofFrames: -2, rate: 44_100) == -45_351)
        #expect(FrameMath.duration(ofFrames: -1, rate: 48_000) == -20_833)
        #expect(FrameMath.duration(ofFrames: -2, rate: 48_000) == -41_667)
        #expect(FrameMath.duration(ofFrames: -44_100, rate: 44_100) == -seconds(1))
    }

    @Test(arguments: rates)
    func durationMatchesNearestDefinition(rate: Int) {
        // |d·rate − n·1e9| ≤ rate/2, for counts small enough to check in Int64.
        var rng = SplitMix64(seed: 0xD0 &+ UInt64(rate))
        let r = Int64(rate)
        for _ in 0..<5_000 {
            let n = Int64.random(in: -1_000_000_000...1_000_000_000, using: &rng)
            let d = FrameMath.duration(ofFrames: n, rate: rate)
            let err = d * r - n * nanosPerSecond
            #expect(2 * err.magnitude <= UInt64(r), "n=\(n) d=\(d)")
        }
    }

    // MARK: round trips

    @Test(arguments: rates)
    func framesToDurationAndBack(rate: Int) {
        // duration() rounds to nearest and frames() rounds down, so going back gives n when the
        // duration was rounded up (or exact), n − 1 when rounded down; one more nanosecond is
        // always enough to reach frame n, and never enough to reach n + 1.
        var rng = SplitMix64(seed: 0xF00 &+ UInt64(rate))
        var samples: [Int64] = Array(-2_000...2_000)
        for _ in 0..<2_000 { samples.append(Int64.random(in: -9_000_000_000...9_000_000_000, using: &rng)) }
        for n in samples {
            let d = FrameMath.duration(ofFrames: n, rate: rate)
            let back = FrameMath.frames(in: d, rate: rate)
            let roundedUpOrExact = d * Int64(rate) >= n * nanosPerSecond
            #expect(back == (roundedUpOrExact ? n : n - 1), "n=\(n)")
            #expect(FrameMath.frames(in: d + 1, rate: rate) == n, "n=\(n)")
        }
    }

    @Test(arguments: rates)
    func durationToFramesAndBackIsWithinOneFrame(rate: Int) {
        var rng = SplitMix64(seed: 0xBAC &+ UInt64(rate))
        let period = nanosPerSecond / Int64(rate) + 1
        for _ in 0..<5_000 {
            let d = Int64.random(in: -seconds(86_400 * 30)...seconds(86_400 * 30), using: &rng)
            let back = FrameMath.duration(ofFrames: FrameMath.frames(in: d, rate: rate), rate: rate)
            // The start of the frame playing at d: never after d, less than a frame (plus the
            // half nanosecond of rounding) before it.
            #expect(back <= d, "d=\(d)")
            #expect(d - back <= period, "d=\(d)")
        }
    }

    @Test(arguments: rates)
    func frameStartsRoundTripExactly(rate: Int) {
        // Ceiling of a frame's start time is always inside that frame.
        for n: Int64 in [1, 2, 3, 441, 1023, 1024, 4096, 99_999, 1_000_001, -1, -2, -1024, -99_999] {
            let d = FrameMath.duration(ofFrames: n, rate: rate)
            let ceilStart = FrameMath.frames(in: d, rate: rate) == n ? d : d + 1
            #expect(FrameMath.frames(in: ceilStart, rate: rate) == n, "n=\(n)")
            #expect(FrameMath.frames(in: ceilStart - 1, rate: rate) == n - 1, "n=\(n)")
        }
    }

    // MARK: huge spans

    @Test func daysDoNotOverflow() {
        let tenDays = seconds(10 * 86_400)  // 8.64e14 ns: ns × rate overflows Int64
        #expect(FrameMath.frames(in: tenDays, rate: 48_000) == 41_472_000_000)
        #expect(FrameMath.frames(in: tenDays, rate: 44_100) == 38_102_400_000)
        #expect(FrameMath.frames(in: tenDays + 1, rate: 44_100) == 38_102_400_000)
        #expect(FrameMath.frames(in: -tenDays, rate: 44_100) == -38_102_400_000)
        #expect(FrameMath.frames(in: -tenDays - 1, rate: 44_100) == -38_102_400_001)
        #expect(FrameMath.duration(ofFrames: 41_472_000_000, rate: 48_000) == tenDays)
        #expect(FrameMath.duration(ofFrames: 38_102_400_000, rate: 44_100) == tenDays)
        #expect(FrameMath.duration(ofFrames: 38_102_400_001, rate: 44_100) == tenDays + 22_676)
        #expect(FrameMath.duration(ofFrames: -38_102_400_001, rate: 44_100) == -tenDays - 22_676)
        // A week at 22.05 kHz, plus one nanosecond.
        #expect(FrameMath.frames(in: seconds(7 * 86_400) + 1, rate: 22_050) == 13_335_840_000)
    }

    @Test func extremeNanosecondCountsDoNotOverflow() {
        // Int64.max ns (292 years): the product needs 128 bits.
        #expect(FrameMath.frames(in: .max, rate: 48_000) == 442_721_857_769_029)
        #expect(FrameMath.frames(in: .max, rate: 44_100) == 406_750_706_825_295)
        // A century of frames and back.
        let century: Int64 = 100 * 365 * 86_400
        #expect(FrameMath.duration(ofFrames: century * 48_000, rate: 48_000) == seconds(century))
        #expect(FrameMath.frames(in: seconds(century), rate: 48_000) == century * 48_000)
    }

    @Test func secondsOfFrames() {
        #expect(FrameMath.seconds(ofFrames: 44_100, rate: 44_100) == 1.0)
        #expect(FrameMath.seconds(ofFrames: 24_000, rate: 48_000) == 0.5)
        #expect(FrameMath.seconds(ofFrames: -22_050, rate: 22_050) == -1.0)
    }
}
