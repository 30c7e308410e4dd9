import Crypto
import JamzCore

/// What a car of a convoy advertises over Bluetooth LE. Two formats, the same fields:
///
/// | legacy (v1) | extended (v2) | field |
/// |---|---|---|
/// | 3 | 3 | AD "Flags": `02 01 06` (LE General Discoverable, no BR/EDR) |
/// | 2 | 2 | AD header of the manufacturer data: length, type `0xFF` |
/// | 2 | 2 | company id `0xFFFF` (Bluetooth SIG: for tests and prototypes; a product takes its own), little-endian |
/// | 1 | 1 | format version, 1 or 2 |
/// | 6 | 8 | convoy hint: HMAC-SHA256(hint key, slot as u32 LE), first bytes |
/// | 2 | 4 | nonce (random per advertising set), little-endian |
/// | 12 | 12 | sealed body: member id (u64 LE), term number (low 24 bits, LE), flags (bit 0: DJ), XORed with HMAC-SHA256(body key, "ks" / "ks2" ‖ slot ‖ nonce) |
/// | 3 | 8 | tag: HMAC-SHA256(body key, "tag" / "tag2" ‖ slot ‖ hint ‖ nonce ‖ sealed body), first bytes |
///
/// The legacy format is exactly 31 bytes, what every controller's legacy advertisement carries.
/// A controller with extended advertising (READ_ADV_FEATURES: the secondary 1M PHY and room for
/// 40 bytes) sends the extended one: a forged advertisement passes its tag one time in 2^64
/// instead of 2^24, and its nonce does not repeat within a slot. Every car decodes both.
///
/// The slot is the current 15-minute period of GPS/UTC time (`slot(unixSeconds:)`): the hint
/// changes with it, and nothing else in the advertisement is constant, so a stranger cannot
/// follow a car from one slot to the next, nor tell which car is the DJ. Keys come from the
/// convoy secret (`ConvoySecret.bleKey`). The tag only lets a car drop garbage and other
/// convoys' advertisements cheaply: what the data channel carries is sealed like every envelope.
public enum BLEAdvertisement {
    public static let companyID: UInt16 = 0xFFFF
    public static let slotSeconds: Int64 = 900
    static let bodyLength = 12

    public enum Format: Sendable, Equatable, CaseIterable {
        case legacy, extended
        public var version: UInt8 { self == .legacy ? 1 : 2 }
        var hintLength: Int { self == .legacy ? 6 : 8 }
        var nonceLength: Int { self == .legacy ? 2 : 4 }
        var tagLength: Int { self == .legacy ? 3 : 8 }
        var valueLength: Int { 2 + 1 + hintLength + nonceLength + bodyLength + tagLength }
        /// Bytes of the whole advertising payload: 31 (the legacy limit, exactly) or 40.
        public var length: Int { 3 + 2 + valueLength }
        var keystreamLabel: [UInt8] { Array((self == .legacy ? "ks" : "ks2").utf8) }
        var tagLabel: [UInt8] { Array((self == .legacy ? "tag" : "tag2").utf8) }
        init?(version: UInt8) {
            switch version {
            case 1: self = .legacy
            case 2: self = .extended
            default: return nil
            }
        }
    }

    public struct Beacon: Sendable, Equatable {
        public var member: MemberID
        /// The low 24 bits of the term number (the data channel carries the whole term).
        public var term: UInt32
        public var isDJ: Bool
        public init(member: MemberID, term: UInt64, isDJ: Bool) {
            self.member = member; self.term = UInt32(truncatingIfNeeded: term) & 0xFF_FFFF; self.isDJ = isDJ
        }
    }

    /// Why an advertisement was not taken (counted by reason).
    public enum Drop: String, Error, Sendable, CaseIterable, Codable {
        /// Not AD structures at all (a length running past the end).
        case malformed
        /// Someone else's advertisement (a phone, a tag, another maker).
        case notOurs
        case badVersion
        /// Ours, but of a convoy this car is not in (or a slot far from ours).
        case foreignConvoy
        /// The hint matched and the tag did not: forged or corrupted.
        case badTag
    }

    /// The slot of a UTC time (seconds since 1970).
    public static func slot(unixSeconds: Int64) -> UInt32 {
        UInt32(truncatingIfNeeded: unixSeconds / slotSeconds)
    }

    /// `nonce`: its low 16 bits in the legacy format.
    public static func encode(_ b: Beacon, key: BLEKey, slot: UInt32, nonce: UInt32, format: Format = .legacy) -> [UInt8] {
        let hint = key.hint(slot: slot, count: format.hintLength)
        var body = [UInt8]()
        body.reserveCapacity(bodyLength)
        for i in 0..<8 { body.append(UInt8(truncatingIfNeeded: b.member.raw >> (8 * UInt64(i)))) }
        for i in 0..<3 { body.append(UInt8(truncatingIfNeeded: b.term >> (8 * UInt32(i)))) }
        body.append(b.isDJ ? 1 : 0)
        let n = (0..<format.nonceLength).map { UInt8(truncatingIfNeeded: nonce >> (8 * UInt32($0))) }
        let sealed = zip(body, key.keystream(format, slot: slot, nonce: n)).map { $0 ^ $1 }
        var out: [UInt8] = [2, 0x01, 0x06, UInt8(format.valueLength + 1), 0xFF]
        out += le(companyID) + [format.version] + hint + n + sealed
        out += key.tag(format, slot: slot, hint: hint, nonce: n, sealed: sealed)
        return out
    }

    /// The beacon in an advertising payload, if it is one of a convoy whose key is given, for the
    /// slot `slot` or either neighbour (two cars' clocks either side of a slot boundary).
    public static func decode(_ ad: [UInt8], keys: [BLEKey], slot: UInt32) -> Result<(beacon: Beacon, key: Int), Drop> {
        var value: ArraySlice<UInt8>?
        var i = 0
        while i < ad.count {
            let len = Int(ad[i])
            if len == 0 { break }   // the rest is padding
            guard i + 1 + len <= ad.count else { return .failure(.malformed) }
            let type = ad[i + 1]
            let v = ad[(i + 2)..<(i + 1 + len)]
            if type == 0xFF, v.count >= 2, UInt16(v[v.startIndex]) | UInt16(v[v.startIndex + 1]) << 8 == companyID {
                value = v
            }
            i += 1 + len
        }
        guard let v = value.map(Array.init) else { return .failure(.notOurs) }
        guard v.count >= 3, let format = Format(version: v[2]) else { return .failure(.badVersion) }
        guard v.count == format.valueLength else { return .failure(.malformed) }
        var at = 3
        func take(_ n: Int) -> [UInt8] { defer { at += n }; return Array(v[at..<(at + n)]) }
        let hint = take(format.hintLength), nonce = take(format.nonceLength), sealed = take(bodyLength), tag = take(format.tagLength)
        for (k, key) in keys.enumerated() {
            for s in [slot, slot &- 1, slot &+ 1] where key.hint(slot: s, count: format.hintLength) == hint {
                guard constantTimeEqual(key.tag(format, slot: s, hint: hint, nonce: nonce, sealed: sealed), tag) else {
                    return .failure(.badTag)
                }
                let body = zip(sealed, key.keystream(format, slot: s, nonce: nonce)).map { $0 ^ $1 }
                let member = body[0..<8].enumerated().reduce(UInt64(0)) { $0 | UInt64($1.element) << (8 * UInt64($1.offset)) }
                let term = UInt32(body[8]) | UInt32(body[9]) << 8 | UInt32(body[10]) << 16
                return .success((Beacon(member: MemberID(member), term: UInt64(term), isDJ: body[11] & 1 == 1), k))
            }
        }
        return .failure(.foreignConvoy)
    }

    static func le(_ x: UInt16) -> [UInt8] { [UInt8(x & 0xFF), UInt8(x >> 8)] }

    static func constantTimeEqual(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        guard a.count == b.count else { return false }
        return zip(a, b).reduce(0) { $0 | ($1.0 ^ $1.1) } == 0
    }
}

/// The two keys of a convoy's advertisements, derived from its secret (`ConvoySecret.bleKey`).
public struct BLEKey: Sendable {
    let hint: SendableKey
    let body: SendableKey
    var hintKey: SymmetricKey { hint.key }
    var bodyKey: SymmetricKey { body.key }

    init(hintKey: SymmetricKey, bodyKey: SymmetricKey) { hint = SendableKey(key: hintKey); body = SendableKey(key: bodyKey) }

    func hint(slot: UInt32, count: Int = 6) -> [UInt8] {
        Array(HMAC<SHA256>.authenticationCode(for: Self.le32(slot), using: hintKey).prefix(count))
    }

    func keystream(_ f: BLEAdvertisement.Format, slot: UInt32, nonce: [UInt8]) -> [UInt8] {
        Array(HMAC<SHA256>.authenticationCode(for: f.keystreamLabel + Self.le32(slot) + nonce, using: bodyKey).prefix(BLEAdvertisement.bodyLength))
    }

    func tag(_ f: BLEAdvertisement.Format, slot: UInt32, hint: [UInt8], nonce: [UInt8], sealed: [UInt8]) -> [UInt8] {
        Array(HMAC<SHA256>.authenticationCode(for: f.tagLabel + Self.le32(slot) + hint + nonce + sealed, using: bodyKey).prefix(f.tagLength))
    }

    static func le32(_ x: UInt32) -> [UInt8] { (0..<4).map { UInt8(truncatingIfNeeded: x >> (8 * UInt32($0))) } }
}

extension ConvoySecret {
    static let bleHintInfo = Array("jamz ble-hint v1".utf8)
    static let bleBodyInfo = Array("jamz ble-body v1".utf8)

    /// The keys of this convoy's Bluetooth LE advertisements (`BLEAdvertisement`):
    /// HKDF-SHA256(secret, salt, "jamz ble-hint v1" / "jamz ble-body v1", 32 bytes each).
    public var bleKey: BLEKey {
        BLEKey(hintKey: derive(info: Self.bleHintInfo, count: 32), bodyKey: derive(info: Self.bleBodyInfo, count: 32))
    }
}
