/// Nanoseconds on a named clock. All times in TrafficJamz are integer nanoseconds.
public typealias Nanos = Int64

public let nanosPerSecond: Nanos = 1_000_000_000

/// The host's monotonic clock, passed in: nothing in the core reads a clock itself, so the
/// simulator can run hours of driving in seconds and tests can stop time.
public protocol HostClock: Sendable {
    /// Current time in nanoseconds on this car's monotonic clock.
    func now() -> Nanos
}

/// Frame and duration arithmetic without overflow for any realistic span.
public enum FrameMath {
    /// Whole frames played in `duration` nanoseconds at `rate` Hz (rounded toward −∞).
    public static func frames(in duration: Nanos, rate: Int) -> Int64 {
        let (hi, lo) = duration.multipliedFullWidth(by: Int64(rate))
        var (q, r) = nanosPerSecond.dividingFullWidth((hi, lo))
        if r < 0 { q -= 1; r += nanosPerSecond }
        return q
    }

    /// Nanoseconds taken by `frames` frames at `rate` Hz (rounded to nearest).
    public static func duration(ofFrames frames: Int64, rate: Int) -> Nanos {
        let (hi, lo) = frames.multipliedFullWidth(by: nanosPerSecond)
        let full = (high: hi, low: lo)
        let (q, r) = Int64(rate).dividingFullWidth(full)
        return r * 2 >= Int64(rate) ? q + 1 : (r * 2 <= -Int64(rate) ? q - 1 : q)
    }

    public static func seconds(ofFrames frames: Int64, rate: Int) -> Double {
        Double(frames) / Double(rate)
    }
}
