import JamzCore
import Testing

@Suite struct HeardMapTests {
    // 1000 Hz: one frame per millisecond, so times and frames line up exactly.
    let t0: Nanos = seconds(100)

    func seg(_ startMs: Int64, _ count: Int, entry: Int64?, track: Character? = "a", first: Int64 = 0) -> HeardSegment {
        HeardSegment(start: t0 + ms(startMs), count: count, entryID: entry, trackID: track.map { tid($0) }, firstFrame: first)
    }

    /// `HeardMap.Heard` has no public initializer: compare through this.
    struct H: Equatable {
        var entryID: Int64, trackID: TrackID, frame: Int64
        init(_ e: Int64, _ t: TrackID, _ f: Int64) { entryID = e; trackID = t; frame = f }
        init(_ h: HeardMap.Heard) { self.init(h.entryID, h.trackID, h.frame) }
    }

    func heard(_ m: HeardMap, _ atMs: Int64, plus ns: Nanos = 0) -> H? {
        m.heard(at: t0 + ms(atMs) + ns).map(H.init)
    }

    @Test func emptyMapKnowsNothing() {
        let m = HeardMap(rate: 1000)
        #expect(m.heard(at: t0) == nil)
        #expect(m.heard(at: 0) == nil)
        #expect(m.end == nil)
        #expect(m.rate == 1000)
    }

    @Test func framesInsideASegment() throws {
        var m = HeardMap(rate: 1000)
        m.record(seg(0, 100, entry: 7, first: 500))
        #expect(heard(m, 0) == H(7, tid("a"), 500))
        #expect(heard(m, 0, plus: 999_999)?.frame == 500)
        #expect(heard(m, 1)?.frame == 501)
        #expect(heard(m, 50)?.frame == 550)
        #expect(heard(m, 99, plus: 999_999)?.frame == 599)
    }

    @Test func outsideTheSegmentsIsNil() {
        var m = HeardMap(rate: 1000)
        m.record(seg(0, 100, entry: 7, first: 500))
        #expect(heard(m, 0, plus: -1) == nil)
        #expect(heard(m, -5000) == nil)
        #expect(heard(m, 100) == nil)          // the frame after the last one written
        #expect(heard(m, 100_000) == nil)
        m.record(seg(200, 10, entry: 8, first: 0))
        #expect(heard(m, 150) == nil)          // a gap between segments
        #expect(heard(m, 199, plus: 999_999) == nil)
        #expect(heard(m, 200)?.entryID == 8)
        #expect(heard(m, 210) == nil)
    }

    @Test func consecutiveSegments() {
        var m = HeardMap(rate: 1000)
        m.record(seg(0, 100, entry: 1, track: "a", first: 0))
        m.record(seg(100, 100, entry: 1, track: "a", first: 100))
        m.record(seg(200, 30, entry: 2, track: "b", first: 0))
        #expect(heard(m, 99)?.frame == 99)
        #expect(heard(m, 100)?.frame == 100)
        #expect(heard(m, 199)?.frame == 199)
        #expect(heard(m, 200) == H(2, tid("b"), 0))
        #expect(heard(m, 229) == H(2, tid("b"), 29))
        #expect(heard(m, 230) == nil)
        #expect(m.end == t0 + ms(230))
    }

    @Test func segmentsAtARealRate() throws {
        var m = HeardMap(rate: 44_100)
        let block = 1024
        var start: Nanos = t0
        for i in 0..<10 {
            m.record(HeardSegment(start: start, count: block, entryID: 3, trackID: tid("c"), firstFrame: Int64(i * block)))
            start += FrameMath.duration(ofFrames: Int64(block), rate: 44_100)
        }
        #expect(m.end == start)
        #expect(m.heard(at: t0)?.frame == 0)
        // Block starts are sums of rounded block durations (23219955 ns each, 0.35 ns long), so
        // the exact 3072-frame instant (69659864 ns) still falls in the third block.
        #expect(m.heard(at: t0 + FrameMath.duration(ofFrames: 3 * 1024, rate: 44_100))?.frame == 3071)
        #expect(m.heard(at: t0 + 3 * FrameMath.duration(ofFrames: 1024, rate: 44_100))?.frame == 3072)
        #expect(m.heard(at: t0 + 3 * FrameMath.duration(ofFrames: 1024, rate: 44_100) - 1)?.frame == 3071)
        #expect(m.heard(at: start - 1)?.frame == Int64(10 * 1024 - 1))
        #expect(m.heard(at: start) == nil)
    }

    @Test func silenceSegmentsAreNil() {
        var m = HeardMap(rate: 1000)
        m.record(seg(0, 100, entry: 1, first: 0))
        m.record(seg(100, 50, entry: nil, track: nil, first: 0))
        m.record(seg(150, 50, entry: 2, track: "b", first: 10))
        #expect(heard(m, 99)?.frame == 99)
        #expect(heard(m, 100) == nil)
        #expect(heard(m, 149) == nil)
        #expect(heard(m, 150) == H(2, tid("b"), 10))
        // A segment missing either its entry or its track is silence too.
        var n = HeardMap(rate: 1000)
        n.record(seg(0, 10, entry: 5, track: nil))
        n.record(seg(10, 10, entry: nil, track: "a"))
        #expect(heard(n, 5) == nil)
        #expect(heard(n, 15) == nil)
        #expect(n.end == t0 + ms(20))  // silence still counts towards the end
    }

    @Test func anEarlierStartSupersedesLaterSegments() {
        var m = HeardMap(rate: 1000)
        m.record(seg(0, 100, entry: 1, track: "a"))
        m.record(seg(100, 100, entry: 2, track: "b"))
        m.record(seg(200, 100, entry: 3, track: "c"))
        #expect(m.end == t0 + ms(300))
        // The output restarted: a segment from 150 ms replaces the ones starting at or after it.
        m.record(seg(150, 20, entry: 9, track: "d", first: 1000))
        #expect(heard(m, 50)?.entryID == 1)             // older, earlier segment kept
        #expect(heard(m, 120)?.entryID == 2)            // start kept: it began before 150 ms
        #expect(heard(m, 150) == H(9, tid("d"), 1000))
        #expect(heard(m, 169)?.frame == 1019)
        #expect(heard(m, 170) == nil)                   // segment 3 (from 200 ms) is forgotten
        #expect(heard(m, 250) == nil)
        #expect(m.end == t0 + ms(170))
    }

    @Test func anEqualStartSupersedes() {
        var m = HeardMap(rate: 1000)
        m.record(seg(0, 100, entry: 1, track: "a"))
        m.record(seg(0, 10, entry: 2, track: "b"))
        #expect(heard(m, 5)?.entryID == 2)
        #expect(heard(m, 50) == nil)
        #expect(m.end == t0 + ms(10))
    }

    @Test func aRestartBeforeEverythingReplacesAll() {
        var m = HeardMap(rate: 1000)
        for i: Int64 in 0..<5 { m.record(seg(1000 + i * 10, 10, entry: i, track: "a")) }
        m.record(seg(0, 10, entry: 42, track: "f"))
        #expect(heard(m, 5)?.entryID == 42)
        #expect(heard(m, 1000) == nil)
        #expect(m.end == t0 + ms(10))
    }

    @Test func capacityTrimmingKeepsTheRecentSegments() {
        var m = HeardMap(rate: 1000, capacity: 4)
        for i: Int64 in 0..<5 { m.record(seg(i * 10, 10, entry: i, track: "a", first: i * 10)) }
        #expect(heard(m, 5) == nil)                     // the oldest was dropped
        #expect(heard(m, 35)?.entryID == 3)             // the newest capacity/2 are kept
        #expect(heard(m, 45)?.entryID == 4)
        #expect(heard(m, 49)?.frame == 49)
        #expect(m.end == t0 + ms(50))
    }

    @Test func theSegmentJustRecordedSurvivesTrimmingAtAnyCapacity() {
        // capacity 2 and 3 work; capacity 1 trims by `count - capacity / 2` = everything.
        for capacity in [2, 3] {
            var m = HeardMap(rate: 1000, capacity: capacity)
            for i: Int64 in 0..<5 { m.record(seg(i * 10, 10, entry: i, track: "a")) }
            #expect(heard(m, 45)?.entryID == 4, "capacity \(capacity)")
            #expect(m.end == t0 + ms(50), "capacity \(capacity)")
        }
        do {
            var m = HeardMap(rate: 1000, capacity: 1)
            m.record(seg(0, 10, entry: 1, track: "a"))
            m.record(seg(10, 10, entry: 2, track: "a"))
            #expect(heard(m, 15)?.entryID == 2)
            #expect(m.end == t0 + ms(20))
        }
    }

    @Test func longRunsStayBounded() {
        var m = HeardMap(rate: 1000, capacity: 64)
        for i: Int64 in 0..<10_000 {
            m.record(seg(i * 10, 10, entry: i, track: "a", first: i * 10))
            // The segment just recorded is always answerable.
            if m.heard(at: t0 + ms(i * 10 + 9))?.frame != i * 10 + 9 {
                Issue.record("segment \(i) not found right after recording it")
                break
            }
        }
        #expect(heard(m, 0) == nil)
        #expect(heard(m, 50_000) == nil)
        for i: Int64 in 9_968..<10_000 {                 // the newest 32 (capacity/2) are kept
            #expect(heard(m, i * 10 + 3)?.frame == i * 10 + 3, "i=\(i)")
        }
        #expect(m.end == t0 + ms(100_000))
    }

    @Test func endFollowsTheLastSegment() {
        var m = HeardMap(rate: 44_100)
        m.record(HeardSegment(start: t0, count: 1, entryID: 1, trackID: tid("a"), firstFrame: 0))
        #expect(m.end == t0 + 22_676)
        m.record(HeardSegment(start: t0 + seconds(1), count: 44_100, entryID: 1, trackID: tid("a"), firstFrame: 0))
        #expect(m.end == t0 + seconds(2))
        m.record(HeardSegment(start: t0 + seconds(3), count: 0, entryID: nil, trackID: nil, firstFrame: 0))
        #expect(m.end == t0 + seconds(3))
    }

    @Test func resetForgetsEverything() {
        var m = HeardMap(rate: 1000)
        m.record(seg(0, 100, entry: 1))
        #expect(heard(m, 10) != nil)
        m.reset()
        #expect(heard(m, 10) == nil)
        #expect(m.end == nil)
        m.record(seg(500, 10, entry: 2))
        #expect(heard(m, 505)?.entryID == 2)
        #expect(heard(m, 10) == nil)
    }
}
