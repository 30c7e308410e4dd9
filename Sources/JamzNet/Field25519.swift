/// Arithmetic in GF(2^255 − 19), the field of Curve25519, and the Elligator2 map to the curve
/// (RFC 9380 §6.7.1, curve25519: J = 486662, K = 1, Z = 2), for CPace's generator (`CPace`).
///
/// swift-crypto does X25519 itself but exposes no field arithmetic or hash-to-curve, and draft-
/// irtf-cfrg-cpace §10.10 says the map from the password to the point SHALL run in constant
/// time, which a big-integer library does not. So this is the usual radix-2^51 representation
/// (five 64-bit limbs, products in UInt128): no branch and no memory access depends on a value,
/// only on the public exponents. Checked against RFC 9380's and the CPace draft's vectors
/// (`CPaceTests`).
struct Field25519: Equatable {
    /// Limbs of 51 bits (a little more between reductions), least significant first.
    var l: (UInt64, UInt64, UInt64, UInt64, UInt64)

    static let mask: UInt64 = (1 << 51) - 1
    static let zero = Field25519(l: (0, 0, 0, 0, 0))
    static let one = Field25519(l: (1, 0, 0, 0, 0))

    init(l: (UInt64, UInt64, UInt64, UInt64, UInt64)) { self.l = l }

    init(_ small: UInt64) { l = (small & Self.mask, small >> 51, 0, 0, 0) }

    /// 32 bytes little-endian, bit 255 ignored (RFC 7748's decodeUCoordinate); a value ≥ p is
    /// taken mod p by the arithmetic.
    init(bytes b: [UInt8]) {
        precondition(b.count == 32)
        func load(_ at: Int) -> UInt64 {
            var v: UInt64 = 0
            for i in 0..<8 where at + i < 32 { v |= UInt64(b[at + i]) << (8 * UInt64(i)) }
            return v
        }
        l = (load(0) & Self.mask, (load(6) >> 3) & Self.mask, (load(12) >> 6) & Self.mask,
             (load(19) >> 1) & Self.mask, (load(24) >> 12) & Self.mask)
    }

    static func == (a: Field25519, b: Field25519) -> Bool {
        var d: UInt8 = 0
        for (x, y) in zip(a.bytes, b.bytes) { d |= x ^ y }
        return d == 0
    }

    /// Propagates carries so each limb is below 2^51 (plus at most 19·2^13 in limb 0).
    private static func carried(_ t: (UInt64, UInt64, UInt64, UInt64, UInt64)) -> Field25519 {
        var (a, b, c, d, e) = t
        b += a >> 51; a &= mask
        c += b >> 51; b &= mask
        d += c >> 51; c &= mask
        e += d >> 51; d &= mask
        a += 19 * (e >> 51); e &= mask
        b += a >> 51; a &= mask
        return Field25519(l: (a, b, c, d, e))
    }

    static func + (x: Field25519, y: Field25519) -> Field25519 {
        carried((x.l.0 + y.l.0, x.l.1 + y.l.1, x.l.2 + y.l.2, x.l.3 + y.l.3, x.l.4 + y.l.4))
    }

    /// x − y, computed as x + 4p − y so no limb goes negative.
    static func - (x: Field25519, y: Field25519) -> Field25519 {
        let p0: UInt64 = 0x7_FFFF_FFFF_FFED * 4, p: UInt64 = 0x7_FFFF_FFFF_FFFF * 4
        return carried((x.l.0 + p0 - y.l.0, x.l.1 + p - y.l.1, x.l.2 + p - y.l.2, x.l.3 + p - y.l.3, x.l.4 + p - y.l.4))
    }

    static prefix func - (x: Field25519) -> Field25519 { zero - x }

    static func * (x: Field25519, y: Field25519) -> Field25519 {
        let (a0, a1, a2, a3, a4) = (UInt128(x.l.0), UInt128(x.l.1), UInt128(x.l.2), UInt128(x.l.3), UInt128(x.l.4))
        let (b0, b1, b2, b3, b4) = (UInt128(y.l.0), UInt128(y.l.1), UInt128(y.l.2), UInt128(y.l.3), UInt128(y.l.4))
        // 2^255 ≡ 19: the parts above limb 4 come back times 19.
        let (b1_19, b2_19, b3_19, b4_19) = (b1 * 19, b2 * 19, b3 * 19, b4 * 19)
        var r0 = a0 * b0 + a1 * b4_19 + a2 * b3_19 + a3 * b2_19 + a4 * b1_19
        var r1 = a0 * b1 + a1 * b0 + a2 * b4_19 + a3 * b3_19 + a4 * b2_19
        var r2 = a0 * b2 + a1 * b1 + a2 * b0 + a3 * b4_19 + a4 * b3_19
        var r3 = a0 * b3 + a1 * b2 + a2 * b1 + a3 * b0 + a4 * b4_19
        var r4 = a0 * b4 + a1 * b3 + a2 * b2 + a3 * b1 + a4 * b0
        let m = UInt128(mask)
        r1 += r0 >> 51; r0 &= m
        r2 += r1 >> 51; r1 &= m
        r3 += r2 >> 51; r2 &= m
        r4 += r3 >> 51; r3 &= m
        r0 += (r4 >> 51) * 19; r4 &= m
        return carried((UInt64(r0 & m), UInt64(r1) + UInt64(r0 >> 51), UInt64(r2), UInt64(r3), UInt64(r4)))
    }

    /// x^e for a public exponent given as 32 little-endian bytes (square and multiply: the
    /// sequence of operations depends on `e` only).
    func power(_ e: [UInt8]) -> Field25519 {
        var r = Field25519.one
        for i in stride(from: 255, through: 0, by: -1) {
            r = r * r
            if (e[i / 8] >> UInt8(i % 8)) & 1 == 1 { r = r * self }
        }
        return r
    }

    /// 1/x (0 for 0): x^(p−2).
    var inverse: Field25519 { power(Self.pMinus2) }

    /// 1 if x is a square (0 included), else 0: Euler's criterion, x^((p−1)/2) ∈ {0, 1},
    /// found by OR-ing bytes, not by a comparison that could branch.
    var squareBit: UInt64 {
        let e = power(Self.pMinus1Over2).bytes
        var zero: UInt64 = 0, one = UInt64(e[0] ^ 1)
        for i in 0..<32 { zero |= UInt64(e[i]) }
        for i in 1..<32 { one |= UInt64(e[i]) }
        // (v + 255) >> 8 is 1 for a byte-sized v ≠ 0, 0 for v = 0.
        return 1 ^ (((zero + 255) >> 8) & ((one + 255) >> 8))
    }

    var isSquare: Bool { squareBit == 1 }

    /// `b` if `c`, else `a`, without a branch on `c`.
    static func select(_ a: Field25519, _ b: Field25519, _ c: Bool) -> Field25519 {
        select(a, b, bit: c ? 1 : 0)
    }

    /// `b` if `bit` is 1, else `a` (`bit` is 0 or 1), by mask.
    static func select(_ a: Field25519, _ b: Field25519, bit: UInt64) -> Field25519 {
        let m = UInt64(0) &- bit
        return Field25519(l: (a.l.0 ^ (m & (a.l.0 ^ b.l.0)), a.l.1 ^ (m & (a.l.1 ^ b.l.1)), a.l.2 ^ (m & (a.l.2 ^ b.l.2)),
                              a.l.3 ^ (m & (a.l.3 ^ b.l.3)), a.l.4 ^ (m & (a.l.4 ^ b.l.4))))
    }

    /// The canonical value (< p) as 32 bytes little-endian (RFC 7748's encodeUCoordinate).
    var bytes: [UInt8] {
        // The limbs' sum as a 320-bit number, then folded below 2^255 (2^255 ≡ 19) and p
        // subtracted once if it is still ≥ p. Fixed loops only.
        var w: [UInt64] = [0, 0, 0, 0, 0]
        func add(_ v: UInt128, at word: Int) {
            var carry = v
            for k in word..<5 {
                let s = UInt128(w[k]) + (carry & UInt128(UInt64.max))
                w[k] = UInt64(truncatingIfNeeded: s)
                carry = (carry >> 64) + (s >> 64)
            }
        }
        for (i, limb) in [l.0, l.1, l.2, l.3, l.4].enumerated() {
            add(UInt128(limb) << UInt128((51 * i) % 64), at: 51 * i / 64)
        }
        for _ in 0..<3 {
            let top = UInt128(w[3] >> 63) | UInt128(w[4]) << 1
            w[3] &= UInt64.max >> 1
            w[4] = 0
            add(top * 19, at: 0)
        }
        // Now below 2^255. If value + 19 reaches 2^255, the value is ≥ p: take value + 19 − 2^255.
        var t = w
        var carry: UInt128 = 19
        for k in 0..<4 {
            let s = UInt128(t[k]) + carry
            t[k] = UInt64(truncatingIfNeeded: s)
            carry = s >> 64
        }
        let ge = t[3] >> 63
        t[3] &= UInt64.max >> 1
        let m = UInt64(0) &- ge
        var out: [UInt8] = []
        out.reserveCapacity(32)
        for k in 0..<4 {
            let v = w[k] ^ (m & (w[k] ^ t[k]))
            for i in 0..<8 { out.append(UInt8(truncatingIfNeeded: v >> (8 * UInt64(i)))) }
        }
        return out
    }

    /// p − 2 and (p − 1)/2, little-endian.
    static let pMinus2: [UInt8] = [0xEB] + [UInt8](repeating: 0xFF, count: 30) + [0x7F]
    static let pMinus1Over2: [UInt8] = [0xF6] + [UInt8](repeating: 0xFF, count: 30) + [0x3F]

    /// Curve25519's A.
    static let j = Field25519(486_662)

    /// The u-coordinate of Elligator2's point for field element `u` (RFC 9380 §6.7.1 with
    /// Z = 2; CPace discards v): x1 = −J / (1 + 2u²); x = x1 if x1³ + J·x1² + x1 is a square,
    /// else −x1 − J. (1 + 2u² is never 0: −1 is a square mod p and 2 is not.)
    static func elligator2(_ u: Field25519) -> Field25519 {
        let d = .one + Field25519(2) * u * u
        let x1 = -j * d.inverse
        let gx1 = (x1 * (x1 + j) + .one) * x1
        let x2 = -x1 - j
        return select(x2, x1, bit: gx1.squareBit)
    }
}
