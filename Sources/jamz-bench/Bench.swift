import ArgumentParser

/// Benchmarks that print figures (percentiles, ratios against a peer measured in the same run).
@main
struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "jamz-bench", abstract: "TrafficJamz benchmarks", subcommands: [Playback.self, Sync.self, ConvoyBench.self, RelayLoad.self, GPSBench.self, Footprint.self])
}
