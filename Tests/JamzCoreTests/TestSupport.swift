import JamzCore
@_exported import JamzTestSupport

/// A TrackID from a 64-digit hex string made of one repeated digit, e.g. `tid("a")`.
func tid(_ digit: Character) -> TrackID {
    TrackID(hex: String(repeating: digit, count: 64))!
}

/// A TrackID whose first digits are `prefix`, padded with `fill` to 64 hex digits.
func tid(prefix: String, fill: Character = "0") -> TrackID {
    TrackID(hex: prefix + String(repeating: fill, count: 64 - prefix.count))!
}

/// Milliseconds as nanoseconds (at 1000 Hz one frame is exactly one millisecond).
func ms(_ n: Int64) -> Nanos { n * 1_000_000 }
func seconds(_ n: Int64) -> Nanos { n * nanosPerSecond }
