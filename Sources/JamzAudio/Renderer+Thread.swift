import Foundation
import JamzCore

/// The renderer thread: a block at a time, asks `BlockPlanner` what the block holds and carries
/// its steps out on the decoder and the output; records what is heard when.
extension Renderer {
    func finish() {
        lock.lock()
        finished = true
        let waiters = doneWaiters
        doneWaiters = []
        lock.unlock()
        decoder.stop()
        waiters.forEach { $0() }
    }

    func run() {
        block.reserveCapacity(output.blockFrames * 4)
        while true {
            lock.lock()
            let quit = stopping && (fadeGain <= 0 || !wasAudible)
            beats &+= 1
            lock.unlock()
            if quit { break }
            do {
                if isIdle() {
                    // Nothing to play: let the output run dry and sleep until a new plan (or a
                    // stop) pokes: no timed wake-ups while paused.
                    output.idle()
                    predicted = nil
                    lock.lock(); parked = true; lock.unlock()
                    wake.lock()
                    // Still nothing after `releaseAfter`: the device is let go until a plan
                    // comes (one timed wake-up per pause, then none).
                    var quiet = false
                    while !poked && !quiet { quiet = !wake.wait(until: Date(timeIntervalSinceNow: Double(settings.releaseAfter) / 1e9)) }
                    if !poked {
                        wake.unlock()
                        output.release()
                        wake.lock()
                        while !poked { wake.wait() }
                    }
                    poked = false
                    wake.unlock()
                    lock.lock(); parked = false; lock.unlock()
                    continue
                }
                try renderOneBlock()
            } catch {
                logger.error("audio output failed: \(error); retrying in 1 s")
                Thread.sleep(forTimeInterval: 1)
                predicted = nil
            }
        }
        output.close()
        finish()
    }

    func poke() {
        wake.lock(); poked = true; wake.signal(); wake.unlock()
    }

    /// Silent, and nothing to play now or within the next half second.
    func isIdle() -> Bool {
        guard !wasAudible else { return false }
        lock.lock()
        let a = anchor, q = queue, p = prefetch, speaking = mixer.active
        lock.unlock()
        if p != nil || speaking { return false }
        guard let a, a.playing else { return true }
        guard let t = try? output.nextFrameHeardAt() else { return false }
        return Timeline.locate(a, in: q, at: max(t, a.time), rate: rate) == nil
    }

    /// When the next block will be heard: the output's report, smoothed against the prediction
    /// from the previous block so that measurement noise does not move the music.
    func nextHeard() throws -> Nanos {
        let measured = try output.nextFrameHeardAt() + settings.boardLatency
        guard let p = predicted else { return measured }
        let d = measured - p
        if abs(d) > 20_000_000 { return measured }   // an underrun or a restart: believe the device
        return p + d / 16
    }

    func renderOneBlock() throws {
        let h = try nextHeard()
        let n = output.blockFrames
        lock.lock()
        let plan = anchor
        let q = queue
        let before = previous
        let failed = failedEntries
        let fetch = prefetch
        prefetch = nil
        let generation = planGeneration
        var slip = slipArmed ? plan.map { BlockPlanner.Slip(anchor: $0, total: slipTotal) } : nil
        lock.unlock()
        slipHeard = false
        block.removeAll(keepingCapacity: true)
        pieces.removeAll(keepingCapacity: true)

        // A new plan takes effect at its anchor time, to the frame: the part of the block before
        // it still follows the previous plan.
        let end = h + FrameMath.duration(ofFrames: Int64(n), rate: rate)
        if let a = plan, a.time > h {
            let k = a.time >= end ? n : Int(FrameMath.frames(in: a.time - h, rate: rate))
            var none: BlockPlanner.Slip?
            renderSpan(before?.anchor, before?.queue ?? [], failed: failed, slip: &none, fetchPending: fetch != nil,
                       generation: generation, at: h, frames: k)
            renderSpan(plan, q, failed: failed, slip: &slip, fetchPending: fetch != nil, generation: generation, at: h, frames: n - k)
        } else {
            renderSpan(plan, q, failed: failed, slip: &slip, fetchPending: fetch != nil, generation: generation, at: h, frames: n)
        }
        // The slip plan is heard: from now on it keeps its time.
        if slip != nil && slipHeard {
            lock.lock(); if planGeneration == generation { slipArmed = false }; lock.unlock()
        }
        slipping = false
        // Send the decoder to a new plan's place only now: this block faded out on what it held.
        if let fetch {
            decoder.request(fetch)
            planner.requested(entryID: fetch.entryID, frame: fetch.frame, at: h)
        }
        try emit(at: h)
    }

    /// Renders `frames` frames of `plan` at the end of the block being built: the planner
    /// decides, this carries its steps out in order.
    func renderSpan(_ plan: PlayAnchor?, _ q: [QueueEntry], failed: Set<Int64>, slip: inout BlockPlanner.Slip?,
                            fetchPending: Bool, generation: Int, at h: Nanos, frames n: Int) {
        let head = decoder.withHead { c in c.map { BlockPlanner.Head(entryID: $0.entryID, frame: $0.headFrame, failure: $0.failure) } }
        slipping = slip != nil
        let steps = planner.span(plan, queue: q, failed: failed, head: head, buffered: decoder.buffered, audible: wasAudible,
                                 slip: &slip, fetchPending: fetchPending, blockStart: h, offset: blockFrames, frames: n)
        for step in steps {
            switch step {
            case .take(let k): take(frames: k, at: h)
            case .skip(let k): skip(frames: k)
            case .repeatLast(let k): repeatLastFrame(k, at: h)
            case .silence(let k): silence(frames: k, at: h)
            case .fadeOut(let k): fadeOutThenSilence(at: h, frames: k)
            case .request(let entryID, let frame): decoder.request(DecoderThread.Start(entryID: entryID, frame: frame))
            case .entryFailed(let id, let reason):
                decoder.withHead { $0 = nil }
                lock.lock(); failedEntries.insert(id); lock.unlock()
                onEntryFailed?(id, reason)
            case .slip(let moved): moveStart(by: moved, generation: generation)
            case .slipLimitReached:
                lock.lock(); if planGeneration == generation { slipArmed = false }; lock.unlock()
                slipping = false
                logger.warning("the music was not decoded within \(BlockPlanner.slipLimit / nanosPerSecond) s of its start: it keeps its time from now on")
            case .countJump: count { $0.jumps += 1 }
            case .countRepeated(let k): count { $0.framesRepeated += k }
            case .countDropped(let k): count { $0.framesDropped += k }
            }
        }
        slipping = false
    }

    /// Moves the start of the slip plan later (unless a new plan replaced it meanwhile).
    func moveStart(by moved: Nanos, generation: Int) {
        lock.lock()
        guard planGeneration == generation, slipArmed, var a = anchor else { lock.unlock(); return }
        a.time += moved
        anchor = a
        slipTotal += moved
        stats.framesSlipped += Int(FrameMath.frames(in: moved, rate: rate))
        let handler = slipHandler
        lock.unlock()
        handler?(a)
    }

    // MARK: building the block

    var blockFrames: Int { block.count / 2 }

    func startAudio() {
        if !wasAudible {
            volumeGain = volumeTargetNow()
            // A short fade-in, unless a slower fade (a resume) is already under way.
            lock.lock()
            if !stopping && fadeGain == fadeTarget && fadeTarget > 0 {
                fadeGain = 0
                fadeStep = fadeTarget / Float(max(1, FrameMath.frames(in: settings.jumpFade, rate: rate)))
            }
            lock.unlock()
        }
    }

    func gainRamp() -> (fade: Float, target: Float, step: Float, volume: Float) {
        lock.lock(); defer { lock.unlock() }
        return (fadeGain, fadeTarget, fadeStep, volumeTarget)
    }

    func count(_ change: (inout Stats) -> Void) {
        lock.lock(); change(&stats); lock.unlock()
    }

    func volumeTargetNow() -> Float { lock.lock(); defer { lock.unlock() }; return volumeTarget }

    func storeFade(_ g: Float) { lock.lock(); fadeGain = g; lock.unlock() }

    /// Copies up to `frames` frames from the decoder into the block, with gain.
    func take(frames: Int, at h: Nanos) {
        var need = frames
        if !wasAudible { startAudio() }
        var (fade, target, step, volTarget) = gainRamp()
        var vol = volumeGain
        let volStep: Float = 1.0 / Float(rate / 100)   // full-scale volume change in 10 ms
        while need > 0 {
            let got: Int = decoder.withHead { c in
                guard var chunk = c, chunk.failure == nil, chunk.remaining > 0 else { return 0 }
                let k = min(need, chunk.remaining)
                let start = block.count
                pieces.append(HeardSegment(start: h + FrameMath.duration(ofFrames: Int64(start / 2), rate: rate), count: k,
                                           entryID: chunk.entryID, trackID: chunk.trackID, firstFrame: chunk.headFrame))
                block.append(contentsOf: repeatElement(0, count: k * 2))
                let from = chunk.consumed * 2
                block.withUnsafeMutableBufferPointer { dst in
                    chunk.samples.withUnsafeBufferPointer { src in
                        if fade == target && vol == volTarget {
                            // Steady gain: a plain copy at unity (bit-exact), else one multiply.
                            let g = fade * vol
                            if g == 1 {
                                UnsafeMutableRawPointer(dst.baseAddress! + start)
                                    .copyMemory(from: src.baseAddress! + from, byteCount: k * 4)
                            } else {
                                for i in 0..<(k * 2) { dst[start + i] = Int16(clamping: Int(Float(src[from + i]) * g)) }
                            }
                        } else {
                            // A fade or a volume change in progress: ramp frame by frame.
                            var i = 0
                            while i < k * 2 {
                                if fade != target { fade = fade < target ? min(target, fade + step) : max(target, fade - step) }
                                if vol != volTarget { vol = vol < volTarget ? min(volTarget, vol + volStep) : max(volTarget, vol - volStep) }
                                let g = fade * vol
                                dst[start + i] = Int16(clamping: Int(Float(src[from + i]) * g))
                                dst[start + i + 1] = Int16(clamping: Int(Float(src[from + i + 1]) * g))
                                i += 2
                            }
                        }
                    }
                }
                chunk.consumed += k
                c = chunk
                return k
            }
            if got == 0 { break }
            need -= got
            wasAudible = true
            if slipping { slipHeard = true }
        }
        volumeGain = vol
        storeFade(fade)
        if need > 0 {
            wasAudible = false
            // The decoder fell behind (or the queue ended mid-block): silence for the rest.
            silence(frames: need, at: h)
        }
    }

    func skip(frames: Int) {
        var left = frames
        while left > 0 {
            let got: Int = decoder.withHead { c in
                guard var chunk = c, chunk.failure == nil, chunk.remaining > 0 else { return 0 }
                let k = min(left, chunk.remaining)
                chunk.consumed += k
                c = chunk
                return k
            }
            if got == 0 { break }
            left -= got
        }
    }

    func repeatLastFrame(_ k: Int, at h: Nanos) {
        guard block.count >= 2 else { silence(frames: k, at: h); return }
        let l = block[block.count - 2], r = block[block.count - 1]
        for _ in 0..<k { block.append(l); block.append(r) }
        // The repeated frames count as the last piece's (an error of at most k frames, for k/rate s).
        if !pieces.isEmpty { pieces[pieces.count - 1].count += k }
    }

    /// If the last block was audible, fades out over a few ms using the upcoming decoded frames
    /// without consuming them (so a pause resumes exactly where it stopped); then silence.
    func fadeOutThenSilence(at h: Nanos, frames: Int) {
        var written = 0
        if wasAudible {
            let fadeFrames = min(frames, Int(FrameMath.frames(in: settings.jumpFade, rate: rate)))
            let g0 = gainRamp()
            let gain = g0.fade * volumeGain
            decoder.withHead { c in
                guard let chunk = c, chunk.failure == nil else { return }
                let k = min(fadeFrames, chunk.remaining)
                var i = chunk.consumed * 2
                for j in 0..<k {
                    let g = gain * Float(k - j) / Float(k + 1)
                    block.append(Int16(clamping: Int(Float(chunk.samples[i]) * g)))
                    block.append(Int16(clamping: Int(Float(chunk.samples[i + 1]) * g)))
                    i += 2
                }
                written = k
            }
            wasAudible = false
        }
        silence(frames: frames - written, at: h)
    }

    func silence(frames: Int, at h: Nanos) {
        guard frames > 0 else { return }
        let start = blockFrames
        block.append(contentsOf: repeatElement(0, count: frames * 2))
        pieces.append(HeardSegment(start: h + FrameMath.duration(ofFrames: Int64(start), rate: rate), count: frames,
                                   entryID: nil, trackID: nil, firstFrame: 0))
    }

    func emit(at h: Nanos) throws {
        guard !block.isEmpty else { return }
        lock.lock()
        for p in pieces where p.count > 0 || p.entryID != nil { heardMap.record(p) }
        // Close the block: whatever follows starts at its end.
        stats.blocks += 1
        // A prompt over the block (ducking the music's samples; what is heard when stays).
        if mixer.active { mixer.mix(&block) }
        lock.unlock()
        let t0 = SystemClock.raw()
        try block.withUnsafeBufferPointer { try output.write($0) }
        let took = SystemClock.raw() - t0
        if took > 4 * FrameMath.duration(ofFrames: Int64(blockFrames), rate: rate) {
            logger.warning("output write blocked for \(took / 1_000_000) ms (block heard at \(h / 1_000_000) ms, \(blockFrames) frames)")
        }
        predicted = h + FrameMath.duration(ofFrames: Int64(blockFrames), rate: rate)
    }
}
