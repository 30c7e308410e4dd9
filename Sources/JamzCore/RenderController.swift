/// Decides, block by block, how the renderer closes the gap between the frame it is about to
/// write and the frame the timeline wants heard at the instant that frame will leave the DAC.
///
/// The error is measured in fractional frames, so the controller sees sub-frame differences.
/// - Large errors (a start, a seek, an underrun, a new DJ whose timeline disagrees) are a short
///   fade and a jump to the wanted frame.
/// - Everything else goes through a proportional-integral loop whose output is a rate correction
///   of at most `maxPPM`, realised by repeating or dropping single frames (error diffusion spreads
///   them evenly). The integral term learns the steady rate difference between the DAC crystal
///   and the timeline's clock (±100 ppm and more), so a steady drift leaves no standing error.
/// - Inside the dead band the proportional term is silent: measurement noise must not make the
///   music wobble. The integral term keeps running so drift is still absorbed.
public struct RenderController: Sendable {
    public struct Settings: Sendable, Equatable, Codable {
        public var rate: Int
        /// Errors at most this large (frames) leave the proportional term silent.
        public var deadbandFrames: Double
        /// Errors larger than this (frames) are corrected by fade-and-jump.
        public var jumpFrames: Double
        /// Upper bound of the soft correction (ppm of the output rate).
        public var maxPPM: Double
        /// Time constants (s): proportional (how fast an error is removed) and integral.
        public var proportionalSeconds: Double
        public var integralSeconds: Double

        public init(rate: Int, deadbandFrames: Double = 0.25, jumpFrames: Double? = nil, maxPPM: Double = 500,
                    proportionalSeconds: Double = 1.0, integralSeconds: Double = 6.0) {
            self.rate = rate; self.deadbandFrames = deadbandFrames
            self.jumpFrames = jumpFrames ?? Double(rate) / 50  // 20 ms
            self.maxPPM = maxPPM
            self.proportionalSeconds = proportionalSeconds; self.integralSeconds = integralSeconds
        }
    }

    public enum Action: Sendable, Equatable {
        case none
        /// Repeat (`> 0`) or drop (`< 0`) this many single frames spread through the next block.
        case adjust(Int)
        /// Fade out and jump by this many frames (positive: forward), then fade in.
        case jump(Int64)
    }

    public let settings: Settings
    /// Learned steady rate difference (ppm): positive means the DAC runs fast against the timeline.
    public private(set) var driftPPM: Double = 0
    /// The correction applied over the last block (ppm), for status.
    public private(set) var lastPPM: Double = 0
    private var carry = 0.0  // fractional frames not yet repeated/dropped

    public init(settings: Settings) { self.settings = settings }

    /// `error` = frame about to be written − frame wanted at that instant (fractional frames;
    /// positive: the music is ahead, frames must be repeated). `blockFrames`: size of the block.
    public mutating func decide(error: Double, blockFrames: Int) -> Action {
        if abs(error) > settings.jumpFrames {
            carry = 0
            lastPPM = 0
            // Jump to the nearest whole frame; the remainder is left to the soft loop.
            return .jump(Int64((-error).rounded()))
        }
        let rate = Double(settings.rate)
        let dt = Double(blockFrames) / rate
        let errSeconds = error / rate
        // Integral: a standing error this large would be removed by a ppm of err/integralSeconds.
        driftPPM += errSeconds / (settings.integralSeconds * settings.proportionalSeconds) * dt * 1e6
        driftPPM = min(max(driftPPM, -settings.maxPPM), settings.maxPPM)
        let p = abs(error) <= settings.deadbandFrames ? 0 : errSeconds / settings.proportionalSeconds * 1e6
        let ppm = min(max(p + driftPPM, -settings.maxPPM), settings.maxPPM)
        lastPPM = ppm
        carry += ppm * 1e-6 * Double(blockFrames)
        let n = carry.rounded(.towardZero)
        carry -= n
        return n == 0 ? .none : .adjust(Int(n))
    }

    /// Forget the learned drift (a new output device).
    public mutating func reset() {
        driftPPM = 0; lastPPM = 0; carry = 0
    }
}
