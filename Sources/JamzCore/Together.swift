/// Who is "together" with us: a member joins when it has been within `radius` for `enterDwell`,
/// and leaves only when it has been beyond `radius × leaveFactor` for `leaveDwell`, or has not
/// been heard for `lostAfter`. Between the two radii nothing changes (hysteresis), so a car
/// driving along the edge does not flap. Pure: distances and times are passed in.
public struct TogetherTracker: Sendable {
    public struct Config: Sendable, Equatable {
        public var radius: Double = 2000
        public var leaveFactor: Double = 1.25
        public var enterDwell: Nanos = 10 * nanosPerSecond
        public var leaveDwell: Nanos = 10 * nanosPerSecond
        public var lostAfter: Nanos = 60 * nanosPerSecond
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
        public enum Reason: String, Sendable { case within, beyond, notHeard }
        public var member: MemberID
        public var kind: Kind
        public var reason: Reason
        public var at: Nanos
        /// The distance that decided it (the last one heard for `notHeard`).
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
    }

    public var config: Config
    private var members: [MemberID: State] = [:]

    public init(config: Config = Config()) { self.config = config }

    /// A new distance to `member` measured at `now` (our mono clock). Returns the event it caused.
    public mutating func update(_ member: MemberID, distance: Double, at now: Nanos) -> Event? {
        var s = members[member] ?? State(lastHeard: now, lastDistance: distance)
        defer { members[member] = s }
        s.lastHeard = now
        s.lastDistance = distance
        guard distance.isFinite else { return nil }
        if !s.together {
            guard distance <= config.radius else { s.crossingSince = nil; return nil }
            let since = s.crossingSince ?? now
            s.crossingSince = since
            guard now - since >= config.enterDwell else { return nil }
            s.together = true; s.crossingSince = nil
            return Event(member: member, kind: .joined, reason: .within, at: now, distance: distance)
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
