import JamzCore
import Testing

struct TogetherTests {
    let car = MemberID(2)
    func s(_ n: Double) -> Nanos { Nanos(n * 1e9) }

    @Test func joinsAfterTheDwellAndLeavesBeyondTheOuterRadius() {
        var t = TogetherTracker()
        #expect(t.update(car, distance: 1900, at: s(0)) == nil)
        #expect(t.update(car, distance: 1800, at: s(5)) == nil)
        let joined = t.update(car, distance: 1700, at: s(10))
        #expect(joined == .init(member: car, kind: .joined, reason: .within, at: s(10), distance: 1700))
        #expect(t.isTogether(car) && t.together == [car])
        // Between 2000 and 2500 m: still together, however long.
        for i in 11...200 { #expect(t.update(car, distance: 2400, at: s(Double(i))) == nil) }
        #expect(t.update(car, distance: 2600, at: s(201)) == nil)
        let left = t.update(car, distance: 2700, at: s(211))
        #expect(left?.kind == .left && left?.reason == .beyond)
        #expect(!t.isTogether(car))
    }

    @Test func aCarOnTheEdgeDoesNotFlap() {
        // 20 s well inside (1 500–2 000 m), then an hour wandering across the radius
        // (1 800–2 500 m, a new distance every second): one join, no leave.
        var t = TogetherTracker()
        var events: [TogetherTracker.Event] = []
        var rng = SplitMix64(seed: 7)
        var crossings = 0, wasInside = true
        for i in 0..<3620 {
            let d = i < 20 ? 1500 + Double(rng.next() % 500) : 1800 + Double(rng.next() % 700)
            if (d <= 2000) != wasInside { crossings += 1; wasInside = d <= 2000 }
            if let e = t.update(car, distance: d, at: s(Double(i))) { events.append(e) }
        }
        #expect(crossings > 1000, "the input does cross the radius all the time")
        #expect(events.map(\.kind) == [.joined])
        #expect(t.isTogether(car))
    }

    @Test func aBriefDipInsideIsNotAJoinAndABriefExcursionIsNotALeave() {
        var t = TogetherTracker()
        #expect(t.update(car, distance: 1500, at: s(0)) == nil)
        #expect(t.update(car, distance: 3000, at: s(9)) == nil)   // out again before the dwell
        #expect(t.update(car, distance: 1500, at: s(12)) == nil)  // the dwell restarts
        #expect(t.update(car, distance: 1500, at: s(21)) == nil)
        #expect(t.update(car, distance: 1500, at: s(22))?.kind == .joined)
        #expect(t.update(car, distance: 9000, at: s(30)) == nil)
        #expect(t.update(car, distance: 100, at: s(39)) == nil)   // back before the leave dwell
        #expect(t.update(car, distance: 9000, at: s(45)) == nil)
        #expect(t.update(car, distance: 9000, at: s(54)) == nil)
        #expect(t.update(car, distance: 9000, at: s(55))?.kind == .left)
    }

    @Test func aMemberNotHeardLeaves() {
        var t = TogetherTracker(config: .init(radius: 1000, enterDwell: 0, lostAfter: 30 * nanosPerSecond))
        #expect(t.update(car, distance: 10, at: s(0))?.kind == .joined)
        #expect(t.expire(at: s(30)).isEmpty)
        let gone = t.expire(at: s(31))
        #expect(gone.map(\.reason) == [.notHeard])
        #expect(t.expire(at: s(40)).isEmpty)
    }

    @Test func aCarHeardOverBluetoothJoinsWithoutGPS() {
        var t = TogetherTracker()
        #expect(t.sighted(car, rssi: -70, at: s(0)) == nil)
        #expect(t.sighted(car, rssi: nil, at: s(5)) == nil)   // no RSSI from the controller: heard near
        let joined = t.sighted(car, rssi: -80, at: s(10))
        #expect(joined == .init(member: car, kind: .joined, reason: .radio, at: s(10), distance: 400))
        // Sightings stop: the state holds (nothing says it left) until it is not heard for lostAfter.
        #expect(t.expire(at: s(70)).isEmpty)
        #expect(t.expire(at: s(71)).map(\.reason) == [.notHeard])
    }

    @Test func aWeakSightingIsNotEvidenceOfNearness() {
        var t = TogetherTracker()
        for i in 0...30 { #expect(t.sighted(car, rssi: -95, at: s(Double(i))) == nil) }
        #expect(!t.isTogether(car))
        // But it was heard: not lost.
        #expect(t.expire(at: s(31)).isEmpty)
    }

    @Test func whileHeardOverTheRadioABadFixCannotMakeACarLeave() {
        var t = TogetherTracker()
        for i in 0...10 { _ = t.update(car, distance: 500, at: s(Double(i))) }
        #expect(t.isTogether(car))
        // Its fix goes wild (9 km) for a minute, but the radio hears it every 5 s.
        for i in 11...70 {
            if i % 5 == 0 { #expect(t.sighted(car, rssi: -60, at: s(Double(i))) == nil) }
            #expect(t.update(car, distance: 9000, at: s(Double(i))) == nil)
        }
        #expect(t.isTogether(car))
        // The radio stops hearing it (last at 70): once that is 15 s old, GPS decides, after the leave dwell.
        var left: TogetherTracker.Event?
        for i in 71...100 { if let e = t.update(car, distance: 9000, at: s(Double(i))) { left = e; break } }
        #expect(left?.kind == .left && left?.reason == .beyond)
        #expect(left.map { $0.at >= s(85 + 10) } ?? false, "not before the sighting went stale plus the dwell")
    }

    @Test func aRadiusSmallerThanTheRadioRangeLeavesItToGPS() {
        var t = TogetherTracker(config: .init(radius: 100, enterDwell: 0))
        for i in 0...20 { #expect(t.sighted(car, rssi: -40, at: s(Double(i))) == nil) }
        #expect(!t.isTogether(car))
        #expect(t.update(car, distance: 50, at: s(21))?.reason == .within)
        // …and the radio does not make it leave either (inconclusive, not far).
        for i in 22...60 { #expect(t.sighted(car, rssi: -40, at: s(Double(i))) == nil) }
        #expect(t.isTogether(car))
    }
}
