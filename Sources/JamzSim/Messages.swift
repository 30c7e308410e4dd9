import JamzCore

/// What cars say to each other in the simulator. The LAN issue defines the wire format; here each
/// message carries an estimate of its sealed size so the benchmark can print bytes per car.
enum Payload {
    case timeRequest(t1: Nanos, wall: WallClockSample?)
    case timeReply(t1: Nanos, t2: Nanos, t3: Nanos, wall: WallClockSample?)
    /// Beacon: the session timeline as this car holds it, its op-log high-water marks, and its
    /// latest wall-clock reading.
    case beacon(timeline: ConvoyTimeline, highWater: [MemberID: UInt64], wall: WallClockSample?)
    case timeline(ConvoyTimeline)
    case ops([PlaylistOp])
    /// Reference "seed" algorithm: the DJ's position (global frame) at its send time.
    case position(frame: Double)

    /// Sealed datagram size: UDP/IPv4 headers (28) + envelope (version 1, group 8, sender 8,
    /// seq 8, tag 16) + payload fields.
    var bytes: Int {
        let overhead = 28 + 41
        let wall = 25
        switch self {
        case .timeRequest(_, let w): return overhead + 8 + (w == nil ? 1 : wall)
        case .timeReply(_, _, _, let w): return overhead + 24 + (w == nil ? 1 : wall)
        case .beacon(_, let hw, let w): return overhead + Self.timelineBytes + 2 + hw.count * 16 + (w == nil ? 1 : wall)
        case .timeline: return overhead + Self.timelineBytes
        case .ops(let ops): return overhead + 2 + ops.count * 72
        case .position: return overhead + 16
        }
    }
    /// term 16 + version 8 + two anchors of (entry 16, track 32, frame 8, time 8, rate 1).
    static let timelineBytes = 24 + 2 * 65
}

struct Message {
    var from: Int
    var to: Int
    var payload: Payload
}
