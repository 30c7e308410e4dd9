import Foundation
import JamzCore
import Logging
import JamzPlatform

/// The renderer thread: writes the timeline to the output block by block, knowing for each block
/// the instant its first frame will be heard, and keeps the frames it writes on the timeline
/// (pad or skip exactly at a start, soft single-frame corrections for small errors, a short fade
/// and jump for large ones). It owns the output and runs on its own thread, never on the Swift
/// concurrency pool; the daemon talks to it through `setPlan` and reads `heard(at:)`.
public final class Renderer: @unchecked Sendable {
    // @unchecked: every mutable field shared with other threads is guarded by `lock`; the output,
    // the planner and the gain ramp are touched only by the renderer thread (Renderer+Thread.swift).

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
        /// Silence with nothing planned after which the output lets its device go
        /// (`AudioOutput.release`): one timed wake-up per pause, then none.
        public var releaseAfter: Nanos = 3 * nanosPerSecond

        public init(format: AudioFormat = AudioFormat(), boardLatency: Nanos = 0,
                    decodeLead: Nanos = BlockPlanner.Settings.decodeLead, jumpFade: Nanos = BlockPlanner.Settings.jumpFade) {
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
    let output: any AudioOutput
    let decoder: DecoderThread
    let logger: Logger
    var rate: Int { settings.format.sampleRate }

    let lock = NSLock()
    /// Signalled (under `lock`) when there is something to do for an idle renderer.
    let wake = NSCondition()
    var poked = false   // guarded by `wake`
    var prefetch: DecoderThread.Start?
    var anchor: PlayAnchor?
    var queue: [QueueEntry] = []
    var previous: (anchor: PlayAnchor?, queue: [QueueEntry])?
    /// The queue as the decoder thread sees it (it looks entries up without the renderer's lock).
    let queueBox = QueueBox()
    var heardMap: HeardMap
    var lastHeard: Nanos?
    var volumeTarget: Float = 1
    var fadeTarget: Float = 1
    var fadeStep: Float = 1
    var stopping = false
    var stats = Stats()
    var failedEntries: Set<Int64> = []
    var doneWaiters: [@Sendable () -> Void] = []
    /// Spoken prompts mixed over the music (Renderer+Prompts.swift).
    var mixer: PromptMixer
    var finished = false

    /// Called on the renderer thread when an entry cannot be decoded (file missing, unreadable).
    public var onEntryFailed: (@Sendable (_ entryID: Int64, _ reason: String) -> Void)? {
        get { lock.lock(); defer { lock.unlock() }; return entryFailedHandler }
        set { lock.lock(); entryFailedHandler = newValue; lock.unlock() }
    }
    var entryFailedHandler: (@Sendable (Int64, String) -> Void)?

    /// Called on the renderer thread each time a `slip` plan's start is moved later (its music
    /// was not ready on time), with the plan as it now stands: same entry and frame, later time.
    public var onStartSlipped: (@Sendable (PlayAnchor) -> Void)? {
        get { lock.lock(); defer { lock.unlock() }; return slipHandler }
        set { lock.lock(); slipHandler = newValue; lock.unlock() }
    }
    var slipHandler: (@Sendable (PlayAnchor) -> Void)?
    /// The current plan may still move its start (guarded by lock); `planGeneration` tells a
    /// plan from the one that replaced it.
    var slipArmed = false
    var planGeneration = 0
    var slipTotal: Nanos = 0
    /// (A start slips by at most `BlockPlanner.slipLimit` in all.)

    public init(settings: Settings, output: any AudioOutput, logger: Logger,
                trackPath: @escaping @Sendable (TrackID) -> String) {
        self.settings = settings
        self.output = output
        self.logger = logger
        self.heardMap = HeardMap(rate: settings.format.sampleRate)
        self.mixer = PromptMixer(rate: settings.format.sampleRate, channels: settings.format.channels)
        self.planner = BlockPlanner(settings: .init(rate: settings.format.sampleRate, corrector: settings.corrector,
                                                    decodeLead: settings.decodeLead, jumpFade: settings.jumpFade))
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
        NamedThread.start("jamz-renderer") { [self] in
            if settings.realtimePriority > 0 {
                if let why = NamedThread.makeRealtime(priority: settings.realtimePriority) {
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
        // The same stopped place handed over again (a convoy follower gets the paused timeline
        // once a second, re-anchored at its "now"): nothing changes, nothing is woken, and the
        // instant the stop was first planned for stays.
        if !slip, anchor?.playing != true, self.anchor?.playing != true, anchor?.entryID == self.anchor?.entryID,
           anchor?.frame == self.anchor?.frame, queue == self.queue {
            lock.unlock()
            return
        }
        let queueChanged = queue != self.queue
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
        // The decoder reads ahead along the queue: only a new queue is news to it.
        if queueChanged { decoder.queueChanged() }
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
    var beats = 0                  // guarded by lock

    /// The thread sleeps with nothing to play, until a new plan or a stop wakes it.
    public var isParked: Bool {
        lock.lock(); defer { lock.unlock() }
        return parked
    }
    var parked = false             // guarded by lock

    public var currentStats: Stats {
        lock.lock(); defer { lock.unlock() }
        var s = stats
        s.decodeFailures = decoder.decodeErrorCount
        return s
    }

    // MARK: - The renderer thread's state

    var fadeGain: Float = 1        // guarded by lock for writers, read by the thread under lock
    var volumeGain: Float = 1      // renderer thread only
    var wasAudible = false         // renderer thread only
    var slipping = false           // renderer thread only: the plan being rendered may still slip
    var slipHeard = false          // renderer thread only: music of the slip plan taken, this block
    var planner: BlockPlanner      // renderer thread only
    var predicted: Nanos?          // renderer thread only
    var block: [Int16] = []        // renderer thread only
    var pieces: [HeardSegment] = []
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
