/// When the convoy's spoken prompts are said (issue 17), decided on what the convoy node heard,
/// with no timer of its own (the convoy loop wakes for its beacons once a second): a car heard
/// and then silent for `silentAfter` says "car N left"; every other car silent says "offline"
/// (once, instead of one "car left" each); a car heard again after that says "back online".
/// Cars are numbered in the order this car first heard them in the convoy, from 1 (`number`;
/// `jamz peers` shows the same number). A flapping link is not a stream of prompts: a car whose
/// "left" was said is announced again only after it was back for `holdFor`, and "offline" is not
/// said within `holdFor` of "back online" (nor, then, the next "back online"): it is said once
/// `holdFor` has passed if every car is still silent then.
public struct ConvoyPromptGate: Sendable, Equatable {
    public var silentAfter: Nanos
    public var holdFor: Nanos
    public private(set) var numbers: [MemberID: Int] = [:]
    /// The cars heard within `silentAfter` at the last update, and since when each is.
    public private(set) var present: Set<MemberID> = []
    public private(set) var since: [MemberID: Nanos] = [:]
    /// Cars whose "left" was said (or folded into "offline").
    public private(set) var leftSaid: Set<MemberID> = []
    public private(set) var offlineSaid = false
    public private(set) var onlineSaidAt: Nanos?
    /// Every car fell silent within `holdFor` of "back online": "offline" waits.
    public private(set) var offlinePending = false

    public init(silentAfter: Nanos = 15 * nanosPerSecond, holdFor: Nanos = 30 * nanosPerSecond) {
        self.silentAfter = silentAfter; self.holdFor = holdFor
    }

    /// The car's number (nil: never heard).
    public func number(of member: MemberID) -> Int? { numbers[member] }

    /// A new convoy (joined, made or left): numbers start again, nothing is said for the old one.
    public mutating func reset() { self = ConvoyPromptGate(silentAfter: silentAfter, holdFor: holdFor) }

    /// What to say at `now`, given when each other car was last heard.
    public mutating func update(now: Nanos, lastHeard: [MemberID: Nanos]) -> [Prompt] {
        for id in lastHeard.keys.sorted() where numbers[id] == nil {
            numbers[id] = numbers.count + 1
        }
        let heard = Set(lastHeard.filter { now - $0.value < silentAfter }.keys)
        let left = present.subtracting(heard), came = heard.subtracting(present)
        present = heard
        for id in came { since[id] = now }
        if !heard.isEmpty { offlinePending = false }
        if !came.isEmpty, offlineSaid {
            offlineSaid = false
            onlineSaidAt = now
            return [.online]
        }
        if offlinePending, let t = onlineSaidAt, now - t >= holdFor {
            offlinePending = false
            offlineSaid = true
            return [.offline]
        }
        guard !left.isEmpty else { return [] }
        // A car back for less than `holdFor` after its "left" was said leaves quietly.
        let news = left.filter { !leftSaid.contains($0) || now - (since[$0] ?? now) >= holdFor }
        leftSaid.formUnion(left)
        if heard.isEmpty {
            if let t = onlineSaidAt, now - t < holdFor { offlinePending = true; return [] }
            offlineSaid = true
            return [.offline]
        }
        return news.compactMap { numbers[$0] }.sorted().map { .carLeft($0) }
    }
}
