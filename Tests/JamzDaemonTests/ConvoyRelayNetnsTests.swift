import Foundation
import JamzCore
import JamzNet
import JamzTestSupport
import Testing

/// Cars with no LAN between them, each with its own mobile-data link to a "cloud" namespace
/// (scripts/netns.sh cloud) where a real mosquitto runs behind a bad path (scripts/tcp-impair.py:
/// 40 ms + exp(20 ms) each way, 2 % loss as TCP retransmissions, a 1 s outage every 15 s).
@Suite(.serialized, .enabled(if: NetnsLab.available, "needs root and iproute2 (network namespaces)"))
struct ConvoyRelayNetnsTests {
    static let broker = "mqtt://10.79.255.1:1884"

    func json(_ car: Car, _ args: String...) -> Any? { car.json(args) }
    func group(_ c: Car) -> [String: Any] { json(c, "group", "show") as? [String: Any] ?? [:] }
    func peers(_ c: Car) -> [[String: Any]] { json(c, "peers") as? [[String: Any]] ?? [] }
    func queue(_ c: Car) -> [String] { (json(c, "queue") as? [[String: Any]] ?? []).compactMap { $0["id"] as? String } }
    func status(_ c: Car) -> [String: Any] { json(c, "status") as? [String: Any] ?? [:] }
    func counter(_ c: Car, _ name: String) -> Int { (status(c)["counters"] as? [String: Any])?[name] as? Int ?? 0 }
    func drops(_ c: Car) -> Int {
        let counters = status(c)["counters"] as? [String: Any] ?? [:]
        return counters.filter { $0.key.hasPrefix("convoy.dropped.") }.values.compactMap { $0 as? Int }.reduce(0, +)
    }

    static let badPath = ["--delay", "40", "--exp", "20", "--loss", "0.02", "--outage", "1/15"]

    /// Brokers and bad paths in jamz-cloud. Broker k listens on 1883 + 10 k; each broker after
    /// the first is bridged to the first (`topic jamz/# both 1`). Path k listens on 1884 + k and
    /// leads to broker `to`.
    func cloud(brokers: Int = 1, paths: [(profile: [String], to: Int)] = [(badPath, 0)]) throws -> ([MosquittoRig], [GroupProcess]) {
        let rigs = try (0..<brokers).map { k in
            try MosquittoRig(port: 1883 + 10 * k, netns: "jamz-cloud",
                             extraConfig: k == 0 ? "" : "connection to-first\naddress 127.0.0.1:1883\ntopic jamz/# both 1\n")
        }
        let procs = try paths.enumerated().map { k, path in
            let p = try GroupProcess(["ip", "netns", "exec", "jamz-cloud", "/usr/bin/python3", Fixtures.repo.appendingPathComponent("scripts/tcp-impair.py").path,
                                      "--listen", "10.79.255.1:\(1884 + k)", "--to", "127.0.0.1:\(1883 + 10 * path.to)", "--seed", "\(k + 1)"] + path.profile,
                                     log: "/dev/null")
            _ = try p.waitFor("the impaired path listens") { $0.contains("listening") }
            return p
        }
        return (rigs, procs)
    }

    /// Creates the convoy on car 1, joins the others by its code, and checks they become one
    /// convoy: every car hears the others over `link`, one playlist from adds in all cars, the
    /// same track playing, a take-over by the last car seen everywhere. Returns the code and ids.
    @discardableResult
    func formConvoy(_ cars: [Car], link: String, timeout: Double = 60) throws -> (code: String, ids: [String]) {
        for c in cars { #expect(try c.jamz("import", try musicFolder(["long65.mp3", "cbr.mp3"])).0 == 0) }
        let code = try #require((json(cars[0], "group", "create", "Far apart") as? [String: Any])?["code"] as? String)
        for c in cars.dropFirst() { #expect(try c.jamz("group", "join", code).0 == 0) }
        let ids = cars.map { group($0)["member"] as? String ?? "?" }
        let n = cars.count
        try waitUntil("every car hears the others over \(link), with a clock estimate", timeout: timeout) {
            cars.allSatisfy { c in let p = peers(c); return p.count == n - 1 && p.allSatisfy { $0["link"] as? String == link && $0["offsetMs"] != nil } }
        }
        for (i, c) in cars.enumerated() { #expect(try c.jamz("add", i == 1 ? "cbr" : "long").0 == 0) }
        try waitUntil("the same entries everywhere", timeout: 40) {
            let q = cars.map(queue)
            return q[0].count == n && q.allSatisfy { $0 == q[0] }
        }
        #expect(try cars[0].jamz("play").0 == 0)
        try waitUntil("every car plays the same track", timeout: 30) { samePlaying(cars) }
        #expect(try cars[n - 1].jamz("take-control").0 == 0)
        do {
            try waitUntil("every car sees the last car as DJ and still plays the same track", timeout: 30) {
                cars.allSatisfy { group($0)["dj"] as? String == ids[n - 1] } && samePlaying(cars)
            }
        } catch {
            for (i, c) in cars.enumerated() {
                print("car \(i + 1): dj \(group(c)["dj"] ?? "?") state \(status(c)["state"] ?? "?") track \((status(c)["track"] as? [String: Any])?["id"] ?? "none")\n\(c.logText.suffix(3000))")
            }
            throw error
        }
        return (code, ids)
    }

    func samePlaying(_ cars: [Car]) -> Bool {
        let s = cars.map(status)
        let tracks = s.map { ($0["track"] as? [String: Any])?["id"] as? String }
        return s.allSatisfy { $0["state"] as? String == "playing" } && tracks[0] != nil && tracks.allSatisfy { $0 == tracks[0] }
    }

    @Test func threeCarsWithNoLANAreOneConvoyThroughTheRelay() throws {
        try NetnsLab.run("cloud", "3")
        defer { try? NetnsLab.run("down") }
        let (brokers, paths) = try cloud()
        let broker = brokers[0]
        defer { paths.forEach { $0.killGroup() } }
        let cars = (1...3).map { i in
            Car(args: ["--car-name", "car\(i)", "--relay", Self.broker, "--gpsd", "off", "--clock-offset-ms=\(i * 1500)"], netns: "jamz-car\(i)")
        }
        for c in cars { try c.start() }
        // Join by code through the relay only; one playlist; the same track; a take-over.
        let (code, ids) = try formConvoy(cars, link: "relay")
        // The broker dies mid-drive: the music goes on from the timeline; an edit made meanwhile
        // reaches every car once it is back.
        broker.kill()
        try waitUntil("every car sees the relay down", timeout: 30) {
            cars.allSatisfy { (group($0)["relay"] as? [String: Any])?["connected"] as? Bool == false }
        }
        #expect(try cars[1].jamz("add", "cbr").0 == 0)
        sleep(2)
        #expect(cars.allSatisfy { status($0)["state"] as? String == "playing" })
        try broker.start()
        try waitUntil("the edit made while the broker was down is everywhere", timeout: 60) {
            let q = cars.map(queue)
            return q[0].count == 4 && q.allSatisfy { $0 == q[0] }
        }
        // 10 000 forged, replayed, foreign and garbage publishes on the convoy's topic: none is
        // applied (the playlist and the DJ stay), each is dropped and counted.
        let secret = try JoinCode.parse(code)
        let before = cars.map(drops), entries = cars.map(queue)
        let flood = try GroupProcess(["ip", "netns", "exec", "jamz-cloud", "/usr/bin/python3", Fixtures.repo.appendingPathComponent("scripts/relay-flood.py").path,
                                      "--host", "127.0.0.1", "--port", "1883", "--topic", secret.relayTopic, "--count", "10000"], log: "/dev/null")
        let sent = try flood.waitFor("the flood is sent", timeout: 120) { $0.hasPrefix("{") }
        #expect(!sent.contains("error"), "\(sent)")
        try waitUntil("every car dropped (nearly) all of the flood", timeout: 60) {
            zip(cars.map(drops), before).allSatisfy { $0 - $1 >= 9_500 }
        }
        #expect(cars.map(queue) == entries)
        #expect(cars.allSatisfy { group($0)["dj"] as? String == ids[2] && status($0)["state"] as? String == "playing" })
        print("relay test: flood \(sent); drops per car \(zip(cars.map(drops), before).map { $0 - $1 })")
        for c in cars { #expect(counter(c, "convoy.relay.messages_received") > 0) }
        for c in cars { #expect(c.terminate() == 0) }
    }

    /// Car 1's mobile link is 5 ms up / 60 ms down, the others' 60 up / 5 down: from car 1 to
    /// them takes 10 ms, back 120 ms. The clock exchanges see a 130 ms round trip and cannot see
    /// that it is lopsided, so the network alone puts the other car's clock about 55 ms off. With
    /// both wall clocks GPS-disciplined (the test hook: the cars share this host's wall clock),
    /// the fused estimate is the true offset.
    @Test func gpsTimeCarriesTheSyncOverAnAsymmetricPath() throws {
        try NetnsLab.run("cloud", "3")
        defer { try? NetnsLab.run("down") }
        let (brokers, paths) = try cloud(paths: [(["--delay", "60", "--up-delay", "5", "--exp", "1"], 0), (["--delay", "5", "--up-delay", "60", "--exp", "1"], 0)])
        defer { paths.forEach { $0.killGroup() }; brokers.forEach { $0.kill() } }
        // Cars 1 and 2 have GPS time, car 3 has none; clocks 1.5 s apart.
        let cars = (1...3).map { i in
            Car(args: ["--car-name", "car\(i)", "--relay", "mqtt://10.79.255.1:\(i == 1 ? 1884 : 1885)", "--gpsd", "off", "--clock-offset-ms=\(i * 1500)"]
                      + (i < 3 ? ["--test-gps-time", "50"] : []), netns: "jamz-car\(i)")
        }
        for c in cars { try c.start() }
        let code = try #require((json(cars[0], "group", "create", "Lopsided") as? [String: Any])?["code"] as? String)
        for c in cars.dropFirst() { #expect(try c.jamz("group", "join", code).0 == 0) }
        let ids = cars.map { group($0)["member"] as? String ?? "?" }
        func offset(_ c: Car, of id: String) -> (Double, Double)? {
            guard let p = peers(c).first(where: { $0["member"] as? String == id }),
                  let o = p["offsetMs"] as? Double, let b = p["boundMs"] as? Double else { return nil }
            return (o, b)
        }
        do {
            try waitUntil("car 1 measures cars 2 and 3 (clock exchanges through the relay)", timeout: 60) {
                offset(cars[0], of: ids[1]) != nil && (offset(cars[0], of: ids[2])?.1 ?? 1e9) < 200
            }
        } catch {
            print("car 1's peers: \(peers(cars[0]))\n\(cars[0].logText.suffix(3000))")
            throw error
        }
        sleep(10)
        let withGPS = try #require(offset(cars[0], of: ids[1])), networkOnly = try #require(offset(cars[0], of: ids[2]))
        print("asymmetric relay path: car 2 (GPS time) \(withGPS.0 - 1500) ms off ± \(withGPS.1); car 3 (network only) \(networkOnly.0 - 3000) ms off ± \(networkOnly.1)")
        #expect(abs(withGPS.0 - 1500) < 1, "with GPS time: \(withGPS)")
        #expect(withGPS.1 < 1)
        // The control: the same path without GPS time is off by the asymmetry, inside its bound.
        #expect(abs(networkOnly.0 - 3000) > 10 && abs(networkOnly.0 - 3000) < networkOnly.1, "network only: \(networkOnly)")
        for c in cars { #expect(c.terminate() == 0) }
    }

    /// Car 1 on broker A, cars 2 and 3 on broker B, the brokers bridged (as a fleet would run
    /// a cluster): still one convoy.
    @Test func carsOnTwoBridgedBrokersAreOneConvoy() throws {
        try NetnsLab.run("cloud", "3")
        defer { try? NetnsLab.run("down") }
        let (brokers, paths) = try cloud(brokers: 2, paths: [(Self.badPath, 0), (Self.badPath, 1)])
        defer { paths.forEach { $0.killGroup() }; brokers.forEach { $0.kill() } }
        let cars = (1...3).map { i in
            Car(args: ["--car-name", "car\(i)", "--relay", "mqtt://10.79.255.1:\(i == 1 ? 1884 : 1885)", "--gpsd", "off"], netns: "jamz-car\(i)")
        }
        for c in cars { try c.start() }
        try formConvoy(cars, link: "relay")
        for c in cars { #expect(c.terminate() == 0) }
    }

    /// Two cars on one LAN that also have the relay use both; losing either link costs nothing:
    /// the music goes on, a take-over and an edit still reach the other car.
    @Test func aCarOnLANAndRelaySurvivesEitherLinkGoingDown() throws {
        try NetnsLab.run("up", "2")
        defer { try? NetnsLab.run("down") }
        try NetnsLab.run("cloud", "2")
        let (brokers, paths) = try cloud(paths: [(["--delay", "40", "--exp", "20"], 0)])
        defer { paths.forEach { $0.killGroup() }; brokers.forEach { $0.kill() } }
        let cars = (1...2).map { i in
            Car(args: ["--car-name", "car\(i)", "--relay", Self.broker, "--gpsd", "off", "--clock-offset-ms=\(i * 700)"], netns: "jamz-car\(i)")
        }
        for c in cars { try c.start() }
        let (_, ids) = try formConvoy(cars, link: "lan+relay")
        // The LAN goes (car 1's cable): the relay carries the convoy.
        try NetnsLab.run("cut", "1")
        sleep(4)
        #expect(samePlaying(cars))
        #expect(try cars[0].jamz("take-control").0 == 0)
        try waitUntil("the take-over over the relay alone", timeout: 30) { cars.allSatisfy { group($0)["dj"] as? String == ids[0] } && samePlaying(cars) }
        #expect(try cars[1].jamz("add", "cbr").0 == 0)
        try waitUntil("an edit over the relay alone", timeout: 30) { cars.map(queue).allSatisfy { $0.count == 3 } }
        // The LAN comes back and the mobile link goes: the LAN carries it.
        try NetnsLab.run("restore", "1")
        try NetnsLab.run("wancut", "1")
        sleep(4)
        #expect(samePlaying(cars))
        #expect(try cars[1].jamz("take-control").0 == 0)
        try waitUntil("the take-over over the LAN alone", timeout: 30) { cars.allSatisfy { group($0)["dj"] as? String == ids[1] } && samePlaying(cars) }
        #expect(try cars[0].jamz("add", "long").0 == 0)
        try waitUntil("an edit over the LAN alone", timeout: 30) {
            let q = cars.map(queue)
            return q[0].count == 4 && q[0] == q[1]
        }
        for c in cars { #expect(c.terminate() == 0) }
    }
}
