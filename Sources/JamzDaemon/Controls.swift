import Foundation
import JamzAudio
import JamzControls
import JamzCore
import JamzStore
import Logging

/// Buttons, encoders and the ignition of the board file: starts one reader per device, runs
/// the gesture recognizers and the ignition policy on the daemon's clock, and turns gestures
/// into the same control commands `jamz` sends (so the convoy's DJ rules apply to a button as
/// to the CLI; a refused one is logged and counted, `controls.refused`).
actor Controls {
    /// The reserved event name of the ACC sense.
    static let ignitionName = "ignition"

    let board: BoardConfig
    let commands: Commands
    let player: Player
    let clock: SystemClock
    let counters: Counters
    let logger: Logger
    nonisolated let sources: [(source: any ButtonSource, serves: [String])]

    private var recognizers: [String: GestureRecognizer] = [:]
    private var actions: [String: ButtonActions] = [:]
    private var encoders: [String: BoardConfig.Encoder] = [:]
    private var relative: [String: RelativeEncoder] = [:]
    private var quadrature: [String: (decoder: QuadratureDecoder, a: Bool, b: Bool)] = [:]
    private var ignition: IgnitionPolicy?
    private var powerHold: GPIOOutputLine?
    private var lastGesture: String?
    private var lastResult: String?
    /// Rung after each event: a press may have set a deadline (long press, double-press window,
    /// the ACC grace) sooner than the one the loop sleeps towards.
    private nonisolated let wakeup = Doorbell()

    init(board: BoardConfig, commands: Commands, player: Player, clock: SystemClock, counters: Counters, logger: Logger) {
        self.board = board; self.commands = commands; self.player = player; self.clock = clock
        self.counters = counters; self.logger = logger
        let rc = ReaderClock(now: { clock.now() }, fromRaw: { clock.fromRaw($0) })

        // One evdev reader per device (name or path), serving every button/encoder/switch on it.
        var evdev: [EvdevReader.Config] = []
        var serves: [[String]] = []
        func device(_ name: String?, _ path: String?) -> Int {
            if let i = evdev.firstIndex(where: { $0.deviceName == name && $0.path == path }) { return i }
            var c = EvdevReader.Config(deviceName: name, path: path)
            c.grab = board.grabInputs
            evdev.append(c); serves.append([])
            return evdev.count - 1
        }
        var out: [(any ButtonSource, [String])] = []
        let ms: Nanos = 1_000_000
        for b in board.buttons {
            var s = GestureSettings(for: b.actions, longPress: Nanos(board.longPressMs) * ms, debounce: Nanos(b.debounceMs) * ms)
            s.doubleWindow = Nanos(board.doublePressMs) * ms
            recognizers[b.name] = GestureRecognizer(settings: s)
            actions[b.name] = b.actions
            switch b.input {
            case .evdev(let n, let p):
                let i = device(n, p)
                evdev[i].keys[b.key ?? -1] = b.name
                serves[i].append(b.name)
            case .gpio(let spec):
                out.append((GPIOLineReader(name: b.name, spec: spec, clock: rc, logger: logger), [b.name]))
            }
        }
        for e in board.encoders {
            encoders[e.name] = e
            switch e.kind {
            case .relative(.evdev(let n, let p), let axis):
                let i = device(n, p)
                evdev[i].rel[axis] = e.name
                serves[i].append(e.name)
                relative[e.name] = RelativeEncoder(countsPerStep: e.stepsPerDetent)
            case .relative(.gpio, _):
                break
            case .quadrature(let a, let b):
                // Both lines start as low until their levels are read (each line reports its
                // level when it opens): a constant phase offset at most, never a lost detent.
                var d = QuadratureDecoder(stepsPerDetent: e.stepsPerDetent)
                _ = d.update(a: false, b: false)
                quadrature[e.name] = (d, false, false)
                out.append((GPIOLineReader(name: "\(e.name)#a", spec: a, reportsLevel: true, clock: rc, logger: logger), [e.name]))
                out.append((GPIOLineReader(name: "\(e.name)#b", spec: b, reportsLevel: true, clock: rc, logger: logger), [e.name]))
            }
        }
        if let ign = board.ignition {
            ignition = IgnitionPolicy(grace: Nanos(ign.graceSeconds * 1e9))
            switch ign.input {
            case .evdev(let n, let p):
                let i = device(n, p)
                evdev[i].switches[ign.switchCode ?? -1] = Controls.ignitionName
                serves[i].append(Controls.ignitionName)
            case .gpio(let spec):
                out.append((GPIOLineReader(name: Controls.ignitionName, spec: spec, reportsLevel: true, clock: rc, logger: logger), [Controls.ignitionName]))
            }
        }
        for (i, c) in evdev.enumerated() { out.insert((EvdevReader(config: c, clock: rc, logger: logger), serves[i]), at: i) }
        sources = out.map { (source: $0.0, serves: $0.1) }
    }

    /// Reads and acts until cancelled; then stops the readers.
    func run() async {
        if let spec = board.ignition?.powerHold {
            do {
                powerHold = try GPIOOutputLine(spec: spec)
                logger.info("power hold \(spec) held on (\(powerHold!.at))")
            } catch {
                counters.add("controls.board_errors")
                logger.error("power hold \(spec): \(error); power-off will use the command instead")
            }
        }
        let (events, cont) = AsyncStream<ControlEvent>.makeStream(bufferingPolicy: .bufferingNewest(256))
        for s in sources { s.source.start { cont.yield($0) } }
        logger.info("controls: \(board.buttons.count) button(s), \(board.encoders.count) encoder(s), ignition \(board.ignition.map { "\($0.input)" } ?? "none") on \(sources.count) device(s)")
        await withDiscardingTaskGroup { group in
            group.addTask {
                for await e in events {
                    await self.handle(e)
                    self.wakeup.ring()
                }
            }
            group.addTask { await runDue(clock: self.clock, doorbell: self.wakeup) { await self.tick() } }
            while !Task.isCancelled { try? await Task.sleep(for: .seconds(3600)) }
            cont.finish()
            group.cancelAll()
        }
        for s in sources { s.source.stop() }
    }

    // MARK: events

    func handle(_ e: ControlEvent) async {
        logger.trace("control event \(e.name) \(e.change) at \(e.time)")
        if e.name == Controls.ignitionName {
            guard var p = ignition else { return }
            let a = e.change == .pressed ? p.on(at: e.time) : p.off(at: e.time)
            ignition = p
            if let a { await perform(a) }
            return
        }
        if case .relative(let v) = e.change, var r = relative[e.name] {
            let steps = r.update(v)
            relative[e.name] = r
            if steps != 0 { await turned(e.name, steps) }
            return
        }
        if let (name, phase) = encoderPhase(e.name), var q = quadrature[name] {
            let level = e.change == .pressed
            if phase == "a" { q.a = level } else { q.b = level }
            let steps = q.decoder.update(a: q.a, b: q.b)
            quadrature[name] = q
            if steps != 0 { await turned(name, steps) }
            return
        }
        guard var r = recognizers[e.name] else { return }
        let g: Gesture?
        switch e.change {
        case .pressed: g = r.press(at: e.time)
        case .released: g = r.release(at: e.time)
        case .relative: g = nil
        }
        recognizers[e.name] = r
        if let g { await fire(e.name, g) }
    }

    private func encoderPhase(_ name: String) -> (String, String)? {
        guard let i = name.lastIndex(of: "#") else { return nil }
        return (String(name[..<i]), String(name[name.index(after: i)...]))
    }

    /// Fires due long presses, expired double-press windows and the end of the ACC grace;
    /// returns the next such deadline (nil: none until the next event).
    func tick() async -> Nanos? {
        let now = clock.now()
        for name in recognizers.keys.sorted() {
            if let g = recognizers[name]!.tick(at: now) { await fire(name, g) }
        }
        if var p = ignition, let a = p.tick(at: now) {
            ignition = p
            await perform(a)
        }
        let deadlines = recognizers.values.compactMap(\.nextDeadline) + [ignition?.nextDeadline].compactMap { $0 }
        return deadlines.min()
    }

    private func fire(_ name: String, _ g: Gesture) async {
        let action = actions[name]?[g] ?? .none
        counters.add("controls.gestures")
        lastGesture = "\(name) \(g.rawValue) → \(action)"
        guard action != .none else { lastResult = "no action"; return }
        await act(action, what: "button \(name) \(g.rawValue)")
    }

    private func turned(_ name: String, _ steps: Int) async {
        guard let e = encoders[name] else { return }
        counters.add("controls.gestures")
        let action: ButtonAction
        var times = 1
        switch e.action {
        case .volumeStep(let n): action = .volumeStep(n * steps)
        case .volumeUp: action = .volumeStep(board.volumeStep * steps)
        case .volumeDown: action = .volumeStep(-board.volumeStep * steps)
        case .next, .previous:
            action = (steps > 0) == (e.action == .next) ? .next : .previous
            times = abs(steps)
        default:
            guard steps > 0 else { return }
            action = e.action
        }
        lastGesture = "\(name) \(steps > 0 ? "+" : "")\(steps) → \(action)"
        for _ in 0..<times { await act(action, what: "encoder \(name)") }
    }

    /// Does one action through the control commands; logs and counts the outcome.
    private func act(_ action: ButtonAction, what: String) async {
        let cmd: ControlCommand
        switch action {
        case .playPause: cmd = .toggle
        case .next: cmd = .next
        case .previous: cmd = .prev
        case .takeControl: cmd = .takeControl
        case .join: cmd = .group(.button)
        case .volumeUp, .volumeDown, .volumeStep:
            let step = action == .volumeUp ? board.volumeStep : action == .volumeDown ? -board.volumeStep
                : { if case .volumeStep(let n) = action { return n }; return 0 }()
            cmd = .volume(max(0, min(100, await player.currentVolume + step)))
        case .none: return
        }
        let reply = await commands.execute(cmd)
        let ok = reply.ok, message = reply.message
        counters.add("controls.actions")
        if ok {
            lastResult = message
            logger.info("\(what) → \(action): \(message)")
        } else {
            counters.add("controls.refused")
            lastResult = "refused: \(message)"
            logger.notice("\(what) → \(action) refused: \(message)")
        }
    }

    // MARK: ignition

    private func perform(_ a: IgnitionPolicy.Action) async {
        let grace = board.ignition?.graceSeconds ?? 60
        switch a {
        case .fadeOutAndSave:
            counters.add("controls.acc_off")
            logger.notice("ACC off: fading out and saving; powering off in \(grace) s unless ACC comes back")
            await player.accOff()
        case .resume:
            counters.add("controls.acc_resumes")
            logger.notice("ACC on again within the grace period: resuming")
            await player.accOn()
        case .powerOff:
            counters.add("controls.poweroffs")
            await player.savedForPowerOff()
            if let hold = powerHold {
                logger.notice("ACC off for \(grace) s: releasing the power hold line (\(hold.at))")
                do { try hold.release() } catch {
                    counters.add("controls.poweroff_failures")
                    logger.error("power hold: \(error)")
                }
                return
            }
            let command = board.ignition?.poweroffCommand ?? "systemctl poweroff"
            logger.notice("ACC off for \(grace) s: powering off (\(command))")
            let status = try? await onThread("jamz-poweroff") { () -> Int32 in
                let p = Process()
                p.executableURL = URL(fileURLWithPath: "/bin/sh")
                p.arguments = ["-c", command]
                try p.run()
                p.waitUntilExit()
                return p.terminationStatus
            }
            if status != 0 {
                counters.add("controls.poweroff_failures")
                logger.error("power-off command \"\(command)\" failed (exit status \(status.map(String.init) ?? "not started")); the unit stays on")
            }
        }
    }

    // MARK: status

    func report() -> ControlsReport {
        var r = ControlsReport()
        r.devices = sources.map { s in
            let rep = s.source.report
            return .init(device: rep.device, state: rep.state, path: rep.path, problem: rep.problem, serves: s.serves)
        }
        r.lastGesture = lastGesture
        r.lastResult = lastResult
        if let p = ignition {
            r.acc = p.accOn.map { $0 ? "on" : "off" } ?? "unknown"
            r.powerOffIn = p.nextDeadline.map { max(0, Double($0 - clock.now()) / 1e9) }
        }
        return r
    }
}
