// Per-sender replay protection and the sequence numbers it relies on.
// See docs/architecture.md, "Networking", and `Receiver` for where the window sits in the opening order.

/// A sliding window over one sender's sequence numbers (RFC 4303 §3.4.3 anti-replay, with the
/// circular bitmap of RFC 6479): it remembers the highest number accepted and which of the
/// `size` numbers ending there were seen.
///
/// Verdicts for a number `seq`, with `highest` the highest accepted so far:
/// - `seq > highest`: `.fresh`; accepting it slides the window up (a jump of `size` or more
///   forgets everything behind).
/// - `highest − size < seq ≤ highest` and not seen: `.fresh` (reordering inside the window).
/// - inside the window and seen: `.duplicate` — typically the same datagram arriving over a
///   second link, which is normal: every message goes out on every link.
/// - `seq ≤ highest − size`, or `seq == 0`: `.replayed` — too old to tell, so refused.
///
/// A new window accepts any first number ≥ 1. Sequence numbers start at 1 and only grow, also
/// across restarts: see `SequenceCounter`.
///
/// The window only says yes or no; moving it is the caller's choice, and `Receiver` moves it
/// only after the envelope authenticated (an unauthenticated packet must never slide it,
/// or a forger could push a real sender's traffic below the window).
public struct ReplayWindow: Sendable, Equatable {
    /// How many sequence numbers (ending at `highest`) the window tracks.
    public static let size: UInt64 = 1024
    private static let words = Int(size / 64)

    public enum Verdict: Sendable, Equatable {
        case fresh, duplicate, replayed
    }

    /// The highest number accepted, 0 before the first.
    public private(set) var highest: UInt64 = 0
    /// Bit `seq % size` is set when `seq` (inside the window) was accepted.
    private var bits = [UInt64](repeating: 0, count: words)

    public init() {}

    /// What accepting `seq` would mean, without changing anything.
    public func check(_ seq: UInt64) -> Verdict {
        if seq == 0 { return .replayed }
        if seq > highest { return .fresh }
        if highest - seq >= Self.size { return .replayed }
        return isSet(seq) ? .duplicate : .fresh
    }

    /// Records `seq` if it is fresh; returns the verdict either way.
    @discardableResult
    public mutating func admit(_ seq: UInt64) -> Verdict {
        let v = check(seq)
        guard v == .fresh else { return v }
        if seq > highest {
            if seq - highest >= Self.size {
                for i in bits.indices { bits[i] = 0 }
            } else {
                // Positions highest+1 ... seq now stand for new numbers: clear them.
                var s = highest &+ 1
                while s <= seq { clear(s); s &+= 1 }
            }
            highest = seq
        }
        set(seq)
        return .fresh
    }

    /// `admit` as a yes/no: true when `seq` was fresh (and is now recorded).
    public mutating func accept(_ seq: UInt64) -> Bool { admit(seq) == .fresh }

    private func isSet(_ seq: UInt64) -> Bool {
        let i = Int(seq % Self.size)
        return bits[i >> 6] & (1 << UInt64(i & 63)) != 0
    }
    private mutating func set(_ seq: UInt64) {
        let i = Int(seq % Self.size)
        bits[i >> 6] |= 1 << UInt64(i & 63)
    }
    private mutating func clear(_ seq: UInt64) {
        let i = Int(seq % Self.size)
        bits[i >> 6] &= ~(1 << UInt64(i & 63))
    }
}

/// A sender's sequence numbers: `bootCount << 32 + n`, n = 1, 2, 3, …
///
/// Numbers must never repeat for one sender and one convoy key — a repeat is refused by every
/// receiver's `ReplayWindow` and, worse, reuses a ChaCha20-Poly1305 nonce (see `Envelope`).
/// The counter itself lives in memory, so the **caller persists the boot count**: at start,
/// read it from the data dir, add one, store it durably (fsync) and only then make the
/// counter and send. A power cut then costs at most an unused boot count, never a reused
/// number. Each boot starts above everything the previous boot could have sent, so receivers
/// see a far jump ahead and simply slide their windows.
///
/// One boot can send 2³² − 1 envelopes (49 days at 1000 a second); `next()` traps past that,
/// so a longer-running process must restart its counter with a new persisted boot count.
public struct SequenceCounter: Sendable, Equatable {
    public let bootCount: UInt32
    /// How many numbers this boot has handed out.
    public private(set) var count: UInt32 = 0

    public init(bootCount: UInt32) { self.bootCount = bootCount }

    /// The last number handed out (`bootCount << 32` before the first).
    public var last: UInt64 { UInt64(bootCount) << 32 | UInt64(count) }

    /// The next number, strictly greater than every earlier one of this and earlier boots.
    public mutating func next() -> UInt64 {
        precondition(count < UInt32.max, "sequence numbers of boot \(bootCount) exhausted: restart with a new boot count")
        count += 1
        return last
    }
}
