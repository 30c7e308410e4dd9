import Foundation
import GRDB
import JamzClient
import JamzCore
import JamzDaemon
import JamzTestSupport
import JamzPlatform
import Testing

/// jamzd as a process: signals, systemd readiness, a broken database, a bad config, the CLI.
@Suite struct DaemonProcessTests {
    @Test func sigtermFadesSavesAndExitsZero() throws {
        let car = Car()
        try car.start()
        try car.client.call("import", try musicFolder(["long65.mp3"]))
        try car.client.call("add", "long")
        try car.client.call("play")
        try car.client.call("seek", "20")
        usleep(600_000)
        let before = try car.client.status()
        #expect(car.terminate() == 0)
        #expect(car.logText.contains("stopped; state saved"))
        let saved = try PowerLossTests.inspect(car.db)
        #expect(saved.playing)
        #expect(abs(Double(saved.frame) / 44_100 - before.position) < 1.0)
    }

    /// A socket path, and an abstract name ('@…') as systemd may hand over.
    @Test(arguments: [false, true]) func tellsSystemdWhenReady(abstract: Bool) throws {
        let path = abstract ? "@jamz-notify-\(getpid())-\(UInt32.random(in: 0...UInt32.max))" : Fixtures.tempDir().appendingPathComponent("notify.sock").path
        let fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue), 0)
        defer { close(fd) }
        let rc = UnixAddress(path)!.withSockaddr { bind(fd, $0, $1) }
        #expect(rc == 0)
        var tv = timeval(tv_sec: 10, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))

        let car = Car()
        car.environment["NOTIFY_SOCKET"] = path
        try car.start()
        var buf = [UInt8](repeating: 0, count: 512)
        let n = recv(fd, &buf, buf.count, 0)
        #expect(n > 0)
        let msg = String(decoding: buf[0..<max(0, n)], as: UTF8.self)
        #expect(msg.contains("READY=1"))
        #expect(car.terminate() == 0)
    }

    /// With `WATCHDOG_USEC` set (systemd's WatchdogSec=), jamzd sends `WATCHDOG=1` at half that
    /// interval while its renderer runs; without it, never.
    @Test func feedsTheSystemdWatchdog() throws {
        let path = Fixtures.tempDir().appendingPathComponent("notify.sock").path
        let fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue), 0)
        defer { close(fd) }
        let rc = UnixAddress(path)!.withSockaddr { bind(fd, $0, $1) }
        #expect(rc == 0)
        var tv = timeval(tv_sec: 10, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))

        let car = Car()
        car.environment["NOTIFY_SOCKET"] = path
        car.environment["WATCHDOG_USEC"] = "400000"   // 0.4 s: a ping every 0.2 s
        try car.start()
        var pings: [Date] = []
        var ready = false
        let deadline = Date().addingTimeInterval(8)
        while pings.count < 5, Date() < deadline {
            var buf = [UInt8](repeating: 0, count: 512)
            let n = recv(fd, &buf, buf.count, 0)
            guard n > 0 else { break }
            let msg = String(decoding: buf[0..<n], as: UTF8.self)
            if msg.contains("READY=1") { ready = true }
            if msg.contains("WATCHDOG=1") { pings.append(Date()) }
        }
        #expect(ready)
        #expect(pings.count == 5)
        if let first = pings.first, let last = pings.last, pings.count > 1 {
            let mean = last.timeIntervalSince(first) / Double(pings.count - 1)
            #expect(mean > 0.1 && mean < 0.4, "mean interval \(mean) s, expected 0.2 s")
        }
        #expect(car.terminate() == 0)
    }

    @Test func brokenDatabaseIsMovedAsideAndTheCacheReindexed() throws {
        let car = Car()
        try car.start()
        try car.client.call("import", try musicFolder(["cbr.mp3", "vbr.mp3", "id3v1.mp3"]))
        #expect(car.terminate() == 0)
        for suffix in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: car.db + suffix) }
        try Data((0..<50_000).map { UInt8(truncatingIfNeeded: $0 &* 7919) }).write(to: URL(fileURLWithPath: car.db))

        try car.start()
        #expect(FileManager.default.fileExists(atPath: car.db + ".broken-1"))
        #expect(car.logText.contains("moved to \(car.db).broken-1"))
        let cache = try car.client.call(.cache, expecting: CacheReport.self)
        #expect(cache.data?.tracks == 3)
        try car.client.call("add", "only v1")
        try car.client.call("play")
        #expect(try car.client.status().state == "playing")
        #expect(car.terminate() == 0)
    }

    @Test func badConfigIsReportedAndCountedAndTheDaemonRuns() throws {
        let car = Car()
        let conf = car.dir.appendingPathComponent("jamzd.toml").path
        try """
            [cache]
            max_tracks = "many"
            [player]
            default_volume = 250
            wobble = true
            """.write(toFile: conf, atomically: true, encoding: .utf8)
        car.extraArgs = ["--config", conf]
        try car.start()
        let s = try car.client.status()
        #expect(s.counters["config.errors"] == 3)
        #expect(s.volume == 70)
        #expect(car.logText.contains("config cache.max_tracks: expected an integer"))
        #expect(car.logText.contains("config player.default_volume = 250: must be in 0...100"))
        #expect(car.terminate() == 0)
    }

    @Test func cliAnswersWithWhatItDidAndFailsClearly() throws {
        let car = Car()
        try car.start()
        var (rc, out, err) = try car.jamz("play")
        #expect(rc == 1 && err.contains("the queue is empty"))
        (rc, out, err) = try car.jamz("import", try musicFolder(["cbr.mp3", "text.mp3"]))
        #expect(rc == 0)
        #expect(out.contains("added") && out.contains("skipped") && out.contains("text.mp3: not an MP3"))
        (rc, out, _) = try car.jamz("add", "cbr")
        #expect(rc == 0 && out.contains("added 1 track"))
        (rc, out, _) = try car.jamz("volume", "150")
        #expect(rc == 1)
        (rc, out, _) = try car.jamz("volume", "35")
        #expect(rc == 0 && out.contains("volume 35"))
        (rc, out, _) = try car.jamz("play")
        #expect(rc == 0 && out.contains("playing 1. \"CBR Tone\""))
        (rc, out, _) = try car.jamz("status", "--json")
        let json = try JSONSerialization.jsonObject(with: Data(out.utf8)) as? [String: Any]
        #expect(json?["state"] as? String == "playing")
        #expect((json?["track"] as? [String: Any])?["title"] as? String == "CBR Tone")
        #expect(json?["volume"] as? Int == 35)
        #expect(json?["queueLength"] as? Int == 1)
        (rc, out, _) = try car.jamz("pause")
        #expect(rc == 0 && out.contains("paused"))
        (rc, out, _) = try car.jamz("toggle")
        #expect(rc == 0 && out.contains("playing"))
        (rc, out, _) = try car.jamz("seek", "1.5")
        #expect(rc == 0 && out.contains("0:01.50"))
        (rc, out, _) = try car.jamz("next")
        #expect(rc == 1)
        (rc, out, _) = try car.jamz("seek", "1e15")     // clamped to the end of the track, no overflow
        #expect(rc == 0 && out.contains("at 0:0"))
        (rc, out, _) = try car.jamz("seek", "0")
        (rc, out, _) = try car.jamz("queue")
        #expect(rc == 0 && out.contains("CBR Tone"))
        (rc, out, _) = try car.jamz("cache", "--json")
        let cache = try JSONSerialization.jsonObject(with: Data(out.utf8)) as? [String: Any]
        #expect(cache?["tracks"] as? Int == 1)
        #expect(car.terminate() == 0)
        (rc, _, err) = try car.jamz("status")
        #expect(rc == 2 && err.contains("cannot reach jamzd"))
    }

    /// `jamz remove` and `jamz move` change the entries after the one playing, and refuse the
    /// one playing (the music would move) with the reason.
    @Test func removeAndMoveEditOnlyWhatComesAfterThePlayingEntry() throws {
        let car = Car()
        try car.start()
        #expect(try car.jamz("import", try musicFolder(["long65.mp3", "cbr.mp3", "vbr.mp3", "mono22k.mp3"])).0 == 0)
        func titles() throws -> [String] {
            let q = try JSONSerialization.jsonObject(with: Data(try car.jamz("queue", "--json").1.utf8)) as? [[String: Any]] ?? []
            return q.compactMap { $0["id"] as? String }
        }
        for t in ["sixty", "cbr", "vbr", "mono"] {
            let (rc, _, err) = try car.jamz("add", t)
            #expect(rc == 0, "\(err)")
        }
        let ids = try titles()
        try #require(ids.count == 4)
        var (rc, out, err) = try car.jamz("remove", "9")
        #expect(rc == 1 && err.contains("no place 9"))
        #expect(try car.jamz("play").0 == 0)
        (rc, _, err) = try car.jamz("remove", "1")
        #expect(rc == 1 && err.contains("cannot remove place 1: it is playing"))
        (rc, out, _) = try car.jamz("move", "4", "2")
        #expect(rc == 0 && out.contains("moved to 2."))
        #expect(try titles() == [ids[0], ids[3], ids[1], ids[2]])
        (rc, out, _) = try car.jamz("remove", "3")
        #expect(rc == 0 && out.contains("queue has 3"))
        #expect(try titles() == [ids[0], ids[3], ids[2]])
        (rc, _, err) = try car.jamz("move", "2", "1")
        #expect(rc == 1 && err.contains("cannot move place 1"))
        // Still playing the first entry, from where it was.
        let status = try car.client.status()
        #expect(status.state == "playing" && status.track?.id == ids[0])
        // Kept across a restart (the queue is in SQLite).
        #expect(car.terminate() == 0)
        try car.start()
        #expect(try titles() == [ids[0], ids[3], ids[2]])
        #expect(car.terminate() == 0)
    }

    @Test func forgedControlLinesAreAnsweredAndCounted() throws {
        let car = Car()
        try car.start()
        let r = try car.client.send(ControlRequest(cmd: "self-destruct"))
        #expect(!r.ok)
        // A line that is not JSON at all, through a raw socket.
        let reply = try rawRequest(car.socket, "this is not json\n")
        #expect(reply.contains("\"ok\":false") && reply.contains("not a valid request"))
        usleep(200_000)
        #expect(try car.client.status().counters["control.bad_requests"] == 2)
        #expect(car.terminate() == 0)
    }

    @Test func evictsLeastRecentlyPlayedButNeverAQueuedTrack() throws {
        let car = Car()
        let conf = car.dir.appendingPathComponent("jamzd.toml").path
        try "[cache]\nmax_tracks = 3\n".write(toFile: conf, atomically: true, encoding: .utf8)
        car.extraArgs = ["--config", conf]
        try car.start()
        try car.client.call("import", try musicFolder(["cbr.mp3", "vbr.mp3"]))
        try car.client.call("add", "vbr tone")          // queued: must survive
        try car.client.call("import", try musicFolder(["id3v1.mp3", "id3v24.mp3", "mono22k.mp3"]))
        let cache = try car.client.call(.cache, expecting: CacheReport.self).data
        #expect(cache?.tracks == 3)
        #expect(cache?.evictions == 2)
        // The queued VBR track is still cached and plays; the first imported, unqueued one is gone.
        try car.client.call("play")
        #expect(try car.client.status().track?.title == "VBR Tone")
        let r = try car.client.send(.add("cbr tone"))
        #expect(!r.ok && r.message.contains("no longer in the cache"))
        #expect(try car.client.call(.cache, expecting: CacheReport.self).data?.misses == 1)
        #expect(car.terminate() == 0)
    }
}

extension DaemonProcessTests {
    /// A queued track whose file cannot be decoded when its turn comes is skipped, counted, and
    /// the music goes on with the next entry.
    /// A convoy's DJ loses power: after the restart its monotonic clock began again, so it
    /// re-anchors the convoy's timeline where its player was saved and plays on from there; the
    /// playlist (op log) is intact.
    @Test func aConvoyDJResumesAfterKillNine() throws {
        let car = Car(args: ["--convoy-port", "0"])   // alone: no link needed to be the DJ
        try car.start()
        try car.client.call("import", try musicFolder(["long65.mp3", "cbr.mp3"]))
        try car.client.call("group", "create", "solo")
        try car.client.call("add", "long sixty-five")
        try car.client.call("add", "cbr tone")
        try car.client.call("play")
        try waitUntil("the convoy plays", timeout: 10) { ((try? car.client.status().position) ?? 0) > 2 }
        sleep(2)
        let before = try car.client.status()
        car.kill9()
        try car.start()
        try waitUntil("the convoy plays again", timeout: 10) { (try? car.client.status().state) == "playing" }
        let after = try car.client.status()
        #expect(after.track?.title == "Long Sixty-Five")
        // Saved at most a second before the kill, resumed 0.3 s after the start.
        #expect(abs(after.position - before.position) < 3, "before \(before.position) s, after \(after.position) s")
        let queue = try car.client.call(.queue, expecting: [QueueItemReport].self).data ?? []
        #expect(queue.count == 2)
        let group = try car.client.call(.group(.show), expecting: GroupReport.self).data
        #expect(group?.isDJ == true)
        #expect(car.logText.contains("resuming the convoy as its DJ"))
        #expect(car.terminate() == 0)
    }

    @Test func anUndecodableEntryIsSkipped() throws {
        let car = Car()
        try car.start()
        try car.client.call("import", try musicFolder(["id3v1.mp3", "vbr.mp3", "cbr.mp3"]))
        try car.client.call("add", "only v1")   // 2 s
        try car.client.call("add", "vbr tone")  // its file will be gone
        try car.client.call("add", "cbr tone")
        let queue = try car.client.call(.queue, expecting: [QueueItemReport].self).data ?? []
        let vbrID = try #require(queue.first { $0.title == "VBR Tone" }?.id)
        try FileManager.default.removeItem(atPath: "\(car.dataDir)/cache/\(vbrID).mp3")
        try car.client.call("play")
        try waitUntil("the third entry plays", timeout: 15) { (try? car.client.status().track?.title) == "CBR Tone" }
        let s = try car.client.status()
        #expect(s.queueIndex == 3 && s.state == "playing")
        #expect(s.counters["decode.failures"] == 1)
        #expect(car.logText.contains("cannot play \"VBR Tone\""))
        #expect(car.terminate() == 0)
    }
}

/// Sends raw bytes to the control socket and returns the first line of the answer.
func rawRequest(_ path: String, _ text: String) throws -> String {
    let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
    defer { close(fd) }
    let rc = UnixAddress(path)!.withSockaddr { connect(fd, $0, $1) }
    guard rc == 0 else { throw HarnessError("connect failed") }
    _ = text.withCString { write(fd, $0, strlen($0)) }
    var buf = [UInt8](repeating: 0, count: 4096)
    var got = [UInt8]()
    while !got.contains(UInt8(ascii: "\n")) {
        let n = read(fd, &buf, buf.count)
        if n <= 0 { break }
        got += buf[0..<n]
    }
    return String(decoding: got, as: UTF8.self)
}
