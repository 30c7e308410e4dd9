import JamzCore

/// The radio/network between cars, per direction. "Down" is from a lower-numbered car to a
/// higher one (car 0 is the first DJ, so DJ → followers), "up" the other way.
public struct LinkProfile: Sendable, Equatable {
    public var name: String
    public var up: DelayModel
    public var down: DelayModel
    public var loss: Double = 0
    public var duplicate: Double = 0
    /// Every car's link goes dark for `outageLength` every `outageEvery` (each car its own phase).
    public var outageEvery: Nanos? = nil
    public var outageLength: Nanos = 0

    public init(name: String, up: DelayModel, down: DelayModel, loss: Double = 0, duplicate: Double = 0,
                outageEvery: Nanos? = nil, outageLength: Nanos = 0) {
        self.name = name; self.up = up; self.down = down; self.loss = loss; self.duplicate = duplicate
        self.outageEvery = outageEvery; self.outageLength = outageLength
    }

    public static func symmetric(_ name: String, _ d: DelayModel, loss: Double = 0) -> LinkProfile {
        LinkProfile(name: name, up: d, down: d, loss: loss)
    }
}

/// A scheduled split of the convoy: from `start` to `end` (true time) cars only hear cars of
/// their own group.
public struct Partition: Sendable, Equatable {
    public var start: Nanos
    public var end: Nanos
    public var groups: [[Int]]
    public init(start: Nanos, end: Nanos, groups: [[Int]]) { self.start = start; self.end = end; self.groups = groups }

    func separates(_ a: Int, _ b: Int) -> Bool {
        let ga = groups.firstIndex { $0.contains(a) }, gb = groups.firstIndex { $0.contains(b) }
        return ga != gb
    }
}

/// Decides the fate of each datagram: dropped, or delivered (maybe twice) after a sampled delay.
struct Network {
    var profile: LinkProfile
    var partitions: [Partition]
    var outagePhase: [Nanos]
    var rng: SplitMix64
    var sent = 0, lost = 0, duplicated = 0

    init(profile: LinkProfile, partitions: [Partition], cars: Int, rng: SplitMix64) {
        self.profile = profile; self.partitions = partitions; self.rng = rng
        var r = rng
        outagePhase = (0..<cars).map { _ in
            guard let every = profile.outageEvery else { return 0 }
            return Nanos(r.unit() * Double(every))
        }
        self.rng = r
    }

    func dark(_ car: Int, at t: Nanos) -> Bool {
        guard let every = profile.outageEvery else { return false }
        let phase = (t + every - outagePhase[car]) % every
        return phase < profile.outageLength
    }

    func connected(_ a: Int, _ b: Int, at t: Nanos) -> Bool {
        !partitions.contains { t >= $0.start && t < $0.end && $0.separates(a, b) }
    }

    /// Delivery delays for one datagram from `a` to `b` sent at true time `t` (empty: lost).
    mutating func fate(from a: Int, to b: Int, at t: Nanos) -> [Nanos] {
        sent += 1
        guard connected(a, b, at: t), !dark(a, at: t), !dark(b, at: t) else { lost += 1; return [] }
        if profile.loss > 0, rng.unit() < profile.loss { lost += 1; return [] }
        let model = a < b ? profile.down : profile.up
        var out = [model.sample(&rng)]
        if profile.duplicate > 0, rng.unit() < profile.duplicate {
            duplicated += 1
            out.append(model.sample(&rng))
        }
        return out
    }
}

/// A min-heap of timed events; ties keep insertion order, so runs are deterministic.
struct EventQueue<Event> {
    private var heap: [(time: Nanos, seq: UInt64, event: Event)] = []
    private var seq: UInt64 = 0

    var isEmpty: Bool { heap.isEmpty }
    var nextTime: Nanos? { heap.first?.time }

    mutating func push(_ time: Nanos, _ e: Event) {
        seq += 1
        heap.append((time, seq, e))
        var i = heap.count - 1
        while i > 0 {
            let p = (i - 1) / 2
            if less(heap[i], heap[p]) { heap.swapAt(i, p); i = p } else { break }
        }
    }

    mutating func pop() -> (Nanos, Event)? {
        guard !heap.isEmpty else { return nil }
        heap.swapAt(0, heap.count - 1)
        let top = heap.removeLast()
        var i = 0
        while true {
            let l = 2 * i + 1, r = l + 1
            var m = i
            if l < heap.count, less(heap[l], heap[m]) { m = l }
            if r < heap.count, less(heap[r], heap[m]) { m = r }
            if m == i { break }
            heap.swapAt(i, m); i = m
        }
        return (top.time, top.event)
    }

    private func less(_ a: (time: Nanos, seq: UInt64, event: Event), _ b: (time: Nanos, seq: UInt64, event: Event)) -> Bool {
        a.time != b.time ? a.time < b.time : a.seq < b.seq
    }
}
