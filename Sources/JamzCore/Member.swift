/// A car of the convoy: a random 64-bit identity made on first boot and kept in the data dir.
/// Member ids break ties between terms, so they are totally ordered.
public struct MemberID: Hashable, Comparable, Sendable, Codable, CustomStringConvertible {
    public var raw: UInt64
    public init(_ raw: UInt64) { self.raw = raw }
    public static func < (a: MemberID, b: MemberID) -> Bool { a.raw < b.raw }
    public var description: String {
        let h = String(raw, radix: 16)
        return String(repeating: "0", count: max(0, 16 - h.count)) + h
    }
}

/// A term of control: the DJ `dj` took over with number `number`. A take-over proposes
/// `number + 1` with itself as DJ; every car accepts the highest `(number, dj)` it has seen, so
/// two cars pressing at once, or two halves of a split convoy, end with one DJ everywhere.
public struct Term: Hashable, Comparable, Sendable, Codable, CustomStringConvertible {
    public var number: UInt64
    public var dj: MemberID
    public init(number: UInt64, dj: MemberID) { self.number = number; self.dj = dj }
    public static func < (a: Term, b: Term) -> Bool {
        a.number != b.number ? a.number < b.number : a.dj < b.dj
    }
    /// The term a take-over by `member` proposes.
    public func next(for member: MemberID) -> Term { Term(number: number + 1, dj: member) }
    public var description: String { "\(number)/\(dj)" }
}
