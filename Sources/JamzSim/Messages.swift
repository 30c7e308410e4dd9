import JamzCore

/// What cars say to each other in the simulator. The LAN issue defines the wire format; here each
/// message carries an estimate of its sealed size so the benchmark can print bytes per car.
enum Payload {
    /// What the convoy node sends, as it travels in a sealed envelope.
    case wire(WireMessage)
    /// Reference "seed" algorithm: the DJ's position (global frame) at its send time.
    case position(frame: Double)

    /// Sealed datagram size: UDP/IPv4 headers (28) + envelope (version 1, group 8, sender 8,
    /// seq 8, tag 16) + the encoded message (`docs/wire.md`).
    var bytes: Int {
        let overhead = 28 + 41
        switch self {
        case .wire(let m): return overhead + WireCodec.encode(m).count
        case .position: return overhead + 16
        }
    }
}

struct Message {
    var from: Int
    var to: Int
    var payload: Payload
}
