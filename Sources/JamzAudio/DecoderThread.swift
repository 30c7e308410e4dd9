import Foundation
import JamzCore
import Logging
import JamzPlatform

/// Decoded PCM for frames `firstFrame ..< firstFrame + frames` of one queue entry.
struct PCMChunk {
    var entryID: Int64
    var trackID: TrackID
    var firstFrame: Int64
    var samples: [Int16]
    /// Frames already taken by the renderer.
    var consumed = 0
    /// The decoder could not read this entry: `samples` is empty.
    var failure: String? = nil

    var frames: Int { samples.count / 2 }
    var remaining: Int { frames - consumed }
    var headFrame: Int64 { firstFrame + Int64(consumed) }
}

/// Decodes the queue ahead of the renderer on its own thread (libmpg123 blocks), gapless from one
/// entry into the next, into a bounded buffer. The renderer asks it to start somewhere; every
/// request empties the buffer, and what was being decoded for an older request is thrown away.
final class DecoderThread: @unchecked Sendable {
    // @unchecked: all mutable state is guarded by `cond`; the mpg123 handle is touched only by
    // the decoder thread itself.
    struct Start: Equatable {
        var entryID: Int64
        var frame: Int64
    }

    private let cond = NSCondition()
    private var chunks: [PCMChunk] = []
    private var bufferedFrames = 0
    private var pending: Start?
    private var current: Start?
    private var stopping = false
    private var queuePoked = false

    let rate: Int
    let aheadFrames: Int
    let chunkFrames = 4096
    /// Returns the entry after the given one (or the entry with that id when `after` is false).
    let lookup: @Sendable (_ entryID: Int64, _ after: Bool) -> QueueEntry?
    let path: @Sendable (TrackID) -> String
    let logger: Logger
    private var decodeErrors = 0   // guarded by cond

    var decodeErrorCount: Int { cond.lock(); defer { cond.unlock() }; return decodeErrors }

    init(rate: Int, aheadSeconds: Double = 1.5, logger: Logger,
         lookup: @escaping @Sendable (Int64, Bool) -> QueueEntry?, path: @escaping @Sendable (TrackID) -> String) {
        self.rate = rate
        self.aheadFrames = Int(Double(rate) * aheadSeconds)
        self.lookup = lookup
        self.path = path
        self.logger = logger
    }

    func start() {
        NamedThread.start("jamz-decoder") { [self] in self.run() }
    }

    func stop() {
        cond.lock(); stopping = true; cond.broadcast(); cond.unlock()
    }

    /// Drop everything buffered and decode from `frame` of `entryID` on.
    func request(_ s: Start) {
        cond.lock()
        pending = s
        chunks.removeAll()
        bufferedFrames = 0
        cond.broadcast()
        cond.unlock()
    }

    /// The queue changed: a decoder waiting at the end of the queue looks again.
    func queueChanged() {
        cond.lock(); queuePoked = true; cond.broadcast(); cond.unlock()
    }

    /// What the renderer sees: the head chunk of the latest request, if decoded yet.
    func withHead<R>(_ body: (inout PCMChunk?) -> R) -> R {
        cond.lock()
        defer { cond.unlock() }
        var head: PCMChunk? = chunks.first
        let r = body(&head)
        if let h = head {
            bufferedFrames -= (h.consumed - chunks[0].consumed)
            chunks[0] = h
            if h.remaining <= 0 && h.failure == nil {
                chunks.removeFirst()
                if bufferedFrames < aheadFrames / 2 { cond.broadcast() }
            }
        } else if !chunks.isEmpty {
            bufferedFrames -= chunks[0].remaining
            chunks.removeFirst()
            cond.broadcast()
        }
        return r
    }

    var buffered: Int {
        cond.lock(); defer { cond.unlock() }
        return bufferedFrames
    }

    private func run() {
        let handle: Mpg123Handle
        do { handle = try Mpg123Handle(outputRate: rate) } catch {
            logger.critical("decoder cannot start: \(error)")
            return
        }
        var scratch = [Int16](repeating: 0, count: chunkFrames * 2)
        var entry: QueueEntry? = nil
        var frame: Int64 = 0
        var refilling = true

        while true {
            // Wait for something to do: a new request, or room in the buffer and an entry to decode.
            cond.lock()
            // Refill in bursts: wake only when the buffer is below half, then fill it up (fewer
            // wake-ups than topping it up chunk by chunk).
            if bufferedFrames >= aheadFrames { refilling = false }
            if bufferedFrames < aheadFrames / 2 { refilling = true }
            while !stopping && pending == nil && (entry == nil || (!refilling && bufferedFrames >= aheadFrames / 2) || bufferedFrames >= aheadFrames) {
                if entry == nil, queuePoked, let c = current {
                    queuePoked = false
                    // We ran off the end of the queue: is there a next entry now?
                    if let next = lookup(c.entryID, true) {
                        entry = next; frame = 0
                        current = Start(entryID: next.id, frame: 0)
                        break
                    }
                    continue
                }
                cond.wait()
            }
            if stopping { cond.unlock(); break }
            if let p = pending {
                pending = nil
                current = p
                entry = lookup(p.entryID, false)
                frame = p.frame
                handle.close()
            }
            cond.unlock()
            guard let e = entry else { continue }

            // Decode one chunk of `e` from `frame`.
            var failure: String? = nil
            var got = 0
            do {
                if !handle.isOpen {
                    try handle.open(path: path(e.trackID))
                    if frame > 0 { try handle.seek(toFrame: frame) }
                }
                got = try scratch.withUnsafeMutableBufferPointer { try handle.read(into: $0) }
            } catch {
                failure = "\(error)"
                cond.lock(); decodeErrors += 1; cond.unlock()
                logger.error("cannot decode entry \(e.id) (track \(e.trackID.short)): \(error)")
            }
            // Never hand out more than the catalog's exact length (the timeline is built on it).
            got = min(got, Int(max(0, e.frames - frame)))
            // Copies and allocations before the lock: the renderer thread (real-time class)
            // waits on it, and must not wait for a memset of a long pad.
            let samples = got > 0 ? Array(scratch[0..<(got * 2)]) : []
            let reached = frame + Int64(got)
            let ending = got == 0 || failure != nil || reached >= e.frames
            let padding = ending && failure == nil && reached < e.frames ? [Int16](repeating: 0, count: Int(e.frames - reached) * 2) : []

            cond.lock()
            if pending == nil {   // no newer request came while this chunk was decoded
                if got > 0 {
                    chunks.append(PCMChunk(entryID: e.id, trackID: e.trackID,
                                           firstFrame: frame, samples: samples))
                    bufferedFrames += got
                    frame += Int64(got)
                    cond.broadcast()
                }
                if failure != nil {
                    chunks.append(PCMChunk(entryID: e.id, trackID: e.trackID,
                                           firstFrame: frame, samples: [], failure: failure))
                }
                if ending {
                    // End of this entry: continue gapless with the next one.
                    handle.close()
                    if !padding.isEmpty {
                        // The file ended early: pad with silence to the catalog length.
                        chunks.append(PCMChunk(entryID: e.id, trackID: e.trackID, firstFrame: frame, samples: padding))
                        bufferedFrames += padding.count / 2
                    }
                    let next = lookup(e.id, true)
                    entry = next
                    frame = 0
                    if let next { current = Start(entryID: next.id, frame: 0) }
                    queuePoked = false
                }
            }
            cond.unlock()
        }
        handle.close()
    }
}
