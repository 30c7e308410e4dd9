import Foundation
import JamzTestSupport
import JamzAudio
import JamzCore
import JamzLibrary
import Logging
import Synchronization
import Testing

/// The renderer through the real `file:` output on the real clock: what reaches the sink is
/// exactly the track's decoded frames, started on the asked frame, gapless across tracks.
@Suite struct RendererTests {
    struct Rig {
        let renderer: Renderer
        let clock = SystemClock()
        let out: String

        init(tracks: [String: String]) async throws {
            out = Fixtures.tempDir().appendingPathComponent("sink.raw").path
            let output = FileOutput(path: out, clock: clock)
            let paths = tracks
            renderer = Renderer(settings: .init(), output: output, logger: Logger(label: "test"),
                                trackPath: { id in paths[id.hex]! })
            let r = renderer
            try await withCheckedThrowingContinuation { (c: CheckedContinuation<Void, any Error>) in
                r.start { e in if let e { c.resume(throwing: e) } else { c.resume() } }
            }
        }

        func play(_ queue: [QueueEntry], from frame: Int64 = 0) {
            let t = renderer.earliestStart(now: clock.now())
            renderer.setPlan(anchor: PlayAnchor(entryID: queue[0].id, frame: frame, time: t, playing: true), queue: queue)
        }

        func stop() async -> [Int16] {
            await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
                renderer.stop(fadeOut: 0) { c.resume() }
            }
            return (try? Reference.samples(ofFile: out)) ?? []
        }
    }

    static func entry(_ id: Int64, _ name: String) throws -> (QueueEntry, String, String) {
        let p = Fixtures.path(name)
        let (tid, _) = try TrackProbe.sha256(path: p)
        let frames = Int64(try Reference.decode(name).count / 2)
        return (QueueEntry(id: id, trackID: tid, frames: frames), tid.hex, p)
    }

    /// Frames after the 5 ms fade-in must be bit-exact (volume 100 is gain 1).
    static let settle = 400

    /// What the renderer writes when it starts `ref` at `frame` from silence: the 5 ms fade-in
    /// (gain k/220 on the k-th frame, as the renderer computes it), then the samples unchanged.
    static func expectedStart(_ ref: [Int16], from frame: Int, frames n: Int) -> [Int16] {
        var fade: Float = 0
        let step: Float = 1 / 220
        var out: [Int16] = []
        for k in 0..<n {
            if fade != 1 { fade = min(1, fade + step) }
            let i = (frame + k) * 2
            out.append(Int16(clamping: Int(Float(ref[i]) * fade)))
            out.append(Int16(clamping: Int(Float(ref[i + 1]) * fade)))
        }
        return out
    }

    /// The sink frame at which `expected` starts exactly (the first audible frame can come a few
    /// frames late, where the fade-in rounds samples to zero).
    static func exactStart(of expected: [Int16], in got: [Int16]) -> Int? {
        guard let s = Reference.firstAudibleFrame(got) else { return nil }
        for c in stride(from: s, through: max(0, s - 16), by: -1) where got.count >= c * 2 + expected.count {
            if Array(got[(c * 2)..<(c * 2 + expected.count)]) == expected { return c }
        }
        return nil
    }

    @Test func startsOnTheFrameAskedAndPlaysBitExact() async throws {
        let (e, hex, path) = try Self.entry(1, "cbr.mp3")
        let rig = try await Rig(tracks: [hex: path])
        rig.play([e], from: 30_000)
        try await Task.sleep(for: .milliseconds(1500))
        let got = await rig.stop()
        let ref = try Reference.decode("cbr.mp3")
        // Everything before the start is silence; from it, frame 30000 on, faded in, then exact.
        let want = Self.expectedStart(ref, from: 30_000, frames: 40_000)
        let start = Self.exactStart(of: want, in: got)
        let s = Reference.firstAudibleFrame(got) ?? 0
        #expect(start != nil, "no exact start; best matching frame at the first audible one: \(bestOffset(got[(s * 2)...], in: ref, around: 30_000, range: 5000))")
    }

    @Test func tracksFollowEachOtherGapless() async throws {
        let (e1, h1, p1) = try Self.entry(1, "id3v1.mp3")   // 2 s
        let (e2, h2, p2) = try Self.entry(2, "cbr.mp3")
        let rig = try await Rig(tracks: [h1: p1, h2: p2])
        rig.play([e1, e2], from: 44_100)                      // one second before the boundary
        try await Task.sleep(for: .milliseconds(2000))
        let got = await rig.stop()
        let r1 = try Reference.decode("id3v1.mp3"), r2 = try Reference.decode("cbr.mp3")
        // The rest of track 1 from frame 44100 (faded in), then track 2 from its first frame.
        let fadeIn = Self.expectedStart(r1, from: 44_100, frames: Self.settle)
        let want = fadeIn + Array(r1[((44_100 + Self.settle) * 2)...]) + Array(r2[0..<(30_000 * 2)])
        let start = Self.exactStart(of: want, in: got)
        let s = Reference.firstAudibleFrame(got) ?? 0
        #expect(start != nil, "no exact gapless run; best match of track 1 at the first audible frame: \(bestOffset(got[(s * 2)...], in: r1, around: 44_100, range: 5000))")
    }

    @Test func heardMapMatchesWhatWasWritten() async throws {
        let (e, hex, path) = try Self.entry(1, "vbr.mp3")
        let rig = try await Rig(tracks: [hex: path])
        rig.play([e])
        // Wait until music is heard (a loaded machine may take a while to start).
        var heardNow: HeardMap.Heard? = nil
        for _ in 0..<100 where heardNow == nil {
            try await Task.sleep(for: .milliseconds(50))
            heardNow = rig.renderer.heard(at: rig.clock.now())
        }
        try await Task.sleep(for: .milliseconds(300))
        // The file sink releases each block when its first frame is heard: the frame heard at t
        // is in the last block that reached the file by t.
        func written() throws -> Int64 {
            let got = try Reference.samples(ofFile: rig.out)
            return Int64(got.count / 2 - (Reference.firstAudibleFrame(got) ?? 0))
        }
        // (On a loaded machine the renderer can be late: then silence is heard for a moment.)
        var before: Int64 = 0, after: Int64 = 0
        var found: HeardMap.Heard? = nil
        for _ in 0..<200 where found == nil {
            before = try written()
            found = rig.renderer.heard(at: rig.clock.now())
            after = try written()
            if found == nil { try await Task.sleep(for: .milliseconds(10)) }
        }
        let heard = try #require(found)
        #expect(heard.entryID == 1)
        // (+16: the first audible frame can be a few frames late where the fade-in rounds to 0.)
        #expect(heard.frame < after + 16 && heard.frame >= before - 2048, "heard \(heard.frame), file \(before)...\(after)")
        _ = await rig.stop()
    }

    /// A plan whose music cannot be decoded in time (here: its start is already 600 ms past when
    /// it is set). A car's own plan (`slip`) moves later and starts on the frame asked, reported
    /// to `onStartSlipped`; a convoy's plan keeps its time and skips the music it missed.
    @Test(arguments: [true, false]) func lateStartSlipsOnlyWhenAllowed(slip: Bool) async throws {
        let (e, hex, path) = try Self.entry(1, "cbr.mp3")
        let rig = try await Rig(tracks: [hex: path])
        let moves = Mutex<[PlayAnchor]>([])
        rig.renderer.onStartSlipped = { a in moves.withLock { $0.append(a) } }
        let planned = rig.clock.now() - 600_000_000
        rig.renderer.setPlan(anchor: PlayAnchor(entryID: 1, frame: 30_000, time: planned, playing: true), queue: [e], slip: slip)
        // The first frame the renderer says is heard.
        var firstHeard: Int64? = nil
        for _ in 0..<300 where firstHeard == nil {
            try await Task.sleep(for: .milliseconds(5))
            firstHeard = rig.renderer.heard(at: rig.clock.now())?.frame
        }
        try await Task.sleep(for: .milliseconds(1000))
        let stats = rig.renderer.currentStats
        let got = await rig.stop()
        let ref = try Reference.decode("cbr.mp3")
        let start = Self.exactStart(of: Self.expectedStart(ref, from: 30_000, frames: 20_000), in: got)
        let moved = moves.withLock { $0 }
        if slip {
            #expect(start != nil, "the music did not start on frame 30000")
            #expect(stats.framesSlipped >= 26_460, "slipped \(stats.framesSlipped) frames, at least 0.6 s expected")
            let last = try #require(moved.last)
            #expect(last.entryID == 1 && last.frame == 30_000 && last.time >= planned + 600_000_000)
            // The moved plan's time is when the first frame was heard: the renderer says so.
            #expect(rig.renderer.heard(at: last.time + 1_000_000)?.frame ?? -1 >= 30_000)
        } else {
            #expect(start == nil, "a convoy plan started late on its first frame instead of keeping the time")
            #expect(stats.framesSlipped == 0 && moved.isEmpty)
            // It joined the timeline: the first music heard is at least 0.6 s into the plan.
            let first = try #require(firstHeard)
            #expect(first >= 30_000 + 26_460, "first music heard from frame \(first)")
        }
    }

    /// Paused, moved further than the decoder holds, played with a start already late: the
    /// decoder still holds the old place when the plan comes due. A car's own plan slips until
    /// the decoder has the new place, and starts exactly on it (the seek is not lost).
    @Test func aLateStartAfterAPausedSeekSlipsToTheNewPlace() async throws {
        let (e, hex, path) = try Self.entry(1, "cbr.mp3")
        let rig = try await Rig(tracks: [hex: path])
        let r = rig.renderer
        r.setPlan(anchor: PlayAnchor(entryID: 1, frame: 10_000, time: r.earliestStart(now: rig.clock.now()), playing: true), queue: [e], slip: true)
        try await Task.sleep(for: .milliseconds(500))
        r.setPlan(anchor: PlayAnchor(entryID: 1, frame: 20_000, time: r.earliestChange(now: rig.clock.now()), playing: false), queue: [e], slip: true)
        try await Task.sleep(for: .milliseconds(300))
        r.setPlan(anchor: PlayAnchor(entryID: 1, frame: 60_000, time: r.earliestChange(now: rig.clock.now()), playing: false), queue: [e], slip: true)
        try await Task.sleep(for: .milliseconds(200))
        r.setPlan(anchor: PlayAnchor(entryID: 1, frame: 60_000, time: rig.clock.now() - 300_000_000, playing: true), queue: [e], slip: true)
        try await Task.sleep(for: .milliseconds(800))
        let got = await rig.stop()
        let want = Self.expectedStart(try Reference.decode("cbr.mp3"), from: 60_000, frames: 10_000)
        var found = false
        var c = 0
        while !found && (c + 1) * 2 + want.count <= got.count {
            if got[c * 2] == 0 && got[c * 2 + 1] == 0, Array(got[((c + 1) * 2)..<((c + 1) * 2 + want.count)]) == want { found = true }
            c += 1
        }
        #expect(found, "the music did not come back exactly on frame 60000")
        #expect(r.currentStats.framesSlipped > 0)
    }

    /// Paused, moved further than the decoder holds, resumed: the music comes back on the new
    /// frame exactly (the decoder is sent there before the resume is heard).
    @Test func resumeAfterAPausedSeekStartsOnTheFrame() async throws {
        let (e, hex, path) = try Self.entry(1, "cbr.mp3")
        let rig = try await Rig(tracks: [hex: path])
        rig.play([e], from: 10_000)
        try await Task.sleep(for: .milliseconds(500))
        let r = rig.renderer
        r.setPlan(anchor: PlayAnchor(entryID: 1, frame: 20_000, time: r.earliestChange(now: rig.clock.now()), playing: false), queue: [e])
        try await Task.sleep(for: .milliseconds(300))
        r.setPlan(anchor: PlayAnchor(entryID: 1, frame: 120_000, time: r.earliestChange(now: rig.clock.now()), playing: false), queue: [e])
        try await Task.sleep(for: .milliseconds(200))
        r.setPlan(anchor: PlayAnchor(entryID: 1, frame: 120_000, time: r.earliestStart(now: rig.clock.now()), playing: true), queue: [e])
        try await Task.sleep(for: .milliseconds(600))
        let got = await rig.stop()
        let want = Self.expectedStart(try Reference.decode("cbr.mp3"), from: 120_000, frames: 10_000)
        var found = false
        var c = 0
        while !found && (c + 1) * 2 + want.count <= got.count {
            // Candidates: a silent frame followed by the first expected sample's neighbourhood.
            if got[c * 2] == 0 && got[c * 2 + 1] == 0, Array(got[((c + 1) * 2)..<((c + 1) * 2 + want.count)]) == want { found = true }
            c += 1
        }
        #expect(found)
    }

    /// The real `file:` output, counting what the renderer asks of the device when idle.
    final class CountingOutput: AudioOutput, @unchecked Sendable {
        let inner: FileOutput
        let counts = Mutex((idle: 0, release: 0, writesAfterRelease: 0))
        init(_ inner: FileOutput) { self.inner = inner }
        var label: String { inner.label }
        var blockFrames: Int { inner.blockFrames }
        func open(format: AudioFormat) throws { try inner.open(format: format) }
        func nextFrameHeardAt() throws -> Nanos { try inner.nextFrameHeardAt() }
        func write(_ samples: UnsafeBufferPointer<Int16>) throws {
            counts.withLock { if $0.release > 0 { $0.writesAfterRelease += 1 } }
            try inner.write(samples)
        }
        func idle() { counts.withLock { $0.idle += 1 }; inner.idle() }
        func release() { counts.withLock { $0.release += 1 } }
        func close() { inner.close() }
    }

    /// Paused, the same paused place handed over again and again (a convoy follower does it once
    /// a second) wakes nothing; left paused, the output lets its device go once; a new plan
    /// takes it again.
    @Test func aPauseHandedOverAgainWakesNothingAndTheDeviceIsLetGo() async throws {
        let (e, _, path) = try Self.entry(1, "cbr.mp3")
        let clock = SystemClock()
        let out = CountingOutput(FileOutput(path: Fixtures.tempDir().appendingPathComponent("sink.raw").path, clock: clock))
        var settings = Renderer.Settings()
        settings.releaseAfter = 1_500_000_000
        let r = Renderer(settings: settings, output: out, logger: Logger(label: "test"), trackPath: { _ in path })
        try await withCheckedThrowingContinuation { (c: CheckedContinuation<Void, any Error>) in
            r.start { err in if let err { c.resume(throwing: err) } else { c.resume() } }
        }
        r.setPlan(anchor: PlayAnchor(entryID: 1, frame: 0, time: r.earliestStart(now: clock.now()), playing: true), queue: [e])
        try await Task.sleep(for: .milliseconds(300))
        r.setPlan(anchor: PlayAnchor(entryID: 1, frame: 20_000, time: r.earliestChange(now: clock.now()), playing: false), queue: [e])
        var waited = 0
        while !r.isParked && waited < 100 { try await Task.sleep(for: .milliseconds(20)); waited += 1 }
        #expect(r.isParked)
        let beats = r.heartbeat
        let idles = out.counts.withLock { $0.idle }
        for _ in 0..<20 {
            r.setPlan(anchor: PlayAnchor(entryID: 1, frame: 20_000, time: clock.now(), playing: false), queue: [e])
        }
        try await Task.sleep(for: .milliseconds(200))
        #expect(r.heartbeat == beats, "the renderer turned for a pause it already had")
        #expect(out.counts.withLock { $0.idle } == idles)
        // Another paused place is news: the renderer turns once and parks again.
        r.setPlan(anchor: PlayAnchor(entryID: 1, frame: 30_000, time: clock.now(), playing: false), queue: [e])
        waited = 0
        while r.heartbeat == beats && waited < 100 { try await Task.sleep(for: .milliseconds(20)); waited += 1 }
        #expect(r.heartbeat != beats)
        waited = 0
        while out.counts.withLock({ $0.release }) == 0 && waited < 250 { try await Task.sleep(for: .milliseconds(20)); waited += 1 }
        #expect(out.counts.withLock { $0.release } == 1)
        r.setPlan(anchor: PlayAnchor(entryID: 1, frame: 30_000, time: r.earliestStart(now: clock.now()), playing: true), queue: [e])
        waited = 0
        while out.counts.withLock({ $0.writesAfterRelease }) == 0 && waited < 100 { try await Task.sleep(for: .milliseconds(20)); waited += 1 }
        #expect(out.counts.withLock { $0.writesAfterRelease } > 0, "nothing written after the device was let go")
        await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in r.stop(fadeOut: 0) { c.resume() } }
    }

    @Test func volumeScalesTheSamples() async throws {
        let (e, hex, path) = try Self.entry(1, "cbr.mp3")
        let rig = try await Rig(tracks: [hex: path])
        rig.renderer.setVolume(0.5)   // gain 0.25
        rig.play([e])
        try await Task.sleep(for: .milliseconds(800))
        let got = await rig.stop()
        let ref = try Reference.decode("cbr.mp3")
        let s = try #require(Reference.firstAudibleFrame(got))
        var worst = 0
        for i in (Self.settle * 2)..<(10_000 * 2) {
            worst = max(worst, abs(Int(got[s * 2 + i]) - Int(Float(ref[i]) * 0.25)))
        }
        #expect(worst <= 1)
    }
}
