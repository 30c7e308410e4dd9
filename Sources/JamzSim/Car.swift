import JamzCore

/// One simulated head unit: its clock, its DAC, and the real JamzCore pieces a `jamzd` runs —
/// the convoy node (session, playlist log, clock filters, exchange pacing: the same
/// `ConvoyNode` the daemon carries out), the renderer's block decisions (`BlockPlanner`, as the
/// daemon's renderer thread asks them) — fed only with what the car could observe (its own clock
/// readings, the DAC's delay, datagrams).
final class Car {
    let index: Int
    let id: MemberID
    let clock: SimClock
    let dac: SimDAC
    let policy: SyncPolicy
    let rate: Int

    /// The convoy's decisions, as in the daemon.
    var node: ConvoyNode
    var session: Session { node.session }
    var log: PlaylistLog { node.log }
    /// When this car's node tick is queued (true time; nil: none).
    var nodeDue: Nanos?
    /// The reference algorithms' own views of the same exchanges.
    var medians: [MedianOffset]
    var lastRTT: [Nanos]
    var ownWall = WallMapping()
    var wallBias: Nanos = 0
    var lead = LeadEstimator()
    /// The block decisions of a jamz car (the daemon's `BlockPlanner`).
    var planner: BlockPlanner
    /// The references' (seed DJ) render controller.
    var controller: RenderController
    var inserter: ProportionalInserter

    var output = OutputLog()
    var written: Int64 = 0
    /// The next frame the decoder holds (global: frames from the playlist's start); nil before
    /// anything was asked of it. The simulated decoder is always ready.
    var content: Int64?
    /// The last block ended in music (a jamz car fades out before silence).
    var audible = false
    var renderedAnchor: TimelineAnchor?
    var seedRef: (frame: Double, local: Nanos)?
    var bytesSent = 0
    var agreedAt: Nanos?

    /// Everyone starts in term 0 of `dj` with the playlist `ops` (the convoy formed earlier).
    init(index: Int, id: MemberID, cars: Int, clock: SimClock, dac: SimDAC, policy: SyncPolicy, rate: Int, ops: [PlaylistOp], dj: MemberID) {
        self.index = index; self.id = id; self.clock = clock; self.dac = dac; self.policy = policy; self.rate = rate
        node = ConvoyNode(me: id, carName: "car \(index)", sampleRate: rate, ops: ops, timeline: ConvoyTimeline(term: Term(number: 0, dj: dj)))
        node.rejoined()
        if policy != .jamz {
            // The references' own cadence: 16 exchanges 50 ms apart, then one a second.
            var p = ExchangePacer()
            p.steadyInterval = nanosPerSecond; p.noisyInterval = nanosPerSecond; p.coarseInterval = nanosPerSecond
            node.fixedPacer = p
        }
        medians = Array(repeating: MedianOffset(), count: cars)
        lastRTT = Array(repeating: 0, count: cars)
        controller = RenderController(settings: .init(rate: rate))
        planner = BlockPlanner(settings: .init(rate: rate, corrector: .init(rate: rate)))
        inserter = ProportionalInserter(rate: rate)
    }

    /// Our estimate of `peer clock − our clock` at our time `t`, and its bound.
    func offset(to peer: Int, id peerID: MemberID, at t: Nanos) -> (offset: Double, bound: Nanos)? {
        if peer == index { return (0, 0) }
        switch policy {
        case .snapcast:
            return medians[peer].offset.map { (Double($0), 0) }
        case .jamz, .seed:
            return node.estimate(of: peerID, at: t).map { ($0.offset(at: t), $0.bound) }
        }
    }
}
