/// Wire format version 1: bytes ⇄ `WireMessage`. The specification is `docs/wire.md`.
///
/// The encoding is canonical: one message has exactly one encoding, and `decode` accepts only
/// that one (maps sorted by key, presence and bool bytes exactly 0 or 1, no trailing bytes), so
/// `encode(decode(x)) == x` for every `x` it accepts.
public enum WireCodec {
    /// The first byte of every message.
    public static let version: UInt8 = 1

    /// The bytes of `message`. A message that breaks a limit of the format (a name over 64 bytes,
    /// too many ops, a negative frame, a rate other than 0/1 …) still encodes, to bytes that
    /// every receiver rejects; use `checkedEncode` to find out before sending.
    public static func encode(_ message: WireMessage) -> [UInt8] {
        var w = WireWriter()
        w.u8(version)
        w.u8(message.kind.rawValue)
        switch message {
        case .beacon(let b):
            w.u64(b.member.raw)
            w.string(b.name)
            w.timeline(b.timeline)
            w.highWater(b.highWater)
            w.u8(b.clockQuality)
            w.optional(b.wall) { $0.wall($1) }
            w.optional(b.position) { $0.position($1) }
            w.u32(b.tracks)
            w.u16(b.dataPort)
        case .timeRequest(let t1, let wall):
            w.i64(t1)
            w.optional(wall) { $0.wall($1) }
        case .timeReply(let t1, let t2, let t3, let wall):
            w.i64(t1); w.i64(t2); w.i64(t3)
            w.optional(wall) { $0.wall($1) }
        case .timeline(let t):
            w.timeline(t)
        case .ops(let ops):
            let n = min(ops.count, Int(UInt16.max))
            w.u16(UInt16(n))
            for op in ops.prefix(n) { w.op(op) }
        case .opsRequest(let hw):
            w.highWater(hw)
        }
        return w.bytes
    }

    /// `encode(message)`, or why a receiver would reject it.
    public static func checkedEncode(_ message: WireMessage) throws(WireError) -> [UInt8] {
        let bytes = encode(message)
        _ = try decode(bytes)
        return bytes
    }

    /// The message in `bytes`, which must be exactly one message of this version.
    public static func decode(_ bytes: some Collection<UInt8>) throws(WireError) -> WireMessage {
        var r = WireReader(Array(bytes))
        let v = try r.u8("version")
        guard v == version else { throw .unsupportedVersion(v) }
        let t = try r.u8("type")
        guard let kind = WireMessageKind(rawValue: t) else { throw .unknownType(t) }
        let message: WireMessage
        do {
            message = try body(kind, &r)
        } catch {
            throw error.within(kind.description)
        }
        if r.remaining > 0 { throw .trailingBytes(kind, count: r.remaining) }
        return message
    }

    private static func body(_ kind: WireMessageKind, _ r: inout WireReader) throws(WireError) -> WireMessage {
        switch kind {
        case .beacon:
            let member = MemberID(try r.u64("member"))
            let name = try r.string("name", limit: WireLimits.nameBytes)
            let timeline = try r.nested("timeline") { (r: inout WireReader) throws(WireError) in try r.timeline() }
            let highWater = try r.highWater("highWater")
            let quality = try r.u8("clockQuality")
            let wall = try r.optional("wall") { (r: inout WireReader) throws(WireError) in try r.wall() }
            let position = try r.optional("position") { (r: inout WireReader) throws(WireError) in try r.position() }
            let tracks = try r.u32("tracks")
            let port = try r.u16("dataPort")
            return .beacon(Beacon(member: member, name: name, timeline: timeline, highWater: highWater,
                                  clockQuality: quality, wall: wall, position: position, tracks: tracks, dataPort: port))
        case .timeRequest:
            let t1 = try r.i64("t1")
            let wall = try r.optional("wall") { (r: inout WireReader) throws(WireError) in try r.wall() }
            return .timeRequest(t1: t1, wall: wall)
        case .timeReply:
            let t1 = try r.i64("t1"), t2 = try r.i64("t2"), t3 = try r.i64("t3")
            let wall = try r.optional("wall") { (r: inout WireReader) throws(WireError) in try r.wall() }
            return .timeReply(t1: t1, t2: t2, t3: t3, wall: wall)
        case .timeline:
            return .timeline(try r.timeline())
        case .ops:
            let n = try r.count("count", limit: WireLimits.opsPerMessage)
            var ops: [PlaylistOp] = []
            ops.reserveCapacity(n)
            for i in 0..<n {
                do { ops.append(try r.op()) } catch { throw error.within("[\(i)]") }
            }
            return .ops(ops)
        case .opsRequest:
            return .opsRequest(highWater: try r.highWater("highWater"))
        }
    }

    /// `ops` as `ops` messages of at most `maxBytes` bytes each (and at most
    /// `WireLimits.opsPerMessage` ops), in order: what a sender does with more than fit one datagram.
    public static func opsMessages(_ ops: [PlaylistOp], maxBytes: Int = WireLimits.datagram) -> [WireMessage] {
        precondition(maxBytes >= 4 + WireLimits.opBytes, "maxBytes must hold at least one op")
        var messages: [WireMessage] = []
        var batch: [PlaylistOp] = []
        var size = 4
        for op in ops {
            let s = encodedSize(of: op)
            if !batch.isEmpty && (size + s > maxBytes || batch.count == WireLimits.opsPerMessage) {
                messages.append(.ops(batch))
                batch = []; size = 4
            }
            batch.append(op); size += s
        }
        if !batch.isEmpty { messages.append(.ops(batch)) }
        return messages
    }

    /// Encoded bytes of one op inside an `ops` message.
    public static func encodedSize(of op: PlaylistOp) -> Int {
        let head = 16 + 8 + 16 + 1
        switch op.edit {
        case .add(_, _, let after): return head + 32 + 8 + (after == nil ? 1 : 17)
        case .remove: return head + 16
        case .move(_, let after): return head + 16 + (after == nil ? 1 : 17)
        }
    }
}

// MARK: - Writing

package struct WireWriter {
    package var bytes: [UInt8] = []

    package init() { bytes.reserveCapacity(256) }

    package mutating func u8(_ v: UInt8) { bytes.append(v) }
    package mutating func u16(_ v: UInt16) { bytes.append(UInt8(truncatingIfNeeded: v)); bytes.append(UInt8(truncatingIfNeeded: v >> 8)) }
    package mutating func u32(_ v: UInt32) { for i in 0..<4 { bytes.append(UInt8(truncatingIfNeeded: v >> (8 * i))) } }
    package mutating func u64(_ v: UInt64) { for i in 0..<8 { bytes.append(UInt8(truncatingIfNeeded: v >> (8 * i))) } }
    mutating func i32(_ v: Int32) { u32(UInt32(bitPattern: v)) }
    mutating func i64(_ v: Int64) { u64(UInt64(bitPattern: v)) }
    mutating func bool(_ v: Bool) { u8(v ? 1 : 0) }

    mutating func optional<T>(_ v: T?, _ write: (inout WireWriter, T) -> Void) {
        if let v { u8(1); write(&self, v) } else { u8(0) }
    }

    /// u16 byte length + UTF-8. A string longer than a u16 can count is cut (and rejected anyway).
    mutating func string(_ s: String) {
        let utf8 = s.utf8
        let n = min(utf8.count, Int(UInt16.max))
        u16(UInt16(n))
        bytes.append(contentsOf: utf8.prefix(n))
    }

    mutating func opID(_ id: OpID) { u64(id.origin.raw); u64(id.seq) }
    mutating func term(_ t: Term) { u64(t.number); u64(t.dj.raw) }

    /// The digest's 32 bytes.
    mutating func track(_ t: TrackID) { bytes.append(contentsOf: t.bytes) }

    mutating func wall(_ s: WallClockSample) {
        i64(s.mono); i64(s.wall); i64(s.accuracy); bool(s.ppsDisciplined)
    }

    mutating func position(_ p: WirePosition) {
        i32(p.latitude); i32(p.longitude); u16(p.accuracy); u16(p.speed); u16(p.heading); i64(p.time)
    }

    mutating func anchor(_ a: TimelineAnchor) {
        opID(a.entry)
        track(a.track)
        i64(a.frame)
        i64(a.time)
        u8(a.rate == 0 ? 0 : a.rate == 1 ? 1 : 0xFF)  // anything but 0/1 is rejected by receivers
    }

    mutating func timeline(_ t: ConvoyTimeline) {
        term(t.term)
        u64(t.version)
        optional(t.anchor) { $0.anchor($1) }
        optional(t.previous) { $0.anchor($1) }
    }

    /// Count, then (origin, mark) pairs sorted by origin: the canonical order.
    mutating func highWater(_ map: [MemberID: UInt64]) {
        let n = min(map.count, Int(UInt16.max))
        u16(UInt16(n))
        for (origin, mark) in map.sorted(by: { $0.key < $1.key }).prefix(n) {
            u64(origin.raw); u64(mark)
        }
    }

    mutating func op(_ op: PlaylistOp) {
        opID(op.id)
        u64(op.lamport)
        term(op.term)
        switch op.edit {
        case .add(let track, let frames, let after):
            u8(1); self.track(track); i64(frames); optional(after) { $0.opID($1) }
        case .remove(let entry):
            u8(2); opID(entry)
        case .move(let entry, let after):
            u8(3); opID(entry); optional(after) { $0.opID($1) }
        }
    }
}
