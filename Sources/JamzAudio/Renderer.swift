import Foundation
import JamzCore
import Logging

/// The renderer thread: writes the timeline to the output block by block, knowing for each block
/// the instant its first frame will be heard, and keeps the frames it writes on the timeline
/// (pad or skip exactly at a start, soft single-frame corrections for small errors, a short fade
/// and jump for large ones). It owns the output and runs on its own thread, never on the Swift
/// concurrency pool; the daemon talks to it through `setPlan` and reads `heard(at:)`.
public final class Renderer: @unchecked Sendable {
    // @unchecked: every mutable field shared with other threads is guarded by `lock`; the output,
    // the corrector and the gain ramp are touched only by the renderer thread.

    public struct Settings: Sendable {
        public var format: AudioFormat
        /// Fixed DAC/amplifier latency of the board, added to what the output reports.
        public var boardLatency: Nanos
        /// The core's render controller: dead band, jump threshold, rate limit.
        public var corrector: RenderController.Settings
        /// How far ahead of "now" the decoder is asked to start after a jump.
        public var decodeLead: Nanos
        /// Length of the fade-out before a jump or a stop, and of the fade-in after it.
        public var jumpFade: Nanos
        /// SCHED_FIFO priority of the renderer thread (0: the normal class). It sleeps until each
        /// block is due (a clock-paced sink) or blocks in the device's write: both must wake on
        /// time whatever else the car's CPU is doing.
        public var realtimePriority: Int32 = 20

        public init(format: AudioFormat = AudioFormat(), boardLatency: Nanos = 0,
                    decodeLead: Nanos = 80_000_000, jumpFade: Nanos = 5_000_000) {
            self.format = format
            self.boardLatency = boardLatency
            // 0.5 ms dead band: ALSA's delay and timestamps are that noisy on real devices; the
            // integral term still learns the DAC's drift inside it.
            self.corrector = RenderController.Settings(rate: format.sampleRate, deadbandFrames: Double(format.sampleRate) / 2000)
            self.decodeLead = decodeLead
            self.jumpFade = jumpFade
        }
    }

    /// Counters for status output.
    public struct Stats: Sendable, Equatable, Codable {
        public var jumps = 0
        public var framesRepeated = 0
        public var framesDropped = 0
        public var decodeFailures = 0
        public var blocks = 0
        /// Frames by which late starts were moved later instead of skipping music (`slip` plans).
        public var framesSlipped = 0
    }

    public let settings: Settings
    private let output: any AudioOutput
    private let decoder: DecoderThread
    private let logger: Logger
    private var rate: Int { settings.format.sampleRate }

    private let lock = NSLock()
    /// Signalled (under `lock`) when there is something to do for an idle renderer.
    private let wake = NSCondition()
    private var poked = false   // guarded by `wake`
    private var prefetch: DecoderThread.Start?
    private var anchor: PlayAnchor?
    private var queue: [QueueEntry] = []
    private var previous: (anchor: PlayAnchor?, queue: [QueueEntry])?
    /// The queue as the decoder thread sees it (it looks entries up without the renderer's lock).
    private let queueBox = QueueBox()
    private var heardMap: HeardMap
    private var lastHeard: Nanos?
    private var volumeTarget: Float = 1
    private var fadeTarget: Float = 1
    private var fadeStep: Float = 1
    private var stopping = false
    private var stats = Stats()
    private var failedEntries: Set<Int64> = []
    private var doneWaiters: [@Sendable () -> Void] = []
    private var finished = false

    /// Called on the renderer thread when an entry cannot be decoded (file missing, unreadable).
    public var onEntryFailed: (@Sendable (_ entryID: Int64, _ reason: String) -> Void)? {
        get { lock.lock(); defer { lock.unlock() }; return entryFailedHandler }
        set { lock.lock(); entryFailedHandler = newValue; lock.unlock() }
    }
    private var entryFailedHandler: (@Sendable (Int64, String) -> Void)?

    /// Called on the renderer thread each time a `slip` plan's start is moved later (its music
    /// was not ready on time), with the plan as it now stands: same entry and frame, later time.
    public var onStartSlipped: (@Sendable (PlayAnchor) -> Void)? {
        get { lock.lock(); defer { lock.unlock() }; return slipHandler }
        set { lock.lock(); slipHandler = newValue; lock.unlock() }
    }
    private var slipHandler: (@Sendable (PlayAnchor) -> Void)?
    /// The current plan may still move its start (guarded by lock); `planGeneration` tells a
    /// plan from the one that replaced it.
    private var slipArmed = false
    private var planGeneration = 0
    private var slipTotal: Nanos = 0
    /// A start slips by at most this much in all; then the plan keeps its time (and the renderer
    /// says why): a decoder that never delivers must not hold the music at its first frame.
    static let slipLimit: Nanos = 10 * nanosPerSecond

    public init(settings: Settings, output: any AudioOutput, logger: Logger,
                trackPath: @escaping @Sendable (TrackID) -> String) {
        self.settings = settings
        self.output = output
        self.logger = logger
        self.heardMap = HeardMap(rate: settings.format.sampleRate)
        let queueBox = self.queueBox
        self.decoder = DecoderThread(rate: settings.format.sampleRate, logger: logger,
                                     lookup: { id, after in queueBox.entry(id, after: after) }, path: trackPath)
    }

    public var outputLabel: String { output.label }

    // MARK: - Control (any thread)

    /// Opens the output and starts the decoder and renderer threads. `ready` is called once the
    /// output is open (success) or failed to open (error).
    public func start(ready: @escaping @Sendable ((any Error)?) -> Void) {
        decoder.start()
        DeviceThread.start("jamz-renderer") { [self] in
            if settings.realtimePriority > 0 {
                if let why = DeviceThread.makeRealtime(priority: settings.realtimePriority) {
                    logger.notice("renderer thread stays in the normal scheduling class (real-time priority \(settings.realtimePriority) refused: \(why)); its wake-ups may be late under load")
                } else {
                    logger.info("renderer thread at real-time priority \(settings.realtimePriority) (SCHED_FIFO)")
                }
            }
            do {
                try output.open(format: settings.format)
            } catch {
                ready(error)
                finish()
                return
            }
            ready(nil)
            run()
        }
    }

    /// The new timeline and the queue it walks. Entries may be added or removed: whatever the
    /// renderer already holds that no longer fits is corrected on the next block.
    ///
    /// `slip`: the plan is this car's alone (no convoy keeps to it). When its music starts from
    /// silence and is not decoded in time (a slow start-up, a loaded CPU), the start is moved
    /// later, to the frame, instead of skipping ahead to keep the time: a resume or a play starts
    /// on the frame asked. `onStartSlipped` reports the moved plan. A convoy timeline never slips.
    public func setPlan(anchor: PlayAnchor?, queue: [QueueEntry], slip: Bool = false) {
        lock.lock()
        planGeneration &+= 1
        if !slip { slipArmed = false }
        // Until the new anchor's time comes, the old plan still holds, unless the music jumps or
        // starts (a seek, a skip, a start, a resume): then the decoder is sent to the new place at
        // once and the moments until the anchor time are silent, so the music starts on its frame.
        let old = self.anchor.flatMap { a in anchor.flatMap { Timeline.locate(a, in: self.queue, at: $0.time, rate: rate) } }
        let new = anchor.flatMap { a in a.playing ? Timeline.locate(a, in: queue, at: a.time, rate: rate) : nil }
        // A plan that moves the music by less than the jump threshold (a convoy timeline whose
        // clock conversion was refined) is the same music: the corrector closes the gap softly.
        let small = old.map { o in new.map { $0.entryID == o.entryID && Double(abs($0.frame - o.frame)) <= settings.corrector.jumpFrames } ?? false } ?? false
        if let new, self.anchor?.playing != true || !small {
            prefetch = DecoderThread.Start(entryID: new.entryID, frame: new.frame)
            previous = nil
            slipArmed = slip
            slipTotal = 0
        } else if let current = self.anchor, let end = heardMap.end, current.time > end {
            // The plan being replaced never started: what is heard until then is still the one
            // before it (or silence).
        } else {
            previous = (self.anchor, self.queue)
        }
        self.anchor = anchor
        self.queue = queue
        queueBox.set(queue)
        failedEntries = failedEntries.filter { id in queue.contains { $0.id == id } }
        // Asked for a new place in an entry that failed: try again (not when the same plan is
        // merely handed over again, as a convoy follower does every 100 ms).
        if let a = anchor, let n = new, n.entryID == a.entryID, !small { failedEntries.remove(a.entryID) }
        lock.unlock()
        poke()
        decoder.queueChanged()
    }

    /// An entry that failed (its file was missing) may play now: try it again when it comes.
    public func retry(_ entryID: Int64) {
        lock.lock(); failedEntries.remove(entryID); lock.unlock()
    }

    /// The plan as it stands now (a slip plan's time moves as its start slips).
    public var plan: PlayAnchor? {
        lock.lock(); defer { lock.unlock() }
        return anchor
    }

    /// Which track frame is heard at time `t` (nil: silence).
    public func heard(at t: Nanos) -> HeardMap.Heard? {
        lock.lock(); defer { lock.unlock() }
        return heardMap.heard(at: t)
    }

    /// The earliest instant a change of plan can be heard (the next block not yet decided).
    public func earliestChange(now: Nanos) -> Nanos {
        lock.lock(); defer { lock.unlock() }
        let block = FrameMath.duration(ofFrames: Int64(output.blockFrames), rate: rate)
        return max(now + 2 * block, (heardMap.end ?? now) + block)
    }

    /// The earliest instant music at a new place (a start, a seek, a skip) can be heard from its
    /// first frame: the earliest change plus time for the decoder to open and seek.
    public func earliestStart(now: Nanos) -> Nanos {
        earliestChange(now: now) + settings.decodeLead / 2
    }

    /// Software volume, 0...1 (perceptual: the gain is the square), ramped over a few ms.
    public func setVolume(_ v: Double) {
        lock.lock(); volumeTarget = Float(max(0, min(1, v)) * max(0, min(1, v))); lock.unlock()
    }

    /// Ramps the fade gain from `from` (nil: where it is) to `to` over `over` nanoseconds.
    public func fade(from: Float? = nil, to: Float, over: Nanos) {
        lock.lock()
        if let from { fadeGain = from }
        fadeTarget = to
        let frames = max(1, FrameMath.frames(in: over, rate: rate))
        fadeStep = abs(to - fadeGain) / Float(frames)
        if fadeStep == 0 { fadeStep = 1 }
        lock.unlock()
    }

    /// Fades out over `over`, then stops the threads and closes the output; `done` is called
    /// when the output is closed.
    public func stop(fadeOut over: Nanos, done: @escaping @Sendable () -> Void) {
        fade(to: 0, over: over)
        lock.lock()
        if finished { lock.unlock(); done(); return }
        stopping = true
        doneWaiters.append(done)
        lock.unlock()
        poke()
    }

    /// Counts the renderer thread's turns: a block written, or a wake from idle. It stops
    /// moving when the thread is stuck (e.g. in a write the output never finishes), or when it
    /// sleeps with nothing to play (`isParked`): the daemon's systemd watchdog feeds on both.
    public var heartbeat: Int {
        lock.lock(); defer { lock.unlock() }
        return beats
    }
    private var beats = 0                  // guarded by lock

    /// The thread sleeps with nothing to play, until a new plan or a stop wakes it.
    public var isParked: Bool {
        lock.lock(); defer { lock.unlock() }
        return parked
    }
    private var parked = false             // guarded by lock

    public var currentStats: Stats {
        lock.lock(); defer { lock.unlock() }
        var s = stats
        s.decodeFailures = decoder.decodeErrorCount
        return s
    }

    // MARK: - The renderer thread

    private var fadeGain: Float = 1        // guarded by lock for writers, read by the thread under lock
    private var volumeGain: Float = 1      // renderer thread only
    private var wasAudible = false         // renderer thread only
    private var slipping: Int?             // renderer thread only: the slip plan's generation, this block
    private var slipHeard = false          // renderer thread only: music of the slip plan taken, this block
    private var fetchPending = false       // renderer thread only: the decoder is sent to a new place after this block
    private var corrector: RenderController!
    private var predicted: Nanos?
    private var lastRequest: (start: DecoderThread.Start, at: Nanos)?
    private var block: [Int16] = []
    private var pieces: [HeardSegment] = []

    private func finish() {
        lock.lock()
        finished = true
        let waiters = doneWaiters
        doneWaiters = []
        lock.unlock()
        decoder.stop()
        waiters.forEach { $0() }
    }

    private func run() {
        corrector = RenderController(settings: settings.corrector)
        block.reserveCapacity(output.blockFrames * 4)
        while true {
            lock.lock()
            let quit = stopping && (fadeGain <= 0 || !wasAudible)
            beats &+= 1
            lock.unlock()
            if quit { break }
            do {
                if isIdle() {
                    // Nothing to play: let the output run dry and sleep until a new plan (or a
                    // stop) pokes: no timed wake-ups while paused.
                    output.idle()
                    predicted = nil
                    lock.lock(); parked = true; lock.unlock()
                    wake.lock()
                    while !poked { wake.wait() }
                    poked = false
                    wake.unlock()
                    lock.lock(); parked = false; lock.unlock()
                    continue
                }
                try renderOneBlock()
            } catch {
                logger.error("audio output failed: \(error); retrying in 1 s")
                Thread.sleep(forTimeInterval: 1)
                predicted = nil
            }
        }
        output.close()
        finish()
    }

    private func poke() {
        wake.lock(); poked = true; wake.signal(); wake.unlock()
    }

    /// Silent, and nothing to play now or within the next half second.
    private func isIdle() -> Bool {
        guard !wasAudible else { return false }
        lock.lock()
        let a = anchor, q = queue, p = prefetch
        lock.unlock()
        if p != nil { return false }
        guard let a, a.playing else { return true }
        guard let t = try? output.nextFrameHeardAt() else { return false }
        return Timeline.locate(a, in: q, at: max(t, a.time), rate: rate) == nil
    }

    /// When the next block will be heard: the output's report, smoothed against the prediction
    /// from the previous block so that measurement noise does not move the music.
    private func nextHeard() throws -> Nanos {
        let measured = try output.nextFrameHeardAt() + settings.boardLatency
        guard let p = predicted else { return measured }
        let d = measured - p
        if abs(d) > 20_000_000 { return measured }   // an underrun or a restart: believe the device
        return p + d / 16
    }

    private func renderOneBlock() throws {
        let h = try nextHeard()
        let n = output.blockFrames
        lock.lock()
        let plan = anchor
        let q = queue
        let before = previous
        let failed = failedEntries
        let fetch = prefetch
        prefetch = nil
        let generation = planGeneration
        slipping = slipArmed ? generation : nil
        fetchPending = fetch != nil
        slipHeard = false
        lock.unlock()

        block.removeAll(keepingCapacity: true)
        pieces.removeAll(keepingCapacity: true)

        // A new plan takes effect at its anchor time, to the frame: the part of the block before
        // it still follows the previous plan.
        let end = h + FrameMath.duration(ofFrames: Int64(n), rate: rate)
        if let a = plan, a.time > h {
            let k = a.time >= end ? n : Int(FrameMath.frames(in: a.time - h, rate: rate))
            let wasSlipping = slipping
            slipping = nil
            renderSpan(before?.anchor, before?.queue ?? [], failed: failed, blockStart: h, frames: k)
            slipping = wasSlipping
            renderSpan(plan, q, failed: failed, blockStart: h, frames: n - k)
        } else {
            renderSpan(plan, q, failed: failed, blockStart: h, frames: n)
        }
        // The slip plan is heard: from now on it keeps its time.
        if slipping != nil && slipHeard {
            lock.lock(); if planGeneration == generation { slipArmed = false }; lock.unlock()
        }
        slipping = nil
        // Send the decoder to a new plan's place only now: this block faded out on what it held.
        if let fetch { request(fetch, at: h) }
        try emit(at: h)
    }

    /// Renders `frames` frames of `plan` at the end of the block being built.
    private func renderSpan(_ plan: PlayAnchor?, _ q: [QueueEntry], failed: Set<Int64>, blockStart h: Nanos, frames n: Int) {
        guard n > 0 else { return }
        let t = h + FrameMath.duration(ofFrames: Int64(blockFrames), rate: rate)
        var want = plan.flatMap { $0.playing ? Timeline.locate($0, in: q, at: t, rate: rate) : nil }
        if let w = want, failed.contains(w.entryID) { want = nil }
        if let w = want {
            renderPlaying(want: w, in: q, at: h, frames: n)
        } else {
            fadeOutThenSilence(at: h, frames: n)
        }
    }

    private func renderPlaying(want: Cursor, in q: [QueueEntry], at h: Nanos, frames n: Int) {
        // What does the decoder hold for us?
        let head: (entryID: Int64, frame: Int64, failure: String?)? = decoder.withHead { c in
            c.map { ($0.entryID, $0.headFrame, $0.failure) }
        }
        guard let head else {
            requestIfStale(want: want, at: h)
            if !wasAudible, slipping != nil {
                // Nothing decoded yet.
                silenceThenSlip(want: want, at: h, frames: n)
                return
            }
            fadeOutThenSilence(at: h, frames: n)
            return
        }
        if let failure = head.failure {
            decoder.withHead { $0 = nil }
            lock.lock(); failedEntries.insert(head.entryID); lock.unlock()
            onEntryFailed?(head.entryID, failure)
            fadeOutThenSilence(at: h, frames: n)
            return
        }
        // The error in frames, also when the decoder and the timeline stand on either side of a
        // track boundary (the decoder's stream runs gapless from one entry into the next).
        var error: Int64
        if head.entryID == want.entryID {
            error = head.frame - want.frame
        } else if want.index > 0, q[want.index - 1].id == head.entryID {
            error = head.frame - q[want.index - 1].frames - want.frame
        } else if want.index + 1 < q.count, q[want.index + 1].id == head.entryID {
            error = head.frame + q[want.index].frames - want.frame
        } else {
            jump(to: want, at: h, frames: n)
            return
        }
        if !wasAudible, slipping != nil, let first = slipFirst() {
            if head.entryID == first.entryID && head.frame == first.frame {
                // The decoder holds the plan's first frame, late (error < 0): the plan moves later
                // by as much, and its music starts here.
                if error < 0, slipStart(to: want, .late(frames: -error)) {
                    take(frames: n, at: h)
                    return
                }
            } else if fetchPending {
                // The decoder still holds what it had before (it is sent to the plan's place
                // after this block).
                silenceThenSlip(want: want, at: h, frames: n)
                return
            }
        }
        if !wasAudible {
            // Starting from silence: line up exactly, by waiting in silence or skipping ahead.
            alignFromSilence(error: error, want: want, at: h, frames: n)
            return
        }
        switch corrector.decide(error: Double(error), blockFrames: n) {
        case .none:
            take(frames: n, at: h)
        case .adjust(let k):
            take(frames: n / 2, at: h)
            if k > 0 {
                count { $0.framesRepeated += k }
                repeatLastFrame(k, at: h)
            } else {
                count { $0.framesDropped += -k }
                skip(frames: -k)
            }
            take(frames: n - n / 2, at: h)
        case .jump:
            // Audible and far off: fade out over a few ms, then line up from silence.
            count { $0.jumps += 1 }
            let fadeFrames = min(n, Int(FrameMath.frames(in: settings.jumpFade, rate: rate)))
            fadeOutThenSilence(at: h, frames: fadeFrames)
            if fadeFrames < n {
                // The fade peeked at the decoded music without taking it: the timeline moved on
                // by the fade while the decoder did not.
                var later = want
                later.frame += Int64(fadeFrames)
                alignFromSilence(error: error - Int64(fadeFrames), want: later, at: h, frames: n - fadeFrames)
            }
        }
    }

    /// Silent now: start the decoded music exactly on the timeline. Music that starts a little
    /// later is waited for in silence; music that is behind by less than what is decoded is
    /// skipped; anything else asks the decoder for the right place.
    private func alignFromSilence(error: Int64, want: Cursor, at h: Nanos, frames n: Int) {
        let leadFrames = FrameMath.frames(in: settings.decodeLead * 3, rate: rate)
        if error >= 0 && error <= leadFrames {
            let pad = Int(min(Int64(n), error))
            silence(frames: pad, at: h)
            if pad < n { take(frames: n - pad, at: h) }
        } else if error < 0 && Int(-error) <= decoder.buffered {
            skip(frames: Int(-error))
            take(frames: n, at: h)
        } else {
            jump(to: want, at: h, frames: n)
        }
    }

    /// The slip plan's first frame (entry, frame), while it may slip.
    private func slipFirst() -> (entryID: Int64, frame: Int64)? {
        lock.lock(); defer { lock.unlock() }
        guard let g = slipping, g == planGeneration, slipArmed, let a = anchor else { return nil }
        return (a.entryID, a.frame)
    }

    /// Silence for the rest of the block, and the slip plan's first frame just after it.
    private func silenceThenSlip(want: Cursor, at h: Nanos, frames n: Int) {
        silence(frames: n, at: h)
        slipStart(to: want, .firstFrameAt(h + FrameMath.duration(ofFrames: Int64(blockFrames), rate: rate)))
    }

    private enum Slip {
        /// The plan's first frame is to be heard at this instant.
        case firstFrameAt(Nanos)
        /// The decoder holds the plan's first frame this many frames after the plan wants it.
        case late(frames: Int64)
    }

    /// Moves the start of the slip plan later. Only while nothing of the plan has been heard,
    /// only a plan that starts on `want`'s entry. False when the plan changed meanwhile, or
    /// the slip limit is reached.
    @discardableResult
    private func slipStart(to want: Cursor, _ how: Slip) -> Bool {
        lock.lock()
        guard let g = slipping, g == planGeneration, slipArmed, var a = anchor, a.playing, a.entryID == want.entryID else {
            lock.unlock(); return false
        }
        if slipTotal >= Self.slipLimit {
            slipArmed = false
            lock.unlock()
            slipping = nil
            logger.warning("the music was not decoded within \(Self.slipLimit / nanosPerSecond) s of its start: it keeps its time from now on")
            return false
        }
        let moved: Nanos
        switch how {
        case .firstFrameAt(let t): moved = max(0, t - a.time)
        case .late(let frames): moved = FrameMath.duration(ofFrames: frames, rate: rate)
        }
        guard moved > 0 else { lock.unlock(); return true }
        a.time += moved
        anchor = a
        slipTotal += moved
        stats.framesSlipped += Int(FrameMath.frames(in: moved, rate: rate))
        let handler = slipHandler
        lock.unlock()
        handler?(a)
        return true
    }

    /// Far from where we should be: fade out and ask the decoder for the right place.
    private func jump(to want: Cursor, at h: Nanos, frames n: Int) {
        // Fade out on what the decoder still holds, then send it elsewhere (which empties it).
        fadeOutThenSilence(at: h, frames: n)
        let leadFrames = FrameMath.frames(in: settings.decodeLead, rate: rate)
        request(DecoderThread.Start(entryID: want.entryID, frame: want.frame + leadFrames), at: h)
    }

    private func request(_ s: DecoderThread.Start, at h: Nanos) {
        decoder.request(s)
        lastRequest = (s, h)
    }

    /// Nothing decoded yet: ask again only when no request for this place is under way.
    private func requestIfStale(want: Cursor, at h: Nanos) {
        let leadFrames = FrameMath.frames(in: settings.decodeLead, rate: rate)
        // A request for this entry is under way: when its music arrives late, the renderer skips
        // ahead to stay on the timeline. Ask again only if nothing came for two seconds.
        // A start that slips waits for its own frame (a slow open or seek is not started over
        // every 2 s); it asks again, for that frame, only after 5 s.
        let slips = slipping != nil
        if let r = lastRequest, r.start.entryID == want.entryID, h - r.at < (slips ? 5 : 2) * nanosPerSecond {
            return
        }
        count { $0.jumps += 1 }
        request(DecoderThread.Start(entryID: want.entryID, frame: want.frame + (slips ? 0 : leadFrames)), at: h)
    }

    // MARK: building the block

    private var blockFrames: Int { block.count / 2 }

    private func startAudio() {
        if !wasAudible {
            volumeGain = volumeTargetNow()
            // A short fade-in, unless a slower fade (a resume) is already under way.
            lock.lock()
            if !stopping && fadeGain == fadeTarget && fadeTarget > 0 {
                fadeGain = 0
                fadeStep = fadeTarget / Float(max(1, FrameMath.frames(in: settings.jumpFade, rate: rate)))
            }
            lock.unlock()
        }
    }

    private func gainRamp() -> (fade: Float, target: Float, step: Float, volume: Float) {
        lock.lock(); defer { lock.unlock() }
        return (fadeGain, fadeTarget, fadeStep, volumeTarget)
    }

    private func count(_ change: (inout Stats) -> Void) {
        lock.lock(); change(&stats); lock.unlock()
    }

    private func volumeTargetNow() -> Float { lock.lock(); defer { lock.unlock() }; return volumeTarget }

    private func storeFade(_ g: Float) { lock.lock(); fadeGain = g; lock.unlock() }

    /// Copies up to `frames` frames from the decoder into the block, with gain.
    private func take(frames: Int, at h: Nanos) {
        var need = frames
        if !wasAudible { startAudio() }
        var (fade, target, step, volTarget) = gainRamp()
        var vol = volumeGain
        let volStep: Float = 1.0 / Float(rate / 100)   // full-scale volume change in 10 ms
        while need > 0 {
            let got: Int = decoder.withHead { c in
                guard var chunk = c, chunk.failure == nil, chunk.remaining > 0 else { return 0 }
                let k = min(need, chunk.remaining)
                let start = block.count
                pieces.append(HeardSegment(start: h + FrameMath.duration(ofFrames: Int64(start / 2), rate: rate), count: k,
                                           entryID: chunk.entryID, trackID: chunk.trackID, firstFrame: chunk.headFrame))
                block.append(contentsOf: repeatElement(0, count: k * 2))
                let from = chunk.consumed * 2
                block.withUnsafeMutableBufferPointer { dst in
                    chunk.samples.withUnsafeBufferPointer { src in
                        if fade == target && vol == volTarget {
                            // Steady gain: a plain copy at unity (bit-exact), else one multiply.
                            let g = fade * vol
                            if g == 1 {
                                UnsafeMutableRawPointer(dst.baseAddress! + start)
                                    .copyMemory(from: src.baseAddress! + from, byteCount: k * 4)
                            } else {
                                for i in 0..<(k * 2) { dst[start + i] = Int16(clamping: Int(Float(src[from + i]) * g)) }
                            }
                        } else {
                            // A fade or a volume change in progress: ramp frame by frame.
                            var i = 0
                            while i < k * 2 {
                                if fade != target { fade = fade < target ? min(target, fade + step) : max(target, fade - step) }
                                if vol != volTarget { vol = vol < volTarget ? min(volTarget, vol + volStep) : max(volTarget, vol - volStep) }
                                let g = fade * vol
                                dst[start + i] = Int16(clamping: Int(Float(src[from + i]) * g))
                                dst[start + i + 1] = Int16(clamping: Int(Float(src[from + i + 1]) * g))
                                i += 2
                            }
                        }
                    }
                }
                chunk.consumed += k
                c = chunk
                return k
            }
            if got == 0 { break }
            need -= got
            wasAudible = true
            if slipping != nil { slipHeard = true }
        }
        volumeGain = vol
        storeFade(fade)
        if need > 0 {
            wasAudible = false
            // The decoder fell behind (or the queue ended mid-block): silence for the rest.
            silence(frames: need, at: h)
        }
    }

    private func skip(frames: Int) {
        var left = frames
        while left > 0 {
            let got: Int = decoder.withHead { c in
                guard var chunk = c, chunk.failure == nil, chunk.remaining > 0 else { return 0 }
                let k = min(left, chunk.remaining)
                chunk.consumed += k
                c = chunk
                return k
            }
            if got == 0 { break }
            left -= got
        }
    }

    private func repeatLastFrame(_ k: Int, at h: Nanos) {
        guard block.count >= 2 else { silence(frames: k, at: h); return }
        let l = block[block.count - 2], r = block[block.count - 1]
        for _ in 0..<k { block.append(l); block.append(r) }
        // The repeated frames count as the last piece's (an error of at most k frames, for k/rate s).
        if !pieces.isEmpty { pieces[pieces.count - 1].count += k }
    }

    /// If the last block was audible, fades out over a few ms using the upcoming decoded frames
    /// without consuming them (so a pause resumes exactly where it stopped); then silence.
    private func fadeOutThenSilence(at h: Nanos, frames: Int) {
        var written = 0
        if wasAudible {
            let fadeFrames = min(frames, Int(FrameMath.frames(in: settings.jumpFade, rate: rate)))
            let g0 = gainRamp()
            let gain = g0.fade * volumeGain
            decoder.withHead { c in
                guard let chunk = c, chunk.failure == nil else { return }
                let k = min(fadeFrames, chunk.remaining)
                var i = chunk.consumed * 2
                for j in 0..<k {
                    let g = gain * Float(k - j) / Float(k + 1)
                    block.append(Int16(clamping: Int(Float(chunk.samples[i]) * g)))
                    block.append(Int16(clamping: Int(Float(chunk.samples[i + 1]) * g)))
                    i += 2
                }
                written = k
            }
            wasAudible = false
        }
        silence(frames: frames - written, at: h)
    }

    private func silence(frames: Int, at h: Nanos) {
        guard frames > 0 else { return }
        let start = blockFrames
        block.append(contentsOf: repeatElement(0, count: frames * 2))
        pieces.append(HeardSegment(start: h + FrameMath.duration(ofFrames: Int64(start), rate: rate), count: frames,
                                   entryID: nil, trackID: nil, firstFrame: 0))
    }

    private func emit(at h: Nanos) throws {
        guard !block.isEmpty else { return }
        lock.lock()
        for p in pieces where p.count > 0 || p.entryID != nil { heardMap.record(p) }
        // Close the block: whatever follows starts at its end.
        stats.blocks += 1
        lock.unlock()
        let t0 = SystemClock.raw()
        try block.withUnsafeBufferPointer { try output.write($0) }
        let took = SystemClock.raw() - t0
        if took > 4 * FrameMath.duration(ofFrames: Int64(blockFrames), rate: rate) {
            logger.warning("output write blocked for \(took / 1_000_000) ms (block heard at \(h / 1_000_000) ms, \(blockFrames) frames)")
        }
        predicted = h + FrameMath.duration(ofFrames: Int64(blockFrames), rate: rate)
    }
}

/// The queue shared with the decoder thread, which walks it entry by entry.
final class QueueBox: @unchecked Sendable {
    // @unchecked: `entries` is only touched under `lock`.
    private let lock = NSLock()
    private var entries: [QueueEntry] = []

    func set(_ q: [QueueEntry]) { lock.lock(); entries = q; lock.unlock() }

    /// The entry with this id, or (with `after`) the one following it.
    func entry(_ id: Int64, after: Bool) -> QueueEntry? {
        lock.lock(); defer { lock.unlock() }
        guard let i = entries.firstIndex(where: { $0.id == id }) else { return nil }
        let j = after ? i + 1 : i
        return j < entries.count ? entries[j] : nil
    }
}
