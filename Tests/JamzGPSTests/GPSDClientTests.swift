import Foundation
import JamzCore
import JamzGPS
import JamzTestSupport
import Testing

/// Against a real gpsd 3.22 fed with the committed NMEA logs (see `GPSDRig`). One at a time:
/// each test owns a gpsd.
@Suite(.serialized)
struct GPSDClientTests {
    /// The whole highway route: every deliverable epoch arrives once, where the log put it,
    /// with its speed and mode; the tunnel is "no fix"; nothing impossible gets through.
    @Test func highwayRoute() async throws {
        let truth = try TruthRow.load("highway.truth.csv")
        let rig = try GPSDRig(log: "highway.nmea")
        defer { rig.stop() }
        let gps = client(port: rig.gpsdPort)
        let log = EventLog(gps)
        gps.start()
        try await eventually("connected to gpsd") { gps.status.connection == .connected }
        rig.go()
        try rig.waitSent()
        let last = try #require(truth.filter(\.deliverable).last)
        try await eventually("the last fix delivered") { gps.status.latestFix?.wall == last.wall }
        let mono = try #require(gps.status.latestFix?.mono)
        #expect(gps.status.currentFix(at: mono + Fix.staleAfter) != nil)
        #expect(gps.status.currentFix(at: mono + Fix.staleAfter + 1) == nil, "stale after 3 s")
        gps.stop()
        await log.finished()

        let fixes = log.fixes
        let want = truth.filter { $0.deliverable || $0.optional }
        expectSameEpochs(fixes, truth)
        let byWall = Dictionary(fixes.map { ($0.wall, $0) }, uniquingKeysWith: { a, _ in a })
        for w in want {
            guard let f = byWall[w.wall] else { continue }
            let err = Geo.distance(f.point, w.point)
            #expect(err < 0.05, "t=\(w.t): \(Geo.fixed(err, 3)) m off")
            if w.kind != "bad-checksum" {   // without the RMC gpsd derives speed from positions
                #expect(abs((f.speed ?? -1) - w.speed) < 0.01, "t=\(w.t): speed \(f.speed ?? -1) vs \(w.speed)")
            }
            #expect(f.mode.rawValue == w.mode, "t=\(w.t): mode \(f.mode)")
            #expect((f.altitude == nil) == (w.mode == 2))
        }
        // Mode changes: 3D, tunnel, 3D, 2D stretch, 3D.
        #expect(log.modes == [.threeD, .none, .threeD, .twoD, .threeD])
        let counters = gps.status.counters
        #expect(counters.noFixEpochs == truth.filter { $0.kind == "nofix" }.count)
        #expect(counters.fixes == fixes.count)
        // gpsd 3.22 itself drops latitude 95°, longitude 200° and "nan" (the fix arrives without a
        // position: notFinite); 950 kn and the two time glitches pass gpsd and are the client's
        // to refuse. After the epoch stamped 2 h ahead, gpsd takes the next GGA (back at the
        // right hour) for the next day: a second jump, refused too; that second's RMC is right.
        #expect(counters.rejected == ["notFinite": 3, "absurdSpeed": 1, "timeNotAdvancing": 1, "timeJump": 2])
        #expect(counters.connections == 1 && counters.droppedEvents == 0)
        // gpsd reports TOFF (NMEA time vs our clock) for every second up to the 2 h glitch at
        // t = 380 (then not until GPS time passes the glitch again: never in this log); no PPS
        // here (a replayed log has no pulse line).
        #expect(counters.toffReports >= 370)
        #expect(counters.ppsReports == 0)
        #expect(log.connections.first == .connecting && log.connections.dropFirst().first == .connected)
        #expect(log.connections.last == .disconnected(reason: "stopped"))
    }

    /// gpsd killed mid-drive and started again: the client says so, reconnects by itself, and
    /// the drive continues with no epoch lost or repeated.
    @Test func gpsdKilledAndRestarted() async throws {
        let truth = try TruthRow.load("highway.truth.csv")
        let rig = try GPSDRig(log: "highway.nmea")
        defer { rig.stop() }
        let gps = client(port: rig.gpsdPort)
        let log = EventLog(gps)
        gps.start()
        try await eventually("connected to gpsd") { gps.status.connection == .connected }
        rig.go()
        try rig.waitSent(300)
        let sent = try rig.pause()
        let lastSent = try #require(truth.prefix(sent).filter(\.deliverable).last)
        try await eventually("fixes up to the pause delivered") { (gps.status.latestFix?.wall ?? 0) >= lastSent.wall }

        try rig.killGPSD()
        try await eventually("the client noticed") { if case .disconnected = gps.status.connection { true } else { false } }
        try rig.startGPSD()
        try await eventually("reconnected", timeout: 30) { gps.status.connection == .connected }
        rig.go()
        try rig.waitSent()
        let last = try #require(truth.filter(\.deliverable).last)
        try await eventually("the last fix delivered") { gps.status.latestFix?.wall == last.wall }
        gps.stop()
        await log.finished()

        expectSameEpochs(log.fixes, truth)
        let c = log.connections
        let firstUp = try #require(c.firstIndex(of: .connected))
        let down = try #require(c[firstUp...].firstIndex { if case .disconnected = $0 { true } else { false } })
        #expect(c[down...].contains(.connected), "connected again after \(c[down])")
        // While gpsd was gone there was no fix; then 3D again.
        #expect(log.modes == [.threeD, .none, .threeD, .none, .threeD, .twoD, .threeD])
        #expect(gps.status.counters.connections == 2)
    }

    /// No gpsd at all: the client keeps trying and says why; stop() ends it.
    @Test func noGPSD() async throws {
        let port = try GPSDRigPorts.unused()
        let gps = client(port: port)
        let log = EventLog(gps)
        gps.start()
        try await eventually("two failed attempts") { gps.status.counters.connectFailures >= 2 }
        guard case .disconnected(let why) = gps.status.connection else {
            Issue.record("state is \(gps.status.connection)"); return
        }
        #expect(why.contains("cannot connect to gpsd at 127.0.0.1:\(port)"))
        gps.stop()
        await log.finished()
        #expect(log.fixes.isEmpty)
        #expect(gps.status.counters.connections == 0)
    }
}
