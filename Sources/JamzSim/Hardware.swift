import JamzCore

/// A car's monotonic clock against true time: its own origin (up to ±1 h apart), a crystal
/// frequency error (±100 ppm) and a slow temperature wander around it.
public struct SimClock: Sendable {
    public var origin: Nanos
    public var ppm: Double
    public var wanderPPM: Double
    public var wanderPeriod: Double  // ns

    public init(origin: Nanos, ppm: Double, wanderPPM: Double = 0, wanderPeriod: Double = 600e9) {
        self.origin = origin; self.ppm = ppm; self.wanderPPM = wanderPPM; self.wanderPeriod = wanderPeriod
    }

    /// This clock's reading at true time `t`.
    public func local(_ t: Nanos) -> Nanos {
        let x = Double(t)
        var drift = ppm * 1e-6 * x
        if wanderPPM != 0 {
            drift += wanderPPM * 1e-6 * wanderPeriod / (2 * Double.pi) * (1 - cosine(2 * Double.pi * x / wanderPeriod))
        }
        return origin + t + Nanos(drift.rounded())
    }
}

/// A DAC whose crystal runs `ppm` off nominal, started at true time `start`, with a fixed
/// output latency (the board setting, known to the car).
public struct SimDAC: Sendable {
    public var rate: Int
    public var ppm: Double
    public var start: Nanos
    public var latency: Nanos

    /// Frames the DAC has read from its buffer by true time `t`.
    func consumed(at t: Nanos) -> Int64 {
        t <= start ? 0 : Int64((Double(t - start) * Double(rate) * (1 + ppm * 1e-6) / 1e9).rounded(.down))
    }
    /// Output slot heard at true time `t` and how far into it (0..<1); nil before the first.
    func slot(at t: Nanos) -> (Int64, Double)? {
        let x = Double(t - start - latency) * Double(rate) * (1 + ppm * 1e-6) / 1e9
        guard x >= 0 else { return nil }
        let k = x.rounded(.down)
        return (Int64(k), x - k)
    }
    /// True time at which slot `k` is heard.
    func heardTime(ofSlot k: Int64) -> Nanos {
        start + latency + Nanos((Double(k) * 1e9 / (Double(rate) * (1 + ppm * 1e-6))).rounded())
    }
    /// True time at which the DAC has read `frames` frames.
    func time(whenConsumed frames: Int64) -> Nanos {
        start + Nanos((Double(frames) * 1e9 / (Double(rate) * (1 + ppm * 1e-6))).rounded(.up))
    }
}

/// What a car wrote to its DAC, as runs: from output slot `slot` on, content frame `content`
/// (global playlist frame) and one more per slot; nil content is silence.
struct OutputLog {
    struct Run { var slot: Int64; var content: Int64? }
    private(set) var runs: [Run] = []
    private var cursor = 0

    mutating func append(slot: Int64, content: Int64?) {
        if let last = runs.last {
            if last.slot == slot { runs[runs.count - 1].content = content; return }
            // A continuation of the same run needs no new entry.
            if let c = last.content, let n = content, n == c + (slot - last.slot) { return }
            if last.content == nil && content == nil { return }
        }
        runs.append(Run(slot: slot, content: content))
    }

    /// Content heard at slot `k` plus `phase` (fractional frames), for monotonically growing `k`.
    mutating func content(atSlot k: Int64, phase: Double) -> Double? {
        guard !runs.isEmpty, k >= runs[0].slot else { return nil }
        if cursor >= runs.count { cursor = runs.count - 1 }
        while cursor + 1 < runs.count, runs[cursor + 1].slot <= k { cursor += 1 }
        while cursor > 0, runs[cursor].slot > k { cursor -= 1 }
        guard let c = runs[cursor].content else { return nil }
        return Double(c + (k - runs[cursor].slot)) + phase
    }

    /// Forget runs before the one in use (memory stays flat in long runs).
    mutating func trim() {
        if cursor > 1024 { runs.removeFirst(cursor - 1); cursor = 1 }
    }
}

import Foundation
@inline(__always) func cosine(_ x: Double) -> Double { Foundation.cos(x) }
