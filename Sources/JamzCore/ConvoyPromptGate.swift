/// When the convoy's spoken prompts are said (issue 17), decided on what the convoy node heard,
/// with no timer of its own (the convoy loop wakes for its beacons once a second): a car heard
/// and then silent for `silentAfter` says "car N left"; every other car silent says "offline"
/// (once, instead of one "car left" each); a car heard again after that says "back online".
/// Cars are numbered in the order this car first heard them in the convoy, from 1 (`number`;
/// `jamz peers` shows the same number).
public struct ConvoyPromptGate: Sendable, Equatable {
    public var silentAfter: Nanos
    public private(set) var numbers: [MemberID: Int] = [:]
    /// The cars heard within `silentAfter` at the last update.
    public private(set) var present: Set<MemberID> = []
    public private(set) var offlineSaid = false

    public init(silentAfter: Nanos = 15 * nanosPerSecond) { self.silentAfter = silentAfter }

    /// The car's number (nil: never heard).
    public func number(of member: MemberID) -> Int? { numbers[member] }

    /// A new convoy (joined, made or left): numbers start again, nothing is said for the old one.
    public mutating func reset() { self = ConvoyPromptGate(silentAfter: silentAfter) }

    /// What to say at `now`, given when each other car was last heard.
    public mutating func update(now: Nanos, lastHeard: [MemberID: Nanos]) -> [Prompt] {
        for id in lastHeard.keys.sorted() where numbers[id] == nil {
            numbers[id] = numbers.count + 1
        }
        let heard = Set(lastHeard.filter { now - $0.value < silentAfter }.keys)
        let left = present.subtracting(heard), came = heard.subtracting(present)
        present = heard
        if !came.isEmpty, offlineSaid {
            offlineSaid = false
            return [.online]
        }
        guard !left.isEmpty else { return [] }
        if heard.isEmpty {
            offlineSaid = true
            return [.offline]
        }
        return left.compactMap { numbers[$0] }.sorted().map { .carLeft($0) }
    }
}
