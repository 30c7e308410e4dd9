import Foundation
import GRDB
import JamzClient
import JamzCore
import JamzNet
import JamzTestSupport
import Testing

/// Separate hosts on one machine: network namespaces on a bridge (scripts/netns.sh), one jamzd
/// each, with its own skewed clock. Needs root (CI is root); skipped otherwise.
enum NetnsLab {
    static let available: Bool = getuid() == 0 && FileManager.default.isExecutableFile(atPath: "/usr/sbin/ip")
    static let script = Fixtures.repo.appendingPathComponent("scripts/netns.sh").path

    static func run(_ args: String...) throws {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/bin/bash")
        p.arguments = [script] + args
        try p.run()
        p.waitUntilExit()
        if p.terminationStatus != 0 { throw HarnessError("netns.sh \(args.joined(separator: " ")) failed") }
    }
}

/// One JSON answer of `jamz … --json` (the stable `data` of the reply).
private func json(_ car: Car, _ args: String...) throws -> Any {
    guard let v = car.json(args) else { throw HarnessError("jamz \(args.joined(separator: " ")) failed") }
    return v
}

private func group(_ car: Car) -> [String: Any] { ((try? json(car, "group", "show")) as? [String: Any]) ?? [:] }
private func peers(_ car: Car) -> [[String: Any]] { ((try? json(car, "peers")) as? [[String: Any]]) ?? [] }
private func queueIDs(_ car: Car) -> [String] { (((try? json(car, "queue")) as? [[String: Any]]) ?? []).compactMap { $0["id"] as? String } }
/// Runs SQL on a car's database file from outside the daemon (Python's sqlite3, as another
/// process would).
private func sqlite(_ path: String, _ sql: String) throws {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
    p.arguments = ["-c", "import sqlite3, sys; c = sqlite3.connect(sys.argv[1], timeout=10); c.execute(sys.argv[2]); c.commit()", path, sql]
    try p.run()
    p.waitUntilExit()
    if p.terminationStatus != 0 { throw HarnessError("sqlite on \(path) failed: \(sql)") }
}
private func status(_ car: Car) -> [String: Any] { ((try? json(car, "status")) as? [String: Any]) ?? [:] }

/// Sends UDP datagrams from the host (10.77.0.254 on the bridge) to a car's convoy port.
func sendUDP(_ datagrams: [[UInt8]], to ip: String, port: UInt16 = 47_800) {
    let fd = socket(AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
    defer { close(fd) }
    var addr = sockaddr_in()
    addr.sin_family = sa_family_t(AF_INET)
    addr.sin_port = port.bigEndian
    inet_pton(AF_INET, ip, &addr.sin_addr)
    for d in datagrams {
        _ = withUnsafePointer(to: &addr) { p in
            p.withMemoryRebound(to: sockaddr.self, capacity: 1) { sa in
                d.withUnsafeBytes { sendto(fd, $0.baseAddress, d.count, 0, sa, socklen_t(MemoryLayout<sockaddr_in>.size)) }
            }
        }
        usleep(200)
    }
}

@Suite(.serialized, .enabled(if: NetnsLab.available, "needs root and iproute2 (network namespaces)"))
struct ConvoyNetnsTests {
    @Test func threeHostsFindEachOtherShareOnePlaylistAndHandOverControlAcrossASplit() throws {
        try NetnsLab.run("up", "3")
        defer { try? NetnsLab.run("down") }
        // Three cars with their own clocks: 1.5 s apart, −40 / 0 / +40 ppm.
        let cars = (1...3).map { i in
            Car(args: ["--car-name", "car\(i)", "--clock-offset-ms=\(i * 1500)", "--clock-drift-ppm=\((i - 2) * 40)"], netns: "jamz-car\(i)")
        }
        for c in cars {
            try c.start()
            let music = try musicFolder(["long65.mp3", "cbr.mp3", "id3v24.mp3"])
            #expect(try c.jamz("import", music).0 == 0)
        }
        let created = try json(cars[0], "group", "create", "Test", "convoy") as? [String: Any]
        let code = try #require(created?["code"] as? String)
        for c in cars.dropFirst() { #expect(try c.jamz("group", "join", code).0 == 0) }
        let ids = cars.map { group($0)["member"] as? String ?? "?" }

        // Discovery with no configuration: every car hears the two others, with a clock estimate.
        try waitUntil("every car hears the two others", timeout: 15) {
            cars.allSatisfy { c in let p = peers(c); return p.count == 2 && p.allSatisfy { $0["offsetMs"] != nil } }
        }
        // The estimates see the skewed clocks: car 2 − car 1 ≈ +1500 ms, within its bound + 1 ms.
        let p12 = try #require(peers(cars[0]).first { $0["member"] as? String == ids[1] })
        let off = try #require(p12["offsetMs"] as? Double), bound = try #require(p12["boundMs"] as? Double)
        #expect(abs(off - 1500) < bound + 1, "offset \(off) ms ± \(bound)")

        // Anyone adds; every car ends with the same list.
        #expect(try cars[0].jamz("add", "long").0 == 0)
        #expect(try cars[2].jamz("add", "cbr").0 == 0)
        try waitUntil("the same two entries everywhere", timeout: 10) {
            let q = cars.map(queueIDs)
            return q[0].count == 2 && q.allSatisfy { $0 == q[0] }
        }
        // Only the DJ plays, pauses and skips.
        #expect(try cars[1].jamz("play").0 != 0)
        #expect(try cars[0].jamz("play").0 == 0)
        try waitUntil("every car plays the same track", timeout: 10) {
            let s = cars.map(status)
            let tracks = s.map { (($0["track"] as? [String: Any])?["id"] as? String) ?? "" }
            return s.allSatisfy { $0["state"] as? String == "playing" } && Set(tracks).count == 1
        }
        // Edits: the DJ removes and reorders what comes after the playing entry; a follower
        // cannot, nor can the DJ touch the entry playing. Every car ends with the same list.
        var (rc, _, err) = try cars[1].jamz("remove", "2")
        #expect(rc != 0 && err.contains("only the DJ removes or moves entries"), "\(err)")
        (rc, _, err) = try cars[0].jamz("remove", "1")
        #expect(rc != 0 && err.contains("cannot remove place 1: it is playing"), "\(err)")
        (rc, _, err) = try cars[0].jamz("move", "1", "1")   // to where it is: refused all the same
        #expect(rc != 0 && err.contains("cannot move place 1: it is playing"), "\(err)")
        #expect(try cars[0].jamz("add", "cafe unicode").0 == 0)   // id3v24.mp3, place 3
        try waitUntil("three entries everywhere", timeout: 10) { cars.allSatisfy { queueIDs($0).count == 3 } }
        let three = queueIDs(cars[0])
        #expect(try cars[0].jamz("move", "3", "2").0 == 0)
        try waitUntil("the move everywhere", timeout: 10) { cars.allSatisfy { queueIDs($0) == [three[0], three[2], three[1]] } }
        #expect(try cars[0].jamz("remove", "2").0 == 0)
        try waitUntil("the removal everywhere", timeout: 10) { cars.allSatisfy { queueIDs($0) == [three[0], three[1]] } }
        #expect(cars.allSatisfy { status($0)["state"] as? String == "playing" && (status($0)["track"] as? [String: Any])?["id"] as? String == three[0] })

        // Take-over: car 3 presses; every car agrees.
        #expect(try cars[2].jamz("take-control").0 == 0)
        try waitUntil("every car sees car 3 as DJ", timeout: 5) { cars.allSatisfy { group($0)["dj"] as? String == ids[2] } }

        // The DJ's link is cut: the others keep playing the timeline.
        try NetnsLab.run("cut", "3")
        sleep(3)
        #expect(cars.allSatisfy { status($0)["state"] as? String == "playing" })
        // While apart: car 2 takes control of its half, car 3 (DJ in its own view) adds a track.
        #expect(try cars[1].jamz("take-control").0 == 0)
        #expect(try cars[2].jamz("add", "cafe unicode").0 == 0)
        try NetnsLab.run("restore", "3")
        try waitUntil("one DJ (car 2) and the same three entries everywhere", timeout: 20) {
            let q = cars.map(queueIDs)
            return cars.allSatisfy { group($0)["dj"] as? String == ids[1] } && q[0].count == 3 && q.allSatisfy { $0 == q[0] }
        }

        // Forged, replayed, tampered and foreign datagrams from the host: none is accepted.
        let secret = try JoinCode.parse(code)
        let genuine = Envelope.seal(payload: WireCodec.encode(.opsRequest(highWater: [:])), sender: MemberID(42), seq: 1, key: secret.key)
        var tampered = genuine; tampered[tampered.count - 1] ^= 1
        let foreign = Envelope.seal(payload: WireCodec.encode(.timeline(ConvoyTimeline(term: Term(number: 99, dj: MemberID(7))))),
                                    sender: MemberID(7), seq: 1, key: ConvoySecret.random().key)
        var rng = SplitMix64(seed: 9)
        var bad: [[UInt8]] = []
        for i in 0..<400 {
            switch i % 4 {
            case 0: bad.append(tampered)
            case 1: bad.append(foreign)
            case 2: bad.append((0..<(Int(rng.next() % 200))).map { _ in UInt8(truncatingIfNeeded: rng.next()) })
            default: var t = genuine; t[26 + Int(rng.next() % UInt64(t.count - 26))] ^= 0x40; bad.append(t)
            }
        }
        let termBefore = group(cars[0])["term"] as? Int
        let before = ((status(cars[0])["counters"] as? [String: Any]) ?? [:]).filter { $0.key.hasPrefix("convoy.dropped.") }.values.compactMap { $0 as? Int }.reduce(0, +)
        sendUDP(bad, to: "10.77.0.1")
        try waitUntil("car 1 counted the 400 bad datagrams", timeout: 10) {
            let after = ((status(cars[0])["counters"] as? [String: Any]) ?? [:]).filter { $0.key.hasPrefix("convoy.dropped.") }.values.compactMap { $0 as? Int }.reduce(0, +)
            return after - before >= 400
        }
        #expect(group(cars[0])["term"] as? Int == termBefore)
        #expect(group(cars[0])["dj"] as? String == ids[1])
        // A flood of 100 000 of them as fast as the host can send: whatever the kernel and the
        // bounded inbox let through is dropped and counted; the car keeps playing, nothing applied.
        let flood = (0..<100_000).map { bad[$0 % bad.count] }
        sendUDP(flood, to: "10.77.0.1")
        sleep(2)
        let afterFlood = ((status(cars[0])["counters"] as? [String: Any]) ?? [:]).filter { $0.key.hasPrefix("convoy.dropped.") }.values.compactMap { $0 as? Int }.reduce(0, +)
        #expect(afterFlood - before > 400, "car 1 after the flood; its log ends: \(cars[0].logText.suffix(3000))")
        #expect(group(cars[0])["term"] as? Int == termBefore)
        #expect(status(cars[0])["state"] as? String == "playing")

        // An authenticated member sending a timeline whose numbers would overflow the timeline
        // arithmetic (a buggy app): ignored and counted, no crash, nothing adopted.
        let wild = ConvoyTimeline(term: Term(number: 1_000, dj: MemberID(42)), version: 1,
                                  anchor: TimelineAnchor(entry: OpID(origin: MemberID(42), seq: 1), track: TrackID(hex: String(repeating: "ab", count: 32))!,
                                                         frame: 5, time: .max - 10, rate: 1))
        sendUDP([Envelope.seal(payload: WireCodec.encode(.timeline(wild)), sender: MemberID(42), seq: 2, key: secret.key)], to: "10.77.0.1")
        try waitUntil("car 1 counted the out-of-range timeline", timeout: 5) {
            ((status(cars[0])["counters"] as? [String: Any])?["convoy.rejected"] as? Int ?? 0) >= 1
        }
        #expect(group(cars[0])["term"] as? Int == termBefore)
        #expect(cars.allSatisfy { status($0)["state"] as? String == "playing" })
        // A track only the DJ (car 2) has: the others copy it by content hash and play it too.
        #expect(try cars[1].jamz("import", try musicFolder(["vbr.mp3"])).0 == 0)
        #expect(try cars[1].jamz("add", "vbr tone").0 == 0)
        try waitUntil("four entries everywhere", timeout: 10) { cars.allSatisfy { queueIDs($0).count == 4 } }
        #expect(try cars[1].jamz("play", "4").0 == 0)
        try waitUntil("every car plays the copied track", timeout: 20) {
            cars.allSatisfy { c in
                let s = status(c)
                return s["state"] as? String == "playing" && (s["track"] as? [String: Any])?["title"] as? String == "VBR Tone"
            }
        }
        for c in [cars[0], cars[2]] {
            #expect(((status(c)["counters"] as? [String: Any])?["convoy.tracks_copied"] as? Int ?? 0) >= 1)
        }
        // Car 3 leaves while the long first entry plays: the music goes on, the convoy's
        // playlist is its own queue, and its own commands edit it (they used to name the
        // convoy's entries in a queue that had none, and the music stopped).
        let kept = queueIDs(cars[2])
        #expect(try cars[1].jamz("play", "1").0 == 0)
        try waitUntil("car 3 plays the first entry", timeout: 10) {
            let s = status(cars[2])
            return s["state"] as? String == "playing" && (s["track"] as? [String: Any])?["id"] as? String == kept.first
        }
        // Its database refuses the queue's rows at the leave (a full disk; here a trigger in the
        // real SQLite file): the music goes on from memory, counted, and an edit is refused
        // with the reason until the database takes writes again.
        try sqlite(cars[2].db, "CREATE TRIGGER full BEFORE INSERT ON queueEntry BEGIN SELECT RAISE(ABORT, 'database or disk is full'); END")
        var out: String
        (rc, out, _) = try cars[2].jamz("group", "leave")
        #expect(rc == 0 && out.contains("its playlist is this car's queue now (4 entries)"), "\(out)")
        #expect(queueIDs(cars[2]) == kept)
        #expect(status(cars[2])["state"] as? String == "playing")
        #expect((status(cars[2])["track"] as? [String: Any])?["id"] as? String == kept.first)
        #expect((try cars[2].client.status()).counters["player.queue_save_failures"] == 1)
        (rc, _, err) = try cars[2].jamz("add", "cbr")
        #expect(rc != 0 && err.contains("this car's queue cannot be stored yet"), "\(err)")
        try sqlite(cars[2].db, "DROP TRIGGER full")
        #expect(try cars[2].jamz("add", "cbr").0 == 0)
        (rc, out, err) = try cars[2].jamz("move", "5", "2")
        #expect(rc == 0 && out.contains("moved to 2."), "\(out) \(err)")
        (rc, out, err) = try cars[2].jamz("remove", "2")
        #expect(rc == 0 && out.contains("queue has 4"), "\(out) \(err)")
        #expect(queueIDs(cars[2]) == kept)
        (rc, _, err) = try cars[2].jamz("remove", "1")
        #expect(rc != 0 && err.contains("cannot remove place 1: it is playing"), "\(err)")
        #expect(status(cars[2])["state"] as? String == "playing")
        #expect((status(cars[2])["track"] as? [String: Any])?["id"] as? String == kept.first)
        // The two still in the convoy keep their four entries.
        #expect(queueIDs(cars[0]).count == 4)
        for c in cars { #expect(c.terminate() == 0) }
    }

    /// The same convoy over a bad link (the transport's test impairment, as this kernel has no
    /// netem): every datagram 20 ms + exp(10 ms) late, 5 % lost, reordered. Discovery, the clock
    /// estimates, the playlist (anti-entropy pulls what was lost) and a take-over still converge.
    @Test func threeHostsConvergeOverAJitteryLossyLink() throws {
        try NetnsLab.run("up", "3")
        defer { try? NetnsLab.run("down") }
        let cars = (1...3).map { i in
            Car(args: ["--car-name", "car\(i)", "--clock-offset-ms=\(i * 1500)", "--clock-drift-ppm=\((i - 2) * 40)",
                       "--test-link-impair", "20+exp10,loss=0.05,seed=\(i)"], netns: "jamz-car\(i)")
        }
        for c in cars {
            try c.start()
            #expect(try c.jamz("import", try musicFolder(["long65.mp3", "cbr.mp3"])).0 == 0)
        }
        let created = try json(cars[0], "group", "create", "Rough") as? [String: Any]
        let code = try #require(created?["code"] as? String)
        for c in cars.dropFirst() { #expect(try c.jamz("group", "join", code).0 == 0) }
        let ids = cars.map { group($0)["member"] as? String ?? "?" }
        try waitUntil("every car hears the two others", timeout: 20) {
            cars.allSatisfy { c in let p = peers(c); return p.count == 2 && p.allSatisfy { $0["offsetMs"] != nil } }
        }
        // Let the filters see enough exchanges, then check the estimate against the true skew.
        sleep(8)
        let p13 = try #require(peers(cars[0]).first { $0["member"] as? String == ids[2] })
        let off = try #require(p13["offsetMs"] as? Double), bound = try #require(p13["boundMs"] as? Double)
        #expect(abs(off - 3000) < bound + 1, "offset \(off) ms ± \(bound) over the jittery link")
        for (i, c) in cars.enumerated() { #expect(try c.jamz("add", i == 1 ? "cbr" : "long").0 == 0) }
        try waitUntil("the same three entries everywhere", timeout: 20) {
            let q = cars.map(queueIDs)
            return q[0].count == 3 && q.allSatisfy { $0 == q[0] }
        }
        #expect(try cars[0].jamz("play").0 == 0)
        // The driver presses take-over once the music plays in the car (a press in the instant
        // after `play`, before the DJ's timeline arrived over a lossy link, takes over the
        // stopped one: noted in the stop note as a product question).
        try waitUntil("every car plays", timeout: 20) { cars.allSatisfy { status($0)["state"] as? String == "playing" } }
        #expect(try cars[1].jamz("take-control").0 == 0)
        do {
            try waitUntil("every car sees car 2 as DJ and plays", timeout: 10) {
                cars.allSatisfy { group($0)["dj"] as? String == ids[1] && status($0)["state"] as? String == "playing" }
            }
        } catch {
            for (i, c) in cars.enumerated() {
                print("car \(i + 1): dj \(group(c)["dj"] ?? "?") state \(status(c)["state"] ?? "?")\n\(c.logText.suffix(2500))")
            }
            throw error
        }
        // The impairment was really there.
        let drops = cars.map { ((status($0)["counters"] as? [String: Any])?["convoy.test_impair_dropped"] as? Int) ?? 0 }
        #expect(drops.allSatisfy { $0 > 0 }, "datagrams dropped by the impairment: \(drops)")
        for c in cars { #expect(c.terminate() == 0) }
    }

    /// Power comes back in a follower whose DJ is out of reach: the music comes back with it,
    /// from where it was, and the car takes the DJ's timeline again once the link is back.
    @Test func aFollowerRestartedOutOfReachPlaysOnThenRejoins() throws {
        try NetnsLab.run("up", "2")
        defer { try? NetnsLab.run("down") }
        let cars = (1...2).map { i in Car(args: ["--car-name", "car\(i)", "--clock-offset-ms=\(i * 700)"], netns: "jamz-car\(i)") }
        for c in cars {
            try c.start()
            #expect(try c.jamz("import", try musicFolder(["long65.mp3", "cbr.mp3"])).0 == 0)
        }
        let created = try json(cars[0], "group", "create", "Two") as? [String: Any]
        #expect(try cars[1].jamz("group", "join", try #require(created?["code"] as? String)).0 == 0)
        try waitUntil("the cars hear each other", timeout: 15) { cars.allSatisfy { peers($0).count == 1 } }
        #expect(try cars[0].jamz("add", "long").0 == 0)
        #expect(try cars[0].jamz("add", "cbr").0 == 0)
        try waitUntil("two entries in car 2", timeout: 10) { queueIDs(cars[1]).count == 2 }
        #expect(try cars[0].jamz("play").0 == 0)
        try waitUntil("car 2 plays", timeout: 10) { (status(cars[1])["position"] as? Double ?? 0) > 3 }
        try NetnsLab.run("cut", "2")
        sleep(1)
        cars[1].kill9()
        try cars[1].start()
        try waitUntil("car 2 plays again, alone", timeout: 10) { status(cars[1])["state"] as? String == "playing" }
        let alone = status(cars[1])
        #expect((alone["track"] as? [String: Any])?["title"] as? String == "Long Sixty-Five")
        #expect(peers(cars[1]).isEmpty)
        #expect(cars[1].logText.contains("the DJ is not heard yet: playing on"))
        try NetnsLab.run("restore", "2")
        try waitUntil("car 2 follows the DJ again", timeout: 20) { cars[1].logText.contains("the DJ is heard: following the convoy's timeline again") }
        #expect(status(cars[1])["state"] as? String == "playing")
        for c in cars { #expect(c.terminate() == 0) }
    }

    /// A car on two networks (say its own Wi-Fi hotspot and Ethernet) links cars that are on one
    /// each: its beacons go out of every interface, and an interface that comes up after the
    /// daemon started (the hotspot after boot) is picked up. Car 1 is on both networks, car 2 on
    /// the first only, car 3 on the second only, which both get after the daemons started.
    @Test func aCarOnTwoNetworksIsHeardOnBothIncludingOneThatCameUpLater() throws {
        try NetnsLab.run("up", "3")
        defer { try? NetnsLab.run("down") }
        try NetnsLab.run("unplug", "3")
        let cars = (1...3).map { i in Car(args: ["--car-name", "car\(i)"], netns: "jamz-car\(i)") }
        for c in cars { try c.start() }
        let created = try json(cars[0], "group", "create", "Bridge") as? [String: Any]
        let code = try #require(created?["code"] as? String)
        for c in cars.dropFirst() { #expect(try c.jamz("group", "join", code).0 == 0) }
        try waitUntil("cars 1 and 2 hear each other", timeout: 15) { peers(cars[0]).count == 1 && peers(cars[1]).count == 1 }
        #expect(peers(cars[2]).isEmpty)
        try NetnsLab.run("link", "1")
        try NetnsLab.run("link", "3")
        try waitUntil("car 1 hears both, car 3 hears car 1", timeout: 20) { peers(cars[0]).count == 2 && peers(cars[2]).count == 1 }
        let names = peers(cars[2]).compactMap { $0["name"] as? String }
        #expect(names == ["car1"])
        // Car 2 and car 3 share no network: each still hears only car 1.
        #expect(peers(cars[1]).count == 1)
        #expect(cars[2].logText.contains("beacons on 239.255.74.77 via eth1"))
        for c in cars { #expect(c.terminate() == 0) }
    }

    /// The Wi-Fi drops (address and routes gone: every send fails with ENETUNREACH, which makes
    /// SwiftNIO close the socket) and comes back: the link is bound again and the cars hear each
    /// other again, with no restart.
    @Test func theLinkComesBackAfterTheNetworkWentAway() throws {
        try NetnsLab.run("up", "2")
        defer { try? NetnsLab.run("down") }
        let cars = (1...2).map { i in Car(args: ["--car-name", "car\(i)"], netns: "jamz-car\(i)") }
        for c in cars { try c.start() }
        let created = try json(cars[0], "group", "create", "Drop") as? [String: Any]
        #expect(try cars[1].jamz("group", "join", try #require(created?["code"] as? String)).0 == 0)
        try waitUntil("the cars hear each other", timeout: 15) { cars.allSatisfy { peers($0).count == 1 } }
        try NetnsLab.run("unaddr", "2")
        sleep(4)   // clock requests and beacons fail meanwhile
        try NetnsLab.run("readdr", "2")
        try waitUntil("car 1 hears car 2 again", timeout: 20) {
            (peers(cars[0]).first?["lastHeardSeconds"] as? Double ?? 99) < 1.5
        }
        try waitUntil("car 2 hears car 1 again", timeout: 20) {
            (peers(cars[1]).first?["lastHeardSeconds"] as? Double ?? 99) < 1.5
        }
        for c in cars { #expect(c.terminate() == 0) }
    }

    /// Three cars, each with its own gpsd fed its part of a convoy route (20× real time): car 2
    /// follows 300 m behind car 1, car 3 stops at a rest area and falls ~5 km behind. Each car's
    /// `jamz convoy` shows the others at the right distance, ahead or behind, together or apart;
    /// each stores its own and the others' positions.
    @Test func threeCarsWithTheirOwnGPSSeeWhoIsTogether() throws {
        try NetnsLab.run("up", "3")
        defer { try? NetnsLab.run("down") }
        let rigs = try (1...3).map { try GPSDRig(log: "convoy-car\($0).nmea", pace: 0.05, netns: "jamz-car\($0)") }
        defer { rigs.forEach { $0.stop() } }
        let config = Fixtures.tempDir().appendingPathComponent("jamzd.toml").path
        try "[convoy]\ntogether_dwell_s = 1\n".write(toFile: config, atomically: true, encoding: .utf8)
        let cars = (1...3).map { i in
            Car(args: ["--car-name", "car\(i)", "--gpsd", "localhost:\(rigs[i - 1].gpsdPort)", "--config", config], netns: "jamz-car\(i)")
        }
        for c in cars { try c.start() }
        let created = try json(cars[0], "group", "create", "Road") as? [String: Any]
        let code = try #require(created?["code"] as? String)
        for c in cars.dropFirst() { #expect(try c.jamz("group", "join", code).0 == 0) }
        try waitUntil("every car hears the two others", timeout: 15) { cars.allSatisfy { peers($0).count == 2 } }
        try waitUntil("every car is connected to its gpsd", timeout: 15) {
            cars.allSatisfy { ((try? json($0, "where")) as? [String: Any])?["gpsd"] as? String == "connected" }
        }
        for r in rigs { r.go() }

        func view(_ c: Car) -> [String: [String: Any]] {
            let members = (((try? json(c, "convoy")) as? [String: Any])?["members"] as? [[String: Any]]) ?? []
            return Dictionary(members.compactMap { m in (m["name"] as? String).map { ($0, m) } }, uniquingKeysWith: { a, _ in a })
        }
        func d(_ m: [String: Any]?) -> Double { m?["distanceM"] as? Double ?? -1 }
        func together(_ m: [String: Any]?) -> Bool { m?["together"] as? Bool ?? false }
        // Car 3 is more than 2.5 km behind from about 5 min into the route until its end.
        var seen: (one: [String: [String: Any]], two: [String: [String: Any]], three: [String: [String: Any]])?
        try waitUntil("car 1 and car 2 together, car 3 apart, in every car's view", timeout: 60) {
            let (v1, v2, v3) = (view(cars[0]), view(cars[1]), view(cars[2]))
            let ok = together(v1["car2"]) && (150...600).contains(d(v1["car2"])) && !together(v1["car3"]) && d(v1["car3"]) > 3000
                && together(v2["car1"]) && !together(v2["car3"]) && d(v2["car3"]) > 3000
                && !together(v3["car1"]) && !together(v3["car2"]) && d(v3["car1"]) > 3000
            if ok { seen = (v1, v2, v3) }
            return ok
        }
        let v = try #require(seen)
        #expect(v.one["car2"]?["position"] as? String == "behind", "car 2 follows car 1: \(v.one["car2"] ?? [:])")
        #expect(v.two["car1"]?["position"] as? String == "ahead", "\(v.two["car1"] ?? [:])")
        #expect(v.one["car3"]?["position"] as? String == "behind")
        #expect(cars[0].logText.contains("together: car2"))
        #expect(cars[0].logText.contains("apart: car3"))

        // Every fix of its own route stored, and the others' positions too.
        for r in rigs { try r.waitSent(timeout: 120) }
        sleep(2)
        var ro = Configuration(); ro.readonly = true
        let db = try DatabaseQueue(path: cars[0].dataDir + "/jamz.sqlite", configuration: ro)
        let me = try #require(group(cars[0])["member"] as? String)
        let perMember = try db.read { db in
            try Row.fetchAll(db, sql: "SELECT member, COUNT(*) AS n FROM location GROUP BY member").map { ($0["member"] as Int64, $0["n"] as Int) }
        }
        #expect(perMember.count == 3, "positions stored for \(perMember.count) members")
        let own = perMember.first { MemberID(UInt64(bitPattern: $0.0)).description == me }
        #expect((own?.1 ?? 0) >= 600, "own fixes stored: \(perMember)")
        #expect(perMember.filter { $0.0 != own?.0 }.allSatisfy { $0.1 > 10 }, "others' positions stored: \(perMember)")
        for c in cars { #expect(c.terminate() == 0) }
    }
}
