import Foundation
import JamzCore
@testable import JamzNet
import Testing

private func hex(_ b: [UInt8]) -> String { b.map { String(format: "%02x", $0) }.joined() }

private func secret(_ seed: UInt64, _ name: String = "") -> ConvoySecret {
    var rng = SplitMix64(seed: seed)
    return ConvoySecret.random(name: name, using: &rng)
}

/// Drops as `Receiver.admit` reports them, or nil when the datagram was accepted.
private func reason(_ r: inout Receiver, _ d: [UInt8]) -> EnvelopeDrop? {
    do { _ = try r.admit(d); return nil } catch { return error }
}

private func reason(_ d: [UInt8], keys: [GroupID: ConvoyKey]) -> EnvelopeDrop? {
    do { _ = try Envelope.open(d, keys: keys); return nil } catch { return error }
}

@Suite struct EnvelopeTests {
    let a = secret(1, "A").key
    let b = secret(2, "B").key
    let alice = MemberID(0xA11CE)
    let bob = MemberID(0xB0B)

    // MARK: keys and wire format

    /// Pins the derivation and the wire format. The expected bytes were computed independently
    /// from the doc comments (Python: hmac/hashlib HKDF and `cryptography`'s ChaCha20Poly1305).
    @Test func knownAnswer() throws {
        let s = try #require(ConvoySecret(bytes: Array(0..<32), name: "KAT"))
        #expect(s.groupID.description == "62e1dade723c51e6")
        let sealed = Envelope.seal(payload: Array("hello convoy".utf8), sender: MemberID(0x0102_0304_0506_0708),
                                   seq: 7 << 32 | 1, key: s.key)
        #expect(hex(sealed) == "4a0162e1dade723c51e608070605040302010100000007000000"
            + "bec7ff4a393360af8600717423ca8a1e6d304546267e7355ea9d8611")
    }

    @Test func derivation() {
        let s1 = secret(1), s2 = secret(2)
        #expect(s1.groupID == secret(1, "other name").groupID)
        #expect(s1.key == secret(1).key)
        #expect(s1.groupID != s2.groupID)
        #expect(s1.key.envelopeKey != s2.key.envelopeKey)
        #expect(s1.key.senderKey(alice) != s1.key.senderKey(bob))
        #expect(ConvoySecret(bytes: [1, 2, 3]) == nil)
        // Never print the secret.
        let d = String(describing: secret(1, "Road trip"))
        #expect(d.contains("Road trip") && d.contains(s1.groupID.description))
        #expect(!d.contains(hex(s1.bytes)) && !d.contains("\(s1.bytes)"))
        let r1 = ConvoySecret.random(), r2 = ConvoySecret.random()
        #expect(r1.bytes.count == 32 && r1.bytes != r2.bytes)
    }

    @Test func wireLayout() {
        let e = Envelope.seal(payload: [9, 9, 9], sender: MemberID(0x1122_3344_5566_7788), seq: 0x0102, key: a)
        #expect(e.count == 26 + 3 + 16)
        #expect(e[0] == 0x4A && e[1] == 1)
        #expect(Array(e[2..<10]) == a.groupID.wireBytes)
        #expect(Array(e[10..<18]) == [0x88, 0x77, 0x66, 0x55, 0x44, 0x33, 0x22, 0x11])
        #expect(Array(e[18..<26]) == [0x02, 0x01, 0, 0, 0, 0, 0, 0])
        #expect(Array(e[26..<29]) != [9, 9, 9])
        #expect(try! Envelope.header(of: e) == .init(group: a.groupID, sender: MemberID(0x1122_3344_5566_7788), seq: 0x0102))
    }

    @Test(arguments: [0, 1, 15, 16, 17, 64, 1000, 1400])
    func roundTrip(size: Int) throws {
        var rng = SplitMix64(seed: UInt64(size))
        let payload = (0..<size).map { _ in UInt8.random(in: 0...255, using: &rng) }
        let e = Envelope.seal(payload: payload, sender: alice, seq: 42, key: a)
        #expect(e.count == Envelope.minimumCount + size)
        let o = try Envelope.open(e, keys: [a.groupID: a, b.groupID: b])
        #expect(o.sender == alice && o.seq == 42 && o.payload == payload)

        var r = Receiver(me: bob, keys: [b, a])
        let opened = r.open(e)
        let got = try #require(opened)
        #expect(got.sender == alice && got.payload == payload)
        #expect(r.accepted == 1 && r.drops.total == 0)
    }

    @Test func sealerNumbersEnvelopes() throws {
        var s = Sealer(key: a, sender: alice, bootCount: 3)
        var r = Receiver(me: bob, keys: [a])
        for i in 1...5 as ClosedRange<UInt64> {
            let e = s.seal([UInt8(i)])
            let h = try Envelope.header(of: e)
            #expect(h.seq == 3 << 32 | i && h.sender == alice && h.group == a.groupID)
            #expect(r.open(e)?.payload == [UInt8(i)])
        }
    }

    // MARK: every drop reason

    @Test func dropTooShort() {
        var r = Receiver(me: bob, keys: [a])
        let e = Envelope.seal(payload: [], sender: alice, seq: 1, key: a)
        for n in 0..<Envelope.minimumCount {
            #expect(reason(&r, Array(e.prefix(n))) == .tooShort)
            #expect(reason(Array(e.prefix(n)), keys: [a.groupID: a]) == .tooShort)
        }
        #expect(r.drops.tooShort == UInt64(Envelope.minimumCount) && r.drops.total == r.drops.tooShort)
        #expect(r.open(e) != nil)
    }

    @Test func dropBadVersion() {
        var r = Receiver(me: bob, keys: [a])
        var e = Envelope.seal(payload: [1], sender: alice, seq: 1, key: a)
        e[1] = 2
        #expect(reason(&r, e) == .badVersion)
        e[1] = 1; e[0] = 0x4B
        #expect(reason(&r, e) == .badVersion)
        #expect(r.drops.badVersion == 2)
    }

    @Test func dropForeignGroup() {
        var r = Receiver(me: bob, keys: [a])
        let e = Envelope.seal(payload: [1], sender: alice, seq: 1, key: b)
        #expect(reason(&r, e) == .foreignGroup)
        #expect(reason(e, keys: [a.groupID: a]) == .foreignGroup)
        #expect(r.drops.foreignGroup == 1 && r.senderCount == 0)
        r.add(b)
        #expect(r.open(e)?.payload == [1])
        r.remove(group: b.groupID)
        #expect(reason(&r, Envelope.seal(payload: [1], sender: alice, seq: 2, key: b)) == .foreignGroup)
    }

    @Test func dropAuthenticationFailed() {
        var r = Receiver(me: bob, keys: [a])
        var e = Envelope.seal(payload: [1, 2, 3], sender: alice, seq: 1, key: a)
        e[27] ^= 0x10
        #expect(reason(&r, e) == .authenticationFailed)
        #expect(reason(e, keys: [a.groupID: a]) == .authenticationFailed)
        #expect(r.drops.authenticationFailed == 1 && r.accepted == 0 && r.senderCount == 0)
    }

    @Test func dropReplayed() {
        var r = Receiver(me: bob, keys: [a])
        let old = Envelope.seal(payload: [1], sender: alice, seq: 1, key: a)
        #expect(r.open(old) != nil)
        #expect(r.open(Envelope.seal(payload: [2], sender: alice, seq: 1 + ReplayWindow.size, key: a)) != nil)
        #expect(reason(&r, old) == .replayed)
        // Number 0 is never sent (`seal` refuses it); a forged one is refused before any crypto.
        let zero = Envelope.Header(group: a.groupID, sender: MemberID(77), seq: 0).wireBytes + [UInt8](repeating: 0, count: 16)
        #expect(reason(&r, zero) == .replayed)
        #expect(r.drops.replayed == 2)
    }

    @Test func dropDuplicate() {
        var r = Receiver(me: bob, keys: [a])
        let e = Envelope.seal(payload: [1], sender: alice, seq: 5, key: a)
        #expect(r.open(e) != nil)
        #expect(reason(&r, e) == .duplicate)  // the same datagram over a second link
        #expect(r.drops.duplicate == 1 && r.accepted == 1)
    }

    @Test func dropOwnEcho() {
        var r = Receiver(me: alice, keys: [a])
        #expect(reason(&r, Envelope.seal(payload: [1], sender: alice, seq: 1, key: a)) == .ownEcho)
        #expect(r.drops.ownEcho == 1 && r.senderCount == 0)
    }

    /// Two secrets forced onto one group id: the receiver picks the wrong key, the tag fails.
    @Test func wrongKeySameGroup() {
        let forced = ConvoyKey(groupID: a.groupID, key: b.envelopeKey.key)
        let e = Envelope.seal(payload: [1, 2], sender: alice, seq: 1, key: forced)
        #expect(Array(e[2..<10]) == a.groupID.wireBytes)
        var r = Receiver(me: bob, keys: [a])
        #expect(reason(&r, e) == .authenticationFailed)
        #expect(r.window(group: a.groupID, sender: alice) == nil)
        #expect(reason(Envelope.seal(payload: [1, 2], sender: alice, seq: 1, key: a), keys: [a.groupID: forced])
            == .authenticationFailed)
    }

    /// Every byte, several ways: never accepted, and the reason is the one of the field hit.
    /// Truncated at every length: never accepted either. Nothing moves the window.
    @Test func tamperEveryByte() throws {
        var r = Receiver(me: bob, keys: [a, b])
        #expect(r.open(Envelope.seal(payload: [0], sender: alice, seq: 1, key: a)) != nil)
        let before = r.window(group: a.groupID, sender: alice)
        let e = Envelope.seal(payload: Array(0..<20), sender: alice, seq: 2, key: a)
        for p in e.indices {
            for mask: UInt8 in [0x01, 0x02, 0x10, 0x80, 0xFF] {
                var t = e
                t[p] ^= mask
                let expected: EnvelopeDrop = switch p {
                case 0..<2: .badVersion
                case 2..<10: .foreignGroup
                default: .authenticationFailed
                }
                // The receiver refuses a number its window already refuses before any crypto.
                var atReceiver = expected
                if (18..<26).contains(p), let h = try? Envelope.header(of: t) {
                    switch before?.check(h.seq) {
                    case .replayed: atReceiver = .replayed
                    case .duplicate: atReceiver = .duplicate
                    default: break
                    }
                }
                #expect(reason(&r, t) == atReceiver, "byte \(p) ^ \(mask)")
                #expect(reason(t, keys: r.keys) == expected, "byte \(p) ^ \(mask)")
            }
        }
        for n in 0..<e.count {
            let got = reason(&r, Array(e.prefix(n)))
            #expect(got == (n < Envelope.minimumCount ? .tooShort : .authenticationFailed), "length \(n)")
        }
        var longer = e; longer.append(0)
        #expect(reason(&r, longer) == .authenticationFailed)
        #expect(r.accepted == 1)
        #expect(r.window(group: a.groupID, sender: alice) == before)
        #expect(r.open(e)?.payload == Array(0..<20))
    }

    /// Forgeries carrying a far-ahead number, or an unseen number inside the window, fail the
    /// tag and leave the window exactly where it was; the genuine envelopes still open after.
    @Test func windowNotMovedByForgeries() throws {
        var r = Receiver(me: bob, keys: [a])
        for seq in [1, 2, 4, 5] as [UInt64] {
            #expect(r.open(Envelope.seal(payload: [UInt8(seq)], sender: alice, seq: seq, key: a)) != nil)
        }
        let w = try #require(r.window(group: a.groupID, sender: alice))
        let ahead = Envelope.seal(payload: [9], sender: alice, seq: 5000, key: a)
        let gap = Envelope.seal(payload: [3], sender: alice, seq: 3, key: a)
        for var forged in [ahead, gap] {
            forged[forged.count - 1] ^= 1
            #expect(reason(&r, forged) == .authenticationFailed)
            // Same header, another key's ciphertext.
            let alien = Envelope.seal(payload: [3], sender: alice, seq: try Envelope.header(of: forged).seq,
                                      key: ConvoyKey(groupID: a.groupID, key: b.envelopeKey.key))
            #expect(reason(&r, alien) == .authenticationFailed)
        }
        // New senders: no window made either.
        var fake = Envelope.seal(payload: [1], sender: MemberID(99), seq: 1, key: a)
        fake[30] ^= 4
        #expect(reason(&r, fake) == .authenticationFailed)
        #expect(r.window(group: a.groupID, sender: MemberID(99)) == nil)

        #expect(r.window(group: a.groupID, sender: alice) == w)
        #expect(r.open(gap)?.payload == [3])
        #expect(r.open(ahead)?.payload == [9])
        #expect(r.window(group: a.groupID, sender: alice)?.highest == 5000)
    }

    // MARK: replay window and sequence numbers

    @Test func replayWindowSemantics() {
        var w = ReplayWindow()
        #expect(w.check(0) == .replayed)
        #expect(w.admit(1) == .fresh)
        #expect(w.admit(1) == .duplicate)
        #expect(w.admit(3) == .fresh)
        #expect(w.admit(2) == .fresh)  // out of order, inside the window
        #expect(w.admit(2) == .duplicate)
        #expect(w.admit(0) == .replayed)
        #expect(w.highest == 3)

        #expect(w.admit(2000) == .fresh)
        #expect(w.check(2000 - 1023) == .fresh)  // bottom edge of the window
        #expect(w.check(2000 - 1024) == .replayed)
        #expect(w.admit(977) == .fresh)
        #expect(w.admit(977) == .duplicate)
        #expect(w.admit(3) == .replayed)

        // Far jump ahead (a reboot: next boot count): everything behind is forgotten.
        let next: UInt64 = 1 << 32 | 1
        #expect(w.admit(next) == .fresh)
        #expect(w.admit(2000) == .replayed)
        #expect(w.highest == next)
        #expect(w.admit(next + 5) == .fresh)
        #expect(w.admit(next + 2) == .fresh)
        #expect(w.admit(next + 5) == .duplicate)

        // `accept` is `admit` as a yes/no.
        var u = ReplayWindow()
        let first = u.accept(10), again = u.accept(10), older = u.accept(9)
        #expect(first && !again && older && u.highest == 10)

        // Sliding reuses bit positions: they must be cleared.
        var v = ReplayWindow()
        for s in 1...1024 as ClosedRange<UInt64> { #expect(v.admit(s) == .fresh) }
        #expect(v.admit(2047) == .fresh)            // slide by 1023
        #expect(v.check(1025) == .fresh)   // same bit as 1, which was set
        #expect(v.check(2046) == .fresh)
        #expect(v.check(1024) == .duplicate)
        #expect(v.check(1023) == .replayed)
        #expect(v.admit(2047 + 1024) == .fresh)     // slide by exactly the window size
        #expect(v.check(2047 + 1) == .fresh && v.check(2047) == .replayed)
    }

    /// The window against a plain model (a set of everything seen) on random traffic.
    @Test func replayWindowMatchesModel() {
        var rng = SplitMix64(seed: 0x1234)
        var w = ReplayWindow()
        var seen = Set<UInt64>()
        var highest: UInt64 = 0
        func below(_ x: UInt64) -> UInt64 { highest > x ? highest - x : 0 }
        for _ in 0..<30_000 {
            let seq: UInt64 = switch rng.next() % 10 {
            case 0..<4: highest + 1 + rng.next() % 8
            case 4: highest + rng.next() % 3000
            case 5: rng.next() % 50 == 0 ? highest + (1 << 32) : below(rng.next() % 4)
            case 6..<9: below(rng.next() % 1100)
            default: seen.randomElement(using: &rng) ?? 1
            }
            let model: ReplayWindow.Verdict =
                seq == 0 || (seq <= highest && highest - seq >= ReplayWindow.size) ? .replayed
                : seen.contains(seq) ? .duplicate : .fresh
            #expect(w.admit(seq) == model, "seq \(seq) highest \(highest)")
            if model == .fresh { seen.insert(seq); highest = max(highest, seq) }
            if seen.count > 4000 { seen = seen.filter { highest - $0 < ReplayWindow.size } }
        }
    }

    @Test func sequenceCounterAcrossBoots() {
        var last: UInt64 = 0
        for boot in [0, 1, 2, 7, UInt32.max - 1] as [UInt32] {
            var c = SequenceCounter(bootCount: boot)
            #expect(c.last == UInt64(boot) << 32)
            for n in 1...100 as ClosedRange<UInt64> {
                let s = c.next()
                #expect(s > last && s == UInt64(boot) << 32 + n)
                last = s
            }
        }
        #expect(SequenceCounter(bootCount: 0).last == 0)
        var first = SequenceCounter(bootCount: 0)
        #expect(first.next() == 1)
        // A whole boot's numbers stay below the next boot's first.
        var b1 = SequenceCounter(bootCount: 1)
        #expect(b1.next() > UInt64(UInt32.max))
    }

    // MARK: the receiver

    @Test func receiverEvictsLeastRecentlyHeard() throws {
        var r = Receiver(me: MemberID(0), keys: [a])
        var firsts: [UInt64: [UInt8]] = [:]
        for s in 1...256 as ClosedRange<UInt64> {
            let e = Envelope.seal(payload: [1], sender: MemberID(s), seq: 1, key: a)
            firsts[s] = e
            #expect(r.open(e) != nil)
        }
        #expect(r.senderCount == 256)
        #expect(r.open(Envelope.seal(payload: [2], sender: MemberID(1), seq: 2, key: a)) != nil)
        // Forgeries from 300 new senders make no windows and evict nobody.
        for s in 1000..<1300 as Range<UInt64> {
            var f = Envelope.seal(payload: [1], sender: MemberID(s), seq: 1, key: a)
            f[f.count - 1] ^= 0x40
            #expect(r.open(f) == nil)
        }
        #expect(r.senderCount == 256 && r.window(group: a.groupID, sender: MemberID(2)) != nil)
        // A 257th real sender evicts the least recently heard: 2 (1 was heard again).
        #expect(r.open(Envelope.seal(payload: [1], sender: MemberID(257), seq: 1, key: a)) != nil)
        #expect(r.senderCount == 256)
        #expect(r.window(group: a.groupID, sender: MemberID(2)) == nil)
        #expect(r.window(group: a.groupID, sender: MemberID(1))?.highest == 2)
        #expect(r.open(try #require(firsts[1])) == nil)
        // The documented limit: a forgotten sender starts over, so its old envelope opens again.
        #expect(r.open(try #require(firsts[2])) != nil)
    }

    @Test func dropCountersJSON() throws {
        var c = DropCounters()
        for (i, reason) in EnvelopeDrop.allCases.enumerated() {
            for _ in 0..<i { c.count(reason) }
        }
        #expect(c.total == 21 && c[.ownEcho] == 6)
        let data = try JSONEncoder().encode(c)
        let object = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Int])
        #expect(Set(object.keys) == Set(EnvelopeDrop.allCases.map(\.rawValue)))
        #expect(object["authenticationFailed"] == 3)
        #expect(try JSONDecoder().decode(DropCounters.self, from: data) == c)
    }

    /// 10⁵ datagrams: valid envelopes from five members (delivered out of order, members
    /// rebooting now and then) mixed with duplicates and replays of delivered ones, tampered
    /// copies of delivered and not-yet-delivered ones, forgeries, another convoy's traffic,
    /// our own echo and garbage. Every valid envelope is accepted exactly once with its
    /// payload, nothing else ever is, and the counters add up.
    @Test func mixedTraffic() throws {
        var rng = SplitMix64(seed: 0x7A11_C0DE)
        let me = MemberID(0x3E)
        var r = Receiver(me: me, keys: [a])
        let members = (1...5).map { MemberID(0x1000 + $0) }
        var sealers = members.map { Sealer(key: a, sender: $0, bootCount: UInt32($0.raw % 3)) }
        var foreign = Sealer(key: b, sender: members[0], bootCount: 0)
        var mine = Sealer(key: a, sender: me, bootCount: 9)

        struct Valid { var bytes: [UInt8]; var sender: MemberID; var seq: UInt64; var payload: [UInt8] }
        var pending: [Valid] = []
        var delivered: [[UInt8]] = []
        var acceptedIDs = Set<[UInt64]>()
        var sealed = 0
        var tally = DropCounters()
        var sent = 0
        var reboots = 0

        func payload() -> [UInt8] { (0..<Int(rng.next() % 40)).map { _ in UInt8(truncatingIfNeeded: rng.next()) } }
        func mustDrop(_ d: [UInt8], _ allowed: Set<EnvelopeDrop>?) {
            sent += 1
            let got = reason(&r, d)
            #expect(got != nil)
            if let got {
                tally.count(got)
                if let allowed { #expect(allowed.contains(got), "\(got)") }
            }
        }
        func deliver(_ i: Int) {
            let v = pending.remove(at: i)
            sent += 1
            do {
                let o = try r.admit(v.bytes)
                #expect(o.sender == v.sender && o.seq == v.seq && o.payload == v.payload)
                #expect(acceptedIDs.insert([v.sender.raw, v.seq]).inserted)
            } catch {
                Issue.record("valid envelope dropped: \(error)")
            }
            delivered.append(v.bytes)
            if delivered.count > 3000 { delivered.removeFirst(1000) }
        }

        while sent < 100_000 {
            switch rng.next() % 100 {
            case 0..<40:  // valid: seal one more now and then, deliver a random pending one
                if pending.count < 4 || rng.next() % 2 == 0 {
                    let m = Int(rng.next() % 5)
                    if rng.next() % 500 == 0, !pending.contains(where: { $0.sender == members[m] }) {
                        reboots += 1
                        sealers[m] = Sealer(key: a, sender: members[m], bootCount: sealers[m].counter.bootCount + 1)
                    }
                    let p = payload()
                    let e = sealers[m].seal(p)
                    pending.append(Valid(bytes: e, sender: members[m], seq: sealers[m].counter.last, payload: p))
                    sealed += 1
                }
                deliver(Int(rng.next() % UInt64(pending.count)))
            case 40..<55:  // the same datagram again: another link, or an attacker's replay
                guard let d = delivered.randomElement(using: &rng) else { continue }
                mustDrop(d, [.duplicate, .replayed])
            case 55..<70:  // tampered copy of a delivered or a still pending envelope
                let fromPending = rng.next() % 2 == 0 && !pending.isEmpty
                var t = (fromPending ? pending.randomElement(using: &rng)?.bytes : delivered.randomElement(using: &rng)) ?? []
                guard !t.isEmpty else { continue }
                t[Int(rng.next() % UInt64(t.count))] ^= UInt8(truncatingIfNeeded: rng.next() % 255 + 1)
                mustDrop(t, nil)
            case 70..<80:  // forged: right group, random sender (known or not), random number and body
                let sender = rng.next() % 2 == 0 ? members[Int(rng.next() % 5)] : MemberID(rng.next())
                let seq = rng.next() % 2 == 0 ? rng.next() : sealers[0].counter.last &+ rng.next() % 2048 &- 1024
                var f = Envelope.Header(group: a.groupID, sender: sender, seq: seq).wireBytes
                f += (0..<(16 + Int(rng.next() % 40))).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
                mustDrop(f, sender == me ? [.ownEcho] : [.authenticationFailed, .replayed, .duplicate])
            case 80..<88:
                mustDrop(foreign.seal(payload()), [.foreignGroup])
            case 88..<93:
                mustDrop(mine.seal(payload()), [.ownEcho])
            default:  // garbage
                var g = (0..<Int(rng.next() % 64)).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
                if g.count > 1, rng.next() % 2 == 0 { g[0] = 0x4A; g[1] = 1 }
                mustDrop(g, nil)
            }
        }
        while !pending.isEmpty { deliver(Int(rng.next() % UInt64(pending.count))) }

        #expect(acceptedIDs.count == sealed)
        #expect(r.accepted == UInt64(sealed))
        #expect(r.drops == tally)
        #expect(r.drops.total + r.accepted == UInt64(sent))
        #expect(sent >= 100_000)
        #expect(reboots > 0)
        for reason in EnvelopeDrop.allCases {
            #expect(r.drops[reason] > 0, "\(reason)")
        }
        #expect(r.senderCount == 5)
    }
}
