import Foundation
import JamzClient
import JamzCore
import JamzDaemon
import JamzTestSupport
import Testing

/// The phone page served by a real jamzd process, spoken to over plain HTTP (curl): the page,
/// the PIN, sessions, refusals without one, CSRF, the rate limit.
@Suite struct PageTests {
    /// A free TCP port on the loopback (bound, read back, released).
    static func freePort() -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var a = sockaddr_in()
        a.sin_family = sa_family_t(AF_INET)
        a.sin_addr.s_addr = inet_addr("127.0.0.1")
        _ = withUnsafePointer(to: &a) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &a) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) } }
        return Int(UInt16(bigEndian: a.sin_port))
    }

    /// One HTTP request by curl; returns (status, body, response headers).
    /// Runs scripts/page-browser.py (headless Chromium): URL PIN JAMZ SOCKET, then its options;
    /// screenshots go to .build/page-shots. Its exit status and output (printed too).
    static let shots = Fixtures.repo.appendingPathComponent(".build/page-shots").path

    static func browser(_ args: [String]) throws -> (Int32, String) {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
        p.arguments = [Fixtures.repo.appendingPathComponent("scripts/page-browser.py").path] + args.prefix(4) + [PageTests.shots] + args.dropFirst(4)
        let out = Pipe()
        p.standardOutput = out
        p.standardError = out
        try p.run()
        let text = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        p.waitUntilExit()
        print(text)
        return (p.terminationStatus, text)
    }

    /// Runs curl with these arguments; returns what it printed.
    static func curl(_ args: [String]) throws -> String {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/curl")
        p.arguments = args
        let out = Pipe()
        p.standardOutput = out
        try p.run()
        let text = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        p.waitUntilExit()
        return text
    }

    static func http(_ url: String, method: String = "GET", json: String? = nil, jar: String? = nil, headers: [String] = []) throws -> (Int, String, String) {
        let dir = Fixtures.tempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        let bodyFile = dir.appendingPathComponent("body").path, headFile = dir.appendingPathComponent("head").path
        var args = ["-s", "-o", bodyFile, "-D", headFile, "-w", "%{http_code}", "-X", method, url]
        if let json { args += ["-H", "Content-Type: application/json", "--data-binary", json] }
        if let jar { args += ["-b", jar, "-c", jar] }
        for h in headers { args += ["-H", h] }
        let code = try curl(args)
        let body = (try? String(contentsOfFile: bodyFile, encoding: .utf8)) ?? ""
        let head = (try? String(contentsOfFile: headFile, encoding: .utf8)) ?? ""
        return (Int(code) ?? 0, body, head)
    }

    static func queueLength(_ car: Car) -> Int { (car.json(["queue"]) as? [Any])?.count ?? -1 }

    @Test func pinSessionAndRefusals() throws {
        let port = PageTests.freePort()
        let car = Car(args: ["--page-listen", "127.0.0.1:\(port)", "--page-pin", "246810", "--gpsd", "off", "--convoy-port", "0"])
        try car.start()
        try car.client.call("import", try musicFolder(["cbr.mp3", "vbr.mp3"]))
        let base = "http://127.0.0.1:\(port)"

        // The PIN is shown by `jamz status`.
        let status = try car.client.status()
        #expect(status.page?.pin == "246810")
        #expect(status.page?.urls == ["\(base)/"])
        let (_, text, _) = try car.jamz("status")
        #expect(text.contains("PIN 246810"))

        // The page itself needs no session; it is self-contained.
        var (code, body, head) = try PageTests.http(base + "/")
        #expect(code == 200)
        #expect(body.contains("<title>TrafficJamz</title>"))
        #expect(!body.contains("http://") && !body.contains("https://"))
        #expect(head.lowercased().contains("content-security-policy"))

        // Without a session: 401 and nothing changes.
        (code, _, _) = try PageTests.http(base + "/api/state")
        #expect(code == 401)
        (code, _, _) = try PageTests.http(base + "/api/cmd", method: "POST", json: #"{"cmd":"add","args":["cbr"]}"#)
        #expect(code == 401)
        (code, _, _) = try PageTests.http(base + "/api/cmd", method: "POST", json: #"{"cmd":"add","args":["cbr"]}"#,
                                          headers: ["Cookie: jamz_session=00000000000000000000000000000000"])
        #expect(code == 401)
        #expect(PageTests.queueLength(car) == 0)

        // A wrong PIN, then the right one: a session cookie, HttpOnly and SameSite=Strict.
        let jar = Fixtures.tempDir().appendingPathComponent("jar").path
        (code, body, _) = try PageTests.http(base + "/api/login", method: "POST", json: #"{"pin":"111111"}"#, jar: jar)
        #expect(code == 403)
        #expect(body.contains("wrong PIN"))
        (code, _, head) = try PageTests.http(base + "/api/login", method: "POST", json: #"{"pin":"246810"}"#, jar: jar)
        #expect(code == 200)
        let cookie = head.split(whereSeparator: \.isNewline).first { $0.lowercased().hasPrefix("set-cookie:") }.map(String.init) ?? ""
        #expect(cookie.contains("jamz_session="))
        #expect(cookie.contains("HttpOnly"))
        #expect(cookie.contains("SameSite=Strict"))

        // With it: the state (library listed), and an add through the add command.
        (code, body, _) = try PageTests.http(base + "/api/state", jar: jar)
        #expect(code == 200)
        let state = try #require(try JSONSerialization.jsonObject(with: Data(body.utf8)) as? [String: Any])
        let library = try #require(state["library"] as? [[String: Any]])
        #expect(library.count == 2)
        let id = try #require(library.first?["id"] as? String)
        (code, body, _) = try PageTests.http(base + "/api/cmd", method: "POST", json: #"{"cmd":"add","args":["\#(id)"]}"#, jar: jar)
        #expect(code == 200)
        #expect(PageTests.queueLength(car) == 1)

        // Cross-site: refused even with the session. Commands the page does not offer: refused.
        (code, _, _) = try PageTests.http(base + "/api/cmd", method: "POST", json: #"{"cmd":"add","args":["\#(id)"]}"#, jar: jar,
                                          headers: ["Origin: http://evil.example"])
        #expect(code == 403)
        (code, body, _) = try PageTests.http(base + "/api/cmd", method: "POST", json: #"{"cmd":"import","args":["/"]}"#, jar: jar)
        #expect(code == 403)
        (code, _, _) = try PageTests.http(base + "/api/cmd", method: "POST", json: #"{"cmd":"#, jar: jar)
        #expect(code == 400)
        // Of the group commands, a passenger opens a short code or joins, never leaves or creates.
        (code, body, _) = try PageTests.http(base + "/api/cmd", method: "POST", json: #"{"cmd":"group","args":["create","Mine"]}"#, jar: jar)
        #expect(code == 403)
        (code, body, _) = try PageTests.http(base + "/api/cmd", method: "POST", json: #"{"cmd":"group","args":["invite"]}"#, jar: jar)
        #expect(code == 409 && body.contains("not in a convoy"))
        // The join QR: only with a session, and only in a convoy.
        (code, _, _) = try PageTests.http(base + "/api/qr.svg")
        #expect(code == 401)
        (code, body, _) = try PageTests.http(base + "/api/qr.svg", jar: jar)
        #expect(code == 404 && body.contains("not in a convoy"))
        #expect(PageTests.queueLength(car) == 1)

        // Malformed HTTP and oversized headers: 400, counted; the daemon plays on.
        let raw = Process()
        raw.executableURL = URL(fileURLWithPath: "/bin/bash")
        raw.arguments = ["-c", "exec 3<>/dev/tcp/127.0.0.1/\(port); printf 'NOT HTTP AT ALL\\r\\n\\r\\n' >&3; timeout 5 cat <&3"]
        let rawOut = Pipe()
        raw.standardOutput = rawOut
        try raw.run()
        let rawText = String(decoding: rawOut.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        raw.waitUntilExit()
        #expect(rawText.hasPrefix("HTTP/1.1 400"))
        (code, _, _) = try PageTests.http(base + "/api/state", jar: jar, headers: ["X-Huge: " + String(repeating: "a", count: 100_000)])
        #expect(code == 400)
        let beforeBad = try car.client.status().counters["page.bad_requests"] ?? 0
        #expect(beforeBad >= 4)

        // Guessing: after 5 failures, the 6th attempt (even the right PIN) is held off; counted.
        for _ in 0..<5 {
            (code, _, _) = try PageTests.http(base + "/api/login", method: "POST", json: #"{"pin":"000000"}"#)
            #expect(code == 403)
        }
        (code, body, head) = try PageTests.http(base + "/api/login", method: "POST", json: #"{"pin":"246810"}"#)
        #expect(code == 429)
        #expect(head.lowercased().contains("retry-after"))
        let counters = try car.client.status().counters
        #expect((counters["page.login_failures"] ?? 0) >= 6)
        #expect((counters["page.login_limited"] ?? 0) >= 1)
        #expect((counters["page.unauthorized"] ?? 0) >= 3)
        #expect(car.process?.isRunning == true)
    }

    /// The board file's `[page]`: served on the named interface's address (the loopback here),
    /// with the board's PIN; without `[page]` or `--page-listen` nothing listens.
    @Test func boardFileNamesTheInterface() throws {
        let port = PageTests.freePort()
        let board = Fixtures.tempDir().appendingPathComponent("board.toml")
        try "[page]\nlisten = [\"lo\"]\nport = \(port)\npin = \"135790\"\n".write(to: board, atomically: true, encoding: .utf8)
        let car = Car(args: ["--board", board.path, "--gpsd", "off", "--convoy-port", "0"])
        try car.start()
        let status = try car.client.status()
        #expect(status.page?.pin == "135790")
        #expect(status.page?.urls.contains("http://127.0.0.1:\(port)/") == true)
        var (code, _, _) = try PageTests.http("http://127.0.0.1:\(port)/api/login", method: "POST", json: #"{"pin":"135790"}"#)
        #expect(code == 200)
        _ = car.terminate()

        let plain = Car(args: ["--gpsd", "off", "--convoy-port", "0"])
        try plain.start()
        #expect(try plain.client.status().page == nil)
        (code, _, _) = try PageTests.http("http://127.0.0.1:\(port)/")
        #expect(code == 0)   // nothing listens
    }

    /// Headless Chromium (scripts/page-browser.py): a wrong PIN shown, log in, add from the
    /// library, and a `jamz play` pressed elsewhere shown by the page through its WebSocket
    /// (the page does not poll). Screenshots in .build/page-shots/.
    @Test func chromiumLogsInAddsAndSeesAPressLive() throws {
        let port = PageTests.freePort()
        let car = Car(args: ["--page-listen", "127.0.0.1:\(port)", "--page-pin", "975310", "--gpsd", "off", "--convoy-port", "0"])
        try car.start()
        try car.client.call("import", try musicFolder(["cbr.mp3", "vbr.mp3"]))
        let (status, text) = try PageTests.browser(["http://127.0.0.1:\(port)/", "975310", Binaries.jamz, car.socket, "--rounds", "3",
                                                    "--upload", Fixtures.path("id3v24.mp3"), Fixtures.path("notmp3.mp3")])
        #expect(status == 0)
        #expect(text.contains("wrong PIN refused"))
        #expect(text.contains("jamz play seen live"))
        #expect(text.contains("moved up from the page: ['VBR Tone', 'CBR Tone']") || text.contains("moved up from the page: ['CBR Tone', 'VBR Tone']"))
        #expect(text.contains("removed from the page: ["))
        #expect(text.contains("library now 3 tracks"))
        #expect(text.contains("bad upload: refused: not an MP3"))
        #expect(PageTests.queueLength(car) == 1)
        #expect(FileManager.default.fileExists(atPath: PageTests.shots + "/3-playing.png"))
    }

    /// Uploads over plain HTTP: a real MP3 is imported, a bad one refused with the importer's
    /// reason, one over the limit refused (413), one without a session refused (401); the
    /// library grows only by the good one and no temporary file stays.
    @Test func uploadsAreImportedOrRefused() throws {
        let port = PageTests.freePort()
        let car = Car(args: ["--page-listen", "127.0.0.1:\(port)", "--page-pin", "112233", "--page-max-upload-mb", "1",
                             "--gpsd", "off", "--convoy-port", "0"])
        try car.start()
        let base = "http://127.0.0.1:\(port)"
        let jar = Fixtures.tempDir().appendingPathComponent("jar").path
        var (code, body, _) = try PageTests.http(base + "/api/login", method: "POST", json: #"{"pin":"112233"}"#, jar: jar)
        #expect(code == 200)
        func upload(_ file: String, jar: String?) throws -> (Int, String) {
            var args = ["-s", "-o", "-", "-w", "\n%{http_code}", "-X", "POST", "-H", "Content-Type: audio/mpeg", "--data-binary", "@" + file, base + "/api/upload"]
            if let jar { args += ["-b", jar] }
            let text = try PageTests.curl(args)
            let lines = text.split(separator: "\n")
            return (Int(lines.last ?? "") ?? 0, lines.dropLast().joined(separator: "\n"))
        }
        (code, body) = try upload(Fixtures.path("cbr.mp3"), jar: nil)
        #expect(code == 401)
        (code, body) = try upload(Fixtures.path("cbr.mp3"), jar: jar)
        #expect(code == 200)
        #expect(body.contains("added"))
        (code, body) = try upload(Fixtures.path("notmp3.mp3"), jar: jar)
        #expect(code == 422)
        #expect(body.contains("not an MP3"))
        (code, body) = try upload(Fixtures.path("empty.mp3"), jar: jar)
        #expect(code == 422)
        #expect(body.contains("empty file"))
        let big = Fixtures.tempDir().appendingPathComponent("big.mp3")
        try Data(repeating: 0xFF, count: 3 << 20).write(to: big)
        (code, body) = try upload(big.path, jar: jar)
        #expect(code == 413)
        let cache = try car.client.call("cache")
        #expect(cache.ok)
        #expect(cache.message.hasPrefix("1 track"))
        let left = try FileManager.default.contentsOfDirectory(atPath: car.dataDir + "/uploads")
        #expect(left.isEmpty)
        let counters = try car.client.status().counters
        #expect((counters["page.upload_refused"] ?? 0) >= 3)
        #expect((counters["page.uploads"] ?? 0) == 1)
        #expect(car.process?.isRunning == true)
    }

    /// The hotspot interface gets its address after jamzd started (a car in a network
    /// namespace, its eth0 without an address at first): the kernel's notice makes the page
    /// listen there, `jamz status` shows the address, the page answers from the host.
    @Test(.enabled(if: NetnsLab.available)) func anInterfaceThatGetsItsAddressLaterIsServed() throws {
        try NetnsLab.run("up", "1")
        defer { try? NetnsLab.run("down") }
        func ip(_ args: String...) throws {
            let p = Process()
            p.executableURL = URL(fileURLWithPath: "/usr/sbin/ip")
            p.arguments = args
            try p.run()
            p.waitUntilExit()
            if p.terminationStatus != 0 { throw HarnessError("ip \(args.joined(separator: " ")) failed") }
        }
        try ip("-n", "jamz-car1", "addr", "flush", "dev", "eth0")
        // An address of the interface that cannot be bound yet (here: another program holds
        // the port on it) does not stop the daemon; it is tried again at the next notice.
        try ip("-n", "jamz-car1", "addr", "add", "10.77.0.2/24", "dev", "eth0")
        let holder = Process()
        holder.executableURL = URL(fileURLWithPath: "/usr/sbin/ip")
        holder.arguments = ["netns", "exec", "jamz-car1", "python3", "-c",
                            "import socket,sys; s=socket.socket(); s.bind(('10.77.0.2',8080)); s.listen(); print('held', flush=True); sys.stdin.read()"]
        let held = Pipe(), hold = Pipe()
        holder.standardOutput = held
        holder.standardInput = hold
        try holder.run()
        defer { if holder.isRunning { holder.terminate() } }
        #expect(String(decoding: held.fileHandleForReading.availableData, as: UTF8.self).hasPrefix("held"))
        let board = Fixtures.tempDir().appendingPathComponent("board.toml")
        try "[page]\nlisten = [\"eth0\"]\nport = 8080\npin = \"192837\"\n".write(to: board, atomically: true, encoding: .utf8)
        let car = Car(args: ["--board", board.path, "--gpsd", "off", "--convoy-port", "0"], netns: "jamz-car1")
        try car.start()
        #expect(try car.client.status().page?.urls == [])
        #expect(car.logText.contains("cannot listen on 10.77.0.2:8080 yet"))
        // A second address while the port is still held: its notice makes jamzd look again and
        // try the held one again (listed first, the older address) before it binds the new one.
        try ip("-n", "jamz-car1", "addr", "add", "10.77.0.3/24", "dev", "eth0")
        try waitUntil("the second address is served", timeout: 10) { car.logText.contains("phone page now on 10.77.0.3:8080") }
        #expect(car.logText.components(separatedBy: "cannot listen on 10.77.0.2:8080 yet").count == 2, "\(car.logText)")
        try hold.fileHandleForWriting.close()
        holder.waitUntilExit()
        try ip("-n", "jamz-car1", "addr", "add", "10.77.0.1/24", "dev", "eth0")
        try waitUntil("the page is served on the new address and the freed one", timeout: 10) {
            Set((try? car.client.status().page?.urls) ?? []) == ["http://10.77.0.1:8080/", "http://10.77.0.2:8080/", "http://10.77.0.3:8080/"]
        }
        let (code, body, _) = try PageTests.http("http://10.77.0.1:8080/")
        #expect(code == 200 && body.contains("<title>TrafficJamz</title>"))
        #expect(try PageTests.http("http://10.77.0.2:8080/").0 == 200)
        #expect(car.logText.contains("phone page now on 10.77.0.1:8080"))
        // Gone and back: the same socket serves again, nothing bound twice.
        try ip("-n", "jamz-car1", "addr", "flush", "dev", "eth0")
        try ip("-n", "jamz-car1", "addr", "add", "10.77.0.1/24", "dev", "eth0")
        try waitUntil("served again", timeout: 10) { (try? PageTests.http("http://10.77.0.1:8080/").0) == 200 }
        #expect(!car.logText.contains("cannot listen on 10.77.0.1"))
        #expect(car.terminate() == 0)
    }

    /// Two cars as separate hosts (scripts/netns.sh, run under `flock /tmp/jamz-netns.lock`),
    /// each with its own gpsd fed its part of a route: car 2 leads the convoy, car 1's page (seen
    /// from the host over the bridge) takes control and shows car 2's distance and bearing.
    @Test(.enabled(if: NetnsLab.available)) func chromiumTakesControlAndSeesTheOtherCar() throws {
        try NetnsLab.run("up", "2")
        defer { try? NetnsLab.run("down") }
        let rigs = try (1...2).map { try GPSDRig(log: "convoy-car\($0).nmea", pace: 0.05, netns: "jamz-car\($0)") }
        defer { rigs.forEach { $0.stop() } }
        let cars = (1...2).map { i in
            Car(args: ["--car-name", "car\(i)", "--gpsd", "localhost:\(rigs[i - 1].gpsdPort)"]
                + (i == 1 ? ["--page-listen", "10.77.0.1:8080", "--page-pin", "864200"] : []), netns: "jamz-car\(i)")
        }
        for c in cars { try c.start() }
        let created = try #require(cars[1].json(["group", "create", "Road"]) as? [String: Any])
        let code = try #require(created["code"] as? String)
        #expect(try cars[0].jamz("group", "join", code).0 == 0)
        try waitUntil("car 1 hears car 2", timeout: 15) { ((cars[0].json(["peers"]) as? [Any])?.count ?? 0) == 1 }
        for r in rigs { r.go() }
        let (status, text) = try PageTests.browser(["http://10.77.0.1:8080/", "864200", Binaries.jamz, cars[0].socket, "--convoy", "car2"])
        #expect(status == 0)
        #expect(text.contains("took control: This car is the DJ"))
        #expect(text.contains("other car seen: car2"))
        #expect(text.contains("join QR decodes to: \(code) (shown as text: \(code))"))
        #expect(text.contains("short code on the page: join code: "))
        #expect(try cars[0].client.call(.group(.show), expecting: GroupReport.self).data?.pairing?.contains("join code") == true)
        let group = cars[0].json(["group", "show"]) as? [String: Any]
        #expect(group?["isDJ"] as? Bool == true)

        // The convoy's code (in every convoy car's QR) opens the page too, but cannot move this
        // car to another convoy: the group commands need the car's PIN.
        let jar = Fixtures.tempDir().appendingPathComponent("jar-code").path
        let base = "http://10.77.0.1:8080"
        var (rc, body, _) = try PageTests.http(base + "/api/login", method: "POST", json: #"{"pin":"\#(code)"}"#, jar: jar)
        #expect(rc == 200 && body.contains("convoy-code"), "\(body)")
        (rc, body, _) = try PageTests.http(base + "/api/state", jar: jar)
        #expect(rc == 200 && body.contains(#""access":"convoy-code""#))
        for args in [#"["invite"]"#, #"["join","0000-0000"]"#] {
            (rc, body, _) = try PageTests.http(base + "/api/cmd", method: "POST", json: #"{"cmd":"group","args":\#(args)}"#, jar: jar)
            #expect(rc == 403 && body.contains("needs the car's PIN"), "\(body)")
        }
        // Playback commands go through to the command (which answers 200, or 409 with its reason).
        (rc, _, _) = try PageTests.http(base + "/api/cmd", method: "POST", json: #"{"cmd":"pause","args":[]}"#, jar: jar)
        #expect(rc == 200 || rc == 409)
        #expect((cars[0].json(["group", "show"]) as? [String: Any])?["group"] as? String == group?["group"] as? String)
        // The PIN's session may.
        (rc, body, _) = try PageTests.http(base + "/api/login", method: "POST", json: #"{"pin":"864200"}"#, jar: jar)
        #expect(rc == 200 && body.contains(#""access":"pin""#))
        (rc, body, _) = try PageTests.http(base + "/api/cmd", method: "POST", json: #"{"cmd":"group","args":["invite"]}"#, jar: jar)
        #expect(rc == 200 && body.contains("join code"), "\(body)")
    }
}
