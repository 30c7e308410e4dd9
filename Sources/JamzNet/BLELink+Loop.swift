import CBluetooth  // also where <sys/socket.h>'s SOCK_/MSG_ constants may come from (its headers include it)
import CLinuxNet
import Foundation
import JamzPlatform
import Glibc
import JamzCore
import Logging

/// `BLELink`'s thread: the management socket's commands and events, the L2CAP listener, the
/// connects under way and the open channels, asleep in poll() until one of them or a deadline
/// (the advertisement's new nonce, a discovery retry, a connect timeout, a silent channel).
/// Everything here belongs to the thread; what other threads see is in `link.state`.
final class BLELoop {
    let link: BLELink
    let sock: BLEControlSocket
    let index: UInt16
    let me: MemberID
    let key: BLEKey
    let clock: any HostClock
    let logger: Logger

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
    var buf = [UInt8](repeating: 0, count: Int(BLEChannel.mtu) + 64)

    /// The thread's body: joins the test namespace if asked, opens the management socket, loops
    /// until the link is closed.
    static func run(_ link: BLELink) {
        if let netns = link.netns {
            let fd = open(netns, O_RDONLY | O_CLOEXEC)
            let ok = fd >= 0 && jamz_setns_net(fd) == 0
            let why = String(cString: strerror(errno))
            if fd >= 0 { Glibc.close(fd) }
            guard ok else { link.setProblem("cannot join the network namespace \(netns): \(why)"); return }
        }
        let sock: BLEControlSocket
        do { sock = try BLEControlSocket() } catch {
            link.setProblem(error.description)
            return
        }
        BLELoop(link, sock).loop()
    }

    init(_ link: BLELink, _ sock: BLEControlSocket) {
        self.link = link; self.sock = sock
        index = link.index; me = link.me; key = link.key; clock = link.clock; logger = link.logger
    }

    func loop() {
        sock.send(.readInfo(index))
        while !link.state.withLock({ $0.stopped }) { step(wait: dueWork()) }
        if powered {
            sock.send(.removeAdvertising(index, instance: BLELink.instance))
            if discovering { sock.send(.stopDiscovery(index)) }
        }
        closeAll()
        sock.close()
    }

    func startDiscovery() {
        // Not while connecting: a controller that discovers delays its own connects ~10 s.
        guard powered, !discovering, pending.isEmpty else { return }
        sock.send(.startDiscovery(index))
        discovering = true   // until DISCOVERING off, or the command fails
        nextDiscovery = .max
    }
    func advertiseNow() {
        guard powered, let b = link.state.withLock({ $0.beacon }) else { return }
        let slot = BLEAdvertisement.slot(unixSeconds: link.wallSeconds())
        let format: BLEAdvertisement.Format = extended ? .extended : .legacy
        let data = BLEAdvertisement.encode(b, key: key, slot: slot, nonce: g.next(), format: format)
        // Connectable: the car with the lower member id connects its L2CAP channel to it.
        // The beacon carries its own Flags AD.
        // It expires by itself (2 × the re-advertising period) if jamzd dies without removing it.
        if let c = try? Mgmt.Command.addAdvertising(index, instance: BLELink.instance, flags: extended ? [.connectable, .secondary1M] : .connectable,
                                                    timeout: UInt16(2 * BLELink.readvertiseSeconds), data: data,
                                                    maxDataLength: maxDataLength), sock.send(c) {
            link.state.withLock { $0.status.advertisements += 1 }
            advertised = b
        }
        nextAdvertise = clock.now() + BLELink.readvertiseSeconds * nanosPerSecond
    }
    func controllerUp() {
        powered = true
        link.setProblem(nil)
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
        link.setProblem(why)
    }
    func closeAll() {
        if listener >= 0 { Glibc.close(listener); listener = -1 }
        for (_, p) in pending { Glibc.close(p.fd) }
        pending.removeAll()
        link.state.withLock { s in
            for fd in s.channels.values { Glibc.close(fd) }
            s.channels.removeAll()
        }
        lastHeard.removeAll()
    }
    /// A channel up. An accepted one only from a car whose convoy advertisement was heard
    /// (anyone nearby can connect to the PSM), and never more than `maxChannels`.
    func opened(_ fd: Int32, _ peer: Mgmt.Address, accepted: Bool, how: String) {
        let (ok, replaced) = link.state.withLock { s -> (Bool, Int32?) in
            guard !accepted || s.members.values.contains(peer), s.channels.count < BLELink.maxChannels || s.channels[peer] != nil else {
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
        let closed = link.state.withLock { s -> Bool in
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
        link.state.withLock { $0.status.connectFailures += 1 }
        // Logged at the first failure of a streak; the later ones are counted.
        if wait <= nanosPerSecond { logger.info("convoy BLE: no channel with \(peer): \(why); trying again later") }
    }
    func sighted(_ member: MemberID, _ found: Mgmt.DeviceFound) {
        let known = link.state.withLock { s -> Bool in
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

    /// Does what is due now; returns poll's timeout until the next deadline (ms, -1: none).
    func dueWork() -> Int32 {
        let now = clock.now()
        if now >= nextAdvertise { advertiseNow() }
        if now >= nextDiscovery { nextDiscovery = .max; discovering = false; startDiscovery() }
        if now >= listenerRetry { openListener() }
        for (peer, p) in pending where now - p.since > BLELink.connectTimeout {
            Glibc.close(p.fd); pending[peer] = nil
            connectFailed(peer, "no answer within \(BLELink.connectTimeout / nanosPerSecond) s")
            startDiscovery()
        }
        if let b = link.state.withLock({ $0.beacon }), b != advertised, powered { advertiseNow() }
        for (peer, fd) in link.state.withLock({ Array($0.channels) }) where now - (lastHeard[fd] ?? now) > BLELink.silenceTimeout {
            link.state.withLock { $0.status.silentChannels += 1 }
            closeChannel(peer, fd, "nothing came over it for \(BLELink.silenceTimeout / nanosPerSecond) s")
            connectFailed(peer, "the channel was silent")
            startDiscovery()
        }
        var deadline = min(nextAdvertise, nextDiscovery, listenerRetry)
        for t in lastHeard.values { deadline = min(deadline, t + BLELink.silenceTimeout + 1) }
        for p in pending.values { deadline = min(deadline, p.since + BLELink.connectTimeout) }
        return deadline == .max ? -1 : Int32(clamping: max(0, (deadline - clock.now()) / 1_000_000) + 1)
    }

    /// One poll and what it found.
    func step(wait: Int32) {
        // Poll: the control socket, the stop bell, the listener, connects under way, channels.
        let channels = link.state.withLock { Array($0.channels) }
        var fds = [pollfd(fd: sock.fd, events: Int16(POLLIN), revents: 0), pollfd(fd: link.stopFD, events: Int16(POLLIN), revents: 0),
                   pollfd(fd: listener, events: Int16(POLLIN), revents: 0)]
        let pendingList = Array(pending)
        fds += pendingList.map { pollfd(fd: $0.value.fd, events: Int16(POLLOUT), revents: 0) }
        fds += channels.map { pollfd(fd: $0.value, events: Int16(POLLIN), revents: 0) }
        let ready = retryingEINTR { poll(&fds, nfds_t(fds.count), wait) }
        if ready < 0 {
            // Not expected (EINVAL, ENOMEM): said once, and a pause instead of a spin.
            if link.state.withLock({ $0.status.problem == nil }) { logger.warning("convoy BLE: poll: \(String(cString: strerror(errno)))") }
            usleep(100_000)
            return
        }
        guard ready > 0 else { return }
        let at = clock.now()
        if fds[1].revents != 0 { var v: UInt64 = 0; _ = Glibc.read(link.stopFD, &v, 8) }
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
            while link.state.withLock({ $0.channels[peer] == fd }) {
                let n = buf.withUnsafeMutableBytes { p in retryingEINTR { recv(fd, p.baseAddress, p.count, Int32(MSG_DONTWAIT)) } }
                if n > 0 {
                    lastHeard[fd] = at
                    backoff[peer] = nil
                    link.state.withLock { $0.status.messagesReceived += 1; $0.status.bytesReceived += Int64(n) }
                    link.onMessage(Array(buf[0..<n]), at, peer)
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
        guard fds[0].revents != 0, let bytes = sock.read() else { return }
        let event: Mgmt.Event
        do { event = try Mgmt.decode(bytes) } catch {
            link.state.withLock { $0.status.malformedEvents += 1 }
            return
        }
        handle(event, at: at)
    }

    func handle(_ event: Mgmt.Event, at: Nanos) {
        switch event {
        case .commandComplete(let op, index, let st, let reply):
            switch Mgmt.Opcode(rawValue: op) {
            case .readInfo:
                guard st == 0, let info = try? Mgmt.ControllerInfo(reply: reply) else {
                    link.setProblem("no controller hci\(index) (\(Mgmt.statusName(st))); waiting for one")
                    return
                }
                myAddress = info.address
                link.state.withLock { $0.status.address = info.address.description; $0.status.privateAddress = info.isPrivate }
                guard info.supportsLE else { link.setProblem("hci\(index) has no Bluetooth LE"); return }
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
                if st == 0 { if !powered { controllerUp() } } else if !powered { link.setProblem("hci\(index) cannot be powered on (\(Mgmt.statusName(st)))") }
            case .startDiscovery:
                if st != 0 { discovering = false; nextDiscovery = clock.now() + 2 * nanosPerSecond }
            case .addAdvertising:
                if st != 0, extended {
                    // The controller said it could and then did not: legacy from now on.
                    logger.warning("convoy BLE: hci\(index) refused the extended advertisement (\(Mgmt.statusName(st))); advertising the legacy one")
                    extended = false
                    link.state.withLock { $0.status.extendedAdvertising = false }
                    advertiseNow()
                    return
                }
                link.setProblem(st == 0 ? nil : "hci\(index) refused the advertisement (\(Mgmt.statusName(st)))")
            case .readAdvertisingFeatures:
                guard st == 0, let f = try? Mgmt.AdvertisingFeatures(reply: reply) else { return }
                let ext = f.extended(room: BLEAdvertisement.Format.extended.length)
                maxDataLength = f.maxDataLength
                link.state.withLock { $0.status.extendedAdvertising = ext }
                if ext != extended { extended = ext; advertiseNow() }
            case .setPrivacy:
                if st == 0 { link.state.withLock { $0.status.privateAddress = true } } else {
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
                link.state.withLock { $0.status.extendedAdvertising = false }
                advertiseNow()
                return
            }
            if op == Mgmt.Opcode.startDiscovery.rawValue { discovering = false; nextDiscovery = clock.now() + 2 * nanosPerSecond }
            if op == Mgmt.Opcode.setPowered.rawValue, !powered { poweringOn = false; link.setProblem("hci\(index) cannot be powered on (\(Mgmt.statusName(st)))") }
            if op == Mgmt.Opcode.readInfo.rawValue { link.setProblem("no controller hci\(index) (\(Mgmt.statusName(st))); waiting for one") }
            if op == Mgmt.Opcode.addAdvertising.rawValue { link.setProblem("hci\(index) refused the advertisement (\(Mgmt.statusName(st)))") }
        case .indexAdded(index):
            sock.send(.readInfo(index))
        case .indexRemoved(index):
            controllerDown("controller hci\(index) went away; waiting for it")
        case .newSettings(index, let settings):
            link.state.withLock { $0.status.privateAddress = settings & (1 << 13) != 0 }
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
            guard !on else { return }
            discovering = false
            let allLinked = link.state.withLock { s in s.members.values.allSatisfy { s.channels[$0] != nil } && !s.members.isEmpty }
            if allLinked { nextDiscovery = clock.now() + BLELink.linkedScanPause } else { startDiscovery() }
        case .deviceFound(index, let found):
            if let member = link.heard(found, at: at) { sighted(member, found) }
        default: break
        }
    }
}
