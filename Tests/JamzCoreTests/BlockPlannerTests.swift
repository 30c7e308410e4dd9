import JamzCore
import Testing

/// The renderer's block decisions in virtual time: a model decoder (a read position that takes
/// `decodeDelay` to reach a requested place) and a DAC whose blocks are heard on a drifting clock.
@Suite struct BlockPlannerTests {
    static let rate = 44_100
    static let n = 1024
    static let settings = BlockPlanner.Settings(rate: rate, corrector: .init(rate: rate, deadbandFrames: 0.5),
                                                decodeLead: 80_000_000, jumpFade: 5_000_000)
    let track = TrackID(digest: [UInt8](repeating: 7, count: 32))!
    var queue: [QueueEntry] { [QueueEntry(id: 1, trackID: track, frames: 44_100 * 60), QueueEntry(id: 2, trackID: track, frames: 44_100 * 60)] }

    /// The decoder and the output the steps are carried out on, and what was heard when.
    struct Model {
        var head: BlockPlanner.Head?
        var pending: (head: BlockPlanner.Head, at: Nanos)?
        var audible = false
        var queue: [QueueEntry]
        var decodeDelay: Nanos = 50_000_000
        /// (time heard, entry, frame) of each block's first frame of music.
        var heard: [(t: Nanos, entry: Int64, frame: Int64)] = []
        var jumps = 0, repeated = 0, dropped = 0

        mutating func advance(_ k: Int) {
            guard var h = head else { return }
            h.frame += Int64(k)
            if let i = queue.firstIndex(where: { $0.id == h.entryID }), h.frame >= queue[i].frames, i + 1 < queue.count {
                h.frame -= queue[i].frames
                h.entryID = queue[i + 1].id
            }
            head = h
        }

        /// Carries the steps out; returns the frames written.
        @discardableResult
        mutating func run(_ steps: [BlockPlanner.Step], at h: Nanos) -> Int {
            var offset = 0
            for step in steps {
                switch step {
                case .take(let k):
                    if let hd = head, k > 0 {
                        heard.append((h + FrameMath.duration(ofFrames: Int64(offset), rate: rate), hd.entryID, hd.frame))
                        audible = true
                    }
                    advance(k); offset += k
                case .skip(let k): advance(k)
                case .repeatLast(let k), .silence(let k): offset += k
                case .fadeOut(let k): audible = false; offset += k
                case .request(let e, let f):
                    head = nil
                    pending = (BlockPlanner.Head(entryID: e, frame: f), h + decodeDelay)
                case .entryFailed: head = nil
                case .countJump: jumps += 1
                case .countRepeated(let k): repeated += k
                case .countDropped(let k): dropped += k
                case .slip, .slipLimitReached: break
                }
            }
            return offset
        }

        mutating func decode(until t: Nanos) {
            if let p = pending, p.at <= t { head = p.head; pending = nil }
        }
    }

    /// Renders `blocks` blocks of `plan` (changed to `then` at block `at`), the DAC `ppm` fast.
    /// Returns the model and the planner.
    func drive(_ plan: PlayAnchor, blocks: Int, ppm: Double = 0, change: (at: Int, to: PlayAnchor)? = nil,
               model m: Model? = nil) -> (Model, BlockPlanner) {
        var planner = BlockPlanner(settings: Self.settings)
        var model = m ?? Model(queue: queue)
        var plan = plan
        // The DAC plays a frame every 1/rate s of its own crystal: `ppm` fast on the timeline's clock.
        let frameNanos = 1e9 / Double(Self.rate) * (1 - ppm * 1e-6)
        var written = 0.0
        var none: BlockPlanner.Slip?
        for k in 0..<blocks {
            if let c = change, c.at == k { plan = c.to }
            let h = Nanos((written * frameNanos).rounded())
            model.decode(until: h)
            let steps = planner.span(plan, queue: queue, failed: [], head: model.head, buffered: 8192, audible: model.audible,
                                     slip: &none, fetchPending: false, blockStart: h, offset: 0, frames: Self.n)
            written += Double(model.run(steps, at: h))
        }
        return (model, planner)
    }

    /// Frame error of each heard block against the timeline (frames; positive: ahead).
    func errors(_ model: Model, _ plan: PlayAnchor, from: Nanos = 0) -> [Int64] {
        model.heard.filter { $0.t >= from }.compactMap { h in
            guard let want = Timeline.locate(plan, in: queue, at: h.t, rate: Self.rate), want.entryID == h.entry else { return nil }
            return h.frame - want.frame
        }
    }

    @Test func startsFromSilenceOnTheFrameAndStaysThere() {
        let plan = PlayAnchor(entryID: 1, frame: 10_000, time: 200_000_000, playing: true)
        let (model, planner) = drive(plan, blocks: 200)
        let e = errors(model, plan)
        #expect(!e.isEmpty)
        // To the frame: ±1 is the rounding of heard instants to nanoseconds and of frames to whole ones.
        #expect(e.allSatisfy { abs($0) <= 1 }, "errors \(Set(e))")
        #expect(planner.lastRequest?.entryID == 1)
        #expect(model.jumps == 1)   // the one request for the place, nothing after
    }

    @Test(arguments: [100.0, -100.0])
    func absorbsTheDacDriftWithSingleFrames(ppm: Double) {
        let plan = PlayAnchor(entryID: 1, frame: 0, time: 100_000_000, playing: true)
        let blocks = 43 * 120   // two minutes
        let (model, _) = drive(plan, blocks: blocks, ppm: ppm)
        let e = errors(model, plan, from: 90 * nanosPerSecond)
        #expect(e.count > 100)
        #expect(e.allSatisfy { abs($0) <= 2 }, "max \(e.map(abs).max() ?? -1)")
        // Two minutes of ±100 ppm is ≈ 530 frames, repeated (a fast DAC) or dropped one by one, never jumped.
        let fixed = ppm > 0 ? model.repeated : model.dropped
        #expect(fixed > 400 && fixed < 700, "fixed \(fixed), repeated \(model.repeated), dropped \(model.dropped), errors \(e.prefix(20))")
        #expect(model.jumps == 1)
    }

    @Test func aSeekFadesJumpsAndComesBackExactly() {
        let plan = PlayAnchor(entryID: 1, frame: 0, time: 0, playing: true)
        let seek = PlayAnchor(entryID: 1, frame: 30 * 44_100, time: 3 * nanosPerSecond, playing: true)
        let (model, _) = drive(plan, blocks: 43 * 6, change: (at: 43 * 2, to: seek))
        #expect(model.jumps >= 2)
        let after = errors(model, seek, from: 3 * nanosPerSecond)
        #expect(!after.isEmpty)
        #expect(after.allSatisfy { abs($0) <= 1 }, "errors \(Set(after))")
    }

    @Test func acrossATrackBoundaryTheErrorCountsBothTracks() {
        // The decoder is 100 frames before the end of entry 1; the timeline wants entry 2's first
        // frame: 100 frames are skipped, not a jump.
        var planner = BlockPlanner(settings: Self.settings)
        var none: BlockPlanner.Slip?
        let plan = PlayAnchor(entryID: 2, frame: 0, time: 0, playing: true)
        let head = BlockPlanner.Head(entryID: 1, frame: 44_100 * 60 - 100)
        let steps = planner.span(plan, queue: queue, failed: [], head: head, buffered: 4096, audible: false, slip: &none,
                                 fetchPending: false, blockStart: 0, offset: 0, frames: Self.n)
        #expect(steps == [.skip(100), .take(Self.n)])
    }

    @Test func aFailedEntryIsReportedAndSilent() {
        var planner = BlockPlanner(settings: Self.settings)
        var none: BlockPlanner.Slip?
        let plan = PlayAnchor(entryID: 1, frame: 0, time: 0, playing: true)
        let steps = planner.span(plan, queue: queue, failed: [], head: .init(entryID: 1, frame: 0, failure: "no file"),
                                 buffered: 0, audible: true, slip: &none, fetchPending: false, blockStart: 0, offset: 0, frames: Self.n)
        #expect(steps == [.entryFailed(1, reason: "no file"), .fadeOut(Self.n)])
        let again = planner.span(plan, queue: queue, failed: [1], head: nil, buffered: 0, audible: false, slip: &none,
                                 fetchPending: false, blockStart: 0, offset: 0, frames: Self.n)
        #expect(again == [.fadeOut(Self.n)])
    }

    @Test func nothingDecodedAsksAgainOnlyAfterTwoSeconds() {
        var planner = BlockPlanner(settings: Self.settings)
        var none: BlockPlanner.Slip?
        let plan = PlayAnchor(entryID: 1, frame: 0, time: 0, playing: true)
        func at(_ t: Nanos) -> [BlockPlanner.Step] {
            planner.span(plan, queue: queue, failed: [], head: nil, buffered: 0, audible: false, slip: &none,
                         fetchPending: false, blockStart: t, offset: 0, frames: Self.n)
        }
        let lead = FrameMath.frames(in: Self.settings.decodeLead, rate: Self.rate)
        #expect(at(0) == [.countJump, .request(entryID: 1, frame: lead), .fadeOut(Self.n)])
        #expect(at(nanosPerSecond) == [.fadeOut(Self.n)])
        let later = at(2 * nanosPerSecond + 1)
        #expect(later.first == .countJump && later.count == 3)
    }

    @Test func aLateStartSlipsInsteadOfSkipping() {
        var planner = BlockPlanner(settings: Self.settings)
        let plan = PlayAnchor(entryID: 1, frame: 5_000, time: 0, playing: true)
        var slip: BlockPlanner.Slip? = .init(anchor: plan)
        // Nothing decoded: silence, the exact first frame asked for (no lead), the start moved to
        // the end of the block.
        let blockEnd = FrameMath.duration(ofFrames: Int64(Self.n), rate: Self.rate)
        let first = planner.span(plan, queue: queue, failed: [], head: nil, buffered: 0, audible: false, slip: &slip,
                                 fetchPending: false, blockStart: 0, offset: 0, frames: Self.n)
        #expect(first == [.countJump, .request(entryID: 1, frame: 5_000), .silence(Self.n), .slip(blockEnd)])
        #expect(slip?.anchor.time == blockEnd && slip?.total == blockEnd)
        // The first frame is decoded, 300 frames late against the moved plan: it moves by as
        // much, and the music starts on it.
        let moved = slip!.anchor
        let h = moved.time + 6_800_000
        let late = FrameMath.frames(in: 6_800_000, rate: Self.rate)
        let second = planner.span(moved, queue: queue, failed: [], head: .init(entryID: 1, frame: 5_000), buffered: 8192,
                                  audible: false, slip: &slip, fetchPending: false, blockStart: h, offset: 0, frames: Self.n)
        #expect(second == [.slip(FrameMath.duration(ofFrames: late, rate: Self.rate)), .take(Self.n)])
        // Without slipping (a convoy plan) the same late start skips ahead to keep the time.
        var none: BlockPlanner.Slip?
        let convoy = planner.span(moved, queue: queue, failed: [], head: .init(entryID: 1, frame: 5_000), buffered: 8192,
                                  audible: false, slip: &none, fetchPending: false, blockStart: h, offset: 0, frames: Self.n)
        #expect(convoy == [.skip(Int(late)), .take(Self.n)])
    }

    @Test func aSlipStopsAtItsLimit() {
        var planner = BlockPlanner(settings: Self.settings)
        let plan = PlayAnchor(entryID: 1, frame: 0, time: 0, playing: true)
        var slip: BlockPlanner.Slip? = .init(anchor: plan, total: BlockPlanner.slipLimit)
        let steps = planner.span(plan, queue: queue, failed: [], head: .init(entryID: 1, frame: 0), buffered: 8192,
                                 audible: false, slip: &slip, fetchPending: false,
                                 blockStart: 5_000_000, offset: 0, frames: Self.n)
        #expect(steps == [.slipLimitReached, .skip(Int(FrameMath.frames(in: 5_000_000, rate: Self.rate))), .take(Self.n)])
        #expect(slip == nil)
    }
}
