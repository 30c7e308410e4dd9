/// Wire format version 1, the reading half of `WireCodec`: strict, canonical decoding of every
/// field type of `docs/wire.md`. Its little-endian integer reads are also the package's other
/// binary formats' (the Bluetooth management interface's, in JamzNet).
package struct WireReader {
    let bytes: [UInt8]
    var pos = 0

    package init(_ bytes: [UInt8]) { self.bytes = bytes }

    package var remaining: Int { bytes.count - pos }

    private mutating func take(_ n: Int, _ field: String) throws(WireError) -> Int {
        guard bytes.count - pos >= n else { throw .truncated(field: field) }
        defer { pos += n }
        return pos
    }

    package mutating func u8(_ f: String) throws(WireError) -> UInt8 {
        bytes[try take(1, f)]
    }
    package mutating func u16(_ f: String) throws(WireError) -> UInt16 {
        let p = try take(2, f)
        return UInt16(bytes[p]) | UInt16(bytes[p + 1]) << 8
    }
    package mutating func u32(_ f: String) throws(WireError) -> UInt32 {
        let p = try take(4, f)
        var v: UInt32 = 0
        for i in 0..<4 { v |= UInt32(bytes[p + i]) << (8 * i) }
        return v
    }
    package mutating func u64(_ f: String) throws(WireError) -> UInt64 {
        let p = try take(8, f)
        var v: UInt64 = 0
        for i in 0..<8 { v |= UInt64(bytes[p + i]) << (8 * i) }
        return v
    }
    /// `n` bytes as they are.
    package mutating func raw(_ n: Int, _ f: String) throws(WireError) -> [UInt8] {
        let p = try take(n, f)
        return Array(bytes[p..<(p + n)])
    }
    mutating func i32(_ f: String) throws(WireError) -> Int32 { Int32(bitPattern: try u32(f)) }
    mutating func i64(_ f: String) throws(WireError) -> Int64 { Int64(bitPattern: try u64(f)) }

    mutating func bool(_ f: String) throws(WireError) -> Bool {
        switch try u8(f) {
        case 0: return false
        case 1: return true
        case let b: throw .invalidEnum(field: f, byte: b)
        }
    }

    /// A u16 count, checked against `limit` before anything is read or allocated.
    mutating func count(_ f: String, limit: Int) throws(WireError) -> Int {
        let n = Int(try u16(f))
        guard n <= limit else { throw .overLimit(field: f, count: n, limit: limit) }
        return n
    }

    /// Reads `body` with any error's field put under `prefix`.
    mutating func nested<T>(_ prefix: String, _ body: (inout WireReader) throws(WireError) -> T) throws(WireError) -> T {
        do {
            return try body(&self)
        } catch {
            throw error.within(prefix)
        }
    }

    /// Presence byte (0 absent, 1 present), then the value.
    mutating func optional<T>(_ f: String, _ body: (inout WireReader) throws(WireError) -> T) throws(WireError) -> T? {
        switch try u8(f) {
        case 0: return nil
        case 1: return try nested(f, body)
        case let b: throw .invalidPresence(field: f, byte: b)
        }
    }

    mutating func string(_ f: String, limit: Int) throws(WireError) -> String {
        let n = try count(f, limit: limit)
        let p = try take(n, f)
        guard let s = String(validating: bytes[p ..< p + n], as: UTF8.self) else { throw .invalidUTF8(field: f) }
        return s
    }

    mutating func opID() throws(WireError) -> OpID {
        OpID(origin: MemberID(try u64("origin")), seq: try u64("seq"))
    }

    mutating func term() throws(WireError) -> Term {
        let number = try u64("number")
        return Term(number: number, dj: MemberID(try u64("dj")))
    }

    /// 32 raw bytes; any 32 bytes are a track id.
    mutating func track(_ f: String) throws(WireError) -> TrackID {
        let p = try take(32, f)
        return TrackID(digest: bytes[p..<(p + 32)])!
    }

    mutating func nonNegative(_ f: String) throws(WireError) -> Int64 {
        let v = try i64(f)
        guard v >= 0 else { throw .outOfRange(field: f, value: v) }
        return v
    }

    mutating func wall() throws(WireError) -> WallClockSample {
        let mono = try i64("mono")
        let wall = try i64("wall")
        let accuracy = try nonNegative("accuracy")
        let pps = try bool("ppsDisciplined")
        return WallClockSample(mono: mono, wall: wall, accuracy: accuracy, ppsDisciplined: pps)
    }

    mutating func position() throws(WireError) -> WirePosition {
        let lat = try i32("latitude")
        guard WirePosition.latitudeRange.contains(lat) else { throw .outOfRange(field: "latitude", value: Int64(lat)) }
        let lon = try i32("longitude")
        guard WirePosition.longitudeRange.contains(lon) else { throw .outOfRange(field: "longitude", value: Int64(lon)) }
        let accuracy = try u16("accuracy")
        let speed = try u16("speed")
        let heading = try u16("heading")
        guard heading < WirePosition.headingLimit else { throw .outOfRange(field: "heading", value: Int64(heading)) }
        let time = try i64("time")
        return WirePosition(latitude: lat, longitude: lon, accuracy: accuracy, speed: speed, heading: heading, time: time)
    }

    mutating func anchor() throws(WireError) -> TimelineAnchor {
        let entry = try nested("entry") { (r: inout WireReader) throws(WireError) in try r.opID() }
        let track = try track("track")
        let frame = try nonNegative("frame")
        let time = try i64("time")
        let rate: Int
        switch try u8("rate") {
        case 0: rate = 0
        case 1: rate = 1
        case let b: throw .invalidEnum(field: "rate", byte: b)
        }
        return TimelineAnchor(entry: entry, track: track, frame: frame, time: time, rate: rate)
    }

    mutating func timeline() throws(WireError) -> ConvoyTimeline {
        let term = try nested("term") { (r: inout WireReader) throws(WireError) in try r.term() }
        let version = try u64("version")
        let anchor = try optional("anchor") { (r: inout WireReader) throws(WireError) in try r.anchor() }
        let previous = try optional("previous") { (r: inout WireReader) throws(WireError) in try r.anchor() }
        return ConvoyTimeline(term: term, version: version, anchor: anchor, previous: previous)
    }

    /// Count, then (origin, mark) pairs with strictly increasing origins.
    mutating func highWater(_ f: String) throws(WireError) -> [MemberID: UInt64] {
        let n = try count(f, limit: WireLimits.origins)
        var map: [MemberID: UInt64] = [:]
        map.reserveCapacity(n)
        var last: UInt64?
        for i in 0..<n {
            do throws(WireError) {
                let origin = try u64("origin")
                if let last, origin <= last { throw WireError.keyOrder(field: "origin") }
                let mark = try u64("mark")
                last = origin
                map[MemberID(origin)] = mark
            } catch {
                throw error.within("[\(i)]").within(f)
            }
        }
        return map
    }

    mutating func op() throws(WireError) -> PlaylistOp {
        let id = try nested("id") { (r: inout WireReader) throws(WireError) in try r.opID() }
        let lamport = try u64("lamport")
        let term = try nested("term") { (r: inout WireReader) throws(WireError) in try r.term() }
        let edit = try nested("edit") { (r: inout WireReader) throws(WireError) -> PlaylistEdit in
            switch try r.u8("kind") {
            case 1:
                let track = try r.track("track")
                let frames = try r.nonNegative("frames")
                let after = try r.optional("after") { (r: inout WireReader) throws(WireError) in try r.opID() }
                return .add(track: track, frames: frames, after: after)
            case 2:
                return .remove(entry: try r.nested("entry") { (r: inout WireReader) throws(WireError) in try r.opID() })
            case 3:
                let entry = try r.nested("entry") { (r: inout WireReader) throws(WireError) in try r.opID() }
                let after = try r.optional("after") { (r: inout WireReader) throws(WireError) in try r.opID() }
                return .move(entry: entry, after: after)
            case let b:
                throw .invalidEnum(field: "kind", byte: b)
            }
        }
        return PlaylistOp(id: id, lamport: lamport, term: term, edit: edit)
    }
}
