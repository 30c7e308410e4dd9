import JamzCore
import JamzSim
import Testing

@Suite struct DeterminismTests {
    func run(seed: UInt64) -> [Double] {
        var c = Simulation.Config(link: .symmetric("wifi", .exponential(base: 3_000_000, mean: 3_000_000), loss: 0.02))
        c.cars = 3
        c.seed = seed
        let sim = Simulation(c)
        sim.at(2 * nanosPerSecond, .start(car: 0))
        sim.measure(from: 20 * nanosPerSecond)
        sim.run(until: 30 * nanosPerSecond)
        return sim.spreads.map(\.spread)
    }

    @Test func sameSeedSameRun() {
        let a = run(seed: 7), b = run(seed: 7), c = run(seed: 8)
        #expect(!a.isEmpty)
        #expect(a == b)
        #expect(a != c)
    }
}
