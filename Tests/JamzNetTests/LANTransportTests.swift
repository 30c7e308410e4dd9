import CLinuxNet
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

/// The LAN link in a network namespace of its own (root, iproute2): the event loop's thread is
/// moved into it, so every socket of the transport is made there; an interface (a veth pair)
/// gets an address after the start. In the transport's serialized suite: the stamp test above
/// must not share the machine with the `ip` processes.
extension LANTransportTests {
    static let canMakeNamespaces = getuid() == 0 && FileManager.default.isExecutableFile(atPath: "/usr/sbin/ip")

    static func ip(_ args: String...) throws {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/sbin/ip")
        p.arguments = args
        try p.run()
        p.waitUntilExit()
        if p.terminationStatus != 0 { throw POSIXError(.EIO, userInfo: [NSLocalizedDescriptionKey: "ip \(args.joined(separator: " "))"]) }
    }

    static func until(timeout: Double = 3, _ cond: () -> Bool) async throws -> Bool {
        let end = Date().addingTimeInterval(timeout)
        while !cond() {
            if Date() > end { return false }
            try await Task.sleep(for: .milliseconds(10))
        }
        return true
    }

    /// An address added after the start carries beacons within the settle time and a look (no
    /// 3 s timer), one removed is let go, and nothing is looked at while nothing changes. The
    /// kernel's notices, parsed, name the interface and the address.
    @Test(.enabled(if: canMakeNamespaces, "needs root and iproute2"))
    func anAddressAddedAfterTheStartCarriesBeaconsAtOnce() async throws {
        let ns = "jamz-nl-\(getpid())"
        try Self.ip("netns", "add", ns)
        defer { try? Self.ip("netns", "del", ns) }
        let nsfd = open("/run/netns/\(ns)", O_RDONLY | O_CLOEXEC)
        try #require(nsfd >= 0)
        defer { close(nsfd) }
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let moved = try await group.next().submit { jamz_setns_net(nsfd) }.get()
        try #require(moved == 0)
        let notices = Mutex<[InterfaceWatch.Change]>([])
        let watch = try await group.next().submit { try InterfaceWatch { c in notices.withLock { $0 += c } } }.get()
        let inbox = Inbox()
        var log = Logger(label: "test")
        log.logLevel = .critical
        let t = try await LANTransport.start(settings: .init(port: 47_800), on: group, clock: Monotonic(), logger: log) { bytes, _, at in
            inbox.got.withLock { $0.append(.init(bytes: bytes, at: at, handled: at)) }
        }
        #expect(t.joined.isEmpty)

        // A veth pair inside the namespace (this kernel has no dummy driver): d0 carries the address.
        try Self.ip("-n", ns, "link", "add", "d0", "type", "veth", "peer", "name", "d1")
        try Self.ip("-n", ns, "link", "set", "d1", "up")
        try Self.ip("-n", ns, "link", "set", "d0", "multicast", "on", "up")
        let added = Date()
        try Self.ip("-n", ns, "addr", "add", "10.99.0.1/24", "dev", "d0")
        let joined = try await Self.until { t.joined == ["d0"] }
        let took = Date().timeIntervalSince(added)
        print("interface joined \(Int(took * 1000)) ms after its address was added (settle time 200 ms)")
        #expect(joined)
        #expect(took < 1.5, "the 3 s timer would take up to 3 s")
        // A beacon goes out of d0 and loops back to the group's socket.
        t.multicast([7, 7, 7])
        let got = try await inbox.wait(for: 1, timeout: 2)
        #expect(got.first?.bytes == [7, 7, 7])

        let seen = notices.withLock { $0 }
        #expect(seen.contains { $0.kind == .link && $0.name == "d0" && $0.running == true })
        #expect(seen.contains { $0.kind == .address && $0.address == "10.99.0.1" })

        // Quiet: no look without a change.
        try await Task.sleep(for: .milliseconds(400))
        let looks = t.interfaceLooks
        try await Task.sleep(for: .milliseconds(1500))
        #expect(t.interfaceLooks == looks, "looked at the interfaces \(t.interfaceLooks - looks) times while nothing changed")

        try Self.ip("-n", ns, "addr", "del", "10.99.0.1/24", "dev", "d0")
        #expect(try await Self.until { t.joined.isEmpty })
        #expect(try await Self.until { notices.withLock { $0.contains { $0.kind == .addressGone && $0.address == "10.99.0.1" } } })
        await t.close()
        watch.stop()
        try await group.shutdownGracefully()
    }

    /// The parser on a hand-laid datagram: a wireless-extension-only notice is left out, a
    /// truncated message ends the walk.
    @Test func wirelessOnlyNoticesAreLeftOut() {
        func message(type: Int, body: [UInt8]) -> [UInt8] {
            var h = nlmsghdr()
            h.nlmsg_len = UInt32(MemoryLayout<nlmsghdr>.size + body.count)
            h.nlmsg_type = UInt16(type)
            return withUnsafeBytes(of: h) { Array($0) } + body
        }
        func attr(_ type: Int, _ value: [UInt8]) -> [UInt8] {
            var a = rtattr()
            a.rta_len = UInt16(MemoryLayout<rtattr>.size + value.count)
            a.rta_type = UInt16(type)
            let raw = withUnsafeBytes(of: a) { Array($0) } + value
            return raw + [UInt8](repeating: 0, count: (4 - raw.count % 4) % 4)
        }
        var info = ifinfomsg()
        info.ifi_index = 3
        let fixed = withUnsafeBytes(of: info) { Array($0) }
        let wireless = message(type: Int(RTM_NEWLINK), body: fixed + attr(Int(IFLA_WIRELESS), [1, 2, 3, 4]))
        let named = message(type: Int(RTM_NEWLINK), body: fixed + attr(Int(IFLA_IFNAME), Array("wlan0".utf8) + [0]))
        let changes = InterfaceWatch.parse(ArraySlice(wireless + named + named.prefix(10)))
        #expect(changes == [InterfaceWatch.Change(kind: .link, index: 3, name: "wlan0", running: false)])
    }
}
