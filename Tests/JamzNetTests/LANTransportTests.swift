import Foundation
import Glibc
import JamzCore
@testable import JamzNet
import Logging
import NIOCore
import NIOPosix
import Synchronization
import Testing

/// The host's CLOCK_MONOTONIC, as jamzd's clock is without its test skew.
private struct Monotonic: HostClock {
    func now() -> Nanos {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Nanos(ts.tv_sec) * 1_000_000_000 + Nanos(ts.tv_nsec)
    }
}

/// What one transport received: the bytes, the arrival stamp and when the handler saw it.
private final class Inbox: Sendable {
    struct Got: Sendable { var bytes: [UInt8]; var at: Nanos; var handled: Nanos }
    let got = Mutex<[Got]>([])
    func wait(for n: Int, timeout: Double = 5) async throws -> [Got] {
        let end = Date().addingTimeInterval(timeout)
        while Date() < end {
            let g = got.withLock { $0 }
            if g.count >= n { return g }
            try await Task.sleep(for: .milliseconds(5))
        }
        return got.withLock { $0 }
    }
}

private func transport(_ inbox: Inbox, on group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton) async throws -> LANTransport {
    let clock = Monotonic()
    var log = Logger(label: "test")
    log.logLevel = .critical
    return try await LANTransport.start(settings: .init(port: 0, bind: "127.0.0.1"), on: group,
                                        clock: clock, logger: log) { bytes, _, at in
        let handled = clock.now()
        inbox.got.withLock { $0.append(.init(bytes: bytes, at: at, handled: handled)) }
    }
}

private func stampBytes(_ t: Nanos) -> [UInt8] { withUnsafeBytes(of: t.littleEndian) { Array($0) } }
private func stamp(of bytes: [UInt8]) -> Nanos { bytes.withUnsafeBytes { Nanos(littleEndian: $0.loadUnaligned(as: Nanos.self)) } }

@Suite(.serialized) struct LANTransportTests {
    /// A datagram is stamped when the kernel took it in, not when the event loop got round to
    /// reading it: the receiver's loop is kept busy for 300 ms while the datagram arrives.
    @Test func datagramsAreStampedWithTheKernelsArrivalTimeNotTheReadTime() async throws {
        let bIn = Inbox()
        // A loop of its own: it is kept busy, and other suites' channels must not wait on it.
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let b = try await transport(bIn, on: group)
        let port = try #require(b.localPort)
        let busy = b.eventLoopForTesting.submit { usleep(300_000) }
        try await Task.sleep(for: .milliseconds(20))   // b's loop is now inside the sleep
        // Sent by a plain socket (a second transport could share b's busy event loop).
        let fd = socket(AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
        defer { close(fd) }
        var to = sockaddr_in()
        to.sin_family = sa_family_t(AF_INET)
        to.sin_port = in_port_t(UInt16(port).bigEndian)
        to.sin_addr.s_addr = inet_addr("127.0.0.1")
        let sent = Monotonic().now()
        let payload: [UInt8] = [1, 2, 3]
        let n = withUnsafePointer(to: &to) { p in
            p.withMemoryRebound(to: sockaddr.self, capacity: 1) { sa in
                payload.withUnsafeBytes { bytes in sendto(fd, bytes.baseAddress, bytes.count, 0, sa, socklen_t(MemoryLayout<sockaddr_in>.size)) }
            }
        }
        try #require(n == 3)
        try await busy.get()
        let got = try await bIn.wait(for: 1)
        try #require(got.count == 1)
        #expect(got[0].bytes == [1, 2, 3])
        // The loop read it after its 300 ms sleep; the stamp is from before (loopback delivers
        // inside the sender's sendmsg).
        #expect(got[0].at >= sent - 1_000_000)
        #expect(got[0].handled - got[0].at > 150_000_000, "stamped at read time, not at arrival")
        #expect(b.receiveStamps.kernel >= 1)
        await b.close()
        try await group.shutdownGracefully()
    }

    /// `sendStamped` with a count sends that many datagrams back to back, each carrying a clock
    /// reading taken before it was written (so before it arrived), in order; the rehearsal runs
    /// once before each.
    @Test func stampedSendsCarryAReadingTakenJustBeforeTheWrite() async throws {
        let aIn = Inbox(), bIn = Inbox()
        let a = try await transport(aIn), b = try await transport(bIn)
        let to = try SocketAddress(ipAddress: "127.0.0.1", port: try #require(b.localPort))
        let rehearsals = Mutex(0)
        a.sendStamped(to: to, count: 2, rehearse: { rehearsals.withLock { $0 += 1 } }) { read in stampBytes(read()) }
        let got = try await bIn.wait(for: 2)
        try #require(got.count == 2)
        let stamps = got.map { stamp(of: $0.bytes) }
        #expect(stamps[0] < stamps[1])
        for g in got { #expect(stamp(of: g.bytes) <= g.at, "the sender's stamp comes before the arrival") }
        #expect(rehearsals.withLock { $0 } == 2)
        // Nothing to send (not in a convoy): nothing goes out.
        a.sendStamped(to: to, count: 2, rehearse: {}) { _ in nil }
        try await Task.sleep(for: .milliseconds(100))
        #expect(bIn.got.withLock { $0.count } == 2)
        await a.close(); await b.close()
    }
}
