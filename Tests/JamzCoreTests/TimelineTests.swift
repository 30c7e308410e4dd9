import JamzCore
import Testing

@Suite struct TimelineTests {
    // At 1000 Hz one frame is exactly one millisecond, so every expectation below is exact.
    let rate = 1000
    let t0: Nanos = seconds(5_000)
    // Entries 10, 11, 12, 13: lengths 1000, 2000, 500, 700 frames; the same track queued twice.
    let queue = [
        QueueEntry(id: 10, trackID: tid("a"), frames: 1000),
        QueueEntry(id: 11, trackID: tid("b"), frames: 2000),
        QueueEntry(id: 12, trackID: tid("a"), frames: 500),
        QueueEntry(id: 13, trackID: tid("c"), frames: 700),
    ]

    func cursor(_ index: Int, _ frame: Int64) -> Cursor {
        Cursor(index: index, entryID: queue[index].id, trackID: queue[index].trackID, frame: frame)
    }

    func locate(_ a: PlayAnchor, after elapsed: Nanos) -> Cursor? {
        Timeline.locate(a, in: queue, at: a.time + elapsed, rate: rate)
    }

    @Test func playingAnchorAdvancesAtTheRate() {
        let a = PlayAnchor(entryID: 11, frame: 100, time: t0, playing: true)
        #expect(locate(a, after: 0) == cursor(1, 100))
        #expect(locate(a, after: ms(1)) == cursor(1, 101))
        #expect(locate(a, after: ms(1) - 1) == cursor(1, 100))
        #expect(locate(a, after: ms(250) + 999_999) == cursor(1, 350))
    }

    @Test func playingAnchorAtRealRates() {
        let q = [QueueEntry(id: 1, trackID: tid("d"), frames: 44_100 * 600)]
        let a = PlayAnchor(entryID: 1, frame: 1234, time: t0, playing: true)
        #expect(Timeline.locate(a, in: q, at: t0 + seconds(3), rate: 44_100)?.frame == Int64(1234 + 3 * 44_100))
        #expect(Timeline.locate(a, in: q, at: t0 + seconds(3) - 1, rate: 44_100)?.frame == Int64(1233 + 3 * 44_100))
        let d = FrameMath.duration(ofFrames: 1000, rate: 44_100)  // rounded up: lands in frame 1000
        #expect(Timeline.locate(a, in: q, at: t0 + d, rate: 44_100)?.frame == Int64(1234 + 1000))
        #expect(Timeline.locate(a, in: q, at: t0 + seconds(3), rate: 48_000)?.frame == Int64(1234 + 3 * 48_000))
    }

    @Test func pausedAnchorStandsStill() {
        let a = PlayAnchor(entryID: 12, frame: 321, time: t0, playing: false)
        for elapsed in [0, 1, ms(1), seconds(1), seconds(86_400 * 3), -seconds(10)] {
            #expect(locate(a, after: elapsed) == cursor(2, 321), "elapsed \(elapsed)")
        }
    }

    @Test func beforeTheAnchorTimeAPlayingTimelineHoldsTheAnchorFrame() {
        let a = PlayAnchor(entryID: 11, frame: 700, time: t0, playing: true)
        #expect(locate(a, after: -1) == cursor(1, 700))
        #expect(locate(a, after: -ms(500)) == cursor(1, 700))
        #expect(locate(a, after: -seconds(3600)) == cursor(1, 700))
        #expect(Timeline.locate(a, in: queue, at: .min, rate: rate) == cursor(1, 700))
    }

    @Test func walksAcrossEntriesGaplessly() {
        let a = PlayAnchor(entryID: 10, frame: 0, time: t0, playing: true)
        #expect(locate(a, after: ms(999)) == cursor(0, 999))
        // A frame exactly at a boundary is frame 0 of the next entry.
        #expect(locate(a, after: ms(1000)) == cursor(1, 0))
        #expect(locate(a, after: ms(1001)) == cursor(1, 1))
        #expect(locate(a, after: ms(2999)) == cursor(1, 1999))
        #expect(locate(a, after: ms(3000)) == cursor(2, 0))
        #expect(locate(a, after: ms(3499)) == cursor(2, 499))
        #expect(locate(a, after: ms(3500)) == cursor(3, 0))
        #expect(locate(a, after: ms(4199)) == cursor(3, 699))
        #expect(locate(a, after: ms(4199) + 999_999) == cursor(3, 699))
    }

    @Test func anchorFrameBeyondItsEntryWalksOn() {
        // A paused anchor whose frame is past its entry's end is already in a later entry.
        #expect(Timeline.locate(PlayAnchor(entryID: 10, frame: 1000, time: t0, playing: false), in: queue, at: t0, rate: rate) == cursor(1, 0))
        #expect(Timeline.locate(PlayAnchor(entryID: 10, frame: 3250, time: t0, playing: false), in: queue, at: t0, rate: rate) == cursor(2, 250))
        // Playing from the middle of entry 11 over two boundaries.
        let a = PlayAnchor(entryID: 11, frame: 1500, time: t0, playing: true)
        #expect(locate(a, after: ms(499)) == cursor(1, 1999))
        #expect(locate(a, after: ms(500)) == cursor(2, 0))
        #expect(locate(a, after: ms(1000)) == cursor(3, 0))
    }

    @Test func pastTheEndIsNil() {
        let a = PlayAnchor(entryID: 10, frame: 0, time: t0, playing: true)
        #expect(locate(a, after: ms(4200)) == nil)  // total 4200 frames: frame 4200 is past the end
        #expect(locate(a, after: seconds(86_400)) == nil)
        let last = PlayAnchor(entryID: 13, frame: 699, time: t0, playing: true)
        #expect(locate(last, after: 0) == cursor(3, 699))
        #expect(locate(last, after: ms(1)) == nil)
        #expect(Timeline.locate(PlayAnchor(entryID: 13, frame: 700, time: t0, playing: false), in: queue, at: t0, rate: rate) == nil)
    }

    @Test func missingAnchorEntryIsNil() {
        let a = PlayAnchor(entryID: 99, frame: 0, time: t0, playing: true)
        #expect(locate(a, after: 0) == nil)
        #expect(locate(a, after: ms(10)) == nil)
        #expect(Timeline.locate(PlayAnchor(entryID: 10, frame: 0, time: t0, playing: false), in: [], at: t0, rate: rate) == nil)
        // The anchor entry removed from the queue: nil even though other entries remain.
        let without11 = queue.filter { $0.id != 11 }
        #expect(Timeline.locate(PlayAnchor(entryID: 11, frame: 0, time: t0, playing: false), in: without11, at: t0, rate: rate) == nil)
    }

    @Test func indexFollowsQueueOrderNotIDs() {
        let q = [
            QueueEntry(id: 50, trackID: tid("e"), frames: 10),
            QueueEntry(id: 7, trackID: tid("f"), frames: 10),
            QueueEntry(id: 50_000, trackID: tid("e"), frames: 10),
        ]
        let a = PlayAnchor(entryID: 7, frame: 5, time: t0, playing: true)
        #expect(Timeline.locate(a, in: q, at: t0, rate: rate) == Cursor(index: 1, entryID: 7, trackID: tid("f"), frame: 5))
        #expect(Timeline.locate(a, in: q, at: t0 + ms(5), rate: rate) == Cursor(index: 2, entryID: 50_000, trackID: tid("e"), frame: 0))
        #expect(Timeline.locate(a, in: q, at: t0 + ms(15), rate: rate) == nil)
    }

    @Test func emptyEntriesAreSkipped() {
        let q = [
            QueueEntry(id: 1, trackID: tid("1"), frames: 10),
            QueueEntry(id: 2, trackID: tid("2"), frames: 0),
            QueueEntry(id: 3, trackID: tid("3"), frames: 10),
        ]
        let a = PlayAnchor(entryID: 1, frame: 0, time: t0, playing: true)
        #expect(Timeline.locate(a, in: q, at: t0 + ms(10), rate: rate) == Cursor(index: 2, entryID: 3, trackID: tid("3"), frame: 0))
        let onEmpty = PlayAnchor(entryID: 2, frame: 0, time: t0, playing: false)
        #expect(Timeline.locate(onEmpty, in: q, at: t0, rate: rate) == Cursor(index: 2, entryID: 3, trackID: tid("3"), frame: 0))
    }

    @Test func negativeAnchorFrameIsClampedToTheStart() {
        let a = PlayAnchor(entryID: 11, frame: -50, time: t0, playing: true)
        #expect(locate(a, after: 0) == cursor(1, 0))
        #expect(locate(a, after: ms(49)) == cursor(1, 0))
        #expect(locate(a, after: ms(60)) == cursor(1, 10))
    }

    // MARK: reanchor

    @Test func pauseAndResumeKeepThePosition() throws {
        let playing = PlayAnchor(entryID: 10, frame: 900, time: t0, playing: true)
        let pauseAt = t0 + ms(250)  // entry 11 frame 150
        let paused = try #require(Timeline.reanchor(playing, in: queue, at: pauseAt, rate: rate, playing: false))
        #expect(paused == PlayAnchor(entryID: 11, frame: 150, time: pauseAt, playing: false))
        #expect(Timeline.locate(paused, in: queue, at: pauseAt, rate: rate) == Timeline.locate(playing, in: queue, at: pauseAt, rate: rate))
        // Paused for an hour: still there.
        let resumeAt = pauseAt + seconds(3600)
        #expect(Timeline.locate(paused, in: queue, at: resumeAt, rate: rate) == cursor(1, 150))
        let resumed = try #require(Timeline.reanchor(paused, in: queue, at: resumeAt, rate: rate, playing: true))
        #expect(resumed == PlayAnchor(entryID: 11, frame: 150, time: resumeAt, playing: true))
        // After resuming the music continues exactly where playing left off.
        for k: Int64 in [0, 1, 1849, 1850, 2500] {
            #expect(Timeline.locate(resumed, in: queue, at: resumeAt + ms(k), rate: rate)
                    == Timeline.locate(playing, in: queue, at: pauseAt + ms(k), rate: rate), "k=\(k)")
        }
    }

    @Test func reanchorWhilePlayingContinuesTheSameMusic() throws {
        let a = PlayAnchor(entryID: 10, frame: 0, time: t0, playing: true)
        let b = try #require(Timeline.reanchor(a, in: queue, at: t0 + ms(2500), rate: rate, playing: true))
        #expect(b == PlayAnchor(entryID: 11, frame: 1500, time: t0 + ms(2500), playing: true))
        for k: Int64 in [2500, 2501, 3000, 3600, 4199, 4200] {
            #expect(Timeline.locate(b, in: queue, at: t0 + ms(k), rate: rate) == Timeline.locate(a, in: queue, at: t0 + ms(k), rate: rate), "k=\(k)")
        }
    }

    @Test func reanchorAtAnArbitraryInstantLosesLessThanAFrame() throws {
        let q = [QueueEntry(id: 1, trackID: tid("d"), frames: 44_100 * 3600)]
        let a = PlayAnchor(entryID: 1, frame: 0, time: t0, playing: true)
        var rng = SplitMix64(seed: 42)
        for _ in 0..<500 {
            let t1 = t0 + Int64.random(in: 0...seconds(600), using: &rng)
            let t2 = t1 + Int64.random(in: 0...seconds(600), using: &rng)
            let b = try #require(Timeline.reanchor(a, in: q, at: t1, rate: 44_100, playing: true))
            #expect(b.time == t1)
            #expect(b.frame == FrameMath.frames(in: t1 - t0, rate: 44_100))
            let viaB = try #require(Timeline.locate(b, in: q, at: t2, rate: 44_100)).frame
            let viaA = try #require(Timeline.locate(a, in: q, at: t2, rate: 44_100)).frame
            #expect(viaA - viaB == 0 || viaA - viaB == 1, "t1=\(t1) t2=\(t2)")
        }
    }

    @Test func reanchorWithoutPositionIsNil() {
        #expect(Timeline.reanchor(PlayAnchor(entryID: 99, frame: 0, time: t0, playing: true), in: queue, at: t0, rate: rate, playing: false) == nil)
        #expect(Timeline.reanchor(PlayAnchor(entryID: 13, frame: 0, time: t0, playing: true), in: queue, at: t0 + ms(700), rate: rate, playing: false) == nil)
    }
}
