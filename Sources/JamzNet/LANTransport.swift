import CBluetooth  // also where <sys/socket.h>'s SOCK_/MSG_ constants may come from (its headers include it)
import Glibc
import JamzCore
import Logging
import NIOCore
import NIOPosix
import Synchronization

/// The LAN link: one UDP socket (bound to every address) that receives the multicast beacons
/// and unicast control, clock exchanges and anti-entropy, plus one socket per interface bound to
/// that interface's address, which sends the beacons out of that interface (a car may have Wi-Fi
/// and Ethernet side by side) and receives the unicast replies addressed to it. Interfaces that
/// come up later (the Wi-Fi hotspot after boot) are picked up when the kernel says so (an
/// rtnetlink notice, `InterfaceWatch`, looked at `settleTime` later so a burst is one look),
/// and those that go away are let go; nothing is looked at on a timer. It moves opaque
/// datagrams (sealed envelopes); it knows nothing of keys or messages.
///
/// Clock exchanges need both ends of each trip stamped as near the wire as possible: every
/// datagram received is stamped with the time the kernel took it off the network (the socket's
/// receive timestamp, SIOCGSTAMPNS, carried to the car's clock), and `sendStamped` reads the
/// clock on the event loop just before the datagram is sealed and written. The event loop's
/// wake-ups and the hops to and from the convoy's actor stay out of the measured trip.
public final class LANTransport: Sendable {
    public struct Settings: Sendable, Equatable {
        /// UDP port, the same in every car of the convoy.
        public var port: Int = 47_800
        /// Multicast group of the beacons (administratively scoped).
        public var group: String = "239.255.74.77"
        /// Bind address (0.0.0.0: every interface).
        public var bind: String = "0.0.0.0"
        /// TEST HOOK: delay, jitter and loss added to every datagram sent (see `LinkImpairment`).
        public var impairment: LinkImpairment?
        /// How long after the kernel's notice of an interface or address change the interfaces
        /// are looked at (a link coming up brings a burst of notices: one look for all).
        public var settleTime: TimeAmount = .milliseconds(200)
        /// How often the interfaces are looked at when the kernel's notices cannot be had
        /// (no rtnetlink: a sandbox); never otherwise.
        public var refreshInterval: TimeAmount = .seconds(3)
        public init(port: Int = 47_800, group: String = "239.255.74.77", bind: String = "0.0.0.0", impairment: LinkImpairment? = nil) {
            self.port = port; self.group = group; self.bind = bind; self.impairment = impairment
        }
    }

    public typealias Receive = @Sendable (_ bytes: [UInt8], _ from: SocketAddress, _ receivedAt: Nanos) -> Void

    /// One interface the beacons go out of and come in on.
    private struct Link: Sendable {
        var device: NIONetworkDevice
        var channel: any Channel
        var key: String { "\(device.name) \(device.address?.ipAddress ?? "?")" }
    }

    /// The 0.0.0.0 socket. SwiftNIO closes a datagram channel on most send errors (no route while
    /// the Wi-Fi is down, say): a closed one (this or an interface's) asks for a look, which
    /// binds it again.
    private let main: Mutex<any Channel>
    private var channel: any Channel { main.withLock { $0 } }
    private let closed = Mutex(false)
    private let groupAddress: SocketAddress
    private let settings: Settings
    private let eventLoopGroup: any EventLoopGroup
    private let clock: any HostClock
    private let logger: Logger
    private let receive: Receive
    private let links = Mutex<[String: Link]>([:])
    /// A look is running; another was asked for meanwhile (it runs right after).
    private let refreshing = Mutex((running: false, again: false))
    /// The next look scheduled, and when (`settleTime` after a notice, later after a failure).
    private let pendingLook = Mutex<(task: Scheduled<Void>, at: NIODeadline)?>(nil)
    /// Seconds before the next look when this one failed (the 0.0.0.0 socket could not be bound
    /// again, an interface could not be used): doubling, ≤ 60; back to 1 after a look that did not.
    private let retryBackoff = Mutex(Int64(1))
    private let watch = Mutex<InterfaceWatch?>(nil)
    private let looks = Mutex(0)
    private let impairRandom: Mutex<SplitMix64>
    private let dropped = Mutex(0)
    private let stamps: Stamps

    /// Interfaces the beacons go out of and the multicast group was joined on (status, tests).
    public var joined: [String] { links.withLock { $0.values.map(\.device.name).sorted() } }
    /// How many times the interfaces were looked at (tests: a look only when something changed).
    public var interfaceLooks: Int { looks.withLock { $0 } }
    /// Datagrams the test impairment dropped.
    public var impairedDrops: Int { dropped.withLock { $0 } }
    /// Datagrams stamped with the kernel's receive time, and those stamped when the event loop
    /// read them (no kernel stamp: the first on a socket, or a wall-clock step in between).
    public var receiveStamps: (kernel: Int, loop: Int) { stamps.counts.withLock { $0 } }

    private init(channel: any Channel, groupAddress: SocketAddress, settings: Settings, group: any EventLoopGroup,
                 clock: any HostClock, logger: Logger, stamps: Stamps, receive: @escaping Receive) {
        self.main = Mutex(channel); self.groupAddress = groupAddress; self.settings = settings
        self.eventLoopGroup = group; self.clock = clock; self.logger = logger; self.receive = receive
        self.stamps = stamps
        impairRandom = Mutex(SplitMix64(seed: settings.impairment?.seed ?? 1))
    }

    /// Bind the socket, join the beacon group on every up, multicast-capable IPv4 interface,
    /// open a sending socket on each, start delivering datagrams, and keep watching the interfaces.
    public static func start(settings: Settings, on group: any EventLoopGroup, clock: any HostClock,
                             logger: Logger, receive: @escaping Receive) async throws -> LANTransport {
        let groupAddress = try SocketAddress(ipAddress: settings.group, port: settings.port)
        let stamps = Stamps()
        let channel = try await bind(settings.bind, port: settings.port, on: group, clock: clock, stamps: stamps, receive: receive)
        let t = LANTransport(channel: channel, groupAddress: groupAddress, settings: settings, group: group,
                             clock: clock, logger: logger, stamps: stamps, receive: receive)
        t.watchClosing(channel)
        // The kernel's notices first, then the first look: nothing that changes in between is missed.
        // The socket is made on the event loop's thread, like the UDP sockets (the same network
        // namespace).
        let watching: Bool
        do {
            let weak = Weak(t)
            let w = try await channel.eventLoop.submit {
                try InterfaceWatch { changes in weak.value?.interfacesChanged(changes) }
            }.get()
            t.watch.withLock { $0 = w }
            watching = true
        } catch {
            logger.warning("convoy link: no rtnetlink notices of interface changes (\(error)); looking at the interfaces every \(settings.refreshInterval.nanoseconds / 1_000_000_000) s instead")
            watching = false
        }
        await t.refreshInterfaces()
        if t.joined.isEmpty {
            logger.warning("no multicast-capable interface yet: beacons are not heard until one comes up")
        }
        if let i = settings.impairment {
            logger.warning("TEST HOOK: every datagram this car sends is impaired (\(i)); never set this on a car")
        }
        if !watching {
            channel.eventLoop.scheduleRepeatedTask(initialDelay: settings.refreshInterval, delay: settings.refreshInterval) { [weak t] task in
                guard let t else { task.cancel(); return }
                Task { await t.refreshInterfaces() }
            }
        }
        return t
    }

    /// A UDP socket bound to `host:port` whose receive timestamps are on, handed to SwiftNIO
    /// (the socket is made here so its descriptor is known to the receive handler). Made on the
    /// event loop's thread, so it is in that thread's network namespace (every socket of the
    /// transport is: tests run one in a namespace of its own).
    private static func bind(_ host: String, port: Int, on group: any EventLoopGroup, clock: any HostClock,
                             stamps: Stamps, receive: @escaping Receive) async throws -> any Channel {
        let address = try SocketAddress.makeAddressResolvingHost(host, port: port)
        let loop = group.next()
        let fd = try await loop.submit {
            let fd = Glibc.socket(Int32(address.protocol.rawValue), Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue) | Int32(SOCK_NONBLOCK.rawValue), 0)
            guard fd >= 0 else { throw IOError(errnoCode: errno, reason: "socket") }
            var one: Int32 = 1
            var ok = setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size)) == 0
            ok = ok && address.withSockAddr { Glibc.bind(fd, $0, socklen_t($1)) } == 0
            guard ok else {
                let e = errno
                Glibc.close(fd)
                throw IOError(errnoCode: e, reason: "bind \(host):\(port)")
            }
            Stamps.enable(fd)
            return fd
        }.get()
        // From here SwiftNIO owns the descriptor (it closes it itself if the channel fails).
        return try await DatagramBootstrap(group: loop)
            .channelInitializer { ch in
                ch.eventLoop.makeCompletedFuture {
                    try ch.pipeline.syncOperations.addHandler(Inbound(clock: clock, fd: fd, stamps: stamps, receive: receive))
                }
            }
            .withBoundSocket(fd).get()
    }

    /// What the kernel said changed: the interfaces are looked at `settleTime` later.
    private func interfacesChanged(_ changes: [InterfaceWatch.Change]) {
        logger.debug("convoy link: \(changes.map(\.description).joined(separator: "; "))")
        lookSoon(after: settings.settleTime)
    }

    /// Schedules one look at the interfaces: asks before it runs are that one look, unless they
    /// want it sooner (a notice while a retry waits out its back-off).
    private func lookSoon(after delay: TimeAmount) {
        guard !closed.withLock({ $0 }) else { return }
        let at = NIODeadline.now() + delay
        let loop = channel.eventLoop
        pendingLook.withLock { pending in
            if let p = pending, p.at <= at { return }
            pending?.task.cancel()
            let task = loop.scheduleTask(deadline: at) { [weak self] in
                guard let self else { return }
                pendingLook.withLock { $0 = nil }
                Task { await self.refreshInterfaces() }
            }
            pending = (task, at)
        }
    }

    /// A channel closed under us (SwiftNIO closes a datagram channel on most send errors) asks
    /// for a look, which opens it again; a second later, so a send error that repeats does not
    /// spin.
    private func watchClosing(_ ch: any Channel) {
        ch.closeFuture.whenComplete { [weak self] _ in
            guard let self, !closed.withLock({ $0 }) else { return }
            lookSoon(after: .seconds(1))
        }
    }

    /// Joins the group on interfaces that came up and opens their sending socket; closes those
    /// of interfaces that went away or changed address. Called at start, after the kernel's
    /// notices of a change, and when a socket closed. A call while one runs makes that one look
    /// again when it is done (the change may have come after it read the interfaces).
    public func refreshInterfaces() async {
        guard refreshing.withLock({ r in
            if r.running { r.again = true; return false }
            r.running = true
            return true
        }) else { return }
        while true {
            await lookAtInterfaces()
            let again = refreshing.withLock { r -> Bool in
                let again = r.again
                r.again = false
                r.running = again
                return again
            }
            if !again { return }
        }
    }

    private func lookAtInterfaces() async {
        guard !closed.withLock({ $0 }) else { return }
        looks.withLock { $0 += 1 }
        if !channel.isActive {
            // Closed under us by a send error: bind again and join every interface anew.
            do {
                let fresh = try await Self.bind(settings.bind, port: settings.port, on: eventLoopGroup, clock: clock, stamps: stamps, receive: receive)
                main.withLock { $0 = fresh }
                watchClosing(fresh)
                let gone = links.withLock { l -> [Link] in defer { l.removeAll() }; return Array(l.values) }
                for l in gone { try? await l.channel.close() }
                logger.notice("convoy link: the UDP socket had closed (a send error); bound again")
            } catch {
                logger.warning("convoy link: cannot bind the UDP socket again: \(error); trying again in \(retryLater()) s")
                return
            }
        }
        var now: [String: NIONetworkDevice] = [:]
        // getifaddrs on the event loop's thread, not on the concurrency pool.
        let devices = (try? await channel.eventLoop.submit { try System.enumerateDevices() }.get()) ?? []
        for device in devices {
            guard case .v4? = device.address, device.multicastSupported else { continue }
            now["\(device.name)#\(device.interfaceIndex) \(device.address?.ipAddress ?? "?")"] = device
        }
        let old = links.withLock { $0 }
        for (key, link) in old where now[key] == nil || !link.channel.isActive {
            links.withLock { _ = $0.removeValue(forKey: key) }
            try? await link.channel.close()
            if let m = channel as? any MulticastChannel { try? await m.leaveGroup(groupAddress, device: link.device).get() }
            logger.info("convoy link: \(key) \(now[key] == nil ? "went away" : "had closed (a send error); opening it again")")
        }
        let kept = links.withLock { $0 }
        var failed = false
        for (key, device) in now.sorted(by: { $0.key < $1.key }) where kept[key] == nil {
            guard case .v4(let v4)? = device.address, let ip = device.address?.ipAddress else { continue }
            var sender: (any Channel)?
            do {
                if let m = channel as? any MulticastChannel {
                    do { try await m.joinGroup(groupAddress, device: device).get() } catch let e as IOError where e.errnoCode == EADDRINUSE {
                        // Already a member on this interface (a second address, or a rejoin): fine.
                    }
                }
                let s = try await Self.bind(ip, port: settings.port, on: eventLoopGroup, clock: clock, stamps: stamps, receive: receive)
                sender = s
                if let o = s as? any SocketOptionProvider { try await o.setIPMulticastIF(v4.address.sin_addr).get() }
                links.withLock { $0[key] = Link(device: device, channel: s) }
                watchClosing(s)
                logger.info("convoy link: beacons on \(settings.group) via \(device.name) (\(ip))")
            } catch {
                try? await sender?.close()
                failed = true
                logger.warning("convoy link: cannot use \(key): \(error); trying again in \(retryLater()) s")
            }
        }
        if !failed { retryBackoff.withLock { $0 = 1 } }
    }

    /// Schedules the look again after a failure, backing off; returns the wait in seconds.
    private func retryLater() -> Int64 {
        let wait = retryBackoff.withLock { b in defer { b = min(b * 2, 60) }; return b }
        lookSoon(after: .seconds(wait))
        return wait
    }

    /// The event loop the 0.0.0.0 socket reads on (tests keep it busy).
    var eventLoopForTesting: any EventLoop { channel.eventLoop }

    /// The local port actually bound (differs from the setting when it is 0).
    public var localPort: Int? { channel.localAddress?.port }

    /// Send to every car on the LAN: out of every interface (receivers drop the duplicates).
    public func multicast(_ bytes: [UInt8]) {
        // No interface up: nowhere to send (and a send error would close the socket).
        for ch in links.withLock({ $0.values.map(\.channel) }) { write(bytes, to: groupAddress, on: ch) }
    }

    /// Send to one car. Errors (no route, interface down) are dropped: UDP is best effort and a
    /// missing datagram is what every protocol above already copes with.
    public func send(_ bytes: [UInt8], to address: SocketAddress) {
        write(bytes, to: address, on: channel)
    }

    /// Send to one car `count` datagrams, back to back, each carrying the moment it leaves:
    /// `make` is called on the event loop with a function that reads the car's clock, which it
    /// calls just before it seals (inside whatever lock the sealing takes), and returns the
    /// sealed bytes (nil: nothing to send); they are written at once. `rehearse` runs
    /// before each, to warm what `make` does. For clock exchanges: a car that has been idle
    /// would otherwise seal slowly after its stamp, and its first datagram takes the cold path
    /// through the network stack (on Wi-Fi, wakes the radio) while the answer, sent by a car
    /// that has just received, takes the warm one; the two directions of an exchange would not
    /// take equally long. The second of a pair finds the path warm.
    public func sendStamped(to address: SocketAddress, count: Int = 1, rehearse: @escaping @Sendable () -> Void,
                            _ make: @escaping @Sendable (_ readClock: () -> Nanos) -> [UInt8]?) {
        let ch = channel
        let clock = self.clock
        ch.eventLoop.execute { [self] in
            for _ in 0..<max(1, count) {
                rehearse()
                guard let bytes = make({ clock.now() }) else { return }
                write(bytes, to: address, on: ch)
            }
        }
    }

    private func write(_ bytes: [UInt8], to address: SocketAddress, on channel: any Channel) {
        var buffer = channel.allocator.buffer(capacity: bytes.count)
        buffer.writeBytes(bytes)
        let envelope = AddressedEnvelope(remoteAddress: address, data: buffer)
        guard let impairment = settings.impairment else {
            channel.writeAndFlush(envelope, promise: nil)
            return
        }
        guard let hold = impairRandom.withLock({ impairment.draw(&$0) }) else {
            dropped.withLock { $0 += 1 }
            return
        }
        channel.eventLoop.scheduleTask(in: .nanoseconds(hold)) {
            channel.writeAndFlush(envelope, promise: nil)
        }
    }

    public func close() async {
        closed.withLock { $0 = true }
        watch.withLock { w in w?.stop(); w = nil }
        pendingLook.withLock { p in p?.task.cancel(); p = nil }
        for l in links.withLock({ l in defer { l.removeAll() }; return Array(l.values.map(\.channel)) }) { try? await l.close() }
        try? await channel.close()
    }

    /// What the watch's thread holds: not the transport itself (it lets go of the watch).
    private final class Weak: Sendable {
        weak let value: LANTransport?
        init(_ value: LANTransport) { self.value = value }
    }

    private final class Inbound: ChannelInboundHandler, Sendable {
        typealias InboundIn = AddressedEnvelope<ByteBuffer>
        let clock: any HostClock
        let fd: Int32
        let stamps: Stamps
        let receive: Receive
        init(clock: any HostClock, fd: Int32, stamps: Stamps, receive: @escaping Receive) {
            self.clock = clock; self.fd = fd; self.stamps = stamps; self.receive = receive
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            let at = stamps.arrival(fd: fd, clock: clock)
            let envelope = unwrapInboundIn(data)
            receive(Array(envelope.data.readableBytesView), envelope.remoteAddress, at)
        }

        func errorCaught(context: ChannelHandlerContext, error: any Error) {
            // ICMP port-unreachable from a peer that went away, and the like: not fatal.
        }
    }
}
