import Foundation
import JamzCore
import JamzNet
import TOMLKit

/// Everything `jamzd` can be told, from defaults, then the TOML file (`--config`), then flags.
/// A bad file never stops the music: each problem is reported (and counted) and that setting
/// keeps its default.
public struct DaemonConfig: Sendable, Equatable {
    public var dataDir = "/var/lib/jamz"
    public var socket = "/run/jamz/jamz.sock"
    /// `alsa:DEVICE` or `file:PATH`.
    public var output = "alsa:default"
    public var sampleRate = 44_100
    /// Fixed DAC/amplifier latency of the board, milliseconds.
    public var boardLatencyMs = 0.0
    /// ALSA buffer length, milliseconds.
    public var bufferMs = 100
    public var maxTracks = 50
    public var maxBytes: Int64 = 2 << 30
    public var defaultVolume = 70
    /// After a power cut the music comes back at no more than this volume …
    public var resumeVolumeCap = 60
    /// … fading in over this long.
    public var resumeFadeMs = 1500
    /// SIGTERM fades out over this long before saving and exiting.
    public var stopFadeMs = 300
    /// Test hooks: skew this daemon's clock as a car's own crystal would be.
    public var clockOffsetMs = 0.0
    public var clockDriftPPM = 0.0
    /// The car's name as the other cars see it (default: the host name).
    public var carName: String = {
        var buf = [CChar](repeating: 0, count: 256)
        return gethostname(&buf, buf.count) == 0 ? String(cString: buf) : "car"
    }()
    /// UDP port of the convoy link (the same in every car; 0 disables the link).
    public var convoyPort = 47_800
    /// The internet relay (an MQTT broker reached over the car's modem): off unless `relay.url`
    /// is set. A relay setting that cannot work turns the relay off, with a message.
    public var relay: RelayTransport.Settings?
    /// The Bluetooth controller (hciN) the convoy advertises and scans on; -1: none. A car
    /// without it (or a kernel without Bluetooth) says so once and uses its other links.
    public var bleController = 0
    /// gpsd's address; port 0: no GPS in this car.
    public var gpsHost = "localhost"
    public var gpsPort = 2947
    /// Location history: full rate for the last hour, thinned before, dropped after this many days.
    public var historyDays = 7
    /// The spoken prompts' directory (`--prompts-dir`, `prompts.dir`); overrides the board file's.
    public var promptsDir: String?
    /// Another car is "together" with this one within this radius (left beyond 1.25 ×) for this long.
    public var togetherRadiusM = 2000.0
    public var togetherDwellS = 10.0
    /// Test hook (flag only): this host's wall clock is declared GPS/PPS-disciplined with this
    /// accuracy (ns), as chrony with a PPS receiver would make it: the cars of a test run on one
    /// machine share its true wall clock (a device boundary; no GPS receiver here).
    public var testGPSTimeAccuracy: Nanos?
    /// Test hook (flag only, never in the TOML file): delay, jitter and loss added to every
    /// convoy datagram this daemon sends, because the test machine's kernel has no netem.
    public var testLinkImpairment: LinkImpairment?
    /// The passengers' phone page: HOST:PORT addresses to serve it on (`page.listen`,
    /// `--page-listen`); empty: off.
    public var pageListen: [String] = []
    /// The page's 6-digit pairing PIN (`page.pin`, `--page-pin`); nil: a random one per boot.
    public var pagePin: String?
    /// The largest MP3 a phone may upload, MB (nil: the board's, else 50).
    public var pageMaxUploadMB: Int?
    /// The board file (`--board`, or `board = "…"` here): buttons, encoders, ignition, audio overrides.
    public var boardPath: String?
    /// The board file as loaded (`loadBoard`), and what was wrong with it.
    public var board: BoardConfig?
    public var boardProblems: [String] = []

    /// Reads and applies the board file: its [audio] overrides `output` and `board_latency_ms`
    /// (command-line flags applied later still win). A file that cannot be read is one problem.
    public mutating func loadBoard(_ path: String) {
        boardPath = path
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
            board = nil
            boardProblems = ["cannot read board file \(path): \(String(cString: strerror(errno))); no buttons, no ignition sense"]
            return
        }
        let (b, problems) = BoardConfig.parse(toml: text, file: path)
        board = b
        boardProblems = problems
        if let o = b.output { output = o }
        if let l = b.latencyMs { boardLatencyMs = l }
    }

    /// Sets the test link impairment from its spec; returns what is wrong with it, if anything.
    public mutating func setTestLinkImpairment(_ spec: String) -> String? {
        do { testLinkImpairment = try LinkImpairment(spec: spec); return nil } catch { return error.description }
    }

    public init() {}

    public var format: AudioFormat { AudioFormat(sampleRate: sampleRate, channels: 2) }

    /// Applies a TOML document; returns one line per problem (unknown key, wrong type, out of range).
    public mutating func apply(toml text: String) -> [String] {
        let table: TOMLTable
        do { table = try TOMLTable(string: text) } catch {
            return ["config is not valid TOML (\(error)); using defaults"]
        }
        var problems: [String] = []
        func walk(_ t: TOMLTable, _ prefix: String) {
            for key in t.keys {
                let name = prefix.isEmpty ? key : "\(prefix).\(key)"
                guard let v = t[key] else { continue }
                if let sub = v.table { walk(sub, name); continue }
                if let p = set(name, v) { problems.append(p) }
            }
        }
        walk(table, "")
        if let p = checkRelay() { problems.append(p) }
        return problems
    }

    /// A relay whose settings do not go together is turned off; returns why.
    public mutating func checkRelay() -> String? {
        guard let r = relay else { return nil }
        if r.url.isEmpty {
            relay = nil
            return "config relay: relay.url is not set; the relay stays off"
        }
        do { _ = try r.endpoint(); return nil } catch {
            relay = nil
            return "config \(error.description); the relay stays off"
        }
    }

    private mutating func set(_ key: String, _ v: any TOMLValueConvertible) -> String? {
        func int(_ range: ClosedRange<Int>, _ apply: (inout DaemonConfig, Int) -> Void) -> String? {
            guard let i = v.int else { return "config \(key): expected an integer" }
            guard range.contains(i) else { return "config \(key) = \(i): must be in \(range.lowerBound)...\(range.upperBound)" }
            apply(&self, i); return nil
        }
        func num(_ range: ClosedRange<Double>, _ apply: (inout DaemonConfig, Double) -> Void) -> String? {
            guard let d = v.double ?? v.int.map(Double.init) else { return "config \(key): expected a number" }
            guard range.contains(d) else { return "config \(key) = \(d): must be in \(range.lowerBound)...\(range.upperBound)" }
            apply(&self, d); return nil
        }
        func str(_ check: (String) -> String?, _ apply: (inout DaemonConfig, String) -> Void) -> String? {
            guard let s = v.string else { return "config \(key): expected a string" }
            if let why = check(s) { return "config \(key) = \"\(s)\": \(why)" }
            apply(&self, s); return nil
        }
        let anyPath: (String) -> String? = { $0.isEmpty ? "must not be empty" : nil }
        // One [relay] setting; `checkRelay` sees whether they go together once all are read.
        func relay(_ check: (String) -> String?, _ set: (inout RelayTransport.Settings, String) -> Void) -> String? {
            str(check) { c, v in
                var r = c.relay ?? .init(url: "")
                set(&r, v)
                c.relay = r
            }
        }
        switch key {
        case "data_dir": return str(anyPath) { $0.dataDir = $1 }
        case "socket": return str(anyPath) { $0.socket = $1 }
        case "output": return str(DaemonConfig.checkOutput) { $0.output = $1 }
        case "board": return str(anyPath) { $0.boardPath = $1 }
        case "audio.sample_rate": return int(8000...192_000) { $0.sampleRate = $1 }
        case "audio.board_latency_ms": return num(0...1000) { $0.boardLatencyMs = $1 }
        case "audio.buffer_ms": return int(20...1000) { $0.bufferMs = $1 }
        case "cache.max_tracks": return int(1...1_000_000) { $0.maxTracks = $1 }
        case "cache.max_bytes": return int(1 << 20...Int.max) { $0.maxBytes = Int64($1) }
        case "player.default_volume": return int(0...100) { $0.defaultVolume = $1 }
        case "player.stop_fade_ms": return int(0...10_000) { $0.stopFadeMs = $1 }
        case "resume.volume_cap": return int(0...100) { $0.resumeVolumeCap = $1 }
        case "resume.fade_in_ms": return int(0...30_000) { $0.resumeFadeMs = $1 }
        case "convoy.car_name": return str({ $0.isEmpty || $0.utf8.count > 64 ? "1 to 64 bytes" : nil }) { $0.carName = $1 }
        case "convoy.port": return int(0...65_535) { $0.convoyPort = $1 }
        case "convoy.together_radius_m": return num(10...1_000_000) { $0.togetherRadiusM = $1 }
        case "convoy.together_dwell_s": return num(0...3600) { $0.togetherDwellS = $1 }
        case "relay.url": return relay(anyPath) { $0.url = $1 }
        case "relay.ca_file": return relay(anyPath) { $0.caFile = $1 }
        case "relay.username": return relay(anyPath) { $0.username = $1 }
        case "relay.password": return relay({ _ in nil }) { $0.password = $1 }
        case "relay.cert_file": return relay(anyPath) { $0.certFile = $1 }
        case "relay.key_file": return relay(anyPath) { $0.keyFile = $1 }
        case "ble.controller": return int(-1...63) { $0.bleController = $1 }
        case "page.listen":
            return str({ PageServer.address($0) == nil ? "expected HOST:PORT" : nil }) { $0.pageListen = [$1] }
        case "page.pin": return str(DaemonConfig.checkPIN) { $0.pagePin = $1 }
        case "page.max_upload_mb": return int(1...2048) { $0.pageMaxUploadMB = $1 }
        case "gps.host": return str({ $0.isEmpty ? "must not be empty" : nil }) { $0.gpsHost = $1 }
        case "gps.port": return int(0...65_535) { $0.gpsPort = $1 }
        case "prompts.dir": return str(anyPath) { $0.promptsDir = $1 }
        case "gps.history_days": return int(1...3650) { $0.historyDays = $1 }
        default: return "config \(key): unknown setting (ignored)"
        }
    }

    /// `--gpsd HOST:PORT` or `off`; returns what is wrong, if anything.
    public mutating func setGPSD(_ spec: String) -> String? {
        if spec == "off" { gpsPort = 0; return nil }
        guard let colon = spec.lastIndex(of: ":"), let port = Int(spec[spec.index(after: colon)...]), (1...65_535).contains(port),
              colon > spec.startIndex else { return "expected HOST:PORT (e.g. localhost:2947) or off" }
        gpsHost = String(spec[..<colon]); gpsPort = port
        return nil
    }

    public static func checkPIN(_ s: String) -> String? {
        s.count == 6 && s.allSatisfy({ $0.isASCII && $0.isNumber }) ? nil : "expected 6 digits"
    }

    public static func checkPageListen(_ s: String) -> String? {
        PageServer.address(s) == nil ? "expected HOST:PORT (e.g. 10.42.0.1:8080)" : nil
    }

    public static func checkOutput(_ s: String) -> String? {
        if s.hasPrefix("alsa:") && s.count > 5 { return nil }
        if s.hasPrefix("file:") && s.count > 5 { return nil }
        return "expected alsa:DEVICE or file:PATH"
    }
}
