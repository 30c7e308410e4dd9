import JamzCore
import Testing

/// Cars' convoy nodes on a virtual LAN in virtual time: each car has its own clock (local =
/// true + offset), datagrams take `delay` each way (or are lost while `cut`), and the effects
/// are carried out here the way the daemon does on its links.
struct VirtualConvoy {
    var nodes: [ConvoyNode]
    var offsets: [Nanos]
    /// Each car's clock frequency error (ppm).
    var drifts: [Double]
    var delay: Nanos = ms(2)
    var cut = false
    var now: Nanos = 0
    /// Datagrams under way: (true arrival time, from, to, message, how it was stamped).
    var wire: [(at: Nanos, from: Int, to: Int, message: WireMessage)] = []
    var due: [Nanos?]
    var plans: [[ConvoyNode.Plan]]
    var savedOps: [[PlaylistOp]]
    var announced = 0

    init(cars: Int, offsets: [Nanos]) {
        nodes = (0..<cars).map { ConvoyNode(me: MemberID(UInt64($0 + 1)), carName: "car \($0 + 1)", sampleRate: 1000) }
        self.offsets = offsets
        drifts = Array(repeating: 0, count: cars)
        due = Array(repeating: 0, count: cars)
        plans = Array(repeating: [], count: cars)
        savedOps = Array(repeating: [], count: cars)
    }

    func local(_ i: Int, _ t: Nanos) -> Nanos { t + offsets[i] + Nanos((Double(t) * drifts[i] * 1e-6).rounded()) }
    func index(of id: MemberID) -> Int { Int(id.raw) - 1 }

    mutating func put(_ m: WireMessage, from i: Int, to j: Int) {
        guard !cut, i != j else { return }
        wire.append((now + delay, i, j, m))
    }

    mutating func carry(_ effects: [ConvoyNode.Effect], of i: Int, replyTo: Int?) {
        for e in effects {
            switch e {
            case .broadcast(let m): for j in nodes.indices { put(m, from: i, to: j) }
            case .reply(let m): if let r = replyTo { put(m, from: i, to: r) }
            case .timeRequest(let to, _, let count):
                for _ in 0..<count { put(.timeRequest(t1: local(i, now), wall: nil), from: i, to: index(of: to)) }
            case .timeReply(let t1, let t2): if let r = replyTo { put(.timeReply(t1: t1, t2: t2, t3: local(i, now), wall: nil), from: i, to: r) }
            case .announce:
                announced += 1
                for j in nodes.indices { put(.timeline(nodes[i].session.timeline), from: i, to: j) }
            case .saveOps(let ops): savedOps[i] += ops
            case .play(let p): plans[i].append(p)
            case .wake: due[i] = now
            default: break
            }
        }
    }

    /// Runs every car's ticks and every delivery up to true time `end`.
    mutating func run(until end: Nanos) {
        while true {
            let nextWire = wire.map(\.at).min()
            // A car's deadline in true time (its clock's rate error is µs over these intervals).
            let nextTick = due.indices.compactMap { i in due[i].map { $0 - local(i, now) + now } }.min()
            guard let t = [nextWire, nextTick].compactMap({ $0 }).min(), t <= end else { break }
            now = max(now, t)
            if let k = wire.firstIndex(where: { $0.at <= now }) {
                let d = wire.remove(at: k)
                let fx = nodes[d.to].opened(from: nodes[d.from].me, boot: 1, via: .lan, at: local(d.to, now))
                    + nodes[d.to].heard(d.message, from: nodes[d.from].me, via: .lan, at: local(d.to, now))
                carry(fx, of: d.to, replyTo: d.from)
                continue
            }
            for i in nodes.indices {
                guard let u = due[i], u <= local(i, now) else { continue }
                let (fx, next) = nodes[i].tick(now: local(i, now), bleChannel: { _ in false }) { .init() }
                due[i] = next
                carry(fx, of: i, replyTo: nil)
            }
        }
        now = end
    }

    /// A command's result stored, then applied (as the daemon does).
    mutating func apply(_ t: ConvoyTimeline, by i: Int) { carry(nodes[i].applyOwn(t, now: local(i, now)), of: i, replyTo: nil) }
    mutating func apply(_ ops: [PlaylistOp], by i: Int) { carry(nodes[i].applyOwn(ops, now: local(i, now)), of: i, replyTo: nil) }
}

@Suite struct ConvoyNodeTests {
    let s = nanosPerSecond

    /// Car 1 founds the convoy and builds a playlist; car 2 joins.
    func convoy(offsets: [Nanos] = [0, 7_345 * 1_000_000]) throws -> VirtualConvoy {
        var v = VirtualConvoy(cars: offsets.count, offsets: offsets)
        _ = v.nodes[0].founded()
        for i in 1..<offsets.count { v.nodes[i].joined() }
        v.apply(try v.nodes[0].makeAdds([(tid("a"), 30_000), (tid("b"), 30_000)]), by: 0)
        return v
    }

    @Test func aFollowerLearnsThePlaylistTheTimelineAndTheDJsClock() throws {
        var v = try convoy()
        v.apply(try v.nodes[0].scheduled(.start(entry: v.nodes[0].log.entries[0].id), at: v.local(0, 500_000_000)), by: 0)
        v.run(until: 10 * s)
        #expect(v.nodes[1].log.entries == v.nodes[0].log.entries)
        #expect(v.nodes[1].session.timeline == v.nodes[0].session.timeline)
        #expect(v.nodes[1].peers[v.nodes[0].me] != nil && v.nodes[0].peers[v.nodes[1].me] != nil)
        // The DJ's clock − ours, against the truth (symmetric delay, no noise: near exact).
        let est = try #require(v.nodes[1].djEstimate(at: v.local(1, v.now)))
        #expect(abs(est.offset(at: v.local(1, v.now)) - Double(v.offsets[0] - v.offsets[1])) < 1_000)
        // The follower's last plan: the DJ's track and frame, heard at the same true instant.
        let p = try #require(v.plans[1].last), d = try #require(v.plans[0].last)
        let a = try #require(p.anchor), local = try #require(p.toLocal)
        #expect(a.track == tid("a") && a.rate == 1)
        let trueTime = local - v.offsets[1]
        let djFrameThen = try #require(d.anchor).frame + (trueTime - (try #require(d.toLocal) - v.offsets[0])) / 1_000_000
        #expect(abs(a.frame - djFrameThen) <= 1)
        // Every 100 ms while playing (the safety net would be once a second).
        #expect(v.plans[1].count > 50)
    }

    @Test func aTakeOverReachesTheOtherCarAndItFollowsTheNewDJ() throws {
        var v = try convoy()
        v.apply(try v.nodes[0].scheduled(.play, at: v.local(0, 200_000_000)), by: 0)
        v.run(until: 5 * s)
        #expect(throws: ConvoyNode.Refusal.self) { try v.nodes[1].scheduled(.pause, at: 0) }
        let t = try v.nodes[1].takeOverTimeline(now: v.local(1, v.now))
        #expect(t.term.number == v.nodes[0].session.term.number + 1 && t.term.dj == v.nodes[1].me)
        let announcedBefore = v.announced
        v.apply(t, by: 1)
        v.run(until: 6 * s)
        #expect(v.nodes[0].session.term == t.term && !v.nodes[0].session.isDJ && v.nodes[1].session.isDJ)
        #expect(v.announced == announcedBefore + 1)
        // Car 1 now pauses nothing: only the DJ may.
        #expect(throws: ConvoyNode.Refusal.self) { try v.nodes[0].scheduled(.pause, at: 0) }
        #expect(throws: ConvoyNode.Refusal.self) { try v.nodes[1].takeOverTimeline(now: 0) }
    }

    /// Ten minutes into a track, the clocks 200 ppm apart: the new DJ's timeline says the same
    /// frame at the instant of the take-over as the old one (nothing skips), in every car.
    @Test func aTakeOverKeepsThePlaceWhateverTheClocksRates() throws {
        var v = try convoy()
        v.drifts = [100, -100]
        v.apply(try v.nodes[0].scheduled(.start(entry: v.nodes[0].log.entries[0].id), at: v.local(0, 500_000_000)), by: 0)
        // A track long enough to play for ten minutes (1 kHz: 700 000 frames).
        v.apply(try v.nodes[0].makeAdds([(tid("c"), 700_000)]), by: 0)
        v.apply(try v.nodes[0].scheduled(.start(entry: v.nodes[0].log.entries[2].id), at: v.local(0, v.now + 500_000_000)), by: 0)
        v.run(until: 600 * s)
        let list = v.nodes[0].log.entries
        let old = v.nodes[0].session.timeline
        let t = try v.nodes[1].takeOverTimeline(now: v.local(1, v.now))
        // Frames (1 kHz) at this true instant: the old DJ's clock on the old timeline, ours on the new.
        let before = try #require(old.position(at: v.local(0, v.now), in: list, sampleRate: 1000))
        let after = try #require(t.position(at: v.local(1, v.now), in: list, sampleRate: 1000))
        #expect(before.entry == after.entry)
        #expect(abs(after.frame - before.frame) <= 1, "moved \(after.frame - before.frame) ms at the take-over")
    }

    @Test func editsMadeApartMergeWhenTheCarsMeetAgain() throws {
        var v = try convoy()
        v.run(until: 3 * s)
        v.cut = true
        v.apply(try v.nodes[0].makeAdds([(tid("c"), 1_000)]), by: 0)
        v.apply(try v.nodes[1].makeAdds([(tid("d"), 1_000), (tid("e"), 1_000)]), by: 1)
        v.run(until: 10 * s)
        #expect(v.nodes[0].log.entries.count == 3 && v.nodes[1].log.entries.count == 4)
        v.cut = false
        v.run(until: 15 * s)
        // Beacons carry the high-water marks; each side sends what the other lacks.
        #expect(v.nodes[0].log.entries.count == 5)
        #expect(v.nodes[0].log.entries == v.nodes[1].log.entries)
        #expect(v.savedOps[0].contains { $0.id.origin == v.nodes[1].me } && v.savedOps[1].contains { $0.id.origin == v.nodes[0].me })
    }

    @Test func outOfRangeTimelinesAndTimeRepliesAreRefusedAndCounted() throws {
        var v = try convoy()
        let dj = v.nodes[0].me
        let before = v.nodes[1].session.timeline
        var bad = ConvoyTimeline(term: Term(number: 99, dj: dj))
        bad.anchor = TimelineAnchor(entry: OpID(origin: dj, seq: 1), track: tid("a"), frame: 0, time: .max - 5, rate: 1)
        let fx = v.nodes[1].heard(.timeline(bad), from: dj, via: .relay, at: 0)
        #expect(v.nodes[1].session.timeline == before && v.nodes[1].rejected == 1)
        #expect(fx.contains { if case .warning = $0 { true } else { false } })
        _ = v.nodes[1].heard(.timeReply(t1: 0, t2: .min + 1, t3: 0, wall: nil), from: dj, via: .lan, at: 0)
        #expect(v.nodes[1].rejected == 2)
    }

    @Test func aNewBootOfAPeerForgetsItsClockSamples() throws {
        var v = try convoy()
        v.run(until: 5 * s)
        let dj = v.nodes[0].me
        #expect(v.nodes[1].peers[dj]?.filter.estimate != nil)
        _ = v.nodes[1].opened(from: dj, boot: 2, via: .lan, at: v.local(1, v.now))
        #expect(v.nodes[1].peers[dj]?.filter.estimate == nil)
    }

    @Test func aFollowerRestartedOutOfReachPlaysOnAloneThenTakesTheDJsTimelineAgain() throws {
        var v = try convoy()
        v.apply(try v.nodes[0].scheduled(.start(entry: v.nodes[0].log.entries[1].id), at: v.local(0, 200_000_000)), by: 0)
        v.run(until: 3 * s)
        // Car 2 restarts (a new node from its store) where the DJ is not heard.
        var n = ConvoyNode(me: v.nodes[1].me, carName: "car 2", sampleRate: 1000, ops: v.nodes[1].log.ops, timeline: v.nodes[1].session.timeline)
        n.rejoined()
        let e = n.log.entries[1]
        #expect(n.resume(at: TimelineAnchor(entry: e.id, track: e.track, frame: 2_000, time: 50, rate: 1)) == nil)
        #expect(n.solo != nil)
        guard case .play(let p) = n.follow(now: 60).last else { Issue.record("no plan"); return }
        #expect(p.anchor?.frame == 2_000 && p.toLocal == 50)
        // Its own music becomes the convoy's when it takes control before hearing the DJ.
        let t = try n.takeOverTimeline(now: 70)
        #expect(t.anchor?.frame == 2_000 && t.term.dj == n.me)
        // Or, hearing the DJ, it follows the DJ again.
        v.nodes[1] = n
        v.due[1] = 0
        v.run(until: 6 * s)
        #expect(v.nodes[1].solo == nil && v.plans[1].last?.anchor?.track == e.track)
    }

    /// Which link a message to one car takes: the LAN while it is fresh (fast, copies tracks),
    /// then its Bluetooth LE channel (near, no mobile data), then the relay; and what `jamz peers` says.
    @Test func freshLANThenBLEThenRelay() {
        var p = ConvoyNode.Peer(name: "car 2", lastHeard: 0)
        p.onLAN = true; p.lanHeard = 100 * s; p.relayHeard = 100 * s; p.bleDataHeard = 100 * s
        #expect(p.route(now: 101 * s) == .lan)
        p.lanHeard = 90 * s   // the LAN went quiet: the car is still near
        #expect(p.route(now: 101 * s) == .ble)
        #expect(p.route(now: 101 * s, bleChannel: false) == .relay)
        p.bleDataHeard = 90 * s   // and drove off: the mobile link
        #expect(p.route(now: 101 * s) == .relay)
        #expect(p.link == "lan+relay+ble")
        // Heard only over BLE: it stays the way to it, however long ago.
        var b = ConvoyNode.Peer(name: "car 3", lastHeard: 0)
        #expect(b.link == "lan")   // nothing heard yet: the default
        b.bleHeard = 50 * s
        #expect(b.link == "ble")
        b.bleDataHeard = 50 * s
        #expect(b.route(now: 200 * s) == .ble)
        // A LAN car with no relay keeps the LAN even when quiet.
        var l = ConvoyNode.Peer(name: "car 4", lastHeard: 0)
        l.onLAN = true; l.lanHeard = 10 * s
        #expect(l.route(now: 200 * s) == .lan && l.link == "lan")
    }

    @Test func sightingsOverBluetoothCountAsNearAndOldOnesChangeNothing() {
        var n = ConvoyNode(me: MemberID(1), carName: "car 1", sampleRate: 1000)
        #expect(n.sighted(MemberID(2), rssi: -60, address: "aa", at: 10).isEmpty)   // not in a convoy
        n.joined()
        let fx = n.sighted(MemberID(2), rssi: -60, address: "aa", at: 10)
        #expect(fx.contains { if case .radio(MemberID(2), _, -60, 10) = $0 { true } else { false } })
        _ = n.sighted(MemberID(2), rssi: -80, address: "aa", at: 5)
        #expect(n.peers[MemberID(2)]?.bleRSSI == -60 && n.peers[MemberID(2)]?.link == "ble")
        #expect(n.sighted(MemberID(1), rssi: -10, address: "me", at: 20).isEmpty)
    }
}
