import JamzCore

/// Which synchronisation each car runs. `jamz` is the real JamzCore; the other two are
/// reference implementations measured in the same run, on the same network and hardware.
public enum SyncPolicy: String, Sendable, CaseIterable {
    /// JamzCore: lowest-delay sliding-window clock filter with frequency tracking, GPS-time
    /// fusion, timeline in the DJ clock, PI render controller (≤ 500 ppm), fade-and-jump > 20 ms.
    case jamz
    /// The seed's algorithm: the DJ sends its position every second; a follower expects that
    /// position plus half a round trip and seeks when it is more than 2 s off. No rate correction.
    case seed
    /// Snapcast's: clock offset = median of the last 200 exchange offsets (no frequency
    /// tracking), ±0.1 ms dead band, single-frame insert/drop proportional to the error
    /// (≤ 500 ppm), hard resync beyond 50 ms.
    case snapcast
}

/// Snapcast's offset estimate: the median of the last 200 exchange offsets.
struct MedianOffset {
    private var values: [Nanos] = []
    mutating func add(_ s: ClockSample) {
        values.append(s.offset)
        if values.count > 200 { values.removeFirst() }
    }
    var offset: Nanos? {
        guard !values.isEmpty else { return nil }
        let v = values.sorted()
        return v[v.count / 2]
    }
}

/// Snapcast-style player correction: nothing inside ±0.1 ms, frame insert/drop at a rate
/// proportional to the error (error / 1 s, at most 500 ppm), hard resync beyond 50 ms.
struct ProportionalInserter {
    let rate: Int
    var carry = 0.0
    mutating func decide(error: Double, blockFrames: Int) -> RenderController.Action {
        let errMs = error / Double(rate) * 1000
        if abs(errMs) > 50 { carry = 0; return .jump(Int64((-error).rounded())) }
        guard abs(errMs) > 0.1 else { return .none }
        let ppm = min(max(errMs * 1000, -500), 500)  // error(ms)/1 s in ppm
        carry += ppm * 1e-6 * Double(blockFrames)
        let n = carry.rounded(.towardZero)
        carry -= n
        return n == 0 ? .none : .adjust(Int(n))
    }
}
