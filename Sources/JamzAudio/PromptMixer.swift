import Foundation

/// Mixes spoken prompts into the blocks the renderer writes, ducking the music under them
/// (issue 17). Pure: no device, no clock; the renderer calls `mix` on each block just before it
/// is written, after what the block holds was recorded in the heard map, so the music's
/// timeline never moves: ducking only scales its samples.
///
/// For each prompt the music's gain ramps down (linearly, `rampFrames`) to `duckGain`, the
/// prompt's samples are added at `volume` once the ramp is down, and after the last queued
/// prompt the gain ramps back up to unity. Sums are clamped to 16 bits (with the defaults the
/// pieces, peaking at -3 dBFS, and full-scale music ducked to -15 dB do not reach it).
public struct PromptMixer: Sendable {
    public let channels: Int
    /// Gain of the music under a prompt (default -15 dB).
    public let duckGain: Float
    /// Frames over which the music ramps down before a prompt and back up after.
    public let rampFrames: Int
    /// Gain of the prompt's samples, 0...1.
    public var volume: Float

    /// Prompts waiting or playing (interleaved S16 in the output format), with the key the
    /// queue collapses identical prompts by.
    public private(set) var queue: [(key: String, samples: [Int16])] = []
    private var position = 0          // frames of queue[0] already mixed
    public private(set) var gain: Float = 1   // the music's gain now

    public init(rate: Int, channels: Int, duckDB: Float = -15, rampMillis: Int = 50, volume: Float = 0.8) {
        self.channels = channels
        self.duckGain = Float(pow(10.0, Double(duckDB) / 20))
        self.rampFrames = max(1, rate * rampMillis / 1000)
        self.volume = volume
    }

    /// A prompt or a ramp is under way: the next block must be written even with no music.
    public var active: Bool { !queue.isEmpty || gain < 1 }

    /// Queues a prompt; false (and nothing queued) if one with the same key is waiting or playing.
    @discardableResult
    public mutating func enqueue(key: String, samples: [Int16]) -> Bool {
        guard !queue.contains(where: { $0.key == key }) else { return false }
        let whole = samples.count - samples.count % channels
        guard whole > 0 else { return false }
        queue.append((key, whole == samples.count ? samples : Array(samples[..<whole])))
        return true
    }

    /// Ducks the music in `block` (interleaved, `channels` per frame) and adds the prompt.
    public mutating func mix(_ block: inout [Int16]) {
        guard active else { return }
        let step = (1 - duckGain) / Float(rampFrames)
        let c = channels
        let frames = block.count / c
        block.withUnsafeMutableBufferPointer { b in
            for f in 0..<frames {
                let speaking = !queue.isEmpty
                if speaking {
                    gain = max(duckGain, gain - step)
                } else if gain < 1 {
                    gain = min(1, gain + step)
                }
                var add = [Int16]()[...]
                if speaking && gain <= duckGain {
                    add = queue[0].samples[(position * c)..<(position * c + c)]
                    position += 1
                    if position * c >= queue[0].samples.count { queue.removeFirst(); position = 0 }
                }
                for ch in 0..<c {
                    var s = Float(b[f * c + ch]) * gain
                    if !add.isEmpty { s += Float(add[add.startIndex + ch]) * volume }
                    b[f * c + ch] = Int16(clamping: Int(s.rounded()))
                }
                if !speaking && gain >= 1 { break }   // back at unity: the rest of the block as it is
            }
        }
    }
}
