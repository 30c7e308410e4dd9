import Foundation
import JamzCore
import Testing

@Suite struct ControlProtocolTests {
    func object<T: Encodable>(_ value: T) throws -> [String: Any] {
        let data = try JSONEncoder().encode(value)
        return try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
    }

    // MARK: ControlRequest

    @Test func decodesARequestLine() throws {
        let r = try JSONDecoder().decode(ControlRequest.self, from: Data(#"{"cmd":"status","args":[]}"#.utf8))
        #expect(r == ControlRequest(cmd: "status"))
        #expect(r.cmd == "status")
        #expect(r.args.isEmpty)
    }

    @Test func argsMayBeOmitted() throws {
        // README, control protocol: `{"cmd": "NAME", "args": ["…"]}` (`args` may be omitted).
        let r = try JSONDecoder().decode(ControlRequest.self, from: Data(#"{"cmd":"status"}"#.utf8))
        #expect(r == ControlRequest(cmd: "status", args: []))
        let n = try JSONDecoder().decode(ControlRequest.self, from: Data(#"{"cmd":"next","args":null}"#.utf8))
        #expect(n == ControlRequest(cmd: "next", args: []))
    }

    @Test func decodesArguments() throws {
        let line = #"{"cmd":"add","args":["abc def","/music/x.mp3"]}"#
        let r = try JSONDecoder().decode(ControlRequest.self, from: Data(line.utf8))
        #expect(r == ControlRequest(cmd: "add", args: ["abc def", "/music/x.mp3"]))
    }

    @Test func requestRoundTrip() throws {
        let r = ControlRequest(cmd: "volume", args: ["+5"])
        #expect(try JSONDecoder().decode(ControlRequest.self, from: JSONEncoder().encode(r)) == r)
        let o = try object(r)
        #expect(Set(o.keys) == ["cmd", "args"])
        #expect(o["args"] as? [String] == ["+5"])
    }

    @Test(arguments: [#"{"args":[]}"#, #"{"cmd":5,"args":[]}"#, #"{"cmd":"x","args":"y"}"#, #"["status"]"#, "status"])
    func rejectsMalformedRequests(_ line: String) {
        #expect(throws: (any Error).self) { try JSONDecoder().decode(ControlRequest.self, from: Data(line.utf8)) }
    }

    // MARK: StatusReport

    func fullStatus() -> StatusReport {
        var s = StatusReport()
        s.state = "playing"
        s.track = .init(id: tid("a").hex, title: "T", artist: "A", album: "L", duration: 187.5)
        s.queueIndex = 2
        s.position = 12.25
        s.positionFrames = 540_225
        s.sampledAt = 123_456_789_012
        s.volume = 80
        s.queueLength = 7
        s.output = "alsa:default"
        s.sampleRate = 44_100
        s.counters = ["cacheHits": 3, "framesRepeated": 12]
        return s
    }

    @Test func statusReportEncodesTheDocumentedKeys() throws {
        let o = try object(fullStatus())
        #expect(Set(o.keys) == ["state", "track", "position", "positionFrames", "sampledAt", "volume",
                                "queueLength", "output", "sampleRate", "counters", "queueIndex"])
        #expect(o["state"] as? String == "playing")
        #expect(o["position"] as? Double == 12.25)
        #expect((o["positionFrames"] as? NSNumber)?.int64Value == 540_225)
        #expect((o["sampledAt"] as? NSNumber)?.int64Value == 123_456_789_012)
        #expect(o["volume"] as? Int == 80)
        #expect(o["queueLength"] as? Int == 7)
        #expect(o["output"] as? String == "alsa:default")
        #expect(o["sampleRate"] as? Int == 44_100)
        #expect(o["queueIndex"] as? Int == 2)
        let counters = try #require(o["counters"] as? [String: Any])
        #expect((counters["cacheHits"] as? NSNumber)?.int64Value == 3)
        #expect((counters["framesRepeated"] as? NSNumber)?.int64Value == 12)

        let track = try #require(o["track"] as? [String: Any])
        #expect(Set(track.keys) == ["id", "title", "artist", "album", "duration"])
        #expect(track["id"] as? String == String(repeating: "a", count: 64))
        #expect(track["title"] as? String == "T")
        #expect(track["artist"] as? String == "A")
        #expect(track["album"] as? String == "L")
        #expect(track["duration"] as? Double == 187.5)
    }

    @Test func statusReportRoundTrip() throws {
        let s = fullStatus()
        #expect(try JSONDecoder().decode(StatusReport.self, from: JSONEncoder().encode(s)) == s)
        let stopped = StatusReport()
        #expect(try JSONDecoder().decode(StatusReport.self, from: JSONEncoder().encode(stopped)) == stopped)
    }

    @Test func aStoppedStatusHasDefaults() throws {
        let s = StatusReport()
        #expect(s.state == "stopped")
        #expect(s.track == nil && s.queueIndex == nil)
        #expect(s.sampleRate == 44_100)
        let o = try object(s)
        #expect(o["state"] as? String == "stopped")
        #expect(o["position"] as? Double == 0)
        #expect(o["counters"] as? [String: Any] != nil)
        // Absent optionals are left out rather than written as null.
        #expect(o["track"] == nil)
        #expect(o["queueIndex"] == nil)
    }

    // MARK: other reports and envelopes

    @Test func replyEnvelope() throws {
        let ok = try object(ControlReply(ok: true, message: "done", data: ["n": 1]))
        #expect(ok["ok"] as? Bool == true)
        #expect(ok["message"] as? String == "done")
        #expect((ok["data"] as? [String: Int]) == ["n": 1])
        #expect(ok["error"] == nil)

        let failed = try object(ControlReply<StatusReport>(ok: false, message: "no such track", error: "notFound"))
        #expect(failed["ok"] as? Bool == false)
        #expect(failed["error"] as? String == "notFound")
        #expect(failed["data"] == nil)

        let status = try object(ControlReply(ok: true, message: "", data: fullStatus()))
        #expect((status["data"] as? [String: Any])?["state"] as? String == "playing")
    }

    @Test func progressLine() throws {
        let p = ImportProgressReport(done: 3, total: 10, file: "a.mp3", result: "added", reason: nil, title: "A")
        let o = try object(ProgressLine(progress: p))
        #expect(Set(o.keys) == ["progress"])
        let inner = try #require(o["progress"] as? [String: Any])
        #expect(Set(inner.keys) == ["done", "total", "file", "result", "title"])
        #expect(inner["done"] as? Int == 3 && inner["total"] as? Int == 10)
        #expect(inner["result"] as? String == "added")
        let back = try JSONDecoder().decode(ImportProgressReport.self, from: JSONEncoder().encode(p))
        #expect(back == p)
    }

    @Test func queueItemAndCacheReports() throws {
        var q = QueueItemReport()
        q.index = 1; q.entry = 42; q.id = tid("b").hex; q.title = "t"; q.artist = "a"; q.duration = 3.5; q.current = true
        #expect(Set(try object(q).keys) == ["index", "entry", "id", "title", "artist", "duration", "current"])
        #expect(try JSONDecoder().decode(QueueItemReport.self, from: JSONEncoder().encode(q)) == q)

        var c = CacheReport()
        c.tracks = 5; c.bytes = 1 << 33; c.maxTracks = 100; c.maxBytes = 1 << 34; c.hits = 9; c.misses = 1; c.hitRate = 0.9; c.evictions = 2
        let o = try object(c)
        #expect(Set(o.keys) == ["tracks", "bytes", "maxTracks", "maxBytes", "hits", "misses", "hitRate", "evictions"])
        #expect((o["bytes"] as? NSNumber)?.int64Value == 1 << 33)
        #expect(try JSONDecoder().decode(CacheReport.self, from: JSONEncoder().encode(c)) == c)
        #expect(try object(CacheReport())["hitRate"] == nil)
    }
}
