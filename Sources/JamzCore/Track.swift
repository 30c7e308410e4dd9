/// A track is named by the SHA-256 of its MP3 file: the same bytes are the same track in every
/// car, which is what lets cars fetch tracks from each other by content. Held as the digest's 32
/// bytes (four big-endian words: compared, hashed and put on the wire without a string); shown,
/// stored in SQLite, named on disk and encoded in JSON as 64 lower-case hex digits.
public struct TrackID: Hashable, Sendable, Codable, CustomStringConvertible, Comparable {
    /// The digest as four big-endian 64-bit words: their order is the bytes' order, which is
    /// the hex order.
    private let w0, w1, w2, w3: UInt64

    /// The id of 64 hex digits, either case; nil for anything else.
    public init?(hex: String) {
        let u = hex.utf8
        guard u.count == 64 else { return nil }
        var words: [UInt64] = []
        words.reserveCapacity(4)
        var w: UInt64 = 0
        for (i, c) in u.enumerated() {
            let d: UInt8
            switch c {
            case 48...57: d = c - 48
            case 97...102: d = c - 87
            case 65...70: d = c - 55
            default: return nil
            }
            w = w << 4 | UInt64(d)
            if i % 16 == 15 { words.append(w); w = 0 }
        }
        (w0, w1, w2, w3) = (words[0], words[1], words[2], words[3])
    }

    /// The id of 32 raw digest bytes (a SHA-256 just computed, or read off the wire); nil for
    /// any other count.
    public init?(digest: some Sequence<UInt8>) {
        var words: [UInt64] = []
        words.reserveCapacity(4)
        var w: UInt64 = 0, n = 0
        for b in digest {
            guard n < 32 else { return nil }
            w = w << 8 | UInt64(b)
            n += 1
            if n % 8 == 0 { words.append(w); w = 0 }
        }
        guard n == 32 else { return nil }
        (w0, w1, w2, w3) = (words[0], words[1], words[2], words[3])
    }

    /// The 32 digest bytes.
    public var bytes: [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(32)
        for w in [w0, w1, w2, w3] { for shift in stride(from: 56, through: 0, by: -8) { out.append(UInt8(truncatingIfNeeded: w >> UInt64(shift))) } }
        return out
    }

    /// 64 lower-case hex digits.
    public var hex: String { Hex.encode(bytes) }
    public var description: String { hex }
    /// The first 12 hex digits: enough to name a track on a command line.
    public var short: String { Hex.encode(bytes.prefix(6)) }

    public init(from decoder: any Decoder) throws {
        let s = try decoder.singleValueContainer().decode(String.self)
        guard let id = TrackID(hex: s) else {
            throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: "not a SHA-256 hex track id: \(s)"))
        }
        self = id
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.singleValueContainer()
        try c.encode(hex)
    }

    public static func < (a: TrackID, b: TrackID) -> Bool { (a.w0, a.w1, a.w2, a.w3) < (b.w0, b.w1, b.w2, b.w3) }
}

/// The PCM format every car renders: fixed by configuration, not by the files.
public struct AudioFormat: Sendable, Equatable, Codable {
    public var sampleRate: Int
    public var channels: Int
    public init(sampleRate: Int = 44_100, channels: Int = 2) {
        self.sampleRate = sampleRate
        self.channels = channels
    }
    public var bytesPerFrame: Int { channels * 2 }  // S16_LE
}

/// What the catalog knows about a track.
public struct TrackInfo: Sendable, Equatable, Codable {
    public var id: TrackID
    public var title: String
    public var artist: String
    public var album: String
    /// Exact length in frames at the output rate (what the decoder will produce, gapless).
    public var frames: Int64
    /// The file's own sample rate and channel count.
    public var sourceRate: Int
    public var sourceChannels: Int
    public var bytes: Int64

    public init(id: TrackID, title: String, artist: String, album: String, frames: Int64,
                sourceRate: Int, sourceChannels: Int, bytes: Int64) {
        self.id = id; self.title = title; self.artist = artist; self.album = album
        self.frames = frames; self.sourceRate = sourceRate; self.sourceChannels = sourceChannels; self.bytes = bytes
    }
}
