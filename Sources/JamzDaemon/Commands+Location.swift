import Foundation
import JamzCore

/// `jamz where` and `jamz convoy`.
extension Commands {
    func runLocation(_ cmd: ControlCommand, _ location: Location) -> ControlReplyValue? {
        let now = location.now
        switch cmd {
        case .where:
            let r = location.whereReport(now: now)
            var lines = ["gpsd: \(r.gpsd), \(r.mode)"]
            if let lat = r.latitude, let lon = r.longitude {
                var fix = "\(r.fixMode ?? "") fix \(Geo.fixed(lat, 6)), \(Geo.fixed(lon, 6))"
                if let a = r.altitude { fix += String(format: ", %.0f m high", a) }
                if let e = r.accuracyM { fix += String(format: ", ±%.0f m", e) }
                lines.append(fix)
                var move = String(format: "%.0f km/h", r.speedKmh ?? 0)
                if let h = r.heading, (r.speedKmh ?? 0) > 2 { move += String(format: " heading %.0f° (%@)", h, Location.compass(h)) }
                lines.append(move)
                lines.append("at \(r.time ?? "?"), \(String(format: "%.1f", r.ageSeconds ?? 0)) s ago\(r.stale ? " (stale)" : "")")
            } else {
                lines.append("no fix yet")
            }
            lines.append("clock: \(r.clock)")
            lines.append("fixes \(r.fixes), rejected \(r.rejected)")
            return Commands.success(lines.joined(separator: "\n"), r)
        case .convoy:
            let r = location.convoyReport(now: now)
            var lines: [String] = []
            if r.members.isEmpty { lines.append("no other car heard (yet)") }
            for m in r.members {
                var l = "\(m.together ? "●" : "○") \(m.name)"
                if let d = m.distanceM, let b = m.bearing {
                    l += "  \(Location.distanceText(d)) \(Location.compass(b)) (\(String(format: "%.0f", b))°)"
                    if m.position != "unknown" { l += " \(m.position)" }
                } else {
                    l += m.latitude == nil ? "  no position" : "  distance unknown (no fix here)"
                }
                if let v = m.speedKmh { l += String(format: "  %.0f km/h", v) }
                l += String(format: "  heard %.1f s ago", m.lastHeardSeconds)
                l += m.together ? "  together" : "  apart"
                lines.append(l)
            }
            if !r.haveFix { lines.append("(this car has no fresh fix: distances unknown)") }
            lines.append("together = within \(Location.distanceText(r.radiusM)), or heard over Bluetooth LE")
            if !r.changes.isEmpty { lines.append("recent: " + r.changes.suffix(5).joined(separator: "; ")) }
            return Commands.success(lines.joined(separator: "\n"), r)
        default:
            return nil
        }
    }
}
