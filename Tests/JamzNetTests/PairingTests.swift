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
                        if case .joined(let s, _, _, _) = oc { cars[i].secret = s }
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

        /// Steps the time deadline by deadline until `until`. A deadline still due after `due`
        /// ran (a loop that would spin) is recorded as an issue.
        func run(until end: Nanos, sourceLocation: SourceLocation = #_sourceLocation) {
            var steps = 0
            while let next = cars.compactMap({ $0.pairing.deadline() }).min(), next <= end {
                steps += 1
                guard steps < 10_000 else { Issue.record("the deadlines spin at \(now)", sourceLocation: sourceLocation); return }
                now = max(now, next)
                for i in cars.indices { apply(i, cars[i].pairing.due(now: now)) }
                for car in cars { if let d = car.pairing.deadline(), d <= now { Issue.record("a deadline in the past after due", sourceLocation: sourceLocation); return } }
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

    /// A host in convoy `name` with an open short code, and a joiner (cars 0 and 1).
    static func invited(_ name: String, seed: UInt64) -> (Net, ConvoySecret, String) {
        let net = Net()
        let convoy = ConvoySecret.random(name: name)
        net.add("host", secret: convoy, seed: seed)
        net.add("joiner", seed: seed + 1)
        return (net, convoy, net.cars[0].pairing.invite(now: net.now))
    }

    @Test func aShortCodeJoinsAndBothEndsAgreeOnTheWord() throws {
        let (net, convoy, code) = Self.invited("Road trip", seed: 1)
        #expect(code.count == 7 && code.filter(\.isNumber).count == 6)
        net.apply(1, try net.cars[1].pairing.join(code: code, now: net.now))
        guard case .joined(let s, let host, let word, .code)? = net.cars[1].outcomes.last else { Issue.record("not joined: \(net.cars[1].outcomes)"); return }
        #expect(s == convoy && s.name == "Road trip" && host == "host")
        guard case .welcomed(_, let name, let word2)? = net.cars[0].outcomes.last else { Issue.record("no welcome"); return }
        #expect(name == "joiner" && word == word2 && word.split(separator: " ").allSatisfy { CheckWords.all.contains(String($0)) })
        // Four datagrams: hello, reply, confirm, welcome; the code keeps its tries.
        #expect(net.delivered == 4)
        #expect(net.cars[0].pairing.openInvite(now: net.now)?.attempts == 5)
    }

    @Test func aWrongCodeIsRefusedCountedOnBothSidesAndCostsATry() throws {
        let (net, _, invite) = Self.invited("", seed: 3)
        let code = invite.filter(\.isNumber)
        let wrong = String(code.map { $0 == "9" ? "0" : Character(String(($0.wholeNumberValue! + 1) % 10)) })
        net.apply(1, try net.cars[1].pairing.join(code: wrong, now: net.now))
        net.run(until: net.now + 20 * Self.second)
        #expect(net.cars[1].outcomes == [.failed(.wrongCode, by: .code)])
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
        // (An attacker does not wait for its own attempt's outcome.)
        for g in 0..<40 {
            net.cars[1].pairing.attempts = [:]
            net.apply(1, try net.cars[1].pairing.join(code: String(format: "%06d", g), now: net.now))
            net.now += 100_000_000
        }
        let answered = net.cars[0].counts["join.exchanges", default: 0]
        #expect(answered == 4)   // 4 s of guessing at 10 a second
        #expect(net.cars[0].counts["join.rate_limited", default: 0] == 36)
        // One more second: the fifth exchange; then the code is used up even for the right code.
        net.now += Self.second
        net.cars[1].pairing.attempts = [:]
        net.apply(1, try net.cars[1].pairing.join(code: "999999", now: net.now))
        net.run(until: net.now + 20 * Self.second)
        net.apply(2, try net.cars[2].pairing.join(code: code, now: net.now))
        net.run(until: net.now + 5 * Self.second)
        #expect(net.cars[0].counts["join.code_used_up"] == 1)
        #expect(net.cars[2].secret == nil && net.cars[2].outcomes == [.failed(.noAnswer, by: .code)])
        #expect(net.cars[0].counts["join.unconfirmed"] == 5)
    }

    @Test func lostDatagramsAreSentAgainAndCostNoTry() throws {
        let (net, _, code) = Self.invited("", seed: 8)
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
        net.apply(0, net.cars[0].pairing.press(now: net.now, secret: nil))
        net.now += 12 * Self.second
        net.apply(1, net.cars[1].pairing.press(now: net.now, secret: nil))
        net.run(until: net.now + 5 * Self.second)
        // Both speak the words; nothing secret has gone yet.
        guard case .compare(let c0, false)? = net.cars[0].outcomes.last, case .compare(let c1, true)? = net.cars[1].outcomes.last
        else { Issue.record("\(net.cars.map(\.outcomes))"); return }
        #expect(c0 == c1 && net.cars[0].secret == nil && net.cars[1].counts["join.welcomed"] == nil)
        #expect(net.cars[1].pairing.awaitingConfirmation)
        // The host's driver heard the same words and presses join again: the key goes.
        net.apply(1, net.cars[1].pairing.press(now: net.now, secret: convoy))
        net.run(until: net.now + 2 * Self.second)
        guard case .joined(let s, _, let w1, .button)? = net.cars[0].outcomes.last,
              case .welcomed(_, _, let w2)? = net.cars[1].outcomes.last else { Issue.record("\(net.cars.map(\.outcomes))"); return }
        #expect(s == convoy && w1 == w2 && w1 == c0)
        // Neither in a convoy: the lower member id hosts, and makes one once its driver confirms.
        let fresh = Net()
        fresh.add("a", seed: 12)
        fresh.add("b", seed: 13)
        fresh.apply(1, fresh.cars[1].pairing.press(now: fresh.now, secret: nil))
        fresh.apply(0, fresh.cars[0].pairing.press(now: fresh.now, secret: nil))
        fresh.run(until: fresh.now + 5 * Self.second)
        guard case .compare(_, true)? = fresh.cars[0].outcomes.last else { Issue.record("\(fresh.cars.map(\.outcomes))"); return }
        #expect(fresh.cars[0].secret == nil)
        fresh.apply(0, fresh.cars[0].pairing.press(now: fresh.now, secret: nil))
        #expect(fresh.cars[0].outcomes.last == .needConvoy)
        // The convoy made, the welcome goes at once (not at the joiner's next reveal).
        let made = try #require(fresh.cars[0].secret)
        fresh.apply(0, fresh.cars[0].pairing.convoyMade(secret: made))
        #expect(fresh.cars[1].secret == made)
        fresh.run(until: fresh.now + 2 * Self.second)
        #expect(fresh.cars[0].counts["join.welcomed"] == 1 && fresh.cars[0].pairing.button == nil)
        #expect(fresh.cars[1].pairing.deadline() == nil && fresh.cars[1].pairing.attempts.isEmpty)
    }

    /// Two lone cars: the host's convoy cannot be made (its disk is full): the pairing ends with
    /// the reason, no key goes, a further press opens a new window, and nothing is left waiting.
    @Test func aConvoyThatCannotBeMadeEndsThePairing() throws {
        let net = Net()
        net.add("a", seed: 40)
        net.add("b", seed: 41)
        for i in [1, 0] { net.apply(i, net.cars[i].pairing.press(now: net.now, secret: nil)) }
        net.run(until: net.now + 5 * Self.second)
        let host = try #require(net.cars.firstIndex { if case .compare(_, true)? = $0.outcomes.last { true } else { false } })
        let out = net.cars[host].pairing.press(now: net.now, secret: nil)
        #expect(out.contains { if case .outcome(.needConvoy) = $0 { true } else { false } })
        let failed = net.cars[host].pairing.convoyFailed("disk full")
        #expect(failed.contains { if case .outcome(.failed(.cannot(let why), by: .button)) = $0 { why.contains("disk full") } else { false } })
        #expect(net.cars[host].pairing.button == nil && net.cars[host].pairing.hosted.isEmpty)
        net.run(until: net.now + 60 * Self.second)
        #expect(net.cars[1 - host].outcomes.last == .failed(.notConfirmed, by: .button))
        #expect(net.cars.allSatisfy { $0.secret == nil && $0.pairing.deadline() == nil })
    }

    /// The host's driver confirms just before the wait ends and the welcome is lost: the
    /// joiner's next reveal gets it again (the host keeps the exchange as long as the joiner
    /// sends), and both end in the same convoy.
    @Test(arguments: [2000, 700, 300, 100]) func aLateConfirmWhoseWelcomeIsLostStillJoins(msBefore: Int) throws {
        let net = Self.pressedPair()
        net.run(until: net.now + 3 * Self.second)
        guard case .compare(_, true)? = net.cars[0].outcomes.last else { Issue.record("\(net.cars.map(\.outcomes))"); return }
        let until = try #require(net.cars[0].pairing.button).until
        net.run(until: until - Nanos(msBefore) * 1_000_000)
        net.drop = ["0>1:5": 1]   // the first welcome
        net.apply(0, net.cars[0].pairing.press(now: net.now, secret: net.cars[0].secret))
        net.run(until: net.now + 10 * Self.second)
        #expect(net.cars[1].secret != nil && net.cars[1].secret == net.cars[0].secret, "\(net.cars.map(\.outcomes))")
        guard case .joined? = net.cars[1].outcomes.last else { Issue.record("\(net.cars[1].outcomes)"); return }
    }

    /// An exchange begun late in one window, whose reveal arrives after the host pressed again:
    /// the new window does not speak its words nor let the car in (each window its own exchange).
    @Test func aWindowsExchangeIsNotConfirmedInALaterWindow() throws {
        let net = Net()
        net.add("host", secret: .random(name: "Convoy"), seed: 30)
        net.add("joiner", seed: 31)
        let start = net.now
        net.apply(0, net.cars[0].pairing.press(now: net.now, secret: nil))
        net.run(until: start + 24 * Self.second)
        net.drop = ["1>0:7": 1000]   // the reveals do not arrive in the first window
        net.apply(1, net.cars[1].pairing.press(now: net.now, secret: nil))
        net.run(until: start + 27 * Self.second)
        #expect(net.cars[0].pairing.hosted.count == 1)
        net.run(until: start + 31 * Self.second)
        #expect(net.cars[0].pairing.hosted.isEmpty)   // the window ended: its exchange with it
        net.apply(0, net.cars[0].pairing.press(now: net.now, secret: net.cars[0].secret))
        net.drop = [:]
        net.run(until: start + 36 * Self.second)
        #expect(!net.cars[0].outcomes.contains { if case .compare = $0 { true } else { false } })
        #expect(!net.cars[0].pairing.awaitingConfirmation)
        #expect(net.cars[0].counts["join.stray", default: 0] > 0)
        net.apply(0, net.cars[0].pairing.press(now: net.now, secret: net.cars[0].secret))
        net.run(until: start + 100 * Self.second)
        #expect(net.cars[1].secret == nil && net.cars[0].counts["join.welcomed"] == nil)
        #expect(net.cars.allSatisfy { $0.pairing.deadline() == nil })
    }

    /// A third car presses while the host waits for its driver to confirm the words: given up,
    /// and the driver's next press confirms nothing (nor says it did).
    @Test func anOverlapDuringTheConfirmationCancelsIt() throws {
        let net = Self.pressedPair()
        net.run(until: net.now + 5 * Self.second)
        guard case .compare(_, true)? = net.cars[0].outcomes.last else { Issue.record("\(net.cars.map(\.outcomes))"); return }
        #expect(net.cars[0].pairing.awaitingConfirmation)
        net.apply(2, net.cars[2].pairing.press(now: net.now, secret: nil))
        #expect(net.cars[0].outcomes.last == .failed(.overlap, by: .button))
        #expect(!net.cars[0].pairing.awaitingConfirmation)
        let out = net.cars[0].pairing.press(now: net.now, secret: net.cars[0].secret)
        #expect(!out.contains { if case .outcome = $0 { true } else { false } })
        net.apply(0, out)
        net.run(until: net.now + 60 * Self.second)
        #expect(net.cars[1].secret == nil && net.cars[0].counts["join.welcomed"] == nil)
    }

    /// Nobody confirms the words (they differed: a man in the middle, or another pair of cars):
    /// no key goes, both give up when the confirmation window ends, and nothing spins.
    @Test func wordsNotConfirmedByASecondPressSendNoKey() throws {
        let net = Self.pressedPair()
        net.run(until: net.now + 5 * Self.second)
        guard case .compare(_, true)? = net.cars[0].outcomes.last else { Issue.record("\(net.cars.map(\.outcomes))"); return }
        net.run(until: net.now + 40 * Self.second)
        #expect(net.cars[0].outcomes.last == .failed(.notConfirmed, by: .button))
        #expect(net.cars[1].outcomes.last == .failed(.notConfirmed, by: .button))
        #expect(net.cars[1].secret == nil && net.cars[0].counts["join.welcomed"] == nil)
        #expect(net.cars.allSatisfy { $0.pairing.deadline() == nil })
        // A press after the window opens a new one: it does not confirm the old words.
        let out = net.cars[0].pairing.press(now: net.now, secret: net.cars[0].secret)
        #expect(!out.contains { if case .outcome = $0 { true } else { false } })
    }

    @Test func aThirdCarPressingMakesThePairingGiveUpAndALonePressTimesOut() throws {
        let net = Net()
        net.add("a", secret: .random(), seed: 14)
        net.add("b", seed: 15)
        net.add("c", seed: 16)
        for i in 0..<3 { net.apply(i, net.cars[i].pairing.press(now: net.now, secret: nil)) }
        net.run(until: net.now + 40 * Self.second)
        #expect(net.cars.allSatisfy { $0.outcomes == [.failed(.overlap, by: .button)] })
        #expect(net.cars[1].secret == nil && net.cars[2].secret == nil)
        let alone = Net()
        alone.add("a", seed: 17)
        alone.apply(0, alone.cars[0].pairing.press(now: alone.now, secret: nil))
        alone.run(until: alone.now + 40 * Self.second)
        #expect(alone.cars[0].outcomes == [.failed(.buttonTimeout, by: .button)])
        #expect(alone.cars[0].pairing.deadline() == nil)
    }

    static func sent(_ out: [Pairing<Int>.Output]) -> [UInt8]? {
        for o in out {
            switch o {
            case .multicast(let b), .send(let b, _): return b
            default: continue
            }
        }
        return nil
    }

    @Test func aFloodOfMadeUpRepliesCostsTwoChecksThenTheJoinFails() throws {
        let net = Net()
        net.add("joiner", seed: 20)
        let hello = try #require(Self.sent(try net.cars[0].pairing.join(code: "123456", now: net.now)))
        let sid = try PairingWire.decode(hello).session
        for k in 0..<50 {
            let ad = PairingWire.associated(member: MemberID(UInt64(500 + k)), name: "fake \(k)")
            let reply = PairingWire.encode(.reply(session: sid, share: [UInt8](repeating: UInt8(9 + k), count: 32), associated: ad,
                                                  tag: [UInt8](repeating: 1, count: 64)))
            net.apply(0, net.cars[0].pairing.received(reply, from: 50 + k, secret: nil, now: net.now))
        }
        #expect(net.cars[0].counts["join.wrong_code"] == 2)
        #expect(net.cars[0].counts["join.stray"] == 48)
        #expect(net.cars[0].outcomes == [.failed(.wrongCode, by: .code)])
        #expect(net.cars[0].pairing.deadline() == nil)
    }

    @Test func forgedConfirmsAndACopiedSessionDoNotSpoilTheExchange() throws {
        let (net, convoy, code) = Self.invited("Convoy", seed: 21)
        let hello = try #require(Self.sent(try net.cars[1].pairing.join(code: code, now: net.now)))
        let sid = try PairingWire.decode(hello).session
        let reply = try #require(Self.sent(net.cars[0].pairing.received(hello, from: 1, secret: convoy, now: net.now)))
        // A listener copies the session: its hello (another share) and its confirms take nothing.
        let ad = PairingWire.associated(member: MemberID(99), name: "eve")
        let copied = PairingWire.encode(.hello(session: sid, mode: .code, share: [UInt8](repeating: 9, count: 32), associated: ad))
        let o1 = net.cars[0].pairing.received(copied, from: 7, secret: convoy, now: net.now + 1)
        #expect(Self.sent(o1) == nil)
        let forged = PairingWire.encode(.confirm(session: sid, tag: [UInt8](repeating: 7, count: 64)))
        for _ in 0..<2 { _ = net.cars[0].pairing.received(forged, from: 1, secret: convoy, now: net.now) }
        _ = net.cars[0].pairing.received(forged, from: 7, secret: convoy, now: net.now)
        net.apply(1, net.cars[1].pairing.received(reply, from: 0, secret: nil, now: net.now))
        guard case .joined(let s, _, _, .code)? = net.cars[1].outcomes.last else { Issue.record("not joined: \(net.cars[1].outcomes)"); return }
        #expect(s == convoy)
    }

    /// Both pressed at `net.now`; the host (in a convoy) decides after the settle.
    static func pressedPair() -> Net {
        let net = Net()
        net.add("host", secret: .random(name: "Convoy"), seed: 23)
        net.add("joiner", seed: 24)
        net.add("bystander", seed: 25)
        for i in 0..<2 { net.apply(i, net.cars[i].pairing.press(now: net.now, secret: nil)) }
        return net
    }

    @Test func aSecondButtonExchangeOrASecondAddressGivesUpAndNothingSpins() throws {
        // A hello from the joiner's address and member, but another session, just before its own.
        var net = Self.pressedPair()
        let settled = net.now + Self.second * 3 / 2
        net.run(until: settled - 1)
        net.now = settled
        let joinerAD = PairingWire.associated(member: MemberID(24_007), name: "joiner")
        let fake = PairingWire.encode(.hello(session: [UInt8](repeating: 4, count: 16), mode: .button,
                                             share: [UInt8](repeating: 4, count: 32), associated: joinerAD))
        net.apply(0, net.cars[0].pairing.received(fake, from: 1, secret: net.cars[0].secret, now: net.now))
        net.run(until: net.now + 40 * Self.second)
        #expect(net.cars[0].outcomes == [.failed(.overlap, by: .button)])
        #expect(net.cars[1].secret == nil && net.cars[1].outcomes == [.failed(.noAnswer, by: .button)])
        #expect(net.cars[0].counts["join.welcomed"] == nil)

        // The joiner's member offering from a second address.
        net = Self.pressedPair()
        let offer = PairingWire.encode(.offer(session: [UInt8](repeating: 1, count: 16), member: MemberID(24_007), hosting: false, members: 0, name: "joiner"))
        net.apply(0, net.cars[0].pairing.received(offer, from: 2, secret: net.cars[0].secret, now: net.now))
        net.run(until: net.now + 40 * Self.second)
        #expect(net.cars[0].outcomes == [.failed(.overlap, by: .button)])
        #expect(net.cars[1].secret == nil)

        // A button hello from a car that never offered: refused, and the due loop does not spin.
        net = Self.pressedPair()
        let stranger = PairingWire.encode(.hello(session: [UInt8](repeating: 6, count: 16), mode: .button, share: [UInt8](repeating: 6, count: 32),
                                                 associated: PairingWire.associated(member: MemberID(77), name: "stranger")))
        net.now += 2 * Self.second
        let out = net.cars[0].pairing.received(stranger, from: 2, secret: net.cars[0].secret, now: net.now)
        #expect(out.contains { if case .count("join.no_button") = $0 { true } else { false } })
        net.run(until: net.now + 5 * Self.second)
        guard case .compare(_, true)? = net.cars[0].outcomes.last else { Issue.record("\(net.cars.map(\.outcomes))"); return }
        net.apply(0, net.cars[0].pairing.press(now: net.now, secret: net.cars[0].secret))
        guard case .welcomed? = net.cars[0].outcomes.last else { Issue.record("\(net.cars.map(\.outcomes))"); return }
    }

    @Test func theButtonJoinerRevealsOnlyTheShareItCommittedTo() throws {
        let net = Self.pressedPair()
        net.drop = ["1>0:7": 100]   // the reveals do not arrive
        net.run(until: net.now + 3 * Self.second)
        // The hello carried a commitment, not a share: a reveal of another share is not taken.
        let hosted = try #require(net.cars[0].pairing.hosted.first)
        #expect(hosted.value.mode == .button && hosted.value.isk == nil)
        let wrong = PairingWire.encode(.reveal(session: hosted.key.session, share: [UInt8](repeating: 8, count: 32), tag: [UInt8](repeating: 0, count: 64)))
        let out = net.cars[0].pairing.received(wrong, from: 1, secret: net.cars[0].secret, now: net.now)
        #expect(out.contains { if case .count("join.stray") = $0 { true } else { false } })
        #expect(net.cars[0].pairing.hosted.first?.value.isk == nil)
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
                                       .welcome(session: s, sealed: [UInt8](repeating: 1, count: 60)),
                                       .answer(session: s, share: y, associated: ad), .reveal(session: s, share: y, tag: t)] {
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
