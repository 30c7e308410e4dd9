import JamzCore
@testable import JamzNet
import Testing

struct LinkImpairmentTests {
    @Test func specsParseAndBadOnesSayWhy() throws {
        let i = try LinkImpairment(spec: "20+exp10,loss=0.05,seed=3")
        #expect(i == LinkImpairment(delay: 20_000_000, jitterMean: 10_000_000, loss: 0.05, seed: 3))
        #expect(try LinkImpairment(spec: "5") == LinkImpairment(delay: 5_000_000))
        for bad in ["", "x", "-1", "20+10", "20+expx", "20,loss=2", "20,foo=1", "20,loss", "+", "20+"] {
            #expect(throws: ImpairmentSpecError.self, "\(bad)") { try LinkImpairment(spec: bad) }
        }
    }

    @Test func drawsHaveTheStatedDelayJitterAndLoss() throws {
        let i = try LinkImpairment(spec: "20+exp10,loss=0.1")
        var rng = SplitMix64(seed: 1)
        var held: [Nanos] = []
        var lost = 0
        for _ in 0..<20_000 {
            if let d = i.draw(&rng) { held.append(d) } else { lost += 1 }
        }
        let mean: Double = Double(held.reduce(0, +)) / Double(held.count) / 1e6
        #expect(held.allSatisfy { $0 >= 20_000_000 })
        #expect(abs(mean - 30) < 0.5, "mean hold \(mean) ms")
        #expect(abs(Double(lost) / 20_000 - 0.1) < 0.01, "lost \(lost)")
        // Exponential: the median is delay + mean · ln 2.
        held.sort()
        let median: Double = Double(held[held.count / 2]) / 1e6
        let expected: Double = 20 + 10 * 0.693
        #expect(abs(median - expected) < 0.5, "median \(median) ms")
    }
}
