/// What is due when, and the timeline handed to the player.
extension ConvoyNode {
    /// What the host fills into a beacon from its devices: the GPS-disciplined wall reading,
    /// the position, the track server's port.
    public struct BeaconExtras: Sendable {
        public var wall: WallClockSample?
        public var position: WirePosition?
        public var dataPort: UInt16
        public init(wall: WallClockSample? = nil, position: WirePosition? = nil, dataPort: UInt16 = 0) {
            self.wall = wall; self.position = position; self.dataPort = dataPort
        }
    }

    /// Does what is due at `now` — a beacon each second, the clock exchanges the pacer asks for,
    /// the timeline handed to the player again (every 100 ms while a follower plays the DJ's
    /// music) — and says when something is due next (nil: not in a convoy).
    /// `bleChannel`: whether a Bluetooth LE channel to that member is open; `extras`: read only
    /// when a beacon goes out.
    public mutating func tick(now: Nanos, bleChannel: (MemberID) -> Bool, extras: () -> BeaconExtras) -> (effects: [Effect], next: Nanos?) {
        guard inGroup else { return ([], nil) }
        var out: [Effect] = []
        if lastBeacon.map({ now - $0 >= nanosPerSecond }) ?? true {
            lastBeacon = now
            beaconCount += 1
            let x = extras()
            let b = Beacon(member: me, name: carName, timeline: session.timeline, highWater: beaconHighWater(),
                           clockQuality: UInt8(djEstimate(at: now)?.quality.rawValue ?? 0), wall: x.wall,
                           position: x.position, tracks: 0, dataPort: x.dataPort)
            out.append(.broadcast(.beacon(b)))
            // Copies of missing tracks are looked for with each beacon (and when the playlist,
            // the timeline or the peers change).
            out.append(.fetchMissing)
        }
        // In member order: the same inputs give the same effects in the same order (the
        // simulator's runs repeat bit for bit across processes; a Dictionary's order does not).
        for id in peers.keys.sorted() {
            guard let p = peers[id], now >= p.nextExchange else { continue }
            var q = p
            q.sent += 1
            let link = p.route(now: now, bleChannel: bleChannel(id))
            let gpsTime = ownWall?.latest != nil && peerWall[id]?.latest != nil
            let pacer = fixedPacer ?? ExchangePacer.forPeer(isDJ: id == session.term.dj, playing: session.timeline.anchor?.rate == 1,
                                                            slowLink: link.isSlow, gpsTime: gpsTime)
            q.nextExchange = now + pacer.interval(sent: q.sent, quality: q.filter.estimate?.quality ?? .none, delaySpread: q.filter.delaySpread)
            peers[id] = q
            out.append(.timeRequest(to: id, via: link, count: pacer.datagrams(delaySpread: q.filter.delaySpread)))
        }
        if let due = followDue(now: now), now >= due { out += follow(now: now) }
        return (out, deadline(now: now))
    }

    /// When something is due next: a beacon, an exchange, the timeline handed over again (nil:
    /// not in a convoy). A host that awaited after `tick` asks again (a peer may have come).
    public func deadline(now: Nanos) -> Nanos? {
        guard inGroup else { return nil }
        var next = (lastBeacon ?? now) + nanosPerSecond
        for p in peers.values { next = min(next, p.nextExchange) }
        if let due = followDue(now: now) { next = min(next, due) }
        return next
    }

    /// When the timeline is handed to the player again: every 100 ms while the convoy's music
    /// plays or a change is scheduled (a follower re-anchors the DJ's timeline at our "now", see
    /// `follow`), once a second otherwise (a safety net: a paused or stopped timeline is also
    /// handed over when it changes and when the DJ's clock is first measured); nil out of a convoy.
    func followDue(now: Nanos) -> Nanos? {
        guard inGroup else { return nil }
        guard let followedAt else { return now }
        guard let a = session.timeline.anchor else { return followedAt + nanosPerSecond }
        let djNow = session.isDJ ? followedAt : (djEstimate(at: now).map { $0.peerTime(at: followedAt) } ?? followedAt)
        return followedAt + (a.rate == 1 || a.time > djNow ? Self.followInterval : nanosPerSecond)
    }

    /// The op-log high-water marks a beacon carries: all of them, or a rotating window of
    /// `WireLimits.origins` when the convoy has seen more origins than one beacon holds.
    func beaconHighWater() -> [MemberID: UInt64] {
        let hw = log.highWater
        guard hw.count > WireLimits.origins else { return hw }
        let keys = hw.keys.sorted()
        let start = (beaconCount * WireLimits.origins) % keys.count
        let window = (0..<WireLimits.origins).map { keys[(start + $0) % keys.count] }
        return Dictionary(uniqueKeysWithValues: window.map { ($0, hw[$0]!) })
    }

    /// The DJ's clock against ours (nil: this car is the DJ, or it is not measured yet).
    public func djEstimate(at now: Nanos) -> ClockEstimate? {
        session.isDJ ? nil : estimate(of: session.term.dj, at: now)
    }

    /// A peer's clock against ours: the network estimate (clock exchanges), fused with what both
    /// cars' GPS-disciplined wall clocks say when both have one (`OffsetFusion`: by their
    /// bounds, never outside the network's hard bound). GPS time is what keeps cars in sync over
    /// a path whose asymmetry the exchanges cannot see (a relay, mobile data).
    public func estimate(of id: MemberID, at now: Nanos) -> ClockEstimate? {
        let net = peers[id]?.filter.estimate
        guard let own = ownWall, let theirs = peerWall[id],
              let gps = GPSTimeOffset.offset(local: own, peer: theirs, at: now) else { return net }
        guard let fused = OffsetFusion.fuse(network: net.map { ($0.offset(at: now), $0.bound) }, gps: gps) else { return net }
        var e = net ?? ClockEstimate(reference: now, offsetAtReference: 0, ppm: 0, bound: 0, spread: 0, quality: .coarse, samples: 0)
        e.reference = now
        e.offsetAtReference = fused.offset
        e.bound = fused.bound
        if fused.source == .gps { e.quality = .locked }
        return e
    }

    /// The playlist and the timeline, in our clock, for the player. The DJ's own timeline is
    /// already in our clock. A follower's is re-anchored at our "now" every time (every 100 ms):
    /// converting only the anchor time would play the DJ's timeline at our clock's rate, off by
    /// the frequency difference (100 ppm is 3 ms after 30 s). A change scheduled for later is
    /// handed over as it is (converted), so the renderer switches on its exact frame.
    public mutating func follow(now: Nanos) -> [Effect] {
        guard inGroup else { return [] }
        followedAt = now
        followSeq += 1
        let tl = session.timeline
        let list = log.entries
        let seq = followSeq
        func plan(_ a: TimelineAnchor?, _ local: Nanos?) -> [Effect] { [.play(Plan(playlist: list, anchor: a, toLocal: local, seq: seq))] }
        if session.isDJ { return plan(tl.anchor, tl.anchor?.time) }
        guard let est = djEstimate(at: now) else { return plan(solo, solo?.time) }
        var heard: [Effect] = []
        if solo != nil {
            solo = nil
            heard.append(.note("the DJ is heard: following the convoy's timeline again"))
        }
        let djNow = est.peerTime(at: now)
        if let a = tl.anchor, a.time > djNow { return heard + plan(a, est.localTime(atPeer: a.time)) }
        guard let inForce = tl.anchor(at: djNow), inForce.rate != 0,
              let (p, fraction) = tl.precisePosition(at: djNow, in: list, sampleRate: sampleRate) else {
            // Paused: the paused place; past the end of the playlist or nothing yet: silence.
            let paused = tl.anchor(at: djNow).flatMap { $0.rate == 0 ? $0 : nil }
            return heard + plan(paused, paused == nil ? nil : now)
        }
        // Frame p.frame was heard `fraction` of a frame period before now.
        let at = now - Nanos((fraction * 1e9 / Double(sampleRate)).rounded())
        return heard + plan(TimelineAnchor(entry: p.entry, track: list[p.index].track, frame: p.frame, time: djNow, rate: 1), at)
    }

    /// The playing entry's track and the next two's: those a car lacking them copies first.
    public func upcomingTracks(now: Nanos) -> [TrackID] {
        let list = log.entries
        guard !list.isEmpty else { return [] }
        let djNow = session.isDJ ? now : djEstimate(at: now).map { $0.peerTime(at: now) }
        let here = djNow.flatMap { session.timeline.position(at: $0, in: list, sampleRate: sampleRate)?.index } ?? 0
        return list[here..<min(list.count, here + 3)].map(\.track)
    }
}
