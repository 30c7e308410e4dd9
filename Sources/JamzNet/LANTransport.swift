import JamzCore
import Logging
import NIOCore
import NIOPosix
import Synchronization

/// The LAN link: one UDP socket for multicast beacons and unicast control, clock exchanges and
/// anti-entropy. It moves opaque datagrams (sealed envelopes); it knows nothing of keys or
/// messages. Each datagram is stamped with the car's clock the moment the event loop reads it.
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
        public init(port: Int = 47_800, group: String = "239.255.74.77", bind: String = "0.0.0.0", impairment: LinkImpairment? = nil) {
            self.port = port; self.group = group; self.bind = bind; self.impairment = impairment
        }
    }

    public typealias Receive = @Sendable (_ bytes: [UInt8], _ from: SocketAddress, _ receivedAt: Nanos) -> Void

    private let channel: any Channel
    private let groupAddress: SocketAddress
    /// Interfaces the multicast group was joined on (for status and tests).
    public let joined: [String]
    private let impairment: LinkImpairment?
    private let impairRandom: Mutex<SplitMix64>
    /// Datagrams the test impairment dropped.
    public var impairedDrops: Int { dropped.withLock { $0 } }
    private let dropped = Mutex(0)

    private init(channel: any Channel, groupAddress: SocketAddress, joined: [String], impairment: LinkImpairment?) {
        self.channel = channel; self.groupAddress = groupAddress; self.joined = joined
        self.impairment = impairment
        impairRandom = Mutex(SplitMix64(seed: impairment?.seed ?? 1))
    }

    /// Bind the socket, join the beacon group on every up, multicast-capable IPv4 interface
    /// (a car may have Wi-Fi and Ethernet side by side) and start delivering datagrams.
    public static func start(settings: Settings, on group: any EventLoopGroup, clock: any HostClock,
                             logger: Logger, receive: @escaping Receive) async throws -> LANTransport {
        let groupAddress = try SocketAddress(ipAddress: settings.group, port: settings.port)
        let channel = try await DatagramBootstrap(group: group)
            .channelOption(.socketOption(.so_reuseaddr), value: 1)
            .channelInitializer { ch in
                ch.eventLoop.makeCompletedFuture {
                    try ch.pipeline.syncOperations.addHandler(Inbound(clock: clock, receive: receive))
                }
            }
            .bind(host: settings.bind, port: settings.port).get()
        var joined: [String] = []
        if let multicast = channel as? any MulticastChannel {
            for device in (try? System.enumerateDevices()) ?? [] {
                guard case .v4? = device.address, device.multicastSupported else { continue }
                do {
                    try await multicast.joinGroup(groupAddress, device: device).get()
                    joined.append(device.name)
                } catch {
                    logger.warning("cannot join \(settings.group) on \(device.name): \(error)")
                }
            }
        }
        if joined.isEmpty {
            logger.warning("no multicast-capable interface: beacons are not heard on this machine (peers given by address still work)")
        }
        if let i = settings.impairment {
            logger.warning("TEST HOOK: every datagram this car sends is impaired (\(i)); never set this on a car")
        }
        return LANTransport(channel: channel, groupAddress: groupAddress, joined: joined, impairment: settings.impairment)
    }

    /// The local port actually bound (differs from the setting when it is 0).
    public var localPort: Int? { channel.localAddress?.port }

    /// Send to every car on the LAN.
    public func multicast(_ bytes: [UInt8]) {
        send(bytes, to: groupAddress)
    }

    /// Send to one car. Errors (no route, interface down) are dropped: UDP is best effort and a
    /// missing datagram is what every protocol above already copes with.
    public func send(_ bytes: [UInt8], to address: SocketAddress) {
        var buffer = channel.allocator.buffer(capacity: bytes.count)
        buffer.writeBytes(bytes)
        let envelope = AddressedEnvelope(remoteAddress: address, data: buffer)
        guard let impairment else {
            channel.writeAndFlush(envelope, promise: nil)
            return
        }
        guard let hold = impairRandom.withLock({ impairment.draw(&$0) }) else {
            dropped.withLock { $0 += 1 }
            return
        }
        let channel = self.channel
        channel.eventLoop.scheduleTask(in: .nanoseconds(hold)) {
            channel.writeAndFlush(envelope, promise: nil)
        }
    }

    public func close() async {
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
