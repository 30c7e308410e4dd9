import Foundation
import GRDB
import JamzAudio
import JamzCore
import JamzLibrary
import JamzStore
import Logging

/// The car's player: the queue, the timeline anchor and the volume, kept in SQLite and handed to
/// the renderer. Every command is turned into a new anchor that takes effect at the earliest
/// instant the renderer can still change (so a command is heard at a known time, not "when the
/// buffer drains"), and every change is saved before it is acknowledged.
public actor Player {
    public struct CommandError: Error, CustomStringConvertible {
        public let description: String
        init(_ s: String) { description = s }
    }

    let store: Store
    let cache: TrackCache
    let renderer: Renderer
    let clock: SystemClock
    let config: DaemonConfig
    let logger: Logger
    var rate: Int { config.sampleRate }

    // Set here and by convoy mode (Player+Convoy.swift).
    var items: [PlayQueue.Item] = []
    var anchor: PlayAnchor?
    /// The convoy's timeline drives the player (the LAN issue); local queue edits are off.
    var convoyMode = false
    var followSeq = 0
    /// Times the car left a convoy (`leftConvoy`): a plan from before a leave is not applied.
    var leftCount = 0
    /// The convoy's playlist kept as this car's queue at a leave, while storing it fails (a full
    /// disk): the music goes on from memory; saves (every 10 s at most) and edits try again.
    var unstoredQueue: [(id: Int64, trackID: String)]?
    var queueStoring: Task<Void, any Error>?
    var lastQueueRetry: Nanos = 0
    var trackRecords: [TrackID: TrackRecord] = [:]
    private var reportedFailures: Set<Int64> = []
    private(set) var volume: Int
    private var lastHeardEntry: Int64?
    private var lastSaved: PlayerRecord?
    /// Paused by ACC off while playing: saved as playing (so the next start resumes) and
    /// played again when ACC comes back within the grace period (Player+Ignition.swift).
    var accHeld = false
    /// Faded to silence by ACC off in a convoy (the convoy's timeline goes on).
    var accMuted = false
    /// Rung when the plan changes: the player's loop (`tick`) looks again at once.
    nonisolated let wakeup = Doorbell()
    /// Fired when the queue or the play state changed (the phone page's live view).
    nonisolated let changed = ChangeSignal()

    init(store: Store, cache: TrackCache, renderer: Renderer, clock: SystemClock, config: DaemonConfig, logger: Logger) {
        self.store = store; self.cache = cache; self.renderer = renderer; self.clock = clock
        self.config = config; self.logger = logger
        self.volume = config.defaultVolume
    }

    var entries: [QueueEntry] { items.map(\.entry) }

    // MARK: start-up and shut-down

    /// Loads the queue and the saved state; a car that was playing when the power went resumes
    /// where it was heard, at a capped volume, fading in.
    func restore() async throws {
        items = try await store.queue.items()
        let saved = try await store.playerState.load()
        if let saved {
            volume = saved.volume
            if let e = saved.entryId, let item = items.first(where: { $0.entry.id == e }) {
                let frame = min(max(0, saved.frame), max(0, item.entry.frames - 1))
                anchor = PlayAnchor(entryID: e, frame: frame, time: renderer.earliestStart(now: clock.now()), playing: saved.playing)
                if saved.playing {
                    volume = min(volume, config.resumeVolumeCap)
                    renderer.fade(from: 0, to: 1, over: Nanos(config.resumeFadeMs) * 1_000_000)
                    logger.info("resuming \"\(item.track.title)\" at \(String(format: "%.2f", Double(frame) / Double(rate))) s, volume \(volume)")
                }
            }
        }
        renderer.setVolume(Double(volume) / 100)
        publish()
        // Best effort: a full disk must not keep the music from starting.
        do { try await save() } catch { logger.error("cannot save player state: \(error)") }
    }

    /// SIGTERM: save where we are, fade out, stop the output.
    func shutdown() async {
        try? await save()
        let fade = Nanos(config.stopFadeMs) * 1_000_000
        let renderer = self.renderer   // not self in the closure: Swift 6.2.3 crashes in IRGen on that (the aarch64 build)
        await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
            renderer.stop(fadeOut: fade) { c.resume() }
        }
        logger.info("stopped; state saved")
    }

    // MARK: what is heard now

    struct Now {
        var state: String
        var index: Int?
        var item: PlayQueue.Item?
        var frame: Int64
        var at: Nanos
    }

    func now() -> Now {
        let t = clock.now()
        guard let a = anchor else { return Now(state: "stopped", index: nil, item: nil, frame: 0, at: t) }
        let q = entries
        // While playing, the position is what the renderer says is leaving the output now.
        if a.playing, let h = renderer.heard(at: t), let i = items.firstIndex(where: { $0.entry.id == h.entryID }) {
            return Now(state: "playing", index: i, item: items[i], frame: h.frame, at: t)
        }
        guard let c = Timeline.locate(a, in: q, at: t, rate: rate) else {
            return Now(state: "stopped", index: nil, item: nil, frame: 0, at: t)
        }
        return Now(state: a.playing ? "playing" : "paused", index: c.index, item: items[c.index], frame: c.frame, at: t)
    }

    /// Where the music is at the earliest instant a change can be heard; `jump`: a change that
    /// sends the decoder elsewhere (it gets time to get there, so the new music starts whole).
    private func cursorAtChange(jump: Bool = true) -> (JamzCore.Cursor?, Nanos) {
        let now = clock.now()
        let t = jump ? renderer.earliestStart(now: now) : renderer.earliestChange(now: now)
        return (anchor.flatMap { Timeline.locate($0, in: entries, at: t, rate: rate) }, t)
    }

    // MARK: commands

    func play(_ n: Int?) async throws -> String {
        guard !items.isEmpty else { throw CommandError("the queue is empty: add tracks with `jamz add WORDS`") }
        let (c, t) = cursorAtChange()
        if let n {
            guard (1...items.count).contains(n) else { throw CommandError("no entry \(n): the queue has \(items.count)") }
            anchor = PlayAnchor(entryID: items[n - 1].entry.id, frame: 0, time: t, playing: true)
        } else if let c {
            if anchor?.playing == true { return "already playing \(describe(c.index))" }
            anchor = PlayAnchor(entryID: c.entryID, frame: c.frame, time: t, playing: true)
        } else {
            anchor = PlayAnchor(entryID: items[0].entry.id, frame: 0, time: t, playing: true)
        }
        if accHeld || accMuted {
            // Played while ACC is off (or as ACC comes back): out of the ACC fade-out.
            accHeld = false; accMuted = false
            renderer.fade(from: 0, to: 1, over: Nanos(config.resumeFadeMs) * 1_000_000)
        }
        try await commit()
        let i = items.firstIndex { $0.entry.id == anchor!.entryID }!
        return "playing \(describe(i)) from \(seconds(anchor!.frame))"
    }

    func pause() async throws -> String {
        let (c, t) = cursorAtChange(jump: false)
        guard let c, let a = anchor, a.playing else { return "already paused" }
        anchor = Timeline.reanchor(a, in: entries, at: t, rate: rate, playing: false)
        try await commit()
        return "paused \(describe(c.index)) at \(seconds(c.frame))"
    }

    func toggle() async throws -> String {
        let (c, _) = cursorAtChange()
        return (anchor?.playing == true && c != nil) ? try await pause() : try await play(nil)
    }

    func next() async throws -> String {
        let (c, t) = cursorAtChange()
        guard let c else { throw CommandError("nothing is playing: `jamz play` starts the queue") }
        guard c.index + 1 < items.count else { throw CommandError("already at the last entry of the queue") }
        anchor = PlayAnchor(entryID: items[c.index + 1].entry.id, frame: 0, time: t, playing: anchor!.playing)
        try await commit()
        return "skipped to \(describe(c.index + 1))"
    }

    func prev() async throws -> String {
        let (c, t) = cursorAtChange()
        guard let c else { throw CommandError("nothing is playing: `jamz play` starts the queue") }
        let target = (c.frame > Int64(3 * rate) || c.index == 0) ? c.index : c.index - 1
        anchor = PlayAnchor(entryID: items[target].entry.id, frame: 0, time: t, playing: anchor!.playing)
        try await commit()
        return target == c.index ? "back to the start of \(describe(target))" : "back to \(describe(target))"
    }

    func seek(_ s: Double) async throws -> String {
        let (c, t) = cursorAtChange()
        guard let c else { throw CommandError("nothing is playing: `jamz play` starts the queue") }
        guard s.isFinite, s >= 0 else { throw CommandError("seek wants seconds ≥ 0, got \(s)") }
        let len = items[c.index].entry.frames
        // Clamp in seconds first: a huge number must not overflow the frame count.
        let last = Double(max(0, len - 1)) / Double(rate)
        let frame = min(Int64((min(s, last) * Double(rate)).rounded()), max(0, len - 1))
        anchor = PlayAnchor(entryID: c.entryID, frame: frame, time: t, playing: anchor!.playing)
        try await commit()
        return "at \(seconds(frame)) of \(describe(c.index))"
    }

    func setVolume(_ v: Int) async throws -> String {
        guard (0...100).contains(v) else { throw CommandError("volume is 0-100, got \(v)") }
        volume = v
        renderer.setVolume(Double(v) / 100)
        try await save()
        return "volume \(v)"
    }

    /// Adds the track with this id (or id prefix), else every cached track matching all the words.
    func add(_ query: String) async throws -> String {
        try await queueStoredForEdit()
        let found = try await store.catalog.search(query)
        guard !found.isEmpty else { throw CommandError("no track matches \"\(query)\": `jamz import DIR` adds music") }
        let cached = found.filter(\.cached)
        if cached.isEmpty {
            store.counters.add("cache.misses", Int64(found.count))
            throw CommandError("\"\(found[0].title)\" is no longer in the cache (evicted): import it again")
        }
        let added = try await store.queue.append(cached)
        try await reloadQueue()
        let names = cached.prefix(3).map { "\"\($0.title)\"" }.joined(separator: ", ")
        return "added \(added.count) track\(added.count == 1 ? "" : "s") (\(names)\(cached.count > 3 ? ", …" : "")); queue has \(items.count)"
    }

    func reloadQueue() async throws {
        items = try await store.queue.items()
        publish()
    }

    /// An entry could not be decoded: count it and go on with the next one. The renderer finds
    /// out while it writes ahead, so the failed entry may be the current one or one still to come.
    func entryFailed(_ entryID: Int64, reason: String) async {
        if convoyMode {
            // The convoy's timeline goes on: this car is silent for that entry and rejoins at the
            // next one (no local skip, which would play other music than the convoy's).
            guard reportedFailures.insert(entryID).inserted else { return }
            store.counters.add("decode.failures")
            if let i = items.firstIndex(where: { $0.entry.id == entryID }) {
                logger.error("cannot play \"\(items[i].track.title)\" in this car: \(reason); silent until the next entry")
            }
            return
        }
        store.counters.add("decode.failures")
        guard let i = items.firstIndex(where: { $0.entry.id == entryID }) else { return }
        logger.error("cannot play \"\(items[i].track.title)\": \(reason); skipping it")
        guard let a = anchor, a.playing else { return }
        let now = clock.now()
        let current = Timeline.locate(a, in: entries, at: now, rate: rate)?.index ?? i
        guard i >= current else { return }
        // Skip from where the failed entry would have started (or as soon as possible).
        var startsAt = now
        if let c = Timeline.locate(a, in: entries, at: now, rate: rate), c.index < i {
            var frames = entries[c.index].frames - c.frame
            for k in (c.index + 1)..<i { frames += entries[k].frames }
            startsAt = now + FrameMath.duration(ofFrames: frames, rate: rate)
        }
        let t = max(startsAt, renderer.earliestStart(now: now))
        anchor = i + 1 < items.count ? PlayAnchor(entryID: items[i + 1].entry.id, frame: 0, time: t, playing: true) : nil
        try? await commit()
    }

    // MARK: persistence

    func commit() async throws {
        publish()
        try await save()
    }

    /// This car's own plan may slip (a late start moves later rather than skipping music); a
    /// convoy's timeline (`follow`) never does.
    private func publish() {
        // A slip the renderer made that is not reported yet: keep it, do not send the old time back.
        if let moved = renderer.plan { startSlipped(moved) }
        slipped = nil
        renderer.setPlan(anchor: anchor, queue: entries, slip: !convoyMode)
        wakeup.ring()
    }

    /// The renderer moved the start of this car's own plan later (its music was not decoded in
    /// time): the anchor follows, so positions, saves and the next command agree with what is
    /// heard. Reports from an older plan, or out of order, change nothing.
    func startSlipped(_ moved: PlayAnchor) {
        guard !convoyMode, let a = anchor, a.playing, moved.playing, a.entryID == moved.entryID, a.frame == moved.frame, a.time < moved.time else { return }
        if slipped == nil { slipped = (a.time, moved.time) } else { slipped!.to = moved.time }
        anchor = moved
    }
    /// A late start in progress: the plan's first time and where it moved (logged once heard).
    private var slipped: (from: Nanos, to: Nanos)?

    /// Saves play state, entry, the frame heard now and the volume (skipped when unchanged).
    /// A change that is acknowledged but not heard yet (a seek, a skip) is saved as where the
    /// music is going, so a power cut right after the answer does not undo it.
    func save(periodic: Bool = false) async throws {
        _ = try? await retryLeftQueue(fromSave: true)   // its failure was logged and counted at the leave
        if let moved = renderer.plan { startSlipped(moved) }
        let n = now()
        var found: PlayerRecord
        if let a = anchor, a.time > n.at, let c = Timeline.locate(a, in: entries, at: a.time, rate: rate) {
            found = PlayerRecord(playing: a.playing, entryId: c.entryID, frame: c.frame, volume: volume)
        } else if n.state == "stopped" {
            found = PlayerRecord(playing: false, entryId: nil, frame: 0, volume: volume)
        } else {
            found = PlayerRecord(playing: n.state == "playing", entryId: n.item?.entry.id, frame: n.frame, volume: volume)
        }
        if accHeld { found.playing = true }
        let rec = found
        guard rec != lastSaved else { return }
        // Every save is fsynced (synchronous = FULL), the periodic ones too: a power cut then
        // loses at most the half second since the last tick (the boot test cuts the power and
        // checks the resume is within 1 s). The cost: one WAL page and an fsync twice a second
        // while playing (≈ 8 KB/s, ≈ 30 MB an hour of driving) on the SD card.
        try await store.playerState.save(rec)
        lastSaved = rec
    }

    /// The watchdog's proof that the actor still answers.
    func isAlive() -> Bool { true }

    /// Twice a second while music is due: saves the position, notices track changes
    /// (least-recently-played order, cache hits) and the end of the queue. Returns when it is due
    /// again, or nil while paused or stopped (a new plan rings `wakeup`).
    func tick() async -> Nanos? {
        // Rung before the cadence's next turn while music plays: keep the cadence.
        if let due = nextTick, clock.now() < due, musicDue { return due }
        let n = now()
        if let s = slipped, renderer.heard(at: n.at) != nil {
            slipped = nil
            logger.info("the music started \(String(format: "%.0f", Double(s.to - s.from) / 1e6)) ms late (decoded late) on the frame asked: nothing skipped")
        }
        if n.state == "stopped", anchor != nil, anchor!.playing {
            logger.info("end of the queue")
            anchor = nil
            publish()
            changed.fire()
        }
        if n.state == "playing", let item = n.item, item.entry.id != lastHeardEntry {
            lastHeardEntry = item.entry.id
            logger.info("now playing \(describe(n.index!))")
            changed.fire()   // the phone page shows the new track (convoy or not)
            store.counters.add("cache.hits")
            try? await store.catalog.markPlayed(item.entry.trackID)
        }
        do { try await save(periodic: true) } catch { logger.error("cannot save player state: \(error)") }
        nextTick = musicDue ? n.at + Player.tickInterval : nil
        return nextTick
    }
    private var nextTick: Nanos?
    /// Music is playing or due to (a late start in progress included).
    private var musicDue: Bool { anchor?.playing == true || slipped != nil }

    /// How often the position is saved while music plays (a power cut loses at most this much).
    static let tickInterval: Nanos = 500_000_000

    // MARK: reports

    func status() async -> StatusReport {
        let n = now()
        var r = StatusReport()
        r.state = n.state
        if let item = n.item {
            r.track = .init(id: item.track.id, title: item.track.title, artist: item.track.artist, album: item.track.album,
                            duration: Double(item.entry.frames) / Double(rate))
        }
        r.queueIndex = n.index.map { $0 + 1 }
        r.positionFrames = n.frame
        r.position = Double(n.frame) / Double(rate)
        r.sampledAt = n.at
        r.volume = volume
        r.queueLength = items.count
        r.output = renderer.outputLabel
        r.sampleRate = rate
        var counters = store.counters.all
        let s = renderer.currentStats
        counters["renderer.jumps"] = Int64(s.jumps)
        counters["renderer.frames_repeated"] = Int64(s.framesRepeated)
        counters["renderer.frames_dropped"] = Int64(s.framesDropped)
        counters["renderer.frames_slipped"] = Int64(s.framesSlipped)
        r.counters = counters
        return r
    }

    func queueReport() -> [QueueItemReport] {
        let cur = now().index
        return items.enumerated().map { i, item in
            var q = QueueItemReport()
            q.index = i + 1
            q.entry = item.entry.id
            q.id = item.track.id
            q.title = item.track.title
            q.artist = item.track.artist
            q.duration = Double(item.entry.frames) / Double(rate)
            q.current = i == cur
            return q
        }
    }

    func describe(_ index: Int) -> String {
        let t = items[index].track
        return "\(index + 1). \"\(t.title)\"" + (t.artist.isEmpty ? "" : " by \(t.artist)")
    }

    func seconds(_ frame: Int64) -> String {
        let s = Double(frame) / Double(rate)
        return String(format: "%d:%05.2f", Int(s) / 60, s.truncatingRemainder(dividingBy: 60))
    }
}
