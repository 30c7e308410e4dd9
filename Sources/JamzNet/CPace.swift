import Crypto
import Foundation

/// CPace (draft-irtf-cfrg-cpace-21, suite CPACE-X25519-SHA512): a balanced password-
/// authenticated key exchange. Two cars that know the same short code each send one 32-byte
/// value; each ends with the same 64-byte intermediate session key (ISK), or, if the codes
/// differ, with keys that do not match. A listener learns nothing it could test codes against
/// offline: each guess costs one live exchange, which the joining protocol counts and limits.
///
/// What the draft asks and how it is met (`docs/cpace.md`):
/// - the generator comes from the password through Elligator2 in constant time (`Field25519`);
/// - X25519 is swift-crypto's (it clamps the scalar and ignores bit 255 of the peer's value);
/// - a result of all zeros (a low-order peer value) aborts, checked here because swift-crypto
///   does not;
/// - a fresh scalar per attempt (`Party` is used once).
public enum CPace {
    public static let dsi = Array("CPace255".utf8)
    static let dsiISK = dsi + Array("_ISK".utf8)
    /// SHA-512's input block: the password and the padding fill the first block.
    static let blockBytes = 128

    public enum Failure: Error, Equatable, CustomStringConvertible {
        /// The peer's value is not 32 bytes.
        case badLength(Int)
        /// The peer's value is a low-order point (or zero): the exchange gives no key.
        case lowOrderPoint
        public var description: String {
            switch self {
            case .badLength(let n): "a CPace share is 32 bytes, not \(n)"
            case .lowOrderPoint: "the peer's CPace share is a low-order point: no key agreed"
            }
        }
    }

    /// LEB128 length, then the bytes (the draft's prepend_len).
    static func prependLength(_ data: [UInt8]) -> [UInt8] {
        var n = data.count
        var out: [UInt8] = []
        repeat {
            out.append(UInt8(n & 0x7F) | (n >= 128 ? 0x80 : 0))
            n >>= 7
        } while n > 0
        return out + data
    }

    static func lvCat(_ parts: [UInt8]...) -> [UInt8] { parts.flatMap(prependLength) }

    /// The draft's generator_string: DSI, password and zero padding fill SHA-512's first block,
    /// then the channel identifier and the session id.
    static func generatorString(password: [UInt8], channel: [UInt8], session: [UInt8]) -> [UInt8] {
        let pad = max(0, blockBytes - 1 - prependLength(password).count - prependLength(dsi).count)
        return lvCat(dsi, password, [UInt8](repeating: 0, count: pad), channel, session)
    }

    /// The generator: Elligator2 of the first 32 bytes of SHA-512 of the generator string,
    /// as a u-coordinate (32 bytes little-endian).
    static func generator(password: [UInt8], channel: [UInt8], session: [UInt8]) -> [UInt8] {
        let hash = Array(SHA512.hash(data: generatorString(password: password, channel: channel, session: session)).prefix(32))
        return Field25519.elligator2(Field25519(bytes: hash)).bytes
    }

    /// X25519(scalar, u); throws on the all-zero result (scalar_mult_vfy).
    static func scalarMult(_ scalar: Curve25519.KeyAgreement.PrivateKey, _ u: [UInt8]) throws -> [UInt8] {
        guard u.count == 32 else { throw Failure.badLength(u.count) }
        let shared = try scalar.sharedSecretFromKeyAgreement(with: Curve25519.KeyAgreement.PublicKey(rawRepresentation: u))
        let out = shared.withUnsafeBytes { Array($0) }
        var any: UInt8 = 0
        for b in out { any |= b }
        guard any != 0 else { throw Failure.lowOrderPoint }
        return out
    }

    /// Lexicographic order of the draft (a longer string with the same prefix is larger).
    static func larger(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        for (x, y) in zip(a, b) where x != y { return x > y }
        return a.count > b.count
    }

    /// The transcript of the initiator-responder setting: the initiator's share first on both sides.
    static func transcriptIR(_ ya: [UInt8], _ ada: [UInt8], _ yb: [UInt8], _ adb: [UInt8]) -> [UInt8] {
        lvCat(ya, ada) + lvCat(yb, adb)
    }

    /// The transcript of the symmetric setting ("oc": ordered concatenation).
    static func transcriptOC(_ ya: [UInt8], _ ada: [UInt8], _ yb: [UInt8], _ adb: [UInt8]) -> [UInt8] {
        let (a, b) = (lvCat(ya, ada), lvCat(yb, adb))
        return Array("oc".utf8) + (larger(a, b) ? a + b : b + a)
    }

    /// One side of one exchange. Make it, send `share` (with the associated data), give the
    /// peer's share and associated data to `key`: the ISK. A party is used for one exchange.
    public struct Party {
        public enum Role: Sendable { case initiator, responder, symmetric }
        let role: Role
        let scalar: Curve25519.KeyAgreement.PrivateKey
        let session: [UInt8]
        let associated: [UInt8]
        /// What this side sends (Ya or Yb).
        public let share: [UInt8]

        /// `password`: the short code; `channel`: the channel identifier (both cars' roles and
        /// names, initiator first), never sent; `session`: the session id both know (sent in
        /// clear); `associated`: this side's associated data (sent in clear with the share).
        /// `scalar`: fresh random unless a test gives one.
        public init(role: Role, password: [UInt8], channel: [UInt8], session: [UInt8], associated: [UInt8],
                    scalar: [UInt8]? = nil) throws {
            self.role = role
            self.session = session
            self.associated = associated
            self.scalar = try scalar.map { try Curve25519.KeyAgreement.PrivateKey(rawRepresentation: $0) } ?? Curve25519.KeyAgreement.PrivateKey()
            share = try CPace.scalarMult(self.scalar, CPace.generator(password: password, channel: channel, session: session))
        }

        /// The intermediate session key (64 bytes), from the peer's share and associated data.
        /// Throws for a share that is not 32 bytes or a low-order point.
        public func key(peerShare: [UInt8], peerAssociated: [UInt8]) throws -> [UInt8] {
            let k = try CPace.scalarMult(scalar, peerShare)
            let transcript: [UInt8]
            switch role {
            case .initiator: transcript = transcriptIR(share, associated, peerShare, peerAssociated)
            case .responder: transcript = transcriptIR(peerShare, peerAssociated, share, associated)
            case .symmetric: transcript = transcriptOC(share, associated, peerShare, peerAssociated)
            }
            return Array(SHA512.hash(data: lvCat(dsiISK, session, k) + transcript))
        }
    }
}
