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
/// Not yet here: the LE L2CAP channel that will carry the sealed envelopes (the convoy's data
/// still goes over the LAN and the relay). The advertisement is not connectable until then.
public final class BLELink: @unchecked Sendable {
    // @unchecked: `state` is a Mutex; the thread owns the socket; `stopFD` is written once.

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

        /// One line for `jamz group show`.
        public var summary: String {
            var s = "\(controller)\(address.map { " \($0)" } ?? "") " + (up ? "advertising and scanning" : "down: \(problem ?? "starting")")
            s += ", \(advertisements) advertisements sent, \(sightings) convoy sightings"
            let d = dropped.values.reduce(0, +)
            if d > 0 { s += ", \(d) others' advertisements ignored" }
            return s
        }
    }

    public static let readvertiseSeconds: Int64 = 5
    static let instance: UInt8 = 1

    let index: UInt16
    let me: MemberID
    let key: BLEKey
    let clock: any HostClock
    let logger: Logger
    let onSighting: @Sendable (Sighting) -> Void
    /// UTC seconds, for the advertisement's 15-minute slot.
    let wallSeconds: @Sendable () -> Int64
    /// Test hook: a network namespace (`/proc/1/ns/net`) the link's thread joins before it opens
    /// its socket: Bluetooth sockets exist only in the initial namespace, and the tests run each
    /// car in its own.
    let netns: String?

    struct State {
        var beacon: BLEAdvertisement.Beacon?
        var stopped = false
        var status: Status
    }
    private let state: Mutex<State>
    private let stopFD: Int32
    private let started = Atomic<Bool>(false)

    public init(controller: UInt16, me: MemberID, key: BLEKey, clock: any HostClock, logger: Logger,
                netns: String? = ProcessInfo.processInfo.environment["JAMZ_TEST_BT_NETNS"],
                wallSeconds: @escaping @Sendable () -> Int64 = { Int64(time(nil)) },
                onSighting: @escaping @Sendable (Sighting) -> Void) {
        index = controller; self.me = me; self.key = key; self.clock = clock; self.logger = logger
        self.netns = netns; self.wallSeconds = wallSeconds; self.onSighting = onSighting
        state = Mutex(State(status: Status(controller: "hci\(controller)", up: false, advertisements: 0, sightings: 0,
                                           dropped: [:], malformedEvents: 0)))
        stopFD = eventfd(0, Int32(EFD_CLOEXEC))
    }

    deinit { if stopFD >= 0 { Glibc.close(stopFD) } }

    public var status: Status { state.withLock { $0.status } }

    /// What this car advertises from now on (re-advertised at once when it changed).
    public func advertise(_ b: BLEAdvertisement.Beacon) {
        let changed = state.withLock { s -> Bool in
            guard s.beacon != b else { return false }
            s.beacon = b
            return true
        }
        if changed { ring() }
    }

    public func start() {
        guard !started.exchange(true, ordering: .relaxed) else { return }
        let t = Thread { [self] in run() }
        t.name = "jamz-ble"
        t.start()
    }

    /// Stops advertising and scanning: the thread withdraws the advertisement and ends by itself
    /// (never waited for here: close is called on the convoy's actor).
    public func close() {
        state.withLock { $0.stopped = true }
        ring()
    }

    private func ring() {
        var one: UInt64 = 1
        _ = retryingEINTR { write(stopFD, &one, 8) }
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
            if fd < 0 || jamz_setns_net(fd) != 0 {
                setProblem("cannot join the network namespace \(netns): \(String(cString: strerror(errno)))")
            }
            if fd >= 0 { Glibc.close(fd) }
        }
        let sock: BLEControlSocket
        do { sock = try BLEControlSocket() } catch {
            setProblem(error.description)
            return
        }
        defer { sock.close() }
        var powered = false, discovering = false, poweringOn = false
        var nextAdvertise: Nanos = .max, nextDiscovery: Nanos = .max
        var advertised: BLEAdvertisement.Beacon?
        var g = SystemRandomNumberGenerator()
        sock.send(.readInfo(index))

        func startDiscovery() {
            guard powered, !discovering else { return }
            sock.send(.startDiscovery(index))
            discovering = true   // until DISCOVERING off, or the command fails
            nextDiscovery = .max
        }
        func advertiseNow() {
            guard powered, let b = state.withLock({ $0.beacon }) else { return }
            let slot = BLEAdvertisement.slot(unixSeconds: wallSeconds())
            let data = BLEAdvertisement.encode(b, key: key, slot: slot, nonce: .random(in: 0...UInt16.max, using: &g))
            // Not connectable until the L2CAP channel exists; the beacon carries its own Flags AD.
            if let c = try? Mgmt.Command.addAdvertising(index, instance: Self.instance, flags: [], data: data), sock.send(c) {
                state.withLock { $0.status.advertisements += 1 }
                advertised = b
            }
            nextAdvertise = clock.now() + Self.readvertiseSeconds * nanosPerSecond
        }
        func controllerUp() {
            powered = true
            setProblem(nil)
            startDiscovery()
            advertiseNow()
        }

        while !state.withLock({ $0.stopped }) {
            let now = clock.now()
            if now >= nextAdvertise { advertiseNow() }
            if now >= nextDiscovery { discovering = false; startDiscovery() }
            if let b = state.withLock({ $0.beacon }), b != advertised, powered { advertiseNow() }
            let deadline = min(nextAdvertise, nextDiscovery)
            let wait = deadline == .max ? -1 : Int32(clamping: max(0, (deadline - clock.now()) / 1_000_000) + 1)
            guard let bytes = sock.receive(timeoutMs: wait, alsoWatching: stopFD) else { continue }
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
                    state.withLock { $0.status.address = info.address.description }
                    guard info.supportsLE else { setProblem("hci\(index) has no Bluetooth LE"); continue }
                    if info.isPowered && info.isLE { controllerUp() } else if !poweringOn {
                        // Nobody powered it (no bluetoothd): jamzd does, with LE on.
                        poweringOn = true
                        if !info.isLE { sock.send(.setLE(index, true)) }
                        sock.send(.setPowered(index, true))
                    }
                case .setPowered:
                    poweringOn = false
                    if st == 0 { controllerUp() } else { setProblem("hci\(index) cannot be powered on (\(Mgmt.statusName(st)))") }
                case .startDiscovery:
                    if st != 0 { discovering = false; nextDiscovery = clock.now() + 2 * nanosPerSecond }
                case .addAdvertising:
                    if st != 0 { setProblem("hci\(index) refused the advertisement (\(Mgmt.statusName(st)))") }
                default: break
                }
            case .commandStatus(let op, index, let st):
                if op == Mgmt.Opcode.startDiscovery.rawValue { discovering = false; nextDiscovery = clock.now() + 2 * nanosPerSecond }
                if op == Mgmt.Opcode.setPowered.rawValue { poweringOn = false; setProblem("hci\(index) cannot be powered on (\(Mgmt.statusName(st)))") }
                if op == Mgmt.Opcode.readInfo.rawValue { setProblem("no controller hci\(index) (\(Mgmt.statusName(st))); waiting for one") }
                if op == Mgmt.Opcode.addAdvertising.rawValue { setProblem("hci\(index) refused the advertisement (\(Mgmt.statusName(st)))") }
            case .indexAdded(index):
                sock.send(.readInfo(index))
            case .indexRemoved(index):
                powered = false; discovering = false; advertised = nil
                nextAdvertise = .max; nextDiscovery = .max
                setProblem("controller hci\(index) went away; waiting for it")
            case .newSettings(index, let settings):
                if settings & 1 == 0, powered {
                    powered = false; discovering = false; advertised = nil
                    nextAdvertise = .max; nextDiscovery = .max
                    setProblem("hci\(index) was powered off")
                } else if settings & 1 != 0, !powered {
                    controllerUp()
                }
            case .discovering(index, let on):
                // The kernel ends each discovery session after about 10 s: start the next one.
                if !on { discovering = false; startDiscovery() }
            case .deviceFound(index, let found):
                heard(found)
            default: break
            }
        }
        if powered {
            sock.send(.removeAdvertising(index, instance: Self.instance))
            if discovering { sock.send(.stopDiscovery(index)) }
        }
    }

    private func heard(_ found: Mgmt.DeviceFound) {
        let slot = BLEAdvertisement.slot(unixSeconds: wallSeconds())
        switch BLEAdvertisement.decode(found.data, keys: [key], slot: slot) {
        case .failure(let drop):
            state.withLock { $0.status.dropped[drop.rawValue, default: 0] += 1 }
        case .success(let (b, _)):
            guard b.member != me else { return }
            state.withLock { $0.status.sightings += 1 }
            onSighting(Sighting(member: b.member, term: b.term, isDJ: b.isDJ, address: found.address, rssi: found.rssi, at: clock.now()))
        }
    }
}
