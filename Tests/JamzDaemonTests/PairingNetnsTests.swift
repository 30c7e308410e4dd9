import CLinuxInput
import Foundation
import JamzClient
import JamzCore
import JamzDaemon
@testable import JamzNet
import JamzTestSupport
import Testing

/// Joining without the long code, between real jamzd processes as separate hosts (network
/// namespaces, root): a wrong short code is refused and counted on both cars; a flood of
/// guesses from a host on the network is rate-limited; the right code joins; then the join
/// button pressed on a car (its evdev FIFO, as the board's buttons are fed) and on the DJ's
/// car within 30 s pairs them, and both report the same check word. In the netns suite.
extension ConvoyNetnsTests {
    @Test func shortCodeAndJoinButtonPairCarsAndGuessesAreRefusedCountedAndRateLimited() throws {
        try NetnsLab.run("up", "3")
        defer { try? NetnsLab.run("down") }
        let cars = (1...3).map { i in Car(args: ["--car-name", "car\(i)", "--prompts-dir", Fixtures.path("prompts")], netns: "jamz-car\(i)") }
        let buttons = try ControlsProcessTests.FakeInput(cars[1].dir.appendingPathComponent("buttons").path)
        let board = cars[1].dir.appendingPathComponent("board.toml").path
        try """
            [[button]]
            name = "join"
            input_path = "\(buttons.path)"
            key = "KEY_PROG2"
            """.write(toFile: board, atomically: true, encoding: .utf8)
        cars[1].extraArgs += ["--board", board]
        for c in cars { try c.start() }
        func report(_ c: Car) -> GroupReport? { try? c.client.call(.group(.show), expecting: GroupReport.self).data }
        func counter(_ c: Car, _ name: String) -> Int64 { (try? c.client.status())?.counters[name] ?? 0 }

        try cars[0].client.call("group", "create", "Pairing")
        let invite = try cars[0].client.call("group", "invite").message
        let code = try #require(invite.split(separator: ":").last.map { $0.filter(\.isNumber) })
        #expect(code.count == 6)

        // A wrong code: refused on the joiner (with the reason), counted on both sides.
        let wrong = String(code.map { Character(String(($0.wholeNumberValue! + 1) % 10)) })
        let (status, _, err) = try cars[2].jamz("group", "join", wrong)
        #expect(status != 0 && err.contains("wrong join code"))
        #expect(counter(cars[2], "join.wrong_code") == 1)
        #expect(report(cars[2])?.inGroup == false)
        try waitUntil("the host counts the unconfirmed exchange", timeout: 20) { counter(cars[0], "join.unconfirmed") == 1 }

        // Forty guesses from a host on the bridge in a fraction of a second: one is answered.
        let exchangesBefore = counter(cars[0], "join.exchanges")
        var attacker = Pairing<Int>(me: MemberID(0xBAD), name: "guesser") { n in (0..<n).map { _ in UInt8.random(in: 0...255) } }
        let hellos: [[UInt8]] = try (0..<40).map { g in
            attacker.attempts = [:]   // one hello per guess, no waiting
            let out = try attacker.join(code: String(format: "%06d", g), now: 0)
            guard case .multicast(let b)? = out.first else { throw HarnessError("no hello") }
            return b
        }
        sendUDP(hellos, to: "10.77.0.1")
        try waitUntil("the flood is counted") { counter(cars[0], "join.rate_limited") + counter(cars[0], "join.exchanges") - exchangesBefore == 40 }
        #expect(counter(cars[0], "join.exchanges") - exchangesBefore <= 2)
        #expect(counter(cars[0], "join.rate_limited") >= 38)

        // The right code joins: the same convoy, the same check word on both cars.
        let joined = try cars[2].client.call("group", "join", code).message
        #expect(joined.contains("check words"))
        let (host, guest) = (try #require(report(cars[0])), try #require(report(cars[2])))
        #expect(guest.inGroup && guest.group == host.group && guest.name == "Pairing")
        #expect(guest.checkWord != nil && guest.checkWord == host.checkWord && guest.checkWord?.split(separator: " ").count == 2)
        #expect(counter(cars[0], "join.welcomed") == 1 && counter(cars[2], "join.joined") == 1)

        // The join button on car 2, then `jamz group button` on the DJ's car within 30 s.
        buttons.press(KEY_PROG2)
        try waitUntil("car 2's join button is waiting") { report(cars[1])?.pairing?.contains("join button: waiting") == true }
        sleep(2)
        #expect(try cars[0].client.call("group", "button").message.contains("waiting"))
        // Both cars speak the check words; the DJ's car (the host) waits for its driver's second
        // press before the convoy's key goes.
        try waitUntil("the DJ's car asks for a second press", timeout: 15) {
            report(cars[0])?.pairing?.contains("press join again") == true && report(cars[1])?.checkWord != nil
        }
        let words = report(cars[0])?.checkWord
        #expect(words != nil && report(cars[1])?.checkWord == words)
        sleep(1)
        #expect(report(cars[1])?.inGroup == false)
        try waitUntil("both compare prompts are said") {
            cars[0].logText.contains("spoken prompt: compare(checkWord: \"\(words ?? "")\", confirm: true)")
                && cars[1].logText.contains("spoken prompt: compare(checkWord: \"\(words ?? "")\", confirm: false)")
        }
        #expect(try cars[0].client.call("group", "button").message.contains("check words confirmed"))
        try waitUntil("car 2 joined by button", timeout: 15) { report(cars[1])?.inGroup == true }
        let (dj, pressed) = (try #require(report(cars[0])), try #require(report(cars[1])))
        #expect(pressed.group == dj.group)
        #expect(pressed.checkWord != nil && pressed.checkWord == dj.checkWord && dj.checkWord == words)
        // One exchange each way, counted on the car that gave and the car that took.
        #expect(counter(cars[0], "join.welcomed") == 2 && counter(cars[1], "join.joined") == 1)
        #expect(counter(cars[0], "join.overlap") == 0 && counter(cars[1], "join.overlap") == 0)
        #expect(cars[1].logText.contains("button join short → join"))
        // Then "paired" on the host, "joined the convoy" on the car that joined.
        try waitUntil("the pairing prompts are said") {
            cars[0].logText.contains("spoken prompt: pairedConfirmed") && cars[1].logText.contains("spoken prompt: joinedConvoy")
        }

        // The car that joined by code goes: 15 s later the DJ's car says "car 1 left" (the first
        // car it heard), and `jamz peers` numbers it so.
        let peers = try cars[0].jamz("peers").1
        #expect(peers.contains("car 1: car3") && peers.contains("car 2: car2"), "\(peers)")
        #expect(cars[2].terminate() == 0)
        try waitUntil("car 1 left is said", timeout: 30) { cars[0].logText.contains("spoken prompt: carLeft(1)") }
        #expect(!cars[0].logText.contains("carLeft(2)") && !cars[0].logText.contains("spoken prompt: offline"))
        for c in cars[0...1] { #expect(c.terminate() == 0) }
    }
}
