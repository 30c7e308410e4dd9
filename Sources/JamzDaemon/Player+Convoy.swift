import JamzCore
import JamzLibrary
import JamzStore

extension Player {
    /// Convoy mode: the convoy's playlist and its timeline (already in this car's clock) replace
    /// the local queue and anchor. Entries whose track this car does not have stay in the list
    /// (they keep the timeline's arithmetic right) and play as silence in this car only.
    func follow(playlist: [PlaylistEntry], anchor convoyAnchor: TimelineAnchor?, toLocal: Nanos?, seq: Int) async {
        // Track records are looked up once; the catalog read may suspend this actor, so a later
        // plan can overtake an earlier one: only the newest is applied.
        let left = leftCount
        let unknown = Set(playlist.map(\.track)).filter { trackRecords[$0] == nil }
        if !unknown.isEmpty {
            let found = (try? await store.catalog.tracks(unknown)) ?? [:]
            // Only tracks whose file is here are remembered; the others are looked up again.
            let arrived = found.filter { $0.value.cached }
            for (id, rec) in arrived { trackRecords[id] = rec }
            // A track that arrived (copied from another car) may play now.
            for e in playlist where arrived[e.track] != nil { renderer.retry(e.id.queueEntryID) }
        }
        // A plan handed over before the car left, overtaken by the leave during the lookup.
        guard seq > followSeq, left == leftCount else { return }
        followSeq = seq
        let before = (entries, anchor?.entryID, anchor?.playing)
        items = playlist.map { e in
            let record = trackRecords[e.track] ?? TrackRecord(TrackInfo(id: e.track, title: "(not in this car: \(e.track.short))", artist: "", album: "",
                                                                      frames: e.frames, sourceRate: rate, sourceChannels: 2, bytes: 0), importSeq: 0)
            return PlayQueue.Item(entry: QueueEntry(id: e.id.queueEntryID, trackID: e.track, frames: e.frames), track: record)
        }
        if let a = convoyAnchor, let t = toLocal {
            anchor = PlayAnchor(entryID: a.entry.queueEntryID, frame: a.frame, time: t, playing: a.rate != 0)
        } else {
            anchor = nil
        }
        convoyMode = true
        let wasPlaying = renderer.plan?.playing == true
        renderer.setPlan(anchor: anchor, queue: entries)
        // The timeline is handed over again every 100 ms while the DJ plays: only a start or a
        // stop changes when the player's loop is due.
        if wasPlaying != (anchor?.playing == true) { wakeup.ring() }
        if before != (entries, anchor?.entryID, anchor?.playing) { changed.fire() }
    }

    /// Left the convoy: its playlist becomes this car's own queue (the entries whose track this
    /// car has, under the same ids, so the renderer's plan names the same music) and the music
    /// goes on where it is, from now on under this car's own commands. Returns the queue's length.
    func leftConvoy() async -> Int {
        leftCount += 1
        guard convoyMode else { return items.count }
        let kept = items.filter { trackRecords[$0.entry.trackID] != nil }
        let now = clock.now()
        let t = renderer.earliestChange(now: now)
        var next: PlayAnchor?
        if let a = anchor, let c = Timeline.locate(a, in: entries, at: t, rate: rate) {
            if kept.contains(where: { $0.entry.id == c.entryID }) {
                next = PlayAnchor(entryID: c.entryID, frame: c.frame, time: t, playing: a.playing)
            } else if let k = items[(c.index + 1)...].first(where: { trackRecords[$0.entry.trackID] != nil }) {
                // Silent here (a track this car lacks): the next one it has starts.
                next = PlayAnchor(entryID: k.entry.id, frame: 0, time: renderer.earliestStart(now: now), playing: a.playing)
            }
        }
        unstoredQueue = kept.map { ($0.entry.id, $0.track.id) }
        do {
            try await storeLeftQueue()
        } catch {
            store.counters.add("player.queue_save_failures")
            logger.error("left the convoy: cannot store its playlist as this car's queue yet (\(error)); playing it from memory, trying again every 10 s and before an edit")
        }
        convoyMode = false
        items = kept
        anchor = next
        do { try await commit() } catch { logger.error("cannot save player state: \(error)") }
        changed.fire()
        return items.count
    }

    /// Stores the queue a leave kept (`unstoredQueue`), if it is not stored yet; true if it was
    /// stored now.
    /// One store at a time: a caller that finds one running waits for it (an edit's own write
    /// then lands after it, never under a late replace).
    @discardableResult
    func storeLeftQueue() async throws -> Bool {
        if let running = queueStoring { try await running.value; return false }
        guard let q = unstoredQueue else { return false }
        let leave = leftCount
        let task = Task { [store] in try await store.queue.replace(with: q) }
        queueStoring = task
        defer { if queueStoring == task { queueStoring = nil } }
        try await task.value
        if leave == leftCount { unstoredQueue = nil }   // not a later leave's queue
        return true
    }

    /// Tries again to store the queue a leave could not store (before an edit; at saves, every
    /// 10 s at most: a full disk is not hammered twice a second).
    func retryLeftQueue(fromSave: Bool = false) async throws {
        guard unstoredQueue != nil || queueStoring != nil else { return }
        if fromSave {
            let now = clock.now()
            guard now - lastQueueRetry >= 10 * nanosPerSecond else { return }
            lastQueueRetry = now
        }
        if try await storeLeftQueue() { logger.notice("the convoy's playlist is stored as this car's queue now") }
    }

    /// An edit of this car's own queue names the entries it plays: the queue a leave kept must be
    /// stored first, else the edit is refused and nothing changes.
    func queueStoredForEdit() async throws {
        do { try await retryLeftQueue() } catch {
            throw CommandError("this car's queue cannot be stored yet (\(error)); the music goes on: free some space and try again")
        }
    }

    /// Cached tracks matching a query (for a convoy add).
    func findCached(_ query: String) async throws -> [TrackRecord] {
        let found = try await store.catalog.search(query)
        guard !found.isEmpty else { throw CommandError("no track matches \"\(query)\": `jamz import DIR` adds music") }
        let cached = found.filter(\.cached)
        guard !cached.isEmpty else { throw CommandError("\"\(found[0].title)\" is no longer in the cache (evicted): import it again") }
        return cached
    }

    /// How far ahead the DJ schedules a change: the worst recent round trip to a peer, plus how
    /// far ahead of the DAC this renderer writes, plus a margin (50–500 ms).
    func convoyLead(convoy: Convoy) async -> Nanos {
        let now = clock.now()
        var l = LeadEstimator()
        for d in await convoy.recentMaxDelays { l.observe(delay: d, at: now) }
        return l.lead(now: now, renderAhead: max(0, renderer.earliestStart(now: now) - now))
    }

    /// The playlist index the convoy plays `ahead` from now (this car's view).
    func convoyIndex(at ahead: Nanos, convoy: Convoy) async -> Int? {
        guard let a = anchor else { return nil }
        return Timeline.locate(a, in: entries, at: clock.now() + ahead, rate: rate)?.index
    }

    /// Where the player stands now (entry id, frame, playing): what a DJ re-anchors the convoy
    /// on after its own restart.
    func standing() -> (entryID: Int64, frame: Int64, playing: Bool)? {
        let n = now()
        guard let item = n.item else { return nil }
        return (item.entry.id, n.frame, n.state == "playing")
    }
}
