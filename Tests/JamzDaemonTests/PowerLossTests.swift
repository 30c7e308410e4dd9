import Foundation
import GRDB
import JamzClient
import JamzCore
import JamzTestSupport
import Testing

/// `kill -9` at random instants while jamzd plays, edits and saves: every restart finds a
/// database that passes `PRAGMA integrity_check`, a queue with every acknowledged edit, and the
/// music resumed within a second of where it was heard.
@Suite struct PowerLossTests {
    struct Saved {
        var integrity: String
        var queue: [Int64]
        var entry: Int64?
        var frame: Int64
        var playing: Bool
    }

    static func inspect(_ path: String) throws -> Saved {
        var config = Configuration()
        config.readonly = true
        let dbq = try DatabaseQueue(path: path, configuration: config)
        defer { try? dbq.close() }
        return try dbq.read { db in
            let ok = try String.fetchOne(db, sql: "PRAGMA integrity_check") ?? "?"
            let q = try Int64.fetchAll(db, sql: "SELECT id FROM queueEntry ORDER BY ord, id")
            let row = try Row.fetchOne(db, sql: "SELECT entryId, frame, playing FROM player WHERE id = 1")
            return Saved(integrity: ok, queue: q, entry: row?["entryId"], frame: row?["frame"] ?? 0, playing: row?["playing"] ?? false)
        }
    }

    static func monotonic() -> Int64 {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Int64(ts.tv_sec) * 1_000_000_000 + Int64(ts.tv_nsec)
    }

    @Test func killNineAtRandomInstants() throws {
        let car = Car()
        try car.start()
        let music = try musicFolder(["long65.mp3", "cbr.mp3"])
        try car.client.call("import", music)
        try car.client.call("add", "long sixty-five")
        try car.client.call("play")
        var rng = SplitMix64(seed: 2026)   // the kill instants are random but the same on every run
        var acknowledged = try Self.inspect(car.db).queue
        for round in 0..<30 {
            var story = ""
            usleep(UInt32(Int.random(in: 150_000...1_200_000, using: &rng)))
            // Some rounds edit the queue or seek just before the kill: an acknowledged edit must survive.
            switch round % 5 {
            case 1:
                try car.client.call("add", "cbr tone")
                acknowledged = try Self.inspect(car.db).queue
            case 3:
                let target = Double(Int.random(in: 5...40, using: &rng))
                let was = try car.client.status()
                let answer = try car.client.call("seek", String(target))
                story = "seek from \(was.position) to \(target) at \(was.sampledAt): \(answer.message)"
                try waitUntil("the seek is heard", timeout: 10) {
                    guard let p = try? car.client.status().position else { return false }
                    return p >= target && p < target + 0.5
                }
            default: break
            }
            if try car.client.status().position > 50 {
                try car.client.call("seek", "5")
                try waitUntil("the seek is heard", timeout: 10) { ((try? car.client.status().position) ?? 99) < 7 }
            }
            let before = try car.client.status()
            usleep(UInt32(Int.random(in: 0...600_000, using: &rng)))
            let killedAt = Self.monotonic()
            car.kill9()

            let saved = try Self.inspect(car.db)
            #expect(saved.integrity == "ok", "round \(round)")
            #expect(saved.queue == acknowledged, "round \(round): queue after kill -9")
            #expect(saved.playing, "round \(round)")
            // Where it will resume, against where it was heard at the kill (same track).
            let heard = before.position + Double(killedAt - before.sampledAt) / 1e9
            let resumeAt = Double(saved.frame) / 44_100
            let savedIndex = saved.entry.flatMap { saved.queue.firstIndex(of: $0) }.map { $0 + 1 }
            #expect(savedIndex == before.queueIndex, "round \(round): saved entry \(String(describing: savedIndex)), heard \(String(describing: before.queueIndex))")
            #expect(abs(resumeAt - heard) <= 1.0, "round \(round): saved \(resumeAt) s, heard \(heard) s at the kill (status \(before.position) at \(before.sampledAt), killed at \(killedAt)) \(story)")

            let restartedAt = Self.monotonic()
            try car.start()
            let after = try car.client.status()
            let sinceRestart = Double(after.sampledAt - restartedAt) / 1e9
            #expect(after.state == "playing", "round \(round)")
            #expect(after.track?.id == before.track?.id, "round \(round): resumed another track")
            // Resumed from the saved frame: since the restart, at most the time that has passed.
            #expect(after.position >= resumeAt - 0.05 && after.position <= resumeAt + sinceRestart + 0.05,
                    "round \(round): at \(after.position) s \(sinceRestart) s after the restart, saved \(resumeAt) s")
        }
        #expect(car.terminate() == 0)
    }
}

