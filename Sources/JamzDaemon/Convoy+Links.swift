import Foundation
import JamzCore
import JamzNet
import NIOCore
import NIOPosix

/// The convoy's links: the LAN (UDP), the internet relay (MQTT) and Bluetooth LE, and sending
/// over them.
extension Convoy {
    func start() async {
        // One queue for all links, handled in arrival order by one task on this actor.
        Task(executorPreference: loopExecutor) { await self.drainInbox() }
        guard settings.port > 0 else { logger.info("convoy LAN link disabled (convoy_port = 0)"); return }
        do {
            let (sink, counters) = (inboxSink, store.counters)
            let t = try await LANTransport.start(settings: settings, on: loop, clock: clock, logger: logger) { bytes, from, at in
                if case .dropped = sink.yield(Datagram(bytes: bytes, from: from, at: at)) {
                    counters.add("convoy.dropped.overload", 1)
                }
            }
            transport = t
            logger.info("convoy link: UDP \(settings.port), beacons on \(settings.group) via \(t.joined.joined(separator: ", "))")
        } catch {
            logger.error("convoy link cannot start: \(error); playing alone")
        }
    }

    /// Handles what the links deliver, in arrival order. Isolated to this actor: a datagram the
    /// LAN link yields on the loop is handled on the loop, with no hop through another thread.
    private func drainInbox() async {
        for await d in inbox {
            await receive(d.bytes, from: d.from, ble: d.ble, at: d.at)
        }
    }

    /// The Bluetooth LE link of this convoy (its advertisement's keys come from the secret).
    func startBLE(_ s: ConvoySecret) {
        ble?.close()
        ble = nil
        guard let index = bleController else { return }
        let (sink, counters) = (inboxSink, store.counters)
        // The advertisement's 15-minute slot from GPS time when this car has had a fix (a head
        // unit without a real-time clock may boot far off), else from the system clock.
        let (location, clock) = (location, clock)
        let l = BLELink(controller: index, me: me, key: s.bleKey, clock: clock, logger: logger,
                        wallSeconds: { location?.utcSeconds(at: clock.now()) ?? Int64(time(nil)) }, onSighting: { [weak self] sighting in
            guard let self else { return }
            Task { await self.sighted(sighting) }
        }, onMessage: { bytes, at, channel in
            if case .dropped = sink.yield(Datagram(bytes: bytes, from: nil, ble: channel, at: at)) { counters.add("convoy.dropped.overload", 1) }
        })
        l.advertise(bleBeacon)
        l.start()
        ble = l
    }

    /// The relay link of this convoy (its topic comes from the secret), if one is configured.
    func startRelay(_ s: ConvoySecret) {
        relay?.close()
        relay = nil
        guard let r = relaySettings else { return }
        var g = SystemRandomNumberGenerator()
        // A client id that names neither the car nor the convoy, new at each start.
        let clientID = "jamz-" + String(g.next() as UInt64, radix: 36)
        let (sink, counters) = (inboxSink, store.counters)
        do {
            let t = try RelayTransport(settings: r, topic: s.relayTopic, inbox: s.relayInbox(for: me), clientID: clientID,
                                       clock: clock, logger: logger) { bytes, at in
                if case .dropped = sink.yield(Datagram(bytes: bytes, from: nil, at: at)) { counters.add("convoy.dropped.overload", 1) }
            }
            t.start()
            relay = t
            logger.info("convoy relay: \(t.status.broker)")
        } catch {
            logger.error("convoy relay cannot start: \(error); the convoy uses the LAN only")
        }
    }

    /// A clock-exchange message that carries the moment it leaves: stamped, sealed and written
    /// on the transport's event loop, after a rehearsal seal (`LANTransport.sendStamped`).
    func sendStamped(to route: Route, count: Int = 1, _ message: @escaping @Sendable (Nanos) -> WireMessage) {
        guard case .lan(let address) = route else {
            // Through the relay: stamped when handed to its thread (the path's 40+ ms of jitter
            // dwarfs the hand-over), one at a time.
            if case .relay(let id) = route, let relay, let s = secret,
               let bytes = outbox.seal(stampedBy: { clock.now() }, message) {
                relay.publish(bytes, .datagram, to: s.relayInbox(for: id))
            }
            // Over BLE: stamped just before the channel's non-blocking write.
            if case .ble(let id) = route, let ble { ble.send(to: id) { [outbox, clock] in outbox.seal(stampedBy: { clock.now() }, message) } }
            return
        }
        transport?.sendStamped(to: address, count: count, rehearse: { [outbox] in outbox.rehearse(message(0)) }) { [outbox] read in
            outbox.seal(stampedBy: read, message)
        }
    }

    /// To one car the way it was heard (`to`), or to every car on every link (nil).
    func send(_ m: WireMessage, to route: Route?) {
        guard let bytes = outbox.seal(m) else { return }
        switch route {
        case .lan(let address): transport?.send(bytes, to: address)
        case .relay(let id): if let s = secret { relay?.publish(bytes, .reliable, to: s.relayInbox(for: id)) }
        case .ble(let id): ble?.send(bytes, to: id)
        case nil:
            transport?.multicast(bytes)
            ble?.broadcast(bytes)
            guard let relay else { return }
            switch m {
            case .beacon:
                let now = clock.now()
                guard now - lastRelayBeacon >= Self.relayBeaconInterval else { return }
                lastRelayBeacon = now
                relay.publish(bytes, .datagram)
            case .timeline:
                relay.publish(bytes, .reliable)
                relay.publish(bytes, .retainedTimeline)
            default: relay.publish(bytes, .reliable)
            }
        }
    }
}
