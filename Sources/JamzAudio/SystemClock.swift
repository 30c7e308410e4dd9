import Glibc
import JamzCore

/// The host's CLOCK_MONOTONIC, optionally skewed as a car's own crystal would be (test hooks
/// `--clock-offset-ms`, `--clock-drift-ppm`): reads come back as
/// `offset + raw + raw·ppm/1e6` measured from the first read.
public struct SystemClock: HostClock, SleepingClock {
    public let offset: Nanos
    public let driftPPM: Double
    /// Raw CLOCK_MONOTONIC at the first read: the drift is measured from here.
    public let origin: Nanos

    public init(offset: Nanos = 0, driftPPM: Double = 0) {
        self.offset = offset
        self.driftPPM = driftPPM
        self.origin = SystemClock.raw()
    }

    public static func raw() -> Nanos {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Nanos(ts.tv_sec) * nanosPerSecond + Nanos(ts.tv_nsec)
    }

    /// This clock's reading for a raw CLOCK_MONOTONIC time (ALSA timestamps are raw).
    public func fromRaw(_ raw: Nanos) -> Nanos {
        guard driftPPM != 0 else { return raw + offset }
        let since = raw - origin
        return raw + offset + Nanos((Double(since) * driftPPM / 1e6).rounded())
    }

    public func now() -> Nanos { fromRaw(SystemClock.raw()) }

    public func sleep(until t: Nanos) {
        let ahead = t - now()
        guard ahead > 0 else { return }
        let real = driftPPM == 0 ? ahead : Nanos(Double(ahead) / (1 + driftPPM / 1e6))
        var req = timespec(tv_sec: Int(real / nanosPerSecond), tv_nsec: Int(real % nanosPerSecond))
        var rem = timespec()
        while nanosleep(&req, &rem) == -1 && errno == EINTR { req = rem }
    }
}

/// A clock a device thread may block on (never the concurrency pool).
public protocol SleepingClock: HostClock {
    func sleep(until t: Nanos)
    /// Converts a raw CLOCK_MONOTONIC reading (as devices report) to this clock.
    func fromRaw(_ raw: Nanos) -> Nanos
}
