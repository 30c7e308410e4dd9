/// What gpsd says about time: a TOFF report (the GPS time of a fix's second against the host's
/// wall clock when the sentence arrived: NMEA latency, tens of ms of jitter) or a PPS report (the
/// GPS second against the host's wall clock at the pulse edge: microseconds, when the receiver
/// has a PPS line and the kernel timestamps it).
public struct GPSTimeReport: Sendable, Equatable, Codable {
    public enum Kind: String, Sendable, Codable { case toff, pps }
    public var kind: Kind
    /// The GPS's idea of the instant, UTC ns since the Unix epoch (gpsd's `real`).
    public var gpsTime: Nanos
    /// The host wall clock at that instant, as gpsd read it (gpsd's `clock`).
    public var hostTime: Nanos
    /// When the report reached us: our monotonic clock and our wall clock read together.
    public var receivedMono: Nanos
    public var receivedWall: Nanos

    public init(kind: Kind, gpsTime: Nanos, hostTime: Nanos, receivedMono: Nanos, receivedWall: Nanos) {
        self.kind = kind; self.gpsTime = gpsTime; self.hostTime = hostTime
        self.receivedMono = receivedMono; self.receivedWall = receivedWall
    }

    /// How far the host wall clock is ahead of GPS time (ns).
    public var hostClockError: Nanos { hostTime - gpsTime }

    /// Stated accuracy of one report: a PPS edge 20 µs plus 100 ppm of free-running crystal
    /// since the pulse; a TOFF 100 ms (when an NMEA sentence arrives says little about the second).
    public var accuracy: Nanos {
        switch kind {
        case .pps: 20_000 + max(0, receivedWall - hostTime) / 10_000
        case .toff: 100_000_000
        }
    }

    /// The reading the sync core's `WallMapping` takes: GPS time at our mono instant of receipt
    /// (our wall clock corrected by the measured error). Only a PPS report counts as
    /// disciplined. Give `WallMapping.add` PPS reports only: it drops all its readings when
    /// handed one that is not disciplined (a TOFF), by design (the clock lost its discipline).
    public var wallClockSample: WallClockSample {
        WallClockSample(mono: receivedMono, wall: receivedWall - hostClockError, accuracy: accuracy,
                        ppsDisciplined: kind == .pps)
    }
}
