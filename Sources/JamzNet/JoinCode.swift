// The convoy join code: how a convoy secret goes from one car's screen to another car
// (`jamz group create` shows it, `jamz group join CODE` takes it). See docs/architecture.md, "Networking".

/// A convoy secret as a code a person can read out and type:
///
///     04002-0G30G-2GC1R-81450-P30D1-R7H04-8J2CA-1A5GQ-30CHM-6RW3M-F1YP2
///
/// (the code of the secret bytes 0, 1, …, 31: 11 groups of 5, 65 characters with the dashes)
///
/// Format version 1:
/// - payload: 33 bytes = version byte `0x01` ‖ the 32 secret bytes;
/// - the payload's 264 bits, most significant first, in 5-bit symbols, one zero bit of
///   padding at the end: 53 symbols;
/// - a checksum C = Σ (i + 1) · sᵢ mod 1021 over the 53 symbol values sᵢ (i from 0), appended
///   as 2 symbols, C >> 5 and C & 31: 55 symbols;
/// - each symbol as a Crockford base32 digit (`0123456789ABCDEFGHJKMNPQRSTVWXYZ`), in groups
///   of 5 joined by `-`.
///
/// 55 symbols for 33 bytes is long but acceptable: a code is typed once per car per convoy,
/// normally copied or scanned, and it has to carry 256 bits of secret. Every code starts with
/// `0` (the version byte's high bits), which makes a jamz code easy to recognise.
///
/// The checksum catches **every** single-character substitution and **every** transposition
/// of two adjacent characters (in fact of any two characters), guaranteed, not by chance:
/// - a substitution at data position i changes the sum by (i + 1)·e with 0 < |e| ≤ 31 and
///   i + 1 ≤ 53, a nonzero product below the prime 1021, so never 0 mod 1021;
/// - swapping data symbols a, b at positions i, j changes it by (j − i)(a − b), again nonzero
///   below 1021;
/// - a substitution or swap inside the 2 checksum symbols changes the stored value and not
///   the computed one; swapping the last data symbol a with the first checksum symbol b
///   changes the computed value by 53(b − a) and the stored one by 32(a − b), which agree only
///   if 85(a − b) ≡ 0 mod 1021, i.e. a = b.
/// Random garbage passes with probability about 1/1021.
///
/// `parse` is forgiving where it cannot be wrong: upper or lower case, `O` for `0`, `I` and
/// `L` for `1`, and spaces, dashes, tabs and line breaks anywhere are ignored. `U` is not a
/// Crockford digit.
///
/// The convoy's display name is not in the code (it is not secret and would lengthen it); it
/// travels beside the code and is passed to `parse` separately.
public enum JoinCode {
    public static let version: UInt8 = 1
    static let payloadBytes = 1 + ConvoySecret.byteCount
    static let dataSymbols = (payloadBytes * 8 + 4) / 5          // 53
    /// Symbols in a code (without the dashes): 55.
    public static let symbolCount = dataSymbols + 2
    static let modulus = 1021
    static let alphabet = Array("0123456789ABCDEFGHJKMNPQRSTVWXYZ")

    /// The join code of a secret (its name is not included).
    public static func make(_ secret: ConvoySecret) -> String {
        encode(payload: [version] + secret.bytes)
    }

    /// The secret in a join code, named `name`. Throws a `JoinCodeError` saying what is wrong.
    public static func parse(_ text: String, name: String = "") throws(JoinCodeError) -> ConvoySecret {
        let payload = try decode(text)
        guard payload[0] == version else { throw .unsupportedVersion(payload[0]) }
        return ConvoySecret(bytes: Array(payload[1...]), name: name)!
    }

    /// Any 33-byte payload as a code (`make` puts the version first).
    static func encode(payload: [UInt8]) -> String {
        precondition(payload.count == payloadBytes)
        var symbols: [Int] = []
        var acc = 0, bits = 0
        for byte in payload {
            acc = acc << 8 | Int(byte); bits += 8
            while bits >= 5 { bits -= 5; symbols.append((acc >> bits) & 31) }
            acc &= (1 << bits) - 1
        }
        if bits > 0 { symbols.append((acc << (5 - bits)) & 31) }
        let c = checksum(symbols)
        symbols += [c >> 5, c & 31]
        var out = ""
        for (i, s) in symbols.enumerated() {
            if i > 0, i % 5 == 0 { out.append("-") }
            out.append(alphabet[s])
        }
        return out
    }

    /// The 33-byte payload of a code, checked.
    static func decode(_ text: String) throws(JoinCodeError) -> [UInt8] {
        var symbols: [Int] = []
        for (i, ch) in text.enumerated() {
            if ch == "-" || ch.isWhitespace { continue }
            guard let v = value(of: ch) else { throw .badCharacter(ch, position: i + 1) }
            symbols.append(v)
        }
        guard symbols.count >= symbolCount else { throw .tooShort(symbols: symbols.count) }
        guard symbols.count == symbolCount else { throw .tooLong(symbols: symbols.count) }
        let data = Array(symbols[..<dataSymbols])
        guard symbols[dataSymbols] << 5 | symbols[dataSymbols + 1] == checksum(data) else {
            throw .checksumMismatch
        }
        var payload: [UInt8] = []
        var acc = 0, bits = 0
        for s in data {
            acc = acc << 5 | s; bits += 5
            if bits >= 8 { bits -= 8; payload.append(UInt8((acc >> bits) & 0xFF)) }
            acc &= (1 << bits) - 1
        }
        // Padding bits must be zero; with a valid checksum that only fails for a crafted code.
        guard payload.count == payloadBytes, acc == 0 else { throw .checksumMismatch }
        return payload
    }

    static func checksum(_ data: [Int]) -> Int {
        var c = 0
        for (i, s) in data.enumerated() { c = (c + (i + 1) * s) % modulus }
        return c
    }

    static func value(of ch: Character) -> Int? {
        guard var a = ch.asciiValue else { return nil }
        if a >= UInt8(ascii: "a"), a <= UInt8(ascii: "z") { a -= 32 }
        switch a {
        case UInt8(ascii: "O"): return 0
        case UInt8(ascii: "I"), UInt8(ascii: "L"): return 1
        default: return alphabet.firstIndex(of: Character(Unicode.Scalar(a)))
        }
    }
}

/// What is wrong with a typed join code; `description` is the message for the person typing.
public enum JoinCodeError: Error, Equatable, Sendable, CustomStringConvertible {
    /// A character that is not a Crockford base32 digit; position is 1-based in the text as given.
    case badCharacter(Character, position: Int)
    case tooShort(symbols: Int)
    case tooLong(symbols: Int)
    case checksumMismatch
    /// A well-formed code of a format this version does not know.
    case unsupportedVersion(UInt8)

    public var description: String {
        switch self {
        case .badCharacter(let c, let p):
            "bad character '\(c)' at position \(p) — a code has only 0-9 and A-Z without U"
        case .tooShort(let n):
            "too short: \(n) of \(JoinCode.symbolCount) characters (dashes and spaces not counted) — check the code"
        case .tooLong(let n):
            "too long: \(n) of \(JoinCode.symbolCount) characters (dashes and spaces not counted) — check the code"
        case .checksumMismatch:
            "checksum mismatch — check the code"
        case .unsupportedVersion(let v):
            "join code format \(v) is not supported by this version — update the head unit"
        }
    }
}
