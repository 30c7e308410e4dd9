import Foundation
import Glibc

/// Reads a `file:` sink FIFO on its own thread and stamps every read with the host's monotonic
/// clock: an independent record of which stream frame was consumed when.
final class FifoReader: @unchecked Sendable {
    // @unchecked: the fields below are written by the reader thread and read under `lock`.
    struct Read { var time: Int64; var firstFrame: Int64; var frames: Int }
    private let lock = NSLock()
    private var reads: [Read] = []
    private var firstAudible: (frame: Int64, time: Int64)?
    private var samples: [Int16] = []
    private var total: Int64 = 0
    private var eof = false
    let keepSamples: Bool

    init(path: String, keepSamples: Bool) {
        self.keepSamples = keepSamples
        let t = Thread { [self] in self.run(path) }
        t.start()
    }

    private func run(_ path: String) {
        let fd = open(path, O_RDONLY)
        guard fd >= 0 else { return }
        // Up to one sink block (2048 frames) per read, so each stamp belongs to one block.
        var buf = [Int16](repeating: 0, count: 4096)
        var carry = 0
        while true {
            let n = buf.withUnsafeMutableBytes { read(fd, $0.baseAddress! + carry, $0.count - carry) }
            let now = monotonicNow()
            if n <= 0 { break }
            let bytes = carry + n
            let frames = bytes / 4
            carry = bytes % 4
            lock.lock()
            if firstAudible == nil, let i = buf[0..<(frames * 2)].firstIndex(where: { $0 != 0 }) {
                firstAudible = (total + Int64(i / 2), now)
            }
            reads.append(Read(time: now, firstFrame: total, frames: frames))
            if keepSamples { samples.append(contentsOf: buf[0..<(frames * 2)]) }
            total += Int64(frames)
            lock.unlock()
            if carry > 0 { buf.withUnsafeMutableBytes { $0.copyMemory(from: UnsafeRawBufferPointer(rebasing: $0[(frames * 4)..<(frames * 4 + carry)])) } }
        }
        close(fd)
        lock.lock(); eof = true; lock.unlock()
    }

    var finished: Bool { lock.lock(); defer { lock.unlock() }; return eof }
    var audibleStart: (frame: Int64, time: Int64)? { lock.lock(); defer { lock.unlock() }; return firstAudible }
    var framesRead: Int64 { lock.lock(); defer { lock.unlock() }; return total }
    var allSamples: [Int16] { lock.lock(); defer { lock.unlock() }; return samples }

    /// The stream frame being consumed at host time `t`: the sink writes each block at the time
    /// its first frame is heard, so a block read at `time` covers [time, time + frames/rate).
    func frame(at t: Int64, rate: Int) -> Int64? {
        lock.lock(); defer { lock.unlock() }
        var lo = 0, hi = reads.count
        while lo < hi { let m = (lo + hi) / 2; if reads[m].time <= t { lo = m + 1 } else { hi = m } }
        guard lo > 0 else { return nil }
        let r = reads[lo - 1]
        let into = (t - r.time) * Int64(rate) / 1_000_000_000
        guard into <= Int64(r.frames) + 64 else { return nil }   // nothing was being played then
        return r.firstFrame + into
    }
}
