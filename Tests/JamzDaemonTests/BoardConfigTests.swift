import Foundation
import JamzControls
import JamzCore
import JamzDaemon
import JamzTestSupport
import Testing

@Suite struct BoardConfigTests {
    /// The board files the images ship parse with no problem, and their DJ button takes control
    /// on a long press and is the join button on a double press.
    @Test(arguments: ["qemu-x86_64", "rpi4"]) func shippedBoardFilesParse(board: String) throws {
        let path = Fixtures.repo.appendingPathComponent("board/\(board)/rootfs/etc/jamz/board.toml").path
        let (b, problems) = BoardConfig.parse(toml: try String(contentsOfFile: path, encoding: .utf8), file: path)
        #expect(problems.isEmpty, "\(problems)")
        let dj = try #require(b.buttons.first { $0.name == "dj" })
        #expect(dj.actions.long == .takeControl && dj.actions.double == .join)
    }

    @Test func fullBoardFileParses() {
        let (b, problems) = BoardConfig.parse(toml: """
            [audio]
            output = "alsa:hw:Loopback,0,0"
            latency_ms = 2.0
            [controls]
            long_press_ms = 1500
            grab = true
            double_press_ms = 250
            volume_step = 3
            [[button]]
            name = "dj"
            input = "TrafficJamz Buttons"
            key = "KEY_PROG1"
            double = "next"
            [[button]]
            name = "play"
            input = "TrafficJamz Buttons"
            key = "KEY_PLAYPAUSE"
            [[button]]
            name = "wheel_next"
            gpio = "NEXT_BTN"
            active_low = true
            debounce_ms = 20
            short = "next"
            long = "volume_step:-10"
            [[encoder]]
            name = "volume"
            gpio_a = "ENC_A"
            gpio_b = "ENC_B"
            steps_per_detent = 2
            [[encoder]]
            name = "knob"
            input = "rotary@0"
            axis = "REL_X"
            action = "next"
            [ignition]
            input = "TrafficJamz ACC"
            switch = "SW_DOCK"
            grace_s = 90
            power_hold_gpio = "PWR_HOLD"
            poweroff_command = "/sbin/poweroff"
            """)
        #expect(problems == [])
        #expect(b.output == "alsa:hw:Loopback,0,0" && b.latencyMs == 2.0)
        #expect(b.longPressMs == 1500 && b.doublePressMs == 250 && b.volumeStep == 3 && b.grabInputs)
        #expect(b.buttons.map(\.name) == ["dj", "play", "wheel_next"])
        #expect(b.buttons[0].actions == ButtonActions(long: .takeControl, double: .next))
        #expect(b.buttons[0].key == InputCodes.keys["KEY_PROG1"])
        #expect(b.buttons[1].actions.short == .playPause)
        var gpio = GPIOLineSpec(lineName: "NEXT_BTN")
        gpio.activeLow = true
        gpio.debounceMicros = 20_000
        #expect(b.buttons[2].input == .gpio(gpio))
        #expect(b.buttons[2].actions == ButtonActions(short: .next, long: .volumeStep(-10)))
        #expect(b.encoders[0].stepsPerDetent == 2 && b.encoders[0].action == .volumeStep(3))
        if case .quadrature(let a, let bb) = b.encoders[0].kind { #expect(a.lineName == "ENC_A" && bb.lineName == "ENC_B") } else { Issue.record("not quadrature") }
        #expect(b.encoders[1].kind == .relative(.evdev(name: "rotary@0", path: nil), axis: InputCodes.relAxes["REL_X"]!))
        #expect(b.encoders[1].stepsPerDetent == 1 && b.encoders[1].action == .next)
        #expect(b.ignition?.input == .evdev(name: "TrafficJamz ACC", path: nil))
        #expect(b.ignition?.switchCode == InputCodes.switches["SW_DOCK"])
        #expect(b.ignition?.graceSeconds == 90 && b.ignition?.powerHold?.lineName == "PWR_HOLD")
        #expect(b.ignition?.poweroffCommand == "/sbin/poweroff")
    }

    @Test func eachProblemIsReportedAndTheRestWorks() {
        let (b, problems) = BoardConfig.parse(toml: """
            colour = "red"
            [controls]
            long_press_ms = 5
            [[button]]
            name = "a"
            input = "Buttons"
            key = "KEY_BOGUS"
            [[button]]
            name = "b"
            input = "Buttons"
            key = "KEY_NEXTSONG"
            short = "explode"
            wobble = 1
            [[button]]
            input = "Buttons"
            key = "KEY_MEDIA"
            [[button]]
            name = "b"
            gpio = "X"
            [[button]]
            name = "c"
            chip = "gpiochip0"
            [ignition]
            input = "ACC"
            switch = "SW_NOPE"
            """, file: "b.toml")
        #expect(b.buttons.map(\.name) == ["b"])
        #expect(b.buttons[0].actions.short == .next)       // the bad action keeps the default
        #expect(b.ignition == nil)
        #expect(b.longPressMs == 1000)
        let expected = [
            "b.toml: colour: unknown section (ignored)",
            "b.toml: controls.long_press_ms: expected an integer in 200...10000",
            "b.toml: button #1: \"a\": unknown key \"KEY_BOGUS\"",
            "b.toml: button #2: short = \"explode\": unknown action",
            "b.toml: button #2: wobble: unknown setting (ignored)",
            "b.toml: button #3: needs a name (left out)",
            "b.toml: button #4: name \"b\" is used twice (left out)",
            "b.toml: button #5: chip and line go together",
            "b.toml: ignition: unknown switch \"SW_NOPE\"",
        ]
        for e in expected { #expect(problems.contains { $0.hasPrefix(e) }, "missing: \(e)\nin: \(problems)") }
        #expect(problems.count == expected.count + 1)       // + "c" needs an input
    }

    @Test func notTOMLIsOneProblem() {
        let (b, problems) = BoardConfig.parse(toml: "[[button]\nname=", file: "x")
        #expect(b.buttons.isEmpty && problems.count == 1 && problems[0].hasPrefix("x is not valid TOML"))
    }

    @Test func configNamesTheBoardAndTheBoardOverridesAudio() throws {
        var c = DaemonConfig()
        #expect(c.apply(toml: "board = \"/etc/jamz/board.toml\"") == [])
        #expect(c.boardPath == "/etc/jamz/board.toml")
        c.loadBoard("/nonexistent/board.toml")
        #expect(c.board == nil && c.boardProblems.count == 1 && c.boardProblems[0].contains("cannot read board file"))
    }
}

@Suite struct BoardPageTests {
    @Test func pageSectionParsesAndBadValuesAreReported() {
        var (b, problems) = BoardConfig.parse(toml: """
            [page]
            listen = ["wlan1", "eth0"]
            port = 80
            pin = "012345"
            """)
        #expect(problems.isEmpty)
        #expect(b.pageInterfaces == ["wlan1", "eth0"])
        #expect(b.pagePort == 80)
        #expect(b.pagePin == "012345")
        (b, problems) = BoardConfig.parse(toml: """
            [page]
            listen = "wlan1"
            port = 0
            pin = 12345
            colour = "red"
            """)
        #expect(problems.count == 4)
        #expect(b.pageInterfaces.isEmpty && b.pagePort == 8080 && b.pagePin == nil)
    }
}
