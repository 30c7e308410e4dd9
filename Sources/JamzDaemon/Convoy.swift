import Foundation
import JamzAudio
import JamzCore
import JamzLibrary
import JamzNet
import JamzStore
import Logging
import NIOCore
import NIOPosix

/// The car's part in a convoy, as I/O: the convoy's decisions are `ConvoyNode`'s (JamzCore,
/// sans-IO); this actor hands it what comes in (datagrams opened by the `Receiver`, BLE
/// sightings, commands, the time) and carries out the effects it returns — sealed sends over
/// the LAN, the relay and Bluetooth LE, the store, the player, track copies. Membership (the
/// secret, kept root-only in the data dir) and the links are here (Convoy+Membership.swift).
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
    /// The decisions.
    var node: ConvoyNode
    /// Where each car was last heard on the LAN.
    var lanAddress: [MemberID: SocketAddress] = [:]
    var transport: LANTransport?
    /// Beacons go through the relay every 5 s (mobile data), on the LAN every second.
    var lastRelayBeacon: Nanos = 0
    static let relayBeaconInterval: Nanos = 5 * nanosPerSecond
    var decodeErrors: UInt64 = 0
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
    var editing = false
    /// Changed by every join, create and leave (`run` stops carrying out an older convoy's effects).
    var membershipEpoch = 0
    /// Short-code and push-button joins (Convoy+Pairing.swift).
    var pairing: Pairing<SocketAddress>
    /// When "car N left", "offline" and "back online" are said.
    var convoyPrompts = ConvoyPromptGate()
    /// Join notes logged in the current second (a flood is counted, not logged).
    var pairingNotes: (since: Nanos, count: Int) = (0, 0)
    /// `jamz group join SHORTCODE` waiting for its outcome.
    var joinWaiter: CheckedContinuation<String, any Error>?
    /// The two check words of the last pairing (status; spoken on both cars).
    var lastCheckWord: String?
    /// Where this car is; positions of the others go to it.
    var location: Location?
    /// The spoken prompts, and whether this car was the DJ after the last effects were carried
    /// out (a change to DJ is said: "you are the DJ").
    var prompts: Prompts?
    var wasDJ = false
    /// Rung when work may be due sooner than the loop's next deadline (a join, a new peer, a
    /// first clock estimate of the DJ, a new timeline). Its deadlines are timers of `loop`.
    nonisolated let wakeup: Doorbell
    /// The event loop of the LAN link: this actor runs on it (its executor), so a datagram is
    /// handled, and the replies written, in the loop turn that read it, and the node's
    /// deadlines are the loop's timers: one thread wakes per datagram or deadline, not three.
    /// Nothing that blocks runs here: files and the store are awaited on their own threads and
    /// queues. (The player's short, non-blocking `follow` runs on the loop too: a task's
    /// executor preference carries over to actors without an executor of their own.)
    nonisolated let loop: any EventLoop
    /// The loop as an executor, taken once (for NIO's own loops it is the loop itself).
    nonisolated let serialExecutor: any SerialExecutor
    /// The same loop for the convoy's tasks (`runDue`, the inbox): what they await resumes there.
    nonisolated let loopExecutor: EventLoopTaskExecutor
    public nonisolated var unownedExecutor: UnownedSerialExecutor { serialExecutor.asUnownedSerialExecutor() }

    static func load(store: Store, cache: TrackCache, clock: SystemClock, player: Player, config: DaemonConfig, logger: Logger) async throws -> Convoy {
        let (id, ops, timeline) = try await store.convoyLog.loadSession {
            var g = SystemRandomNumberGenerator()
            return MemberID(g.next())
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
         relaySettings: RelayTransport.Settings? = nil, bleController: UInt16? = nil, membershipPath: String, me: MemberID, ops: [PlaylistOp], timeline: ConvoyTimeline?,
         loop: any EventLoop = MultiThreadedEventLoopGroup.singleton.next()) {
        self.loop = loop
        serialExecutor = loop.executor
        loopExecutor = EventLoopTaskExecutor(loop)
        wakeup = Doorbell(loop: loop)
        self.store = store; self.cache = cache; self.clock = clock; self.player = player; self.logger = logger
        self.sampleRate = sampleRate; self.settings = settings; self.membershipPath = membershipPath; self.me = me
        self.relaySettings = relaySettings
        self.bleController = bleController
        // Bounded: under a flood (a broken or hostile sender) the oldest waiting datagrams are
        // dropped and counted, and memory stays flat.
        (inbox, inboxSink) = AsyncStream.makeStream(of: Datagram.self, bufferingPolicy: .bufferingNewest(Self.inboxLimit))
        receiver = Receiver(me: me)
        node = ConvoyNode(me: me, carName: carName, sampleRate: sampleRate, ops: ops, timeline: timeline)
        pairing = Pairing(me: me, name: carName) { n in
            var g = SystemRandomNumberGenerator()
            return (0..<n).map { _ in UInt8.random(in: 0...255, using: &g) }
        }
    }

    public var inGroup: Bool { secret != nil }

    func attach(_ l: Location) { location = l }
    func attach(_ p: Prompts) { prompts = p; wasDJ = inGroup && node.session.isDJ }

    /// The time, with the node told this car's GPS time first (every call into the node starts here).
    func nodeNow() -> Nanos {
        node.ownWall = location?.ownWall
        return clock.now()
    }

    // MARK: what comes in

    struct Datagram: Sendable {
        var bytes: [UInt8]
        /// nil: it came through the relay or (`ble`: that channel's peer) over Bluetooth LE.
        var from: SocketAddress?
        var ble: Mgmt.Address?
        var at: Nanos
    }
    /// Datagrams waiting to be handled; beyond this the oldest are dropped (a flood).
    static let inboxLimit = 4096

    /// `address`: where it came from on the LAN (nil: through the relay or, `channel`, over BLE).
    func receive(_ bytes: [UInt8], from address: SocketAddress?, ble channel: Mgmt.Address? = nil, at: Nanos) async {
        if PairingWire.isPairing(bytes) {
            if let address { await pairingReceived(bytes, from: address, at: at) }
            return
        }
        let link: ConvoyNode.Link = address != nil ? .lan : channel != nil ? .ble : .relay
        _ = nodeNow()
        let sender: MemberID, seq: UInt64, payload: [UInt8]
        do { (_, sender, seq, payload) = try receiver.admit(bytes) } catch {
            if error == .duplicate, let h = try? Envelope.header(of: bytes) {
                await run(node.heardAgain(from: h.sender, via: link, at: at), from: nil)
            }
            return
        }
        let from: Route = address.map { .lan($0) } ?? (channel != nil ? .ble(sender) : .relay(sender))
        // Its envelope came over this channel: messages to it go back the same way.
        if let channel { ble?.bind(sender, to: channel) }
        await run(node.opened(from: sender, boot: UInt32(truncatingIfNeeded: seq >> 32), via: link, at: at), from: from)
        let message: WireMessage
        do { message = try WireCodec.decode(payload) } catch {
            decodeErrors += 1
            logger.warning("undecodable message from \(sender): \(error)")
            return
        }
        if let address, case .beacon = message { lanAddress[sender] = address }
        await run(node.heard(message, from: sender, via: link, at: at), from: from)
    }

    /// A convoy car's advertisement heard over Bluetooth LE: it is near (shown as link `ble`
    /// with its RSSI); the link opens a data channel to it.
    func sighted(_ s: BLELink.Sighting) async {
        _ = nodeNow()
        await run(node.sighted(s.member, rssi: s.rssi, address: "\(s.address)", at: s.at), from: nil)
    }

    /// The convoy's service: does what is due whenever it is due, on this actor (so on `loop`),
    /// until cancelled (`runDue`'s loop, kept here so that it does not hop off the loop).
    nonisolated func runDue() async {
        await withTaskExecutorPreference(loopExecutor) { await self.dueLoop() }
    }

    private func dueLoop() async {
        while !Task.isCancelled {
            let next = await tick()
            guard !Task.isCancelled else { return }
            await wakeup.wait(atMost: next.map { max(0, $0 - clock.now()) })
        }
    }

    /// Does what is due (the node's beacons, clock exchanges and hand-overs to the player; the
    /// track server) and returns when something is due next (nil: not in a convoy, only a ring
    /// can make work due).
    func tick() async -> Nanos? {
        let pairingNext = await pairingDue()
        guard inGroup, transport != nil || relay != nil || ble != nil else { return pairingNext }
        let t = nodeNow()
        let (location, port, ble) = (location, UInt16(trackServer?.port ?? 0), ble)
        let (effects, _) = node.tick(now: t, bleChannel: { ble?.reaches($0) ?? false }) {
            ConvoyNode.BeaconExtras(wall: location?.wallSample(), position: location?.wirePosition(at: t), dataPort: port)
        }
        await run(effects, from: nil)
        // "car 3 left", "offline", "back online": on what the node heard, at this wake-up (a
        // beacon's, once a second in a convoy).
        for p in convoyPrompts.update(now: t, lastHeard: node.peers.mapValues(\.lastHeard)) {
            logger.notice("convoy: \(p)")
            prompts?.say(p)
        }
        if trackServer == nil, !startingServer, clock.now() >= trackServerRetry, let s = secret {
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
        // Asked after the awaits: a car heard meanwhile may have made an exchange due.
        guard var next = node.deadline(now: nodeNow()) else { return pairingNext }
        if trackServer == nil { next = min(next, trackServerRetry) }
        return min(next, pairingNext ?? next)
    }

    /// Hands the playlist and the timeline, in our clock, to the player (`ConvoyNode.follow`).
    func follow() async {
        guard inGroup else { return }
        await run(node.follow(now: nodeNow()), from: nil)
    }

    // MARK: carrying the effects out

    /// `from`: the way the message being handled came (for replies). Stops when the car joined
    /// or left a convoy during one of the awaits (what is left was decided for the old one).
    func run(_ effects: [ConvoyNode.Effect], from: Route?) async {
        let epoch = membershipEpoch
        for e in effects {
            guard epoch == membershipEpoch else { return }
            switch e {
            case .broadcast(let m):
                send(m, to: nil)
                if case .beacon = m {
                    location?.setSession(secret.map { Int64(bitPattern: $0.groupID.raw) } ?? 0)
                    ble?.advertise(bleBeacon)   // re-advertised only when the term or the DJ changed
                }
            case .reply(let m): if let from { send(m, to: from) }
            case .timeRequest(let id, let link, let count):
                sendStamped(to: route(id, link), count: count) { t1 in .timeRequest(t1: t1, wall: nil) }
            case .timeReply(let t1, let t2):
                if let from { sendStamped(to: from) { t3 in .timeReply(t1: t1, t2: t2, t3: t3, wall: nil) } }
            case .announce: announce()
            case .saveTimeline(let t): try? await store.convoyLog.saveTimeline(t)
            case .saveOps(let ops):
                do { try await store.convoyLog.append(ops) } catch {
                    logger.error("cannot store playlist ops: \(error)")
                }
            case .play(let p): await player.follow(playlist: p.playlist, anchor: p.anchor, toLocal: p.toLocal, seq: p.seq)
            case .fetchMissing: fetchMissing()
            case .wake: wakeup.ring()
            case .newPeer(let id, let name, let link):
                logger.info("peer \(name) (\(id)) at \(from?.description ?? link.description)")
                if link != .lan { lastRelayBeacon = 0 }
            case .position(let id, let name, let position, let at): location?.heard(id, name: name, position: position, at: at)
            case .radio(let id, let name, let rssi, let at): location?.sighted(id, name: name, rssi: rssi, at: at)
            case .note(let s): logger.info("\(s)")
            case .warning(let s): logger.warning("\(s)")
            }
        }
        // This car became the DJ (its own take-over, or a timeline that names it).
        let dj = inGroup && node.session.isDJ
        if dj && !wasDJ { prompts?.say(.youAreDJ) }
        wasDJ = dj
    }

    /// The way to one car over a link the node chose.
    func route(_ id: MemberID, _ link: ConvoyNode.Link) -> Route {
        switch link {
        case .lan: lanAddress[id].map { .lan($0) } ?? .relay(id)
        case .relay: .relay(id)
        case .ble: .ble(id)
        }
    }

    /// Multicast the timeline, and again 10 ms later: one lost datagram must not make a car
    /// learn a scheduled change from a beacon after the change's instant.
    func announce() {
        send(.timeline(node.session.timeline), to: nil)
        Task {
            try? await Task.sleep(for: .milliseconds(10))
            self.announceAgain()
        }
    }
    private func announceAgain() { send(.timeline(node.session.timeline), to: nil) }

    var bleBeacon: BLEAdvertisement.Beacon { .init(member: me, term: node.session.term.number, isDJ: node.session.term.dj == me) }
}
