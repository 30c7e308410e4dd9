import Foundation
import JamzControls
import JamzCore
import TOMLKit

/// The board file (`jamzd --board FILE`, or `board = "FILE"` in the config): the board's audio
/// overrides, its buttons, encoders and ignition sense, and their action map. See board/README.md
/// ("Board file"). A bad entry is reported (one line per problem, counted as
/// `controls.board_errors`) and left out; the rest works.
public struct BoardConfig: Sendable, Equatable {
    /// Where a control comes from.
    public enum Input: Sendable, Equatable, CustomStringConvertible {
        /// An evdev device by name, or by path (a FIFO path is the test/integration hook).
        case evdev(name: String?, path: String?)
        case gpio(GPIOLineSpec)

        public var description: String {
            switch self {
            case .evdev(let n, let p): n.map { "input \"\($0)\"" } ?? "input \(p ?? "?")"
            case .gpio(let s): s.description
            }
        }
    }

    public struct Button: Sendable, Equatable {
        public var name: String
        public var input: Input
        /// evdev key code and its name (input devices only).
        public var key: Int?
        public var keyName: String?
        public var actions: ButtonActions
        public var debounceMs = 10
    }

    public struct Encoder: Sendable, Equatable {
        public enum Kind: Sendable, Equatable {
            /// EV_REL counts of an input device on this axis.
            case relative(Input, axis: Int)
            /// Quadrature on two GPIO lines.
            case quadrature(a: GPIOLineSpec, b: GPIOLineSpec)
        }
        public var name: String
        public var kind: Kind
        public var stepsPerDetent = 4
        /// What one clockwise detent does (counter-clockwise: the opposite volume step).
        public var action: ButtonAction = .volumeStep(5)
    }

    public struct Ignition: Sendable, Equatable {
        public var input: Input
        /// EV_SW code (input devices).
        public var switchCode: Int?
        public var graceSeconds = 60.0
        public var powerHold: GPIOLineSpec?
        /// Run after the grace period unless a power-hold line is set.
        public var poweroffCommand = "systemctl poweroff"
    }

    public var output: String?
    public var latencyMs: Double?
    public var longPressMs = 1000
    public var doublePressMs = 300
    public var volumeStep = 5
    /// EVIOCGRAB the input devices: their keys reach no console or other reader.
    public var grabInputs = false
    public var buttons: [Button] = []
    public var encoders: [Encoder] = []
    public var ignition: Ignition?
    /// [prompts]: the spoken prompts (issue 17). `enabled` nil: on when `dir` exists.
    public var prompts = PromptSettings()
    public struct PromptSettings: Sendable, Equatable {
        public static let defaultDir = "/usr/share/jamz/prompts"
        public var enabled: Bool?
        /// 0...100, perceptual like the music's volume.
        public var volume = 80
        public var dir = PromptSettings.defaultDir
    }
    /// The phone page (`[page]`): served on these interfaces' addresses only (empty: off), on
    /// this port, with this PIN (nil: random per boot).
    public var pageInterfaces: [String] = []
    public var pagePort = 8080
    public var pagePin: String?
    public var pageMaxUploadMB: Int?

    public init() {}

    /// Parses a board file; returns the usable part and one line per problem.
    public static func parse(toml text: String, file: String = "board") -> (BoardConfig, [String]) {
        var b = BoardConfig()
        var problems: [String] = []
        let table: TOMLTable
        do { table = try TOMLTable(string: text) } catch {
            return (b, ["\(file) is not valid TOML (\(error)); no buttons, no ignition sense"])
        }
        func bad(_ s: String) { problems.append("\(file): \(s)") }

        for key in table.keys {
            guard let v = table[key] else { continue }
            switch key {
            case "audio":
                guard let t = v.table else { bad("[audio] must be a table"); continue }
                for k in t.keys {
                    switch k {
                    case "output":
                        if let s = t[k]?.string, DaemonConfig.checkOutput(s) == nil { b.output = s }
                        else { bad("audio.output: expected \"alsa:DEVICE\" or \"file:PATH\"") }
                    case "latency_ms":
                        if let d = t[k]?.double ?? t[k]?.int.map(Double.init), (0...1000).contains(d) { b.latencyMs = d }
                        else { bad("audio.latency_ms: expected a number in 0...1000") }
                    default: bad("audio.\(k): unknown setting (ignored)")
                    }
                }
            case "controls":
                guard let t = v.table else { bad("[controls] must be a table"); continue }
                for k in t.keys {
                    let i = t[k]?.int
                    switch k {
                    case "long_press_ms":
                        if let i, (200...10_000).contains(i) { b.longPressMs = i } else { bad("controls.long_press_ms: expected an integer in 200...10000") }
                    case "double_press_ms":
                        if let i, (50...2000).contains(i) { b.doublePressMs = i } else { bad("controls.double_press_ms: expected an integer in 50...2000") }
                    case "grab":
                        if let g = t[k]?.bool { b.grabInputs = g } else { bad("controls.grab: expected true or false") }
                    case "volume_step":
                        if let i, (1...50).contains(i) { b.volumeStep = i } else { bad("controls.volume_step: expected an integer in 1...50") }
                    default: bad("controls.\(k): unknown setting (ignored)")
                    }
                }
            case "prompts":
                guard let t = v.table else { bad("[prompts] must be a table"); continue }
                for k in t.keys {
                    switch k {
                    case "enabled":
                        if let e = t[k]?.bool { b.prompts.enabled = e } else { bad("prompts.enabled: expected true or false (default: on when the prompts directory exists)") }
                    case "volume":
                        if let i = t[k]?.int, (0...100).contains(i) { b.prompts.volume = i } else { bad("prompts.volume: expected an integer in 0...100 (default 80)") }
                    case "dir":
                        if let d = t[k]?.string, d.hasPrefix("/") { b.prompts.dir = d } else { bad("prompts.dir: expected an absolute path (default \(PromptSettings.defaultDir))") }
                    default: bad("prompts.\(k): unknown setting (ignored)")
                    }
                }
            case "page":
                guard let t = v.table else { bad("[page] must be a table"); continue }
                for k in t.keys {
                    switch k {
                    case "listen":
                        let names = t[k]?.array.map { a in (0..<a.count).compactMap { a[$0].string } }
                        if let names, names.count == t[k]?.array?.count, names.allSatisfy({ !$0.isEmpty && $0.utf8.count < 16 }) { b.pageInterfaces = names }
                        else { bad("page.listen: expected a list of interface names, e.g. [\"wlan1\"]") }
                    case "port":
                        if let i = t[k]?.int, (1...65_535).contains(i) { b.pagePort = i } else { bad("page.port: expected an integer in 1...65535") }
                    case "max_upload_mb":
                        if let i = t[k]?.int, (1...2048).contains(i) { b.pageMaxUploadMB = i } else { bad("page.max_upload_mb: expected an integer in 1...2048") }
                    case "pin":
                        if let s = t[k]?.string, DaemonConfig.checkPIN(s) == nil { b.pagePin = s } else { bad("page.pin: expected 6 digits as a string") }
                    default: bad("page.\(k): unknown setting (ignored)")
                    }
                }
            case "button", "encoder", "ignition": break
            default: bad("\(key): unknown section (ignored)")
            }
        }
        var names = Set<String>()
        for (i, t) in tables(table["button"], "button", &problems, file).enumerated() {
            var e = Entry(t, "button #\(i + 1)")
            if let btn = e.button(volumeStep: b.volumeStep) {
                if names.insert(btn.name).inserted { b.buttons.append(btn) } else { e.bad("name \"\(btn.name)\" is used twice (left out)") }
            }
            problems += e.problems.map { "\(file): \($0)" }
        }
        for (i, t) in tables(table["encoder"], "encoder", &problems, file).enumerated() {
            var e = Entry(t, "encoder #\(i + 1)")
            if let enc = e.encoder(volumeStep: b.volumeStep) {
                if names.insert(enc.name).inserted { b.encoders.append(enc) } else { e.bad("name \"\(enc.name)\" is used twice (left out)") }
            }
            problems += e.problems.map { "\(file): \($0)" }
        }
        if let v = table["ignition"] {
            if let t = v.table {
                var e = Entry(t, "ignition")
                b.ignition = e.ignition()
                problems += e.problems.map { "\(file): \($0)" }
            } else { bad("[ignition] must be a table") }
        }
        return (b, problems)
    }

    private static func tables(_ v: (any TOMLValueConvertible)?, _ what: String, _ problems: inout [String], _ file: String) -> [TOMLTable] {
        guard let v else { return [] }
        guard let a = v.array else { problems.append("\(file): \(what) must be an array of tables ([[\(what)]])"); return [] }
        var out: [TOMLTable] = []
        for (i, x) in a.enumerated() {
            if let t = x.table { out.append(t) } else { problems.append("\(file): \(what) #\(i + 1) is not a table (left out)") }
        }
        return out
    }
}

/// One [[button]], [[encoder]] or [ignition] table being read: every key is looked at once, and
/// what is left over is reported as unknown.
private struct Entry {
    let t: TOMLTable
    let what: String
    var problems: [String] = []
    var used: Set<String> = []

    init(_ t: TOMLTable, _ what: String) { self.t = t; self.what = what }

    mutating func bad(_ s: String) { problems.append("\(what): \(s)") }

    mutating func string(_ k: String) -> String? {
        used.insert(k)
        guard let v = t[k] else { return nil }
        guard let s = v.string, !s.isEmpty else { bad("\(k): expected a non-empty string"); return nil }
        return s
    }
    mutating func int(_ k: String, _ range: ClosedRange<Int>) -> Int? {
        used.insert(k)
        guard let v = t[k] else { return nil }
        guard let i = v.int, range.contains(i) else { bad("\(k): expected an integer in \(range.lowerBound)...\(range.upperBound)"); return nil }
        return i
    }
    mutating func number(_ k: String, _ range: ClosedRange<Double>) -> Double? {
        used.insert(k)
        guard let v = t[k] else { return nil }
        guard let d = v.double ?? v.int.map(Double.init), range.contains(d) else { bad("\(k): expected a number in \(range.lowerBound)...\(range.upperBound)"); return nil }
        return d
    }
    mutating func bool(_ k: String) -> Bool? {
        used.insert(k)
        guard let v = t[k] else { return nil }
        guard let b = v.bool else { bad("\(k): expected true or false"); return nil }
        return b
    }
    mutating func action(_ k: String) -> ButtonAction? {
        guard let s = string(k) else { return nil }
        guard let a = ButtonAction(name: s) else { bad("\(k) = \"\(s)\": unknown action; one of \(ButtonAction.names)"); return nil }
        return a
    }
    /// Reports the keys nobody read, unless the entry was left out as a whole (one message is enough).
    mutating func finish() {
        if problems.contains(where: { $0.hasSuffix("(left out)") || $0.hasSuffix("(no ignition sense)") }) { return }
        for k in t.keys where !used.contains(k) { bad("\(k): unknown setting (ignored)") }
    }

    /// gpio = "LABEL" | chip = "gpiochip0" + line = N | gpio_path = FIFO, with active_low,
    /// pull_up, debounce_ms.
    mutating func gpioSpec(prefix: String = "", lineKey: String = "line") -> GPIOLineSpec? {
        let label = string("\(prefix)gpio"), chip = string("chip"), line = int(lineKey, 0...4095), path = string("gpio_path")
        var s: GPIOLineSpec
        if let path { s = GPIOLineSpec(); s.path = path }
        else if let label { s = GPIOLineSpec(lineName: label) }
        else if let chip, let line { s = GPIOLineSpec(chip: chip, offset: line) }
        else if chip != nil || line != nil { bad("chip and \(lineKey) go together"); return nil }
        else { return nil }
        s.activeLow = bool("active_low") ?? false
        s.pullUp = bool("pull_up") ?? false
        s.debounceMicros = UInt32((int("debounce_ms", 0...1000) ?? 10) * 1000)
        return s
    }

    /// input = "DEVICE NAME" | input_path = PATH, else a GPIO line.
    mutating func input() -> BoardConfig.Input? {
        let name = string("input"), path = string("input_path")
        if name != nil || path != nil { return .evdev(name: name, path: path) }
        return gpioSpec().map { .gpio($0) }
    }

    mutating func button(volumeStep: Int) -> BoardConfig.Button? {
        defer { finish() }
        guard let name = string("name") else { bad("needs a name (left out)"); return nil }
        guard let input = input() else { bad("\"\(name)\" needs input = \"DEVICE NAME\", gpio = \"LINE LABEL\" or chip + line (left out)"); return nil }
        var key: Int?, keyName: String?
        if case .evdev = input {
            guard let k = string("key") else { bad("\"\(name)\": an input device button needs key = \"KEY_…\" (left out)"); return nil }
            guard let code = InputCodes.keys[k] else { bad("\"\(name)\": unknown key \"\(k)\"; supported: \(InputCodes.list(InputCodes.keys)) (left out)"); return nil }
            key = code; keyName = k
        } else if t.contains(key: "key") { used.insert("key"); bad("\"\(name)\": key is for input devices, not GPIO lines (ignored)") }
        var actions = ButtonActions.defaults(name: name, key: keyName)
        if let a = action("short") { actions.short = a }
        if let a = action("long") { actions.long = a }
        if let a = action("double") { actions.double = a }
        let debounce: Int
        if case .gpio(let s) = input { debounce = Int(s.debounceMicros / 1000) } else { debounce = int("debounce_ms", 0...1000) ?? 10 }
        return BoardConfig.Button(name: name, input: input, key: key, keyName: keyName, actions: actions, debounceMs: debounce)
    }

    mutating func encoder(volumeStep: Int) -> BoardConfig.Encoder? {
        defer { finish() }
        guard let name = string("name") else { bad("needs a name (left out)"); return nil }
        var enc = BoardConfig.Encoder(name: name, kind: .relative(.evdev(name: nil, path: nil), axis: 0))
        enc.action = .volumeStep(volumeStep)
        if let n = int("steps_per_detent", 1...16) { enc.stepsPerDetent = n }
        if let a = action("action") { enc.action = a }
        let devName = string("input"), devPath = string("input_path")
        if devName != nil || devPath != nil {
            let axisName = string("axis") ?? "REL_DIAL"
            guard let axis = InputCodes.relAxes[axisName] else { bad("\"\(name)\": unknown axis \"\(axisName)\"; supported: \(InputCodes.list(InputCodes.relAxes)) (left out)"); return nil }
            if !t.contains(key: "steps_per_detent") { enc.stepsPerDetent = 1 }
            enc.kind = .relative(.evdev(name: devName, path: devPath), axis: axis)
            return enc
        }
        let a = string("gpio_a"), b = string("gpio_b")
        let chip = string("chip"), la = int("line_a", 0...4095), lb = int("line_b", 0...4095)
        let activeLow = bool("active_low") ?? false, pullUp = bool("pull_up") ?? false
        let debounce = UInt32((int("debounce_ms", 0...1000) ?? 1) * 1000)
        let pa = string("gpio_a_path"), pb = string("gpio_b_path")
        var sa: GPIOLineSpec, sb: GPIOLineSpec
        if let pa, let pb { sa = GPIOLineSpec(); sa.path = pa; sb = GPIOLineSpec(); sb.path = pb }
        else if let a, let b { sa = GPIOLineSpec(lineName: a); sb = GPIOLineSpec(lineName: b) }
        else if let chip, let la, let lb { sa = GPIOLineSpec(chip: chip, offset: la); sb = GPIOLineSpec(chip: chip, offset: lb) }
        else { bad("\"\(name)\" needs input (+ axis), gpio_a + gpio_b, or chip + line_a + line_b (left out)"); return nil }
        sa.activeLow = activeLow; sb.activeLow = activeLow
        sa.pullUp = pullUp; sb.pullUp = pullUp
        sa.debounceMicros = debounce; sb.debounceMicros = debounce
        enc.kind = .quadrature(a: sa, b: sb)
        return enc
    }

    mutating func ignition() -> BoardConfig.Ignition? {
        defer { finish() }
        guard let input = input() else { bad("needs input = \"DEVICE NAME\" + switch = \"SW_…\", or gpio = \"LINE LABEL\" (no ignition sense)"); return nil }
        var ign = BoardConfig.Ignition(input: input)
        if case .evdev = input {
            let s = string("switch") ?? "SW_DOCK"
            guard let code = InputCodes.switches[s] else { bad("unknown switch \"\(s)\"; supported: \(InputCodes.list(InputCodes.switches)) (no ignition sense)"); return nil }
            ign.switchCode = code
        }
        if let g = number("grace_s", 0...3600) { ign.graceSeconds = g }
        if let c = string("poweroff_command") { ign.poweroffCommand = c }
        if let p = string("power_hold_gpio") {
            var s = GPIOLineSpec(lineName: p)
            s.activeLow = bool("power_hold_active_low") ?? false
            ign.powerHold = s
        }
        return ign
    }
}
