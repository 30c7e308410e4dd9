import Foundation
import JamzAudio
import JamzCore
import JamzLibrary
import JamzNet
import JamzStore
import Logging
import NIOCore
import NIOPosix
import Synchronization

/// The car's part in a convoy: membership (the secret, kept root-only in the data dir), the
/// LAN link, the peer table with one clock filter per peer, the session (term, timeline) and the
/// playlist op log — and the player following the convoy's timeline.
///
/// Every datagram is a sealed envelope (`JamzNet.Envelope`) around one `WireMessage`:
/// multicast beacons once a second (who, name, timeline, op-log high-water marks), unicast
/// clock exchanges paced by `ExchangePacer`, timelines announced by the DJ, and ops pushed when
/// made and pulled by anti-entropy. Ops and timelines are stored before they are sent.
public actor Convoy {
    /// How a datagram reached us, and how a reply goes back.
    enum Route: Sendable, CustomStringConvertible {
        case lan(SocketAddress)
        /// Through the internet relay, to this member's inbox.
        case relay(MemberID)
        /// Over this member's Bluetooth LE channel.
        case ble(MemberID)
        var description: String {
            switch self {
            case .lan(let a): return "\(a)"
            case .relay: return "relay"
            case .ble: return "ble"
            }
        }
        /// The relay and BLE: paced as slow links (`ExchangePacer`).
        var isSlow: Bool { if case .lan = self { false } else { true } }
    }

    struct Peer {
        var name: String
        /// Where it was last heard on the LAN, and when (nil: heard only through the relay).
        var lan: SocketAddress?
        var lanHeard: Nanos = 0
        var relayHeard: Nanos = 0
        /// When its Bluetooth LE advertisement was last heard, and how strong.
        var bleHeard: Nanos = 0
        var bleRSSI: Int8?
        var bleAddress: String?
        /// When a message last came over its Bluetooth LE channel.
        var bleDataHeard: Nanos = 0
        var lastHeard: Nanos
        var filter = ClockFilter()
        var sent = 0
        var nextExchange: Nanos = 0
        var tracks: UInt32 = 0
        var dataPort: Int = 0

        /// The LAN while it was heard there in the last 3 s (fast, and copies tracks), else its
        /// Bluetooth LE channel (near, and no mobile data), else the relay.
        /// `bleChannel`: a Bluetooth LE channel to it is open now.
        func route(_ id: MemberID, now: Nanos, bleChannel: Bool = true) -> Route {
            let fresh = 3 * nanosPerSecond
            if let lan, now - lanHeard < fresh { return .lan(lan) }
            if bleChannel, bleDataHeard > 0, now - bleDataHeard < fresh { return .ble(id) }
            if relayHeard > 0 { return .relay(id) }
            if let lan { return .lan(lan) }
            return bleChannel && bleDataHeard > 0 ? .ble(id) : .relay(id)
        }
        var link: String {
            let links = [lan != nil ? "lan" : nil, relayHeard > 0 ? "relay" : nil, bleHeard > 0 || bleDataHeard > 0 ? "ble" : nil].compactMap { $0 }
            return links.isEmpty ? "lan" : links.joined(separator: "+")
        }
    }

    /// `<data-dir>/convoy.json` (root only): the convoy's secret, as its join code, and name.
    struct Membership: Codable {
        var code: String
        var name: String
    }

    let store: Store
    let clock: SystemClock
    let player: Player
    let logger: Logger
    let carName: String
    let sampleRate: Int
    let settings: LANTransport.Settings
    /// The internet relay's settings (nil: no relay); the link itself exists while in a convoy.
    let relaySettings: RelayTransport.Settings?
    var relay: RelayTransport?
    /// The Bluetooth LE controller (nil: none); the link exists while in a convoy.
    let bleController: UInt16?
    var ble: BLELink?
    /// What both links deliver, handled in arrival order by one task (`start`).
    let inbox: AsyncStream<Datagram>
    let inboxSink: AsyncStream<Datagram>.Continuation
    let membershipPath: String
    public let me: MemberID

    var secret: ConvoySecret?
    /// Seals what this car sends; shared with the transport's event loop, where clock-exchange
    /// datagrams are stamped and sealed just before they are written.
    let outbox = Outbox()
    var receiver: Receiver
    var session: Session
    var log: PlaylistLog
    var peers: [MemberID: Peer] = [:]
    var transport: LANTransport?
    var lastBeacon: Nanos = 0
    /// Beacons go through the relay every 5 s (mobile data), on the LAN every second.
    var lastRelayBeacon: Nanos = 0
    static let relayBeaconInterval: Nanos = 5 * nanosPerSecond
    var decodeErrors: UInt64 = 0
    var rejected: Int64 = 0
    var followedAt: Nanos = 0
    /// A follower restarted where its DJ cannot be heard (out of reach, or the DJ is off too)
    /// plays on from where it was, in its own clock, until it hears the DJ again.
    var solo: TimelineAnchor?
    var peerBoots: [MemberID: UInt32] = [:]
    /// Each peer's wall − monotonic mapping, from the disciplined wall readings in its beacons.
    var peerWall: [MemberID: WallMapping] = [:]
    let cache: TrackCache
    var trackServer: TrackServer?
    var startingServer = false
    var fetching: Set<TrackID> = []
    var fetched: Int64 = 0
    var fetchFailures: Int64 = 0
    /// Bytes copied and the time the copies took (throughput, for status and the benchmark).
    var fetchedBytes: Int64 = 0
    var fetchNanos: Int64 = 0
    /// When the track server may be tried again after it could not start.
    var trackServerRetry: Nanos = 0
    var followSeq = 0
    var editing = false
    var beaconCount = 0
    /// Where this car is; positions of the others go to it.
    var location: Location?
    /// Rung when work may be due sooner than the loop's next deadline (a join, a new peer, a
    /// first clock estimate of the DJ, a new timeline).
    nonisolated let wakeup = Doorbell()

    static func load(store: Store, cache: TrackCache, clock: SystemClock, player: Player, config: DaemonConfig, logger: Logger) async throws -> Convoy {
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
        let c = Convoy(store: store, cache: cache, clock: clock, player: player, logger: logger, carName: config.carName, sampleRate: config.sampleRate,
                       settings: LANTransport.Settings(port: config.convoyPort, impairment: config.testLinkImpairment),
                       relaySettings: config.relay, bleController: config.bleController >= 0 ? UInt16(config.bleController) : nil,
                       membershipPath: path, me: id, ops: ops, timeline: timeline)
        try await c.loadMembership()
        return c
    }

    init(store: Store, cache: TrackCache, clock: SystemClock, player: Player, logger: Logger, carName: String, sampleRate: Int, settings: LANTransport.Settings,
         relaySettings: RelayTransport.Settings? = nil, bleController: UInt16? = nil, membershipPath: String, me: MemberID, ops: [PlaylistOp], timeline: ConvoyTimeline?) {
        self.store = store; self.cache = cache; self.clock = clock; self.player = player; self.logger = logger
        self.carName = carName; self.sampleRate = sampleRate; self.settings = settings; self.membershipPath = membershipPath; self.me = me
        self.relaySettings = relaySettings
        self.bleController = bleController
        // Bounded: under a flood (a broken or hostile sender) the oldest waiting datagrams are
        // dropped and counted, and memory stays flat.
        (inbox, inboxSink) = AsyncStream.makeStream(of: Datagram.self, bufferingPolicy: .bufferingNewest(Self.inboxLimit))
        receiver = Receiver(me: me)
        session = Session(me: me, timeline: timeline)
        log = PlaylistLog(me: me, ops: ops)
    }

    public var inGroup: Bool { secret != nil }

    func attach(_ l: Location) { location = l }

    // MARK: membership

    private func loadMembership() async throws {
        guard let data = FileManager.default.contents(atPath: membershipPath) else { return }
        guard let m = try? JSONDecoder().decode(Membership.self, from: data),
              let s = try? JoinCode.parse(m.code, name: m.name) else {
            logger.error("\(membershipPath) is unreadable: not in a convoy until `jamz group join` again")
            return
        }
        adopt(s, boots: try await nextBoot())
    }

    /// The envelope boot counter: increased and made durable before anything is sealed, never
    /// reset (not by a join, a leave or a new convoy), so (key, sequence number) never repeats.
    private func nextBoot() async throws -> UInt32 {
        let path = (membershipPath as NSString).deletingLastPathComponent + "/convoy.boot"
        return try await onThread("jamz-convoy-boot") {
            let last = FileManager.default.contents(atPath: path).flatMap { UInt32(String(decoding: $0, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)) } ?? 0
            guard last < UInt32.max else { throw Player.CommandError("convoy boot counter exhausted: make a new member identity") }
            try Convoy.writeDurably(Array("\(last + 1)\n".utf8), to: path)
            return last + 1
        }
    }

    /// Write a small file so that a power cut leaves either the old or the new content: a
    /// root-only temporary file, fsync, rename, fsync of the folder.
    /// Blocking (fsync): run it on a thread of its own.
    private static func writeDurably(_ bytes: [UInt8], to path: String) throws {
        let tmp = path + ".tmp"
        unlink(tmp)
        let fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL, 0o600)
        guard fd >= 0 else { throw Player.CommandError("cannot write \(tmp): \(String(cString: strerror(errno)))") }
        let ok = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) } == bytes.count && fsync(fd) == 0
        close(fd)
        guard ok, rename(tmp, path) == 0 else { throw Player.CommandError("cannot write \(path): \(String(cString: strerror(errno)))") }
        let dir = open((path as NSString).deletingLastPathComponent, O_RDONLY)
        if dir >= 0 { fsync(dir); close(dir) }
    }

    private func saveMembership(_ m: Membership) async throws {
        let bytes = Array(try JSONEncoder().encode(m)), path = membershipPath
        try await onThread("jamz-convoy-save") { try Convoy.writeDurably(bytes, to: path) }
    }

    private func adopt(_ s: ConvoySecret, boots: UInt32) {
        if let old = secret { receiver.remove(group: old.groupID) }
        // The track server answers members of one convoy: restarted with the new key by tick().
        if let server = trackServer { trackServer = nil; Task { await server.close() } }
        secret = s
        receiver.add(s.key)
        outbox.use(Sealer(key: s.key, sender: me, bootCount: boots))
        trackServerRetry = 0
        lastBeacon = 0; lastRelayBeacon = 0
        startRelay(s)
        startBLE(s)
        wakeup.ring()
    }

    /// The Bluetooth LE link of this convoy (its advertisement's keys come from the secret).
    private func startBLE(_ s: ConvoySecret) {
        ble?.close()
        ble = nil
        guard let index = bleController else { return }
        let (sink, counters) = (inboxSink, store.counters)
        // The advertisement's 15-minute slot from GPS time when this car has had a fix (a head
        // unit without a real-time clock may boot far off), else from the system clock.
        let (location, clock) = (location, clock)
        let l = BLELink(controller: index, me: me, key: s.bleKey, clock: clock, logger: logger,
                        wallSeconds: { location?.utcSeconds(at: clock.now()) ?? Int64(time(nil)) }, onSighting: { [weak self] sighting in
            guard let self else { return }
            Task { await self.sighted(sighting) }
        }, onMessage: { bytes, at, channel in
            if case .dropped = sink.yield(Datagram(bytes: bytes, from: nil, ble: channel, at: at)) { counters.add("convoy.dropped.overload", 1) }
        })
        l.advertise(bleBeacon)
        l.start()
        ble = l
    }

    var bleBeacon: BLEAdvertisement.Beacon { .init(member: me, term: session.term.number, isDJ: session.term.dj == me) }

    /// A convoy car's advertisement heard over Bluetooth LE: it is near (shown as link `ble`
    /// with its RSSI); the link opens a data channel to it.
    func sighted(_ s: BLELink.Sighting) {
        guard inGroup, s.member != me else { return }
        var p = peers[s.member] ?? Peer(name: "car \(s.member) (BLE)", lastHeard: s.at)
        if peers[s.member] == nil || p.bleHeard == 0 {
            logger.info("peer \(p.name) (\(s.member)) over Bluetooth LE at \(s.address)\(s.rssi.map { ", \($0) dBm" } ?? "")")
        }
        // Sightings come on tasks of their own: an older one may come after a newer.
        guard s.at >= p.bleHeard else { return }
        p.bleHeard = s.at; p.bleRSSI = s.rssi; p.bleAddress = "\(s.address)"; p.lastHeard = max(p.lastHeard, s.at)
        peers[s.member] = p
        heardOverRadio(s.member, at: s.at)
    }

    /// A convoy car's advertisement or envelope came over Bluetooth LE: it is within the radio's
    /// range ("together" counts it, with the RSSI of its last advertisement).
    private func heardOverRadio(_ id: MemberID, at: Nanos) {
        guard inGroup, id != me else { return }
        location?.sighted(id, name: peers[id]?.name ?? "\(id)", rssi: peers[id]?.bleRSSI, at: at)
    }

    /// The relay link of this convoy (its topic comes from the secret), if one is configured.
    private func startRelay(_ s: ConvoySecret) {
        relay?.close()
        relay = nil
        guard let r = relaySettings else { return }
        var g = SystemRandomNumberGenerator()
        // A client id that names neither the car nor the convoy, new at each start.
        let clientID = "jamz-" + String(g.next() as UInt64, radix: 36)
        let (sink, counters) = (inboxSink, store.counters)
        do {
            let t = try RelayTransport(settings: r, topic: s.relayTopic, inbox: s.relayInbox(for: me), clientID: clientID,
                                       clock: clock, logger: logger) { bytes, at in
                if case .dropped = sink.yield(Datagram(bytes: bytes, from: nil, at: at)) { counters.add("convoy.dropped.overload", 1) }
            }
            t.start()
            relay = t
            logger.info("convoy relay: \(t.status.broker)")
        } catch {
            logger.error("convoy relay cannot start: \(error); the convoy uses the LAN only")
        }
    }

    func create(name: String) async throws -> (String, String) {
        let s = ConvoySecret.random(name: name.isEmpty ? "\(carName)'s convoy" : name)
        try await saveMembership(Membership(code: JoinCode.make(s), name: s.name))
        adopt(s, boots: try await nextBoot())
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
        try await saveMembership(Membership(code: JoinCode.make(s), name: s.name))
        adopt(s, boots: try await nextBoot())
        peers.removeAll()
        solo = nil
        location?.forgetPeers()
        // Another convoy: its DJ, timeline and playlist come from it, not from what we held.
        session = Session(me: me)
        log = PlaylistLog(me: me)
        try await store.pool.write { db in try ConvoyLog.clearOps(db) }
        try await persistTimeline()
        await follow()
        return "joined convoy \(s.groupID); waiting for the others (beacons every second)"
    }

    func leave() async throws -> String {
        guard let s = secret else { return "not in a convoy" }
        try? FileManager.default.removeItem(atPath: membershipPath)
        receiver.remove(group: s.groupID)
        secret = nil; outbox.use(nil); peers.removeAll(); solo = nil
        relay?.close(); relay = nil
        ble?.close(); ble = nil
        location?.forgetPeers()
        if let server = trackServer { trackServer = nil; await server.close() }
        session = Session(me: me)
        try await persistTimeline()
        return "left convoy \(s.groupID); playing alone"
    }

    /// At shutdown: the relay says goodbye to its broker (best effort: the goodbye is sent on the
    /// relay's control queue, which the exit may overtake; the broker then waits out the keep-alive).
    func shutdown() {
        relay?.close()
        relay = nil
        ble?.close()
        ble = nil
    }

    /// After a restart this car's clock began again. The DJ re-anchors the convoy where the
    /// player resumed (the position saved before the power went). A follower plays on from there
    /// by itself ("solo") until it hears the DJ, then takes the DJ's timeline again: the music
    /// comes back with the ignition even when the rest of the convoy is out of reach.
    func resume(saved: PlayerRecord?) async {
        guard inGroup else { return }
        let list = log.entries
        guard let rec = saved, let id = rec.entryId,
              let e = list.first(where: { Player.entryID($0.id) == id }) else { return }
        let at = clock.now() + 300_000_000
        let frame = min(max(0, rec.frame), max(0, e.frames - 1))
        guard session.isDJ else {
            guard rec.playing else { return }
            solo = TimelineAnchor(entry: e.id, track: e.track, frame: frame, time: at, rate: 1)
            logger.info("the DJ is not heard yet: playing on from \(e.track.short) frame \(frame) until it is")
            return
        }
        guard let t = session.restart(from: TimelineAnchor(entry: e.id, track: e.track, frame: frame, time: at, rate: rec.playing ? 1 : 0)) else { return }
        try? await store.pool.write { db in try ConvoyLog.saveTimeline(db, t) }
        logger.info("resuming the convoy as its DJ at \(e.track.short) frame \(frame)")
    }

    // MARK: the link

    struct Datagram: Sendable {
        var bytes: [UInt8]
        /// nil: it came through the relay or (`ble`: that channel's peer) over Bluetooth LE.
        var from: SocketAddress?
        var ble: Mgmt.Address?
        var at: Nanos
    }
    /// Datagrams waiting to be handled; beyond this the oldest are dropped (a flood).
    static let inboxLimit = 4096

    func start(group: any EventLoopGroup) async {
        // One queue for both links, handled in arrival order by one task.
        let inbox = self.inbox
        Task { [weak self] in
            for await d in inbox {
                guard let self else { return }
                await self.receive(d.bytes, from: d.from, ble: d.ble, at: d.at)
            }
        }
        guard settings.port > 0 else { logger.info("convoy LAN link disabled (convoy_port = 0)"); return }
        do {
            let (sink, counters) = (inboxSink, store.counters)
            let t = try await LANTransport.start(settings: settings, on: group, clock: clock, logger: logger) { bytes, from, at in
                if case .dropped = sink.yield(Datagram(bytes: bytes, from: from, at: at)) {
                    counters.add("convoy.dropped.overload", 1)
                }
            }
            transport = t
            logger.info("convoy link: UDP \(settings.port), beacons on \(settings.group) via \(t.joined.joined(separator: ", "))")
        } catch {
            logger.error("convoy link cannot start: \(error); playing alone")
        }
    }

    /// Does what is due — a beacon each second, the clock exchanges the pacer asks for, the
    /// timeline handed to the player again (every 100 ms while a follower plays the DJ's music),
    /// the track server, copies of missing tracks — and returns when something is due next (nil:
    /// not in a convoy, only a ring can make work due).
    func tick() async -> Nanos? {
        guard inGroup, transport != nil || relay != nil || ble != nil else { return nil }
        let now = clock.now()
        if now - lastBeacon >= nanosPerSecond {
            lastBeacon = now
            beaconCount += 1
            location?.setSession(secret.map { Int64(bitPattern: $0.groupID.raw) } ?? 0)
            let b = Beacon(member: me, name: carName, timeline: session.timeline, highWater: beaconHighWater(),
                           clockQuality: UInt8(djEstimate?.quality.rawValue ?? 0), wall: location?.wallSample(),
                           position: location?.wirePosition(at: now), tracks: 0, dataPort: UInt16(trackServer?.port ?? 0))
            send(.beacon(b), to: nil)
            ble?.advertise(bleBeacon)   // re-advertised only when the term or the DJ changed
            // Copies of missing tracks are looked for with each beacon (and when the playlist,
            // the timeline or the peers change).
            fetchMissing()
        }
        for (id, p) in peers where now >= p.nextExchange {
            var q = p
            q.sent += 1
            let route = p.route(id, now: now, bleChannel: ble?.reaches(id) ?? false)
            let gpsTime = location?.ownWall.latest != nil && peerWall[id]?.latest != nil
            let pacer = ExchangePacer.forPeer(isDJ: id == session.term.dj, playing: session.timeline.anchor?.rate == 1,
                                              slowLink: route.isSlow, gpsTime: gpsTime)
            q.nextExchange = now + pacer.interval(sent: q.sent, quality: q.filter.estimate?.quality ?? .none, delaySpread: q.filter.delaySpread)
            peers[id] = q
            let count = pacer.datagrams(delaySpread: q.filter.delaySpread)
            sendStamped(to: route, count: count) { t1 in .timeRequest(t1: t1, wall: nil) }
        }
        if let due = followDue, now >= due { await follow() }
        if trackServer == nil, !startingServer, now >= trackServerRetry, let s = secret {
            startingServer = true
            do {
                trackServer = try await TrackServer.start(cacheDir: cache.dir.path, key: s.key, group: MultiThreadedEventLoopGroup.singleton)
                logger.info("track server on TCP \(trackServer!.port)")
            } catch {
                trackServerRetry = clock.now() + 5 * nanosPerSecond
                logger.error("track server cannot start: \(error); other cars cannot copy tracks from this one; trying again in 5 s")
            }
            startingServer = false
        }
        var next = lastBeacon + nanosPerSecond
        for p in peers.values { next = min(next, p.nextExchange) }
        if let due = followDue { next = min(next, due) }
        if trackServer == nil { next = min(next, trackServerRetry) }
        return next
    }

    /// When the timeline is handed to the player again: every 100 ms while the convoy's music
    /// plays or a change is scheduled (a follower re-anchors the DJ's timeline at our "now", see
    /// `follow`), once a second otherwise (a safety net: a paused or stopped timeline is also
    /// handed over when it changes and when the DJ's clock is first measured); nil out of a convoy.
    private var followDue: Nanos? {
        guard inGroup else { return nil }
        guard let a = session.timeline.anchor else { return followedAt + nanosPerSecond }
        let djNow = session.isDJ ? followedAt : (djEstimate.map { $0.peerTime(at: followedAt) } ?? followedAt)
        return followedAt + (a.rate == 1 || a.time > djNow ? Convoy.followInterval : nanosPerSecond)
    }
    static let followInterval: Nanos = 100_000_000

    /// The op-log high-water marks a beacon carries: all of them, or a rotating window of
    /// `WireLimits.origins` when the convoy has seen more origins than one beacon holds.
    private func beaconHighWater() -> [MemberID: UInt64] {
        let hw = log.highWater
        guard hw.count > WireLimits.origins else { return hw }
        let keys = hw.keys.sorted()
        let start = (beaconCount * WireLimits.origins) % keys.count
        let window = (0..<WireLimits.origins).map { keys[(start + $0) % keys.count] }
        return Dictionary(uniqueKeysWithValues: window.map { ($0, hw[$0]!) })
    }

    /// A clock-exchange message that carries the moment it leaves: stamped, sealed and written
    /// on the transport's event loop, after a rehearsal seal (`LANTransport.sendStamped`).
    private func sendStamped(to route: Route, count: Int = 1, _ message: @escaping @Sendable (Nanos) -> WireMessage) {
        guard case .lan(let address) = route else {
            // Through the relay: stamped when handed to its thread (the path's 40+ ms of jitter
            // dwarfs the hand-over), one at a time.
            if case .relay(let id) = route, let relay, let s = secret,
               let bytes = outbox.seal(stampedBy: { clock.now() }, message) {
                relay.publish(bytes, .datagram, to: s.relayInbox(for: id))
            }
            // Over BLE: stamped just before the channel's non-blocking write.
            if case .ble(let id) = route, let ble { ble.send(to: id) { [outbox, clock] in outbox.seal(stampedBy: { clock.now() }, message) } }
            return
        }
        transport?.sendStamped(to: address, count: count, rehearse: { [outbox] in outbox.rehearse(message(0)) }) { [outbox] read in
            outbox.seal(stampedBy: read, message)
        }
    }

    /// To one car the way it was heard (`to`), or to every car on every link (nil).
    private func send(_ m: WireMessage, to route: Route?) {
        guard let bytes = outbox.seal(m) else { return }
        switch route {
        case .lan(let address): transport?.send(bytes, to: address)
        case .relay(let id): if let s = secret { relay?.publish(bytes, .reliable, to: s.relayInbox(for: id)) }
        case .ble(let id): ble?.send(bytes, to: id)
        case nil:
            transport?.multicast(bytes)
            ble?.broadcast(bytes)
            guard let relay else { return }
            switch m {
            case .beacon:
                let now = clock.now()
                guard now - lastRelayBeacon >= Self.relayBeaconInterval else { return }
                lastRelayBeacon = now
                relay.publish(bytes, .datagram)
            case .timeline:
                relay.publish(bytes, .reliable)
                relay.publish(bytes, .retainedTimeline)
            default: relay.publish(bytes, .reliable)
            }
        }
    }

    /// Multicast the timeline, and again 10 ms later: one lost datagram must not make a car
    /// learn a scheduled change from a beacon after the change's instant.
    private func announce() {
        send(.timeline(session.timeline), to: nil)
        Task {
            try? await Task.sleep(for: .milliseconds(10))
            self.announceAgain()
        }
    }
    private func announceAgain() { send(.timeline(session.timeline), to: nil) }

    /// `address`: where it came from on the LAN (nil: through the relay).
    func receive(_ bytes: [UInt8], from address: SocketAddress?, ble channel: Mgmt.Address? = nil, at: Nanos) async {
        let ble = channel != nil
        let sender: MemberID, seq: UInt64, payload: [UInt8]
        do { (_, sender, seq, payload) = try receiver.admit(bytes) } catch {
            // The same envelope came first over another link: this one carries the car too
            // (shown as "lan+relay", "lan+ble"…; only the route's choice and the display depend on it).
            if error == .duplicate, address == nil, let h = try? Envelope.header(of: bytes) {
                if ble { peers[h.sender]?.bleDataHeard = at; heardOverRadio(h.sender, at: at) } else { peers[h.sender]?.relayHeard = at }
            }
            return
        }
        let from: Route = address.map { .lan($0) } ?? (ble ? .ble(sender) : .relay(sender))
        if let channel {
            // Its envelope came over this channel: messages to it go back the same way.
            self.ble?.bind(sender, to: channel)
            peers[sender]?.bleDataHeard = at
            heardOverRadio(sender, at: at)
        }
        // A new boot of that car: its monotonic clock began again, its old samples mean nothing.
        let boot = UInt32(truncatingIfNeeded: seq >> 32)
        if let known = peerBoots[sender], known != boot { peers[sender]?.filter.reset(); peerWall[sender] = nil }
        peerBoots[sender] = boot
        let message: WireMessage
        do { message = try WireCodec.decode(payload) } catch {
            decodeErrors += 1
            logger.warning("undecodable message from \(sender): \(error)")
            return
        }
        switch message {
        case .beacon(let b):
            var p = peers[sender] ?? Peer(name: b.name, lastHeard: at)
            let newSource = b.dataPort > 0 && (peers[sender]?.dataPort ?? 0) == 0
            if peers[sender] == nil {
                logger.info("peer \(b.name) (\(sender)) at \(from)")
                // Through the relay, a newcomer hears our beacon now rather than within 5 s.
                if address == nil { lastBeacon = 0; lastRelayBeacon = 0 }
                wakeup.ring()   // a clock exchange with it is due now
            }
            p.name = b.name; p.lastHeard = at; p.tracks = b.tracks; p.dataPort = Int(b.dataPort)
            if let w = b.wall, w.ppsDisciplined, abs(w.mono) < Self.timeLimit, abs(w.wall) < Self.timeLimit {
                peerWall[sender, default: WallMapping()].add(w)
            }
            if let address { p.lan = address; p.lanHeard = at } else if ble { p.bleDataHeard = at } else { p.relayHeard = at }
            peers[sender] = p
            if newSource { fetchMissing() }   // it may have tracks we lack
            await take(b.timeline)
            location?.heard(sender, name: b.name, position: b.position, at: at)
            let missing = log.missing(for: b.highWater, limit: WireLimits.opsPerMessage)
            for m in WireCodec.opsMessages(missing) { send(m, to: from) }
        case .timeRequest(let t1, _):
            sendStamped(to: from) { t3 in .timeReply(t1: t1, t2: at, t3: t3, wall: nil) }
        case .timeReply(let t1, let t2, let t3, _):
            // Clock readings of a member's monotonic clock: far from ±2⁶³, so no difference overflows.
            guard [t1, t2, t3].allSatisfy({ abs($0) < Self.timeLimit }) else { rejected += 1; return }
            let had = peers[sender]?.filter.estimate != nil
            peers[sender]?.filter.add(ClockSample(t1: t1, t2: t2, t3: t3, t4: at))
            peers[sender]?.lastHeard = at
            // The DJ's clock is measured for the first time: its timeline can be followed now.
            if !had, sender == session.term.dj, peers[sender]?.filter.estimate != nil { await follow() }
        case .timeline(let t):
            await take(t)
        case .ops(let ops):
            await receiveOps(ops)
        case .opsRequest(let hw):
            for m in WireCodec.opsMessages(log.missing(for: hw, limit: WireLimits.opsPerMessage)) { send(m, to: from) }
        }
    }

    /// Anchor times are monotonic clock readings and frames track positions: anything near the
    /// integer limits is a bug or an attack and would overflow the timeline arithmetic.
    static let timeLimit: Nanos = 1 << 61
    static func sane(_ t: ConvoyTimeline) -> Bool {
        [t.anchor, t.previous].allSatisfy { a in
            guard let a else { return true }
            return abs(a.time) < timeLimit && a.frame >= 0 && a.frame < 1 << 40 && (a.rate == 0 || a.rate == 1)
        }
    }

    private func take(_ t: ConvoyTimeline) async {
        guard Self.sane(t) else {
            rejected += 1
            logger.warning("ignored a timeline with out-of-range times or frames (term \(t.term))")
            return
        }
        guard session.receive(t) else { return }
        logger.info("timeline \(t.term) v\(t.version) from the DJ")
        wakeup.ring()   // following it may be due every 100 ms now, or no more
        try? await persistTimeline()
        await follow()
    }

    private func receiveOps(_ ops: [PlaylistOp]) async {
        let before = log.ops.count
        _ = log.receive(contentsOf: ops)
        guard log.ops.count != before else { return }
        let held = Dictionary(log.ops.map { ($0.id, $0) }, uniquingKeysWith: { a, _ in a })
        let fresh = ops.filter { held[$0.id] == $0 }
        do { try await store.pool.write { db in try ConvoyLog.append(db, fresh) } } catch {
            logger.error("cannot store playlist ops: \(error)")
        }
        await follow()
        fetchMissing()
    }

    private func persistTimeline() async throws {
        let t = session.timeline
        try await store.pool.write { db in try ConvoyLog.saveTimeline(db, t) }
    }

    // MARK: following the timeline

    var djEstimate: ClockEstimate? {
        session.isDJ ? nil : estimate(of: session.term.dj, at: clock.now())
    }

    /// A peer's clock against ours: the network estimate (clock exchanges), fused with what both
    /// cars' GPS-disciplined wall clocks say when both have one (`OffsetFusion`: by their
    /// bounds, never outside the network's hard bound). GPS time is what keeps cars in sync over
    /// a path whose asymmetry the exchanges cannot see (a relay, mobile data).
    func estimate(of id: MemberID, at now: Nanos) -> ClockEstimate? {
        let net = peers[id]?.filter.estimate
        guard let own = location?.ownWall, let theirs = peerWall[id],
              let gps = GPSTimeOffset.offset(local: own, peer: theirs, at: now) else { return net }
        guard let fused = OffsetFusion.fuse(network: net.map { ($0.offset(at: now), $0.bound) }, gps: gps) else { return net }
        var e = net ?? ClockEstimate(reference: now, offsetAtReference: 0, ppm: 0, bound: 0, spread: 0, quality: .coarse, samples: 0)
        e.reference = now
        e.offsetAtReference = fused.offset
        e.bound = fused.bound
        if fused.source == .gps { e.quality = .locked }
        return e
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
            followSeq += 1
            await player.follow(playlist: list, anchor: tl.anchor, toLocal: tl.anchor?.time, seq: followSeq)
            return
        }
        guard let est = djEstimate else {
            followSeq += 1
            await player.follow(playlist: list, anchor: solo, toLocal: solo?.time, seq: followSeq)
            return
        }
        if solo != nil {
            solo = nil
            logger.info("the DJ is heard: following the convoy's timeline again")
        }
        let djNow = est.peerTime(at: now)
        if let a = tl.anchor, a.time > djNow {
            followSeq += 1
            await player.follow(playlist: list, anchor: a, toLocal: est.localTime(atPeer: a.time), seq: followSeq)
            return
        }
        guard let inForce = tl.anchor(at: djNow), inForce.rate != 0,
              let (p, fraction) = tl.precisePosition(at: djNow, in: list, sampleRate: sampleRate) else {
            // Paused: the paused place; past the end of the playlist or nothing yet: silence.
            let paused = tl.anchor(at: djNow).flatMap { $0.rate == 0 ? $0 : nil }
            followSeq += 1
            await player.follow(playlist: list, anchor: paused, toLocal: paused == nil ? nil : now, seq: followSeq)
            return
        }
        // Frame p.frame was heard `fraction` of a frame period before now.
        let at = now - Nanos((fraction * 1e9 / Double(sampleRate)).rounded())
        let here = TimelineAnchor(entry: p.entry, track: list[p.index].track, frame: p.frame, time: djNow, rate: 1)
        followSeq += 1
        await player.follow(playlist: list, anchor: here, toLocal: at, seq: followSeq)
    }

    // MARK: tracks this car lacks

    /// The playing entry and the next two: any whose track is not in this car's cache is copied
    /// from a car that has it, by content hash (verified by SHA-256 before use), while the
    /// music goes on. Until it arrives that entry is silent in this car only.
    func fetchMissing() {
        guard let s = secret, !peers.isEmpty else { return }
        let list = log.entries
        guard !list.isEmpty else { return }
        let djNow = session.isDJ ? clock.now() : djEstimate.map { $0.peerTime(at: clock.now()) }
        let here = djNow.flatMap { session.timeline.position(at: $0, in: list, sampleRate: sampleRate)?.index } ?? 0
        for e in list[here..<min(list.count, here + 3)] where !fetching.contains(e.track) {
            guard !FileManager.default.fileExists(atPath: cache.path(for: e.track)) else { continue }
            // Copies come over the LAN (TCP to its track server); the relay carries no files.
            let sources = peers.values.filter { $0.dataPort > 0 && $0.lan != nil }.sorted { $0.lastHeard > $1.lastHeard }
            guard !sources.isEmpty else { return }
            fetching.insert(e.track)
            let key = s.key
            Task { await self.fetch(e.track, from: sources, key: key) }
        }
    }

    private func fetch(_ id: TrackID, from sources: [Peer], key: ConvoyKey) async {
        defer { fetching.remove(id) }
        for p in sources {
            guard let host = p.lan?.ipAddress else { continue }
            do {
                let began = clock.now()
                let file = try await TrackFetcher.fetch(id, from: host, port: p.dataPort, key: key, sender: me,
                                                        into: cache.dir.path, timeout: .seconds(60))
                let took = clock.now() - began
                let (cache, rate, path) = (self.cache, sampleRate, file.path)
                // The file system work (stat, probe, catalog) on a thread of its own.
                let (info, size) = try await onThread("jamz-register") { () -> (TrackInfo, Int64) in
                    let size = ((try? FileManager.default.attributesOfItem(atPath: path))?[.size] as? NSNumber)?.int64Value ?? 0
                    return (try cache.register(id, rate: rate), size)
                }
                fetchedBytes += size
                fetchNanos += took
                fetched += 1
                logger.info("copied \"\(info.title)\" (\(id.short), \(size) bytes in \(took / 1_000_000) ms) from \(p.name)")
                await follow()
                return
            } catch {
                logger.warning("cannot copy \(id.short) from \(p.name): \(error)")
            }
        }
        fetchFailures += 1
        logger.warning("track \(id.short) could not be copied from any car: it is silent in this car; trying again later")
    }

    // MARK: commands (DJ rules)

    func takeControl() async throws -> String {
        guard inGroup else { throw Player.CommandError("not in a convoy: `jamz group create` or `jamz group join CODE` first") }
        if session.isDJ { return "this car is already the DJ (term \(session.term.number))" }
        if djEstimate == nil, let here = solo {
            // Playing by itself after a restart out of the DJ's reach: its own music, in its
            // own clock, becomes the convoy's (the highest term wins when the cars meet again).
            let t = ConvoyTimeline(term: Term(number: session.term.number + 1, dj: me), version: 0, anchor: here, previous: nil)
            try await store.pool.write { db in try ConvoyLog.saveTimeline(db, t) }
            session.receive(t)
            solo = nil
            announce()
            await follow()
            return "this car is the DJ now (term \(t.term.number)), from where it was playing"
        }
        guard let est = djEstimate else {
            throw Player.CommandError("the DJ's clock is not measured yet (no exchange with it): try again in a second")
        }
        var copy = session
        let t = copy.takeOver { djTime in est.localTime(atPeer: djTime) }
        try await store.pool.write { db in try ConvoyLog.saveTimeline(db, t) }
        session.receive(t)
        announce()
        await follow()
        return "this car is the DJ now (term \(t.term.number))"
    }

    func add(_ records: [TrackRecord]) async throws -> String {
        guard !editing else { throw Player.CommandError("another edit is being saved; try again") }
        editing = true
        defer { editing = false }
        // Made on a copy and stored before the log (and so beacons and anti-entropy) can show it.
        var copy = log
        var made: [PlaylistOp] = []
        for r in records {
            guard let id = TrackID(hex: r.id) else { continue }
            do { made.append(try copy.make(.add(track: id, frames: r.frames, after: nil), term: session.term)) } catch {
                throw Player.CommandError("cannot add: \(error)")
            }
        }
        let toStore = made
        try await store.pool.write { db in try ConvoyLog.append(db, toStore) }
        _ = log.receive(contentsOf: made)
        for m in WireCodec.opsMessages(made) { send(m, to: nil) }
        await follow()
        fetchMissing()
        return "added \(made.count) track\(made.count == 1 ? "" : "s") to the convoy playlist (\(log.entries.count) entries)"
    }

    func change(_ change: TimelineChange, lead: Nanos) async throws -> String {
        guard session.isDJ else {
            throw Player.CommandError("only the DJ controls playback: `jamz take-control` makes this car the DJ")
        }
        let at = clock.now() + lead
        var copy = session
        guard let t = copy.schedule(change, at: at, playlist: log.entries, sampleRate: sampleRate) else {
            throw Player.CommandError("nothing to play: `jamz add WORDS` first")
        }
        try await store.pool.write { db in try ConvoyLog.saveTimeline(db, t) }
        session.receive(t)   // unless a newer term arrived meanwhile
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
        c["convoy.rejected"] = rejected
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
                    term: session.term.number, dj: "\(session.term.dj)", isDJ: session.isDJ,
                    joinCode: secret.map { JoinCode.make($0) }, drops: receiver.drops, accepted: receiver.accepted,
                    decodeErrors: decodeErrors, relay: relay?.status, ble: ble?.status)
    }

    func peersReport() -> [PeerReport] {
        let now = clock.now()
        return peers.sorted { $0.key < $1.key }.map { id, p in
            let e = estimate(of: id, at: now)
            return PeerReport(member: "\(id)", name: p.name, address: p.lan.map { "\($0)" } ?? (p.relayHeard > 0 ? "relay" : p.bleAddress ?? "relay"), link: p.link,
                              lastHeardSeconds: Double(now - p.lastHeard) / 1e9,
                              offsetMs: e.map { $0.offset(at: now) / 1e6 }, boundMs: e.map { Double($0.bound) / 1e6 },
                              spreadMs: e.map { Double($0.spread) / 1e6 }, ppm: e?.ppm, quality: e.map { "\($0.quality)" } ?? "none",
                              isDJ: id == session.term.dj, rssi: p.bleRSSI.map(Int.init))
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
}

/// The sealing side of a car's convoy link: the sealer (key, sender id, sequence numbers) and
/// what was sent, behind a lock, so that both the convoy's actor and the transport's event loop
/// (which stamps and seals clock exchanges at the last moment) can seal.
final class Outbox: Sendable {
    private let sealer = Mutex<Sealer?>(nil)
    private let counts = Mutex((bytes: Int64(0), datagrams: Int64(0)))

    func use(_ s: Sealer?) { sealer.withLock { $0 = s } }

    /// The message sealed for sending (nil: not in a convoy), counted as sent.
    func seal(_ m: WireMessage) -> [UInt8]? { seal(stampedBy: { 0 }) { _ in m } }

    /// A message that carries the moment it leaves: the clock is read once the lock is held (a
    /// seal by the actor at that moment must not delay one direction of an exchange only).
    func seal(stampedBy read: () -> Nanos, _ message: (Nanos) -> WireMessage) -> [UInt8]? {
        guard let bytes = sealer.withLock({ s -> [UInt8]? in
            guard var x = s else { return nil }
            defer { s = x }
            return x.seal(WireCodec.encode(message(read())))
        }) else { return nil }
        counts.withLock { $0.bytes += Int64(bytes.count) + 28; $0.datagrams += 1 }   // + IPv4 and UDP headers
        return bytes
    }

    var sent: (bytes: Int64, datagrams: Int64) { counts.withLock { $0 } }

    /// Seals `m` without sending it or using a sequence number (see `Sealer.rehearse`).
    func rehearse(_ m: WireMessage) {
        let payload = WireCodec.encode(m)
        sealer.withLock { $0?.rehearse(payload) }
    }
}
