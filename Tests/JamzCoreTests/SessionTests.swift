import JamzCore
import Testing

@Suite struct SessionTests {
    let rate = 1000  // one frame per millisecond: every expectation exact
    let a = MemberID(1), b = MemberID(2), c = MemberID(3)

    func playlist() -> [PlaylistEntry] {
        [PlaylistEntry(id: OpID(origin: a, seq: 1), track: tid("a"), frames: 10_000),
         PlaylistEntry(id: OpID(origin: a, seq: 2), track: tid("b"), frames: 5_000),
         PlaylistEntry(id: OpID(origin: b, seq: 1), track: tid("c"), frames: 20_000)]
    }

    @Test func theHighestTermWinsWhateverTheArrivalOrder() {
        let announcements = [
            ConvoyTimeline(term: Term(number: 1, dj: b)),
            ConvoyTimeline(term: Term(number: 2, dj: a), version: 3),
            ConvoyTimeline(term: Term(number: 2, dj: c)),
            ConvoyTimeline(term: Term(number: 2, dj: c), version: 1),
            ConvoyTimeline(term: Term(number: 1, dj: c), version: 9),
        ]
        var rng = SplitMix64(seed: 3)
        for _ in 0..<50 {
            var s = Session(me: a)
            for t in announcements.shuffled(using: &rng) { s.receive(t) }
            #expect(s.term == Term(number: 2, dj: c))
            #expect(s.timeline.version == 1)
            #expect(!s.isDJ)
        }
    }

    @Test func twoSimultaneousTakeOversEndWithTheHigherMember() {
        var sa = Session(me: a), sc = Session(me: c)
        let ta = sa.takeOver { $0 }, tc = sc.takeOver { $0 }
        sa.receive(tc); sc.receive(ta)
        #expect(sa.term == sc.term)
        #expect(sa.term == Term(number: 1, dj: c))
        #expect(sc.isDJ && !sa.isDJ)
    }

    /// The new DJ re-expresses the running timeline in its own clock: at every true instant the
    /// frame is the same in both clocks, so the music does not skip.
    /// A convoy's first term is 1 (the car that made the group); a car on its own is in term 0.
    func convoyDJ() -> Session { Session(me: a, timeline: ConvoyTimeline(term: Term(number: 1, dj: a))) }

    @Test func takeOverKeepsTheMusicWhereItIs() {
        var dj = convoyDJ()
        let list = playlist()
        let start = dj.schedule(.start(entry: list[0].id), at: seconds(100), playlist: list, sampleRate: rate)!
        var other = Session(me: b)
        other.receive(start)
        let offset: Nanos = -seconds(3_000)  // b's clock = a's clock + offset
        let t = other.takeOver { $0 + offset }
        #expect(t.term == Term(number: 2, dj: b))
        for trueA in [seconds(100), seconds(105), seconds(112) + 345] {
            let before = start.position(at: trueA, in: list, sampleRate: rate)
            let after = t.position(at: trueA + offset, in: list, sampleRate: rate)
            #expect(before == after)
        }
        // Past the first track: gapless into the second.
        #expect(t.position(at: seconds(111) + offset, in: list, sampleRate: rate)?.index == 1)
    }

    @Test func aScheduledChangeKeepsThePreviousAnchorUntilItsTime() {
        var dj = convoyDJ()
        let list = playlist()
        _ = dj.schedule(.start(entry: list[0].id), at: seconds(10), playlist: list, sampleRate: rate)
        let seek = dj.schedule(.seek(frame: 7_000), at: seconds(12), playlist: list, sampleRate: rate)!
        #expect(seek.position(at: seconds(12) - ms(1), in: list, sampleRate: rate)?.frame == 1_999)
        #expect(seek.position(at: seconds(12), in: list, sampleRate: rate)?.frame == 7_000)
        #expect(seek.version == 2)
        // Nothing plays before the first anchor.
        #expect(seek.position(at: seconds(9), in: list, sampleRate: rate) == nil)
        let pause = dj.schedule(.pause, at: seconds(13), playlist: list, sampleRate: rate)!
        #expect(pause.position(at: seconds(20), in: list, sampleRate: rate)?.frame == 8_000)
        #expect(pause.anchor(at: seconds(20))?.rate == 0)
        // Only the DJ schedules.
        var follower = Session(me: b)
        let adopted = follower.receive(pause)
        #expect(adopted)
        #expect(follower.schedule(.play, at: seconds(30), playlist: list, sampleRate: rate) == nil)
    }

    @Test func leadCoversTheWorstRecentDelayAndTheRenderBufferWithinBounds() {
        var l = LeadEstimator()
        #expect(l.lead(now: 0, renderAhead: 0) == l.minimum)
        l.observe(delay: ms(80), at: seconds(1))
        l.observe(delay: ms(30), at: seconds(50))
        #expect(l.lead(now: seconds(55), renderAhead: ms(100)) == ms(80) + ms(100) + l.margin)
        // An old spike is forgotten.
        #expect(l.lead(now: seconds(70), renderAhead: ms(100)) == ms(30) + ms(100) + l.margin)
        l.observe(delay: seconds(3), at: seconds(71))
        #expect(l.lead(now: seconds(72), renderAhead: 0) == l.maximum)
    }
}
