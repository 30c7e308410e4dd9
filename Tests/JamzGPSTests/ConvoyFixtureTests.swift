import Foundation
import JamzCore
import JamzGPS
import JamzTestSupport
import Testing

/// The three convoy logs (`convoy-car1…3.nmea`), each through its own real gpsd at once, seen
/// from car 1 with the core's proximity maths: car 2 stays 300 m behind and together; car 3
/// stops at a rest area, falls about 5 km behind and leaves the group once, without flapping.
@Suite(.serialized)
struct ConvoyFixtureTests {
    @Test func carThreeFallsBehindAndLeaves() async throws {
        var rigs: [GPSDRig] = []
        var clients: [GPSDClient] = []
        var logs: [EventLog] = []
        defer { rigs.forEach { $0.stop() } }
        for car in 1...3 {
            let rig = try GPSDRig(log: "convoy-car\(car).nmea")
            let gps = client(port: rig.gpsdPort)
            rigs.append(rig); clients.append(gps); logs.append(EventLog(gps))
            gps.start()
        }
        try await eventually("all connected") { clients.allSatisfy { $0.status.connection == .connected } }
        rigs.forEach { $0.go() }
        for rig in rigs { try rig.waitSent() }
        let truthLast = try TruthRow.load("convoy-car1.truth.csv").last!.wall
        try await eventually("every car's last fix") { clients.allSatisfy { $0.status.latestFix?.wall == truthLast } }
        clients.forEach { $0.stop() }
        for l in logs { await l.finished() }

        let byWall = logs.map { Dictionary(uniqueKeysWithValues: $0.fixes.map { ($0.wall, $0) }) }
        #expect(byWall.allSatisfy { $0.count == 720 }, "\(byWall.map(\.count)) fixes")
        var tracker = TogetherTracker()
        var events: [TogetherTracker.Event] = []
        var last: [Geo.Relation] = []
        for (wall, me) in byWall[0].sorted(by: { $0.key < $1.key }) {
            last = []
            for car in 1...2 {
                guard let other = byWall[car][wall] else { continue }
                let r = Geo.relation(of: other.point, from: me.point, heading: me.track)
                last.append(r)
                // Time for the tracker: GPS time (the same instant for every car here).
                if let e = tracker.update(MemberID(UInt64(car + 1)), distance: r.distance, at: wall) { events.append(e) }
            }
            if last.count == 2 {
                #expect(abs(last[0].distance - 300) < 5, "car 2 is 300 m behind along the road")
                #expect(last[0].position == .behind)
            }
        }
        let car2 = events.filter { $0.member == MemberID(2) }.map(\.kind)
        let car3 = events.filter { $0.member == MemberID(3) }.map(\.kind)
        #expect(car2 == [.joined])
        #expect(car3 == [.joined, .left])
        #expect(tracker.together == [MemberID(2)])
        let end = try #require(last.last)
        #expect(end.position == .behind)
        #expect(end.distance > 5000 && end.distance < 6500, "car 3 ends \(Int(end.distance)) m away")
    }
}
