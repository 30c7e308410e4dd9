import Crypto
import JamzCore

// Convoy secret → group id and envelope keys. See docs/architecture.md, "Networking", and `Envelope` for
// the wire layout these keys protect.

/// The public 8-byte name of a convoy on the wire: the first field after the version in every
/// envelope, in clear, so a receiver picks the key with one dictionary lookup and drops a
/// foreign convoy's traffic (a neighbouring car park full of head units) before any crypto.
///
/// It is derived from the secret (see `ConvoySecret.groupID`) and reveals nothing about it.
/// `raw` holds the 8 wire bytes read **big-endian**, so `description` prints them in wire order.
public struct GroupID: Hashable, Sendable, Codable, CustomStringConvertible {
    public static let byteCount = 8
    public var raw: UInt64
    public init(_ raw: UInt64) { self.raw = raw }

    /// The id from its 8 wire bytes (in wire order).
    public init<C: Collection<UInt8>>(wireBytes: C) {
        precondition(wireBytes.count == Self.byteCount, "a group id is 8 bytes")
        self.raw = wireBytes.reduce(0) { $0 << 8 | UInt64($1) }
    }

    /// The 8 wire bytes, in wire order.
    public var wireBytes: [UInt8] { (0..<8).map { UInt8(truncatingIfNeeded: raw >> (56 - 8 * $0)) } }

    public var description: String {
        let h = String(raw, radix: 16)
        return String(repeating: "0", count: max(0, 16 - h.count)) + h
    }
}

/// The shared secret of one convoy: 32 random bytes made by the car that creates the group
/// (`jamz group create`) and handed to the others as a `JoinCode`, plus a display name that is
/// **not** secret and not part of the key material (it travels beside the code, not in it).
///
/// Everything else is derived from the bytes with HKDF-SHA256 (RFC 5869), one fixed salt
/// `ConvoySecret.hkdfSalt` and a distinct `info` label per output, so the outputs are
/// independent of each other:
///
/// | output | info label | length |
/// |---|---|---|
/// | group id (public) | `"jamz group-id v1"` | 8 bytes |
/// | envelope key (ChaCha20-Poly1305) | `"jamz envelope-key v1"` | 32 bytes |
/// | relay topic (MQTT, `jamz/v1/<hex>`) | `"jamz relay-topic v1"` | 16 bytes |
/// | a member's relay inbox | `"jamz relay-inbox v1"` ‖ member id (u64 LE) | 8 bytes |
/// | Bluetooth LE advertisement hint / body keys (`BLEAdvertisement`) | `"jamz ble-hint v1"` / `"jamz ble-body v1"` | 32 bytes each |
///
/// The envelope key is not used directly: each sender seals with its own subkey, see
/// `ConvoyKey.senderKey(_:)` and the nonce argument in `Envelope`.
///
/// `description` never prints the secret bytes.
public struct ConvoySecret: Equatable, Sendable, CustomStringConvertible {
    public static let byteCount = 32
    public static let hkdfSalt = Array("TrafficJamz convoy secret v1".utf8)
    static let groupIDInfo = Array("jamz group-id v1".utf8)
    static let envelopeKeyInfo = Array("jamz envelope-key v1".utf8)
    static let relayTopicInfo = Array("jamz relay-topic v1".utf8)
    static let relayInboxInfo = Array("jamz relay-inbox v1".utf8)

    /// The 32 secret bytes. Whoever has them is a member of the convoy.
    public let bytes: [UInt8]
    /// What the convoy is called on screens ("Road trip"). Not secret, not authenticated.
    public var name: String

    /// A secret from existing bytes (parsed from a join code, or loaded from the data dir).
    /// Returns nil unless there are exactly 32 bytes.
    public init?(bytes: [UInt8], name: String = "") {
        guard bytes.count == Self.byteCount else { return nil }
        self.bytes = bytes
        self.name = name
    }

    /// A fresh secret from the system's cryptographic random source
    /// (`SystemRandomNumberGenerator`: getrandom(2) on Linux).
    public static func random(name: String = "") -> ConvoySecret {
        var rng = SystemRandomNumberGenerator()
        return random(name: name, using: &rng)
    }

    /// A secret from the given generator. Only a cryptographic generator makes a safe secret;
    /// the generic form is for deterministic tests (`SplitMix64`).
    public static func random<G: RandomNumberGenerator>(name: String = "", using rng: inout G) -> ConvoySecret {
        var b: [UInt8] = []
        b.reserveCapacity(byteCount)
        for _ in 0..<(byteCount / 8) {
            let w = rng.next()
            for i in 0..<8 { b.append(UInt8(truncatingIfNeeded: w >> (8 * i))) }
        }
        return ConvoySecret(bytes: b, name: name)!
    }

    func derive(info: [UInt8], count: Int) -> SymmetricKey {
        HKDF<SHA256>.deriveKey(inputKeyMaterial: SymmetricKey(data: bytes), salt: Self.hkdfSalt,
                               info: info, outputByteCount: count)
    }

    /// The public group id: HKDF-SHA256(secret, salt, "jamz group-id v1", 8 bytes).
    public var groupID: GroupID {
        GroupID(wireBytes: derive(info: Self.groupIDInfo, count: GroupID.byteCount).withUnsafeBytes { Array($0) })
    }

    /// The group id and the 256-bit envelope key: what a `Receiver` holds and `Envelope.seal` uses.
    public var key: ConvoyKey {
        ConvoyKey(groupID: groupID, key: derive(info: Self.envelopeKeyInfo, count: 32))
    }

    /// The convoy's topic on an MQTT relay: `jamz/v1/` and 32 hex digits of
    /// HKDF-SHA256(secret, salt, "jamz relay-topic v1", 16 bytes). The broker learns neither the
    /// name nor the group id nor any member.
    public var relayTopic: String {
        "jamz/v1/" + Self.hex(derive(info: Self.relayTopicInfo, count: 16))
    }

    /// One member's inbox on the relay (`<topic>/p/<inbox>`): 16 hex digits of
    /// HKDF-SHA256(secret, salt, "jamz relay-inbox v1" ‖ member id, 8 bytes), so messages meant
    /// for one car reach it alone without its id appearing on the broker.
    public func relayInbox(for member: MemberID) -> String {
        let info = Self.relayInboxInfo + (0..<8).map { UInt8(truncatingIfNeeded: member.raw >> (8 * UInt64($0))) }
        return Self.hex(derive(info: info, count: 8))
    }

    static func hex(_ key: SymmetricKey) -> String { key.withUnsafeBytes { Hex.encode($0) } }

    public var description: String { "ConvoySecret(\"\(name)\", group \(groupID), secret redacted)" }
}

/// The key material of one convoy as the envelope layer needs it: the public group id and the
/// 256-bit ChaCha20-Poly1305 envelope key. Normally made by `ConvoySecret.key`.
public struct ConvoyKey: Sendable, Equatable {
    public let groupID: GroupID
    let envelopeKey: SendableKey
    static let senderKeyInfo = Array("jamz sender-key v1".utf8)

    /// A key with an explicit group id. Production code uses `ConvoySecret.key`; this exists for
    /// other implementations' test vectors and for tests that force two keys onto one group id.
    public init(groupID: GroupID, key: SymmetricKey) {
        precondition(key.bitCount == 256, "the envelope key is 256 bits")
        self.groupID = groupID
        self.envelopeKey = SendableKey(key: key)
    }

    /// The subkey that `sender` seals with:
    /// HKDF-SHA256(envelope key, no salt, "jamz sender-key v1" ‖ sender as 8 bytes LE, 32 bytes).
    ///
    /// Why per-sender keys: every member shares the convoy key, and ChaCha20-Poly1305 is broken
    /// (keystream and one-time MAC key reuse) if one (key, nonce) pair ever seals two messages.
    /// A 12-byte nonce cannot hold a 64-bit sender and a 64-bit sequence number, and squeezing
    /// the sender into a few bytes of hash would let two cars collide. With a key per sender,
    /// the nonce only has to be unique per sender, and it is: it is the sender's sequence
    /// number, which never repeats (see `SequenceCounter`).
    public func senderKey(_ sender: MemberID) -> SymmetricKey {
        var info = Self.senderKeyInfo
        withUnsafeBytes(of: sender.raw.littleEndian) { info.append(contentsOf: $0) }
        return HKDF<SHA256>.deriveKey(inputKeyMaterial: envelopeKey.key, info: info, outputByteCount: 32)
    }
}

/// `SymmetricKey` (swift-crypto 3.12) is not marked `Sendable`, though it is an immutable value
/// (its storage is copy-on-write and never mutated after creation): this wrapper says so.
struct SendableKey: @unchecked Sendable, Equatable {
    let key: SymmetricKey
}
