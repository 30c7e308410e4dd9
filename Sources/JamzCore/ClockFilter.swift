/// One four-timestamp exchange with a peer, as NTP: `t1` we sent (our clock), `t2` the peer
/// received and `t3` it answered (its clock), `t4` the answer arrived (our clock).
public struct ClockSample: Sendable, Equatable, Codable {
    public var t1: Nanos, t2: Nanos, t3: Nanos, t4: Nanos
    public init(t1: Nanos, t2: Nanos, t3: Nanos, t4: Nanos) {
        self.t1 = t1; self.t2 = t2; self.t3 = t3; self.t4 = t4
    }
    /// Peer clock − our clock, exact when both directions took equally long.
    public var offset: Nanos { ((t2 - t1) + (t3 - t4)) / 2 }
    /// Time on the wire, both ways (excludes the peer's turnaround).
    public var delay: Nanos { (t4 - t1) - (t3 - t2) }
    /// Our clock at the middle of the exchange: the instant `offset` describes.
    public var midpoint: Nanos { t1 + (t4 - t1) / 2 }
}

/// How far to trust an offset estimate.
public enum ClockQuality: Int, Sendable, Codable, Comparable {
    /// No usable sample yet.
    case none
    /// A few samples: the offset is usable, the frequency is not known yet.
    case coarse
    /// Enough samples over enough time that offset and frequency are both tracked.
    case locked
    public static func < (a: ClockQuality, b: ClockQuality) -> Bool { a.rawValue < b.rawValue }
}

/// What a clock filter knows about `peer clock − our clock`.
public struct ClockEstimate: Sendable, Equatable, Codable {
    /// Offset (peer − ours, ns) at our time `reference`, and how it changes: `ppm` is the peer's
    /// frequency relative to ours (parts per million), so the offset grows by `ppm`·1e-6 per ns.
    public var reference: Nanos
    public var offsetAtReference: Double
    public var ppm: Double
    /// Hard bound (ns): no path asymmetry can put the true offset further than half the smallest
    /// round trip away from what that round trip measured. This is the honest "± x ms" of status.
    public var bound: Nanos
    /// Statistical spread (ns) of the kept samples around the fit: how noisy the estimate is, not
    /// how biased it may be (a constant asymmetry is invisible to any exchange-based filter).
    public var spread: Nanos
    public var quality: ClockQuality
    public var samples: Int

    public init(reference: Nanos, offsetAtReference: Double, ppm: Double, bound: Nanos, spread: Nanos, quality: ClockQuality, samples: Int) {
        self.reference = reference; self.offsetAtReference = offsetAtReference; self.ppm = ppm
        self.bound = bound; self.spread = spread; self.quality = quality; self.samples = samples
    }

    /// Peer clock − our clock at our time `t`.
    public func offset(at t: Nanos) -> Double {
        offsetAtReference + ppm * 1e-6 * Double(t - reference)
    }
    /// The peer's clock reading at our time `t`.
    public func peerTime(at t: Nanos) -> Nanos { t + Nanos(offset(at: t).rounded()) }
    /// Our clock reading at the peer's time `p` (inverse of `peerTime`): solves
    /// `t + offset(t) = p` in closed form, relative to the reference so doubles stay exact.
    public func localTime(atPeer p: Nanos) -> Nanos {
        let k = ppm * 1e-6
        let d = (Double(p - reference) - offsetAtReference) / (1 + k)
        return reference + Nanos(d.rounded())
    }
}

/// Estimates a peer's clock offset and frequency from four-timestamp exchanges.
///
/// Queueing only ever adds delay, so the exchanges that took least time are the ones whose
/// two directions were most nearly equal. The window is cut into time slots; each slot keeps its
/// lowest-delay samples only, so one burst of congestion cannot fill the window, and the kept
/// samples span enough time to measure the frequency. A weighted straight-line fit through the
/// kept samples (weight falling with the delay above the window's minimum) gives the offset and
/// the ppm, so the estimate holds between exchanges and through packet loss.
///
/// On a jittery link an exchange whose two trips were both quick is rare, but a quick outbound
/// trip and a quick return are each common: each slot also remembers the exchange with the
/// shortest-looking outbound trip (least t2 − t1) and the one with the shortest return (greatest
/// t3 − t4), and, once the frequency is known, joins the two into one sample (the return carried
/// to the outbound's instant at the fitted frequency). Its "round trip" is the sum of the two
/// best one-way trips, so the fit leans on it; the true offset lies between the two, so it is
/// as honest a sample as a real one with that round trip (the hard bound still comes from real
/// round trips only).
public struct ClockFilter: Sendable {
    public struct Settings: Sendable, Equatable {
        /// Length of one slot of the window, and how many slots the window holds.
        public var slotLength: Nanos = 4 * nanosPerSecond
        public var slots: Int = 64
        /// Lowest-delay samples kept per slot.
        public var keepPerSlot: Int = 8
        /// Samples needed before the estimate is `.locked` and the span they must cover.
        public var lockSamples: Int = 8
        public var lockSpan: Nanos = 10 * nanosPerSecond
        /// A frequency error larger than this is not a clock: clamp the fit.
        public var maxPPM: Double = 500
        /// On a link whose round trips spread wider than this (p90 − p10), each slot also
        /// contributes its one-way bests (see `ClockFilter`); they stop when the spread falls
        /// below `oneWayBelow` (no flapping on a link that hovers at the threshold).
        public var oneWayAbove: Nanos = 1_200_000
        public var oneWayBelow: Nanos = 800_000
        public init() {}
    }

    public let settings: Settings
    private var kept: [ClockSample] = []
    private var total = 0
    private var recent: [Nanos] = []   // the last raw round trips, for the pacer
    /// Per slot: the exchange with the least t2 − t1, and the one with the greatest t3 − t4.
    private var bestOut: [Int64: ClockSample] = [:]
    private var bestBack: [Int64: ClockSample] = [:]
    private var oneWay = false
    public private(set) var estimate: ClockEstimate?

    public init(settings: Settings = Settings()) { self.settings = settings }

    /// Samples received so far (kept or not).
    public var received: Int { total }
    /// Spread (p90 − p10, ns) of the last 32 round trips: how jittery the link is (kept up to
    /// date by `add`: the pacer asks for it at every exchange).
    public private(set) var delaySpread: Nanos = 0
    /// The worst of the last 32 round trips (ns).
    public var recentMaxDelay: Nanos { recent.max() ?? 0 }

    /// Slots whose one-way bests are remembered (at most the window's).
    public var oneWaySlots: Int { bestOut.count }

    /// The samples the fit currently uses, oldest first.
    public var keptSamples: [ClockSample] { kept }

    /// Add an exchange. Samples with an impossible (negative) delay are ignored: they come from a
    /// peer whose clock stepped mid-exchange or a forged answer. Returns whether it was used.
    @discardableResult
    public mutating func add(_ s: ClockSample) -> Bool {
        guard s.delay >= 0, s.t4 >= s.t1 else { return false }
        total += 1
        recent.append(s.delay)
        if recent.count > 32 { recent.removeFirst() }
        if recent.count >= 4 {
            let d = recent.sorted()
            delaySpread = d[d.count * 9 / 10] - d[d.count / 10]
        }
        let slot = s.midpoint / settings.slotLength
        // Drop slots that fell out of the window; keep only the best samples of this slot.
        let oldest = slot - Int64(settings.slots) + 1
        kept.removeAll { $0.midpoint / settings.slotLength < oldest }
        if let b = bestOut[slot], b.t2 - b.t1 <= s.t2 - s.t1 {} else { bestOut[slot] = s }
        if let b = bestBack[slot], b.t3 - b.t4 >= s.t3 - s.t4 {} else { bestBack[slot] = s }
        // The window's slots only (after a long gap the old bests must not come back).
        bestOut = bestOut.filter { $0.key >= oldest }
        bestBack = bestBack.filter { $0.key >= oldest }
        let spread = delaySpread
        if spread > settings.oneWayAbove { oneWay = true } else if spread < settings.oneWayBelow { oneWay = false }
        let same = kept.indices.filter { kept[$0].midpoint / settings.slotLength == slot }
        if same.count >= settings.keepPerSlot {
            guard let worst = same.max(by: { kept[$0].delay < kept[$1].delay }), kept[worst].delay > s.delay else {
                refit(now: s.t4)
                return true
            }
            kept.remove(at: worst)
        }
        let at = kept.firstIndex { $0.midpoint > s.midpoint } ?? kept.endIndex
        kept.insert(s, at: at)
        refit(now: s.t4)
        return true
    }

    /// Forget everything (the peer restarted, so its clock is a new one).
    public mutating func reset() {
        kept.removeAll(); recent.removeAll(); total = 0; estimate = nil; delaySpread = 0
        bestOut.removeAll(); bestBack.removeAll(); oneWay = false
    }

    private struct Fit {
        var x0: Double, intercept: Double, slope: Double
        var spread: Double        // weighted residual rms
        var predictionVar: Double // sandwich variance of the offset predicted at the newest sample
    }

    /// Weighted straight-line fit with weights 1/(excess delay + floor)².
    private func fit(_ kept: [ClockSample], floor: Double, minDelay: Nanos, previousSlope: Double?) -> Fit {
        let x0 = Double(kept[kept.count / 2].midpoint)
        let ws = kept.map { s -> Double in let e = Double(s.delay - minDelay) + floor; return 1 / (e * e) }
        var sw = 0.0, sx = 0.0, sy = 0.0, sxx = 0.0, sxy = 0.0
        for (s, w) in zip(kept, ws) {
            let x = Double(s.midpoint) - x0, y = Double(s.offset)
            sw += w; sx += w * x; sy += w * y; sxx += w * x * x; sxy += w * x * y
        }
        let mx = sx / sw, my = sy / sw
        let vx = sxx / sw - mx * mx
        let span = kept.last!.midpoint - kept.first!.midpoint
        var slope = previousSlope ?? 0  // keep the frequency we had while the window refills
        let canFit = kept.count >= 3 && span >= settings.lockSpan / 4 && vx > 0
        if canFit {
            slope = (sxy / sw - mx * my) / vx
            slope = min(max(slope, -settings.maxPPM * 1e-6), settings.maxPPM * 1e-6)
        }
        let intercept = my - slope * mx
        // Influence of each sample on the value predicted at the newest sample, times its residual:
        // an estimate of that prediction's variance that assumes nothing about the delay law.
        let xs = Double(kept.last!.midpoint) - x0 - mx
        var r2 = 0.0, pv = 0.0
        for (s, w) in zip(kept, ws) {
            let x = Double(s.midpoint) - x0
            let r = Double(s.offset) - (intercept + slope * x)
            r2 += w * r * r
            let c = w / sw + (canFit ? xs * w * (x - mx) / (vx * sw) : 0)
            pv += c * c * r * r
        }
        return Fit(x0: x0, intercept: intercept, slope: slope, spread: (r2 / sw).squareRoot(), predictionVar: pv)
    }

    /// One sample per slot from its best outbound and best return trips (see `ClockFilter`),
    /// once the frequency is known and only on a jittery link.
    private func oneWaySamples() -> [ClockSample] {
        guard let e = estimate, e.quality == .locked, oneWay else { return [] }
        let k = e.ppm * 1e-6
        return bestOut.keys.sorted().compactMap { slot in
            // One exchange best both ways is already among the kept samples: not twice.
            guard let a = bestOut[slot], let b = bestBack[slot], a != b else { return nil }
            let down = Double(b.t3 - b.t4) + k * Double(a.midpoint - b.midpoint)
            let t3 = a.t4 + Nanos(down.rounded())
            let joined = ClockSample(t1: a.t1, t2: a.t2, t3: t3, t4: a.t4)
            return joined.delay >= 0 ? joined : nil
        }
    }

    private mutating func refit(now: Nanos) {
        guard let realMin = kept.map(\.delay).min() else { estimate = nil; return }
        let kept = (self.kept + oneWaySamples()).sorted { $0.midpoint < $1.midpoint }
        let minDelay = kept.map(\.delay).min()!
        // Weights fall with the delay above the window's minimum. How steeply depends on the link:
        // where the offset error grows with the delay (queueing), lean on the few quietest
        // exchanges; where it does not (plain jitter), use them all. Try a few floors, keep the fit
        // whose prediction varies least.
        let excess = kept.map { Double($0.delay - minDelay) }.sorted()
        let candidates = [excess.count / 20, excess.count / 10, excess.count / 4, excess.count / 2, excess.count - 1]
            .map { max(excess[$0], 1_000) }  // ≥ 1 µs: timestamp noise
        let previousSlope = estimate.map { $0.ppm * 1e-6 }
        var best: Fit?
        for floor in Set(candidates).sorted() {
            let f = fit(kept, floor: floor, minDelay: minDelay, previousSlope: previousSlope)
            if best == nil || f.predictionVar < best!.predictionVar { best = f }
        }
        let f = best!
        let span = kept.last!.midpoint - kept.first!.midpoint
        let quality: ClockQuality = self.kept.count >= settings.lockSamples && span >= settings.lockSpan ? .locked : .coarse
        estimate = ClockEstimate(
            reference: Nanos(f.x0), offsetAtReference: f.intercept, ppm: f.slope * 1e6,
            bound: realMin / 2, spread: Nanos(f.spread), quality: quality,
            samples: self.kept.count)
    }
}

/// When to run the next exchange with a peer: a burst at start, then slower as the estimate
/// locks; a noisy link keeps a faster pace because only its rare quiet exchanges count.
public struct ExchangePacer: Sendable {
    public var burstInterval: Nanos = 50 * 1_000_000
    public var burstCount = 16
    /// Interval once locked on a quiet link, and on a jittery one (delay spread ≫ `quietSpread`).
    public var steadyInterval: Nanos = 500_000_000
    public var noisyInterval: Nanos = 50 * 1_000_000
    public var quietSpread: Nanos = 1_000_000
    /// The longest interval while the estimate is still coarse (not yet locked).
    public var coarseInterval: Nanos = 250 * 1_000_000
    /// Exchanges sent back to back on a quiet link. The first datagram after a pause takes the
    /// cold path through the sender's network stack (and on Wi-Fi wakes the radio) while the
    /// answer, from a car that has just received, takes the warm one: a bias of tens of µs.
    /// The second of a pair takes the warm path both ways, and the filter, which weighs samples
    /// by their round trip, leans on it. On a jittery link the jitter dwarfs that: one is enough.
    public var quietBurst = 1
    public init() {}

    /// The pacer for one peer. Only the DJ's offset matters for playback: the others are kept
    /// warm at a slower pace so a take-over finds an estimate ready, and only the DJ's exchanges
    /// go in pairs while the music plays. While nothing plays, every pace is halved and a
    /// jittery link is paced as a quiet one, so an idle convoy stays cheap on air time; the
    /// window keeps its best samples, and the fast pace comes back the moment the music starts.
    ///
    /// Over a slow link (`slowLink`: the internet relay, where every exchange is mobile data and
    /// the path's jitter and asymmetry, tens of ms, bound what exchanges can tell; or Bluetooth
    /// LE, whose air time is dear and whose credit-based flow control stalls a channel sent to
    /// 20 times a second both ways). Once the first burst has given
    /// an estimate: with the DJ one a second while playing (4 s otherwise), with the others one
    /// every 10 s; when both cars have GPS time (which carries the sync; the exchanges only keep
    /// the hard bound that checks it) one every 10 s with the DJ and 30 s with the others.
    public static func forPeer(isDJ: Bool, playing: Bool, slowLink: Bool = false, gpsTime: Bool = false) -> ExchangePacer {
        var p = ExchangePacer()
        if !isDJ { p.steadyInterval *= 4; p.noisyInterval *= 10 }
        if playing && isDJ { p.quietBurst = 2 }
        if !playing { p.steadyInterval *= 2; p.noisyInterval = p.steadyInterval }
        if slowLink {
            p.quietBurst = 1
            let second: Nanos = 1_000_000_000
            let pace: Nanos = gpsTime ? (isDJ ? 10 : 30) * second : (isDJ ? (playing ? 1 : 4) : 10) * second
            p.steadyInterval = max(p.steadyInterval, pace)
            p.noisyInterval = max(p.noisyInterval, pace)
            p.coarseInterval = pace
        }
        return p
    }

    /// How many exchanges to send back to back now (see `quietBurst`).
    public func datagrams(delaySpread: Nanos) -> Int {
        delaySpread > quietSpread ? 1 : quietBurst
    }

    /// `sent`: exchanges started so far; `delaySpread`: spread of recent round trips.
    public func interval(sent: Int, quality: ClockQuality, delaySpread: Nanos) -> Nanos {
        if sent < burstCount || quality == .none { return burstInterval }
        let target = delaySpread > quietSpread ? noisyInterval : steadyInterval
        return quality == .locked ? target : min(target, coarseInterval)
    }
}
