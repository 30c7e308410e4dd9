import Foundation
import JamzCore

/// A one-way delay distribution (nanoseconds).
public enum DelayModel: Sendable, Equatable, CustomStringConvertible {
    case constant(Nanos)
    /// Normal around `mean` with standard deviation `sd`, never below `floor`.
    case normal(mean: Nanos, sd: Nanos, floor: Nanos)
    /// `base` plus an exponential with mean `mean` (queueing).
    case exponential(base: Nanos, mean: Nanos)
    /// `base` + exponential(`mean`), and with probability `burstChance` an extra Pareto(α) burst
    /// with scale `burstScale` (heavy tail: a radio retransmitting, a bufferbloated modem).
    case bursty(base: Nanos, mean: Nanos, burstChance: Double, burstScale: Nanos, alpha: Double)

    public func sample(_ rng: inout SplitMix64) -> Nanos {
        switch self {
        case .constant(let d): return d
        case let .normal(mean, sd, floor):
            return max(floor, mean + Nanos((Double(sd) * rng.gaussian()).rounded()))
        case let .exponential(base, mean):
            return base + Nanos(Double(mean) * rng.exponential())
        case let .bursty(base, mean, chance, scale, alpha):
            var d = base + Nanos(Double(mean) * rng.exponential())
            if rng.unit() < chance {
                d += Nanos(Double(scale) * (pow1(1 - rng.unit(), -1 / alpha) - 1))
            }
            return d
        }
    }

    public var description: String {
        func ms(_ n: Nanos) -> String { fmt(Double(n) / 1e6) + " ms" }
        switch self {
        case .constant(let d): return ms(d)
        case let .normal(m, s, _): return "\(ms(m)) ± \(ms(s))"
        case let .exponential(b, m): return "\(ms(b)) + exp(\(ms(m)))"
        case let .bursty(b, m, c, s, a): return "\(ms(b)) + exp(\(ms(m))) + \(fmt(c * 100))% Pareto(\(fmt(a)), \(ms(s)))"
        }
    }
}

extension SplitMix64 {
    /// Standard normal (Box–Muller).
    public mutating func gaussian() -> Double {
        let u1 = max(unit(), 1e-300), u2 = unit()
        return (-2 * ln(u1)).squareRoot() * cos2pi(u2)
    }
    /// Exponential with mean 1.
    public mutating func exponential() -> Double { -ln(max(1 - unit(), 1e-300)) }
}

@inline(__always) func ln(_ x: Double) -> Double { Foundation.log(x) }
@inline(__always) func pow1(_ x: Double, _ y: Double) -> Double { Foundation.pow(x, y) }
@inline(__always) func cos2pi(_ u: Double) -> Double { Foundation.cos(2 * Double.pi * u) }

func fmt(_ v: Double, _ digits: Int = 3) -> String {
    if v.isNaN { return "nan" }
    if v.isInfinite { return v > 0 ? "inf" : "-inf" }
    return String(format: "%.\(digits)f", v)
}
