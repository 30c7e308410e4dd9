import Foundation
import JamzPlatform
import Glibc
import JamzAudio

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
        NamedThread.start("bench-fifo") { [self] in self.run(path) }
    }

    private func run(_ path: String) {
        // The measuring thread stamps each read: real-time class, above the cars' renderers
        // (20), so that it wakes when a block is written rather than when a CPU is free.
        _ = NamedThread.makeRealtime(priority: 30)
        // Room for two minutes up front: growing by copying MBs at real-time priority would
        // delay the stamps (and the cars) on a 2-core machine.
        if keepSamples { lock.lock(); samples.reserveCapacity(44_100 * 2 * 120); lock.unlock() }
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

    /// How many host nanoseconds one frame of this car's sink lasts (its crystal against the
    /// host's), from the stamps of [from, to): a straight line through the earliest stamp of
    /// each second (the least delayed), by least squares. A read can also imply an origin far
    /// too early: a block longer than the read buffer (frames repeated) leaves a tail that the
    /// next read takes at once, stamped with the block's time but numbered frames later; as in
    /// `gridFrame`, only origins within 5 ms of the second's median count.
    func nsPerFrame(from: Int64, to: Int64, rate: Int) -> Double {
        lock.lock(); defer { lock.unlock() }
        let nominal = 1e9 / Double(rate)
        var buckets: [Int64: [Read]] = [:]
        for r in reads where r.time >= from && r.time < to { buckets[(r.time - from) / 1_000_000_000, default: []].append(r) }
        func origin(_ r: Read) -> Double { Double(r.time) - Double(r.firstFrame) * nominal }
        let lows: [Read] = buckets.values.compactMap { rs in
            let os = rs.map(origin).sorted()
            let median = os[os.count / 2]
            return rs.filter { origin($0) >= median - 5e6 }.min { origin($0) < origin($1) }
        }
        guard lows.count >= 3 else { return nominal }
        let pts = lows.map { (Double($0.firstFrame), Double($0.time)) }
        let mx = pts.map(\.0).reduce(0, +) / Double(pts.count), my = pts.map(\.1).reduce(0, +) / Double(pts.count)
        let sxx = pts.map { ($0.0 - mx) * ($0.0 - mx) }.reduce(0, +), sxy = pts.map { ($0.0 - mx) * ($0.1 - my) }.reduce(0, +)
        return sxx > 0 ? sxy / sxx : nominal
    }

    /// The stream frame a DAC driven by the car's crystal would play at host time `t`. The sink
    /// writes each block at its due instant or later (a thread wakes late) and the reader stamps
    /// it later still, never earlier: so the earliest stamps within ±1 s, each carried to `t` at
    /// the crystal's rate (`ns` per frame, from `nsPerFrame`), give the block grid the car keeps,
    /// without the two threads' wake-up delays. What the car put into the stream (track frames
    /// repeated, dropped or jumped) is still read from the samples.
    /// Fractional: where between two frames the DAC stands at `t`.
    func gridFrame(at t: Int64, ns: Double) -> Double? {
        lock.lock(); defer { lock.unlock() }
        var lo = 0, hi = reads.count
        while lo < hi { let m = (lo + hi) / 2; if reads[m].time <= t { lo = m + 1 } else { hi = m } }
        guard lo > 0 else { return nil }
        let covering = reads[lo - 1]
        guard Double(t - covering.time) <= Double(covering.frames + 64) * ns else { return nil }
        // Grid origin each read implies. Most reads are a little late, a few very late (the
        // reader starved, a block or more behind): keep to the origins within 5 ms of the
        // window's median and take the earliest. (Around a restarted grid — the sink fell
        // behind by over 20 ms and began a new one — this is wrong for up to a second.)
        func origin(_ r: Read) -> Double { Double(r.time) - Double(r.firstFrame) * ns }
        var os: [Double] = []
        var i = lo - 1
        while i >= 0 && reads[i].time >= t - 1_000_000_000 { os.append(origin(reads[i])); i -= 1 }
        i = lo
        while i < reads.count && reads[i].time <= t + 1_000_000_000 { os.append(origin(reads[i])); i += 1 }
        os.sort()
        let median = os[os.count / 2]
        let best = os.first { $0 >= median - 5e6 }!
        return (Double(t) - best) / ns
    }

    /// How late each block was stamped after the grid says it was due (µs): the sink's and the
    /// reader's wake-up delays together, over the reads in [from, to).
    func lateness(from: Int64, to: Int64, ns: Double) -> [Double] {
        let times = { lock.lock(); defer { lock.unlock() }; return reads.filter { $0.time >= from && $0.time < to } }()
        return times.compactMap { r in
            gridFrame(at: r.time, ns: ns).map { ($0 - Double(r.firstFrame)) * ns / 1e3 }
        }
    }

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
