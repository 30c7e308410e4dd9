import JamzCore
import Testing

struct FixValidatorTests {
    static let base: Nanos = 1_778_745_600 * nanosPerSecond   // 2026-05-14T08:00:00Z
    static let start = GeoPoint(latitude: 45.7578, longitude: 4.8320)

    func fix(_ t: Int64, _ p: GeoPoint = start, speed: Double? = 30, mono: Nanos? = nil) -> Fix {
        Fix(mono: mono ?? t * nanosPerSecond, wall: Self.base + t * nanosPerSecond, point: p, altitude: 170,
            mode: .threeD, speed: speed, track: 170, eph: 5, epv: 8)
    }

    @Test func aPlausibleDriveIsAccepted() {
        var v = FixValidator()
        for t in 0..<100 {
            let p = Geo.destination(from: Self.start, bearing: 170, distance: Double(t) * 30)
            #expect(v.check(fix(Int64(t), p)) == nil)
        }
    }

    @Test func impossibleValuesAreRejectedByReason() {
        var v = FixValidator()
        #expect(v.check(fix(0, GeoPoint(latitude: .nan, longitude: 4))) == .notFinite(field: "latitude"))
        #expect(v.check(fix(0, GeoPoint(latitude: 45, longitude: .infinity))) == .notFinite(field: "longitude"))
        #expect(v.check(fix(0, GeoPoint(latitude: 95.5, longitude: 4))) == .latitudeOutOfRange(95.5))
        #expect(v.check(fix(0, GeoPoint(latitude: 45, longitude: -200.5))) == .longitudeOutOfRange(-200.5))
        #expect(v.check(fix(0, speed: 488.7)) == .absurdSpeed(488.7))
        #expect(v.check(fix(0, speed: -1)) == .absurdSpeed(-1))
        #expect(v.check(fix(0, speed: .nan)) == .notFinite(field: "speed"))
        #expect(v.last == nil, "nothing rejected becomes the reference")
        #expect(FixRejection.latitudeOutOfRange(95.5).description == "latitude 95.5 is outside ±90°")
    }

    @Test func timeMustAdvanceAndNotJump() {
        var v = FixValidator()
        #expect(v.check(fix(10)) == nil)
        #expect(v.check(fix(10)) == .timeNotAdvancing(previous: Self.base + 10 * nanosPerSecond, got: Self.base + 10 * nanosPerSecond))
        #expect(v.check(fix(9, mono: 11 * nanosPerSecond))?.key == "timeNotAdvancing")
        // A GPS week-rollover style jump (1024 weeks) against 1 s of host time.
        var far = fix(11)
        far.wall += 1024 * 7 * 86_400 * nanosPerSecond
        #expect(v.check(far)?.key == "timeJump")
        // Replayed logs run faster than real time: 1 s of GPS time in 5 ms of host time is fine.
        #expect(v.check(fix(12, Geo.destination(from: Self.start, bearing: 0, distance: 60), mono: 10 * nanosPerSecond + 5_000_000)) == nil)
    }

    @Test func aTeleportIsRejected() {
        var v = FixValidator()
        #expect(v.check(fix(0)) == nil)
        let far = Geo.destination(from: Self.start, bearing: 90, distance: 3000)
        #expect(v.check(fix(1, far))?.key == "impossibleMove")
        // Three seconds later it is still 3 km from the last good fix in 3 s: still impossible…
        #expect(v.check(fix(3, far))?.key == "impossibleMove")
        // … but 3 km in 60 s is a car.
        #expect(v.check(fix(60, far)) == nil)
    }

    @Test func aWrongEarlierTimeIsOutvoted() {
        var v = FixValidator()
        var wrong = fix(0)
        wrong.wall += 20 * 365 * 86_400 * nanosPerSecond   // the first fix was 20 years ahead
        #expect(v.check(wrong) == nil)
        var rejected = 0
        for t in 1...10 {
            let p = Geo.destination(from: Self.start, bearing: 0, distance: Double(t) * 20)
            if v.check(fix(Int64(t), p)) != nil { rejected += 1 }
        }
        #expect(rejected == v.rebaseAfter)
        #expect(v.last?.wall == Self.base + 10 * nanosPerSecond)
    }

    @Test func staleness() {
        let f = fix(0, mono: 100 * nanosPerSecond)
        #expect(!f.isStale(at: 103 * nanosPerSecond))
        #expect(f.isStale(at: 103 * nanosPerSecond + 1))
        #expect(f.age(at: 105 * nanosPerSecond) == 5 * nanosPerSecond)
    }

    @Test func gpsTimeReportsBecomeWallClockSamples() {
        let pps = GPSTimeReport(kind: .pps, gpsTime: Self.base, hostTime: Self.base + 2_000,
                                receivedMono: 77 * nanosPerSecond, receivedWall: Self.base + 300_000_000)
        #expect(pps.hostClockError == 2_000)
        let s = pps.wallClockSample
        #expect(s.ppsDisciplined && s.mono == 77 * nanosPerSecond)
        #expect(s.wall == Self.base + 300_000_000 - 2_000)
        #expect(s.accuracy == 20_000 + (300_000_000 - 2_000) / 10_000)   // 100 ppm of the ~0.3 s since the pulse
        var mapping = WallMapping()
        mapping.add(s)
        #expect(mapping.latest == s)
        let toff = GPSTimeReport(kind: .toff, gpsTime: Self.base, hostTime: Self.base + 120_000_000,
                                 receivedMono: 78 * nanosPerSecond, receivedWall: Self.base + 1_120_000_000)
        #expect(!toff.wallClockSample.ppsDisciplined)
        mapping.add(toff.wallClockSample)
        #expect(mapping.latest == nil, "an NMEA-timed reading is no sync source")
    }
}
