import JamzCore
import Testing

/// The GPS prompts' hysteresis (issue 17), on made-up report times.
@Suite struct GPSPromptGateTests {
    static let s = nanosPerSecond

    @Test func theFirstFixSaysNothingALossAfterASteadyFixSaysNoGPS() {
        var g = GPSPromptGate()
        #expect(g.lost() == nil, "no fix ever: nothing to say")
        for t in 0...12 { #expect(g.fix(at: Nanos(t) * Self.s) == nil) }
        #expect(g.lost() == .noGPS)
        #expect(g.lost() == nil, "said once")
    }

    @Test func aFlappingFixSaysNoGPSOnceAndGPSIsBackOnlyOnceItHeld() {
        var g = GPSPromptGate()
        for t in 0...10 { _ = g.fix(at: Nanos(t) * Self.s) }
        #expect(g.lost() == .noGPS)
        var said: [Prompt] = []
        // 20 s of a fix that comes for 3 s and goes again.
        for cycle in 0..<5 {
            let t0 = 20 + cycle * 4
            for t in t0..<(t0 + 3) { if let p = g.fix(at: Nanos(t) * Self.s) { said.append(p) } }
            if let p = g.lost() { said.append(p) }
        }
        #expect(said.isEmpty, "\(said)")
        // Then it holds: "GPS is back" once, 10 s after it came.
        var back: [Int] = []
        for t in 100...130 { if g.fix(at: Nanos(t) * Self.s) == .gpsBack { back.append(t) } }
        #expect(back == [110])
    }
}
