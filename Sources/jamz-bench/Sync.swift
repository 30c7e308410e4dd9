import ArgumentParser
import Foundation
import JamzCore
import JamzSim

/// `jamz-bench sync`: the convoy simulator (virtual time, real JamzCore) on the network profiles
/// of the sync issue, with the seed's and Snapcast's algorithms measured in the same run.
struct Sync: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Inter-car offset of JamzCore vs the seed's and Snapcast's algorithms, per network profile (simulated).")

    @Option(help: "Simulated minutes measured per profile, after the warm-up.") var minutes: Double = 10
    @Option(help: "Warm-up (simulated seconds) before measuring.") var warmup: Double = 60
    @Option(help: "Seed of the simulation.") var seed: UInt64 = 1
    @Option(help: "Only profiles whose name contains this.") var only: String?
    @Flag(help: "Skip the reference algorithms.") var oursOnly = false
    @Option(help: "Override the number of cars of every profile.") var cars: Int?
    @Flag(help: "Print each follower's clock-offset error every 30 s (diagnostics).") var debug = false

    static let profiles = SyncProfile.all

    struct Figures {
        var p50 = Double.nan, p99 = Double.nan, max = Double.nan
        var convergence: Double?
        var bytesPerCar = 0.0
        var bound = 0.0
        var samples = 0
    }

    func run() throws {
        let start = Date()
        print("jamz-bench sync: simulated convoys, \(fmtd(minutes)) min measured after \(fmtd(warmup)) s warm-up, seed \(seed)")
        print("inter-car offset = max − min over cars of the frame each DAC emits, sampled every 10 ms of true time")
        print("clocks: origin ±1 h, ±100 ppm + 0.2 ppm wander (10–30 min period); DACs ±100 ppm, 0–5 ms latency; timestamps ±2 µs noise\n")
        let policies: [SyncPolicy] = oursOnly ? [.jamz] : [.jamz, .snapcast, .seed]
        print(pad("profile", 16) + pad("algorithm", 10) + pad("p50 ms", 10) + pad("p99 ms", 10) + pad("max ms", 10) + pad("converged", 11) + pad("B/s/car", 9) + "bound ms")
        for p in Self.profiles where only.map({ p.name.localizedCaseInsensitiveContains($0) }) ?? true {
            let p = (name: p.name, cars: p.cars, link: p.link, gps: p.gpsAccuracy, target: p.target)
            for policy in policies {
                let f = measure(cars: cars ?? p.cars, link: p.link, gps: p.gps, policy: policy)
                let conv = f.convergence.map { fmtd($0, 1) + " s" } ?? "never"
                print(pad(p.name, 16) + pad(policy.rawValue, 10) + pad(fmtd(f.p50, 4), 10) + pad(fmtd(f.p99, 4), 10) + pad(fmtd(f.max, 4), 10)
                      + pad(conv, 11) + pad(fmtd(f.bytesPerCar, 0), 9) + (policy == .jamz ? fmtd(f.bound, 3) : "-"))
            }
            print("  target for jamz: \(p.target)")
        }
        if only == nil || "handover".contains(only!) { handover() }
        print("\nwall time \(fmtd(Date().timeIntervalSince(start), 1)) s")
    }

    func measure(cars: Int, link: LinkProfile, gps: Nanos?, policy: SyncPolicy) -> Figures {
        var c = Simulation.Config(link: link)
        c.cars = cars; c.policy = policy; c.gpsAccuracy = gps; c.seed = seed
        let sim = Simulation(c)
        let startAt = 2 * nanosPerSecond
        sim.at(startAt, .start(car: 0))
        sim.measure(from: startAt)
        let from = Nanos(warmup * 1e9), end = from + Nanos(minutes * 60e9)
        if debug && policy == .jamz {
            var t: Nanos = 0
            while t < end {
                t = min(end, t + 30 * nanosPerSecond)
                sim.run(until: t)
                let errs = (1..<cars).compactMap { sim.offsetError(car: $0, peer: 0) }.map { fmtd($0.error / 1e3, 1) }
                let est = sim.clockEstimate(car: 1, peer: 0)
                print("  t=\(t / nanosPerSecond)s offset error µs: \(errs.joined(separator: " ")); car1 kept \(est?.samples ?? 0) spread \(fmtd(Double(est?.spread ?? 0) / 1e3, 1)) µs ppm \(fmtd(est?.ppm ?? 0, 3))")
            }
        }
        sim.run(until: end)
        var f = Figures()
        if debug {
            let early = sim.spreads.filter { $0.time < 40 * nanosPerSecond }
            let line = stride(from: 0, to: early.count, by: 100).map { fmtd(early[$0].spread / 1e6, 3) }
            print("  \(policy) spread each second from \(fmtd(Double(early.first?.time ?? 0) / 1e9, 1)) s: \(line.joined(separator: " "))")
        }
        let window = sim.spreads.filter { $0.time >= from }.map { $0.spread / 1e6 }.sorted()
        f.samples = window.count
        if !window.isEmpty {
            f.p50 = window[window.count / 2]; f.p99 = window[Int(Double(window.count - 1) * 0.99)]; f.max = window.last!
        }
        // Converged: from then on, 10 s with every sample within 1 ms.
        var run = 0
        let need = Int(10e9 / Double(c.sampleEvery))
        for (i, s) in sim.spreads.enumerated() {
            if s.spread <= 1e6 { run += 1 } else { run = 0 }
            if run == need { f.convergence = Double(sim.spreads[i - need + 1].time) / 1e9; break }
        }
        f.bytesPerCar = (0..<cars).map { Double(sim.bytesSent(by: $0)) }.reduce(0, +) / Double(cars) / (Double(end) / 1e9)
        f.bound = (1..<cars).compactMap { sim.offsetError(car: $0, peer: 0)?.bound }.map { Double($0) / 1e6 }.max() ?? .nan
        return f
    }

    /// DJ hand-over and scheduled changes on the Wi-Fi profile.
    func handover() {
        var c = Simulation.Config(link: Self.profiles[1].link)
        c.seed = seed
        let sim = Simulation(c)
        let s = nanosPerSecond
        sim.at(2 * s, .start(car: 0))
        sim.measure(from: 2 * s)
        let t1 = 60 * s, t2 = 100 * s
        sim.at(t1, .takeOver(car: 2))
        sim.at(t2, .takeOver(car: 3))
        sim.at(t2, .takeOver(car: 4))
        let changes = (0..<10).map { 130 * s + Nanos($0) * 10 * s }
        for (n, t) in changes.enumerated() {
            sim.at(t, n % 2 == 0 ? .seek(car: 4, seconds: 30 + Double(n)) : .next(car: 4))
        }
        sim.run(until: 60 * s)
        let before = sim.jumps.count
        sim.run(until: t1 + 20 * s)
        let agreed1 = (0..<sim.carCount).allSatisfy { sim.term(of: $0) == sim.term(of: 2) }
        let agreeTime1 = (0..<sim.carCount).compactMap { sim.agreedAt(car: $0) }.filter { $0 >= t1 }.max().map { Double($0 - t1) / 1e6 } ?? .nan
        let jumps1 = sim.jumps[before...].map { abs(Double($0.frames)) / 44.1 }.max() ?? 0
        let spread1 = sim.spreads.filter { $0.time >= t1 && $0.time < t1 + 20 * s }.map { $0.spread / 1e6 }.max() ?? .nan
        let before2 = sim.jumps.count
        sim.run(until: t2 + 20 * s)
        let final = sim.term(of: 0)
        let one = (0..<sim.carCount).allSatisfy { sim.term(of: $0) == final }
        let agreeTime2 = (0..<sim.carCount).compactMap { sim.agreedAt(car: $0) }.filter { $0 >= t2 }.max().map { Double($0 - t2) / 1e6 } ?? .nan
        let jumps2 = sim.jumps[before2...].map { abs(Double($0.frames)) / 44.1 }.max() ?? 0
        let spread2 = sim.spreads.filter { $0.time >= t2 && $0.time < t2 + 20 * s }.map { $0.spread / 1e6 }.max() ?? .nan
        sim.run(until: changes.last! + 20 * s)
        var applySpreads: [Double] = []
        let byChange = Dictionary(grouping: sim.switches.filter { $0.heard >= changes[0] }, by: { "\($0.term)/\($0.version)" })
        for (_, sw) in byChange where Set(sw.map(\.car)).count == sim.carCount {
            let times = sw.map(\.heard)
            applySpreads.append(Double(times.max()! - times.min()!) / 1e6)
            if debug { print("  change \(sw[0].term.number)/\(sw[0].version): " + sw.map { "car \($0.car) \(fmtd(Double($0.heard - times.min()!) / 1e6, 3))" }.joined(separator: ", ")) }
        }
        applySpreads.sort()
        print("\nDJ hand-over (Wi-Fi profile, 5 cars, ours):")
        print("  car 2 takes over at 60 s: every car on its term after \(fmtd(agreeTime1, 1)) ms: \(agreed1); largest jump heard \(fmtd(jumps1, 3)) ms (target ≤ 5 ms); max inter-car offset in the 20 s after \(fmtd(spread1, 4)) ms")
        print("  cars 3 and 4 press at the same instant at 100 s: one DJ everywhere: \(one) (term \(final)) after \(fmtd(agreeTime2, 1)) ms; largest jump \(fmtd(jumps2, 3)) ms; max offset after \(fmtd(spread2, 4)) ms")
        if !applySpreads.isEmpty {
            print("  scheduled changes (\(applySpreads.count) seeks/skips): spread of the instants cars apply them: median \(fmtd(applySpreads[applySpreads.count / 2], 4)) ms, max \(fmtd(applySpreads.last!, 4)) ms")
        }
    }
}

func pad(_ s: String, _ n: Int) -> String { s.count >= n ? s + " " : s + String(repeating: " ", count: n - s.count) }
func fmtd(_ v: Double, _ digits: Int = 2) -> String {
    v.isNaN ? "nan" : String(format: "%.\(digits)f", v)
}
