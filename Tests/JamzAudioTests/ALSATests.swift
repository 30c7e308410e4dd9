import CALSA
import Foundation
import JamzTestSupport
import JamzAudio
import JamzCore
import Testing

/// The real alsa-lib code path against its userspace PCMs: `null`, and a `type file` PCM from an
/// ALSA configuration these tests write (loaded through ALSA_CONFIG_PATH).
@Suite(.serialized) struct ALSATests {
    static let capture: String = {
        let dir = Fixtures.tempDir()
        let raw = dir.appendingPathComponent("alsa-file.raw").path
        let conf = dir.appendingPathComponent("asound.conf").path
        try! """
        pcm.jamztest {
            type file
            slave.pcm null
            file "\(raw)"
            format raw
        }
        """.write(toFile: conf, atomically: true, encoding: .utf8)
        setenv("ALSA_CONFIG_PATH", "/usr/share/alsa/alsa.conf:\(conf)", 1)
        snd_config_update_free_global()
        return raw
    }()

    static func tone(frames: Int) -> [Int16] {
        (0..<frames).flatMap { i -> [Int16] in
            let v = Int16(8000 * sin(Double(i) * 2 * .pi * 440 / 44_100))
            return [v, v]
        }
    }

    @Test func filePCMReceivesExactlyTheFramesWritten() throws {
        let raw = Self.capture
        let pcm = ALSAPCM(name: "jamztest")
        try pcm.open(rate: 44_100, channels: 2, bufferMicros: 100_000, periodMicros: 25_000)
        let samples = Self.tone(frames: 10_000)
        try samples.withUnsafeBufferPointer { try pcm.write($0) }
        pcm.drain()
        pcm.close()
        let got = try Reference.samples(ofFile: raw)
        #expect(got.count >= samples.count)
        #expect(Array(got[0..<samples.count]) == samples)
    }

    @Test func nullPCMReportsNoDelaySoTheOutputPacesItself() throws {
        let out = ALSAOutput(device: "null", clock: SystemClock(), blockFrames: 256)
        try out.open(format: AudioFormat())
        let block = Self.tone(frames: 256)
        #expect(out.label.contains("paced by the device"))
        for _ in 0..<10 { try block.withUnsafeBufferPointer { try out.write($0) } }
        #expect(out.label.contains("paced by the daemon's clock"))
        // From now on a block is released when it is due: the next one is due after the last.
        let a = try out.nextFrameHeardAt()
        try block.withUnsafeBufferPointer { try out.write($0) }
        let b = try out.nextFrameHeardAt()
        #expect(b - a == FrameMath.duration(ofFrames: 256, rate: 44_100))
        out.close()
    }

    @Test func unknownDeviceFailsWithTheALSAMessage() {
        let pcm = ALSAPCM(name: "no_such_device_jamz")
        #expect { try pcm.open(rate: 44_100, channels: 2, bufferMicros: 100_000, periodMicros: 25_000) } throws: {
            "\($0)".contains("snd_pcm_open(no_such_device_jamz)")
        }
    }
}
