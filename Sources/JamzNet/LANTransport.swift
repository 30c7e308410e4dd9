import JamzCore
import Logging
import NIOCore
import NIOPosix
import Synchronization

/// The LAN link: one UDP socket (bound to every address) that receives the multicast beacons
/// and unicast control, clock exchanges and anti-entropy, plus one socket per interface bound to
/// that interface's address, which sends the beacons out of that interface (a car may have Wi-Fi
/// and Ethernet side by side) and receives the unicast replies addressed to it. Interfaces that
/// come up later (the Wi-Fi hotspot after boot) are picked up within `refreshInterval`, and
/// those that go away are let go. It moves opaque datagrams (sealed envelopes); it knows
/// nothing of keys or messages. Each datagram is stamped with the car's clock the moment the
/// event loop reads it.
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
        /// How often the interfaces are looked at again.
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
    /// the Wi-Fi is down, say): a closed one is bound again at the next refresh.
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
    private let refreshing = Mutex(false)
    private let impairRandom: Mutex<SplitMix64>
    private let dropped = Mutex(0)

    /// Interfaces the beacons go out of and the multicast group was joined on (status, tests).
    public var joined: [String] { links.withLock { $0.values.map(\.device.name).sorted() } }
    /// Datagrams the test impairment dropped.
    public var impairedDrops: Int { dropped.withLock { $0 } }

    private init(channel: any Channel, groupAddress: SocketAddress, settings: Settings, group: any EventLoopGroup,
                 clock: any HostClock, logger: Logger, receive: @escaping Receive) {
        self.main = Mutex(channel); self.groupAddress = groupAddress; self.settings = settings
        self.eventLoopGroup = group; self.clock = clock; self.logger = logger; self.receive = receive
        impairRandom = Mutex(SplitMix64(seed: settings.impairment?.seed ?? 1))
    }

    /// Bind the socket, join the beacon group on every up, multicast-capable IPv4 interface,
    /// open a sending socket on each, start delivering datagrams, and keep watching the interfaces.
    public static func start(settings: Settings, on group: any EventLoopGroup, clock: any HostClock,
                             logger: Logger, receive: @escaping Receive) async throws -> LANTransport {
        let groupAddress = try SocketAddress(ipAddress: settings.group, port: settings.port)
        let channel = try await bind(settings.bind, port: settings.port, on: group, clock: clock, receive: receive)
        let t = LANTransport(channel: channel, groupAddress: groupAddress, settings: settings, group: group,
                             clock: clock, logger: logger, receive: receive)
        await t.refreshInterfaces()
        if t.joined.isEmpty {
            logger.warning("no multicast-capable interface yet: beacons are not heard until one comes up (looked at every \(settings.refreshInterval.nanoseconds / 1_000_000_000) s)")
        }
        if let i = settings.impairment {
            logger.warning("TEST HOOK: every datagram this car sends is impaired (\(i)); never set this on a car")
        }
        channel.eventLoop.scheduleRepeatedTask(initialDelay: settings.refreshInterval, delay: settings.refreshInterval) { [weak t] task in
            guard let t else { task.cancel(); return }
            Task { await t.refreshInterfaces() }
        }
        return t
    }

    private static func bind(_ host: String, port: Int, on group: any EventLoopGroup, clock: any HostClock,
                             receive: @escaping Receive) async throws -> any Channel {
        try await DatagramBootstrap(group: group)
            .channelOption(.socketOption(.so_reuseaddr), value: 1)
            .channelInitializer { ch in
                ch.eventLoop.makeCompletedFuture {
                    try ch.pipeline.syncOperations.addHandler(Inbound(clock: clock, receive: receive))
                }
            }
            .bind(host: host, port: port).get()
    }

    /// Joins the group on interfaces that came up and opens their sending socket; closes those
    /// of interfaces that went away or changed address. Called at start and every `refreshInterval`.
    public func refreshInterfaces() async {
        guard refreshing.withLock({ r in defer { r = true }; return !r }) else { return }
        defer { refreshing.withLock { $0 = false } }
        guard !closed.withLock({ $0 }) else { return }
        if !channel.isActive {
            // Closed under us by a send error: bind again and join every interface anew.
            do {
                let fresh = try await Self.bind(settings.bind, port: settings.port, on: eventLoopGroup, clock: clock, receive: receive)
                main.withLock { $0 = fresh }
                let gone = links.withLock { l -> [Link] in defer { l.removeAll() }; return Array(l.values) }
                for l in gone { try? await l.channel.close() }
                logger.notice("convoy link: the UDP socket had closed (a send error); bound again")
            } catch {
                logger.warning("convoy link: cannot bind the UDP socket again: \(error)")
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
        for (key, device) in now.sorted(by: { $0.key < $1.key }) where kept[key] == nil {
            guard case .v4(let v4)? = device.address, let ip = device.address?.ipAddress else { continue }
            var sender: (any Channel)?
            do {
                if let m = channel as? any MulticastChannel {
                    do { try await m.joinGroup(groupAddress, device: device).get() } catch let e as IOError where e.errnoCode == EADDRINUSE {
                        // Already a member on this interface (a second address, or a rejoin): fine.
                    }
                }
                let s = try await Self.bind(ip, port: settings.port, on: eventLoopGroup, clock: clock, receive: receive)
                sender = s
                if let o = s as? any SocketOptionProvider { try await o.setIPMulticastIF(v4.address.sin_addr).get() }
                links.withLock { $0[key] = Link(device: device, channel: s) }
                logger.info("convoy link: beacons on \(settings.group) via \(device.name) (\(ip))")
            } catch {
                try? await sender?.close()
                logger.warning("convoy link: cannot use \(key): \(error)")
            }
        }
    }

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
        for l in links.withLock({ l in defer { l.removeAll() }; return Array(l.values.map(\.channel)) }) { try? await l.close() }
        try? await channel.close()
    }

    private final class Inbound: ChannelInboundHandler, Sendable {
        typealias InboundIn = AddressedEnvelope<ByteBuffer>
        let clock: any HostClock
        let receive: Receive
        init(clock: any HostClock, receive: @escaping Receive) { self.clock = clock; self.receive = receive }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            let at = clock.now()
            let envelope = unwrapInboundIn(data)
            receive(Array(envelope.data.readableBytesView), envelope.remoteAddress, at)
        }

        func errorCaught(context: ChannelHandlerContext, error: any Error) {
            // ICMP port-unreachable from a peer that went away, and the like: not fatal.
        }
    }
}
