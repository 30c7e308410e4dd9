import JamzCore
import Testing

/// The convoy's prompts on what the node heard: "car N left", "offline", "back online".
@Suite struct ConvoyPromptGateTests {
    let s = nanosPerSecond
    let a = MemberID(30), b = MemberID(10), c = MemberID(20)

    @Test func aCarGoneSilentIsSaidOnceByItsNumberAndAllGoneIsOffline() {
        var g = ConvoyPromptGate()
        // a is heard first, then b and c: numbered 1, then 2 and 3 (member order within one update).
        #expect(g.update(now: 0, lastHeard: [a: 0]).isEmpty)
        #expect(g.update(now: s, lastHeard: [a: s, b: s, c: s]).isEmpty)
        #expect(g.number(of: a) == 1 && g.number(of: b) == 2 && g.number(of: c) == 3)
        // c falls silent: said once, 15 s after it was last heard.
        #expect(g.update(now: 15 * s, lastHeard: [a: 15 * s, b: 15 * s, c: s]).isEmpty)
        #expect(g.update(now: 16 * s, lastHeard: [a: 16 * s, b: 16 * s, c: s]) == [.carLeft(3)])
        #expect(g.update(now: 17 * s, lastHeard: [a: 17 * s, b: 17 * s, c: s]).isEmpty)
        // c is back: nothing said (it was not offline); then everyone goes: offline, once.
        #expect(g.update(now: 18 * s, lastHeard: [a: 18 * s, b: 18 * s, c: 18 * s]).isEmpty)
        #expect(g.update(now: 40 * s, lastHeard: [a: 18 * s, b: 18 * s, c: 18 * s]) == [.offline])
        #expect(g.update(now: 41 * s, lastHeard: [a: 18 * s, b: 18 * s, c: 18 * s]).isEmpty)
        // One car heard again: back online; numbers kept.
        #expect(g.update(now: 50 * s, lastHeard: [a: 18 * s, b: 50 * s, c: 18 * s]) == [.online])
        #expect(g.number(of: c) == 3)
        g.reset()
        #expect(g.numbers.isEmpty && !g.offlineSaid)
    }

    @Test func aLoneCarThatNeverHeardAnyoneSaysNothing() {
        var g = ConvoyPromptGate()
        for t in 0..<100 { #expect(g.update(now: Int64(t) * s, lastHeard: [:]).isEmpty) }
    }
}
