/// The control socket protocol: JSON lines over a Unix stream socket. A client writes one
/// `ControlRequest` per line; the daemon answers with zero or more progress lines
/// (`{"progress": …}`) and then exactly one reply line (`{"ok": true|false, …}`).
/// Documented in the README; `jamz` is one client of it.
public struct ControlRequest: Codable, Sendable, Equatable {
    public var cmd: String
    public var args: [String]
    public init(cmd: String, args: [String] = []) { self.cmd = cmd; self.args = args }

    enum CodingKeys: String, CodingKey { case cmd, args }

    /// `args` may be left out.
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        cmd = try c.decode(String.self, forKey: .cmd)
        args = try c.decodeIfPresent([String].self, forKey: .args) ?? []
    }
}

/// The last line of every answer. `message` is for people; `data` is for scripts and stable.
public struct ControlReply<Data: Sendable>: Sendable {
    public var ok: Bool
    public var message: String
    public var error: String?
    public var data: Data?
    public init(ok: Bool, message: String, error: String? = nil, data: Data? = nil) {
        self.ok = ok; self.message = message; self.error = error; self.data = data
    }
}

/// `jamz status --json`.
public struct StatusReport: Codable, Sendable, Equatable {
    public struct Track: Codable, Sendable, Equatable {
        public var id: String
        public var title: String
        public var artist: String
        public var album: String
        /// Seconds.
        public var duration: Double
        public init(id: String, title: String, artist: String, album: String, duration: Double) {
            self.id = id; self.title = title; self.artist = artist; self.album = album; self.duration = duration
        }
    }
    /// "playing", "paused" or "stopped".
    public var state = "stopped"
    public var track: Track?
    /// 1-based place of the current entry in the queue.
    public var queueIndex: Int?
    /// Seconds into the track heard at `sampledAt`.
    public var position = 0.0
    /// The same, exact: track frame heard at `sampledAt` (output rate).
    public var positionFrames: Int64 = 0
    /// The daemon's monotonic clock (ns) at which `position` is heard.
    public var sampledAt: Int64 = 0
    public var volume = 0
    public var queueLength = 0
    /// Which output plays, and how it is paced.
    public var output = ""
    public var sampleRate = 44_100
    /// Counters: bad input seen, cache activity, renderer corrections.
    public var counters: [String: Int64] = [:]
    /// The GPS (nil: no GPS configured).
    public var gps: GPSSummary?
    /// Buttons and ignition (nil: no board file).
    public var controls: ControlsReport?
    /// The phone page (nil: off).
    public var page: PageReport?
    public init() {}
}

/// The `page` part of `jamz status --json`: where the passengers' phone page is served and
/// the PIN that opens a session on it.
public struct PageReport: Codable, Sendable, Equatable {
    public var urls: [String]
    public var pin: String
    public init(urls: [String], pin: String) { self.urls = urls; self.pin = pin }
}

/// The `controls` part of `jamz status --json`: the board's input devices, the last gesture,
/// the ignition.
public struct ControlsReport: Codable, Sendable, Equatable {
    public struct Device: Codable, Sendable, Equatable {
        /// As the board file names it: `input "TrafficJamz Buttons"`, `gpio "DJ_BTN"`.
        public var device: String
        /// "open", "missing" or "stopped".
        public var state: String
        /// Where it was found (`/dev/input/event3`, `gpiochip0 line 17`).
        public var path: String?
        /// Why it is missing.
        public var problem: String?
        /// What it serves: button, encoder and ignition names.
        public var serves: [String]
        public init(device: String, state: String, path: String?, problem: String?, serves: [String]) {
            self.device = device; self.state = state; self.path = path; self.problem = problem; self.serves = serves
        }
    }
    public var devices: [Device] = []
    /// "dj long → take_control" and whether it was done.
    public var lastGesture: String?
    public var lastResult: String?
    /// "on", "off", "unknown", or "none" (no ignition sense on this board).
    public var acc = "none"
    /// Seconds until power-off while ACC is off.
    public var powerOffIn: Double?
    public init() {}
}

/// The `gps` part of `jamz status --json` (`jamz where` has the whole fix).
public struct GPSSummary: Codable, Sendable, Equatable {
    /// "connected", "connecting", "disconnected (why)".
    public var gpsd: String
    /// "3D", "2D", "no fix"; `stale` when the last fix is more than 3 s old.
    public var mode: String
    public var stale: Bool
    /// What the GPS says about the wall clock (PPS-disciplined or not, how well).
    public var clock: String
    public var ppsDisciplined: Bool
    public init(gpsd: String, mode: String, stale: Bool, clock: String, ppsDisciplined: Bool) {
        self.gpsd = gpsd; self.mode = mode; self.stale = stale; self.clock = clock; self.ppsDisciplined = ppsDisciplined
    }
}

/// One line of `jamz queue --json`.
public struct QueueItemReport: Codable, Sendable, Equatable {
    public var index = 0
    public var entry: Int64 = 0
    public var id = ""
    public var title = ""
    public var artist = ""
    public var duration = 0.0
    public var current = false
    public init() {}
}

/// `jamz cache --json`.
public struct CacheReport: Codable, Sendable, Equatable {
    public var tracks = 0
    public var bytes: Int64 = 0
    public var maxTracks = 0
    public var maxBytes: Int64 = 0
    public var hits: Int64 = 0
    public var misses: Int64 = 0
    public var hitRate: Double?
    public var evictions: Int64 = 0
    public init() {}
}

/// A progress line of `jamz import`.
public struct ImportProgressReport: Codable, Sendable, Equatable {
    public var done: Int
    public var total: Int
    public var file: String
    /// "added", "duplicate" or "skipped".
    public var result: String
    public var reason: String?
    public var title: String?
    public init(done: Int, total: Int, file: String, result: String, reason: String?, title: String?) {
        self.done = done; self.total = total; self.file = file; self.result = result; self.reason = reason; self.title = title
    }
}

extension ControlReply: Encodable where Data: Encodable {}
extension ControlReply: Decodable where Data: Decodable {}

/// A line before the reply (`jamz import`'s progress).
public struct ProgressLine<P: Sendable>: Sendable {
    public var progress: P
    public init(progress: P) { self.progress = progress }
}

extension ProgressLine: Encodable where P: Encodable {}
extension ProgressLine: Decodable where P: Decodable {}
