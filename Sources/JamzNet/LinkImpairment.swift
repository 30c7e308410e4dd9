import Foundation
import JamzCore

/// TEST HOOK (`jamzd --test-link-impair`, never set on a car): an explicit impairment layer in the
/// LAN transport, because this machine's kernel has no netem. Every datagram this car sends is
/// held back by `delay` plus an exponentially distributed extra delay of mean `jitterMean`, or
/// dropped with probability `loss`. Datagrams may overtake each other, as on a real jittery
/// link. Set on every car, it impairs each direction of every path; set on one car only, it
/// makes the paths from that car slower than the paths to it (asymmetry).
///
/// Spec: `DELAY_MS[+expMEAN_MS][,loss=P][,seed=N]`, e.g. `20+exp10` or `5,loss=0.02`.
public struct LinkImpairment: Sendable, Equatable, CustomStringConvertible {
    public var delay: Nanos
    public var jitterMean: Nanos
    public var loss: Double
    public var seed: UInt64

    public init(delay: Nanos, jitterMean: Nanos = 0, loss: Double = 0, seed: UInt64 = 1) {
        self.delay = delay; self.jitterMean = jitterMean; self.loss = loss; self.seed = seed
    }

    /// Parses the spec; the error says what was wrong.
    public init(spec: String) throws(ImpairmentSpecError) {
        var parts = spec.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
        guard let head = parts.first, !head.isEmpty else { throw ImpairmentSpecError("empty impairment spec; expected DELAY_MS[+expMEAN_MS][,loss=P][,seed=N]") }
        parts.removeFirst()
        let delayJitter = head.split(separator: "+", maxSplits: 1, omittingEmptySubsequences: false).map(String.init)
        guard let d = Double(delayJitter[0]), d >= 0, d <= 10_000 else {
            throw ImpairmentSpecError("delay \"\(delayJitter[0])\" must be 0...10000 ms")
        }
        var jitter = 0.0
        if delayJitter.count == 2 {
            let j = delayJitter[1]
            guard j.hasPrefix("exp"), let m = Double(j.dropFirst(3)), m >= 0, m <= 10_000 else {
                throw ImpairmentSpecError("jitter \"\(j)\" must be expMEAN_MS with a mean of 0...10000 ms")
            }
            jitter = m
        }
        var loss = 0.0, seed: UInt64 = 1
        for p in parts {
            let kv = p.split(separator: "=", maxSplits: 1).map(String.init)
            guard kv.count == 2 else { throw ImpairmentSpecError("\"\(p)\" is not key=value") }
            switch kv[0] {
            case "loss":
                guard let l = Double(kv[1]), (0...1).contains(l) else { throw ImpairmentSpecError("loss \"\(kv[1])\" must be 0...1") }
                loss = l
            case "seed":
                guard let s = UInt64(kv[1]) else { throw ImpairmentSpecError("seed \"\(kv[1])\" must be an unsigned integer") }
                seed = s
            default: throw ImpairmentSpecError("unknown impairment key \"\(kv[0])\" (loss, seed)")
            }
        }
        self.init(delay: Nanos(d * 1e6), jitterMean: Nanos(jitter * 1e6), loss: loss, seed: seed)
    }

    /// The hold-back time of one datagram, or nil when it is lost.
    public func draw(_ rng: inout SplitMix64) -> Nanos? {
        if loss > 0, rng.unit() < loss { return nil }
        guard jitterMean > 0 else { return delay }
        // Inverse transform; 1 − u is in (0, 1] so the log is finite.
        return delay + Nanos((-Double(jitterMean) * log(1 - rng.unit())).rounded())
    }

    public var description: String {
        var s = "\(Double(delay) / 1e6) ms"
        if jitterMean > 0 { s += " + exp(\(Double(jitterMean) / 1e6) ms)" }
        if loss > 0 { s += ", loss \(loss)" }
        return s
    }
}

public struct ImpairmentSpecError: Error, CustomStringConvertible {
    public let description: String
    init(_ d: String) { description = d }
}
