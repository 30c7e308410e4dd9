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
}
