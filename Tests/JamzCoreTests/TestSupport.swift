import JamzCore

/// A TrackID from a 64-digit hex string made of one repeated digit, e.g. `tid("a")`.
func tid(_ digit: Character) -> TrackID {
    TrackID(hex: String(repeating: digit, count: 64))!
}

/// A TrackID whose first digits are `prefix`, padded with `fill` to 64 hex digits.
func tid(prefix: String, fill: Character = "0") -> TrackID {
    TrackID(hex: prefix + String(repeating: fill, count: 64 - prefix.count))!
}

/// Deterministic pseudo-random numbers (SplitMix64), so "random" tests always see the same inputs.
struct SplitMix64: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// Milliseconds as nanoseconds (at 1000 Hz one frame is exactly one millisecond).
func ms(_ n: Int64) -> Nanos { n * 1_000_000 }
func seconds(_ n: Int64) -> Nanos { n * nanosPerSecond }
