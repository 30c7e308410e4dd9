import CLinuxInput
import Foundation
import JamzClient
import JamzCore
import JamzDaemon
import JamzTestSupport
import Testing

/// jamzd with a board file whose inputs are FIFOs (the documented `input_path` hook) fed with
/// real `struct input_event` records: buttons, the DJ's long press, the ignition.
@Suite(.serialized) struct ControlsProcessTests {
    /// A FIFO standing in for an evdev device: writes real struct input_event records.
    final class FakeInput {
        let path: String
        private var fd: Int32 = -1
        init(_ path: String) throws {
            self.path = path
            guard mkfifo(path, 0o600) == 0 else { throw HarnessError("mkfifo \(path): \(errno)") }
        }
        /// Opens for writing (jamzd holds the FIFO open read-write, so this does not block once it runs).
        func send(type: Int32, code: Int32, value: Int32) {
            if fd < 0 { fd = open(path, O_WRONLY | O_NONBLOCK) }
            var rec = [UInt8](repeating: 0, count: jamz_input_event_size() * 2)
            jamz_input_event_encode(&rec, 0, 0, UInt16(type), UInt16(code), value)
            rec.withUnsafeMutableBytes { b in
                jamz_input_event_encode(b.baseAddress! + jamz_input_event_size(), 0, 0, UInt16(EV_SYN), 0, 0)
            }
            _ = rec.withUnsafeBytes { write(fd, $0.baseAddress!, $0.count) }
        }
        /// A human press: a pause first (an edge within the 10 ms debounce of the last one is
        /// bounce and dropped), then held for `seconds`.
        func press(_ key: Int32, hold seconds: Double = 0.08) {
            usleep(150_000)
            send(type: EV_KEY, code: key, value: 1)
            usleep(UInt32(seconds * 1e6))
            send(type: EV_KEY, code: key, value: 0)
        }
        /// One GPIO edge as a `struct gpio_v2_line_event`.
        func edge(rising: Bool) {
            if fd < 0 { fd = open(path, O_WRONLY | O_NONBLOCK) }
            var rec = [UInt8](repeating: 0, count: jamz_gpio_v2_line_event_size())
            jamz_gpio_event_encode(&rec, 0, rising ? jamz_gpio_v2_line_event_rising() : jamz_gpio_v2_line_event_falling(), 0, 1)
            _ = rec.withUnsafeBytes { write(fd, $0.baseAddress!, $0.count) }
        }
        deinit { if fd >= 0 { close(fd) } }
    }

    func playing(_ car: Car) throws {
        try car.client.call("import", try musicFolder(["long65.mp3"]))
        try car.client.call("add", "long")
        try car.client.call("play")
        try car.client.call("seek", "10")
    }

    @Test func shortPressTogglesPauseAndLongDJPressTakesControl() throws {
        let car = Car()
        let buttons = try FakeInput(car.dir.appendingPathComponent("buttons").path)
        let gpio = try FakeInput(car.dir.appendingPathComponent("gpio").path)
        let encA = try FakeInput(car.dir.appendingPathComponent("enc-a").path)
        let encB = try FakeInput(car.dir.appendingPathComponent("enc-b").path)
        let board = car.dir.appendingPathComponent("board.toml").path
        try """
            [[button]]
            name = "play"
            input_path = "\(buttons.path)"
            key = "KEY_PLAYPAUSE"
            [[button]]
            name = "dj"
            input_path = "\(buttons.path)"
            key = "KEY_PROG1"
            [[button]]
            name = "bogus"
            input_path = "\(buttons.path)"
            key = "KEY_BOGUS"
            [[button]]
            name = "missing"
            input = "No Such Device"
            key = "KEY_NEXTSONG"
            [[button]]
            name = "wheel"
            gpio_path = "\(gpio.path)"
            short = "volume_down"
            [[encoder]]
            name = "dial"
            gpio_a_path = "\(encA.path)"
            gpio_b_path = "\(encB.path)"
            steps_per_detent = 4
            action = "volume_step:1"
            [[encoder]]
            name = "knob"
            input_path = "\(buttons.path)"
            axis = "REL_DIAL"
            action = "volume_step:2"
            """.write(toFile: board, atomically: true, encoding: .utf8)
        car.extraArgs = ["--board", board]
        try car.start()
        do { try buttonsScenario(car, buttons, gpio, (encA, encB)) } catch { print(car.logText.suffix(4000)); throw error }
        #expect(car.terminate() == 0)
    }

    func buttonsScenario(_ car: Car, _ buttons: FakeInput, _ gpio: FakeInput, _ enc: (a: FakeInput, b: FakeInput)) throws {
        // The bad entry is reported and counted; the missing device is reported; the rest works.
        var s = try car.client.status()
        #expect(s.counters["controls.board_errors"] == 1)
        #expect(car.logText.contains("unknown key \"KEY_BOGUS\""))
        let devices = s.controls?.devices ?? []
        #expect(devices.count == 5)
        try waitUntil("the FIFO input is open and the missing device reported") {
            let d = (try? car.client.status())?.controls?.devices ?? []
            return d.first { $0.device.contains("buttons") }?.state == "open" && d.first { $0.device.contains("No Such Device") }?.state == "missing"
        }
        #expect(car.logText.contains("input \"No Such Device\" not found"))

        try playing(car)
        #expect(try car.client.status().state == "playing")
        buttons.press(KEY_PLAYPAUSE)
        try waitUntil("a short press pauses") { (try? car.client.status().state) == "paused" }
        buttons.press(KEY_PLAYPAUSE)
        try waitUntil("a short press plays again") { (try? car.client.status().state) == "playing" }
        s = try car.client.status()
        #expect(s.controls?.lastGesture == "play short → play_pause")

        // The encoder: two detents clockwise on REL_DIAL, one back: +2 × 2 − 2.
        try car.client.call("volume", "50")
        buttons.send(type: EV_REL, code: REL_DIAL, value: 2)
        try waitUntil("the knob turns the volume up") { (try? car.client.status().volume) == 54 }
        buttons.send(type: EV_REL, code: REL_DIAL, value: -1)
        try waitUntil("and down") { (try? car.client.status().volume) == 52 }
        // A GPIO button (gpio_v2_line_event records): rising = pressed, falling = released.
        gpio.edge(rising: true)
        usleep(80_000)
        gpio.edge(rising: false)
        try waitUntil("the GPIO button turns the volume down") { (try? car.client.status().volume) == 47 }
        // A quadrature encoder on two GPIO lines: clockwise (A leads) 00 → 10 → 11 → 01 → 00 is
        // one detent, twice; then once counter-clockwise.
        for _ in 0..<2 {
            enc.a.edge(rising: true); usleep(20_000)
            enc.b.edge(rising: true); usleep(20_000)
            enc.a.edge(rising: false); usleep(20_000)
            enc.b.edge(rising: false); usleep(20_000)
        }
        try waitUntil("the dial turns the volume up two detents") { (try? car.client.status().volume) == 49 }
        enc.b.edge(rising: true); usleep(20_000)
        enc.a.edge(rising: true); usleep(20_000)
        enc.b.edge(rising: false); usleep(20_000)
        enc.a.edge(rising: false)
        try waitUntil("and back one") { (try? car.client.status().volume) == 48 }

        // Not in a convoy: the long press asks to take control and is refused, logged and counted.
        buttons.press(KEY_PROG1, hold: 1.3)
        try waitUntil("the long press is refused") { (try? car.client.status())?.counters["controls.refused"] == 1 }
        #expect(car.logText.contains("button dj long → take_control refused: not in a convoy"))
        #expect(try car.client.status().state == "playing")    // the music goes on
        // A short press on the DJ button does nothing (no short action on it by default).
        buttons.press(KEY_PROG1)
        try waitUntil("the gesture shows") { (try? car.client.status())?.controls?.lastGesture == "dj short → none" }

        // In a convoy the long press goes to take-control (here: this car is already the DJ).
        try car.client.call("group", "create", "test")
        buttons.press(KEY_PROG1, hold: 1.3)
        try waitUntil("the long press takes control") { car.logText.contains("button dj long → take_control: this car is already the DJ") }
    }

    @Test func accOffFadesSavesAndPowersOffAfterTheGraceAndABlipResumes() throws {
        let car = Car()
        let acc = try FakeInput(car.dir.appendingPathComponent("acc").path)
        let marker = car.dir.appendingPathComponent("powered-off").path
        let board = car.dir.appendingPathComponent("board.toml").path
        try """
            [ignition]
            input_path = "\(acc.path)"
            switch = "SW_DOCK"
            grace_s = 2
            poweroff_command = "echo off >> '\(marker)'"
            """.write(toFile: board, atomically: true, encoding: .utf8)
        car.extraArgs = ["--board", board]
        try car.start()
        try playing(car)
        acc.send(type: EV_SW, code: SW_DOCK, value: 1)
        try waitUntil("ACC is on") { (try? car.client.status())?.controls?.acc == "on" }

        // A blip: off, then on again well within the grace.
        acc.send(type: EV_SW, code: SW_DOCK, value: 0)
        try waitUntil("ACC off pauses") { (try? car.client.status().state) == "paused" }
        let saved = try PowerLossTests.inspect(car.db)
        #expect(saved.playing)                 // saved as playing: the next start resumes
        #expect(saved.frame >= 10 * 44_100)      // where it was paused (from the seek on)
        acc.send(type: EV_SW, code: SW_DOCK, value: 1)
        try waitUntil("ACC on resumes") { (try? car.client.status().state) == "playing" }
        #expect(car.logText.contains("ACC on again within the grace period: resuming"))
        usleep(2_500_000)
        #expect(!FileManager.default.fileExists(atPath: marker))   // no power-off after a blip

        // Off for longer than the grace: fade, save, then the power-off command.
        acc.send(type: EV_SW, code: SW_DOCK, value: 0)
        try waitUntil("ACC off pauses") { (try? car.client.status().state) == "paused" }
        let s = try car.client.status()
        #expect(s.controls?.acc == "off")
        #expect(s.controls?.powerOffIn != nil)
        try waitUntil("the power-off command ran", timeout: 15) { FileManager.default.fileExists(atPath: marker) }
        #expect(try String(contentsOfFile: marker, encoding: .utf8) == "off\n")
        let after = try car.client.status()
        #expect(after.counters["controls.acc_off"] == 2)
        #expect(after.counters["controls.acc_resumes"] == 1)
        #expect(after.counters["controls.poweroffs"] == 1)
        #expect(try PowerLossTests.inspect(car.db).playing)
        #expect(car.terminate() == 0)

        // The next start (ACC on) resumes where it was.
        try car.start()
        #expect(try car.client.status().state == "playing")
        #expect(car.terminate() == 0)
    }
}

/// The DJ button across two cars (network namespaces, root): a long press on a follower's DJ
/// button takes control of the convoy; a play/pause press on a follower is refused by the DJ
/// rules, logged and counted, and the music goes on. In the netns suite, so it never runs at
/// the same time as the other tests that set the namespaces up.
extension ConvoyNetnsTests {
    @Test func longPressOnAFollowersDJButtonTakesControl() throws {
        try NetnsLab.run("up", "2")
        defer { try? NetnsLab.run("down") }
        let dj = Car(args: ["--car-name", "car1"], netns: "jamz-car1")
        let follower = Car(args: ["--car-name", "car2", "--clock-offset-ms=700"], netns: "jamz-car2")
        let buttons = try ControlsProcessTests.FakeInput(follower.dir.appendingPathComponent("buttons").path)
        let board = follower.dir.appendingPathComponent("board.toml").path
        try """
            [[button]]
            name = "dj"
            input_path = "\(buttons.path)"
            key = "KEY_PROG1"
            [[button]]
            name = "play"
            input_path = "\(buttons.path)"
            key = "KEY_PLAYPAUSE"
            """.write(toFile: board, atomically: true, encoding: .utf8)
        follower.extraArgs += ["--board", board]
        for c in [dj, follower] {
            try c.start()
            try c.client.call("import", try musicFolder(["long65.mp3"]))
        }
        let created = try dj.client.call("group", "create", "Buttons")
        let code = try #require(created.data?["code"]?.string)
        try follower.client.call("group", "join", code)
        try dj.client.call("add", "long")
        try dj.client.call("play")
        let djID = try #require(try dj.client.call(.group(.show), expecting: GroupReport.self).data?.member)
        let followerID = try #require(try follower.client.call(.group(.show), expecting: GroupReport.self).data?.member)
        try waitUntil("the follower plays with the DJ", timeout: 20) {
            (try? follower.client.status().state) == "playing"
                && (try? follower.client.call(.group(.show), expecting: GroupReport.self))?.data?.dj == djID
        }
        // A follower's play/pause is the DJ's business: refused, logged, counted, music goes on.
        buttons.press(KEY_PLAYPAUSE)
        try waitUntil("the follower's play/pause is refused") { (try? follower.client.status())?.counters["controls.refused"] == 1 }
        #expect(follower.logText.contains("button play short → play_pause refused"))
        #expect(try follower.client.status().state == "playing")
        // The long press on the follower's DJ button: it becomes the DJ, in both cars' eyes.
        try waitUntil("the follower has measured the DJ's clock", timeout: 15) {
            ((try? follower.client.call(.peers, expecting: [PeerReport].self))?.data ?? []).contains { $0.offsetMs != nil }
        }
        buttons.press(KEY_PROG1, hold: 1.3)
        try waitUntil("both cars see the follower as DJ", timeout: 10) {
            [dj, follower].allSatisfy { c in (try? c.client.call(.group(.show), expecting: GroupReport.self))?.data?.dj == followerID }
        }
        #expect(follower.logText.contains("button dj long → take_control: this car is the DJ now"))
        #expect(try dj.client.status().state == "playing")
        #expect(follower.terminate() == 0)
        #expect(dj.terminate() == 0)
    }
}
