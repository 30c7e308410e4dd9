import Crypto
import Foundation
@testable import JamzNet
import Testing

private func hex(_ b: [UInt8]) -> String { b.map { String(format: "%02x", $0) }.joined() }
private func bytes(_ h: String) -> [UInt8] {
    let s = h.filter { !$0.isWhitespace }
    return stride(from: 0, to: s.count, by: 2).map { i in
        UInt8(s[s.index(s.startIndex, offsetBy: i)..<s.index(s.startIndex, offsetBy: i + 2)], radix: 16)!
    }
}

/// CPace against draft-irtf-cfrg-cpace-21's own vectors (Appendix A and B.1, CPACE-X25519-SHA512)
/// and Elligator2 against RFC 9380's (J.4.2, curve25519_XMD:SHA-512_ELL2_NU_); the sources and
/// their repositories are in docs/cpace.md.
@Suite struct CPaceTests {
    // B.1 inputs.
    static let password = Array("Password".utf8)
    static let channel = bytes("0b415f696e69746961746f720b425f726573706f6e646572")
    static let session = bytes("7e4b4791d6a8ef019b936c79fb7f2c57")
    static let ya = bytes("21b4f4bd9e64ed355c3eb676a28ebedaf6d8f17bdc365995b319097153044080")
    static let yb = bytes("848b0779ff415f0af4ea14df9dd1d3c29ac41d836c7808896c4eba19c51ac40a")
    static let ada = Array("ADa".utf8), adb = Array("ADb".utf8)

    @Test func stringUtilitiesAsInAppendixA() {
        #expect(hex(CPace.prependLength([])) == "00")
        #expect(hex(CPace.prependLength(Array("1234".utf8))) == "0431323334")
        #expect(Array(CPace.prependLength((0..<127).map { UInt8($0) }).prefix(2)) == [0x7F, 0x00])
        #expect(Array(CPace.prependLength((0..<128).map { UInt8($0) }).prefix(3)) == [0x80, 0x01, 0x00])
        #expect(hex(CPace.lvCat(Array("1234".utf8), Array("5".utf8), [], Array("678".utf8))) == "043132333401350003363738")
        #expect(!CPace.larger([0], [0, 0]) && CPace.larger([1], [0, 0]) && CPace.larger([0, 0], [0]))
        #expect(!CPace.larger([0, 0], [1]) && !CPace.larger([0, 1], [1]) && !CPace.larger(Array("ABCD".utf8), Array("BCD".utf8)))
        let u = { (s: String) in Array(s.utf8) }
        #expect(hex(CPace.transcriptIR(u("123"), u("PartyA"), u("234"), u("PartyB"))) == "03313233065061727479410332333406506172747942")
        #expect(hex(CPace.transcriptOC(u("123"), u("PartyA"), u("234"), u("PartyB"))) == "6f6303323334065061727479420331323306506172747941")
        #expect(hex(CPace.transcriptOC(u("3456"), u("PartyA"), u("2345"), u("PartyB"))) == "6f63043334353606506172747941043233343506506172747942")
    }

    @Test func generatorAsInB1() {
        let s = CPace.generatorString(password: Self.password, channel: Self.channel, session: Self.session)
        #expect(s.count == 170)
        #expect(hex(Array(s.prefix(19))) == "0843506163653235350850617373776f72646d")
        #expect(s[19..<128].allSatisfy { $0 == 0 })
        #expect(hex(Array(s[128...])) == "180b415f696e69746961746f720b425f726573706f6e646572107e4b4791d6a8ef019b936c79fb7f2c57")
        #expect(hex(Array(SHA512.hash(data: s).prefix(32))) == "03998087bdb1a2617bbe25ef5a7c18cd4f84f902328701790958755ee4aed1d3")
        #expect(hex(CPace.generator(password: Self.password, channel: Self.channel, session: Self.session))
                == "d04bf6d41f6a289632a2e929fa29bebd51092512a7829fdde7d314b62f05a73f")
    }

    @Test func sharesKeyAndSessionKeysAsInB1() throws {
        let a = try CPace.Party(role: .initiator, password: Self.password, channel: Self.channel, session: Self.session, associated: Self.ada, scalar: Self.ya)
        let b = try CPace.Party(role: .responder, password: Self.password, channel: Self.channel, session: Self.session, associated: Self.adb, scalar: Self.yb)
        #expect(hex(a.share) == "1d13c89278cdadd826f6d8d7f887701430f8380ddc17611cdd6dc989ce0c9f32")
        #expect(hex(b.share) == "248cccf6d5cdc3646f0ad593f9e6cef4e69d4945f8372e623512ecea32185623")
        let ir = "6e19b875f7a561d6b3ca3dbb9ef42ac55de3e717881018204b8922b4d5e53bb2aa82c300bea7b65d2b671da71922ddf6472301b79bc270adfa8bf413285f2263"
        #expect(hex(try a.key(peerShare: b.share, peerAssociated: Self.adb)) == ir)
        #expect(hex(try b.key(peerShare: a.share, peerAssociated: Self.ada)) == ir)

        let sa = try CPace.Party(role: .symmetric, password: Self.password, channel: Self.channel, session: Self.session, associated: Self.ada, scalar: Self.ya)
        let sb = try CPace.Party(role: .symmetric, password: Self.password, channel: Self.channel, session: Self.session, associated: Self.adb, scalar: Self.yb)
        let sy = "eef745e2f6e7ae2b1a1e53da340e777167a07fe150436648c51fb199c11f3cbabfc683a2b48e1af5881940dc398d375c95e6b4ae9948a45b8770de0656382be4"
        #expect(hex(try sa.key(peerShare: sb.share, peerAssociated: Self.adb)) == sy)
        #expect(hex(try sb.key(peerShare: sa.share, peerAssociated: Self.ada)) == sy)
    }

    /// B.1.10: shares that are low-order points (or would be, were bit 255 not cleared).
    @Test func lowOrderSharesAbortAndBit255IsIgnored() throws {
        let s = try Curve25519.KeyAgreement.PrivateKey(rawRepresentation: bytes("af46e36bf0527c9d3b16154b82465edd62144c0ac1fc5a18506a2244ba449aff"))
        let aborts = [
            "0000000000000000000000000000000000000000000000000000000000000000",
            "0100000000000000000000000000000000000000000000000000000000000000",
            "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
            "e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800",
            "5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157",
            "edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
            "eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
        ]
        for u in aborts { #expect(throws: CPace.Failure.lowOrderPoint) { try CPace.scalarMult(s, bytes(u)) } }
        let kept = [
            ("daffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff", "d8e2c776bbacd510d09fd9278b7edcd25fc5ae9adfba3b6e040e8d3b71b21806"),
            ("dbffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff", "c85c655ebe8be44ba9c0ffde69f2fe10194458d137f09bbff725ce58803cdb38"),
            ("d9ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff", "db64dafa9b8fdd136914e61461935fe92aa372cb056314e1231bc4ec12417456"),
            ("cdeb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b880", "e062dcd5376d58297be2618c7498f55baa07d7e03184e8aada20bca28888bf7a"),
            ("4c9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f11d7", "993c6ad11c4c29da9a56f7691fd0ff8d732e49de6250b6c2e80003ff4629a175"),
        ]
        for (u, q) in kept { #expect(hex(try CPace.scalarMult(s, bytes(u))) == q) }
        // In a run: a responder handed a low-order share gets no key; a short share is refused.
        let b = try CPace.Party(role: .responder, password: Self.password, channel: Self.channel, session: Self.session, associated: Self.adb)
        #expect(throws: CPace.Failure.lowOrderPoint) { try b.key(peerShare: bytes(aborts[4]), peerAssociated: Self.ada) }
        #expect(throws: CPace.Failure.badLength(31)) { try b.key(peerShare: [UInt8](repeating: 9, count: 31), peerAssociated: Self.ada) }
    }

    /// Another code, or another channel, gives another key; fresh scalars give fresh shares.
    @Test func onlyTheSameCodeAgrees() throws {
        func pair(_ pa: String, _ pb: String, channelB: [UInt8] = CPaceTests.channel) throws -> ([UInt8], [UInt8]) {
            let a = try CPace.Party(role: .initiator, password: Array(pa.utf8), channel: Self.channel, session: Self.session, associated: Self.ada)
            let b = try CPace.Party(role: .responder, password: Array(pb.utf8), channel: channelB, session: Self.session, associated: Self.adb)
            #expect(a.share != b.share)
            return (try a.key(peerShare: b.share, peerAssociated: Self.adb), try b.key(peerShare: a.share, peerAssociated: Self.ada))
        }
        let same = try pair("K7Q2M9", "K7Q2M9")
        #expect(same.0 == same.1)
        let other = try pair("K7Q2M9", "K7Q2M8")
        #expect(other.0 != other.1)
        let channel = try pair("K7Q2M9", "K7Q2M9", channelB: Array("another car".utf8))
        #expect(channel.0 != channel.1)
        let again = try pair("K7Q2M9", "K7Q2M9")
        #expect(again.0 == again.1 && again.0 != same.0)
    }

    /// RFC 9380 J.4.2 (map_to_curve only: Q.x of u[0]); its numbers are big-endian.
    @Test(arguments: [
        ("608d892b641f0328523802a6603427c26e55e6f27e71a91a478148d45b5093cd", "51125222da5e763d97f3c10fcc92ea6860b9ccbbd2eb1285728f566721c1e65b"),
        ("46f5b22494bfeaa7f232cc8d054be68561af50230234d7d1d63d1d9abeca8da5", "7d56d1e08cb0ccb92baf069c18c49bb5a0dcd927eff8dcf75ca921ef7f3e6eeb"),
        ("235fe40c443766ce7e18111c33862d66c3b33267efa50d50f9e8e5d252a40aaa", "3fbe66b9c9883d79e8407150e7c2a1c8680bee496c62fabe4619a72b3cabe90f"),
        ("001e92a544463bda9bd04ddbe3d6eed248f82de32f522669efc5ddce95f46f5b", "227e0bb89de700385d19ec40e857db6e6a3e634b1c32962f370d26f84ff19683"),
        ("1a68a1af9f663592291af987203393f707305c7bac9c8d63d6a729bdc553dc19", "3bcd651ee54d5f7b6013898aab251ee8ecc0688166fce6e9548d38472f6bd196"),
        ("005fe8a7b8fef0a16c105e6cadf5a6740b3365e18692a9c05bfbb4d97f645a6a", "36b4df0c864c64707cbf6cf36e9ee2c09a6cb93b28313c169be29561bb904f98"),
        ("1347edbec6a2b5d8c02e058819819bee177077c9d10a4ce165aab0fd0252261a", "3fa114783a505c0b2b2fbeef0102853c0b494e7757f2a089d0daae7ed9a0db2b"),
    ])
    func elligator2AsInRFC9380(u: String, x: String) {
        let mapped = Field25519.elligator2(Field25519(bytes: bytes(u).reversed()))
        #expect(hex(mapped.bytes.reversed()) == x)
    }

    /// The field's arithmetic against plain identities, values near p included.
    @Test func fieldArithmetic() {
        let p = bytes("edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f")
        #expect(Field25519(bytes: p).bytes == [UInt8](repeating: 0, count: 32))        // p ≡ 0
        var pPlus1 = p; pPlus1[0] += 1
        #expect(Field25519(bytes: pPlus1) == .one)
        var g = SystemRandomNumberGenerator()
        for _ in 0..<200 {
            let a = Field25519(bytes: (0..<32).map { _ in UInt8.random(in: 0...255, using: &g) })
            let b = Field25519(bytes: (0..<32).map { _ in UInt8.random(in: 0...255, using: &g) })
            #expect(a + b - b == a)
            #expect((a - b) + b == a)
            #expect(a * b == b * a)
            #expect(a * (b + .one) == a * b + a)
            if a != .zero { #expect(a * a.inverse == .one) }
            #expect((a * a).isSquare)
            #expect(Field25519.select(a, b, true) == b && Field25519.select(a, b, false) == a)
        }
        #expect(!Field25519(2).isSquare)                  // Z = 2 is not a square mod p
        #expect((-Field25519.one).isSquare)               // −1 is (p ≡ 1 mod 4)
    }
}
