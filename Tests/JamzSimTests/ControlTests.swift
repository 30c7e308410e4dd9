import JamzCore
import JamzSim
import Testing

/// DJ hand-over and playlist merges under partitions, over many seeds, in virtual time.
@Suite struct ControlTests {
    let s = nanosPerSecond

    func quietConfig(_ profile: SyncProfile = .wifi, seed: UInt64, cars: Int, render: Bool = false, partitions: [Partition] = []) -> Simulation.Config {
        var c = profile.config(seed: seed, cars: cars)
        c.render = render
        c.partitions = partitions
        c.tracks = Array(c.tracks.prefix(8))
        return c
    }

    @Test(arguments: Array(UInt64(1)...20))
    func twoCarsPressingAtOnceEndWithOneDJ(seed: UInt64) {
        let sim = Simulation(quietConfig(.rough, seed: seed, cars: 5))
        sim.at(10 * s, .takeOver(car: 1))
        sim.at(10 * s, .takeOver(car: 3))
        sim.run(until: 20 * s)
        let terms = Set((0..<5).map { sim.term(of: $0) })
        #expect(terms.count == 1)
        // Member ids grow with the car number: the higher one wins.
        #expect(terms.first == Term(number: 1, dj: sim.memberIDs[3]))
    }

    /// Both halves of a split convoy take control (car 4 presses twice: the second press is
    /// refused, it is the DJ already, as in the daemon); when they meet again the highest
    /// (term, member) wins everywhere and every car plays the winner's music, in sync.
    @Test(arguments: [UInt64(1), 2, 3])
    func bothHalvesOfAPartitionTakeOverAndConvergeOnMerge(seed: UInt64) {
        let split = Partition(start: 20 * s, end: 60 * s, groups: [[0, 1, 2], [3, 4]])
        let sim = Simulation(quietConfig(seed: seed, cars: 5, render: true, partitions: [split]))
        sim.at(2 * s, .start(car: 0))
        sim.at(25 * s, .takeOver(car: 1))
        sim.at(30 * s, .takeOver(car: 4))
        sim.at(35 * s, .next(car: 4))
        sim.at(40 * s, .takeOver(car: 4))
        sim.measure(from: 90 * s)
        sim.run(until: 100 * s)
        let terms = Set((0..<5).map { sim.term(of: $0) })
        #expect(terms == [Term(number: 1, dj: sim.memberIDs[4])])
        #expect(sim.refusedTakeOvers == 1)
        #expect((1..<5).allSatisfy { sim.timeline(of: $0) == sim.timeline(of: 0) })
        let spreads = sim.spreads.map(\.spread)
        #expect(!spreads.isEmpty && spreads.allSatisfy { $0 < 1e6 }, "max \(spreads.max() ?? -1) ns")
    }

    /// 100 random schedules of partitions, merges, take-overs and edits: every car ends with the
    /// identical playlist and every op made anywhere.
    @Test func randomPartitionsAndMergesLoseNothing() {
        for seed in UInt64(1)...100 {
            var r = SplitMix64(seed: seed &* 7919)
            let cars = 4 + Int(r.next() % 3)
            var partitions: [Partition] = []
            var t: Nanos = 5 * s
            while t < 100 * s {
                let len = Nanos(5 + r.next() % 20) * s
                var groups: [[Int]] = [[], []]
                for c in 0..<cars { groups[Int(r.next() % 2)].append(c) }
                partitions.append(Partition(start: t, end: t + len, groups: groups))
                t += len + Nanos(r.next() % 10) * s
            }
            let sim = Simulation(quietConfig(.rough, seed: seed, cars: cars, partitions: partitions))
            for n in 0..<40 {
                let at = Nanos(r.next() % 110) * s + Nanos(r.next() % 1000) * 1_000_000
                let car = Int(r.next() % UInt64(cars))
                if n % 10 == 9 { sim.at(at, .takeOver(car: car)) } else { sim.at(at, .randomEdit(car: car, seed: r.next())) }
            }
            sim.run(until: 160 * s)
            let reference = sim.playlist(of: 0)
            for c in 0..<cars {
                #expect(sim.playlist(of: c) == reference, "seed \(seed): car \(c) differs")
                let held = Set(sim.ops(of: c).map(\.id))
                #expect(sim.madeOps.isSubset(of: held), "seed \(seed): car \(c) lacks \(sim.madeOps.subtracting(held).count) ops")
                #expect(sim.term(of: c) == sim.term(of: 0), "seed \(seed): car \(c) on another term")
            }
        }
    }

    /// A DJ that was superseded while apart removes an entry the new DJ moved: on merge the
    /// remove is applied everywhere (see PlaylistLog: tombstones are final, a superseded DJ's
    /// edits made in its own term count), and the new DJ stays DJ.
    @Test func aSupersededDJsRemoveMadeWhileApartIsApplied() {
        let split = Partition(start: 10 * s, end: 40 * s, groups: [[0, 1], [2, 3]])
        let sim = Simulation(quietConfig(seed: 4, cars: 4, partitions: [split]))
        sim.run(until: 5 * s)
        let x = sim.playlist(of: 0)[2].id
        sim.at(15 * s, .takeOver(car: 2))
        sim.at(20 * s, .edit(car: 0, .remove(entry: x)))
        sim.at(22 * s, .edit(car: 2, .move(entry: x, after: nil)))
        sim.run(until: 30 * s)
        #expect(sim.playlist(of: 2).first?.id == x)        // moved in the new DJ's half
        #expect(!sim.playlist(of: 1).contains { $0.id == x })  // gone in the old DJ's half
        sim.run(until: 60 * s)
        for c in 0..<4 {
            #expect(!sim.playlist(of: c).contains { $0.id == x }, "car \(c) still has the removed entry")
            #expect(sim.term(of: c) == Term(number: 1, dj: sim.memberIDs[2]))
        }
        #expect(sim.refusedEdits == 0)
    }
}
