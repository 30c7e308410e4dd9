import Foundation
import JamzAudio
import JamzCore
import JamzNet
import JamzStore
import Logging
import NIOCore
import NIOPosix

/// The car's part in a convoy: membership (the secret, kept root-only in the data dir), the
/// LAN link, the peer table with one clock filter per peer, the session (term, timeline) and the
/// playlist op log — and the player following the convoy's timeline.
///
/// Every datagram is a sealed envelope (`JamzNet.Envelope`) around one `WireMessage`:
/// multicast beacons once a second (who, name, timeline, op-log high-water marks), unicast
/// clock exchanges paced by `ExchangePacer`, timelines announced by the DJ, and ops pushed when
/// made and pulled by anti-entropy. Ops and timelines are stored before they are sent.
public actor Convoy {
    struct Peer {
        var name: String
        var address: SocketAddress
        var lastHeard: Nanos
        var filter = ClockFilter()
        var sent = 0
        var nextExchange: Nanos = 0
        var tracks: UInt32 = 0
    }

    struct Membership: Codable {
        var secret: String   // hex
        var name: String
        var boots: UInt32
    }

    let store: Store
    let clock: SystemClock
    let player: Player
    let logger: Logger
    let carName: String
    let sampleRate: Int
    let settings: LANTransport.Settings
    let membershipPath: String
    public let me: MemberID

    var secret: ConvoySecret?
    var sealer: Sealer?
    var receiver: Receiver
    var session: Session
    var log: PlaylistLog
    var peers: [MemberID: Peer] = [:]
    var transport: LANTransport?
    var lastBeacon: Nanos = 0
    var decodeErrors: UInt64 = 0
    var bytesSent: Int64 = 0
    var datagramsSent: Int64 = 0
    var followedAt: Nanos = 0

    static func load(store: Store, clock: SystemClock, player: Player, config: DaemonConfig, logger: Logger) async throws -> Convoy {
        let (id, ops, timeline) = try await store.pool.write { db -> (MemberID, [PlaylistOp], ConvoyTimeline?) in
            var id = try ConvoyLog.memberID(db)
            if id == nil {
                var g = SystemRandomNumberGenerator()
                id = MemberID(g.next())
                try ConvoyLog.setMemberID(db, id!)
            }
            return (id!, try ConvoyLog.loadOps(db), try ConvoyLog.loadTimeline(db))
        }
        let path = (config.dataDir as NSString).appendingPathComponent("convoy.json")
        let c = Convoy(store: store, clock: clock, player: player, logger: logger, carName: config.carName, sampleRate: config.sampleRate,
                       settings: LANTransport.Settings(port: config.convoyPort), membershipPath: path,
                       me: id, ops: ops, timeline: timeline)
        try await c.loadMembership()
        return c
    }

    init(store: Store, clock: SystemClock, player: Player, logger: Logger, carName: String, sampleRate: Int, settings: LANTransport.Settings,
         membershipPath: String, me: MemberID, ops: [PlaylistOp], timeline: ConvoyTimeline?) {
        self.store = store; self.clock = clock; self.player = player; self.logger = logger
        self.carName = carName; self.sampleRate = sampleRate; self.settings = settings; self.membershipPath = membershipPath; self.me = me
        receiver = Receiver(me: me)
        session = Session(me: me, timeline: timeline)
        log = PlaylistLog(me: me, ops: ops)
    }

    public var inGroup: Bool { secret != nil }

    // MARK: membership

    private func loadMembership() async throws {
        guard let data = FileManager.default.contents(atPath: membershipPath) else { return }
        guard var m = try? JSONDecoder().decode(Membership.self, from: data), let bytes = Self.unhex(m.secret),
              let s = ConvoySecret(bytes: bytes, name: m.name) else {
            logger.error("\(membershipPath) is unreadable: not in a convoy until `jamz group join` again")
            return
        }
        // A new boot count before anything is sealed: sequence numbers never repeat.
        m.boots &+= 1
        try saveMembership(m)
        adopt(s, boots: m.boots)
    }

    private func saveMembership(_ m: Membership) throws {
        let data = try JSONEncoder().encode(m)
        let tmp = membershipPath + ".tmp"
        guard FileManager.default.createFile(atPath: tmp, contents: data, attributes: [.posixPermissions: 0o600]) else {
            throw Player.CommandError("cannot write \(tmp)")
        }
        let fd = open(tmp, O_RDONLY)
        if fd >= 0 { fsync(fd); close(fd) }
        if rename(tmp, membershipPath) != 0 { throw Player.CommandError("cannot write \(membershipPath): \(String(cString: strerror(errno)))") }
    }

    private func adopt(_ s: ConvoySecret, boots: UInt32) {
        if let old = secret { receiver.remove(group: old.groupID) }
        secret = s
        receiver.add(s.key)
        sealer = Sealer(key: s.key, sender: me, bootCount: boots)
    }

    func create(name: String) async throws -> (String, String) {
        let s = ConvoySecret.random(name: name.isEmpty ? "\(carName)'s convoy" : name)
        try saveMembership(Membership(secret: Self.hex(s.bytes), name: s.name, boots: 1))
        adopt(s, boots: 1)
        // The creator is DJ of the convoy's first term; the music it plays is the convoy's.
        let t = session.timeline
        _ = session.receive(ConvoyTimeline(term: Term(number: max(1, t.term.number + 1), dj: me), version: 0, anchor: t.anchor, previous: t.previous))
        try await persistTimeline()
        announce()
        return (JoinCode.make(s), s.name)
    }

    func join(code: String) async throws -> String {
        let s: ConvoySecret
        do { s = try JoinCode.parse(code) } catch { throw Player.CommandError("\(error)") }
        try saveMembership(Membership(secret: Self.hex(s.bytes), name: s.name, boots: 1))
        adopt(s, boots: 1)
        peers.removeAll()
        return "joined convoy \(s.groupID); waiting for the others (beacons every second)"
    }

    func leave() async throws -> String {
        guard let s = secret else { return "not in a convoy" }
        try? FileManager.default.removeItem(atPath: membershipPath)
        receiver.remove(group: s.groupID)
        secret = nil; sealer = nil; peers.removeAll()
        session = Session(me: me)
        try await persistTimeline()
        return "left convoy \(s.groupID); playing alone"
    }

    /// After a restart the DJ's clock began again: re-anchor the convoy where the player
    /// resumed (the player restored the position saved before the power went).
    func resumeAsDJ() async {
        guard inGroup, session.isDJ else { return }
        let list = log.entries
        guard let s = await player.standing(), let e = list.first(where: { Player.entryID($0.id) == s.entryID }) else { return }
        let at = clock.now() + 300_000_000
        let frame = s.frame + (s.playing ? FrameMath.frames(in: 300_000_000, rate: sampleRate) : 0)
        guard session.restart(from: TimelineAnchor(entry: e.id, track: e.track, frame: frame, time: at, rate: s.playing ? 1 : 0)) != nil else { return }
        try? await persistTimeline()
        logger.info("resuming the convoy as its DJ at \(e.track.short) frame \(frame)")
    }

    // MARK: the link

    func start(group: any EventLoopGroup) async {
        guard settings.port > 0 else { logger.info("convoy link disabled (convoy_port = 0)"); return }
        do {
            let t = try await LANTransport.start(settings: settings, on: group, clock: clock, logger: logger) { [weak self] bytes, from, at in
                guard let self else { return }
                Task { await self.receive(bytes, from: from, at: at) }
            }
            transport = t
            logger.info("convoy link: UDP \(settings.port), beacons on \(settings.group) via \(t.joined.joined(separator: ", "))")
        } catch {
            logger.error("convoy link cannot start: \(error); playing alone")
        }
    }

    /// Called every 20 ms: beacons, clock exchanges, following the timeline.
    func tick() async {
        guard inGroup, let transport else { return }
        let now = clock.now()
        if now - lastBeacon >= nanosPerSecond {
            lastBeacon = now
            let b = Beacon(member: me, name: carName, timeline: session.timeline, highWater: log.highWater,
                           clockQuality: UInt8(djEstimate?.quality.rawValue ?? 0), wall: nil, position: nil, tracks: 0,
                           dataPort: 0)
            send(.beacon(b), to: nil)
        }
        for (id, p) in peers where now >= p.nextExchange {
            var q = p
            q.sent += 1
            var pacer = ExchangePacer()
            if id != session.term.dj { pacer.steadyInterval *= 4; pacer.noisyInterval *= 10 }
            q.nextExchange = now + pacer.interval(sent: q.sent, quality: q.filter.estimate?.quality ?? .none, delaySpread: q.filter.delaySpread)
            peers[id] = q
            send(.timeRequest(t1: clock.now(), wall: nil), to: p.address)
        }
        _ = transport
        if now - followedAt >= 100_000_000 { await follow() }
    }

    private func send(_ m: WireMessage, to address: SocketAddress?) {
        guard var s = sealer, let transport else { return }
        let bytes = s.seal(WireCodec.encode(m))
        sealer = s
        bytesSent += Int64(bytes.count) + 28   // + IPv4 and UDP headers
        datagramsSent += 1
        if let address { transport.send(bytes, to: address) } else { transport.multicast(bytes) }
    }

    private func announce() { send(.timeline(session.timeline), to: nil) }

    func receive(_ bytes: [UInt8], from: SocketAddress, at: Nanos) async {
        guard let (sender, payload) = receiver.open(bytes) else { return }
        let message: WireMessage
        do { message = try WireCodec.decode(payload) } catch {
            decodeErrors += 1
            logger.warning("undecodable message from \(sender): \(error)")
            return
        }
        switch message {
        case .beacon(let b):
            var p = peers[sender] ?? Peer(name: b.name, address: from, lastHeard: at)
            if peers[sender] == nil { logger.info("peer \(b.name) (\(sender)) at \(from)") }
            p.name = b.name; p.address = from; p.lastHeard = at; p.tracks = b.tracks
            peers[sender] = p
            await take(b.timeline)
            let missing = log.missing(for: b.highWater, limit: WireLimits.opsPerMessage)
            for m in WireCodec.opsMessages(missing) { send(m, to: from) }
        case .timeRequest(let t1, _):
            send(.timeReply(t1: t1, t2: at, t3: clock.now(), wall: nil), to: from)
        case .timeReply(let t1, let t2, let t3, _):
            peers[sender]?.filter.add(ClockSample(t1: t1, t2: t2, t3: t3, t4: at))
            peers[sender]?.lastHeard = at
        case .timeline(let t):
            await take(t)
        case .ops(let ops):
            await receiveOps(ops)
        case .opsRequest(let hw):
            for m in WireCodec.opsMessages(log.missing(for: hw, limit: WireLimits.opsPerMessage)) { send(m, to: from) }
        }
    }

    private func take(_ t: ConvoyTimeline) async {
        guard session.receive(t) else { return }
        logger.info("timeline \(t.term) v\(t.version) from the DJ")
        try? await persistTimeline()
        await follow()
    }

    private func receiveOps(_ ops: [PlaylistOp]) async {
        let before = log.ops.count
        _ = log.receive(contentsOf: ops)
        guard log.ops.count != before else { return }
        let held = Set(log.ops.map(\.id))
        let fresh = ops.filter { held.contains($0.id) }
        do { try await store.pool.write { db in try ConvoyLog.append(db, fresh) } } catch {
            logger.error("cannot store playlist ops: \(error)")
        }
        await follow()
    }

    private func persistTimeline() async throws {
        let t = session.timeline
        try await store.pool.write { db in try ConvoyLog.saveTimeline(db, t) }
    }

    // MARK: following the timeline

    var djEstimate: ClockEstimate? {
        session.isDJ ? nil : peers[session.term.dj]?.filter.estimate
    }

    /// Hands the playlist and the timeline, in our clock, to the player. The DJ's own timeline
    /// is already in our clock. A follower's is re-anchored at our "now" every time (every
    /// 200 ms): converting only the anchor time would play the DJ's timeline at our clock's rate,
    /// off by the frequency difference (100 ppm is 3 ms after 30 s). A change scheduled for
    /// later is handed over as it is (converted), so the renderer switches on its exact frame.
    func follow() async {
        guard inGroup else { return }
        let now = clock.now()
        followedAt = now
        let tl = session.timeline
        let list = log.entries
        if session.isDJ {
            await player.follow(playlist: list, anchor: tl.anchor, toLocal: tl.anchor?.time)
            return
        }
        guard let est = djEstimate else {
            await player.follow(playlist: list, anchor: nil, toLocal: nil)
            return
        }
        let djNow = est.peerTime(at: now)
        if let a = tl.anchor, a.time > djNow {
            await player.follow(playlist: list, anchor: a, toLocal: est.localTime(atPeer: a.time))
            return
        }
        guard let inForce = tl.anchor(at: djNow), inForce.rate != 0,
              let (p, fraction) = tl.precisePosition(at: djNow, in: list, sampleRate: sampleRate) else {
            await player.follow(playlist: list, anchor: tl.anchor(at: djNow), toLocal: now)
            return
        }
        // Frame p.frame was heard `fraction` of a frame period before now.
        let at = now - Nanos((fraction * 1e9 / Double(sampleRate)).rounded())
        let here = TimelineAnchor(entry: p.entry, track: list[p.index].track, frame: p.frame, time: djNow, rate: 1)
        await player.follow(playlist: list, anchor: here, toLocal: at)
    }

    // MARK: commands (DJ rules)

    func takeControl() async throws -> String {
        guard inGroup else { throw Player.CommandError("not in a convoy: `jamz group create` or `jamz group join CODE` first") }
        if session.isDJ { return "this car is already the DJ (term \(session.term.number))" }
        let est = djEstimate
        let t = session.takeOver { djTime in est?.localTime(atPeer: djTime) ?? djTime }
        try await persistTimeline()
        announce()
        await follow()
        return "this car is the DJ now (term \(t.term.number))"
    }

    func add(_ records: [TrackRecord]) async throws -> String {
        var made: [PlaylistOp] = []
        for r in records {
            guard let id = TrackID(hex: r.id) else { continue }
            do { made.append(try log.make(.add(track: id, frames: r.frames, after: nil), term: session.term)) } catch {
                throw Player.CommandError("cannot add: \(error)")
            }
        }
        let toStore = made
        try await store.pool.write { db in try ConvoyLog.append(db, toStore) }
        for m in WireCodec.opsMessages(made) { send(m, to: nil) }
        await follow()
        return "added \(made.count) track\(made.count == 1 ? "" : "s") to the convoy playlist (\(log.entries.count) entries)"
    }

    func change(_ change: TimelineChange, lead: Nanos) async throws -> String {
        guard session.isDJ else {
            throw Player.CommandError("only the DJ controls playback: `jamz take-control` makes this car the DJ")
        }
        let at = clock.now() + lead
        guard session.schedule(change, at: at, playlist: log.entries, sampleRate: sampleRate) != nil else {
            throw Player.CommandError("nothing to play: `jamz add WORDS` first")
        }
        try await persistTimeline()
        announce()
        await follow()
        return "scheduled in \(lead / 1_000_000) ms for every car"
    }

    var playlist: [PlaylistEntry] { log.entries }
    var recentMaxDelays: [Nanos] { peers.values.map { $0.filter.recentMaxDelay } }
    var timeline: ConvoyTimeline { session.timeline }

    /// Counters for `jamz status --json`: envelopes dropped by reason, accepted, undecodable.
    var counters: [String: Int64] {
        var c: [String: Int64] = ["convoy.accepted": Int64(clamping: receiver.accepted), "convoy.undecodable": Int64(clamping: decodeErrors)]
        for r in EnvelopeDrop.allCases { c["convoy.dropped.\(r.rawValue)"] = Int64(clamping: receiver.drops[r]) }
        c["convoy.ops.rejected"] = Int64(log.counters.rejected)
        c["convoy.bytes_sent"] = bytesSent
        c["convoy.datagrams_sent"] = datagramsSent
        return c
    }

    func report() -> GroupReport {
        GroupReport(inGroup: inGroup, group: secret.map { "\($0.groupID)" }, name: secret?.name, member: "\(me)",
                    term: session.term.number, dj: "\(session.term.dj)", isDJ: session.isDJ,
                    joinCode: secret.map { JoinCode.make($0) }, drops: receiver.drops, accepted: receiver.accepted,
                    decodeErrors: decodeErrors)
    }

    func peersReport() -> [PeerReport] {
        let now = clock.now()
        return peers.sorted { $0.key < $1.key }.map { id, p in
            let e = p.filter.estimate
            return PeerReport(member: "\(id)", name: p.name, address: "\(p.address)", link: "lan",
                              lastHeardSeconds: Double(now - p.lastHeard) / 1e9,
                              offsetMs: e.map { $0.offset(at: now) / 1e6 }, boundMs: e.map { Double($0.bound) / 1e6 },
                              spreadMs: e.map { Double($0.spread) / 1e6 }, ppm: e?.ppm, quality: e.map { "\($0.quality)" } ?? "none",
                              isDJ: id == session.term.dj)
        }
    }

    static func hex(_ b: [UInt8]) -> String { b.map { String(format: "%02x", $0) }.joined() }
    static func unhex(_ s: String) -> [UInt8]? {
        var out: [UInt8] = []
        var it = s.utf8.makeIterator()
        while let a = it.next() {
            guard let b = it.next(), let hi = hexValue(a), let lo = hexValue(b) else { return nil }
            out.append(hi << 4 | lo)
        }
        return out
    }
    private static func hexValue(_ c: UInt8) -> UInt8? {
        switch c {
        case 48...57: return c - 48
        case 97...102: return c - 87
        case 65...70: return c - 55
        default: return nil
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
}
