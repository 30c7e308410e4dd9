import Glibc
import CALSA

/// An error from alsa-lib, naming the call that failed.
public struct ALSAError: Error, CustomStringConvertible, Sendable {
    public let call: String
    public let code: Int32
    public var description: String { "\(call): \(String(cString: snd_strerror(code)))" }
}

@inline(__always)
private func alsa(_ call: @autoclosure () -> String, _ rc: Int32) throws {
    if rc < 0 { throw ALSAError(call: call(), code: rc) }
}

/// A thin wrapper around one blocking ALSA playback PCM, interleaved S16_LE. It only speaks
/// alsa-lib; what to write and when is the renderer's business. Blocking: renderer thread only.
public final class ALSAPCM {
    private var pcm: OpaquePointer?
    public let name: String
    public private(set) var rate: Int = 0
    public private(set) var channels: Int = 0
    public private(set) var bufferFrames: Int = 0
    public private(set) var periodFrames: Int = 0

    public init(name: String) { self.name = name }

    deinit { close() }

    /// Opens and configures the device: exact `rate` (through the plug layer when the
    /// hardware cannot), `bufferMicros` of buffer, monotonic status timestamps, start on first write.
    /// Opened without waiting: a device another program holds fails at once (EBUSY) instead of
    /// blocking the renderer thread until it is free; writes then block as usual.
    public func open(rate: Int, channels: Int, bufferMicros: Int, periodMicros: Int) throws {
        try alsa("snd_pcm_open(\(name))", snd_pcm_open(&pcm, name, SND_PCM_STREAM_PLAYBACK, SND_PCM_NONBLOCK))
        do {
            try alsa("snd_pcm_nonblock", snd_pcm_nonblock(pcm, 0))
            try configure(rate: rate, channels: channels, bufferMicros: bufferMicros, periodMicros: periodMicros)
        } catch {
            close()
            throw error
        }
    }

    private func configure(rate: Int, channels: Int, bufferMicros: Int, periodMicros: Int) throws {
        var hw: OpaquePointer?
        try alsa("snd_pcm_hw_params_malloc", snd_pcm_hw_params_malloc(&hw))
        defer { snd_pcm_hw_params_free(hw) }
        try alsa("snd_pcm_hw_params_any", snd_pcm_hw_params_any(pcm, hw))
        try alsa("snd_pcm_hw_params_set_access", snd_pcm_hw_params_set_access(pcm, hw, SND_PCM_ACCESS_RW_INTERLEAVED))
        try alsa("snd_pcm_hw_params_set_format(S16_LE)", snd_pcm_hw_params_set_format(pcm, hw, SND_PCM_FORMAT_S16_LE))
        try alsa("snd_pcm_hw_params_set_channels(\(channels))", snd_pcm_hw_params_set_channels(pcm, hw, UInt32(channels)))
        try alsa("snd_pcm_hw_params_set_rate(\(rate))", snd_pcm_hw_params_set_rate(pcm, hw, UInt32(rate), 0))
        var buf = UInt32(bufferMicros)
        var dir: Int32 = 0
        try alsa("snd_pcm_hw_params_set_buffer_time_near", snd_pcm_hw_params_set_buffer_time_near(pcm, hw, &buf, &dir))
        var per = UInt32(periodMicros)
        try alsa("snd_pcm_hw_params_set_period_time_near", snd_pcm_hw_params_set_period_time_near(pcm, hw, &per, &dir))
        try alsa("snd_pcm_hw_params", snd_pcm_hw_params(pcm, hw))
        var bsize: snd_pcm_uframes_t = 0
        var psize: snd_pcm_uframes_t = 0
        try alsa("snd_pcm_hw_params_get_buffer_size", snd_pcm_hw_params_get_buffer_size(hw, &bsize))
        try alsa("snd_pcm_hw_params_get_period_size", snd_pcm_hw_params_get_period_size(hw, &psize, &dir))

        var sw: OpaquePointer?
        try alsa("snd_pcm_sw_params_malloc", snd_pcm_sw_params_malloc(&sw))
        defer { snd_pcm_sw_params_free(sw) }
        try alsa("snd_pcm_sw_params_current", snd_pcm_sw_params_current(pcm, sw))
        try alsa("snd_pcm_sw_params_set_start_threshold", snd_pcm_sw_params_set_start_threshold(pcm, sw, 1))
        try alsa("snd_pcm_sw_params_set_tstamp_mode", snd_pcm_sw_params_set_tstamp_mode(pcm, sw, SND_PCM_TSTAMP_ENABLE))
        // Not every plugin supports choosing the timestamp clock; the default is then gettimeofday
        // and `status()` notices (its timestamps are far from the monotonic clock) and ignores them.
        _ = snd_pcm_sw_params_set_tstamp_type(pcm, sw, SND_PCM_TSTAMP_TYPE_MONOTONIC)
        try alsa("snd_pcm_sw_params", snd_pcm_sw_params(pcm, sw))
        self.rate = rate
        self.channels = channels
        self.bufferFrames = Int(bsize)
        self.periodFrames = Int(psize)
    }

    public struct Status: Sendable {
        /// Monotonic time (ns) the status was taken at, per the driver; 0 when it gave none.
        public var timestamp: Int64
        /// Frames written but not yet heard.
        public var delay: Int
        public var running: Bool
    }

    public func status() throws -> Status {
        var ts: Int64 = 0, delay = 0, state: Int32 = 0, avail = 0
        try alsa("snd_pcm_status", jamz_alsa_status(pcm, &ts, &delay, &state, &avail))
        return Status(timestamp: ts, delay: delay, running: state == Int32(SND_PCM_STATE_RUNNING.rawValue))
    }

    /// Writes interleaved frames, blocking while the buffer is full; recovers from underruns
    /// (reporting them through the return value) and retries.
    /// Returns true when an underrun (xrun) had to be recovered.
    @discardableResult
    public func write(_ samples: UnsafeBufferPointer<Int16>) throws -> Bool {
        var offset = 0
        var xrun = false
        let total = samples.count / channels
        while offset < total {
            let n = snd_pcm_writei(pcm, samples.baseAddress! + offset * channels, snd_pcm_uframes_t(total - offset))
            if n >= 0 { offset += Int(n); continue }
            let rc = Int32(n)
            if rc == -EINTR { continue }
            xrun = xrun || rc == -EPIPE
            try alsa("snd_pcm_writei", snd_pcm_recover(pcm, rc, 1))
        }
        return xrun
    }

    /// Plays out what is queued, then stops.
    public func drain() { if let pcm { snd_pcm_drain(pcm) } }

    /// Ready to start again after `drain`.
    public func prepare() { if let pcm { snd_pcm_prepare(pcm) } }

    public func close() {
        if let p = pcm { snd_pcm_close(p) }
        pcm = nil
    }
}
