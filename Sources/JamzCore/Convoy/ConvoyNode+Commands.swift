/// Commands (the DJ's rules) and membership changes. A command's result is made first and
/// applied with `applyOwn` once the host has stored it.
extension ConvoyNode {
    /// The timeline that makes this car the DJ (not applied): the current music goes on, in our
    /// clock. Playing by itself after a restart out of the DJ's reach (`solo`), its own music
    /// becomes the convoy's (the highest term wins when the cars meet again).
    public func takeOverTimeline(now: Nanos) throws(Refusal) -> ConvoyTimeline {
        guard inGroup else { throw Refusal("not in a convoy: `jamz group create` or `jamz group join CODE` first") }
        if session.isDJ { throw Refusal("this car is already the DJ (term \(session.term.number))") }
        if djEstimate(at: now) == nil, let here = solo {
            return ConvoyTimeline(term: Term(number: session.term.number + 1, dj: me), version: 0, anchor: here, previous: nil)
        }
        guard let est = djEstimate(at: now) else {
            throw Refusal("the DJ's clock is not measured yet (no exchange with it): try again in a second")
        }
        // The DJ's anchors carried over by the offset *now*: the music is where the old DJ's
        // timeline says at this instant, and runs on at our clock's rate from here. (Inverting
        // the estimate at each anchor's own time would move the position by the two clocks'
        // frequency difference times the anchor's age: 200 ppm × an hour-old anchor is 0.7 s.)
        let offset = Nanos(est.offset(at: now).rounded())
        var copy = session
        return copy.takeOver { djTime in djTime - offset }
    }

    /// Ops adding these tracks to the convoy playlist (not applied).
    public func makeAdds(_ tracks: [(id: TrackID, frames: Int64)]) throws(Refusal) -> [PlaylistOp] {
        try make(tracks.map { .add(track: $0.id, frames: $0.frames, after: nil) })
    }

    /// Ops for these playlist edits, made in this car's view of the term (not applied): adds by
    /// anyone, removes and moves by the DJ (`PlaylistLog.make`).
    public func make(_ edits: [PlaylistEdit]) throws(Refusal) -> [PlaylistOp] {
        var copy = log
        var made: [PlaylistOp] = []
        for e in edits {
            do { made.append(try copy.make(e, term: session.term)) } catch {
                let verb = switch e { case .add: "add"; case .remove: "remove"; case .move: "move" }
                throw Refusal("cannot \(verb): \(error)")
            }
        }
        return made
    }

    /// A playback change scheduled for `at` (our clock) by this car as the DJ (not applied).
    public func scheduled(_ change: TimelineChange, at: Nanos) throws(Refusal) -> ConvoyTimeline {
        guard session.isDJ else {
            throw Refusal("only the DJ controls playback: `jamz take-control` makes this car the DJ")
        }
        var copy = session
        guard let t = copy.schedule(change, at: at, playlist: log.entries, sampleRate: sampleRate) else {
            throw Refusal("nothing to play: `jamz add WORDS` first")
        }
        return t
    }

    /// A timeline this car made, now stored: applied (unless a newer term arrived meanwhile),
    /// announced and followed.
    public mutating func applyOwn(_ t: ConvoyTimeline, now: Nanos) -> [Effect] {
        session.receive(t)
        solo = nil
        return [.announce, .wake] + follow(now: now)
    }

    /// Ops this car made, now stored: applied, sent to every car, followed.
    public mutating func applyOwn(_ ops: [PlaylistOp], now: Nanos) -> [Effect] {
        _ = log.receive(contentsOf: ops)
        return WireCodec.opsMessages(ops).map { .broadcast($0) } + follow(now: now) + [.fetchMissing]
    }

    /// A new convoy made by this car: it is the DJ of the convoy's first term, and the music it
    /// plays is the convoy's. Returns the timeline to store.
    public mutating func founded() -> ConvoyTimeline {
        inGroup = true
        let t = session.timeline
        session.receive(ConvoyTimeline(term: Term(number: max(1, t.term.number + 1), dj: me), version: 0, anchor: t.anchor, previous: t.previous))
        lastBeacon = nil
        return session.timeline
    }

    /// Joined another convoy: its DJ, timeline and playlist come from it, not from what we held.
    public mutating func joined() {
        inGroup = true
        peers.removeAll(); peerWall.removeAll(); peerBoots.removeAll()
        solo = nil
        session = Session(me: me)
        log = PlaylistLog(me: me)
        lastBeacon = nil
    }

    /// Left the convoy: playing alone.
    public mutating func left() {
        inGroup = false
        peers.removeAll(); peerWall.removeAll(); peerBoots.removeAll()
        solo = nil
        session = Session(me: me)
    }

    /// The membership file was read at start: in the convoy again (with a new envelope boot).
    public mutating func rejoined() {
        inGroup = true
        lastBeacon = nil
    }

    /// After a restart this car's clock began again. The DJ re-anchors the convoy where the
    /// player resumed (returned, to store); a follower plays on from there by itself (`solo`)
    /// until it hears the DJ, then takes the DJ's timeline again.
    public mutating func resume(at anchor: TimelineAnchor) -> ConvoyTimeline? {
        guard inGroup else { return nil }
        guard session.isDJ else {
            guard anchor.rate == 1 else { return nil }
            solo = anchor
            return nil
        }
        return session.restart(from: anchor)
    }
}
