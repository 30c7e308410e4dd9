/// A reading of a car's wall clock against its monotonic clock. When the wall clock is
/// disciplined by GPS PPS (gpsd + chrony), two cars' wall clocks agree to microseconds whatever
/// the radio link does, so their (wall − monotonic) mappings give a clock offset that no path
/// asymmetry can bias.
public struct WallClockSample: Sendable, Equatable, Codable {
    public var mono: Nanos
    /// Nanoseconds since the Unix epoch.
    public var wall: Nanos
    /// Stated bound on |wall − true time| (ns), e.g. chrony's root dispersion + offset.
    public var accuracy: Nanos
    public var ppsDisciplined: Bool
    public init(mono: Nanos, wall: Nanos, accuracy: Nanos, ppsDisciplined: Bool) {
        self.mono = mono; self.wall = wall; self.accuracy = accuracy; self.ppsDisciplined = ppsDisciplined
    }
}

/// One clock's wall − monotonic mapping (ours or a peer's) from its recent readings, with the
/// rate between the two clocks so the mapping holds between readings.
public struct WallMapping: Sendable {
    /// A wall clock is a sync source only when PPS-disciplined and at least this accurate.
    public static let usableAccuracy: Nanos = 1_000_000
    private var samples: [WallClockSample] = []
    public var capacity = 16
    /// Readings older than this (on the mono clock) are not extrapolated from.
    public var maxAge: Nanos = 30 * nanosPerSecond

    public init() {}

    public mutating func add(_ s: WallClockSample) {
        guard s.ppsDisciplined, s.accuracy <= Self.usableAccuracy else { samples.removeAll(); return }
        if let last = samples.last, s.mono <= last.mono { return }
        samples.append(s)
        if samples.count > capacity { samples.removeFirst() }
    }

    public var latest: WallClockSample? { samples.last }

    /// (wall − mono) at mono time `m` and the bound on it, or nil when there is no fresh usable reading.
    public func wallMinusMono(at m: Nanos) -> (value: Double, bound: Nanos)? {
        guard let last = samples.last, abs(m - last.mono) <= maxAge else { return nil }
        let base = Double(last.wall - last.mono)
        guard samples.count >= 2, let first = samples.first, last.mono > first.mono else {
            return (base, last.accuracy)
        }
        // The mapping drifts at the monotonic clock's frequency error (up to ~100 ppm).
        let rate = (Double(last.wall - last.mono) - Double(first.wall - first.mono)) / Double(last.mono - first.mono)
        let age = Double(m - last.mono)
        // Rate uncertainty: two readings' accuracy over the span they cover.
        let rateErr = 2 * Double(last.accuracy) / Double(last.mono - first.mono)
        return (base + rate * age, last.accuracy + Nanos(abs(age) * rateErr))
    }
}

public enum GPSTimeOffset {
    /// Peer monotonic − our monotonic at our time `t`, from both wall mappings: at the same true
    /// instant both wall clocks read the same (to their accuracy), so
    /// `peer mono − our mono = (our wall − our mono) − (peer wall − peer mono)`.
    public static func offset(local: WallMapping, peer: WallMapping, at t: Nanos) -> (offset: Double, bound: Nanos)? {
        guard let ours = local.wallMinusMono(at: t) else { return nil }
        // The peer's mapping is evaluated at the peer's mono time, which is t + offset: one fixed-point step.
        guard let peerLatest = peer.latest else { return nil }
        let roughOffset = ours.value - Double(peerLatest.wall - peerLatest.mono)
        guard let theirs = peer.wallMinusMono(at: t + Nanos(roughOffset.rounded())) else { return nil }
        return (ours.value - theirs.value, ours.bound + theirs.bound)
    }
}

public enum OffsetFusion {
    /// Fuse the network estimate and the GPS-time estimate by their bounds (inverse-square
    /// weights). The network bound is physics (half the round trip), the GPS one is stated by the
    /// clock discipline: if the GPS value falls outside the network interval it is wrong, so the
    /// result is always kept inside the network interval.
    public static func fuse(network: (offset: Double, bound: Nanos)?, gps: (offset: Double, bound: Nanos)?) -> (offset: Double, bound: Nanos, source: OffsetSource)? {
        switch (network, gps) {
        case (nil, nil): return nil
        case let (n?, nil): return (n.offset, n.bound, .network)
        case let (nil, g?): return (g.offset, g.bound, .gps)
        case let (n?, g?):
            let bn = Double(max(n.bound, 1)), bg = Double(max(g.bound, 1))
            let wn = 1 / (bn * bn), wg = 1 / (bg * bg)
            var o = (wn * n.offset + wg * g.offset) / (wn + wg)
            let lo = n.offset - bn, hi = n.offset + bn
            guard g.offset >= lo, g.offset <= hi else { return (n.offset, n.bound, .network) }
            o = min(max(o, lo), hi)
            let b = (wn * bn + wg * bg) / (wn + wg)
            return (o, Nanos(b.rounded(.up)), wg > wn ? .gps : .network)
        }
    }
}

/// Which source dominates a fused offset (shown in status).
public enum OffsetSource: String, Sendable, Codable {
    case network, gps
}
