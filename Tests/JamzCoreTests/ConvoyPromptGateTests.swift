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

    /// A flapping link: "car 2 left" once, again only after the car was back for 30 s; "offline"
    /// not within 30 s of "back online" (nor the "back online" after it).
    @Test func aFlappingCarOrLinkIsNotAStreamOfPrompts() {
        var g = ConvoyPromptGate()
        #expect(g.update(now: 0, lastHeard: [a: 0, b: 0, c: 0]).isEmpty)
        // c: silent, back 2 s, silent again, back again: said the first time only.
        #expect(g.update(now: 16 * s, lastHeard: [a: 16 * s, b: 16 * s, c: 0]) == [.carLeft(2)])
        #expect(g.update(now: 18 * s, lastHeard: [a: 18 * s, b: 18 * s, c: 18 * s]).isEmpty)
        #expect(g.update(now: 34 * s, lastHeard: [a: 34 * s, b: 34 * s, c: 18 * s]).isEmpty)
        #expect(g.update(now: 35 * s, lastHeard: [a: 35 * s, b: 35 * s, c: 35 * s]).isEmpty)
        // Back for 30 s this time (numbered 2: b, c, a by member id): its next silence is said.
        #expect(g.update(now: 66 * s, lastHeard: [a: 66 * s, b: 66 * s, c: 50 * s]) == [.carLeft(2)])
        // Everyone: offline; back online; gone again 20 s later: quiet, and its return too.
        #expect(g.update(now: 100 * s, lastHeard: [a: 80 * s, b: 80 * s, c: 50 * s]) == [.offline])
        #expect(g.update(now: 110 * s, lastHeard: [a: 110 * s, b: 80 * s, c: 50 * s]) == [.online])
        #expect(g.update(now: 130 * s, lastHeard: [a: 110 * s, b: 80 * s, c: 50 * s]).isEmpty)
        #expect(g.update(now: 135 * s, lastHeard: [a: 135 * s, b: 80 * s, c: 50 * s]).isEmpty)
        // Held: the next loss of everyone is said, and the return.
        #expect(g.update(now: 200 * s, lastHeard: [a: 180 * s, b: 80 * s, c: 50 * s]) == [.offline])
        #expect(g.update(now: 210 * s, lastHeard: [a: 210 * s, b: 80 * s, c: 50 * s]) == [.online])
    }

    /// "offline" held back after a recent "back online" is said once the hold is over, if every
    /// car is still silent then; not if one came back meanwhile.
    @Test func aHeldOfflineIsSaidLaterIfStillSilent() {
        var g = ConvoyPromptGate()
        #expect(g.update(now: 0, lastHeard: [a: 0, b: 0]).isEmpty)
        #expect(g.update(now: 20 * s, lastHeard: [a: 0, b: 0]) == [.offline])
        #expect(g.update(now: 25 * s, lastHeard: [a: 25 * s, b: 0]) == [.online])
        // Silent again 16 s later: held (within 30 s of "back online").
        #expect(g.update(now: 41 * s, lastHeard: [a: 25 * s, b: 0]).isEmpty)
        #expect(g.offlinePending)
        #expect(g.update(now: 50 * s, lastHeard: [a: 25 * s, b: 0]).isEmpty)
        // The hold is over and everyone still silent: said once, then its return.
        #expect(g.update(now: 55 * s, lastHeard: [a: 25 * s, b: 0]) == [.offline])
        #expect(g.update(now: 56 * s, lastHeard: [a: 25 * s, b: 0]).isEmpty)
        #expect(g.update(now: 60 * s, lastHeard: [a: 60 * s, b: 0]) == [.online])
        // Held again, but a car comes back within the hold: nothing is said at all.
        #expect(g.update(now: 76 * s, lastHeard: [a: 60 * s, b: 0]).isEmpty)
        #expect(g.update(now: 80 * s, lastHeard: [a: 80 * s, b: 0]).isEmpty)
        #expect(!g.offlinePending)
        #expect(g.update(now: 95 * s, lastHeard: [a: 95 * s, b: 0]).isEmpty)
    }

    @Test func aLoneCarThatNeverHeardAnyoneSaysNothing() {
        var g = ConvoyPromptGate()
        for t in 0..<100 { #expect(g.update(now: Int64(t) * s, lastHeard: [:]).isEmpty) }
    }
}
