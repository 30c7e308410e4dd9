import CBluetooth  // also where <sys/socket.h>'s SOCK_/MSG_ constants may come from (its headers include it)
import CLinuxNet
import Foundation
import Glibc
import JamzCore
import Logging
import Synchronization

/// A car's convoy presence over Bluetooth LE: it advertises the convoy beacon
/// (`BLEAdvertisement`: a rotating hint, the member id, term and DJ flag sealed) on one
/// controller and scans for the other cars' beacons, through the kernel's management interface,
/// which it shares with bluetoothd (docs/ble.md). Everything runs on the link's own thread,
/// asleep in poll() on the control socket and a stop eventfd until an event or the next
/// deadline (the advertisement's new nonce every `readvertiseSeconds`, a discovery retry).
/// Sightings of this convoy's cars go to `onSighting`; everyone else's advertisements are
/// dropped and counted by reason. A car without a controller, or a kernel without Bluetooth,
/// says so once and the link stays down; a controller that appears later (INDEX_ADDED) is taken.
///
/// Data: the sealed envelopes travel over LE L2CAP channels (`BLEChannel`) between convoy cars
/// that have seen each other's advertisement: the car with the lower controller address
/// connects (scanning paused meanwhile: a controller that discovers delays its own connects),
/// the other accepts; a channel that breaks is dropped and made again at the next sighting.
/// `send`/`broadcast` never block (non-blocking sockets; a full channel drops and counts).
public final class BLELink: @unchecked Sendable {
    // @unchecked: `state` is a Mutex; the thread owns the sockets (channels are closed under the
    // lock, and sends from other threads happen under it); `stopFD` is written once.

    public struct Sighting: Sendable {
        public var member: MemberID
        /// The low 24 bits of its term number, and whether it says it is the DJ.
        public var term: UInt32
        public var isDJ: Bool
        public var address: Mgmt.Address
        /// dBm; nil when the controller reports none.
        public var rssi: Int8?
        public var at: Nanos
    }

    /// `jamz group show --json` → `ble`.
    public struct Status: Codable, Sendable, Equatable {
        public var controller: String
        public var address: String?
        public var up: Bool
        public var problem: String?
        public var advertisements: Int64
        public var sightings: Int64
        /// Advertisements heard that were not this convoy's, by reason (`BLEAdvertisement.Drop`).
        public var dropped: [String: Int64]
        public var malformedEvents: Int64
        /// L2CAP channels open now, made (connected or accepted) and failed to connect.
        public var channels: Int
        public var channelsMade: Int64
        public var connectFailures: Int64
        public var messagesSent: Int64
        public var messagesReceived: Int64
        public var bytesSent: Int64
        public var bytesReceived: Int64
        /// Envelopes not sent: the channel was full or the envelope larger than its MTU.
        public var sendDrops: Int64
        /// Channels refused: from a device whose convoy advertisement was not heard, or over the cap.
        public var refusedChannels: Int64 = 0
        /// Channels closed because nothing came over them for `silenceTimeout` (a channel that
        /// stalled, or whose other end the kernel mismatched: docs/ble.md).
        public var silentChannels: Int64 = 0
        /// Whether the controller advertises and connects from resolvable private addresses (nil: not known yet).
        public var privateAddress: Bool?
        /// Whether the advertisement goes out in the extended format (the controller has it).
        public var extendedAdvertising: Bool = false
        /// Why the last envelope was not sent (errno's text), while sends fail; nil once one goes.
        public var sendProblem: String?

        /// One line for `jamz group show`.
        public var summary: String {
            var s = "\(controller)\(address.map { " \($0)" } ?? "") " + (up ? "advertising and scanning" : "down: \(problem ?? "starting")")
            if up {
                s += privateAddress == true ? " from private addresses" : " from its public address"
                s += extendedAdvertising ? " (extended advertising)" : ""
            }
            s += ", \(advertisements) advertisements sent, \(sightings) convoy sightings"
            s += ", \(channels) channel\(channels == 1 ? "" : "s") (\(messagesSent) messages / \(bytesSent) bytes out, \(messagesReceived) / \(bytesReceived) in)"
            let d = dropped.values.reduce(0, +)
            if d > 0 { s += ", \(d) others' advertisements ignored" }
            return s
        }
    }

    public static let readvertiseSeconds: Int64 = 5
    static let instance: UInt8 = 1
    /// A connect that has not completed by then is given up (the peer may have driven off).
    static let connectTimeout: Nanos = 10 * nanosPerSecond
    /// Channels at most (a convoy is a handful of cars; anything beyond is refused).
    static let maxChannels = 16
    /// A convoy car sends a beacon every second: a channel silent this long is closed and made
    /// again. Under Debian 12's kernel, an accepted channel can end up sending into another
    /// channel of the same link (its connect request's ident reused by bluetoothd's EATT: docs/ble.md).
    static let silenceTimeout: Nanos = 5 * nanosPerSecond
    /// Between discovery sessions while every car sighted has a channel (a new car is then found
    /// within this plus a session; one without a channel makes discovery continuous again).
    static let linkedScanPause: Nanos = 20 * nanosPerSecond

    let index: UInt16
    let me: MemberID
    let key: BLEKey
    let clock: any HostClock
    let logger: Logger
    let onSighting: @Sendable (Sighting) -> Void
    /// A message from a channel (its peer controller's address, for `bind`).
    let onMessage: @Sendable ([UInt8], Nanos, Mgmt.Address) -> Void
    /// UTC seconds, for the advertisement's 15-minute slot.
    let wallSeconds: @Sendable () -> Int64
    /// Test hook: a network namespace (`/proc/1/ns/net`) the link's thread joins before it opens
    /// its sockets: Bluetooth sockets exist only in the initial namespace, and the tests run each
    /// car in its own.
    let netns: String?

    struct State {
        var beacon: BLEAdvertisement.Beacon?
        var stopped = false
        var status: Status
        /// Open channels by the peer controller's address, and which member each address is.
        var channels: [Mgmt.Address: Int32] = [:]
        var members: [MemberID: Mgmt.Address] = [:]
    }
    private let state: Mutex<State>
    private let stopFD: Int32
    private let started = Atomic<Bool>(false)

    public init(controller: UInt16, me: MemberID, key: BLEKey, clock: any HostClock, logger: Logger,
                netns: String? = ProcessInfo.processInfo.environment["JAMZ_TEST_BT_NETNS"],
                wallSeconds: @escaping @Sendable () -> Int64 = { Int64(time(nil)) },
                onSighting: @escaping @Sendable (Sighting) -> Void,
                onMessage: @escaping @Sendable ([UInt8], Nanos, Mgmt.Address) -> Void = { _, _, _ in }) {
        index = controller; self.me = me; self.key = key; self.clock = clock; self.logger = logger
        self.netns = netns; self.wallSeconds = wallSeconds; self.onSighting = onSighting; self.onMessage = onMessage
        state = Mutex(State(status: Status(controller: "hci\(controller)", up: false, advertisements: 0, sightings: 0,
                                           dropped: [:], malformedEvents: 0, channels: 0, channelsMade: 0, connectFailures: 0,
                                           messagesSent: 0, messagesReceived: 0, bytesSent: 0, bytesReceived: 0, sendDrops: 0)))
        stopFD = eventfd(0, Int32(EFD_CLOEXEC) | Int32(EFD_NONBLOCK))
    }

    deinit { if stopFD >= 0 { Glibc.close(stopFD) } }

    public var status: Status {
        state.withLock { s in
            var st = s.status
            st.channels = s.channels.count
            return st
        }
    }

    /// The member whose envelope (authenticated by the convoy) came over the channel of `address`:
    /// messages to it go there, whatever address its advertisement showed.
    public func bind(_ member: MemberID, to address: Mgmt.Address) {
        state.withLock { s in if s.channels[address] != nil { s.members[member] = address } }
    }

    /// Whether a channel to this member is open now.
    public func reaches(_ member: MemberID) -> Bool {
        state.withLock { s in s.members[member].map { s.channels[$0] != nil } ?? false }
    }

    /// What this car advertises from now on (re-advertised at once when it changed).
    public func advertise(_ b: BLEAdvertisement.Beacon) {
        let changed = state.withLock { s -> Bool in
            guard s.beacon != b else { return false }
            s.beacon = b
            return true
        }
        if changed { ring() }
    }

    /// One sealed envelope to one member, if a channel to it is open; never blocks.
    @discardableResult
    public func send(_ bytes: [UInt8], to member: MemberID) -> Bool {
        state.withLock { s in
            guard let a = s.members[member], let fd = s.channels[a] else { return false }
            return put(bytes, fd, &s.status)
        }
    }

    /// One sealed envelope to every open channel.
    public func broadcast(_ bytes: [UInt8]) {
        state.withLock { s in
            for fd in s.channels.values { _ = put(bytes, fd, &s.status) }
        }
    }

    /// `stampedBy` is read just before the write (clock exchanges).
    public func send(to member: MemberID, _ seal: () -> [UInt8]?) {
        state.withLock { s in
            guard let a = s.members[member], let fd = s.channels[a], let bytes = seal() else { return }
            _ = put(bytes, fd, &s.status)
        }
    }

    private func put(_ bytes: [UInt8], _ fd: Int32, _ st: inout Status) -> Bool {
        let n = bytes.withUnsafeBytes { p in retryingEINTR { Glibc.send(fd, p.baseAddress, p.count, Int32(MSG_DONTWAIT) | Int32(MSG_NOSIGNAL)) } }
        guard n == bytes.count else {
            st.sendDrops += 1
            let why = n < 0 ? String(cString: strerror(errno)) : "\(n) of \(bytes.count) bytes sent"
            // The first failure of a streak is logged; the rest are counted.
            if st.sendProblem == nil { logger.warning("convoy BLE: an envelope of \(bytes.count) bytes not sent: \(why); dropping until the channel takes them again") }
            st.sendProblem = why
            return false
        }
        if st.sendProblem != nil { logger.info("convoy BLE: the channel takes envelopes again (\(st.sendDrops) dropped so far)") }
        st.sendProblem = nil
        st.messagesSent += 1; st.bytesSent += Int64(n)
        return true
    }

    public func start() {
        guard !started.exchange(true, ordering: .relaxed) else { return }
        let t = Thread { [self] in run() }
        t.name = "jamz-ble"
        t.start()
    }

    /// Stops advertising and scanning and closes the channels: the thread does it and ends by
    /// itself (never waited for here: close is called on the convoy's actor).
    public func close() {
        state.withLock { $0.stopped = true }
        ring()
    }

    private func ring() {
        var one: UInt64 = 1
        _ = retryingEINTR { Glibc.write(stopFD, &one, 8) }
    }

    private func setProblem(_ p: String?) {
        let changed = state.withLock { s -> Bool in
            let c = s.status.problem != p
            s.status.problem = p
            s.status.up = p == nil
            return c
        }
        if changed, let p { logger.warning("convoy BLE (hci\(index)): \(p); the convoy uses its other links") }
    }

    // MARK: - The thread

    private func run() {
        if let netns {
            let fd = open(netns, O_RDONLY | O_CLOEXEC)
            let ok = fd >= 0 && jamz_setns_net(fd) == 0
            let why = String(cString: strerror(errno))
            if fd >= 0 { Glibc.close(fd) }
            guard ok else { setProblem("cannot join the network namespace \(netns): \(why)"); return }
        }
        let sock: BLEControlSocket
        do { sock = try BLEControlSocket() } catch {
            setProblem(error.description)
            return
        }
        var powered = false, discovering = false, poweringOn = false
        var nextAdvertise: Nanos = .max, nextDiscovery: Nanos = .max
        var advertised: BLEAdvertisement.Beacon?
        var myAddress: Mgmt.Address?
        var listener: Int32 = -1
        var pending: [Mgmt.Address: (fd: Int32, since: Nanos)] = [:]
        /// After a failed connect, the next try to that address waits (1 s doubling to 60 s).
        var backoff: [Mgmt.Address: (until: Nanos, wait: Nanos)] = [:]
        /// The listener could not be made (the old link's may still hold the PSM) or accept ran
        /// out of descriptors: tried again then.
        var listenerRetry: Nanos = .max
        /// When each open channel last brought an envelope (or opened), by its descriptor.
        var lastHeard: [Int32: Nanos] = [:]
        /// Extended advertising (READ_ADV_FEATURES), and the controller's data room.
        var extended = false, maxDataLength = Mgmt.legacyAdvertisingLength
        var saidPublic = false
        var g = SystemRandomNumberGenerator()
        sock.send(.readInfo(index))

        func startDiscovery() {
            // Not while connecting: a controller that discovers delays its own connects ~10 s.
            guard powered, !discovering, pending.isEmpty else { return }
            sock.send(.startDiscovery(index))
            discovering = true   // until DISCOVERING off, or the command fails
            nextDiscovery = .max
        }
        func advertiseNow() {
            guard powered, let b = state.withLock({ $0.beacon }) else { return }
            let slot = BLEAdvertisement.slot(unixSeconds: wallSeconds())
            let format: BLEAdvertisement.Format = extended ? .extended : .legacy
            let data = BLEAdvertisement.encode(b, key: key, slot: slot, nonce: g.next(), format: format)
            // Connectable: the car with the lower member id connects its L2CAP channel to it.
            // The beacon carries its own Flags AD.
            // It expires by itself (2 × the re-advertising period) if jamzd dies without removing it.
            if let c = try? Mgmt.Command.addAdvertising(index, instance: Self.instance, flags: extended ? [.connectable, .secondary1M] : .connectable,
                                                        timeout: UInt16(2 * Self.readvertiseSeconds), data: data,
                                                        maxDataLength: maxDataLength), sock.send(c) {
                state.withLock { $0.status.advertisements += 1 }
                advertised = b
            }
            nextAdvertise = clock.now() + Self.readvertiseSeconds * nanosPerSecond
        }
        func controllerUp() {
            powered = true
            setProblem(nil)
            sock.send(.readAdvertisingFeatures(index))
            openListener()
            startDiscovery()
            advertiseNow()
        }
        func openListener() {
            guard listener < 0, powered, let me = myAddress else { return }
            do {
                listener = try BLEChannel.listen(on: me)
                listenerRetry = .max
            } catch {
                if listenerRetry == .max { logger.warning("convoy BLE: \(error); trying again every 2 s") }
                listenerRetry = clock.now() + 2 * nanosPerSecond
            }
        }
        func controllerDown(_ why: String) {
            powered = false; discovering = false; advertised = nil
            nextAdvertise = .max; nextDiscovery = .max; listenerRetry = .max
            closeAll()
            setProblem(why)
        }
        func closeAll() {
            if listener >= 0 { Glibc.close(listener); listener = -1 }
            for (_, p) in pending { Glibc.close(p.fd) }
            pending.removeAll()
            state.withLock { s in
                for fd in s.channels.values { Glibc.close(fd) }
                s.channels.removeAll()
            }
            lastHeard.removeAll()
        }
        /// A channel up. An accepted one only from a car whose convoy advertisement was heard
        /// (anyone nearby can connect to the PSM), and never more than `maxChannels`.
        func opened(_ fd: Int32, _ peer: Mgmt.Address, accepted: Bool, how: String) {
            let (ok, replaced) = state.withLock { s -> (Bool, Int32?) in
                guard !accepted || s.members.values.contains(peer), s.channels.count < Self.maxChannels || s.channels[peer] != nil else {
                    s.status.refusedChannels += 1
                    return (false, nil)
                }
                let old = s.channels[peer]
                if let old { Glibc.close(old) }
                s.channels[peer] = fd
                s.status.channelsMade += 1
                return (true, old)
            }
            guard ok else { Glibc.close(fd); return }
            if let replaced { lastHeard[replaced] = nil }
            lastHeard[fd] = clock.now()
            // The backoff of connects to it ends with the first envelope that comes over it.
            let (out, inn) = BLEChannel.mtus(fd)
            logger.info("convoy BLE: channel with \(peer) \(how) (MTU out \(out) / in \(inn))")
        }
        /// Closes the channel of `peer` if it is still `fd` (a newer one may have replaced it).
        func closeChannel(_ peer: Mgmt.Address, _ fd: Int32, _ why: String) {
            lastHeard[fd] = nil
            let closed = state.withLock { s -> Bool in
                guard s.channels[peer] == fd else { return false }
                s.channels[peer] = nil
                Glibc.close(fd)
                return true
            }
            if closed { logger.info("convoy BLE: channel with \(peer) closed (\(why))") }
        }
        func connectFailed(_ peer: Mgmt.Address, _ why: String) {
            let wait = min((backoff[peer]?.wait ?? nanosPerSecond / 2) * 2, 60 * nanosPerSecond)
            backoff[peer] = (clock.now() + wait, wait)
            state.withLock { $0.status.connectFailures += 1 }
            // Logged at the first failure of a streak; the later ones are counted.
            if wait <= nanosPerSecond { logger.info("convoy BLE: no channel with \(peer): \(why); trying again later") }
        }
        func sighted(_ member: MemberID, _ found: Mgmt.DeviceFound) {
            let known = state.withLock { s -> Bool in
                // A member bound to an open channel (its envelopes came over it) stays there.
                if let a = s.members[member], s.channels[a] != nil { return true }
                s.members[member] = found.address
                return s.channels[found.address] != nil
            }
            // The car with the lower member id connects (both sides agree, whatever addresses the
            // controllers show); the other waits for it.
            guard !known, listener >= 0, let me = myAddress, pending[found.address] == nil, self.me < member,
                  clock.now() >= backoff[found.address]?.until ?? 0 else { return }
            if discovering { sock.send(.stopDiscovery(index)); discovering = false }
            do {
                let fd = try BLEChannel.connect(from: me, to: found.address, type: found.addressType)
                pending[found.address] = (fd, clock.now())
            } catch {
                connectFailed(found.address, "\(error)")
                startDiscovery()
            }
        }

        var buf = [UInt8](repeating: 0, count: Int(BLEChannel.mtu) + 64)
        while !state.withLock({ $0.stopped }) {
            let now = clock.now()
            if now >= nextAdvertise { advertiseNow() }
            if now >= nextDiscovery { nextDiscovery = .max; discovering = false; startDiscovery() }
            if now >= listenerRetry { openListener() }
            for (peer, p) in pending where now - p.since > Self.connectTimeout {
                Glibc.close(p.fd); pending[peer] = nil
                connectFailed(peer, "no answer within \(Self.connectTimeout / nanosPerSecond) s")
                startDiscovery()
            }
            if let b = state.withLock({ $0.beacon }), b != advertised, powered { advertiseNow() }
            for (peer, fd) in state.withLock({ Array($0.channels) }) where now - (lastHeard[fd] ?? now) > Self.silenceTimeout {
                state.withLock { $0.status.silentChannels += 1 }
                closeChannel(peer, fd, "nothing came over it for \(Self.silenceTimeout / nanosPerSecond) s")
                connectFailed(peer, "the channel was silent")
                startDiscovery()
            }
            var deadline = min(nextAdvertise, nextDiscovery, listenerRetry)
            for t in lastHeard.values { deadline = min(deadline, t + Self.silenceTimeout + 1) }
            for p in pending.values { deadline = min(deadline, p.since + Self.connectTimeout) }
            let wait = deadline == .max ? -1 : Int32(clamping: max(0, (deadline - clock.now()) / 1_000_000) + 1)

            // Poll: the control socket, the stop bell, the listener, connects under way, channels.
            let channels = state.withLock { Array($0.channels) }
            var fds = [pollfd(fd: sock.fd, events: Int16(POLLIN), revents: 0), pollfd(fd: stopFD, events: Int16(POLLIN), revents: 0),
                       pollfd(fd: listener, events: Int16(POLLIN), revents: 0)]
            let pendingList = Array(pending)
            fds += pendingList.map { pollfd(fd: $0.value.fd, events: Int16(POLLOUT), revents: 0) }
            fds += channels.map { pollfd(fd: $0.value, events: Int16(POLLIN), revents: 0) }
            let ready = retryingEINTR { poll(&fds, nfds_t(fds.count), wait) }
            if ready < 0 {
                // Not expected (EINVAL, ENOMEM): said once, and a pause instead of a spin.
                if state.withLock({ $0.status.problem == nil }) { logger.warning("convoy BLE: poll: \(String(cString: strerror(errno)))") }
                usleep(100_000)
                continue
            }
            guard ready > 0 else { continue }
            let at = clock.now()
            if fds[1].revents != 0 { var v: UInt64 = 0; _ = Glibc.read(stopFD, &v, 8) }
            if listener >= 0, fds[2].revents & Int16(POLLIN) != 0 {
                while let (fd, peer) = BLEChannel.accept(listener) { opened(fd, peer, accepted: true, how: "accepted") }
                if errno == EMFILE || errno == ENFILE {
                    // Out of descriptors: the listener stays readable; it is closed and made again later.
                    logger.warning("convoy BLE: cannot accept a channel: \(String(cString: strerror(errno)))")
                    Glibc.close(listener); listener = -1
                    listenerRetry = at + 5 * nanosPerSecond
                }
            }
            for (i, (peer, p)) in pendingList.enumerated() where fds[3 + i].revents != 0 {
                pending[peer] = nil
                let err = BLEChannel.connectResult(p.fd)
                if err == 0 {
                    opened(p.fd, peer, accepted: false, how: "connected in \((at - p.since) / 1_000_000) ms")
                } else {
                    Glibc.close(p.fd)
                    connectFailed(peer, String(cString: strerror(err)))
                }
                startDiscovery()
            }
            let base = 3 + pendingList.count
            for (i, (peer, fd)) in channels.enumerated() where fds[base + i].revents != 0 {
                let revents = fds[base + i].revents
                // Everything waiting on this channel (each read one envelope), then on; only while
                // it is still this peer's channel (one accepted above may have replaced it).
                while state.withLock({ $0.channels[peer] == fd }) {
                    let n = buf.withUnsafeMutableBytes { p in retryingEINTR { recv(fd, p.baseAddress, p.count, Int32(MSG_DONTWAIT)) } }
                    if n > 0 {
                        lastHeard[fd] = at
                        backoff[peer] = nil
                        state.withLock { $0.status.messagesReceived += 1; $0.status.bytesReceived += Int64(n) }
                        onMessage(Array(buf[0..<n]), at, peer)
                        continue
                    }
                    if n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) {
                        // Nothing to read but hung up or in error: closed, or poll would spin.
                        if revents & Int16(POLLHUP | POLLERR | POLLNVAL) != 0 { closeChannel(peer, fd, "hung up") }
                        break
                    }
                    closeChannel(peer, fd, n == 0 ? "closed by the other car" : String(cString: strerror(errno)))
                    break
                }
            }
            guard fds[0].revents != 0 else { continue }
            guard let bytes = sock.read() else { continue }
            let event: Mgmt.Event
            do { event = try Mgmt.decode(bytes) } catch {
                state.withLock { $0.status.malformedEvents += 1 }
                continue
            }
            switch event {
            case .commandComplete(let op, index, let st, let reply):
                switch Mgmt.Opcode(rawValue: op) {
                case .readInfo:
                    guard st == 0, let info = try? Mgmt.ControllerInfo(reply: reply) else {
                        setProblem("no controller hci\(index) (\(Mgmt.statusName(st))); waiting for one")
                        continue
                    }
                    myAddress = info.address
                    state.withLock { $0.status.address = info.address.description; $0.status.privateAddress = info.isPrivate }
                    guard info.supportsLE else { setProblem("hci\(index) has no Bluetooth LE"); continue }
                    if info.isPowered && info.isLE {
                        if !info.isPrivate && !saidPublic {
                            // Privacy can only be turned on while the controller is off, and bluetoothd owns it.
                            saidPublic = true
                            logger.warning("convoy BLE: hci\(index) advertises from its public address \(info.address), which lets anyone follow the car; set Privacy = device in /etc/bluetooth/main.conf")
                        }
                        controllerUp()
                    } else if !poweringOn {
                        // Nobody powered it (no bluetoothd): jamzd does, with LE and privacy on
                        // (a new identity resolving key each time: the convoy knows its cars by
                        // their sealed advertisements, nobody needs to resolve the address).
                        poweringOn = true
                        if !info.isPrivate { sock.send(.setPrivacy(index, irk: (0..<16).map { _ in UInt8.random(in: 0...255, using: &g) })) }
                        if !info.isLE { sock.send(.setLE(index, true)) }
                        sock.send(.setPowered(index, true))
                    }
                case .setPowered:
                    poweringOn = false
                    // bluetoothd may have powered it meanwhile (then the answer is "busy").
                    if st == 0 { if !powered { controllerUp() } } else if !powered { setProblem("hci\(index) cannot be powered on (\(Mgmt.statusName(st)))") }
                case .startDiscovery:
                    if st != 0 { discovering = false; nextDiscovery = clock.now() + 2 * nanosPerSecond }
                case .addAdvertising:
                    if st != 0, extended {
                        // The controller said it could and then did not: legacy from now on.
                        logger.warning("convoy BLE: hci\(index) refused the extended advertisement (\(Mgmt.statusName(st))); advertising the legacy one")
                        extended = false
                        state.withLock { $0.status.extendedAdvertising = false }
                        advertiseNow()
                        continue
                    }
                    setProblem(st == 0 ? nil : "hci\(index) refused the advertisement (\(Mgmt.statusName(st)))")
                case .readAdvertisingFeatures:
                    guard st == 0, let f = try? Mgmt.AdvertisingFeatures(reply: reply) else { continue }
                    let ext = f.extended(room: BLEAdvertisement.Format.extended.length)
                    maxDataLength = f.maxDataLength
                    state.withLock { $0.status.extendedAdvertising = ext }
                    if ext != extended { extended = ext; advertiseNow() }
                case .setPrivacy:
                    if st == 0 { state.withLock { $0.status.privateAddress = true } } else {
                        logger.warning("convoy BLE: hci\(index) cannot use private addresses (\(Mgmt.statusName(st))); it advertises from its public address")
                    }
                default: break
                }
            case .commandStatus(let op, index, let st):
                if op == Mgmt.Opcode.setPrivacy.rawValue {
                    logger.warning("convoy BLE: hci\(index) cannot use private addresses (\(Mgmt.statusName(st))); it advertises from its public address")
                }
                if op == Mgmt.Opcode.addAdvertising.rawValue, extended {
                    extended = false
                    state.withLock { $0.status.extendedAdvertising = false }
                    advertiseNow()
                    continue
                }
                if op == Mgmt.Opcode.startDiscovery.rawValue { discovering = false; nextDiscovery = clock.now() + 2 * nanosPerSecond }
                if op == Mgmt.Opcode.setPowered.rawValue, !powered { poweringOn = false; setProblem("hci\(index) cannot be powered on (\(Mgmt.statusName(st)))") }
                if op == Mgmt.Opcode.readInfo.rawValue { setProblem("no controller hci\(index) (\(Mgmt.statusName(st))); waiting for one") }
                if op == Mgmt.Opcode.addAdvertising.rawValue { setProblem("hci\(index) refused the advertisement (\(Mgmt.statusName(st)))") }
            case .indexAdded(index):
                sock.send(.readInfo(index))
            case .indexRemoved(index):
                controllerDown("controller hci\(index) went away; waiting for it")
            case .newSettings(index, let settings):
                state.withLock { $0.status.privateAddress = settings & (1 << 13) != 0 }
                if settings & 1 == 0, powered {
                    controllerDown("hci\(index) was powered off")
                } else if settings & 1 != 0, !powered {
                    controllerUp()
                }
            case .discovering(index, let on):
                // The kernel ends each discovery session after about 10 s. The next one at once
                // while a car sighted has no channel yet; otherwise after a pause, so that the
                // controller's one discovery is free for bluetoothd now and then (the driver's
                // phone pairing) and the radio rests.
                guard !on else { continue }
                discovering = false
                let allLinked = state.withLock { s in s.members.values.allSatisfy { s.channels[$0] != nil } && !s.members.isEmpty }
                if allLinked { nextDiscovery = clock.now() + Self.linkedScanPause } else { startDiscovery() }
            case .deviceFound(index, let found):
                if let member = heard(found, at: at) { sighted(member, found) }
            default: break
            }
        }
        if powered {
            sock.send(.removeAdvertising(index, instance: Self.instance))
            if discovering { sock.send(.stopDiscovery(index)) }
        }
        closeAll()
        sock.close()
    }

    /// A convoy car's advertisement: reported (and its member returned); anything else counted.
    private func heard(_ found: Mgmt.DeviceFound, at: Nanos) -> MemberID? {
        let slot = BLEAdvertisement.slot(unixSeconds: wallSeconds())
        switch BLEAdvertisement.decode(found.data, keys: [key], slot: slot) {
        case .failure(let drop):
            state.withLock { $0.status.dropped[drop.rawValue, default: 0] += 1 }
            return nil
        case .success(let (b, _)):
            guard b.member != me else { return nil }
            state.withLock { $0.status.sightings += 1 }
            onSighting(Sighting(member: b.member, term: b.term, isDJ: b.isDJ, address: found.address, rssi: found.rssi, at: at))
            return b.member
        }
    }
}
