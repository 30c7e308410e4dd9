import CBluetooth  // also where <sys/socket.h>'s SOCK_/MSG_ constants may come from (its headers include it)
import Glibc
import JamzCore
import Logging
import NIOCore
import NIOPosix
import Synchronization

extension LANTransport {
    /// The kernel's receive timestamps. SwiftNIO hands up no timestamp control messages, but it
    /// reads one datagram per recvmsg and passes it up before reading the next, and after each
    /// recvmsg the socket's SIOCGSTAMPNS answers the time that datagram arrived.
    ///
    /// This relies on SwiftNIO's single-datagram read path (`recvmsg`, then `channelRead`, then
    /// the next `recvmsg`): vector reads (`.datagramVectorReadMessageCount`, recvmmsg) would give
    /// every datagram of a batch the last one's stamp, so they must stay off on these channels.
    final class Stamps: Sendable {
        let counts = Mutex((kernel: 0, loop: 0))
        /// Wall − monotonic at the last stamp: a wall-clock step (timesyncd, `date`) changes it,
        /// a slew does not (both clocks are slewed alike).
        private let wallMinusMono = Mutex<Int64?>(nil)
        /// SIOCGSTAMPNS (asm-generic/sockios.h, 64-bit time_t): not importable as a macro.
        static let request: UInt = 0x8907

        /// The first SIOCGSTAMPNS turns receive timestamps on for the socket.
        static func enable(_ fd: Int32) {
            var ts = timespec()
            _ = ioctl(fd, request, &ts)
        }

        /// When the datagram just read arrived, in the car's clock (`clock`); the clock's
        /// reading now if there is no usable kernel stamp. The stamp is wall-clock time: carried
        /// over by how long ago it was, against a wall reading taken right around the car's clock
        /// reading (both read after the ioctl, so a delay between them cannot make the arrival
        /// look earlier than it was; a pair that straddled a preemption is read again).
        func arrival(fd: Int32, clock: any HostClock) -> Nanos {
            var ts = timespec()
            let stamped = ioctl(fd, Self.request, &ts) == 0
            var w0 = timespec(), w1 = timespec(), mono = timespec()
            var now: Nanos = 0, wallMid: Int64 = 0, monoRaw: Int64 = 0
            for _ in 0..<3 {
                clock_gettime(CLOCK_REALTIME, &w0)
                clock_gettime(CLOCK_MONOTONIC, &mono)
                now = clock.now()
                clock_gettime(CLOCK_REALTIME, &w1)
                let a = Self.ns(w0), b = Self.ns(w1)
                wallMid = a + (b - a) / 2
                monoRaw = Self.ns(mono)
                if b - a < 20_000 { break }
            }
            let offset = wallMid - monoRaw
            let previous = wallMinusMono.withLock { p in defer { p = offset }; return p }
            let stepped = previous.map { abs($0 - offset) > 100_000 } ?? false
            if stamped, !stepped {
                let ago = wallMid - Self.ns(ts)
                // Under 2 µs: the skb had no stamp and the ioctl made one from its own time.
                // Over a second: not this datagram's (a wall-clock step in between).
                if ago >= 2_000 && ago < 1_000_000_000 {
                    counts.withLock { $0.kernel += 1 }
                    return now - ago
                }
            }
            counts.withLock { $0.loop += 1 }
            return now
        }

        private static func ns(_ t: timespec) -> Int64 { Int64(t.tv_sec) * 1_000_000_000 + Int64(t.tv_nsec) }
    }
}
