import Foundation
import JamzCore
import Testing

@Suite struct WireTests {
    // MARK: Fixtures

    static let big = MemberID(0x8000_0000_0000_0001)   // ≥ 2^63: must survive as unsigned
    static let maxMember = MemberID(.max)
    /// A track whose 32 bytes are 0x00, 0x11 … and 0xff: every nibble value.
    static let trackAll = TrackID(hex: "00112233445566778899aabbccddeeff" + "f0e1d2c3b4a5968778695a4b3c2d1e0f")!
    static let trackFF = TrackID(hex: String(repeating: "f", count: 64))!
    static let track00 = TrackID(hex: String(repeating: "0", count: 64))!

    static let extremeAnchor = TimelineAnchor(entry: OpID(origin: maxMember, seq: .max), track: trackAll,
                                              frame: .max, time: .min, rate: 1)
    static let zeroAnchor = TimelineAnchor(entry: OpID(origin: MemberID(0), seq: 0), track: track00,
                                           frame: 0, time: .max, rate: 0)
    static let fullTimeline = ConvoyTimeline(term: Term(number: .max, dj: big), version: .max,
                                             anchor: extremeAnchor, previous: zeroAnchor)
    static let emptyTimeline = ConvoyTimeline(term: Term(number: 0, dj: MemberID(0)))
    static let wallMax = WallClockSample(mono: .max, wall: .min, accuracy: .max, ppsDisciplined: true)
    static let wallZero = WallClockSample(mono: 0, wall: 0, accuracy: 0, ppsDisciplined: false)
    static let positionMax = WirePosition(latitude: 900_000_000, longitude: -1_800_000_000, accuracy: .max,
                                          speed: .max, heading: 35_999, time: .min)
    static let positionMin = WirePosition(latitude: -900_000_000, longitude: 1_800_000_000, accuracy: 0,
                                          speed: 0, heading: 0, time: .max)
    /// 64 UTF-8 bytes of multibyte characters, 2, 3 and 4 bytes each.
    static let name64 = String(repeating: "🚗", count: 10) + String(repeating: "ü", count: 9) + "♫♪"
    static func fullHighWater() -> [MemberID: UInt64] {
        var hw: [MemberID: UInt64] = [:]
        for i in 0..<UInt64(WireLimits.origins) { hw[MemberID(UInt64.max - i * 0x0101_0101)] = UInt64.max - i }
        return hw
    }

    static let opsEdges: [PlaylistOp] = [
        PlaylistOp(id: OpID(origin: maxMember, seq: .max), lamport: .max, term: Term(number: .max, dj: maxMember),
                   edit: .add(track: trackAll, frames: .max, after: OpID(origin: big, seq: 1))),
        PlaylistOp(id: OpID(origin: MemberID(0), seq: 0), lamport: 0, term: Term(number: 0, dj: MemberID(0)),
                   edit: .add(track: track00, frames: 0, after: nil)),
        PlaylistOp(id: OpID(origin: big, seq: 2), lamport: 7, term: Term(number: 3, dj: big),
                   edit: .remove(entry: OpID(origin: maxMember, seq: .max))),
        PlaylistOp(id: OpID(origin: big, seq: 3), lamport: 8, term: Term(number: 3, dj: big),
                   edit: .move(entry: OpID(origin: big, seq: 1), after: nil)),
        PlaylistOp(id: OpID(origin: big, seq: 4), lamport: 9, term: Term(number: 3, dj: big),
                   edit: .move(entry: OpID(origin: big, seq: 1), after: OpID(origin: maxMember, seq: .max))),
    ]

    /// The largest op: an add with an `after`.
    static func worstOp(_ i: Int) -> PlaylistOp {
        PlaylistOp(id: OpID(origin: maxMember, seq: UInt64(i) + 1), lamport: .max - UInt64(i), term: Term(number: .max, dj: maxMember),
                   edit: .add(track: trackFF, frames: .max, after: OpID(origin: big, seq: .max)))
    }

    static let worstBeacon = WireMessage.beacon(Beacon(
        member: maxMember, name: name64, timeline: fullTimeline, highWater: fullHighWater(), clockQuality: .max,
        wall: wallMax, position: positionMax, tracks: .max, dataPort: .max))

    /// One or more messages of every type, with edge values.
    static let samples: [WireMessage] = [
        worstBeacon,
        .beacon(Beacon(member: MemberID(0), name: "", timeline: emptyTimeline)),
        .beacon(Beacon(member: big, name: "Red Van", timeline: fullTimeline, highWater: [big: 0, MemberID(1): .max],
                       clockQuality: 2, wall: wallZero, position: positionMin, tracks: 1, dataPort: 7421)),
        .beacon(Beacon(member: big, name: String(repeating: "ü", count: 32), timeline: ConvoyTimeline(term: Term(number: 1, dj: big), version: 1, anchor: zeroAnchor),
                       highWater: [big: 3], clockQuality: 1, wall: nil, position: positionMax)),
        .timeRequest(t1: .min, wall: nil),
        .timeRequest(t1: .max, wall: wallMax),
        .timeRequest(t1: 0, wall: wallZero),
        .timeReply(t1: .min, t2: .max, t3: -1, wall: nil),
        .timeReply(t1: 1, t2: 2, t3: 3, wall: wallMax),
        .timeline(fullTimeline),
        .timeline(emptyTimeline),
        .timeline(ConvoyTimeline(term: Term(number: 2, dj: maxMember), version: 5, anchor: nil, previous: extremeAnchor)),
        .ops([]),
        .ops(opsEdges),
        .ops((0..<WireLimits.opsPerMessage).map(worstOp)),
        .opsRequest(highWater: [:]),
        .opsRequest(highWater: [maxMember: .max, MemberID(0): 0, big: 1]),
        .opsRequest(highWater: fullHighWater()),
    ]

    static func hex(_ bytes: [UInt8]) -> String { bytes.map { String(format: "%02x", $0) }.joined() }

    /// `decode` must throw; returns what it threw.
    static func rejection(_ bytes: [UInt8]) -> WireError? {
        do {
            let m = try WireCodec.decode(bytes)
            Issue.record("accepted \(m)")
            return nil
        } catch {
            return error
        }
    }

    // MARK: Round trips

    @Test func everyMessageRoundTripsWithEdgeValues() throws {
        #expect(Set(Self.samples.map(\.kind)) == Set(WireMessageKind.allCases))
        #expect(Self.name64.utf8.count == WireLimits.nameBytes)
        for m in Self.samples {
            let bytes = WireCodec.encode(m)
            #expect(bytes[0] == WireCodec.version)
            #expect(bytes[1] == m.kind.rawValue)
            #expect(try WireCodec.decode(bytes) == m, "\(m.kind)")
            #expect(try WireCodec.checkedEncode(m) == bytes)
            // Any collection of bytes, not only arrays.
            #expect(try WireCodec.decode(bytes[...]) == m)
            #expect(try WireCodec.decode(Data(bytes)) == m)
        }
    }

    @Test func nameKeepsItsBytesExactly() throws {
        // "é" precomposed and decomposed compare equal as Swift strings but travel as sent.
        for name in ["\u{E9}", "e\u{301}", "\u{0}nul", "🇩🇪"] {
            let m = WireMessage.beacon(Beacon(member: Self.big, name: name, timeline: Self.emptyTimeline))
            let bytes = WireCodec.encode(m)
            guard case .beacon(let b) = try WireCodec.decode(bytes) else { Issue.record("not a beacon"); continue }
            #expect(Array(b.name.utf8) == Array(name.utf8))
            #expect(WireCodec.encode(.beacon(b)) == bytes)
        }
    }

    @Test func worstCasesFitTheirLimits() throws {
        let worst: [WireMessageKind: WireMessage] = [
            .beacon: Self.worstBeacon,
            .timeRequest: .timeRequest(t1: .max, wall: Self.wallMax),
            .timeReply: .timeReply(t1: .max, t2: .max, t3: .max, wall: Self.wallMax),
            .timeline: .timeline(Self.fullTimeline),
            .opsRequest: .opsRequest(highWater: Self.fullHighWater()),
            .ops: .ops((0..<WireLimits.opsPerMessage).map(Self.worstOp)),
        ]
        // The sizes docs/wire.md states.
        let documented: [WireMessageKind: Int] = [
            .beacon: 1186, .timeRequest: 36, .timeReply: 52, .timeline: 158, .opsRequest: 900, .ops: 6276,
        ]
        for kind in WireMessageKind.allCases {
            let bytes = try WireCodec.checkedEncode(try #require(worst[kind]))
            #expect(bytes.count == documented[kind], "\(kind)")
            if kind != .ops { #expect(bytes.count <= WireLimits.datagram, "\(kind)") }
        }
        #expect(WireLimits.opsMessage == 6276)
        for op in Self.opsEdges + [Self.worstOp(0)] {
            #expect(WireCodec.encode(.ops([op])).count == 4 + WireCodec.encodedSize(of: op))
        }
        #expect(WireCodec.encodedSize(of: Self.worstOp(0)) == WireLimits.opBytes)
    }

    @Test func opsAreSplitIntoDatagrams() throws {
        var rng = SplitMix64(seed: 7)
        let ops = (0..<300).map { i -> PlaylistOp in
            let id = OpID(origin: Self.big, seq: UInt64(i + 1))
            let edit: PlaylistEdit = switch rng.next() % 3 {
            case 0: .add(track: Self.trackAll, frames: Int64(i), after: rng.next() % 2 == 0 ? nil : OpID(origin: Self.big, seq: 1))
            case 1: .remove(entry: OpID(origin: Self.big, seq: 1))
            default: .move(entry: OpID(origin: Self.big, seq: 1), after: rng.next() % 2 == 0 ? nil : id)
            }
            return PlaylistOp(id: id, lamport: UInt64(i), term: Term(number: 1, dj: Self.big), edit: edit)
        }
        let messages = WireCodec.opsMessages(ops)
        var back: [PlaylistOp] = []
        for m in messages {
            let bytes = try WireCodec.checkedEncode(m)
            #expect(bytes.count <= WireLimits.datagram)
            guard case .ops(let part) = m else { Issue.record("not ops"); continue }
            #expect(!part.isEmpty)
            back += part
        }
        #expect(back == ops)
        // Full datagrams: no two neighbours could have been one message.
        for (a, b) in zip(messages, messages.dropFirst()) {
            guard case .ops(let pa) = a, case .ops(let pb) = b else { continue }
            #expect(WireCodec.encode(.ops(pa + [pb[0]])).count > WireLimits.datagram)
        }
        // With room to spare, the count limit splits.
        let counted = WireCodec.opsMessages(ops, maxBytes: 100_000)
        #expect(counted.map { m -> Int in if case .ops(let p) = m { p.count } else { 0 } } == [64, 64, 64, 64, 44])
        #expect(WireCodec.opsMessages([]).isEmpty)
    }

    // MARK: Canonical encoding

    @Test func mapsEncodeInKeyOrderWhateverTheInsertionOrder() throws {
        let keys = Array(Self.fullHighWater().keys)
        var rng = SplitMix64(seed: 42)
        var encodings: Set<[UInt8]> = []
        for round in 0..<20 {
            var shuffled = keys
            shuffled.shuffle(using: &rng)
            var map: [MemberID: UInt64] = [:]
            map.reserveCapacity(round * 17)  // different capacities, different iteration orders
            for k in shuffled { map[k] = k.raw &* 3 }
            encodings.insert(WireCodec.encode(.opsRequest(highWater: map)))
            var beacon = Beacon(member: Self.big, name: "x", timeline: Self.emptyTimeline, highWater: map)
            beacon.clockQuality = 1
            encodings.insert(WireCodec.encode(.beacon(beacon)))
        }
        #expect(encodings.count == 2)  // one per message
        // The keys on the wire are strictly increasing.
        let bytes = WireCodec.encode(.opsRequest(highWater: Self.fullHighWater()))
        let origins = (0..<WireLimits.origins).map { i in
            (0..<8).reduce(UInt64(0)) { $0 | UInt64(bytes[4 + 16 * i + $1]) << (8 * $1) }
        }
        #expect(origins == origins.sorted() && Set(origins).count == origins.count)
    }

    // MARK: Rejections

    @Test func rejectsOtherVersionsSayingWhich() {
        let good = WireCodec.encode(.timeRequest(t1: 1, wall: nil))
        for v: UInt8 in [0, 2, 255] {
            var b = good; b[0] = v
            let e = Self.rejection(b)
            #expect(e == .unsupportedVersion(v))
            #expect(e?.description.contains("version \(v)") == true, "\(String(describing: e))")
        }
    }

    @Test func rejectsUnknownTypes() {
        for t: UInt8 in [0, 7, 255] {
            let e = Self.rejection([1, t, 0, 0, 0, 0, 0, 0, 0, 0, 0])
            #expect(e == .unknownType(t))
            #expect(e?.description.contains("type \(t)") == true)
        }
    }

    @Test func rejectsTruncationNamingTheField() throws {
        #expect(Self.rejection([]) == .truncated(field: "version"))
        #expect(Self.rejection([1]) == .truncated(field: "type"))
        #expect(Self.rejection([1, 2, 0, 0, 0]) == .truncated(field: "timeRequest.t1"))
        // Every proper prefix of every sample is truncated, never anything else.
        var named: Set<String> = []
        for m in Self.samples {
            let bytes = WireCodec.encode(m)
            for n in 0..<bytes.count {
                let e = Self.rejection(Array(bytes[..<n]))
                guard case .truncated(let field)? = e else { Issue.record("\(m.kind) cut at \(n): \(String(describing: e))"); continue }
                #expect(e?.description.contains(field) == true)
                named.insert(field)
            }
        }
        for field in [
            "beacon.member", "beacon.name", "beacon.timeline.term.number", "beacon.timeline.term.dj",
            "beacon.timeline.version", "beacon.timeline.anchor", "beacon.timeline.anchor.entry.origin",
            "beacon.timeline.anchor.entry.seq", "beacon.timeline.anchor.track", "beacon.timeline.anchor.frame",
            "beacon.timeline.anchor.time", "beacon.timeline.anchor.rate", "beacon.timeline.previous.frame",
            "beacon.highWater", "beacon.highWater[0].origin", "beacon.highWater[55].mark", "beacon.clockQuality",
            "beacon.wall", "beacon.wall.mono", "beacon.wall.accuracy", "beacon.wall.ppsDisciplined",
            "beacon.position.latitude", "beacon.position.heading", "beacon.position.time", "beacon.tracks",
            "beacon.dataPort", "timeRequest.t1", "timeRequest.wall.wall", "timeReply.t3", "timeReply.wall",
            "timeline.term.dj", "timeline.previous.rate", "ops.count", "ops[0].id.origin", "ops[0].lamport",
            "ops[63].edit.after.seq", "ops[1].edit.kind", "ops[2].edit.entry.seq", "ops[0].edit.frames",
            "ops[0].edit.track", "ops[4].edit.after", "opsRequest.highWater", "opsRequest.highWater[2].mark",
        ] {
            #expect(named.contains(field), "no truncation named \(field)")
        }
    }

    @Test func rejectsTrailingBytes() {
        for m in Self.samples {
            let e = Self.rejection(WireCodec.encode(m) + [0])
            #expect(e == .trailingBytes(m.kind, count: 1))
        }
        #expect(Self.rejection(WireCodec.encode(.ops([])) + [1, 2, 3]) == .trailingBytes(.ops, count: 3))
        #expect(Self.rejection(WireCodec.encode(.ops([])) + [1, 2, 3])?.description == "ops: 3 trailing bytes after the last field")
    }

    @Test func rejectsCountsOverTheLimit() {
        let tooManyOps = WireMessage.ops((0...WireLimits.opsPerMessage).map(Self.worstOp))
        var hw = Self.fullHighWater(); hw[MemberID(5)] = 5
        let tooLongName = String(repeating: "a", count: 63) + "ü"
        let cases: [(WireMessage, WireError)] = [
            (tooManyOps, .overLimit(field: "ops.count", count: 65, limit: 64)),
            (.opsRequest(highWater: hw), .overLimit(field: "opsRequest.highWater", count: 57, limit: 56)),
            (.beacon(Beacon(member: Self.big, name: "x", timeline: Self.emptyTimeline, highWater: hw)),
             .overLimit(field: "beacon.highWater", count: 57, limit: 56)),
            (.beacon(Beacon(member: Self.big, name: tooLongName, timeline: Self.emptyTimeline)),
             .overLimit(field: "beacon.name", count: 65, limit: 64)),
        ]
        for (m, expected) in cases {
            #expect(Self.rejection(WireCodec.encode(m)) == expected)
            #expect(throws: expected) { try WireCodec.checkedEncode(m) }
        }
        // The count is refused before anything it counts is read: a bare count is enough.
        #expect(Self.rejection([1, 5, 0xFF, 0xFF]) == .overLimit(field: "ops.count", count: 65535, limit: 64))
        #expect(Self.rejection([1, 6, 57, 0]) == .overLimit(field: "opsRequest.highWater", count: 57, limit: 56))
        #expect(Self.rejection([1, 6, 57, 0])?.description == "opsRequest.highWater: count 57 is over the limit of 56")
    }

    @Test func rejectsPresenceBytesOtherThanZeroOrOne() {
        var b = WireCodec.encode(.timeRequest(t1: 9, wall: nil))
        for p: UInt8 in [2, 0x80, 0xFF] {
            b[10] = p
            #expect(Self.rejection(b) == .invalidPresence(field: "timeRequest.wall", byte: p))
        }
        var t = WireCodec.encode(.timeline(Self.emptyTimeline))
        t[2 + 24] = 2
        #expect(Self.rejection(t) == .invalidPresence(field: "timeline.anchor", byte: 2))
        t = WireCodec.encode(.timeline(Self.emptyTimeline))
        t[2 + 25] = 7
        #expect(Self.rejection(t) == .invalidPresence(field: "timeline.previous", byte: 7))
        var o = WireCodec.encode(.ops([Self.opsEdges[1]]))
        o[o.count - 1] = 3
        #expect(Self.rejection(o) == .invalidPresence(field: "ops[0].edit.after", byte: 3))
        #expect(Self.rejection(o)?.description.contains("ops[0].edit.after") == true)
    }

    @Test func rejectsInvalidEnumBytes() {
        // A rate other than 0/1 encodes as 0xFF, which every receiver rejects.
        var anchor = Self.zeroAnchor; anchor.rate = 2
        let badRate = WireMessage.timeline(ConvoyTimeline(term: Term(number: 1, dj: Self.big), anchor: anchor))
        #expect(Self.rejection(WireCodec.encode(badRate)) == .invalidEnum(field: "timeline.anchor.rate", byte: 0xFF))
        #expect(throws: WireError.invalidEnum(field: "timeline.anchor.rate", byte: 0xFF)) { try WireCodec.checkedEncode(badRate) }
        var r = WireCodec.encode(.timeline(ConvoyTimeline(term: Term(number: 1, dj: Self.big), anchor: Self.zeroAnchor)))
        r[r.count - 2] = 2
        #expect(Self.rejection(r) == .invalidEnum(field: "timeline.anchor.rate", byte: 2))

        var pps = WireCodec.encode(.timeRequest(t1: 0, wall: Self.wallZero))
        pps[pps.count - 1] = 2
        #expect(Self.rejection(pps) == .invalidEnum(field: "timeRequest.wall.ppsDisciplined", byte: 2))

        for kind: UInt8 in [0, 4, 0xFF] {
            var o = WireCodec.encode(.ops([Self.opsEdges[2], Self.opsEdges[2]]))
            o[4 + 57 + 40] = kind  // the second op's edit kind
            let e = Self.rejection(o)
            #expect(e == .invalidEnum(field: "ops[1].edit.kind", byte: kind))
            #expect(e?.description == "ops[1].edit.kind: byte \(kind) is not a valid value for this field")
        }
    }

    @Test func rejectsInvalidUTF8() {
        let good = WireCodec.encode(.beacon(Beacon(member: Self.big, name: "ab", timeline: Self.emptyTimeline)))
        // After version, type, member (8) and the length (2): the two name bytes.
        for bad: [UInt8] in [[0xC3, 0x28], [0xFF, 0x41], [0xC0, 0xAF], [0x41, 0xC3]] {
            var b = good
            b[12] = bad[0]; b[13] = bad[1]
            #expect(Self.rejection(b) == .invalidUTF8(field: "beacon.name"), "\(bad)")
        }
        // A UTF-16 surrogate (ED A0 80) is not UTF-8 either.
        var s = Array(good[..<10]) + [3, 0, 0xED, 0xA0, 0x80] + Array(good[14...])
        #expect(Self.rejection(s) == .invalidUTF8(field: "beacon.name"))
        s = Array(good[..<10]) + [3, 0, 0xE2, 0x99, 0xAB] + Array(good[14...])  // "♫" is fine
        #expect((try? WireCodec.decode(s)) != nil)
    }

    @Test func rejectsValuesOutOfRange() {
        var anchor = Self.zeroAnchor; anchor.frame = -1
        let cases: [(WireMessage, WireError)] = [
            (.timeline(ConvoyTimeline(term: Term(number: 1, dj: Self.big), anchor: anchor)),
             .outOfRange(field: "timeline.anchor.frame", value: -1)),
            (.timeline(ConvoyTimeline(term: Term(number: 1, dj: Self.big), anchor: Self.zeroAnchor, previous: TimelineAnchor(entry: anchor.entry, track: anchor.track, frame: .min, time: 0, rate: 1))),
             .outOfRange(field: "timeline.previous.frame", value: .min)),
            (.ops([Self.opsEdges[0], PlaylistOp(id: OpID(origin: Self.big, seq: 1), lamport: 1, term: Term(number: 1, dj: Self.big),
                                                edit: .add(track: Self.trackAll, frames: -5, after: nil))]),
             .outOfRange(field: "ops[1].edit.frames", value: -5)),
            (.timeRequest(t1: 0, wall: WallClockSample(mono: 0, wall: 0, accuracy: -1, ppsDisciplined: true)),
             .outOfRange(field: "timeRequest.wall.accuracy", value: -1)),
            (.beacon(Beacon(member: Self.big, name: "", timeline: Self.emptyTimeline,
                            position: WirePosition(latitude: 900_000_001, longitude: 0, accuracy: 0, speed: 0, heading: 0, time: 0))),
             .outOfRange(field: "beacon.position.latitude", value: 900_000_001)),
            (.beacon(Beacon(member: Self.big, name: "", timeline: Self.emptyTimeline,
                            position: WirePosition(latitude: 0, longitude: .min, accuracy: 0, speed: 0, heading: 0, time: 0))),
             .outOfRange(field: "beacon.position.longitude", value: Int64(Int32.min))),
            (.beacon(Beacon(member: Self.big, name: "", timeline: Self.emptyTimeline,
                            position: WirePosition(latitude: 0, longitude: 0, accuracy: 0, speed: 0, heading: 36_000, time: 0))),
             .outOfRange(field: "beacon.position.heading", value: 36_000)),
        ]
        for (m, expected) in cases {
            let e = Self.rejection(WireCodec.encode(m))
            #expect(e == expected)
            #expect(e?.field.map { e!.description.hasPrefix($0) } == true)
        }
    }

    @Test func rejectsUnsortedOrDuplicateMapKeys() {
        func request(_ pairs: [(UInt64, UInt64)]) -> [UInt8] {
            var b: [UInt8] = [1, 6, UInt8(pairs.count), 0]
            for (k, v) in pairs {
                for i in 0..<8 { b.append(UInt8(truncatingIfNeeded: k >> (8 * i))) }
                for i in 0..<8 { b.append(UInt8(truncatingIfNeeded: v >> (8 * i))) }
            }
            return b
        }
        #expect((try? WireCodec.decode(request([(1, 9), (2, 9), (.max, 9)]))) == .opsRequest(highWater: [MemberID(1): 9, MemberID(2): 9, Self.maxMember: 9]))
        #expect(Self.rejection(request([(2, 9), (1, 9)])) == .keyOrder(field: "opsRequest.highWater[1].origin"))
        #expect(Self.rejection(request([(1, 9), (5, 9), (5, 10)])) == .keyOrder(field: "opsRequest.highWater[2].origin"))
        #expect(Self.rejection(request([(.max, 1), (0, 1)])) == .keyOrder(field: "opsRequest.highWater[1].origin"))
        // Inside a beacon too.
        var beacon = WireCodec.encode(.beacon(Beacon(member: Self.big, name: "", timeline: Self.emptyTimeline, highWater: [MemberID(1): 1, MemberID(2): 2])))
        let at = 2 + 8 + 2 + 26 + 2  // first origin
        beacon.swapAt(at, at + 16)     // origins 2, 1
        #expect(Self.rejection(beacon) == .keyOrder(field: "beacon.highWater[1].origin"))
    }

    @Test func anyThirtyTwoBytesAreATrackID() throws {
        var rng = SplitMix64(seed: 1)
        var seen = Set<UInt8>()
        for _ in 0..<64 {
            var bytes = WireCodec.encode(.ops([Self.opsEdges[1]]))
            for i in 0..<32 {
                let b = UInt8(truncatingIfNeeded: rng.next())
                bytes[4 + 41 + i] = b
                seen.insert(b)
            }
            let m = try WireCodec.decode(bytes)
            #expect(WireCodec.encode(m) == bytes)
            guard case .ops(let ops) = m, case .add(let track, _, _) = ops[0].edit else { Issue.record("not an add"); continue }
            #expect(track.hex == bytes[45..<77].map { String(format: "%02x", $0) }.joined())
        }
        #expect(seen.count > 200)
    }

    // MARK: The spec's examples

    static let docExamples: [String: WireMessage] = {
        let me = MemberID(0x8a3f_12c4_5e6b_7d90)
        let anchor = TimelineAnchor(
            entry: OpID(origin: me, seq: 2),
            track: TrackID(hex: "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08")!,
            frame: 441_000, time: 12_000_000_000, rate: 1)
        return [
            "timeRequest": .timeRequest(t1: 5_000_000_123, wall: WallClockSample(
                mono: 5_000_000_000, wall: 1_750_000_000_000_000_000, accuracy: 2_000, ppsDisciplined: true)),
            "beacon": .beacon(Beacon(
                member: me, name: "Red Van",
                timeline: ConvoyTimeline(term: Term(number: 3, dj: me), version: 7, anchor: anchor),
                highWater: [me: 2, MemberID(0x1234_5678_9abc_def0): 5], clockQuality: 2, wall: nil,
                position: WirePosition(latitude: 525_200_066, longitude: 134_049_540, accuracy: 4, speed: 1389,
                                       heading: 9000, time: 1_750_000_000_000_000_000),
                tracks: 42, dataPort: 7421)),
        ]
    }()

    /// The bytes of the example after `<!-- wire-example: NAME -->` in docs/wire.md.
    static func documentedBytes(_ name: String) throws -> [UInt8] {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("docs/wire.md")
        let doc = try String(contentsOf: url, encoding: .utf8)
        let marker = try #require(doc.range(of: "<!-- wire-example: \(name) -->"))
        let rest = doc[marker.upperBound...]
        let open = try #require(rest.range(of: "```"))
        let afterOpen = rest[open.upperBound...]
        let close = try #require(afterOpen.range(of: "```"))
        var bytes: [UInt8] = []
        for line in afterOpen[..<close.lowerBound].split(separator: "\n") {
            let code = line.split(separator: "#", maxSplits: 1, omittingEmptySubsequences: false)[0]
            for pair in code.split(separator: " ") {
                bytes.append(try #require(UInt8(pair, radix: 16), "bad hex \(pair)"))
            }
        }
        return bytes
    }

    @Test(arguments: ["timeRequest", "beacon"])
    func documentedExampleIsWhatTheCodecProduces(name: String) throws {
        let message = try #require(Self.docExamples[name])
        let documented = try Self.documentedBytes(name)
        let encoded = WireCodec.encode(message)
        #expect(Self.hex(documented) == Self.hex(encoded), "docs/wire.md example \(name) drifted; the codec produces \(Self.hex(encoded))")
        #expect(try WireCodec.decode(documented) == message)
    }

    // MARK: Fuzz

    static func caseName(_ e: WireError) -> String {
        switch e {
        case .unsupportedVersion: "unsupportedVersion"
        case .unknownType: "unknownType"
        case .truncated: "truncated"
        case .trailingBytes: "trailingBytes"
        case .overLimit: "overLimit"
        case .invalidPresence: "invalidPresence"
        case .invalidEnum: "invalidEnum"
        case .invalidUTF8: "invalidUTF8"
        case .outOfRange: "outOfRange"
        case .keyOrder: "keyOrder"
        }
    }

    /// Seeded random mutations of valid encodings: the decoder never traps, and whatever it
    /// accepts is canonical (`encode(decode(x)) == x`).
    @Test func fuzzedDecoderAcceptsOnlyCanonicalMessages() {
        var rng = SplitMix64(seed: 0x5EED_CAFE)
        // Small seeds keep the run fast; the big ones are in the mix less often.
        let seeds = Self.samples.map(WireCodec.encode).filter { $0.count <= 1200 }
            + Self.docExamples.values.map(WireCodec.encode)
        let interesting: [UInt8] = [0, 1, 2, 3, 0x7F, 0x80, 0xFE, 0xFF]
        let iterations = 200_000
        var accepted = 0, identical = 0
        var failures: [String] = []
        var errorKinds: Set<String> = []
        func pick(_ n: Int) -> Int { Int(rng.next() % UInt64(n)) }

        for _ in 0..<iterations {
            var x = seeds[pick(seeds.count)]
            let original = x
            for _ in 0..<(1 + pick(3)) {
                switch pick(8) {
                case 0, 1:  // bit flip
                    if !x.isEmpty { x[pick(x.count)] ^= 1 << UInt8(pick(8)) }
                case 2:     // random byte
                    if !x.isEmpty { x[pick(x.count)] = UInt8(truncatingIfNeeded: rng.next()) }
                case 3:     // interesting byte (presence, enum, count edges)
                    if !x.isEmpty { x[pick(x.count)] = interesting[pick(interesting.count)] }
                case 4:     // truncate
                    x.removeLast(pick(x.count + 1))
                case 5:     // insert random bytes
                    let bytes = (0..<(1 + pick(4))).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
                    x.insert(contentsOf: bytes, at: pick(x.count + 1))
                case 6:     // delete a run
                    if !x.isEmpty { let at = pick(x.count); x.removeSubrange(at ..< min(x.count, at + 1 + pick(16))) }
                default:    // splice: a chunk of another seed
                    let other = seeds[pick(seeds.count)]
                    let from = pick(other.count), len = pick(min(32, other.count - from) + 1)
                    let at = pick(x.count + 1)
                    x.replaceSubrange(at ..< min(x.count, at + len), with: other[from ..< from + len])
                }
            }
            do {
                let m = try WireCodec.decode(x)
                accepted += 1
                if x == original { identical += 1 }
                let again = WireCodec.encode(m)
                if again != x, failures.count < 5 { failures.append("accepted \(Self.hex(x)) re-encodes as \(Self.hex(again))") }
            } catch {
                errorKinds.insert(Self.caseName(error))
                if error.description.isEmpty, failures.count < 5 { failures.append("empty description") }
            }
        }
        #expect(failures.isEmpty, "\(failures)")
        // The property is not vacuous: many mutants that are not the seed were accepted …
        #expect(accepted - identical > 10_000, "accepted \(accepted), of which \(identical) unchanged")
        // … and every kind of rejection was reached.
        #expect(errorKinds.count == 10, "\(errorKinds.sorted())")
    }
}
