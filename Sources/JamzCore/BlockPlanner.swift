/// The renderer's decisions for one block, as a pure planner: given the plan, what the decoder
/// holds and whether the last block was audible, it says which steps build the block (take,
/// skip, pad, repeat, fade out, ask the decoder for a place, move a late start). The renderer
/// thread only carries the steps out on the decoder and the output, in order, so the decisions
/// can be tested in virtual time with no device and no thread.
///
/// A block is one or two spans: when a new plan takes effect inside the block, the part before
/// its anchor time still follows the previous plan.
public struct BlockPlanner: Sendable {
    public struct Settings: Sendable {
        public var rate: Int
        /// The core's render controller: dead band, jump threshold, rate limit.
        public var corrector: RenderController.Settings
        /// How far ahead of "now" the decoder is asked to start after a jump.
        public var decodeLead: Nanos
        /// Length of the fade-out before a jump.
        public var jumpFade: Nanos
        /// The defaults are the daemon's renderer's.
        public init(rate: Int, corrector: RenderController.Settings, decodeLead: Nanos = Settings.decodeLead,
                    jumpFade: Nanos = Settings.jumpFade) {
            self.rate = rate; self.corrector = corrector; self.decodeLead = decodeLead; self.jumpFade = jumpFade
        }
        /// 80 ms: the decoder's open and seek on a head unit's CPU.
        public static let decodeLead: Nanos = 80_000_000
        /// 5 ms: short enough not to be heard as a gap, long enough not to click.
        public static let jumpFade: Nanos = 5_000_000
    }

    /// What the decoder holds at the renderer's read position.
    public struct Head: Sendable, Equatable {
        public var entryID: Int64
        public var frame: Int64
        /// Why the entry cannot be decoded (file missing, unreadable), if so.
        public var failure: String?
        public init(entryID: Int64, frame: Int64, failure: String? = nil) {
            self.entryID = entryID; self.frame = frame; self.failure = failure
        }
    }

    /// A plan that may still move its start later (its music was not decoded in time), and by
    /// how much it has moved so far.
    public struct Slip: Sendable, Equatable {
        public var anchor: PlayAnchor
        public var total: Nanos
        public init(anchor: PlayAnchor, total: Nanos = 0) { self.anchor = anchor; self.total = total }
    }

    public enum Step: Sendable, Equatable {
        /// Decoded frames, at the current gain.
        case take(Int)
        /// Decoded frames dropped unheard.
        case skip(Int)
        /// The last frame written, again.
        case repeatLast(Int)
        case silence(Int)
        /// If the last block was audible, a fade-out over the upcoming decoded frames without
        /// taking them (a pause resumes exactly where it stopped); silence for the rest.
        case fadeOut(Int)
        /// Send the decoder to this place.
        case request(entryID: Int64, frame: Int64)
        /// The decoder cannot play this entry: drop what it holds and report it.
        case entryFailed(Int64, reason: String)
        /// Move the slip plan's start later by this much.
        case slip(Nanos)
        /// The slip plan moved as far as it may: it keeps its time from now on.
        case slipLimitReached
        case countJump
        case countRepeated(Int)
        case countDropped(Int)
    }

    /// A start slips by at most this much in all; then the plan keeps its time: a decoder that
    /// never delivers must not hold the music at its first frame.
    public static let slipLimit: Nanos = 10 * nanosPerSecond

    public let settings: Settings
    public private(set) var corrector: RenderController
    /// The last place the decoder was sent to, and when.
    public private(set) var lastRequest: (entryID: Int64, frame: Int64, at: Nanos)?

    public init(settings: Settings) {
        self.settings = settings
        self.corrector = RenderController(settings: settings.corrector)
    }

    private var rate: Int { settings.rate }
    private var leadFrames: Int64 { FrameMath.frames(in: settings.decodeLead, rate: rate) }

    /// The decoder was sent to `entryID`/`frame` at `at` (every `.request` step, and a new
    /// plan's first place).
    public mutating func requested(entryID: Int64, frame: Int64, at: Nanos) {
        lastRequest = (entryID, frame, at)
    }

    /// The steps for `frames` frames of `plan`, after `offset` frames already in the block that
    /// starts being heard at `h`.
    /// - `head`: what the decoder holds; `buffered`: how many frames it holds decoded.
    /// - `audible`: the block so far ends in music (a fade-out is due before silence).
    /// - `slip`: the plan, while its start may move later (updated when it does).
    /// - `fetchPending`: the decoder is sent to the plan's place after this block.
    public mutating func span(_ plan: PlayAnchor?, queue q: [QueueEntry], failed: Set<Int64>,
                              head: Head?, buffered: Int, audible: Bool, slip: inout Slip?, fetchPending: Bool,
                              blockStart h: Nanos, offset: Int, frames n: Int) -> [Step] {
        guard n > 0 else { return [] }
        let t = h + FrameMath.duration(ofFrames: Int64(offset), rate: rate)
        var want = plan.flatMap { $0.playing ? Timeline.locate($0, in: q, at: t, rate: rate) : nil }
        if let w = want, failed.contains(w.entryID) { want = nil }
        guard let want else { return [.fadeOut(n)] }
        let spanEnd = h + FrameMath.duration(ofFrames: Int64(offset + n), rate: rate)
        guard let head else {
            var steps = requestIfStale(want: want, slipping: slip != nil, at: h)
            if !audible, slip != nil {
                // Nothing decoded yet: silence, and the plan's first frame just after it.
                steps.append(.silence(n))
                steps += slipStart(&slip, want: want, firstFrameAt: spanEnd).steps
                return steps
            }
            return steps + [.fadeOut(n)]
        }
        if let failure = head.failure {
            return [.entryFailed(head.entryID, reason: failure), .fadeOut(n)]
        }
        // The error in frames, also when the decoder and the timeline stand on either side of a
        // track boundary (the decoder's stream runs gapless from one entry into the next).
        let error: Int64
        if head.entryID == want.entryID {
            error = head.frame - want.frame
        } else if want.index > 0, q[want.index - 1].id == head.entryID {
            error = head.frame - q[want.index - 1].frames - want.frame
        } else if want.index + 1 < q.count, q[want.index + 1].id == head.entryID {
            error = head.frame + q[want.index].frames - want.frame
        } else {
            return jump(to: want, at: h, frames: n)
        }
        var steps: [Step] = []
        if !audible, let s = slip {
            if head.entryID == s.anchor.entryID && head.frame == s.anchor.frame {
                // The decoder holds the plan's first frame, late (error < 0): the plan moves later
                // by as much, and its music starts here.
                if error < 0 {
                    let (moved, ok) = slipStart(&slip, want: want, late: -error)
                    steps += moved
                    if ok { return steps + [.take(n)] }
                }
            } else if fetchPending {
                // The decoder still holds what it had before (it is sent to the plan's place
                // after this block).
                return [.silence(n)] + slipStart(&slip, want: want, firstFrameAt: spanEnd).steps
            }
        }
        if !audible {
            // Starting from silence: line up exactly, by waiting in silence or skipping ahead.
            return steps + align(error: error, want: want, buffered: buffered, at: h, frames: n)
        }
        switch corrector.decide(error: Double(error), blockFrames: n) {
        case .none:
            return steps + [.take(n)]
        case .adjust(let k):
            let fix: [Step] = k > 0 ? [.countRepeated(k), .repeatLast(k)] : [.countDropped(-k), .skip(-k)]
            return steps + [.take(n / 2)] + fix + [.take(n - n / 2)]
        case .jump:
            // Audible and far off: fade out over a few ms, then line up from silence.
            let fade = min(n, Int(FrameMath.frames(in: settings.jumpFade, rate: rate)))
            steps += [.countJump, .fadeOut(fade)]
            guard fade < n else { return steps }
            // The fade peeked at the decoded music without taking it: the timeline moved on by
            // the fade while the decoder did not.
            var later = want
            later.frame += Int64(fade)
            return steps + align(error: error - Int64(fade), want: later, buffered: buffered, at: h, frames: n - fade)
        }
    }

    /// Silent now: start the decoded music exactly on the timeline. Music that starts a little
    /// later is waited for in silence; music that is behind by less than what is decoded is
    /// skipped; anything else asks the decoder for the right place.
    private mutating func align(error: Int64, want: Cursor, buffered: Int, at h: Nanos, frames n: Int) -> [Step] {
        if error >= 0 && error <= FrameMath.frames(in: settings.decodeLead * 3, rate: rate) {
            let pad = Int(min(Int64(n), error))
            return pad < n ? [.silence(pad), .take(n - pad)] : [.silence(pad)]
        } else if error < 0 && Int(-error) <= buffered {
            return [.skip(Int(-error)), .take(n)]
        }
        return jump(to: want, at: h, frames: n)
    }

    /// Far from where we should be: fade out on what the decoder still holds, then send it to
    /// the right place (which empties it).
    private mutating func jump(to want: Cursor, at h: Nanos, frames n: Int) -> [Step] {
        [.fadeOut(n), request(want.entryID, want.frame + leadFrames, at: h)]
    }

    private mutating func request(_ entryID: Int64, _ frame: Int64, at h: Nanos) -> Step {
        requested(entryID: entryID, frame: frame, at: h)
        return .request(entryID: entryID, frame: frame)
    }

    /// Nothing decoded yet: ask again only when no request for this place is under way. When
    /// its music arrives late, the renderer skips ahead to stay on the timeline; it asks again
    /// only if nothing came for 2 s. A start that slips waits for its own frame (a slow open or
    /// seek is not started over every 2 s); it asks again, for that frame, only after 5 s.
    private mutating func requestIfStale(want: Cursor, slipping: Bool, at h: Nanos) -> [Step] {
        if let r = lastRequest, r.entryID == want.entryID, h - r.at < (slipping ? 5 : 2) * nanosPerSecond {
            return []
        }
        return [.countJump, request(want.entryID, want.frame + (slipping ? 0 : leadFrames), at: h)]
    }

    private func slipStart(_ slip: inout Slip?, want: Cursor, firstFrameAt t: Nanos) -> (steps: [Step], ok: Bool) {
        move(&slip, want: want) { a in max(0, t - a.time) }
    }

    private func slipStart(_ slip: inout Slip?, want: Cursor, late frames: Int64) -> (steps: [Step], ok: Bool) {
        move(&slip, want: want) { _ in FrameMath.duration(ofFrames: frames, rate: rate) }
    }

    /// Moves the start of the slip plan later. Only a plan that plays and starts on `want`'s
    /// entry; not once the limit is reached (then the plan keeps its time).
    private func move(_ slip: inout Slip?, want: Cursor, by: (PlayAnchor) -> Nanos) -> (steps: [Step], ok: Bool) {
        guard var s = slip, s.anchor.playing, s.anchor.entryID == want.entryID else { return ([], false) }
        if s.total >= Self.slipLimit {
            slip = nil
            return ([.slipLimitReached], false)
        }
        let moved = by(s.anchor)
        guard moved > 0 else { return ([], true) }
        s.anchor.time += moved
        s.total += moved
        slip = s
        return ([.slip(moved)], true)
    }
}
