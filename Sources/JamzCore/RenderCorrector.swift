/// Decides how the renderer closes the gap between the frame it is about to write and the frame
/// the timeline wants heard at that instant.
///
/// - Inside the dead band nothing is done (measurement noise must not make the music wobble).
/// - Small errors are corrected inaudibly: single frames are repeated or dropped, spread out so
///   the rate change never exceeds `maxPPM` (this also absorbs a DAC crystal's own drift).
/// - Large errors (a seek, a start, a track change, an underrun) are a short fade and a jump.
public struct RenderCorrector: Sendable {
    public struct Settings: Sendable, Equatable {
        /// Errors at most this large (frames) are left alone; a correction, once started, runs to zero.
        public var deadbandFrames: Int64
        /// Errors larger than this (frames) are corrected by fade-and-jump.
        public var jumpFrames: Int64
        /// Upper bound of the soft correction, parts per million of the output rate.
        public var maxPPM: Int

        public init(deadbandFrames: Int64, jumpFrames: Int64, maxPPM: Int = 400) {
            self.deadbandFrames = deadbandFrames; self.jumpFrames = jumpFrames; self.maxPPM = maxPPM
        }

        /// Defaults for a rate: 0.5 ms dead band, 20 ms before jumping, 400 ppm.
        public static func defaults(rate: Int) -> Settings {
            Settings(deadbandFrames: Int64(rate / 2000), jumpFrames: Int64(rate / 50), maxPPM: 400)
        }
    }

    public enum Action: Sendable, Equatable {
        case none
        /// Repeat (`> 0`) or drop (`< 0`) this many single frames within the next block.
        case adjust(Int)
        /// Fade out and jump to the wanted frame.
        case jump
    }

    public let settings: Settings
    private var budgetMicroFrames: Int64 = 0   // accumulated allowance, in 1e-6 frames
    private var correcting = false

    public init(settings: Settings) { self.settings = settings }

    /// `error` = frame about to be written − frame wanted at that instant (positive: ahead, so
    /// frames must be repeated; negative: behind, so frames must be dropped).
    public mutating func decide(error: Int64, blockFrames: Int) -> Action {
        let mag = error.magnitude
        if mag > UInt64(settings.jumpFrames) {
            correcting = false
            budgetMicroFrames = 0
            return .jump
        }
        if !correcting {
            guard mag > UInt64(settings.deadbandFrames) else { return .none }
            correcting = true
        }
        if error == 0 {
            correcting = false
            budgetMicroFrames = 0
            return .none
        }
        // The allowance accrues at maxPPM but never banks more than one block's worth, so a
        // long correction never bursts above the rate limit (by more than a frame).
        let perBlock = Int64(blockFrames) * Int64(settings.maxPPM)
        budgetMicroFrames = min(budgetMicroFrames + perBlock, perBlock + 1_000_000)
        let allowed = budgetMicroFrames / 1_000_000
        guard allowed > 0 else { return .none }
        let n = min(allowed, Int64(mag))
        budgetMicroFrames -= n * 1_000_000
        return .adjust(Int(error > 0 ? n : -n))
    }

    /// Forget a correction in progress (after a jump or a new timeline).
    public mutating func reset() {
        correcting = false
        budgetMicroFrames = 0
    }
}
