/// A track is named by the SHA-256 of its MP3 file (lower-case hex): the same bytes are the same
/// track in every car, which is what lets cars fetch tracks from each other by content.
public struct TrackID: Hashable, Sendable, Codable, CustomStringConvertible, Comparable {
    public let hex: String

    public init?(hex: String) {
        let lower = hex.lowercased()
        guard lower.utf8.count == 64, lower.utf8.allSatisfy({ (48...57).contains($0) || (97...102).contains($0) }) else {
            return nil
        }
        self.hex = lower
    }

    /// The id of 32 raw digest bytes (a SHA-256 just computed, or read off the wire).
    public init?(digest: some Sequence<UInt8>) {
        self.init(hex: Hex.encode(digest))
    }

    public var description: String { hex }
    /// The first 12 hex digits: enough to name a track on a command line.
    public var short: String { String(hex.prefix(12)) }

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

    public static func < (a: TrackID, b: TrackID) -> Bool { a.hex < b.hex }
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
