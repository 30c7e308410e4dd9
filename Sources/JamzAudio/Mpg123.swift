import Foundation
import CMPG123

/// An error from libmpg123, naming the call that failed.
public struct Mpg123Error: Error, CustomStringConvertible, Sendable {
    public let call: String
    public let message: String
    public var description: String { "\(call): \(message)" }
}

/// A thin wrapper around one libmpg123 handle: open a file, negotiate the fixed output format,
/// read PCM, seek by output frame. Every call is blocking: use it from a decoder or import
/// thread only, never from the Swift concurrency pool.
public final class Mpg123Handle {
    private let mh: OpaquePointer
    public let outputRate: Int
    public private(set) var isOpen = false

    /// A handle that always delivers signed 16-bit stereo at `outputRate`, gapless (encoder delay
    /// and padding removed), resampling and up-mixing other files as libmpg123 can.
    public init(outputRate: Int) throws {
        var err: Int32 = 0
        guard let h = mpg123_new(nil, &err) else {
            throw Mpg123Error(call: "mpg123_new", message: String(cString: mpg123_plain_strerror(err)))
        }
        mh = h
        self.outputRate = outputRate
        let flags = Int(MPG123_GAPLESS.rawValue | MPG123_QUIET.rawValue | MPG123_FORCE_STEREO.rawValue)
        try check("mpg123_param(FLAGS)", mpg123_param2(mh, Int32(MPG123_FLAGS.rawValue), flags, 0))
        // Never let libmpg123 pick another rate: force ours, with its resampler when needed.
        try check("mpg123_param(FORCE_RATE)", mpg123_param2(mh, Int32(MPG123_FORCE_RATE.rawValue), outputRate, 0))
        // After a seek, decode this many frames before the target to refill the layer III bit
        // reservoir: with the default (2) VBR files come back with different samples.
        try check("mpg123_param(PREFRAMES)", mpg123_param2(mh, Int32(MPG123_PREFRAMES.rawValue), 8, 0))
        try check("mpg123_format_none", mpg123_format_none(mh))
        try check("mpg123_format", mpg123_format(mh, outputRate, Int32(MPG123_STEREO.rawValue), Int32(MPG123_ENC_SIGNED_16.rawValue)))
    }

    deinit {
        if isOpen { mpg123_close(mh) }
        mpg123_delete(mh)
    }

    private func check(_ call: String, _ rc: Int32) throws {
        if rc != MPG123_OK.rawValue { throw Mpg123Error(call: call, message: String(cString: mpg123_strerror(mh))) }
    }

    public func open(path: String) throws {
        if isOpen { close() }
        try check("mpg123_open(\(path))", mpg123_open(mh, path))
        isOpen = true
        scanned = false
    }

    private var scanned = false

    public func close() {
        if isOpen { mpg123_close(mh); isOpen = false }
    }

    /// Reads up to `frames` stereo frames into `buffer`; returns the frames read, 0 at the end.
    public func read(into buffer: UnsafeMutableBufferPointer<Int16>) throws -> Int {
        var done = 0
        while true {
            let rc = mpg123_read(mh, buffer.baseAddress, buffer.count * 2, &done)
            switch rc {
            case MPG123_OK.rawValue, MPG123_NEW_FORMAT.rawValue:
                if done > 0 || rc == MPG123_OK.rawValue { return done / 4 }
                continue
            case MPG123_DONE.rawValue:
                return done / 4
            default:
                if done > 0 { return done / 4 }
                throw Mpg123Error(call: "mpg123_read", message: String(cString: mpg123_strerror(mh)))
            }
        }
    }

    /// Seeks so that the next frame read is output frame `frame`, exactly: the first seek of a
    /// file scans it for an exact frame index (a Xing table of contents is only approximate).
    @discardableResult
    public func seek(toFrame frame: Int64) throws -> Int64 {
        if !scanned && frame > 0 { try scan() }
        let pos = mpg123_seek(mh, off_t(frame), SEEK_SET)
        if pos < 0 { throw Mpg123Error(call: "mpg123_seek", message: String(cString: mpg123_strerror(mh))) }
        return Int64(pos)
    }

    /// Walks the whole file to build an exact seek index and length.
    public func scan() throws {
        try check("mpg123_scan", mpg123_scan(mh))
        scanned = true
    }

    /// True when the file has a LAME/Info tag (its encoder delay is known): only then is
    /// `length` before a full decode the encoder's word rather than an estimate from the size.
    public var hasInfoTag: Bool {
        var v: Int = -1
        var d: Double = 0
        guard mpg123_getstate2(mh, Int32(MPG123_ENC_DELAY.rawValue), &v, &d) == MPG123_OK.rawValue else { return false }
        return v >= 0
    }

    /// Length in output frames, or nil when unknown.
    public var length: Int64? {
        let n = mpg123_length(mh)
        return n < 0 ? nil : Int64(n)
    }

    /// The stream's own rate and channel count (from the first frame header).
    public func streamInfo() -> (rate: Int, channels: Int)? {
        var info = mpg123_frameinfo2()
        guard mpg123_info2(mh, &info) == MPG123_OK.rawValue else { return nil }
        return (Int(info.rate), info.mode == Int32(MPG123_M_MONO.rawValue) ? 1 : 2)
    }

    public struct Tags: Sendable, Equatable {
        public var title = ""
        public var artist = ""
        public var album = ""
        public var hasV1 = false
        public var hasV2 = false
    }

    /// ID3v2 fields (UTF-8, as libmpg123 converts them) win over ID3v1 (Latin-1) ones.
    public func tags() -> Tags {
        var t = Tags()
        guard mpg123_meta_check(mh) & Int32(MPG123_ID3) != 0 else { return t }
        var v1: UnsafeMutablePointer<mpg123_id3v1>?
        var v2: UnsafeMutablePointer<mpg123_id3v2>?
        guard mpg123_id3(mh, &v1, &v2) == MPG123_OK.rawValue else { return t }
        if let v1 {
            t.hasV1 = true
            t.title = latin1(v1.pointer(to: \.title)!, count: 30)
            t.artist = latin1(v1.pointer(to: \.artist)!, count: 30)
            t.album = latin1(v1.pointer(to: \.album)!, count: 30)
        }
        if let v2 {
            t.hasV2 = true
            if let s = string(v2.pointee.title), !s.isEmpty { t.title = s }
            if let s = string(v2.pointee.artist), !s.isEmpty { t.artist = s }
            if let s = string(v2.pointee.album), !s.isEmpty { t.album = s }
        }
        return t
    }

    private func string(_ p: UnsafeMutablePointer<mpg123_string>?) -> String? {
        guard let p, let base = p.pointee.p, p.pointee.fill > 0 else { return nil }
        let bytes = UnsafeRawPointer(base).assumingMemoryBound(to: UInt8.self)
        // `fill` counts the terminating zero; stop at the first zero in any case.
        let raw = UnsafeBufferPointer(start: bytes, count: p.pointee.fill).prefix { $0 != 0 }
        return String(decoding: raw, as: UTF8.self)
            .trimmingCharacters(in: .whitespaces)
    }

    private func latin1<T>(_ field: UnsafeMutablePointer<T>, count: Int) -> String {
        UnsafeRawPointer(field).withMemoryRebound(to: UInt8.self, capacity: count) { p in
            let bytes = UnsafeBufferPointer(start: p, count: count).prefix { $0 != 0 }
            return String(bytes.map { Character(Unicode.Scalar($0)) }).trimmingCharacters(in: .whitespaces)
        }
    }
}
