import Crypto
import Foundation
import JamzCore

// Sealed envelopes: the only thing any JamzNet transport sends or accepts.
// See docs/architecture.md, "Networking".

/// A sealed envelope, wire format version 1. Every message between cars travels in one,
/// on every link; nothing that does not open is ever applied.
///
/// Byte by byte (offsets in bytes; integers little-endian unless said otherwise):
///
/// | offset | size | field |
/// |---|---|---|
/// | 0 | 1 | magic `0x4A` (`'J'`) |
/// | 1 | 1 | format version, `0x01` |
/// | 2 | 8 | group id (`GroupID`, opaque HKDF output, in clear) |
/// | 10 | 8 | sender `MemberID`, UInt64 LE |
/// | 18 | 8 | sequence number, UInt64 LE, per sender, ≥ 1, strictly increasing |
/// | 26 | n | ChaCha20-Poly1305 ciphertext of the n-byte payload |
/// | 26 + n | 16 | Poly1305 tag |
///
/// So an envelope is `26 + n + 16` bytes, at least 42 (an empty payload is allowed).
///
/// Crypto (RFC 8439 ChaCha20-Poly1305):
/// - key: the sender's subkey, `ConvoyKey.senderKey(sender)` = HKDF-SHA256(convoy envelope
///   key, no salt, info `"jamz sender-key v1"` ‖ sender as 8 bytes LE, 32 bytes);
/// - nonce (12 bytes): `00 00 00 00` ‖ sequence number as 8 bytes LE — i.e. four zero bytes
///   followed by wire bytes 18..<26;
/// - additional authenticated data: the 26 header bytes 0..<26 (magic, version, group,
///   sender, seq), so none of them can be changed without failing the tag.
///
/// Nonce uniqueness: a (key, nonce) pair must never seal two different messages. The key is
/// per sender, so two senders never share a key (bar a 2⁻²⁵⁶ HKDF collision); within one
/// sender the nonce is the sequence number, which `SequenceCounter` never repeats, also
/// across reboots. Hence every (key, nonce) pair is used once.
///
/// The group id is public on purpose: it lets a receiver pick the key and drop foreign
/// convoys without crypto. It links envelopes of one convoy together (as the cars' radios do
/// anyway); the sender id and sequence number are likewise visible, the payload is not.
///
/// Another implementation (a phone app) needs only this table, `ConvoySecret`'s derivation
/// table and `ConvoyKey.senderKey`; `EnvelopeTests.knownAnswer` pins a test vector.
public enum Envelope {
    public static let magic: UInt8 = 0x4A
    public static let version: UInt8 = 1
    public static let headerCount = 26
    public static let tagCount = 16
    /// The smallest valid envelope: header and tag around an empty payload.
    public static let minimumCount = headerCount + tagCount

    /// The clear header of an envelope (authenticated, not encrypted).
    public struct Header: Sendable, Equatable {
        public var group: GroupID
        public var sender: MemberID
        public var seq: UInt64
        public init(group: GroupID, sender: MemberID, seq: UInt64) {
            self.group = group; self.sender = sender; self.seq = seq
        }

        /// The 26 header bytes as on the wire.
        public var wireBytes: [UInt8] {
            var b: [UInt8] = [Envelope.magic, Envelope.version]
            b.reserveCapacity(Envelope.headerCount)
            b += group.wireBytes
            withUnsafeBytes(of: sender.raw.littleEndian) { b += $0 }
            withUnsafeBytes(of: seq.littleEndian) { b += $0 }
            return b
        }
    }

    /// Seals `payload` from `sender` with sequence number `seq` (≥ 1, never reused: take it from
    /// a `SequenceCounter`, or use a `Sealer`, which does both) under the convoy `key`.
    public static func seal(payload: [UInt8], sender: MemberID, seq: UInt64, key: ConvoyKey) -> [UInt8] {
        seal(payload: payload, header: Header(group: key.groupID, sender: sender, seq: seq),
             senderKey: key.senderKey(sender))
    }

    static func seal(payload: [UInt8], header: Header, senderKey: SymmetricKey) -> [UInt8] {
        precondition(header.seq >= 1, "sequence numbers start at 1")
        var out = header.wireBytes
        // Cannot fail: the nonce is 12 bytes and the key 256 bits.
        let box = try! ChaChaPoly.seal(payload, using: senderKey, nonce: nonce(seq: header.seq),
                                       authenticating: out)
        out.reserveCapacity(headerCount + payload.count + tagCount)
        out += box.ciphertext
        out += box.tag
        return out
    }

    static func nonce(seq: UInt64) -> ChaChaPoly.Nonce {
        var n: [UInt8] = [0, 0, 0, 0]
        withUnsafeBytes(of: seq.littleEndian) { n += $0 }
        return try! ChaChaPoly.Nonce(data: n)
    }

    /// Reads the clear header, checking only length and version (no key, no crypto).
    /// Throws `.tooShort` or `.badVersion` (a wrong magic byte is a bad version too).
    public static func header(of bytes: [UInt8]) throws(EnvelopeDrop) -> Header {
        guard bytes.count >= minimumCount else { throw .tooShort }
        guard bytes[0] == magic, bytes[1] == version else { throw .badVersion }
        func u64le(_ at: Int) -> UInt64 {
            var v: UInt64 = 0
            for i in (at..<(at + 8)).reversed() { v = v << 8 | UInt64(bytes[i]) }
            return v
        }
        return Header(group: GroupID(wireBytes: bytes[2..<10]), sender: MemberID(u64le(10)), seq: u64le(18))
    }

    /// Authenticates and decrypts an envelope whose header was read by `header(of:)`.
    static func decrypt(_ bytes: [UInt8], header: Header, senderKey: SymmetricKey) throws(EnvelopeDrop) -> [UInt8] {
        let tagStart = bytes.count - tagCount
        do {
            let box = try ChaChaPoly.SealedBox(nonce: nonce(seq: header.seq),
                                               ciphertext: bytes[headerCount..<tagStart],
                                               tag: bytes[tagStart...])
            return [UInt8](try ChaChaPoly.open(box, using: senderKey, authenticating: bytes[0..<headerCount]))
        } catch {
            throw .authenticationFailed
        }
    }

    /// Opens an envelope with the key its group id selects. Throws `.tooShort`, `.badVersion`,
    /// `.foreignGroup` (no key for that group) or `.authenticationFailed` (tampered, forged,
    /// or sealed with another key). Replays and duplicates are not judged here (no state):
    /// `Receiver` does that.
    public static func open(_ bytes: [UInt8], keys: (GroupID) -> ConvoyKey?) throws(EnvelopeDrop)
        -> (sender: MemberID, seq: UInt64, payload: [UInt8])
    {
        let h = try header(of: bytes)
        guard let key = keys(h.group) else { throw .foreignGroup }
        let payload = try decrypt(bytes, header: h, senderKey: key.senderKey(h.sender))
        return (h.sender, h.seq, payload)
    }

    /// `open(_:keys:)` with the keys in a dictionary by group id.
    public static func open(_ bytes: [UInt8], keys: [GroupID: ConvoyKey]) throws(EnvelopeDrop)
        -> (sender: MemberID, seq: UInt64, payload: [UInt8])
    {
        try open(bytes, keys: { keys[$0] })
    }
}

/// Why an incoming datagram was dropped. The raw values are the keys of `DropCounters` in
/// JSON (`jamz status --json`).
public enum EnvelopeDrop: String, Error, CaseIterable, Sendable, Codable {
    /// Shorter than header + tag (42 bytes).
    case tooShort
    /// Wrong magic byte or an unknown format version.
    case badVersion
    /// A group id we hold no key for: another convoy, or noise.
    case foreignGroup
    /// The tag did not verify: tampered, forged, truncated, or sealed with another key that
    /// happens to claim the same group id.
    case authenticationFailed
    /// Sequence number at or below the bottom of the sender's replay window (or 0).
    case replayed
    /// Sequence number inside the window and already accepted: the same envelope again,
    /// normally from a second link.
    case duplicate
    /// Our own member id: our own multicast looping back.
    case ownEcho
}

/// How many datagrams were dropped, per reason. Codable as an object of reason → count,
/// e.g. `{"tooShort":0,"badVersion":0,"foreignGroup":12,…}`.
public struct DropCounters: Sendable, Equatable, Codable {
    public var tooShort: UInt64 = 0
    public var badVersion: UInt64 = 0
    public var foreignGroup: UInt64 = 0
    public var authenticationFailed: UInt64 = 0
    public var replayed: UInt64 = 0
    public var duplicate: UInt64 = 0
    public var ownEcho: UInt64 = 0

    public init() {}

    public subscript(reason: EnvelopeDrop) -> UInt64 {
        get {
            switch reason {
            case .tooShort: tooShort
            case .badVersion: badVersion
            case .foreignGroup: foreignGroup
            case .authenticationFailed: authenticationFailed
            case .replayed: replayed
            case .duplicate: duplicate
            case .ownEcho: ownEcho
            }
        }
        set {
            switch reason {
            case .tooShort: tooShort = newValue
            case .badVersion: badVersion = newValue
            case .foreignGroup: foreignGroup = newValue
            case .authenticationFailed: authenticationFailed = newValue
            case .replayed: replayed = newValue
            case .duplicate: duplicate = newValue
            case .ownEcho: ownEcho = newValue
            }
        }
    }

    public mutating func count(_ reason: EnvelopeDrop) { self[reason] &+= 1 }

    /// All drops, whatever the reason.
    public var total: UInt64 { EnvelopeDrop.allCases.reduce(0) { $0 &+ self[$1] } }
}

/// Seals one member's outgoing envelopes for one convoy: holds the sender subkey (derived
/// once) and the `SequenceCounter`, so every envelope gets the next number.
public struct Sealer: Sendable {
    public let sender: MemberID
    public let groupID: GroupID
    let senderKey: SendableKey
    /// A key of its own for `rehearse`, never used for anything sent: the convoy key never seals
    /// two payloads under one nonce, even ones thrown away.
    let rehearsalKey = SendableKey(key: SymmetricKey(size: .bits256))
    public private(set) var counter: SequenceCounter

    /// `bootCount` must be persisted and increased before each start: see `SequenceCounter`.
    public init(key: ConvoyKey, sender: MemberID, bootCount: UInt32) {
        self.sender = sender
        self.groupID = key.groupID
        self.senderKey = SendableKey(key: key.senderKey(sender))
        self.counter = SequenceCounter(bootCount: bootCount)
    }

    /// Seals `payload` under a throwaway key and throws the result away: runs the same cipher
    /// code on the same sizes, so that a time-critical seal right after it takes its warm,
    /// steady time (a clock exchange stamps the clock before sealing). Nothing leaves the car.
    public func rehearse(_ payload: [UInt8]) {
        _ = Envelope.seal(payload: payload, header: .init(group: groupID, sender: sender, seq: .max), senderKey: rehearsalKey.key)
    }

    public mutating func seal(_ payload: [UInt8]) -> [UInt8] {
        Envelope.seal(payload: payload, header: .init(group: groupID, sender: sender, seq: counter.next()),
                      senderKey: senderKey.key)
    }
}

/// The receiving side of the envelope layer for one car: the keys it holds (by group id), its
/// own member id, a `ReplayWindow` per (group, sender), and the drop counters.
///
/// `open` decides in this order, cheapest first:
/// 1. length and version (`tooShort`, `badVersion`) — no key needed;
/// 2. a key for the group id (`foreignGroup`);
/// 3. the sender is us (`ownEcho`);
/// 4. the sender's window would refuse the number (`replayed`, `duplicate`) — a check only;
/// 5. the tag (`authenticationFailed`);
/// 6. only now, authenticated: the window records the number (a new sender gets a window).
///
/// Steps 1–4 read the clear header and change nothing but a counter, so a forged header can
/// at worst be counted under one of those reasons; it can never be applied, move a window or
/// create one (RFC 4303 §3.4.3 orders its checks the same way). Duplicates — the same
/// envelope over a second link — are the common drop and cost no crypto.
///
/// Windows are kept for at most `maxSenders` (group, sender) pairs; when a new authenticated
/// sender would exceed that, the least recently heard one is forgotten. Only authenticated
/// envelopes create windows, so only convoy members can cause that; a forgotten sender
/// starts over with a fresh window, which would accept a replay of its old envelopes. With
/// convoys far below 256 cars this does not happen in practice.
public struct Receiver: Sendable {
    public static let maxSenders = 256

    struct PeerKey: Hashable, Sendable {
        var group: GroupID
        var sender: MemberID
    }
    struct Peer: Sendable {
        var window = ReplayWindow()
        var key: SendableKey
        var lastHeard: UInt64
    }

    public let me: MemberID
    public private(set) var keys: [GroupID: ConvoyKey] = [:]
    public private(set) var drops = DropCounters()
    /// Envelopes opened and handed on.
    public private(set) var accepted: UInt64 = 0
    var peers: [PeerKey: Peer] = [:]
    private var tick: UInt64 = 0

    public init(me: MemberID, keys: [ConvoyKey] = []) {
        self.me = me
        for k in keys { add(k) }
    }

    /// Starts accepting envelopes of `key`'s convoy.
    public mutating func add(_ key: ConvoyKey) {
        if keys[key.groupID] != key { peers = peers.filter { $0.key.group != key.groupID } }
        keys[key.groupID] = key
    }

    /// Stops accepting a convoy's envelopes and forgets its senders.
    public mutating func remove(group: GroupID) {
        keys[group] = nil
        peers = peers.filter { $0.key.group != group }
    }

    /// How many (group, sender) windows are held.
    public var senderCount: Int { peers.count }

    /// The replay window of a sender, if one is held.
    public func window(group: GroupID, sender: MemberID) -> ReplayWindow? {
        peers[PeerKey(group: group, sender: sender)]?.window
    }

    /// Opens a datagram; nil when it was dropped (the reason is counted in `drops`).
    public mutating func open(_ datagram: [UInt8]) -> (sender: MemberID, payload: [UInt8])? {
        guard let r = try? admit(datagram) else { return nil }
        return (r.sender, r.payload)
    }

    /// `open`, saying why a datagram was dropped. Counts like `open`.
    public mutating func admit(_ datagram: [UInt8]) throws(EnvelopeDrop)
        -> (group: GroupID, sender: MemberID, seq: UInt64, payload: [UInt8])
    {
        do {
            let r = try admitUncounted(datagram)
            accepted &+= 1
            return r
        } catch {
            drops.count(error)
            throw error
        }
    }

    private mutating func admitUncounted(_ datagram: [UInt8]) throws(EnvelopeDrop)
        -> (group: GroupID, sender: MemberID, seq: UInt64, payload: [UInt8])
    {
        let h = try Envelope.header(of: datagram)
        guard let key = keys[h.group] else { throw .foreignGroup }
        guard h.sender != me else { throw .ownEcho }
        let id = PeerKey(group: h.group, sender: h.sender)
        let known = peers[id]
        switch known?.window.check(h.seq) ?? (h.seq == 0 ? .replayed : .fresh) {
        case .fresh: break
        case .duplicate: throw .duplicate
        case .replayed: throw .replayed
        }
        let senderKey = known?.key ?? SendableKey(key: key.senderKey(h.sender))
        let payload = try Envelope.decrypt(datagram, header: h, senderKey: senderKey.key)

        // Authenticated: only now may the window move (or be made).
        tick &+= 1
        if known == nil, peers.count >= Self.maxSenders,
           let oldest = peers.min(by: { $0.value.lastHeard < $1.value.lastHeard })?.key {
            peers[oldest] = nil
        }
        var peer = known ?? Peer(key: senderKey, lastHeard: tick)
        peer.window.admit(h.seq)
        peer.lastHeard = tick
        peers[id] = peer
        return (h.group, h.sender, h.seq, payload)
    }
}
