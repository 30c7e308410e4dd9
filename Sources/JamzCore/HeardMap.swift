/// What the output will emit, block by block: "from monotonic time `start`, frames
/// `firstFrame ..< firstFrame + count` of entry `entryID` leave the DAC at `rate`", or silence.
public struct HeardSegment: Sendable, Equatable {
    public var start: Nanos
    public var count: Int
    public var entryID: Int64?
    public var trackID: TrackID?
    public var firstFrame: Int64
    public init(start: Nanos, count: Int, entryID: Int64?, trackID: TrackID?, firstFrame: Int64) {
        self.start = start; self.count = count; self.entryID = entryID; self.trackID = trackID; self.firstFrame = firstFrame
    }
}

/// The answer to "which track frame is heard at time t", kept from the renderer's own record of
/// what it wrote and when that will be heard, never from what was decoded.
public struct HeardMap: Sendable {
    public struct Heard: Sendable, Equatable {
        public var entryID: Int64
        public var trackID: TrackID
        public var frame: Int64
    }

    private var segments: [HeardSegment] = []
    private let capacity: Int
    public let rate: Int

    public init(rate: Int, capacity: Int = 2048) {
        self.rate = rate
        self.capacity = capacity
    }

    public mutating func record(_ s: HeardSegment) {
        // A newer segment that starts before older ones supersedes them (output restarted).
        while let last = segments.last, last.start >= s.start { segments.removeLast() }
        segments.append(s)
        if segments.count > capacity { segments.removeFirst(segments.count - max(1, capacity / 2)) }
    }

    public mutating func reset() { segments.removeAll(keepingCapacity: true) }

    /// The frame heard at `t`, or nil when silence (or nothing known) is heard then.
    public func heard(at t: Nanos) -> Heard? {
        // Segments are ordered by start; find the last one starting at or before t.
        var lo = 0, hi = segments.count
        while lo < hi {
            let mid = (lo + hi) / 2
            if segments[mid].start <= t { lo = mid + 1 } else { hi = mid }
        }
        guard lo > 0 else { return nil }
        let s = segments[lo - 1]
        let offset = FrameMath.frames(in: t - s.start, rate: rate)
        guard offset < Int64(s.count), let e = s.entryID, let tr = s.trackID else { return nil }
        return Heard(entryID: e, trackID: tr, frame: s.firstFrame + offset)
    }

    /// Start time of the last recorded segment's end: when the next written frame is heard.
    public var end: Nanos? {
        segments.last.map { $0.start + FrameMath.duration(ofFrames: Int64($0.count), rate: rate) }
    }
}
