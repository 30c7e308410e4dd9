import CBluetooth  // also where <sys/socket.h>'s SOCK_/MSG_ constants may come from (its headers include it)
import CLinuxNet
import Foundation
import Glibc
import JamzCore
import Logging
import Synchronization
import JamzPlatform

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
    let state: Mutex<State>
    let stopFD: Int32
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
        NamedThread.start("jamz-ble") { [self] in BLELoop.run(self) }
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

    func setProblem(_ p: String?) {
        let changed = state.withLock { s -> Bool in
            let c = s.status.problem != p
            s.status.problem = p
            s.status.up = p == nil
            return c
        }
        if changed, let p { logger.warning("convoy BLE (hci\(index)): \(p); the convoy uses its other links") }
    }

    /// A convoy car's advertisement: reported (and its member returned); anything else counted.
    func heard(_ found: Mgmt.DeviceFound, at: Nanos) -> MemberID? {
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
