import Crypto
import JamzCore

/// What a car of a convoy advertises over Bluetooth LE, in a legacy advertisement (31 bytes, so
/// every controller can send it; extended advertising carries the same bytes):
///
/// | bytes | field |
/// |---|---|
/// | 3 | AD "Flags": `02 01 06` (LE General Discoverable, no BR/EDR) |
/// | 2 | AD header of the manufacturer data: length 27, type `0xFF` |
/// | 2 | company id `0xFFFF` (Bluetooth SIG: for tests and prototypes; a product takes its own), little-endian |
/// | 1 | format version, 1 |
/// | 6 | convoy hint: HMAC-SHA256(hint key, slot as u32 LE), first 6 bytes |
/// | 2 | nonce (random per advertising set) |
/// | 12 | sealed body: member id (u64 LE), term number (low 24 bits, LE), flags (bit 0: DJ), XORed with HMAC-SHA256(body key, "ks" ‖ slot ‖ nonce) |
/// | 3 | tag: HMAC-SHA256(body key, "tag" ‖ slot ‖ hint ‖ nonce ‖ sealed body), first 3 bytes |
///
/// The slot is the current 15-minute period of GPS/UTC time (`slot(unixSeconds:)`): the hint
/// changes with it, and nothing else in the advertisement is constant, so a stranger cannot
/// follow a car from one slot to the next, nor tell which car is the DJ. Keys come from the
/// convoy secret (`ConvoySecret.bleKey`). The tag only lets a car drop garbage and other
/// convoys' advertisements cheaply: what the data channel carries is sealed like every envelope.
public enum BLEAdvertisement {
    public static let companyID: UInt16 = 0xFFFF
    public static let version: UInt8 = 1
    /// Bytes of the whole advertising payload: the legacy limit, exactly.
    public static let length = 31
    public static let slotSeconds: Int64 = 900
    static let valueLength = 26   // company 2 + version 1 + hint 6 + nonce 2 + body 12 + tag 3

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

    public static func encode(_ b: Beacon, key: BLEKey, slot: UInt32, nonce: UInt16) -> [UInt8] {
        let hint = key.hint(slot: slot)
        var body = [UInt8]()
        body.reserveCapacity(12)
        for i in 0..<8 { body.append(UInt8(truncatingIfNeeded: b.member.raw >> (8 * UInt64(i)))) }
        for i in 0..<3 { body.append(UInt8(truncatingIfNeeded: b.term >> (8 * UInt32(i)))) }
        body.append(b.isDJ ? 1 : 0)
        let sealed = zip(body, key.keystream(slot: slot, nonce: nonce)).map { $0 ^ $1 }
        let n = le(nonce)
        var out: [UInt8] = [2, 0x01, 0x06, UInt8(valueLength + 1), 0xFF]
        out += le(companyID) + [version] + hint + n + sealed
        out += key.tag(slot: slot, hint: hint, nonce: n, sealed: sealed)
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
        guard v.count >= 3, v[2] == version else { return .failure(.badVersion) }
        guard v.count == valueLength else { return .failure(.malformed) }
        let hint = Array(v[3..<9]), nonce = Array(v[9..<11]), sealed = Array(v[11..<23]), tag = Array(v[23..<26])
        for (k, key) in keys.enumerated() {
            for s in [slot, slot &- 1, slot &+ 1] where key.hint(slot: s) == hint {
                guard constantTimeEqual(key.tag(slot: s, hint: hint, nonce: nonce, sealed: sealed), tag) else {
                    return .failure(.badTag)
                }
                let n = UInt16(nonce[0]) | UInt16(nonce[1]) << 8
                let body = zip(sealed, key.keystream(slot: s, nonce: n)).map { $0 ^ $1 }
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

    func hint(slot: UInt32) -> [UInt8] {
        Array(HMAC<SHA256>.authenticationCode(for: Self.le32(slot), using: hintKey).prefix(6))
    }

    func keystream(slot: UInt32, nonce: UInt16) -> [UInt8] {
        Array(HMAC<SHA256>.authenticationCode(for: Array("ks".utf8) + Self.le32(slot) + BLEAdvertisement.le(nonce), using: bodyKey).prefix(12))
    }

    func tag(slot: UInt32, hint: [UInt8], nonce: [UInt8], sealed: [UInt8]) -> [UInt8] {
        Array(HMAC<SHA256>.authenticationCode(for: Array("tag".utf8) + Self.le32(slot) + hint + nonce + sealed, using: bodyKey).prefix(3))
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
