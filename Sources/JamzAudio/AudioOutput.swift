import Glibc
import JamzCore
import JamzPlatform
import Synchronization

/// Where rendered PCM goes: the device boundary of the audio path. Implementations block in
/// `write` (the renderer thread owns them) and say when the next frame written will be heard.
public protocol AudioOutput: AnyObject {
    /// Human-readable name, e.g. "alsa:default (paced by the device)".
    var label: String { get }
    /// Preferred block size in frames.
    var blockFrames: Int { get }
    func open(format: AudioFormat) throws
    /// Monotonic time (this car's clock) at which the next frame written will leave the output,
    /// before any board latency.
    func nextFrameHeardAt() throws -> Nanos
    /// Writes interleaved S16 frames. May block until the output can take them.
    func write(_ samples: UnsafeBufferPointer<Int16>) throws
    /// Nothing will be written for a while: play out what is queued and stop cleanly.
    func idle()
    /// Nothing has been written for a while (`Renderer.releaseAfter` after `idle`): let the
    /// device go, so nothing of it keeps waking (ALSA's pulse plugin runs a thread while its PCM
    /// is open; a hardware codec may power down). The next `nextFrameHeardAt` or `write` takes it
    /// again.
    func release()
    func close()
}

extension AudioOutput {
    public func release() {}
}

/// Keeps time for an output that does not pace itself (a file, a FIFO, ALSA's `null`): frames
/// are released at the output rate by the clock, so a frame written at time t is heard at t.
struct SoftwarePacer {
    let clock: any SleepingClock
    let rate: Int
    private var start: Nanos? = nil
    private var written: Int64 = 0

    init(clock: any SleepingClock, rate: Int) { self.clock = clock; self.rate = rate }

    /// When the next frame is due; if the output fell behind (a slow reader, a pause in
    /// writing) the schedule restarts from now.
    mutating func nextDue() -> Nanos {
        let now = clock.now()
        if let s = start {
            let due = s + FrameMath.duration(ofFrames: written, rate: rate)
            if due >= now - 20_000_000 { return due }   // up to 20 ms late: catch up, keep the grid
        }
        start = now
        written = 0
        return now
    }

    /// Sleeps until the next block is due; returns its due time.
    mutating func waitForNext() -> Nanos {
        let due = nextDue()
        clock.sleep(until: due)
        return due
    }

    mutating func didWrite(frames: Int) { written += Int64(frames) }
}

/// `file:PATH` — raw S16_LE interleaved frames at the output rate, written in small blocks paced
/// in real time by the daemon's clock. PATH may be a FIFO (opening blocks until a reader comes).
public final class FileOutput: AudioOutput {
    public let path: String
    public let blockFrames: Int
    private var fd: Int32 = -1
    private var pacer: SoftwarePacer?
    private let clock: any SleepingClock

    public init(path: String, clock: any SleepingClock, blockFrames: Int = 2048) {
        self.path = path; self.clock = clock; self.blockFrames = blockFrames
    }

    public var label: String { "file:\(path) (paced by the daemon's clock)" }

    public func open(format: AudioFormat) throws {
        fd = Glibc.open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0o644)
        if fd < 0 { throw OutputError(message: "cannot open \(path): \(String(cString: strerror(errno)))") }
        var st = stat()
        if fstat(fd, &st) == 0 && (st.st_mode & S_IFMT) == S_IFREG { _ = ftruncate(fd, 0) }
        pacer = SoftwarePacer(clock: clock, rate: format.sampleRate)
    }

    public func nextFrameHeardAt() throws -> Nanos { pacer!.nextDue() }

    public func write(_ samples: UnsafeBufferPointer<Int16>) throws {
        _ = pacer!.waitForNext()
        if fd < 0 {
            // The FIFO's reader left: look for a new one without waiting; until one comes the
            // block is paced and dropped, as a DAC with nothing connected would play it.
            fd = Glibc.open(path, O_WRONLY | O_NONBLOCK | O_CLOEXEC)
            if fd < 0 { pacer!.didWrite(frames: samples.count / 2); return }
            _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK)
        }
        var raw = UnsafeRawBufferPointer(samples)
        while !raw.isEmpty {
            let n = retryingEINTR { Glibc.write(fd, raw.baseAddress, raw.count) }
            if n < 0 {
                if errno == EPIPE {
                    Glibc.close(fd)
                    fd = -1
                    break
                }
                throw OutputError(message: "write to \(path): \(String(cString: strerror(errno)))")
            }
            raw = UnsafeRawBufferPointer(rebasing: raw[n...])
        }
        pacer!.didWrite(frames: samples.count / 2)
    }

    public func idle() {}

    public func close() {
        if fd >= 0 { Glibc.close(fd); fd = -1 }
    }
}

public struct OutputError: Error, CustomStringConvertible {
    public let message: String
    public var description: String { message }
}

/// `alsa:DEVICE` — knows when each frame is heard from the driver's status: the next frame
/// written leaves the DAC `delay` frames after the status timestamp. A device that reports no
/// delay at all (ALSA's `null` and `file` PCMs) is paced by the clock instead, and says so.
public final class ALSAOutput: AudioOutput {
    public let device: String
    public let blockFrames: Int
    public let bufferMicros: Int
    private let pcm: ALSAPCM
    private let clock: any SleepingClock
    private var rate = 44_100
    private var channels = 2
    /// Closed by `release` (renderer thread only).
    private var released = false
    private var softPacer: SoftwarePacer?
    private var writesWithoutDelay = 0
    public private(set) var underruns = 0

    public init(device: String, clock: any SleepingClock, blockFrames: Int = 2048, bufferMicros: Int = 100_000) {
        self.device = device; self.clock = clock; self.blockFrames = blockFrames; self.bufferMicros = bufferMicros
        self.pcm = ALSAPCM(name: device)
    }

    /// Read from other threads (status), so kept apart from the renderer-owned pacer.
    private let clockPaced = Mutex(false)

    public var label: String {
        !clockPaced.withLock({ $0 }) ? "alsa:\(device) (paced by the device, \(pcm.bufferFrames) frames buffer)"
                         : "alsa:\(device) (device reports no delay: paced by the daemon's clock)"
    }

    public func open(format: AudioFormat) throws {
        rate = format.sampleRate
        channels = format.channels
        try pcm.open(rate: format.sampleRate, channels: format.channels, bufferMicros: bufferMicros,
                     periodMicros: bufferMicros / 4)
        released = false
    }

    /// Closes the PCM until the next block (not a clock-paced one: nothing of those wakes).
    public func release() {
        guard softPacer == nil, !released else { return }
        pcm.close()
        released = true
    }

    /// After `release`: the device again, as it was opened.
    private func takeBack() throws {
        guard released else { return }
        try pcm.open(rate: rate, channels: channels, bufferMicros: bufferMicros, periodMicros: bufferMicros / 4)
        released = false
    }

    public func nextFrameHeardAt() throws -> Nanos {
        try takeBack()
        if var p = softPacer {
            defer { softPacer = p }
            return p.nextDue()
        }
        let before = SystemClock.raw()
        let st = try pcm.status()
        let after = SystemClock.raw()
        // Prefer the driver's own timestamp when it is a monotonic one close to our read.
        var stamp = (before + after) / 2
        if st.timestamp > 0 && abs(st.timestamp - stamp) < 50_000_000 { stamp = st.timestamp }

        return clock.fromRaw(stamp) + FrameMath.duration(ofFrames: Int64(st.delay), rate: rate)
    }

    public func write(_ samples: UnsafeBufferPointer<Int16>) throws {
        try takeBack()
        if var p = softPacer {
            _ = p.waitForNext()
            try pcm.write(samples)
            p.didWrite(frames: samples.count / 2)
            softPacer = p
            return
        }
        if try pcm.write(samples) { underruns += 1 }
        // A device that never holds anything back cannot tell time: switch to the clock.
        if (try? pcm.status().delay) == 0 {
            writesWithoutDelay += 1
            if writesWithoutDelay >= 8 {
                softPacer = SoftwarePacer(clock: clock, rate: rate)
                clockPaced.withLock { $0 = true }
            }
        } else {
            writesWithoutDelay = 0
        }
    }

    public func idle() {
        guard softPacer == nil else { return }
        pcm.drain()
        pcm.prepare()
    }

    public func close() {
        pcm.drain()
        pcm.close()
        released = false
    }
}
