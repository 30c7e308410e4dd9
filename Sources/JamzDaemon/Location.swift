import Foundation
import JamzCore
import JamzGPS
import JamzStore
import Logging
import Synchronization

/// Where this car is (gpsd, through `GPSDClient` on its own thread) and where the others are
/// (the positions in their beacons): the location history, "together" with hysteresis, and the
/// `jamz where` / `jamz convoy` reports. Positions are compared at the same GPS instant: a
/// peer's last fix is carried forward along its course at its speed to the time of ours (up to
/// 30 s), so a beacon a second old does not put a car 30 m off at motorway speed.
final class Location: Sendable {
    struct Settings: Sendable {
        /// nil: no GPS in this car (positions of the others are still shown, without distances).
        var gps: GPSDClient.Config?
        /// Test hook: the host's wall clock is taken as GPS-disciplined with this accuracy.
        var declaredWallAccuracy: Nanos?
        var history = HistoryPolicy()
        var together = TogetherTracker.Config()
    }

    /// What the last beacon of a peer said.
    struct Peer: Sendable {
        var name: String
        var fix: Fix?
        var heard: Nanos
    }

    struct State {
        var peers: [MemberID: Peer] = [:]
        var tracker: TogetherTracker
        var session: Int64 = 0
        /// GPS time of the last stored fix per member (beacons repeat a fix; it is stored once).
        var lastStored: [MemberID: Nanos] = [:]
        var lastCompact: Nanos?
        var lastTogetherCheck: Nanos?
        /// Recent together changes, newest last (for `jamz convoy`).
        var changes: [String] = []
        var wall = WallMapping()
        var lastMode: FixMode?
        /// The spoken GPS prompts ("no GPS", "GPS is back") and when they are due.
        var gpsGate = GPSPromptGate()
        var prompts: Prompts?
        var storeErrors: Int64 = 0
        var peerRejected: Int64 = 0
    }

    /// A peer's fix is compared with ours only when their GPS times are this close.
    static let comparable: Nanos = 30 * nanosPerSecond
    /// GPS times outside 2000…2200 are not believed (and cannot overflow the arithmetic).
    static let plausibleTime: ClosedRange<Nanos> = 946_684_800 * nanosPerSecond ... 7_258_118_400 * nanosPerSecond

    let settings: Settings
    let source: GPSDClient?
    /// Positions to store, written in arrival order by one task: the convoy never waits on SQLite.
    let toStore: AsyncStream<(MemberID, Fix)>.Continuation
    let storeQueue: AsyncStream<(MemberID, Fix)>
    let store: Store
    let clock: any HostClock
    let me: MemberID
    let logger: Logger
    let state: Mutex<State>

    init(settings: Settings, store: Store, clock: any HostClock, me: MemberID, logger: Logger) {
        self.settings = settings; self.store = store; self.clock = clock; self.me = me; self.logger = logger
        source = settings.gps.map { GPSDClient(config: $0, clock: clock, logger: logger) }
        state = Mutex(State(tracker: TogetherTracker(config: settings.together)))
        (storeQueue, toStore) = AsyncStream.makeStream(of: (MemberID, Fix).self, bufferingPolicy: .bufferingNewest(4096))
    }

    /// Starts the gpsd reader thread and the task that handles its events. Never throws: without
    /// gpsd the music plays on and the status says so.
    func start() {
        Task { [weak self, storeQueue] in
            for await (member, fix) in storeQueue {
                guard let self else { return }
                await self.store(fix, member: member)
            }
        }
        guard let source else {
            logger.info("GPS: off (gps.port = 0); positions of the other cars are still shown")
            return
        }
        logger.info("GPS: gpsd at \(source.config.host):\(source.config.port)")
        source.start()
        Task { [weak self] in
            for await e in source.events {
                guard let self else { return }
                await self.handle(e)
            }
        }
    }

    var now: Nanos { clock.now() }

    func setSession(_ s: Int64) { state.withLock { $0.session = s } }
    func attach(_ p: Prompts) { state.withLock { $0.prompts = p } }

    /// The spoken GPS prompts, decided on the GPS's own events (`GPSPromptGate`, no timer).
    private func speakGPS(fix: Fix?, lost: Bool) {
        let (prompts, say) = state.withLock { s -> (Prompts?, Prompt?) in
            (s.prompts, lost ? s.gpsGate.lost() : fix.flatMap { s.gpsGate.fix(at: $0.mono) })
        }
        if let say { prompts?.say(say) }
    }

    private func handle(_ e: GPSEvent) async {
        switch e {
        case .connection(let c):
            switch c {
            case .connected: logger.info("GPS: connected to gpsd")
            case .connecting: break
            case .disconnected(let why): logger.warning("GPS: gpsd not reachable (\(why)); playing on, retrying")
            }
        case .mode(let m, _):
            let changed = state.withLock { s -> Bool in defer { s.lastMode = m }; return s.lastMode != m }
            if changed { logger.info("GPS: \(m == .none ? "no fix" : "\(m) fix")") }
            if changed && m == .none { speakGPS(fix: nil, lost: true) }
        case .time(let r):
            // Only PPS disciplines the wall clock; a TOFF reading (±100 ms) would clear the mapping.
            guard r.kind == .pps else { return }
            let first = state.withLock { s -> Bool in
                let had = s.wall.latest != nil
                s.wall.add(r.wallClockSample)
                return !had && s.wall.latest != nil
            }
            if first { logger.info("GPS: the wall clock is PPS-disciplined (error \(r.hostClockError / 1000) µs)") }
        case .fix(let f):
            toStore.yield((me, f))
            speakGPS(fix: f, lost: false)
            checkTogether(now: clock.now())
        }
    }

    /// One fix into the history, in its own small transaction. A full disk or a broken database
    /// costs the point (counted, logged), never the music.
    private func store(_ f: Fix, member: MemberID) async {
        let session: Int64? = state.withLock { s in
            // Beacons repeat a fix: store it once. (Not "older than the last": one glitched
            // future time must not stop a member's history; the table ignores exact repeats.)
            if let last = s.lastStored[member], f.wall == last { return nil }
            s.lastStored[member] = f.wall
            return s.session
        }
        guard let session else { return }
        do {
            try await store.locations.append(session: session, [(member, f)])
        } catch {
            let n = state.withLock { s -> Int64 in s.storeErrors += 1; return s.storeErrors }
            if n == 1 || n % 100 == 0 { logger.error("GPS: cannot store a position (\(n) so far): \(error)") }
        }
    }

    // MARK: the other cars

    /// A beacon from `member`: its name and, if it has a fix, its position. Never waits: the
    /// position is stored by the location's own task.
    func heard(_ member: MemberID, name: String, position: WirePosition?, at now: Nanos) {
        var fix: Fix?
        if let p = position {
            let f = Self.fix(from: p, mono: now)
            if let why = FixValidator.checkValues(f) {
                state.withLock { $0.peerRejected += 1 }
                logger.debug("GPS: position from \(name) ignored: \(why)")
            } else if !Self.plausibleTime.contains(f.wall) {
                state.withLock { $0.peerRejected += 1 }
                logger.debug("GPS: position from \(name) ignored: GPS time \(f.wall) ns is not plausible")
            } else {
                fix = f
            }
        }
        let first = state.withLock { s -> Bool in
            let first = s.peers.isEmpty
            var p = s.peers[member] ?? Peer(name: name, fix: nil, heard: now)
            p.name = name; p.heard = now
            p.fix = fix   // a beacon without a position: theirs is no longer known
            s.peers[member] = p
            s.tracker.heard(member, at: now)
            return first
        }
        if first { wakeup.ring() }
        changed.fire()
        if let fix { toStore.yield((member, fix)) }
    }

    /// Forget the cars of a convoy this car left or changed.
    func forgetPeers() {
        state.withLock { s in
            for id in s.peers.keys { s.tracker.forget(id) }
            s.peers.removeAll()
            s.changes.removeAll()
        }
    }

    static func fix(from p: WirePosition, mono: Nanos) -> Fix {
        Fix(mono: mono, wall: p.time, point: GeoPoint(latitude: Double(p.latitude) / 1e7, longitude: Double(p.longitude) / 1e7),
            mode: .twoD, speed: Double(p.speed) / 100, track: Double(p.heading) / 100, eph: Double(p.accuracy))
    }

    /// Our fix for the beacon, when fresh.
    func wirePosition(at now: Nanos) -> WirePosition? {
        guard let f = source?.status.latestFix, !f.isStale(at: now) else { return nil }
        func clamp<T: FixedWidthInteger>(_ v: Double, _ lo: T, _ hi: T) -> T { T(max(Double(lo), min(Double(hi), v.rounded()))) }
        return WirePosition(latitude: clamp(f.point.latitude * 1e7, WirePosition.latitudeRange.lowerBound, WirePosition.latitudeRange.upperBound),
                            longitude: clamp(f.point.longitude * 1e7, WirePosition.longitudeRange.lowerBound, WirePosition.longitudeRange.upperBound),
                            accuracy: clamp(f.eph ?? 0, 0, UInt16.max), speed: clamp((f.speed ?? 0) * 100, 0, UInt16.max),
                            heading: clamp(((f.track ?? 0).truncatingRemainder(dividingBy: 360) + 360).truncatingRemainder(dividingBy: 360) * 100, 0, WirePosition.headingLimit - 1),
                            time: f.wall)
    }

    /// Our wall clock reading for the beacon, when it is PPS-disciplined (or declared so by the
    /// test hook: then a fresh reading of the host's wall clock each time).
    func wallSample() -> WallClockSample? {
        if let accuracy = settings.declaredWallAccuracy {
            let sample = Self.readWall(clock: clock, accuracy: accuracy)
            state.withLock { $0.wall.add(sample) }
            return sample
        }
        return state.withLock { $0.wall.latest }
    }

    /// UTC seconds from GPS time: the last fix's, carried forward on our clock (nil before any fix).
    func utcSeconds(at now: Nanos) -> Int64? {
        source?.status.latestFix.map { ($0.wall + (now - $0.mono)) / nanosPerSecond }
    }

    /// This car's wall − monotonic mapping (empty unless the wall clock is disciplined).
    var ownWall: WallMapping { state.withLock { $0.wall } }

    /// Our clock and the host's wall clock read together (the wall read between two reads of ours).
    static func readWall(clock: any HostClock, accuracy: Nanos) -> WallClockSample {
        let before = clock.now()
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        let after = clock.now()
        return WallClockSample(mono: before + (after - before) / 2, wall: Nanos(ts.tv_sec) * nanosPerSecond + Nanos(ts.tv_nsec),
                               accuracy: accuracy + (after - before) / 2, ppsDisciplined: true)
    }

    /// A peer's position carried along its course to GPS time `wall` (at most 30 s either way).
    static func projected(_ f: Fix, to wall: Nanos) -> GeoPoint {
        guard let v = f.speed, v > 0.5, let course = f.track else { return f.point }
        let dt = max(-30, min(30, (Double(wall) - Double(f.wall)) / 1e9))
        return Geo.destination(from: f.point, bearing: course, distance: v * dt)
    }

    /// Runs the together tracker on the freshest positions (every fix of ours, and each second).
    func checkTogether(now: Nanos) {
        let ours = source?.status.latestFix
        let events: [(TogetherTracker.Event, String)] = state.withLock { s in
            s.lastTogetherCheck = now
            var out: [(TogetherTracker.Event, String)] = []
            if let ours, !ours.isStale(at: now) {
                for (id, p) in s.peers {
                    guard let f = p.fix, now - p.heard < s.tracker.config.lostAfter,
                          abs(Double(ours.wall) - Double(f.wall)) <= Double(Self.comparable) else { continue }
                    let d = Geo.distance(ours.point, Self.projected(f, to: ours.wall))
                    if let e = s.tracker.update(id, distance: d, at: now) { out.append((e, p.name)) }
                }
            }
            for e in s.tracker.expire(at: now) { out.append((e, s.peers[e.member]?.name ?? "\(e.member)")) }
            Self.note(out, in: &s)
            return out
        }
        report(events)
    }

    /// A car heard over Bluetooth LE (its advertisement, or its beacon on a channel): near, at
    /// most the radio's range away (`TogetherTracker.sighted`), whether or not either car has a fix.
    func sighted(_ member: MemberID, name: String, rssi: Int8?, at now: Nanos) {
        let (events, first) = state.withLock { s -> ([(TogetherTracker.Event, String)], Bool) in
            let first = s.peers.isEmpty
            if s.peers[member] == nil { s.peers[member] = Peer(name: name, fix: nil, heard: now) }
            s.peers[member]?.heard = now
            let out = s.tracker.sighted(member, rssi: rssi, at: now).map { [($0, s.peers[member]?.name ?? name)] } ?? []
            Self.note(out, in: &s)
            return (out, first)
        }
        if first { wakeup.ring() }
        report(events)
    }

    private static func note(_ events: [(TogetherTracker.Event, String)], in s: inout State) {
        for (e, name) in events {
            let line = e.kind == .joined
                ? "\(name) is with the convoy (\(reasonText(e)))"
                : (e.reason == .notHeard ? "\(name) is not heard any more" : "\(name) left the convoy area (\(distanceText(e.distance)))")
            s.changes.append(line)
            if s.changes.count > 20 { s.changes.removeFirst() }
        }
    }

    private func report(_ events: [(TogetherTracker.Event, String)]) {
        for (e, name) in events {
            store.counters.add(e.kind == .joined ? "convoy.together_joined" : "convoy.together_left")
            logger.notice("\(e.kind == .joined ? "together" : "apart"): \(name), \(Self.reasonText(e))\(e.reason == .notHeard ? " (not heard)" : "")")
        }
    }

    static func reasonText(_ e: TogetherTracker.Event) -> String {
        e.reason == .radio ? "heard over Bluetooth LE, within \(distanceText(e.distance))" : distanceText(e.distance)
    }

    /// Each second while other cars are known or gpsd is read: the tracker (cars not heard any
    /// more); every 10 minutes (the first 10 minutes after start) the history's downsampling and
    /// retention, on a thread of its own. Returns when it is due next: a car alone without GPS
    /// sleeps until the next compaction (a peer's first beacon rings `wakeup`).
    func tick(now: Nanos) async -> Nanos {
        let (check, compact, next) = state.withLock { s -> (Bool, Bool, Nanos) in
            let c: Bool
            if let last = s.lastCompact { c = now - last >= Self.compactInterval } else { c = false; s.lastCompact = now }
            if c { s.lastCompact = now }
            let check = s.lastTogetherCheck.map { now - $0 >= nanosPerSecond } ?? true
            let watching = !s.peers.isEmpty || source != nil
            let nextCompact = s.lastCompact! + Self.compactInterval
            return (check, c, watching ? min(nextCompact, now + nanosPerSecond) : nextCompact)
        }
        if check { checkTogether(now: now) }
        guard compact else { return next }
        let (locations, policy) = (store.locations, settings.history)
        // Rows are stamped with GPS time: judge their age by GPS time too (a head unit without
        // an RTC may boot with its wall clock far off); the host clock only without a fix.
        let wallNow = source?.status.latestFix.map { $0.wall + (now - $0.mono) } ?? Nanos(Date().timeIntervalSince1970 * 1e9)
        do {
            let r = try await onThread("jamz-history") { try locations.compact(now: wallNow, policy: policy) }
            if r.expired + r.thinned > 0 { logger.info("location history: \(r.thinned) point(s) thinned, \(r.expired) expired") }
        } catch {
            logger.error("location history cannot be compacted: \(error)")
        }
        return next
    }

    static let compactInterval: Nanos = 600 * nanosPerSecond
    /// Rung when the first peer is heard: the tracker's loop runs each second from then on.
    let wakeup = Doorbell()
    /// Fired on each beacon of another car (the phone page's live view).
    let changed = ChangeSignal()
}
