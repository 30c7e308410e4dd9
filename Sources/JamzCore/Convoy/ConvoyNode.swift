/// One car's convoy brain without I/O: the peer table with one clock filter per peer, the
/// session (term, timeline), the playlist op log, GPS time of the peers, and every decision the
/// convoy makes — what a message heard changes, what is due when (beacons, clock exchanges
/// paced by `ExchangePacer`, handing the timeline to the player), what a command makes.
///
/// It reads no clock and touches no device: time comes in with every call, and what the host
/// must do comes out as `Effect`s, to be carried out in order (send, store, play, fetch…).
/// Stored before sent: a command's timeline or ops are made first (`takeOverTimeline`,
/// `makeAdds`, `scheduled`), the host stores them, then `applyOwn` applies and announces them.
/// The daemon's `Convoy` carries the effects out on its links; tests drive it in virtual time
/// (docs/architecture.md: "How a datagram travels").
public struct ConvoyNode: Sendable {
    /// The kind of link a message came over or goes by; the host knows the addresses.
    public enum Link: String, Sendable, Equatable, CustomStringConvertible {
        case lan, relay, ble
        public var description: String { rawValue }
        /// The relay and BLE: paced as slow links (`ExchangePacer`).
        public var isSlow: Bool { self != .lan }
    }

    public struct Peer: Sendable {
        public var name: String
        /// Heard on the LAN (the host keeps its address), and when last.
        public var onLAN = false
        public var lanHeard: Nanos = 0
        public var relayHeard: Nanos = 0
        /// When its Bluetooth LE advertisement was last heard, how strong, from where.
        public var bleHeard: Nanos = 0
        public var bleRSSI: Int8?
        public var bleAddress: String?
        /// When a message last came over its Bluetooth LE channel.
        public var bleDataHeard: Nanos = 0
        public var lastHeard: Nanos
        public var filter = ClockFilter()
        public var sent = 0
        /// When the next clock exchange with it is due (a new peer: at once).
        public var nextExchange: Nanos
        public var tracks: UInt32 = 0
        public var dataPort: Int = 0

        public init(name: String, lastHeard: Nanos) { self.name = name; self.lastHeard = lastHeard; nextExchange = lastHeard }

        /// The LAN while it was heard there in the last 3 s (fast, and copies tracks), else its
        /// Bluetooth LE channel (near, and no mobile data), else the relay.
        /// `bleChannel`: a Bluetooth LE channel to it is open now.
        public func route(now: Nanos, bleChannel: Bool = true) -> Link {
            let fresh = 3 * nanosPerSecond
            if onLAN, now - lanHeard < fresh { return .lan }
            if bleChannel, bleDataHeard > 0, now - bleDataHeard < fresh { return .ble }
            if relayHeard > 0 { return .relay }
            if onLAN { return .lan }
            return bleChannel && bleDataHeard > 0 ? .ble : .relay
        }

        /// The links it was heard on, for `jamz peers` ("lan", "lan+relay", "ble"…).
        public var link: String {
            let links = [onLAN ? "lan" : nil, relayHeard > 0 ? "relay" : nil, bleHeard > 0 || bleDataHeard > 0 ? "ble" : nil].compactMap { $0 }
            return links.isEmpty ? "lan" : links.joined(separator: "+")
        }
    }

    /// What the player is handed: the playlist and the timeline's anchor in our clock.
    public struct Plan: Sendable, Equatable {
        public var playlist: [PlaylistEntry]
        public var anchor: TimelineAnchor?
        /// Our clock's time of `anchor` (nil: nothing to play).
        public var toLocal: Nanos?
        public var seq: Int
    }

    /// What the host carries out, in order.
    public enum Effect: Sendable, Equatable {
        /// To every car on every link.
        case broadcast(WireMessage)
        /// Back the way the message being handled came.
        case reply(WireMessage)
        /// Clock-exchange requests (`count` datagrams), `t1` stamped as each leaves.
        case timeRequest(to: MemberID, via: Link, count: Int)
        /// The answer to the request being handled (`t2` its arrival), `t3` stamped as it leaves.
        case timeReply(t1: Nanos, t2: Nanos)
        /// Multicast the session's timeline now and again 10 ms later (one lost datagram must
        /// not make a car learn a scheduled change from a beacon after the change's instant).
        case announce
        case saveTimeline(ConvoyTimeline)
        /// Ops new to this car, to be stored.
        case saveOps([PlaylistOp])
        case play(Plan)
        /// Look for copies of the playing entry's and the next two's tracks (`upcomingTracks`).
        case fetchMissing
        /// Work may be due sooner than the last deadline `tick` returned.
        case wake
        case newPeer(MemberID, name: String, via: Link)
        /// A beacon's position of a car (to the location tracker).
        case position(MemberID, name: String, WirePosition?, at: Nanos)
        /// A car heard over Bluetooth LE: within radio range ("together").
        case radio(MemberID, name: String, rssi: Int8?, at: Nanos)
        case note(String)
        case warning(String)
    }

    /// A command the convoy's rules refuse (the text says why and what to do).
    public struct Refusal: Error, Equatable, CustomStringConvertible {
        public let description: String
        public init(_ s: String) { description = s }
    }

    public let me: MemberID
    public let carName: String
    public let sampleRate: Int
    public internal(set) var session: Session
    public internal(set) var log: PlaylistLog
    public internal(set) var peers: [MemberID: Peer] = [:]
    /// In a convoy (the host holds the secret).
    public var inGroup = false
    /// One pace for every peer instead of `ExchangePacer.forPeer` (the simulator's reference
    /// algorithms exchange at their own, fixed pace).
    public var fixedPacer: ExchangePacer?
    /// This car's wall − monotonic mapping when its wall clock is GPS-disciplined (set by the host).
    public var ownWall: WallMapping?
    /// Each peer's wall − monotonic mapping, from the disciplined wall readings in its beacons.
    public internal(set) var peerWall: [MemberID: WallMapping] = [:]
    public internal(set) var peerBoots: [MemberID: UInt32] = [:]
    /// Timelines and time replies refused for out-of-range values.
    public internal(set) var rejected: Int64 = 0
    /// A follower restarted where its DJ cannot be heard (out of reach, or the DJ is off too)
    /// plays on from where it was, in its own clock, until it hears the DJ again.
    public internal(set) var solo: TimelineAnchor?
    /// When the last beacon went out (nil: one is due now).
    public internal(set) var lastBeacon: Nanos?
    var beaconCount = 0
    /// When the timeline was last handed to the player (nil: never).
    var followedAt: Nanos?
    var followSeq = 0

    public init(me: MemberID, carName: String, sampleRate: Int, ops: [PlaylistOp] = [], timeline: ConvoyTimeline? = nil) {
        self.me = me; self.carName = carName; self.sampleRate = sampleRate
        session = Session(me: me, timeline: timeline)
        log = PlaylistLog(me: me, ops: ops)
    }

    static let followInterval: Nanos = 100_000_000
    /// Anchor times are monotonic clock readings and frames track positions: anything near the
    /// integer limits is a bug or an attack and would overflow the timeline arithmetic.
    public static let timeLimit: Nanos = 1 << 61
    public static func sane(_ t: ConvoyTimeline) -> Bool {
        [t.anchor, t.previous].allSatisfy { a in
            guard let a else { return true }
            return abs(a.time) < timeLimit && a.frame >= 0 && a.frame < 1 << 40 && (a.rate == 0 || a.rate == 1)
        }
    }
}
