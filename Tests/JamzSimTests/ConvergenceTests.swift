import JamzCore
import JamzSim
import Testing

/// Deterministic convoy runs (virtual time): every profile converges, and the estimate never
/// claims more than it knows.
@Suite struct ConvergenceTests {
    static let profiles: [SyncProfile] = [.lan, .wifi, .jitter, .lte, .asymmetricGPS, .asymmetric, .rough]

    @Test(arguments: profiles, [UInt64(1), 2])
    func offsetsConvergeAndStayInsideTheirBound(profile: SyncProfile, seed: UInt64) {
        let sim = Simulation(profile.config(seed: seed, cars: 4))
        sim.at(2 * nanosPerSecond, .start(car: 0))
        sim.measure(from: 60 * nanosPerSecond)
        sim.run(until: 90 * nanosPerSecond)
        for car in 1..<sim.carCount {
            let e = sim.offsetError(car: car, peer: 0)
            #expect(e != nil, "car \(car) has no estimate")
            guard let e else { continue }
            // The bound is honest: the truth is inside it on every profile, asymmetric or not.
            #expect(abs(e.error) <= Double(e.bound) + 50_000, "car \(car): error \(e.error) ns, bound \(e.bound) ns")
        }
        let spreads = sim.spreads.map(\.spread).sorted()
        #expect(spreads.count > 2_000, "every car plays: \(spreads.count) samples, \(sim.notPlayingSamples) not playing")
        guard !spreads.isEmpty else { return }
        let p99 = spreads[spreads.count * 99 / 100]
        if profile.name == SyncProfile.asymmetric.name {
            // Half the 35 ms asymmetry, which no exchange can see; the bound (22.5 ms) covers it.
            #expect(abs(p99 - 17.5e6) < 0.5e6, "p99 \(p99) ns")
        } else {
            // 60–90 s after a cold start; the long-run figures are the benchmark's.
            let limit = profile.name == SyncProfile.lte.name ? 2e6 : 1e6
            #expect(p99 < limit, "p99 \(p99) ns")
        }
    }

    /// The references run in the same simulator: the seed's algorithm never corrects the DAC
    /// drift, so its cars end further apart than ours on the same network.
    @Test func oursBeatsTheReferencesOnTheSameRun() {
        func p99(_ policy: SyncPolicy) -> Double {
            let sim = Simulation(SyncProfile.wifi.config(seed: 3, policy: policy, cars: 3))
            sim.at(2 * nanosPerSecond, .start(car: 0))
            sim.measure(from: 60 * nanosPerSecond)
            sim.run(until: 120 * nanosPerSecond)
            let s = sim.spreads.map(\.spread).sorted()
            return s.isEmpty ? .infinity : s[s.count * 99 / 100]
        }
        let ours = p99(.jamz), snap = p99(.snapcast), seed = p99(.seed)
        #expect(ours < snap && ours < seed, "jamz \(ours) snapcast \(snap) seed \(seed)")
    }
}
