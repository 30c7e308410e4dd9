import Foundation
import JamzCore
import JamzGPS
import JamzStore
import Logging
import Synchronization

extension Location {
    // MARK: reports

    var counters: [String: Int64] {
        var c: [String: Int64] = [:]
        let s = state.withLock { ($0.storeErrors, $0.peerRejected) }
        c["gps.store_errors"] = s.0
        c["gps.peer_positions_rejected"] = s.1
        guard let st = source?.status else { return c }
        c["gps.fixes"] = Int64(st.counters.fixes)
        c["gps.no_fix_epochs"] = Int64(st.counters.noFixEpochs)
        c["gps.untimed"] = Int64(st.counters.untimed)
        c["gps.late_reports"] = Int64(st.counters.lateReports)
        c["gps.toff_reports"] = Int64(st.counters.toffReports)
        c["gps.pps_reports"] = Int64(st.counters.ppsReports)
        c["gps.connections"] = Int64(st.counters.connections)
        c["gps.connect_failures"] = Int64(st.counters.connectFailures)
        c["gps.dropped_events"] = Int64(st.counters.droppedEvents)
        for (k, v) in st.counters.rejected { c["gps.rejected.\(k)"] = Int64(v) }
        return c
    }

    func whereReport(now: Nanos) -> WhereReport {
        guard let source else {
            return WhereReport(gpsd: "off", mode: "no GPS", stale: true, clock: "no GPS time", fixes: 0, rejected: 0)
        }
        let st = source.status
        var r = WhereReport(gpsd: "\(st.connection)", mode: "\(st.mode)", stale: true, clock: "no GPS time",
                            fixes: st.counters.fixes, rejected: st.counters.rejectedTotal)
        if let f = st.latestFix {
            r.latitude = f.point.latitude; r.longitude = f.point.longitude; r.altitude = f.altitude
            r.speedKmh = f.speed.map { $0 * 3.6 }; r.heading = f.track; r.accuracyM = f.eph
            r.ageSeconds = Double(f.age(at: now)) / 1e9; r.stale = f.isStale(at: now)
            r.time = Self.iso(f.wall)
            r.fixMode = "\(f.mode)"
        }
        if let t = st.latestTime {
            let disciplined = state.withLock { $0.wall.latest != nil }
            r.clock = t.kind == .pps && disciplined
                ? "PPS-disciplined: wall clock \(String(format: "%+.1f", Double(t.hostClockError) / 1000)) µs from GPS time (±\(t.accuracy / 1000) µs)"
                : "GPS time from NMEA only (TOFF, ±\(t.accuracy / 1_000_000) ms): not a sync source"
            r.clockErrorMicros = Double(t.hostClockError) / 1000
            r.ppsDisciplined = t.kind == .pps && disciplined
        }
        return r
    }

    func summary(now: Nanos) -> GPSSummary? {
        guard source != nil else { return nil }
        let w = whereReport(now: now)
        return GPSSummary(gpsd: w.gpsd, mode: w.mode, stale: w.stale, clock: w.clock, ppsDisciplined: w.ppsDisciplined ?? false)
    }

    func convoyReport(now: Nanos) -> ConvoyReport {
        let ours = source?.status.latestFix
        let fresh = ours.flatMap { $0.isStale(at: now) ? nil : $0 }
        return state.withLock { s in
            let members = s.peers.sorted { $0.value.name < $1.value.name }.map { id, p -> ConvoyMemberReport in
                var m = ConvoyMemberReport(member: "\(id)", name: p.name, position: "unknown",
                                           lastHeardSeconds: Double(now - p.heard) / 1e9, together: s.tracker.isTogether(id))
                if let f = p.fix {
                    m.speedKmh = (f.speed ?? 0) * 3.6
                    m.fixAgeSeconds = Double(now - f.mono) / 1e9
                    m.latitude = f.point.latitude; m.longitude = f.point.longitude
                    if let ours = fresh, abs(Double(ours.wall) - Double(f.wall)) <= Double(Self.comparable) {
                        let rel = Geo.relation(of: Self.projected(f, to: ours.wall), from: ours.point,
                                               heading: (ours.speed ?? 0) > 0.5 ? ours.track : nil)
                        m.distanceM = rel.distance; m.bearing = rel.bearing; m.position = rel.position.rawValue
                    }
                }
                return m
            }
            return ConvoyReport(haveFix: fresh != nil, radiusM: s.tracker.config.radius, members: members, changes: s.changes)
        }
    }

    static func distanceText(_ m: Double) -> String {
        m < 1000 ? "\(Int(m.rounded())) m" : String(format: "%.1f km", m / 1000)
    }

    static func iso(_ wall: Nanos) -> String {
        let f = ISO8601DateFormatter()
        f.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return f.string(from: Date(timeIntervalSince1970: Double(wall) / 1e9))
    }

    static func compass(_ degrees: Double) -> String {
        let names = ["N", "NE", "E", "SE", "S", "SW", "W", "NW"]
        return names[Int(((degrees.truncatingRemainder(dividingBy: 360) + 360 + 22.5) / 45).rounded(.down)) % 8]
    }
}
