/// Who is "together" with us: a member joins when it has been within `radius` for `enterDwell`,
/// and leaves only when it has been beyond `radius × leaveFactor` for `leaveDwell`, or has not
/// been heard for `lostAfter`. Between the two radii nothing changes (hysteresis), so a car
/// driving along the edge does not flap. Pure: distances and times are passed in.
///
/// Distances come from GPS (both cars' fixes) and from the radio: a car heard over Bluetooth LE
/// (`sighted`) at `radioMinRSSI` or stronger is at most `radioRange` away for `radioFresh`. The
/// radio only ever brings a car closer: while it is heard, GPS cannot make it leave (a peer's bad
/// fix, a tunnel), and without GPS it still joins. A radius smaller than the radio's range makes
/// the radio inconclusive, and only GPS decides.
public struct TogetherTracker: Sendable {
    public struct Config: Sendable, Equatable {
        public var radius: Double = 2000
        public var leaveFactor: Double = 1.25
        public var enterDwell: Nanos = 10 * nanosPerSecond
        public var leaveDwell: Nanos = 10 * nanosPerSecond
        public var lostAfter: Nanos = 60 * nanosPerSecond
        /// A Bluetooth LE sighting this strong (dBm) or stronger places the car within
        /// `radioRange`; a controller that reports no RSSI counts as heard near.
        public var radioMinRSSI: Int = -90
        /// How far a car heard over Bluetooth LE can be, at most (metres).
        public var radioRange: Double = 400
        /// How long a sighting stands.
        public var radioFresh: Nanos = 15 * nanosPerSecond
        public init() {}
        public init(radius: Double, leaveFactor: Double = 1.25, enterDwell: Nanos = 10 * nanosPerSecond,
                    leaveDwell: Nanos = 10 * nanosPerSecond, lostAfter: Nanos = 60 * nanosPerSecond) {
            self.radius = radius; self.leaveFactor = leaveFactor; self.enterDwell = enterDwell
            self.leaveDwell = leaveDwell; self.lostAfter = lostAfter
        }
        public var leaveRadius: Double { radius * leaveFactor }
    }

    public struct Event: Sendable, Equatable {
        public enum Kind: String, Sendable { case joined, left }
        public enum Reason: String, Sendable { case within, beyond, notHeard, radio }
        public var member: MemberID
        public var kind: Kind
        public var reason: Reason
        public var at: Nanos
        /// The distance that decided it (the last one heard for `notHeard`; `radioRange` for `radio`).
        public var distance: Double
        public init(member: MemberID, kind: Kind, reason: Reason, at: Nanos, distance: Double) {
            self.member = member; self.kind = kind; self.reason = reason; self.at = at; self.distance = distance
        }
    }

    struct State: Sendable {
        var together = false
        /// Since when the member has been on the other side of the relevant radius.
        var crossingSince: Nanos?
        var lastHeard: Nanos
        var lastDistance: Double
        /// When GPS gave `lastDistance`, and when the radio last heard the car near.
        var gpsAt: Nanos?
        var radioAt: Nanos?
    }

    public var config: Config
    private var members: [MemberID: State] = [:]

    public init(config: Config = Config()) { self.config = config }

    /// A new distance to `member` measured at `now` (our mono clock). Returns the event it caused.
    public mutating func update(_ member: MemberID, distance: Double, at now: Nanos) -> Event? {
        var s = members[member] ?? State(lastHeard: now, lastDistance: distance)
        s.lastHeard = now
        s.lastDistance = distance
        s.gpsAt = distance.isFinite ? now : nil
        members[member] = s
        return evaluate(member, at: now)
    }

    /// `member` was heard over Bluetooth LE at `now` (its advertisement, or an envelope on a
    /// channel with it), `rssi` dBm if the controller measured it. Returns the event it caused.
    public mutating func sighted(_ member: MemberID, rssi: Int8?, at now: Nanos) -> Event? {
        var s = members[member] ?? State(lastHeard: now, lastDistance: .infinity)
        s.lastHeard = now
        if rssi.map({ Int($0) >= config.radioMinRSSI }) ?? true { s.radioAt = now }
        members[member] = s
        return evaluate(member, at: now)
    }

    /// The distance that counts now: GPS's while fresh, capped by the radio's range while the
    /// car is heard near; nil when neither knows (the state holds).
    func effectiveDistance(_ s: State, at now: Nanos) -> (distance: Double, radio: Bool)? {
        let gps = s.gpsAt.flatMap { now - $0 <= config.radioFresh ? s.lastDistance : nil }
        let radio = s.radioAt.map { now - $0 <= config.radioFresh } ?? false
        if radio, config.radioRange <= config.radius, config.radioRange < (gps ?? .infinity) {
            return (config.radioRange, true)
        }
        return gps.map { ($0, false) }
    }

    private mutating func evaluate(_ member: MemberID, at now: Nanos) -> Event? {
        guard var s = members[member] else { return nil }
        defer { members[member] = s }
        guard let (distance, radio) = effectiveDistance(s, at: now) else { return nil }
        if !s.together {
            guard distance <= config.radius else { s.crossingSince = nil; return nil }
            let since = s.crossingSince ?? now
            s.crossingSince = since
            guard now - since >= config.enterDwell else { return nil }
            s.together = true; s.crossingSince = nil
            return Event(member: member, kind: .joined, reason: radio ? .radio : .within, at: now, distance: distance)
        } else {
            guard distance > config.leaveRadius else { s.crossingSince = nil; return nil }
            let since = s.crossingSince ?? now
            s.crossingSince = since
            guard now - since >= config.leaveDwell else { return nil }
            s.together = false; s.crossingSince = nil
            return Event(member: member, kind: .left, reason: .beyond, at: now, distance: distance)
        }
    }

    /// `member` was heard (a beacon) at `now`, with or without a distance we can compute: while
    /// its distance is unknown (either car without a fix), its together state holds.
    public mutating func heard(_ member: MemberID, at now: Nanos) {
        members[member]?.lastHeard = now
    }

    /// Members together with us that have not been heard for `lostAfter` leave. Call it now and then.
    public mutating func expire(at now: Nanos) -> [Event] {
        var events: [Event] = []
        for (m, s) in members where s.together && now - s.lastHeard > config.lostAfter {
            members[m]?.together = false
            members[m]?.crossingSince = nil
            events.append(Event(member: m, kind: .left, reason: .notHeard, at: now, distance: s.lastDistance))
        }
        return events.sorted { $0.member < $1.member }
    }

    public func isTogether(_ member: MemberID) -> Bool { members[member]?.together ?? false }
    public var together: [MemberID] { members.filter { $0.value.together }.map(\.key).sorted() }
    public mutating func forget(_ member: MemberID) { members[member] = nil }
}
