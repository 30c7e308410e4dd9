import JamzCore
import JamzNet

/// What `jamz status`, `jamz group show` and `jamz peers` show of the convoy.
extension Convoy {
    var playlist: [PlaylistEntry] { node.log.entries }
    var recentMaxDelays: [Nanos] { node.peers.values.map { $0.filter.recentMaxDelay } }
    var timeline: ConvoyTimeline { node.session.timeline }

    /// Counters for `jamz status --json`: envelopes dropped by reason, accepted, undecodable.
    var counters: [String: Int64] {
        var c: [String: Int64] = ["convoy.accepted": Int64(clamping: receiver.accepted), "convoy.undecodable": Int64(clamping: decodeErrors)]
        for r in EnvelopeDrop.allCases { c["convoy.dropped.\(r.rawValue)"] = Int64(clamping: receiver.drops[r]) }
        c["convoy.ops.rejected"] = Int64(node.log.counters.rejected)
        c["convoy.rejected"] = node.rejected
        c["convoy.bytes_sent"] = outbox.sent.bytes
        if settings.impairment != nil { c["convoy.test_impair_dropped"] = Int64(transport?.impairedDrops ?? 0) }
        c["convoy.tracks_copied"] = fetched
        c["convoy.track_copy_bytes"] = fetchedBytes
        c["convoy.track_copy_ns"] = fetchNanos
        c["convoy.track_copy_failures"] = fetchFailures
        c["convoy.datagrams_sent"] = outbox.sent.datagrams
        if let r = relay?.status {
            c["convoy.relay.connected"] = r.connected ? 1 : 0
            c["convoy.relay.connects"] = Int64(r.connects)
            c["convoy.relay.messages_sent"] = r.messagesSent
            c["convoy.relay.messages_received"] = r.messagesReceived
            c["convoy.relay.bytes_sent"] = r.bytesSent
            c["convoy.relay.bytes_received"] = r.bytesReceived
            c["convoy.relay.send_failures"] = r.sendFailures
        }
        if let t = transport?.receiveStamps {
            c["convoy.rx_stamped_kernel"] = Int64(t.kernel)
            c["convoy.rx_stamped_loop"] = Int64(t.loop)
        }
        return c
    }

    func report() -> GroupReport {
        GroupReport(inGroup: inGroup, group: secret.map { "\($0.groupID)" }, name: secret?.name, member: "\(me)",
                    term: node.session.term.number, dj: "\(node.session.term.dj)", isDJ: node.session.isDJ,
                    joinCode: secret.map { JoinCode.make($0) }, drops: receiver.drops, accepted: receiver.accepted,
                    decodeErrors: decodeErrors, relay: relay?.status, ble: ble?.status,
                    pairing: pairing.summary(now: clock.now()), checkWord: lastCheckWord)
    }

    func peersReport() -> [PeerReport] {
        let now = nodeNow()
        return node.peers.sorted { $0.key < $1.key }.map { id, p in
            let e = node.estimate(of: id, at: now)
            return PeerReport(member: "\(id)", name: p.name, address: lanAddress[id].map { "\($0)" } ?? (p.relayHeard > 0 ? "relay" : p.bleAddress ?? "relay"), link: p.link,
                              lastHeardSeconds: Double(now - p.lastHeard) / 1e9,
                              offsetMs: e.map { $0.offset(at: now) / 1e6 }, boundMs: e.map { Double($0.bound) / 1e6 },
                              spreadMs: e.map { Double($0.spread) / 1e6 }, ppm: e?.ppm, quality: e.map { "\($0.quality)" } ?? "none",
                              isDJ: id == node.session.term.dj, rssi: p.bleRSSI.map(Int.init), car: convoyPrompts.number(of: id))
        }
    }
}

/// `jamz group show --json` (stable keys).
public struct GroupReport: Codable, Sendable {
    public var inGroup: Bool
    public var group: String?
    public var name: String?
    public var member: String
    public var term: UInt64
    public var dj: String
    public var isDJ: Bool
    public var joinCode: String?
    public var drops: DropCounters
    public var accepted: UInt64
    public var decodeErrors: UInt64
    /// The internet relay: connected, broker, problem, RTT, messages and bytes (absent: no relay).
    public var relay: RelayTransport.Status?
    /// The Bluetooth LE link: controller, up or why not, advertisements sent, sightings, drops.
    public var ble: BLELink.Status?
    /// An open short code, a join button waiting, a join running (absent: none).
    public var pairing: String?
    /// The two check words of this car's last short-code or push-button pairing.
    public var checkWord: String?
}

/// One row of `jamz peers --json` (stable keys).
public struct PeerReport: Codable, Sendable {
    public var member: String
    public var name: String
    public var address: String
    public var link: String
    public var lastHeardSeconds: Double
    /// Their clock − ours (ms) now, the hard bound on its error, the statistical spread, the
    /// frequency difference, and how far the estimate has come.
    public var offsetMs: Double?
    public var boundMs: Double?
    public var spreadMs: Double?
    public var ppm: Double?
    public var quality: String
    public var isDJ: Bool
    /// Its Bluetooth LE signal (dBm), when heard over BLE with one.
    public var rssi: Int?
    /// The number the spoken prompts give it ("car 3 left"): the order this car first heard it.
    public var car: Int?
}

