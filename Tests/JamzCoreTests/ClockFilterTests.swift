import Foundation
import JamzCore
import Testing

/// Exchanges between a local clock and a peer clock `peer(t) = t + offset + ppm·1e-6·t`, with
/// chosen one-way delays: the filter sees only the four timestamps, the test knows the truth.
struct Link {
    var offset: Double
    var ppm: Double
    func peer(_ t: Nanos) -> Nanos { t + Nanos((offset + ppm * 1e-6 * Double(t)).rounded()) }
    func truth(at t: Nanos) -> Double { offset + ppm * 1e-6 * Double(t) }
    /// An exchange started at our time `t1` with `up` to the peer, `down` back, 20 µs turnaround.
    func sample(at t1: Nanos, up: Nanos, down: Nanos) -> ClockSample {
        let t2 = peer(t1 + up), t3 = t2 + 20_000
        let t4 = t1 + up + 20_000 + down
        return ClockSample(t1: t1, t2: t2, t3: t3, t4: t4)
    }
}

@Suite struct ClockFilterTests {
    @Test func symmetricDelaysGiveOffsetAndFrequencyExactly() {
        let link = Link(offset: 3_600e9 - 123_456, ppm: 87)
        var f = ClockFilter()
        var t: Nanos = seconds(10)
        for _ in 0..<200 {
            f.add(link.sample(at: t, up: ms(2), down: ms(2)))
            t += ms(500)
        }
        let e = f.estimate!
        #expect(e.quality == .locked)
        #expect(abs(e.offset(at: t) - link.truth(at: t)) < 2_000)
        #expect(abs(e.ppm - 87) < 0.01)
        // Between exchanges and through a minute of loss, the frequency carries the estimate.
        #expect(abs(e.offset(at: t + seconds(60)) - link.truth(at: t + seconds(60))) < 5_000)
        #expect(e.bound == ms(2))
    }

    /// Queueing only ever adds delay, in one direction here: the plain median of the offsets is
    /// pulled by half the typical queueing, the lowest-delay filter is not.
    @Test func lowestDelaySamplesBeatTheMedianUnderOneSidedQueueing() {
        let link = Link(offset: -5e9, ppm: -40)
        var rng = SplitMix64(seed: 11)
        var f = ClockFilter()
        var offsets: [Nanos] = []
        var t: Nanos = seconds(1)
        for _ in 0..<1_500 {
            let queueing = Nanos(-20e6 * log(1 - rng.unit()))  // 20 ms mean, up only
            let s = link.sample(at: t, up: ms(5) + queueing, down: ms(5))
            f.add(s)
            offsets.append(s.offset - Nanos(link.truth(at: s.midpoint)))
            t += ms(100)
        }
        let err = abs(f.estimate!.offset(at: t) - link.truth(at: t))
        let medianErr = abs(Double(offsets.sorted()[offsets.count / 2]))
        #expect(err < 1_000_000, "filter error \(err) ns")
        #expect(medianErr > 5_000_000, "median error \(medianErr) ns")
        // The bound is honest: half the smallest round trip covers the error.
        #expect(err <= Double(f.estimate!.bound))
    }

    /// A constant asymmetry is invisible to any exchange: the estimate is off by half of it, and
    /// the bound says so.
    @Test func constantAsymmetryStaysInsideTheBound() {
        let link = Link(offset: 42e6, ppm: 0)
        var f = ClockFilter()
        for i in 0..<100 { f.add(link.sample(at: seconds(1) + Nanos(i) * ms(100), up: ms(5), down: ms(40))) }
        let e = f.estimate!
        let err = e.offset(at: seconds(11)) - link.truth(at: seconds(11))
        #expect(abs(abs(err) - 17.5e6) < 10_000)
        #expect(Double(e.bound) >= abs(err))
        #expect(e.bound == ms(45) / 2)
    }

    /// 20 ms + exp(10 ms) each way, independently: an exchange quick both ways is rare, a quick
    /// trip one way is not. Joining each slot's best outbound and best return (same exchanges,
    /// same seeds) beats round trips alone, and the hard bound still comes from real round trips.
    @Test func oneWayBestsBeatRoundTripsAloneOnAJitteryLink() {
        func run(seed: UInt64, oneWay: Bool) -> (error: Double, bound: Nanos, minRealRTT: Nanos) {
            let link = Link(offset: 2e9, ppm: 35)
            var rng = SplitMix64(seed: seed)
            var settings = ClockFilter.Settings()
            if !oneWay { settings.oneWayAbove = .max }
            var f = ClockFilter(settings: settings)
            var t: Nanos = seconds(1)
            var minRTT = Nanos.max
            for _ in 0..<1_200 {   // a minute at 50 ms
                let up = ms(20) + Nanos(-10e6 * log(1 - rng.unit()))
                let down = ms(20) + Nanos(-10e6 * log(1 - rng.unit()))
                let s = link.sample(at: t, up: up, down: down)
                minRTT = min(minRTT, s.delay)
                f.add(s)
                t += ms(50)
            }
            let e = f.estimate!
            return (abs(e.offset(at: t) - link.truth(at: t)), e.bound, minRTT)
        }
        var joined = 0.0, alone = 0.0
        for seed in UInt64(1)...4 {
            let a = run(seed: seed, oneWay: true), b = run(seed: seed, oneWay: false)
            joined += a.error; alone += b.error
            #expect(a.bound == a.minRealRTT / 2)
            #expect(a.error <= Double(a.bound))
        }
        print("one-way joined: mean error \(joined / 4) ns; round trips alone \(alone / 4) ns")
        #expect(joined < alone * 0.7, "mean error joined \(joined / 4) ns vs round trips alone \(alone / 4) ns")
    }

    /// A car out of reach for longer than the window (a tunnel, a parking garage) comes back
    /// with no one-way best from before the gap: they would pull the fit to the old line.
    @Test func oneWayBestsOlderThanTheWindowAreForgottenAcrossAGap() {
        let link = Link(offset: 1e9, ppm: 20)
        var rng = SplitMix64(seed: 3)
        var f = ClockFilter()
        var t: Nanos = seconds(1)
        func exchange() {
            let up = ms(20) + Nanos(-10e6 * log(1 - rng.unit())), down = ms(20) + Nanos(-10e6 * log(1 - rng.unit()))
            f.add(link.sample(at: t, up: up, down: down))
            t += ms(50)
        }
        for _ in 0..<1_200 { exchange() }       // a minute
        #expect(f.oneWaySlots >= 15)
        t += seconds(300)                        // longer than the 256 s window
        for _ in 0..<200 { exchange() }          // 10 s
        #expect(f.oneWaySlots <= 4)
    }

    /// On a quiet link the one-way bests are not used: the estimate is the round trips' own.
    @Test func aQuietLinkIsLeftToTheRoundTrips() {
        let link = Link(offset: -1e9, ppm: -20)
        var rng = SplitMix64(seed: 5)
        var on = ClockFilter(), off = ClockFilter(settings: { var s = ClockFilter.Settings(); s.oneWayAbove = .max; return s }())
        var t: Nanos = seconds(1)
        for _ in 0..<600 {
            let s = link.sample(at: t, up: 200_000 + Nanos(rng.unit() * 50_000), down: 200_000 + Nanos(rng.unit() * 50_000))
            on.add(s); off.add(s)
            t += ms(100)
        }
        #expect(on.estimate == off.estimate)
    }

    @Test func impossibleSamplesAreIgnored() {
        var f = ClockFilter()
        let bad = f.add(ClockSample(t1: 100, t2: 50, t3: 500, t4: 200))  // delay −300
        #expect(!bad)
        #expect(f.estimate == nil)
        let good = f.add(ClockSample(t1: 100, t2: 150, t3: 160, t4: 200))
        #expect(good)
        #expect(f.estimate?.quality == .coarse)
    }

    @Test func peerAndLocalTimeAreInverse() {
        let e = ClockEstimate(reference: seconds(100), offsetAtReference: 7.5e9, ppm: 55, bound: 0, spread: 0, quality: .locked, samples: 10)
        for t in [seconds(0), seconds(100), seconds(5_000)] {
            #expect(abs(e.localTime(atPeer: e.peerTime(at: t)) - t) <= 1)
        }
    }

    @Test func pacerBurstsThenSlowsDownOnQuietLinksOnly() {
        let p = ExchangePacer()
        #expect(p.interval(sent: 0, quality: .none, delaySpread: 0) == p.burstInterval)
        #expect(p.interval(sent: p.burstCount - 1, quality: .coarse, delaySpread: 0) == p.burstInterval)
        #expect(p.interval(sent: 100, quality: .locked, delaySpread: 10_000) == p.steadyInterval)
        #expect(p.interval(sent: 100, quality: .locked, delaySpread: ms(15)) == p.noisyInterval)
        #expect(p.interval(sent: 100, quality: .coarse, delaySpread: 0) <= ms(250))
    }

    @Test func anIdleConvoyPacesJitteryLinksAsQuietOnesAndNonDJPeersSlower() {
        let jittery = ms(15)
        let dj = ExchangePacer.forPeer(isDJ: true, playing: true)
        let idle = ExchangePacer.forPeer(isDJ: true, playing: false)
        let other = ExchangePacer.forPeer(isDJ: false, playing: true)
        #expect(dj.interval(sent: 100, quality: .locked, delaySpread: jittery) == ms(50))
        #expect(idle.interval(sent: 100, quality: .locked, delaySpread: jittery) == ms(1000))
        #expect(idle.interval(sent: 100, quality: .locked, delaySpread: 0) == ms(1000))
        #expect(other.interval(sent: 100, quality: .locked, delaySpread: jittery) == ms(500))
        #expect(other.interval(sent: 100, quality: .locked, delaySpread: 0) == ms(2000))
        // Idle, a jittery link to a non-DJ peer is paced no faster than a quiet one.
        let otherIdle = ExchangePacer.forPeer(isDJ: false, playing: false)
        #expect(otherIdle.interval(sent: 100, quality: .locked, delaySpread: jittery) == ms(4000))
        // The first exchanges are a burst whatever the state, so a new peer locks fast.
        #expect(idle.interval(sent: 0, quality: .none, delaySpread: jittery) == ms(50))
    }

    @Test func onlyTheDJsExchangesGoInPairsAndOnlyWhilePlayingOnAQuietLink() {
        let quiet: Nanos = 100_000, jittery = ms(15)
        #expect(ExchangePacer.forPeer(isDJ: true, playing: true).datagrams(delaySpread: quiet) == 2)
        #expect(ExchangePacer.forPeer(isDJ: true, playing: true).datagrams(delaySpread: jittery) == 1)
        #expect(ExchangePacer.forPeer(isDJ: true, playing: false).datagrams(delaySpread: quiet) == 1)
        #expect(ExchangePacer.forPeer(isDJ: false, playing: true).datagrams(delaySpread: quiet) == 1)
    }
}

@Suite struct WallClockTests {
    /// Two cars whose wall clocks are GPS-disciplined: the offset between their monotonic clocks
    /// follows from the two (wall − mono) mappings, whatever the network does.
    @Test func gpsTimeGivesTheOffsetWithinTheStatedAccuracy() {
        let truthOffset: Double = -1_234_567_890  // peer mono − our mono at true 0
        let ourPPM = 30.0, peerPPM = -60.0
        func ourMono(_ t: Nanos) -> Nanos { t + Nanos(ourPPM * 1e-6 * Double(t)) }
        func peerMono(_ t: Nanos) -> Nanos { t + Nanos(truthOffset) + Nanos(peerPPM * 1e-6 * Double(t)) }
        let epoch: Nanos = 1_800_000_000 * nanosPerSecond
        var ours = WallMapping(), theirs = WallMapping()
        for s in 0..<10 {
            let t = seconds(Int64(s))
            ours.add(WallClockSample(mono: ourMono(t), wall: epoch + t + 3_000, accuracy: 10_000, ppsDisciplined: true))
            theirs.add(WallClockSample(mono: peerMono(t), wall: epoch + t - 4_000, accuracy: 10_000, ppsDisciplined: true))
        }
        let t = seconds(12)
        let g = GPSTimeOffset.offset(local: ours, peer: theirs, at: ourMono(t))!
        let truth = Double(peerMono(t) - ourMono(t))
        #expect(abs(g.offset - truth) <= 7_100)  // the two wall errors (3 µs and −4 µs) plus rounding
        #expect(Double(g.bound) >= abs(g.offset - truth))
        #expect(g.bound < 40_000)  // 10 µs each side plus the extrapolation of the rates
    }

    @Test func anUndisciplinedClockIsNoSource() {
        var m = WallMapping()
        m.add(WallClockSample(mono: 1, wall: 2, accuracy: 10_000, ppsDisciplined: false))
        #expect(m.wallMinusMono(at: 1) == nil)
        m.add(WallClockSample(mono: 5, wall: 9, accuracy: 50_000_000, ppsDisciplined: true))
        #expect(m.wallMinusMono(at: 5) == nil)
    }

    @Test func fusionFollowsTheTighterBoundAndDistrustsGPSOutsideTheNetworkInterval() {
        let net = (offset: 1_000_000.0, bound: Nanos(20_000_000))
        let gps = (offset: -15_000_000.0, bound: Nanos(20_000))
        let f = OffsetFusion.fuse(network: net, gps: gps)!
        #expect(f.source == .gps)
        #expect(abs(f.offset - gps.offset) < 50)
        #expect(f.bound < 25_000)
        // A GPS value the network rules out (outside ±20 ms of it) is wrong: network only.
        let bad = OffsetFusion.fuse(network: net, gps: (offset: 30_000_000, bound: 20_000))!
        #expect(bad.source == .network && bad.offset == net.offset)
        #expect(OffsetFusion.fuse(network: nil, gps: nil) == nil)
    }

    /// Over the relay every exchange is mobile data: after the first burst, one a second with the
    /// DJ while playing, one every 10 s (30 s with the others) when both cars have GPS time,
    /// whatever the jitter.
    @Test func overTheRelayExchangesArePacedForMobileData() {
        let jitter: Nanos = 20_000_000
        let lan = ExchangePacer.forPeer(isDJ: true, playing: true)
        let relay = ExchangePacer.forPeer(isDJ: true, playing: true, slowLink: true)
        let relayGPS = ExchangePacer.forPeer(isDJ: true, playing: true, slowLink: true, gpsTime: true)
        #expect(lan.interval(sent: 100, quality: .locked, delaySpread: jitter) == 50_000_000)
        #expect(relay.interval(sent: 100, quality: .locked, delaySpread: jitter) == 1_000_000_000)
        #expect(relay.interval(sent: 100, quality: .coarse, delaySpread: jitter) == 1_000_000_000)
        #expect(relayGPS.interval(sent: 100, quality: .coarse, delaySpread: jitter) == 10_000_000_000)
        #expect(relayGPS.datagrams(delaySpread: 0) == 1)
        // The first burst still gives an estimate quickly.
        #expect(relayGPS.interval(sent: 3, quality: .none, delaySpread: 0) == relayGPS.burstInterval)
        #expect(ExchangePacer.forPeer(isDJ: false, playing: true, slowLink: true).interval(sent: 100, quality: .locked, delaySpread: jitter) == 10_000_000_000)
        #expect(ExchangePacer.forPeer(isDJ: false, playing: true, slowLink: true, gpsTime: true).interval(sent: 100, quality: .locked, delaySpread: jitter) == 30_000_000_000)
    }
}
