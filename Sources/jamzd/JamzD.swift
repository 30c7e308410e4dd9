import ArgumentParser
import Foundation
import JamzDaemon
import Logging

// What `jamzd --version` says: the CPU it was built for and the compiler (the aarch64 build
// is cross-compiled with another Swift than the host's: image/cross-arm64).
#if arch(arm64)
private let buildArch = "aarch64"
#elseif arch(x86_64)
private let buildArch = "x86_64"
#else
private let buildArch = "unknown CPU"
#endif
#if compiler(>=6.3)
private let builtWith = "Swift 6.3 or later"
#elseif compiler(>=6.2)
private let builtWith = "Swift 6.2"
#else
private let builtWith = "Swift before 6.2"
#endif

/// `jamzd`: the head unit's daemon. See README.md ("Running jamzd").
@main
struct JamzD: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "jamzd", abstract: "TrafficJamz head-unit daemon",
                                                    version: "jamzd (TrafficJamz) \(buildArch), built with \(builtWith)")

    @Option(help: "TOML configuration file") var config: String?
    @Option(help: "Folder for the database and the track cache") var dataDir: String?
    @Option(help: "Control socket path") var socket: String?
    @Option(help: "alsa:DEVICE or file:PATH (raw S16_LE stereo, paced in real time; may be a FIFO)") var output: String?
    @Option(help: "Log level: trace, debug, info, notice, warning, error, critical") var logLevel: String = "info"
    @Option(help: "Test hook: offset of this daemon's clock, ms") var clockOffsetMs: Double?
    @Option(help: "Test hook: drift of this daemon's clock and output pacing, ppm") var clockDriftPpm: Double?
    @Option(help: "The car's name as other cars see it (default: host name)") var carName: String?
    @Option(help: "The spoken prompts' directory (default /usr/share/jamz/prompts; missing: no prompts)") var promptsDir: String?
    @Option(help: "Test hook: impair every convoy datagram sent, DELAY_MS[+expMEAN_MS][,loss=P][,seed=N] (no netem here)") var testLinkImpair: String?
    @Option(help: "gpsd to read the position from: HOST:PORT (default localhost:2947) or off") var gpsd: String?
    @Option(help: "UDP port of the convoy link, the same in every car (0: no convoy link)") var convoyPort: Int?
    @Option(help: "Test hook: declare this host's wall clock GPS/PPS-disciplined with this accuracy, µs (the cars of a test share it)") var testGpsTime: Double?
    @Option(help: "Internet relay: mqtt://HOST:PORT or mqtts://HOST:PORT (the [relay] settings of the config file for TLS and credentials); off: no relay") var relay: String?
    @Option(help: "Board file (TOML): buttons, encoders, ignition sense, audio overrides (board/README.md)") var board: String?

    @Option(help: "Serve the passengers' phone page on HOST:PORT (repeatable; off by default)") var pageListen: [String] = []
    @Option(help: "The largest MP3 a phone may upload to the page, MB (default 50)") var pageMaxUploadMb: Int?
    @Option(help: "The phone page's 6-digit pairing PIN (default: the config's page.pin, else random per boot)") var pagePin: String?

    func run() async throws {
        // A FIFO sink whose reader leaves must not kill the daemon: writes fail with EPIPE instead.
        signal(SIGPIPE, SIG_IGN)
        let level = Logger.Level(rawValue: logLevel) ?? .info
        LoggingSystem.bootstrap { label in
            var h = StreamLogHandler.standardError(label: label)
            h.logLevel = level
            return h
        }
        let logger = Logger(label: "jamzd")
        var cfg = DaemonConfig()
        var problems: [String] = []
        if let path = config {
            do { problems = cfg.apply(toml: try String(contentsOfFile: path, encoding: .utf8)) } catch {
                problems = ["cannot read config \(path): \(error.localizedDescription); using defaults"]
            }
        }
        if let path = board ?? cfg.boardPath { cfg.loadBoard(path) }
        if let v = dataDir { cfg.dataDir = v }
        if let v = socket { cfg.socket = v }
        if let v = output {
            if let why = DaemonConfig.checkOutput(v) { throw ValidationError("--output \(v): \(why)") }
            cfg.output = v
        }
        if let v = clockOffsetMs { cfg.clockOffsetMs = v }
        if let v = clockDriftPpm { cfg.clockDriftPPM = v }
        if let v = carName { cfg.carName = v }
        if let v = promptsDir { cfg.promptsDir = v }
        if let v = convoyPort {
            guard (0...65_535).contains(v) else { throw ValidationError("--convoy-port \(v): must be 0...65535") }
            cfg.convoyPort = v
        }
        if let v = gpsd, let why = cfg.setGPSD(v) { throw ValidationError("--gpsd \(v): \(why)") }
        if let v = testGpsTime {
            guard v > 0, v <= 1_000_000 else { throw ValidationError("--test-gps-time \(v): an accuracy in µs, 0 < a ≤ 1000000") }
            cfg.testGPSTimeAccuracy = Int64(v * 1000)
        }
        if let v = relay {
            if v == "off" { cfg.relay = nil } else {
                cfg.relay = cfg.relay ?? .init(url: v)
                cfg.relay?.url = v
                if let why = cfg.checkRelay() { throw ValidationError("--relay \(v): \(why)") }
            }
        }
        if let v = testLinkImpair {
            if let why = cfg.setTestLinkImpairment(v) { throw ValidationError("--test-link-impair \(v): \(why)") }
        }
        for v in pageListen {
            if let why = DaemonConfig.checkPageListen(v) { throw ValidationError("--page-listen \(v): \(why)") }
        }
        if !pageListen.isEmpty { cfg.pageListen = pageListen }
        if let v = pageMaxUploadMb {
            guard (1...2048).contains(v) else { throw ValidationError("--page-max-upload-mb \(v): must be 1...2048") }
            cfg.pageMaxUploadMB = v
        }
        if let v = pagePin {
            if let why = DaemonConfig.checkPIN(v) { throw ValidationError("--page-pin: \(why)") }
            cfg.pagePin = v
        }
        try await Daemon.run(config: cfg, configProblems: problems, logger: logger)
    }
}

