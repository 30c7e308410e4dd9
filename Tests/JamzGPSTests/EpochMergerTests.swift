import CGPS
import JamzCore
@testable import JamzGPS
import Testing

struct EpochMergerTests {
    func report(second: Int64, mode: Int32 = 3, lat: Double = 45.0, speed: Double = .nan) -> jamz_gps_report {
        var r = jamz_gps_report()
        r.has_time = 1; r.time_sec = second; r.mode = mode
        r.latitude = lat; r.longitude = 4.8; r.alt_hae = 170; r.speed = speed
        r.track = .nan; r.eph = 5; r.epv = 8; r.climb = .nan
        return r
    }

    /// One second's sentences, a second ending with the next, and a sentence of a second that
    /// the idle flush already handed on (a slow serial line): merged, delivered once, the late
    /// one dropped and counted, never a second fix with the same time.
    @Test func aLateSentenceOfADeliveredSecondIsDroppedNotDeliveredTwice() throws {
        var m = EpochMerger()
        #expect(m.add(report(second: 100), mono: 1) == nil)
        #expect(m.add(report(second: 100, speed: 31), mono: 2) == nil)
        guard case .fix(let f)? = m.add(report(second: 101), mono: 3) else { Issue.record("second 100 not delivered"); return }
        #expect(f.wall == 100 * nanosPerSecond && f.speed == 31)
        guard case .fix(let g)? = m.flush() else { Issue.record("second 101 not flushed"); return }
        #expect(g.wall == 101 * nanosPerSecond)
        #expect(m.add(report(second: 101, speed: 30), mono: 4) == nil)   // late RMC of second 101
        #expect(m.flush() == nil)
        #expect(m.late == 1)
        #expect(m.add(report(second: 102), mono: 5) == nil)
        guard case .fix(let h)? = m.flush() else { Issue.record("second 102 not flushed"); return }
        #expect(h.wall == 102 * nanosPerSecond)
    }
}
