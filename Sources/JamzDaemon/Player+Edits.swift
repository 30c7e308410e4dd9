import JamzCore

/// `jamz remove N` and `jamz move N M`: the queue's (or, in a convoy, the DJ's playlist's)
/// entries after the one playing. The music is anchored on an entry at or before the one
/// playing and counted forward through the list (`Timeline.locate`), so an edit before the
/// playing entry would move what is heard; an edit of the entry about to start would reach some
/// cars after they began it. Only entries starting more than `editMargin` from now are edited.
extension Player {
    static let editMargin: Nanos = 5 * nanosPerSecond

    /// The first index (from 0) an edit may touch: past the entry playing `editMargin` from
    /// `now`. 0 when nothing is anchored or the list ended before `now` (no edit is heard then);
    /// the list's length (nothing) when it ends within the margin: an edit before the last entry
    /// would move what is heard as it ends.
    static func firstEditable(anchor: PlayAnchor?, entries: [QueueEntry], now: Nanos, rate: Int) -> Int {
        guard let a = anchor else { return 0 }
        if let c = Timeline.locate(a, in: entries, at: now + editMargin, rate: rate) { return c.index + 1 }
        return Timeline.locate(a, in: entries, at: now, rate: rate) == nil ? 0 : entries.count
    }

    /// Throws unless places `places` (from 1) are in a list of `count` and all at or after
    /// `first` (from 0).
    static func checkEditable(_ places: [Int], count: Int, first: Int, verb: String) throws {
        for p in places {
            guard (1...max(1, count)).contains(p), count > 0 else {
                throw CommandError(count == 0 ? "the list is empty" : "no place \(p): the list has \(count) entries")
            }
            guard p - 1 >= first else {
                throw CommandError("cannot \(verb) place \(p): it is playing or starts within \(editMargin / nanosPerSecond) s (only places \(first + 1)… can change)")
            }
        }
    }

    /// The entry before which entry `index` lands at place `to` (from 1): the `after` of a move.
    static func after<ID: Equatable>(_ ids: [ID], moving index: Int, to place: Int) -> ID? {
        let without = ids.enumerated().filter { $0.offset != index }.map(\.element)
        return place >= 2 ? without[min(place - 2, without.count - 1)] : nil
    }

    /// The list as this player has it and the first index an edit may touch (in a convoy: the
    /// convoy's playlist as last handed over, `Convoy.edit(places:…)`).
    func editView() -> (ids: [Int64], first: Int) {
        (entries.map(\.id), Self.firstEditable(anchor: anchor, entries: entries, now: clock.now(), rate: rate))
    }

    // MARK: this car's own queue (not in a convoy)

    func remove(_ n: Int) async throws -> String {
        try await queueStoredForEdit()   // first: it may wait, and the checks below must follow it
        guard !convoyMode else { throw CommandError("this car plays the convoy's playlist: edit it through the convoy") }
        try Self.checkEditable([n], count: items.count, first: editView().first, verb: "remove")
        let what = describe(n - 1)
        try await store.queue.remove(entryID: items[n - 1].entry.id)
        try await reloadQueue()
        return "removed \(what); queue has \(items.count)"
    }

    func move(_ n: Int, to m: Int) async throws -> String {
        try await queueStoredForEdit()   // first: it may wait, and the checks below must follow it
        guard !convoyMode else { throw CommandError("this car plays the convoy's playlist: edit it through the convoy") }
        try Self.checkEditable([n, m], count: items.count, first: editView().first, verb: "move")
        guard n != m else { return "\(describe(n - 1)) is already at place \(m)" }
        let id = items[n - 1].entry.id
        try await store.queue.move(entryID: id, after: Self.after(items.map(\.entry.id), moving: n - 1, to: m))
        try await reloadQueue()
        let now = items.firstIndex { $0.entry.id == id } ?? (m - 1)
        return "moved to \(describe(now))"
    }
}
