import JamzCore

/// The datagrams of a join (`Pairing`): sent in clear on the convoy's UDP port, before the
/// joining car has any key. Nothing in them is secret: the shares are CPace shares, the tags
/// prove knowledge of the code without revealing it, and the convoy secret travels only inside
/// `welcome`, sealed under a key derived from the exchange's ISK.
///
/// Byte by byte (integers little-endian):
///
/// | offset | size | field |
/// |---|---|---|
/// | 0 | 1 | magic `0x4A` (`'J'`, as an envelope) |
/// | 1 | 1 | `0x70` (`'p'`): a join datagram, format 1 (an envelope has `0x01` here) |
/// | 2 | 1 | kind: 1 offer, 2 hello, 3 reply, 4 confirm, 5 welcome, 6 answer, 7 reveal |
/// | 3 | 16 | session id (the joiner's, random; an offer: the pressing car's) |
/// | 19 | … | by kind, below |
///
/// - offer (push-button presence, multicast once a second while the button's window is open):
///   mode byte, member id (8), hosting (1: in a convoy), members heard (1), name (u8 length + UTF-8)
/// - hello (joiner → host): mode (1: short code, 2: button), then for a code the share Ya (32),
///   for a button the commitment SHA-256("jamz button commit v1" ‖ sid ‖ Ya) (32); ADa (u8 length + bytes)
/// - reply (host → joiner, a code): share Yb (32), ADb (u8 length + bytes), tag Tb (64)
/// - confirm (joiner → host, a code): tag Ta (64)
/// - answer (host → joiner, a button): share Yb (32), ADb (u8 length + bytes)
/// - reveal (joiner → host, a button): share Ya (32), tag Ta (64)
/// - welcome (host → joiner): ChaCha20-Poly1305 ciphertext and tag of secret (32) ‖ name, AAD
///   the first 19 bytes
///
/// AD (associated data) is the member id (8) followed by the car's name in UTF-8 (≤ 32 bytes).
public enum PairingWire {
    public static let magic: UInt8 = 0x4A
    public static let version: UInt8 = 0x70
    public static let sessionCount = 16
    public static let headerCount = 3 + sessionCount
    public static let tagCount = 64
    public static let shareCount = 32

    public enum Mode: UInt8, Sendable, Equatable { case code = 1, button = 2 }

    public enum Message: Sendable, Equatable {
        case offer(session: [UInt8], member: MemberID, hosting: Bool, members: UInt8, name: String)
        case hello(session: [UInt8], mode: Mode, share: [UInt8], associated: [UInt8])
        case reply(session: [UInt8], share: [UInt8], associated: [UInt8], tag: [UInt8])
        case confirm(session: [UInt8], tag: [UInt8])
        case welcome(session: [UInt8], sealed: [UInt8])
        case answer(session: [UInt8], share: [UInt8], associated: [UInt8])
        case reveal(session: [UInt8], share: [UInt8], tag: [UInt8])

        public var session: [UInt8] {
            switch self {
            case .offer(let s, _, _, _, _), .hello(let s, _, _, _), .reply(let s, _, _, _), .confirm(let s, _), .welcome(let s, _),
                 .answer(let s, _, _), .reveal(let s, _, _): s
            }
        }
    }

    public enum Failure: Error, Equatable, CustomStringConvertible {
        case truncated(Int)
        case unknownKind(UInt8)
        case unknownMode(UInt8)
        case trailing(Int)
        public var description: String {
            switch self {
            case .truncated(let n): "join datagram truncated (\(n) bytes)"
            case .unknownKind(let k): "join datagram of unknown kind \(k)"
            case .unknownMode(let m): "join datagram with unknown mode \(m)"
            case .trailing(let n): "join datagram with \(n) bytes too many"
            }
        }
    }

    /// Whether a datagram is a join datagram (and not an envelope).
    public static func isPairing(_ bytes: [UInt8]) -> Bool { bytes.count >= 2 && bytes[0] == magic && bytes[1] == version }

    /// The 19-byte header of a message (the welcome's additional authenticated data).
    static func header(_ kind: UInt8, _ session: [UInt8]) -> [UInt8] { [magic, version, kind] + session }

    /// A car's associated data: member id and name (cut to 32 bytes at a character boundary).
    public static func associated(member: MemberID, name: String) -> [UInt8] {
        withUnsafeBytes(of: member.raw.littleEndian) { Array($0) } + shortName(name)
    }

    /// The member id and name in associated data (nil: fewer than 8 bytes).
    public static func parseAssociated(_ ad: [UInt8]) -> (MemberID, String)? {
        guard ad.count >= 8 else { return nil }
        let raw = ad.prefix(8).enumerated().reduce(UInt64(0)) { $0 | UInt64($1.element) << (8 * UInt64($1.offset)) }
        return (MemberID(raw), String(decoding: ad.dropFirst(8), as: UTF8.self))
    }

    /// A name's UTF-8, cut to `max` bytes at a character boundary.
    public static func shortName(_ name: String, max: Int = 32) -> [UInt8] {
        var out: [UInt8] = []
        for c in name {
            let u = Array(String(c).utf8)
            guard out.count + u.count <= max else { break }
            out += u
        }
        return out
    }

    public static func encode(_ m: Message) -> [UInt8] {
        switch m {
        case .offer(let s, let member, let hosting, let members, let name):
            let n = shortName(name)
            return header(1, s) + [Mode.button.rawValue] + withUnsafeBytes(of: member.raw.littleEndian) { Array($0) }
                + [hosting ? 1 : 0, members, UInt8(n.count)] + n
        case .hello(let s, let mode, let share, let ad):
            return header(2, s) + [mode.rawValue] + share + [UInt8(ad.count)] + ad
        case .reply(let s, let share, let ad, let tag):
            return header(3, s) + share + [UInt8(ad.count)] + ad + tag
        case .confirm(let s, let tag):
            return header(4, s) + tag
        case .welcome(let s, let sealed):
            return header(5, s) + sealed
        case .answer(let s, let share, let ad):
            return header(6, s) + share + [UInt8(ad.count)] + ad
        case .reveal(let s, let share, let tag):
            return header(7, s) + share + tag
        }
    }

    public static func decode(_ bytes: [UInt8]) throws(Failure) -> Message {
        var r = Reader(bytes: bytes)
        guard isPairing(bytes), bytes.count >= headerCount else { throw .truncated(bytes.count) }
        r.at = 2
        let kind = try r.byte()
        let s = try r.take(sessionCount)
        let m: Message
        switch kind {
        case 1:
            guard try r.byte() == Mode.button.rawValue else { throw .unknownMode(bytes[r.at - 1]) }
            let raw = try r.take(8).enumerated().reduce(UInt64(0)) { $0 | UInt64($1.element) << (8 * UInt64($1.offset)) }
            let hosting = try r.byte() != 0, members = try r.byte()
            let name = try r.take(Int(try r.byte()))
            m = .offer(session: s, member: MemberID(raw), hosting: hosting, members: members, name: String(decoding: name, as: UTF8.self))
        case 2:
            let mb = try r.byte()
            guard let mode = Mode(rawValue: mb) else { throw .unknownMode(mb) }
            let share = try r.take(shareCount)
            m = .hello(session: s, mode: mode, share: share, associated: try r.take(Int(try r.byte())))
        case 3:
            let share = try r.take(shareCount)
            let ad = try r.take(Int(try r.byte()))
            m = .reply(session: s, share: share, associated: ad, tag: try r.take(tagCount))
        case 4:
            m = .confirm(session: s, tag: try r.take(tagCount))
        case 5:
            // secret (32) + tag (16) at least
            guard bytes.count - r.at >= 48 else { throw .truncated(bytes.count) }
            return .welcome(session: s, sealed: Array(bytes[r.at...]))
        case 6:
            let share = try r.take(shareCount)
            m = .answer(session: s, share: share, associated: try r.take(Int(try r.byte())))
        case 7:
            let share = try r.take(shareCount)
            m = .reveal(session: s, share: share, tag: try r.take(tagCount))
        default:
            throw .unknownKind(kind)
        }
        guard r.at == bytes.count else { throw .trailing(bytes.count - r.at) }
        return m
    }

    struct Reader {
        let bytes: [UInt8]
        var at = 0
        mutating func byte() throws(Failure) -> UInt8 {
            guard at < bytes.count else { throw .truncated(bytes.count) }
            at += 1
            return bytes[at - 1]
        }
        mutating func take(_ n: Int) throws(Failure) -> [UInt8] {
            guard bytes.count - at >= n else { throw .truncated(bytes.count) }
            at += n
            return Array(bytes[(at - n)..<at])
        }
    }
}
