import JamzCore
import Testing

/// Buttons in virtual time: every time below is made up, nothing reads a clock.
@Suite struct GestureTests {
    static let ms: Nanos = 1_000_000

    func recognizer(_ a: ButtonActions) -> GestureRecognizer { GestureRecognizer(settings: GestureSettings(for: a)) }

    @Test func shortPressFiresAtReleaseWithoutWaitingWhenNoDoubleIsMapped() {
        var r = recognizer(ButtonActions(short: .playPause))
        #expect(r.press(at: 1000 * Self.ms) == nil)
        #expect(r.nextDeadline == nil)           // no long action: nothing to wait for
        #expect(r.release(at: 1080 * Self.ms) == .short)
        #expect(r.nextDeadline == nil)
    }

    @Test func longPressFiresAtTheThresholdWhileHeldAndNotAgainAtRelease() {
        var r = recognizer(ButtonActions(short: .playPause, long: .takeControl))
        _ = r.press(at: 0)
        #expect(r.nextDeadline == 1000 * Self.ms)
        #expect(r.tick(at: 999 * Self.ms) == nil)
        #expect(r.tick(at: 1000 * Self.ms) == .long)
        #expect(r.tick(at: 1500 * Self.ms) == nil)
        #expect(r.release(at: 3000 * Self.ms) == nil)
        // The next short press is short again.
        _ = r.press(at: 4000 * Self.ms)
        #expect(r.release(at: 4100 * Self.ms) == .short)
    }

    @Test func aLongPressNotTickedYetStillCountsAsLongAtRelease() {
        var r = recognizer(ButtonActions(short: .playPause, long: .takeControl))
        _ = r.press(at: 0)
        #expect(r.release(at: 1200 * Self.ms) == .long)
    }

    @Test func withoutALongActionAHoldIsAShortPress() {
        var r = recognizer(ButtonActions(short: .next))
        _ = r.press(at: 0)
        #expect(r.tick(at: 5000 * Self.ms) == nil)
        #expect(r.release(at: 5000 * Self.ms) == .short)
    }

    @Test func longThresholdIsASetting() {
        var s = GestureSettings(for: ButtonActions(long: .takeControl), longPress: 2000 * Self.ms)
        s.debounce = 0
        var r = GestureRecognizer(settings: s)
        _ = r.press(at: 0)
        #expect(r.tick(at: 1500 * Self.ms) == nil)
        #expect(r.tick(at: 2000 * Self.ms) == .long)
    }

    @Test func doublePressOnlyWhenMapped() {
        var r = recognizer(ButtonActions(short: .playPause, double: .next))
        _ = r.press(at: 0)
        #expect(r.release(at: 100 * Self.ms) == nil)       // waits for a second press
        #expect(r.nextDeadline == 400 * Self.ms + 1)
        _ = r.press(at: 250 * Self.ms)
        #expect(r.release(at: 330 * Self.ms) == .double)
        #expect(r.tick(at: 2000 * Self.ms) == nil)          // the first press is not also a short one
    }

    @Test func singlePressOnADoubleButtonIsShortAfterTheWindow() {
        var r = recognizer(ButtonActions(short: .playPause, double: .next))
        _ = r.press(at: 0)
        #expect(r.release(at: 100 * Self.ms) == nil)
        #expect(r.tick(at: 300 * Self.ms) == nil)
        #expect(r.tick(at: 401 * Self.ms) == .short)
        #expect(r.tick(at: 900 * Self.ms) == nil)
    }

    @Test func aLatePressAfterAnUntickedWindowFiresTheShortFirst() {
        var r = recognizer(ButtonActions(short: .playPause, double: .next))
        _ = r.press(at: 0)
        _ = r.release(at: 100 * Self.ms)
        #expect(r.press(at: 2000 * Self.ms) == .short)
        #expect(r.release(at: 2100 * Self.ms) == nil)       // a new first press
        #expect(r.tick(at: 2500 * Self.ms) == .short)
    }

    @Test func bounceIsIgnoredAndCounted() {
        var r = recognizer(ButtonActions(short: .playPause))
        _ = r.press(at: 0)
        #expect(r.release(at: 2 * Self.ms) == nil)          // bounce: 2 ms after the press
        _ = r.press(at: 4 * Self.ms)                        // same state: ignored
        #expect(r.release(at: 120 * Self.ms) == .short)
        #expect(r.release(at: 123 * Self.ms) == nil)        // repeated release
        #expect(r.press(at: 125 * Self.ms) == nil)          // bounce after the release
        #expect(r.isPressed == false)
        #expect(r.ignoredEdges == 4)
    }

    @Test func secondPressHeldLongIsALongPressNotADouble() {
        var r = recognizer(ButtonActions(short: .playPause, long: .takeControl, double: .next))
        _ = r.press(at: 0)
        _ = r.release(at: 100 * Self.ms)
        _ = r.press(at: 200 * Self.ms)
        #expect(r.tick(at: 1200 * Self.ms) == .long)
        #expect(r.release(at: 1300 * Self.ms) == nil)
    }

    @Test func actionNamesRoundTripAndBadOnesAreRejected() {
        for a: ButtonAction in [.playPause, .next, .previous, .volumeUp, .volumeDown, .volumeStep(-3), .takeControl, .none] {
            #expect(ButtonAction(name: a.description) == a)
        }
        #expect(ButtonAction(name: "prev") == .previous)
        #expect(ButtonAction(name: "explode") == nil)
        #expect(ButtonAction(name: "volume_step:0") == nil)
        #expect(ButtonAction(name: "volume_step:x") == nil)
    }

    @Test func defaultMapIsMediaKeysAndLongDJTakesControl() {
        #expect(ButtonActions.defaults(name: "pp", key: "KEY_PLAYPAUSE") == ButtonActions(short: .playPause))
        #expect(ButtonActions.defaults(name: "n", key: "KEY_NEXTSONG").short == .next)
        #expect(ButtonActions.defaults(name: "p", key: "KEY_PREVIOUSSONG").short == .previous)
        #expect(ButtonActions.defaults(name: "u", key: "KEY_VOLUMEUP").short == .volumeUp)
        #expect(ButtonActions.defaults(name: "d", key: "KEY_VOLUMEDOWN").short == .volumeDown)
        #expect(ButtonActions.defaults(name: "dj", key: "KEY_PROG1") == ButtonActions(long: .takeControl))
        #expect(ButtonActions.defaults(name: "next", key: nil).short == .next)
    }

    @Test func quadratureDecodesBothDirectionsAndDropsMissedEdges() {
        var q = QuadratureDecoder(stepsPerDetent: 4)
        #expect(q.update(a: false, b: false) == 0)
        // Clockwise: 00 → 10 → 11 → 01 → 00 is one detent.
        #expect(q.update(a: true, b: false) == 0)
        #expect(q.update(a: true, b: true) == 0)
        #expect(q.update(a: false, b: true) == 0)
        #expect(q.update(a: false, b: false) == 1)
        // Counter-clockwise twice.
        var total = 0
        for _ in 0..<2 {
            total += q.update(a: false, b: true)
            total += q.update(a: true, b: true)
            total += q.update(a: true, b: false)
            total += q.update(a: false, b: false)
        }
        #expect(total == -2)
        // A missed edge (both lines change) is dropped and counted.
        #expect(q.update(a: true, b: true) == 0)
        #expect(q.invalidTransitions == 1)
        // Contact chatter back and forth moves nothing.
        var q2 = QuadratureDecoder(stepsPerDetent: 4)
        _ = q2.update(a: false, b: false)
        var chatter = 0
        for _ in 0..<10 { chatter += q2.update(a: true, b: false); chatter += q2.update(a: false, b: false) }
        #expect(chatter == 0)
    }

    @Test func quadratureWithOneStepPerDetent() {
        var q = QuadratureDecoder(stepsPerDetent: 1)
        _ = q.update(a: false, b: false)
        #expect(q.update(a: true, b: false) == 1)
        #expect(q.update(a: false, b: false) == -1)
    }

    @Test func relativeEncoderAccumulatesCounts() {
        var r = RelativeEncoder(countsPerStep: 2)
        #expect(r.update(1) == 0)
        #expect(r.update(1) == 1)
        #expect(r.update(-3) == -1)
        #expect(r.update(-1) == -1)
        var one = RelativeEncoder()
        #expect(one.update(-2) == -2)
    }
}

@Suite struct IgnitionPolicyTests {
    static let s: Nanos = nanosPerSecond

    @Test func accOffFadesAndSavesThenPowersOffAfterTheGrace() {
        var p = IgnitionPolicy(grace: 60 * Self.s)
        #expect(p.on(at: 0) == nil)
        #expect(p.accOn == true)
        #expect(p.off(at: 100 * Self.s) == .fadeOutAndSave)
        #expect(p.off(at: 101 * Self.s) == nil)             // repeated level
        #expect(p.nextDeadline == 160 * Self.s)
        #expect(p.tick(at: 159 * Self.s) == nil)
        #expect(p.tick(at: 160 * Self.s) == .powerOff)
        #expect(p.tick(at: 161 * Self.s) == nil)            // once
        #expect(p.state == .poweringOff)
    }

    @Test func aBlipShorterThanTheGraceResumesAtOnce() {
        var p = IgnitionPolicy()
        _ = p.on(at: 0)
        #expect(p.off(at: 10 * Self.s) == .fadeOutAndSave)
        #expect(p.on(at: 10 * Self.s + 400_000_000) == .resume)
        #expect(p.nextDeadline == nil)
        #expect(p.tick(at: 200 * Self.s) == nil)           // no power-off later
        #expect(p.blips == 1)
    }

    @Test func startingWithAccOffCountsAsOff() {
        var p = IgnitionPolicy(grace: 2 * Self.s)
        #expect(p.accOn == nil)
        #expect(p.off(at: 0) == .fadeOutAndSave)
        #expect(p.tick(at: 2 * Self.s) == .powerOff)
    }

    @Test func accBackAfterPowerOffWasRequestedResumesWhileStillRunning() {
        var p = IgnitionPolicy(grace: 2 * Self.s)
        _ = p.on(at: 0)
        _ = p.off(at: 1 * Self.s)
        #expect(p.tick(at: 3 * Self.s) == .powerOff)
        #expect(p.on(at: 4 * Self.s) == .resume)
        #expect(p.accOn == true)
    }
}
