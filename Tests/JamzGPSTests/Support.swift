import Foundation
import JamzAudio
import JamzCore
import JamzGPS
import JamzTestSupport
import Testing

/// One row of a route's truth file (`scripts/make-nmea-route.py`).
struct TruthRow {
    var t: Int
    var wall: Nanos
    var kind: String
    var point: GeoPoint
    var altitude: Double?
    var speed: Double
    var mode: Int

    /// Epochs whose fix must be delivered (and stored): good ones and 2D ones.
    var deliverable: Bool { ["ok", "2d"].contains(kind) }
    /// Epochs whose RMC had a bad checksum: gpsd drops that sentence; it reports the second from
    /// its GGA (the right position) or, when the RMC was its cycle end, not at all (gpsd 3.22
    /// skips the first such second). Either is fine; a wrong position is not.
    var optional: Bool { kind == "bad-checksum" }

    static func load(_ name: String) throws -> [TruthRow] {
        let text = try String(contentsOfFile: GPSDRig.nmea(name), encoding: .utf8)
        let start: Nanos = 1_778_745_600 * nanosPerSecond   // 2026-05-14T08:00:00Z, the generator's START
        return text.split(separator: "\n").dropFirst().map { line in
            let f = line.split(separator: ",", omittingEmptySubsequences: false).map(String.init)
            let t = Int(f[0])!
            return TruthRow(t: t, wall: start + Nanos(t) * nanosPerSecond, kind: f[2],
                            point: GeoPoint(latitude: Double(f[3])!, longitude: Double(f[4])!),
                            altitude: Double(f[5]), speed: Double(f[6])!, mode: Int(f[8])!)
        }
    }
}

/// Collects a source's events on a task of its own.
final class EventLog: @unchecked Sendable {
    // @unchecked: `events` is guarded by `lock`.
    private let lock = NSLock()
    private var all: [GPSEvent] = []
    private var task: Task<Void, Never>?

    init(_ source: any GPSSource) {
        task = Task { [self] in
            for await e in source.events {
                lock.withLock { all.append(e) }
            }
        }
    }

    var events: [GPSEvent] { lock.lock(); defer { lock.unlock() }; return all }
    var fixes: [Fix] { events.compactMap { if case .fix(let f) = $0 { f } else { nil } } }
    var connections: [GPSConnection] { events.compactMap { if case .connection(let c) = $0 { c } else { nil } } }
    var modes: [FixMode] { events.compactMap { if case .mode(let m, _) = $0 { m } else { nil } } }

    /// Waits for the stream to end (after `stop()`).
    func finished() async { await task?.value }
}

/// Polls `cond` every 20 ms for up to `timeout` seconds (a bound against hanging, not a timing
/// assertion: the test fails only if it never happens).
func eventually(_ what: String, timeout: Double = 60, _ cond: () -> Bool) async throws {
    let deadline = Date().addingTimeInterval(timeout)
    while !cond() {
        guard Date() < deadline else { throw RigError("never happened: \(what)") }
        try await Task.sleep(nanoseconds: 20_000_000)
    }
}

func client(port: Int) -> GPSDClient {
    var c = GPSDClient.Config(host: "127.0.0.1", port: port)
    c.backoffMax = 2 * nanosPerSecond
    return GPSDClient(config: c, clock: SystemClock())
}

/// The fixes are exactly the expected epochs, in order, once each (reported by epoch number).
func expectSameEpochs(_ fixes: [Fix], _ truth: [TruthRow], sourceLocation: SourceLocation = #_sourceLocation) {
    let start: Nanos = 1_778_745_600 * nanosPerSecond
    let got = fixes.map { Int(($0.wall - start) / nanosPerSecond) }
    let expected = truth.filter(\.deliverable).map(\.t)
    let allowed = Set(truth.filter { $0.deliverable || $0.optional }.map(\.t))
    let missing = Set(expected).subtracting(got).sorted()
    let extra = Set(got).subtracting(allowed).sorted()
    #expect(missing.isEmpty, "epochs not delivered: \(missing)", sourceLocation: sourceLocation)
    #expect(extra.isEmpty, "epochs that should not be delivered: \(extra)", sourceLocation: sourceLocation)
    #expect(got.count == Set(got).count, "an epoch delivered twice", sourceLocation: sourceLocation)
    #expect(got == got.sorted(), "out of order", sourceLocation: sourceLocation)
}
