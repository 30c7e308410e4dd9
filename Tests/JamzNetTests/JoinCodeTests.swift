import Foundation
import JamzCore
@testable import JamzNet
import Testing

private func secret(_ seed: UInt64, _ name: String = "") -> ConvoySecret {
    var rng = SplitMix64(seed: seed)
    return ConvoySecret.random(name: name, using: &rng)
}

private func error(_ text: String) -> JoinCodeError? {
    do { _ = try JoinCode.parse(text); return nil } catch { return error }
}

/// The code's symbols without the dashes, and back.
private func symbols(_ code: String) -> [Character] { code.filter { $0 != "-" }.map { $0 } }
private func grouped(_ s: [Character]) -> String {
    stride(from: 0, to: s.count, by: 5).map { String(s[$0..<min($0 + 5, s.count)]) }.joined(separator: "-")
}

@Suite struct JoinCodeTests {
    static let alphabet = Array("0123456789ABCDEFGHJKMNPQRSTVWXYZ")

    /// Pinned; computed independently from the doc comment (Python).
    @Test func knownCode() throws {
        let s = try #require(ConvoySecret(bytes: Array(0..<32)))
        #expect(JoinCode.make(s) == "04002-0G30G-2GC1R-81450-P30D1-R7H04-8J2CA-1A5GQ-30CHM-6RW3M-F1YP2")
    }

    @Test func roundTripRandomSecrets() throws {
        for seed in 0..<300 as Range<UInt64> {
            let s = secret(seed)
            let code = JoinCode.make(s)
            #expect(code.count == 65)
            let groups = code.split(separator: "-")
            #expect(groups.count == 11 && groups.allSatisfy { $0.count == 5 })
            #expect(code.first == "0")
            #expect(symbols(code).allSatisfy { Self.alphabet.contains($0) })
            #expect(try JoinCode.parse(code).bytes == s.bytes)
        }
        let fresh = ConvoySecret.random(name: "x")
        #expect(try JoinCode.parse(JoinCode.make(fresh), name: "x") == fresh)
    }

    /// The name travels beside the code, not in it.
    @Test func nameIsNotInTheCode() throws {
        let s = secret(7, "Road trip")
        var renamed = s
        renamed.name = "Other"
        #expect(JoinCode.make(s) == JoinCode.make(renamed))
        let parsed = try JoinCode.parse(JoinCode.make(s), name: "Road trip")
        #expect(parsed == s && parsed.groupID == s.groupID)
        #expect(try JoinCode.parse(JoinCode.make(s)).name == "")
    }

    @Test func everySingleSubstitutionIsDetected() {
        for seed in 0..<12 as Range<UInt64> {
            let sym = symbols(JoinCode.make(secret(seed)))
            for i in sym.indices {
                for c in Self.alphabet where c != sym[i] {
                    var t = sym
                    t[i] = c
                    #expect(error(grouped(t)) == .checksumMismatch, "position \(i) → \(c)")
                }
            }
        }
    }

    @Test func everyAdjacentTranspositionIsDetected() {
        for seed in 100..<200 as Range<UInt64> {
            let code = JoinCode.make(secret(seed))
            let sym = symbols(code)
            for i in 0..<(sym.count - 1) where sym[i] != sym[i + 1] {
                var t = sym
                t.swapAt(i, i + 1)
                #expect(error(grouped(t)) == .checksumMismatch, "swap \(i), \(i + 1)")
            }
            // Swapping a character with a dash, as typed, changes nothing but the grouping.
            var chars = Array(code)
            chars.swapAt(4, 5)
            #expect(error(String(chars)) == nil)
        }
    }

    @Test func normalisation() throws {
        // A code with both a 0 and a 1, so the aliases below are exercised.
        let s = try #require((42..<142 as Range<UInt64>).lazy.map { secret($0) }
            .first { JoinCode.make($0).contains("0") && JoinCode.make($0).contains("1") })
        let code = JoinCode.make(s)
        let forms = [
            code.lowercased(),
            code.replacingOccurrences(of: "-", with: " "),
            code.replacingOccurrences(of: "-", with: ""),
            "  " + code.replacingOccurrences(of: "-", with: "\n") + "\t\n",
            code.replacingOccurrences(of: "0", with: "O"),
            code.replacingOccurrences(of: "0", with: "o"),
            code.replacingOccurrences(of: "1", with: "I"),
            code.replacingOccurrences(of: "1", with: "l"),
            code.replacingOccurrences(of: "1", with: "L").lowercased(),
            String(symbols(code)).enumerated().map { String($1) + ($0 % 3 == 2 ? "--" : "") }.joined(),
        ]
        for f in forms {
            #expect(try JoinCode.parse(f).bytes == s.bytes, "\(f)")
        }
    }

    @Test func errorsSayWhatIsWrong() throws {
        let code = JoinCode.make(secret(5))
        var chars = Array(code)
        chars[6] = "U"
        let bad = error(String(chars))
        #expect(bad == .badCharacter("U", position: 7))
        #expect(bad?.description.hasPrefix("bad character 'U' at position 7") == true)
        #expect(error("04002 0G30G é") == .badCharacter("é", position: 13))

        let short = error(String(code.dropLast(6)))
        #expect(short == .tooShort(symbols: 50))
        #expect(short?.description.hasPrefix("too short") == true)
        #expect(error("") == .tooShort(symbols: 0))
        #expect(error(code + "0") == .tooLong(symbols: 56))

        var sym = symbols(code)
        sym[20] = sym[20] == "A" ? "B" : "A"
        let mismatch = error(grouped(sym))
        #expect(mismatch == .checksumMismatch)
        #expect(mismatch?.description == "checksum mismatch — check the code")

        let future = JoinCode.encode(payload: [2] + secret(5).bytes)
        #expect(error(future) == .unsupportedVersion(2))
        #expect(error(future)?.description.contains("not supported") == true)
    }

    /// Nonzero padding cannot come from `make`; a code crafted with it is refused.
    @Test func nonzeroPaddingIsRefused() {
        var sym = symbols(JoinCode.make(secret(9))).map { Self.alphabet.firstIndex(of: $0)! }
        sym[52] |= 1
        let c = JoinCode.checksum(Array(sym[..<53]))
        sym[53] = c >> 5; sym[54] = c & 31
        #expect(error(grouped(sym.map { Self.alphabet[$0] })) == .checksumMismatch)
    }
}
