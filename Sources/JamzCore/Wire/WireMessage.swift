/// The messages cars of a convoy exchange over UDP (inside a sealed envelope), as values.
///
/// `docs/wire.md` is the specification of their byte format; `WireCodec` implements it.
/// Every field is explicit: nothing is implied by the link or the envelope.
public enum WireMessage: Sendable, Equatable {
    /// Who a car is and what it holds, multicast periodically.
    case beacon(Beacon)
    /// Start of a four-timestamp clock exchange: `t1` is the sender's monotonic clock when it sent.
    case timeRequest(t1: Nanos, wall: WallClockSample?)
    /// Answer to a `timeRequest`: `t1` echoed, `t2` when the request arrived and `t3` when the
    /// answer left, both on the answering car's monotonic clock.
    case timeReply(t1: Nanos, t2: Nanos, t3: Nanos, wall: WallClockSample?)
    /// A DJ's announcement of the session timeline (a take-over is a timeline with a higher term).
    case timeline(ConvoyTimeline)
    /// Playlist ops, at most `WireLimits.opsPerMessage`; a sender with more splits them
    /// (`WireCodec.opsMessages`).
    case ops([PlaylistOp])
    /// Anti-entropy pull, "send me what I lack": for each listed origin, every op with a higher
    /// seq than the mark. Only the listed origins are asked for (a map may be partial).
    case opsRequest(highWater: [MemberID: UInt64])

    /// The message type byte on the wire.
    public var kind: WireMessageKind {
        switch self {
        case .beacon: .beacon
        case .timeRequest: .timeRequest
        case .timeReply: .timeReply
        case .timeline: .timeline
        case .ops: .ops
        case .opsRequest: .opsRequest
        }
    }
}

/// The second byte of every message.
public enum WireMessageKind: UInt8, Sendable, CaseIterable, CustomStringConvertible {
    case beacon = 1
    case timeRequest = 2
    case timeReply = 3
    case timeline = 4
    case ops = 5
    case opsRequest = 6

    public var description: String {
        switch self {
        case .beacon: "beacon"
        case .timeRequest: "timeRequest"
        case .timeReply: "timeReply"
        case .timeline: "timeline"
        case .ops: "ops"
        case .opsRequest: "opsRequest"
        }
    }
}

/// A car's periodic "here I am": identity, the session as it holds it, what ops it holds, how
/// well it knows the DJ clock, where it is, and where to fetch tracks from it.
public struct Beacon: Sendable, Equatable {
    public var member: MemberID
    /// Display name, at most `WireLimits.nameBytes` UTF-8 bytes.
    public var name: String
    public var timeline: ConvoyTimeline
    /// Per-origin high-water marks of the sender's op log, at most `WireLimits.origins` entries.
    /// May be partial (a car with more origins rotates through them): it speaks only for the
    /// origins it lists.
    public var highWater: [MemberID: UInt64]
    /// `ClockQuality.rawValue` of the sender's estimate of the DJ clock (0 none, 1 coarse,
    /// 2 locked). Larger values are accepted; a receiver treats them as the best it knows.
    public var clockQuality: UInt8
    /// The sender's latest wall-clock reading, if it has one.
    public var wall: WallClockSample?
    /// The sender's latest GPS fix, if it has one.
    public var position: WirePosition?
    /// How many tracks the sender caches.
    public var tracks: UInt32
    /// TCP port of the sender's track server (0: none).
    public var dataPort: UInt16

    public init(member: MemberID, name: String, timeline: ConvoyTimeline, highWater: [MemberID: UInt64] = [:],
                clockQuality: UInt8 = 0, wall: WallClockSample? = nil, position: WirePosition? = nil,
                tracks: UInt32 = 0, dataPort: UInt16 = 0) {
        self.member = member; self.name = name; self.timeline = timeline; self.highWater = highWater
        self.clockQuality = clockQuality; self.wall = wall; self.position = position
        self.tracks = tracks; self.dataPort = dataPort
    }
}

/// A GPS fix in fixed-point units, as it travels in a beacon.
public struct WirePosition: Sendable, Equatable {
    /// Latitude in 1e-7 degrees, −900_000_000 ... 900_000_000.
    public var latitude: Int32
    /// Longitude in 1e-7 degrees, −1_800_000_000 ... 1_800_000_000.
    public var longitude: Int32
    /// Horizontal accuracy, metres.
    public var accuracy: UInt16
    /// Speed over ground, cm/s.
    public var speed: UInt16
    /// Course over ground, 0.01 degrees clockwise from true north, 0 ..< 36_000.
    public var heading: UInt16
    /// Time of the fix, nanoseconds since the Unix epoch (UTC).
    public var time: Nanos

    public static let latitudeRange: ClosedRange<Int32> = -900_000_000 ... 900_000_000
    public static let longitudeRange: ClosedRange<Int32> = -1_800_000_000 ... 1_800_000_000
    public static let headingLimit: UInt16 = 36_000

    public init(latitude: Int32, longitude: Int32, accuracy: UInt16, speed: UInt16, heading: UInt16, time: Nanos) {
        self.latitude = latitude; self.longitude = longitude; self.accuracy = accuracy
        self.speed = speed; self.heading = heading; self.time = time
    }
}

/// The per-type maximums of wire format version 1 (see docs/wire.md).
public enum WireLimits {
    /// Largest encoded message other than `ops`: one UDP payload that needs no IP fragmentation.
    public static let datagram = 1200
    /// UTF-8 bytes of a beacon's name.
    public static let nameBytes = 64
    /// Entries of a high-water map (beacon, opsRequest): what fits a worst-case beacon in
    /// `datagram` bytes.
    public static let origins = 56
    /// Ops in one `ops` message.
    public static let opsPerMessage = 64
    /// Largest encoded op (an add with an `after`).
    public static let opBytes = 98
    /// Largest encoded `ops` message: 4 + 64 × 98.
    public static let opsMessage = 4 + opsPerMessage * opBytes
}
