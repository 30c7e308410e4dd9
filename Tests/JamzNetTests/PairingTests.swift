import Crypto
import Foundation
import JamzCore
@testable import JamzNet
import Testing

/// The join exchange (`Pairing`) between cars on a simulated segment: every datagram goes
/// through `PairingWire`'s bytes, multicast reaches every other car, the time is stepped to
/// the next deadline. Real CPace, HMAC and ChaCha20-Poly1305 throughout.
@Suite struct PairingTests {
    final class Net {
        struct Car {
            var pairing: Pairing<Int>
            var secret: ConvoySecret?
            var outcomes: [Pairing<Int>.Outcome] = []
            var counts: [String: Int] = [:]
        }
        var cars: [Car] = []
        var now: Nanos = 1_000 * nanosPerSecond
        /// Datagrams to drop: (from, to, kind byte) → how many more.
        var drop: [String: Int] = [:]
        var delivered = 0

        func add(_ name: String, secret: ConvoySecret? = nil, settings: Pairing<Int>.Settings = .init(), seed: UInt64) {
            let rng = Locked(SplitMix64(seed: seed))
            var p = Pairing<Int>(me: MemberID(seed * 1000 + 7), name: name, settings: settings) { n in rng.bytes(n) }
            p.hosting = secret != nil
            cars.append(Car(pairing: p, secret: secret))
        }

        func apply(_ i: Int, _ out: [Pairing<Int>.Output]) {
            var queue: [(from: Int, to: Int, bytes: [UInt8])] = []
            func take(_ i: Int, _ out: [Pairing<Int>.Output]) {
                for o in out {
                    switch o {
                    case .multicast(let b): for j in cars.indices where j != i { queue.append((i, j, b)) }
                    case .send(let b, let to): queue.append((i, to, b))
                    case .outcome(let oc):
                        cars[i].outcomes.append(oc)
                        if case .needConvoy = oc { cars[i].secret = .random(name: "made"); cars[i].pairing.hosting = true }
                        if case .joined(let s, _, _) = oc { cars[i].secret = s }
                    case .count(let c): cars[i].counts[c, default: 0] += 1
                    case .note: break
                    }
                }
            }
            take(i, out)
            while !queue.isEmpty {
                let d = queue.removeFirst()
                let key = "\(d.from)>\(d.to):\(d.bytes[2])"
                if let n = drop[key], n > 0 { drop[key] = n - 1; continue }
                delivered += 1
                take(d.to, cars[d.to].pairing.received(d.bytes, from: d.from, secret: cars[d.to].secret, now: now))
            }
        }

        /// Steps the time deadline by deadline until `until`.
        func run(until end: Nanos) {
            while let next = cars.compactMap({ $0.pairing.deadline() }).min(), next <= end {
                now = max(now, next)
                for i in cars.indices { apply(i, cars[i].pairing.due(now: now)) }
            }
            now = max(now, end)
        }
    }

    final class Locked: @unchecked Sendable {
        var rng: SplitMix64
        let lock = NSLock()
        init(_ r: SplitMix64) { rng = r }
        func bytes(_ n: Int) -> [UInt8] { lock.withLock { (0..<n).map { _ in UInt8(truncatingIfNeeded: rng.next()) } } }
    }

    static let second = nanosPerSecond

    @Test func aShortCodeJoinsAndBothEndsAgreeOnTheWord() throws {
        let net = Net()
        let convoy = ConvoySecret.random(name: "Road trip")
        net.add("host", secret: convoy, seed: 1)
        net.add("joiner", seed: 2)
        let code = net.cars[0].pairing.invite(now: net.now)
        #expect(code.count == 7 && code.filter(\.isNumber).count == 6)
        net.apply(1, try net.cars[1].pairing.join(code: code, now: net.now))
        guard case .joined(let s, let host, let word)? = net.cars[1].outcomes.last else { Issue.record("not joined: \(net.cars[1].outcomes)"); return }
        #expect(s == convoy && s.name == "Road trip" && host == "host")
        guard case .welcomed(_, let name, let word2)? = net.cars[0].outcomes.last else { Issue.record("no welcome"); return }
        #expect(name == "joiner" && word == word2 && CheckWords.all.contains(word))
        // Four datagrams: hello, reply, confirm, welcome; the code keeps its tries.
        #expect(net.delivered == 4)
        #expect(net.cars[0].pairing.openInvite(now: net.now)?.attempts == 5)
    }

    @Test func aWrongCodeIsRefusedCountedOnBothSidesAndCostsATry() throws {
        let net = Net()
        net.add("host", secret: .random(), seed: 3)
        net.add("guesser", seed: 4)
        let code = net.cars[0].pairing.invite(now: net.now).filter(\.isNumber)
        let wrong = String(code.map { $0 == "9" ? "0" : Character(String(($0.wholeNumberValue! + 1) % 10)) })
        net.apply(1, try net.cars[1].pairing.join(code: wrong, now: net.now))
        net.run(until: net.now + 20 * Self.second)
        #expect(net.cars[1].outcomes == [.failed(.wrongCode)])
        #expect(net.cars[1].counts["join.wrong_code"] == 1 && net.cars[1].counts["join.refused"] == 1)
        #expect(net.cars[0].counts["join.unconfirmed"] == 1)
        #expect(net.cars[0].outcomes.isEmpty && net.cars[1].secret == nil)
        #expect(net.cars[0].pairing.openInvite(now: net.now)?.attempts == 4)
        // Malformed codes are refused before anything is sent.
        #expect(throws: Pairing<Int>.Failure.self) { try net.cars[1].pairing.join(code: "12a456", now: net.now) }
        #expect(throws: Pairing<Int>.Failure.self) { try net.cars[1].pairing.join(code: "1234567", now: net.now) }
    }

    @Test func bruteForceIsRateLimitedAndUsesTheCodeUp() throws {
        var settings = Pairing<Int>.Settings()
        settings.tries = 1
        let net = Net()
        net.add("host", secret: .random(), settings: settings, seed: 5)
        net.add("attacker", settings: settings, seed: 6)
        net.add("friend", settings: settings, seed: 7)
        let code = net.cars[0].pairing.invite(now: net.now)
        // 40 guesses as fast as the attacker can send: one new exchange per second is answered.
        for g in 0..<40 {
            net.apply(1, try net.cars[1].pairing.join(code: String(format: "%06d", g), now: net.now))
            net.now += 100_000_000
        }
        let answered = net.cars[0].counts["join.exchanges", default: 0]
        #expect(answered == 4)   // 4 s of guessing at 10 a second
        #expect(net.cars[0].counts["join.rate_limited", default: 0] == 36)
        // One more second: the fifth exchange; then the code is used up even for the right code.
        net.now += Self.second
        net.apply(1, try net.cars[1].pairing.join(code: "999999", now: net.now))
        net.run(until: net.now + 20 * Self.second)
        net.apply(2, try net.cars[2].pairing.join(code: code, now: net.now))
        net.run(until: net.now + 5 * Self.second)
        #expect(net.cars[0].counts["join.code_used_up"] == 1)
        #expect(net.cars[2].secret == nil && net.cars[2].outcomes == [.failed(.noAnswer)])
        #expect(net.cars[0].counts["join.unconfirmed"] == 5)
    }

    @Test func lostDatagramsAreSentAgainAndCostNoTry() throws {
        let net = Net()
        net.add("host", secret: .random(), seed: 8)
        net.add("joiner", seed: 9)
        let code = net.cars[0].pairing.invite(now: net.now)
        net.drop = ["0>1:3": 2, "0>1:5": 1]   // two replies and a welcome lost
        net.apply(1, try net.cars[1].pairing.join(code: code, now: net.now))
        net.run(until: net.now + 10 * Self.second)
        guard case .joined? = net.cars[1].outcomes.last else { Issue.record("not joined: \(net.cars[1].outcomes)"); return }
        #expect(net.cars[0].counts["join.exchanges"] == 1 && net.cars[0].counts["join.welcomed"] == 1)
        #expect(net.cars[0].pairing.openInvite(now: net.now)?.attempts == 5)
    }

    @Test func twoButtonsPairTheCarInAConvoyHostsAndBothHearTheSameWord() throws {
        let net = Net()
        let convoy = ConvoySecret.random(name: "Convoy")
        net.add("alone", seed: 10)
        net.add("member", secret: convoy, seed: 11)
        net.apply(0, net.cars[0].pairing.press(now: net.now))
        net.now += 12 * Self.second
        net.apply(1, net.cars[1].pairing.press(now: net.now))
        net.run(until: net.now + 5 * Self.second)
        guard case .joined(let s, _, let w1)? = net.cars[0].outcomes.last,
              case .welcomed(_, _, let w2)? = net.cars[1].outcomes.last else { Issue.record("\(net.cars.map(\.outcomes))"); return }
        #expect(s == convoy && w1 == w2)
        // Neither in a convoy: the lower member id makes one and hosts.
        let fresh = Net()
        fresh.add("a", seed: 12)
        fresh.add("b", seed: 13)
        fresh.apply(1, fresh.cars[1].pairing.press(now: fresh.now))
        fresh.apply(0, fresh.cars[0].pairing.press(now: fresh.now))
        fresh.run(until: fresh.now + 5 * Self.second)
        #expect(fresh.cars[0].outcomes.first == .needConvoy)
        #expect(fresh.cars[1].secret != nil && fresh.cars[1].secret == fresh.cars[0].secret)
    }

    @Test func aThirdCarPressingMakesThePairingGiveUpAndALonePressTimesOut() throws {
        let net = Net()
        net.add("a", secret: .random(), seed: 14)
        net.add("b", seed: 15)
        net.add("c", seed: 16)
        for i in 0..<3 { net.apply(i, net.cars[i].pairing.press(now: net.now)) }
        net.run(until: net.now + 40 * Self.second)
        #expect(net.cars.allSatisfy { $0.outcomes.contains(.failed(.overlap)) })
        #expect(net.cars[1].secret == nil && net.cars[2].secret == nil)
        let alone = Net()
        alone.add("a", seed: 17)
        alone.apply(0, alone.cars[0].pairing.press(now: alone.now))
        alone.run(until: alone.now + 40 * Self.second)
        #expect(alone.cars[0].outcomes == [.failed(.buttonTimeout)])
        #expect(alone.cars[0].pairing.deadline() == nil)
    }

    @Test func garbageIsCountedAndEveryMessageRoundTrips() throws {
        var p = Pairing<Int>(me: MemberID(1), name: "x") { n in [UInt8](repeating: 7, count: n) }
        for bad: [UInt8] in [[0x4A, 0x70], [0x4A, 0x70, 9] + [UInt8](repeating: 0, count: 16), [0x4A, 0x70, 4] + [UInt8](repeating: 0, count: 20)] {
            let out = p.received(bad, from: 2, secret: nil, now: 0)
            #expect(out.contains { if case .count("join.bad_datagram") = $0 { true } else { false } })
        }
        let s = [UInt8](repeating: 3, count: 16), y = [UInt8](repeating: 5, count: 32), t = [UInt8](repeating: 6, count: 64)
        let ad = PairingWire.associated(member: MemberID(0x0102030405060708), name: "Käfer with a very long name indeed, more than 32")
        #expect(ad.count <= 40 && PairingWire.parseAssociated(ad)?.0 == MemberID(0x0102030405060708))
        for m: PairingWire.Message in [.offer(session: s, member: MemberID(9), hosting: true, members: 3, name: "car"),
                                       .hello(session: s, mode: .code, share: y, associated: ad),
                                       .reply(session: s, share: y, associated: ad, tag: t), .confirm(session: s, tag: t),
                                       .welcome(session: s, sealed: [UInt8](repeating: 1, count: 60))] {
            #expect(try PairingWire.decode(PairingWire.encode(m)) == m)
            if case .welcome = m {} else {
                #expect(throws: PairingWire.Failure.trailing(1)) { try PairingWire.decode(PairingWire.encode(m) + [0]) }
            }
        }
        // A low-order share is refused with a count, not answered.
        _ = p.invite(now: 0)
        let hello = PairingWire.encode(.hello(session: s, mode: .code, share: [UInt8](repeating: 0, count: 32), associated: ad))
        let out = p.received(hello, from: 2, secret: .random(), now: 1)
        #expect(out.contains { if case .count("join.bad_share") = $0 { true } else { false } })
        #expect(!out.contains { if case .send = $0 { true } else { false } })
    }
}
