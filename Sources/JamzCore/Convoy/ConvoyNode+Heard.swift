/// What comes in: messages, envelopes repeated over a second link, Bluetooth LE sightings.
extension ConvoyNode {
    /// An envelope of `sender`'s boot `boot` opened (authenticated), whatever its message turns
    /// out to be: over BLE the car is near; a new boot of that car means its monotonic clock
    /// began again and its old clock samples mean nothing. Called before the message is decoded.
    public mutating func opened(from sender: MemberID, boot: UInt32, via link: Link, at: Nanos) -> [Effect] {
        var out: [Effect] = []
        if link == .ble {
            peers[sender]?.bleDataHeard = at
            out += radio(sender, at: at)
        }
        if let known = peerBoots[sender], known != boot { peers[sender]?.filter.reset(); peerWall[sender] = nil }
        peerBoots[sender] = boot
        return out
    }

    /// A message of `sender`, opened from an envelope of its boot `boot` (`opened` first), that
    /// came over `link` at our time `at`.
    public mutating func heard(_ message: WireMessage, from sender: MemberID, via link: Link, at: Nanos) -> [Effect] {
        var out: [Effect] = []
        switch message {
        case .beacon(let b):
            var p = peers[sender] ?? Peer(name: b.name, lastHeard: at)   // an exchange due at once
            let newSource = b.dataPort > 0 && (peers[sender]?.dataPort ?? 0) == 0
            if peers[sender] == nil {
                out.append(.newPeer(sender, name: b.name, via: link))
                // Through the relay or BLE, a newcomer hears our beacon now rather than within 5 s.
                if link != .lan { lastBeacon = nil }
                out.append(.wake)   // a clock exchange with it is due now
            }
            p.name = b.name; p.lastHeard = at; p.tracks = b.tracks; p.dataPort = Int(b.dataPort)
            if let w = b.wall, w.ppsDisciplined, abs(w.mono) < Self.timeLimit, abs(w.wall) < Self.timeLimit {
                peerWall[sender, default: WallMapping()].add(w)
            }
            switch link {
            case .lan: p.onLAN = true; p.lanHeard = at
            case .ble: p.bleDataHeard = at
            case .relay: p.relayHeard = at
            }
            peers[sender] = p
            if newSource { out.append(.fetchMissing) }   // it may have tracks we lack
            out += take(b.timeline, at: at)
            out.append(.position(sender, name: b.name, b.position, at: at))
            let missing = log.missing(for: b.highWater, limit: WireLimits.opsPerMessage)
            out += WireCodec.opsMessages(missing).map { .reply($0) }
        case .timeRequest(let t1, _):
            out.append(.timeReply(t1: t1, t2: at))
        case .timeReply(let t1, let t2, let t3, _):
            // Clock readings of a member's monotonic clock: far from ±2⁶³, so no difference overflows.
            guard [t1, t2, t3].allSatisfy({ abs($0) < Self.timeLimit }) else { rejected += 1; return out }
            let had = peers[sender]?.filter.estimate != nil
            peers[sender]?.filter.add(ClockSample(t1: t1, t2: t2, t3: t3, t4: at))
            peers[sender]?.lastHeard = at
            // The DJ's clock is measured for the first time: its timeline can be followed now.
            if !had, sender == session.term.dj, peers[sender]?.filter.estimate != nil { out += follow(now: at) }
        case .timeline(let t):
            out += take(t, at: at)
        case .ops(let ops):
            out += receive(ops, at: at)
        case .opsRequest(let hw):
            out += WireCodec.opsMessages(log.missing(for: hw, limit: WireLimits.opsPerMessage)).map { .reply($0) }
        }
        return out
    }

    /// The same envelope came first over another link: this one carries the car too (shown as
    /// "lan+relay", "lan+ble"…; only the route's choice and the display depend on it).
    public mutating func heardAgain(from sender: MemberID, via link: Link, at: Nanos) -> [Effect] {
        switch link {
        case .ble:
            peers[sender]?.bleDataHeard = at
            return radio(sender, at: at)
        case .relay: peers[sender]?.relayHeard = at
        case .lan: break
        }
        return []
    }

    /// A convoy car's Bluetooth LE advertisement: it is near (shown as link `ble` with its RSSI).
    public mutating func sighted(_ member: MemberID, rssi: Int8?, address: String, at: Nanos) -> [Effect] {
        guard inGroup, member != me else { return [] }
        var out: [Effect] = []
        var p = peers[member] ?? Peer(name: "car \(member) (BLE)", lastHeard: at)
        if peers[member] == nil || p.bleHeard == 0 {
            out.append(.note("peer \(p.name) (\(member)) over Bluetooth LE at \(address)\(rssi.map { ", \($0) dBm" } ?? "")"))
        }
        // Sightings may come out of order: an older one changes nothing.
        guard at >= p.bleHeard else { return out }
        p.bleHeard = at; p.bleRSSI = rssi; p.bleAddress = address; p.lastHeard = max(p.lastHeard, at)
        peers[member] = p
        return out + radio(member, at: at)
    }

    /// A car whose advertisement or envelope came over Bluetooth LE is within radio range.
    func radio(_ id: MemberID, at: Nanos) -> [Effect] {
        guard inGroup, id != me else { return [] }
        return [.radio(id, name: peers[id]?.name ?? "\(id)", rssi: peers[id]?.bleRSSI, at: at)]
    }

    mutating func take(_ t: ConvoyTimeline, at: Nanos) -> [Effect] {
        guard Self.sane(t) else {
            rejected += 1
            return [.warning("ignored a timeline with out-of-range times or frames (term \(t.term))")]
        }
        guard session.receive(t) else { return [] }
        // Following it may be due every 100 ms now, or no more.
        return [.note("timeline \(t.term) v\(t.version) from the DJ"), .wake, .saveTimeline(session.timeline)] + follow(now: at)
    }

    mutating func receive(_ ops: [PlaylistOp], at: Nanos) -> [Effect] {
        let before = log.ops.count
        _ = log.receive(contentsOf: ops)
        guard log.ops.count != before else { return [] }
        let held = Dictionary(log.ops.map { ($0.id, $0) }, uniquingKeysWith: { a, _ in a })
        let fresh = ops.filter { held[$0.id] == $0 }
        return [.saveOps(fresh)] + follow(now: at) + [.fetchMissing]
    }
}
