import JamzCore

/// One simulated head unit: its clock, its DAC, and the real JamzCore pieces a `jamzd` runs —
/// session, playlist log, clock filters, render controller — fed only with what the car could
/// observe (its own clock readings, the DAC's delay, datagrams).
final class Car {
    let index: Int
    let id: MemberID
    let clock: SimClock
    let dac: SimDAC
    let policy: SyncPolicy
    let rate: Int

    var session: Session
    var log: PlaylistLog
    var filters: [ClockFilter]
    var exchangesSent: [Int]
    var medians: [MedianOffset]
    var lastRTT: [Nanos]
    var ownWall = WallMapping()
    var peerWall: [WallMapping]
    var wallBias: Nanos = 0
    var lead = LeadEstimator()
    var controller: RenderController
    var inserter: ProportionalInserter

    var output = OutputLog()
    var written: Int64 = 0
    var content: Int64?
    var renderedAnchor: TimelineAnchor?
    var seedRef: (frame: Double, local: Nanos)?
    var bytesSent = 0
    var agreedAt: Nanos?

    init(index: Int, id: MemberID, cars: Int, clock: SimClock, dac: SimDAC, policy: SyncPolicy, rate: Int, ops: [PlaylistOp]) {
        self.index = index; self.id = id; self.clock = clock; self.dac = dac; self.policy = policy; self.rate = rate
        session = Session(me: id)
        log = PlaylistLog(me: id, ops: ops)
        filters = Array(repeating: ClockFilter(), count: cars)
        exchangesSent = Array(repeating: 0, count: cars)
        medians = Array(repeating: MedianOffset(), count: cars)
        lastRTT = Array(repeating: 0, count: cars)
        peerWall = Array(repeating: WallMapping(), count: cars)
        controller = RenderController(settings: .init(rate: rate))
        inserter = ProportionalInserter(rate: rate)
    }

    /// Our estimate of `peer clock − our clock` at our time `t`, and its bound.
    func offset(to peer: Int, at t: Nanos) -> (offset: Double, bound: Nanos)? {
        if peer == index { return (0, 0) }
        switch policy {
        case .snapcast:
            return medians[peer].offset.map { (Double($0), 0) }
        case .jamz, .seed:
            let net = filters[peer].estimate.map { ($0.offset(at: t), $0.bound) }
            let gps = GPSTimeOffset.offset(local: ownWall, peer: peerWall[peer], at: t)
            return OffsetFusion.fuse(network: net, gps: gps).map { ($0.offset, $0.bound) }
        }
    }
}
