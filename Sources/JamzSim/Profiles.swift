import JamzCore

/// The network profiles of the sync issue, shared by `jamz-bench sync` and the tests.
public struct SyncProfile: Sendable, CustomStringConvertible {
    public var name: String
    public var cars: Int
    public var link: LinkProfile
    /// Every car GPS-PPS disciplined to this accuracy (nil: no GPS).
    public var gpsAccuracy: Nanos?
    /// The target for JamzCore, as the issue states it.
    public var target: String

    public var description: String { name }

    static func ms(_ v: Double) -> Nanos { Nanos(v * 1e6) }

    public static let lan = SyncProfile(name: "LAN", cars: 5,
        link: .symmetric("LAN", .normal(mean: ms(0.2), sd: ms(0.05), floor: ms(0.05))), gpsAccuracy: nil, target: "p99 ≤ 0.05 ms")
    public static let wifi = SyncProfile(name: "Wi-Fi", cars: 5,
        link: .symmetric("Wi-Fi", .exponential(base: ms(3), mean: ms(3)), loss: 0.02), gpsAccuracy: nil, target: "p99 ≤ 0.3 ms")
    public static let jitter = SyncProfile(name: "jitter", cars: 5,
        link: .symmetric("jitter", .exponential(base: ms(20), mean: ms(10))), gpsAccuracy: nil, target: "p99 ≤ 0.3 ms")
    public static let lte = SyncProfile(name: "LTE/satellite", cars: 5,
        link: LinkProfile(name: "LTE", up: .exponential(base: ms(40), mean: ms(20)), down: .exponential(base: ms(40), mean: ms(20)),
                          loss: 0.02, outageEvery: 15 * nanosPerSecond, outageLength: nanosPerSecond),
        gpsAccuracy: nil, target: "p99 ≤ 1 ms")
    public static let asymmetricGPS = SyncProfile(name: "asym+GPS", cars: 5,
        link: LinkProfile(name: "asym", up: .constant(ms(5)), down: .constant(ms(40))), gpsAccuracy: 10_000, target: "p99 ≤ 1 ms")
    public static let asymmetric = SyncProfile(name: "asym, no GPS", cars: 5,
        link: LinkProfile(name: "asym", up: .constant(ms(5)), down: .constant(ms(40))), gpsAccuracy: nil, target: "report the bound")
    public static let bigConvoy = SyncProfile(name: "32 cars Wi-Fi", cars: 32,
        link: wifi.link, gpsAccuracy: nil, target: "p99 ≤ 0.3 ms")
    /// Not in the table: heavy-tailed bursts, duplication and reordering, for the tests.
    public static let rough = SyncProfile(name: "rough", cars: 5,
        link: LinkProfile(name: "rough", up: .bursty(base: ms(8), mean: ms(4), burstChance: 0.05, burstScale: ms(30), alpha: 1.5),
                          down: .bursty(base: ms(8), mean: ms(4), burstChance: 0.05, burstScale: ms(30), alpha: 1.5),
                          loss: 0.05, duplicate: 0.02),
        gpsAccuracy: nil, target: "-")

    public static let all: [SyncProfile] = [lan, wifi, jitter, lte, asymmetricGPS, asymmetric, bigConvoy]

    /// A simulation config for this profile.
    public func config(seed: UInt64, policy: SyncPolicy = .jamz, cars: Int? = nil) -> Simulation.Config {
        var c = Simulation.Config(link: link)
        c.cars = cars ?? self.cars
        c.policy = policy
        c.gpsAccuracy = gpsAccuracy
        c.seed = seed
        return c
    }
}
