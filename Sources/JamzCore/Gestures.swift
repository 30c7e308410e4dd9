/// Buttons as the driver sees them: press/release edges with timestamps in, gestures out.
/// Pure: the caller passes the time (daemon clock, or virtual time in tests) and calls `tick`
/// at `nextDeadline` so a long press fires while the button is still held.

/// What a button (or encoder, or gesture) makes the car do.
public enum ButtonAction: Sendable, Equatable, CustomStringConvertible {
    case playPause, next, previous, volumeUp, volumeDown
    /// Relative volume change in percent points (encoders: one detent = one step × this).
    case volumeStep(Int)
    case takeControl
    /// Push-button join: pairs with a car whose join button is pressed within 30 s.
    case join
    case none

    /// Parses a board-file name: play_pause, next, previous (prev), volume_up, volume_down,
    /// volume_step:N (N may be negative), take_control, join, none.
    public init?(name: String) {
        switch name {
        case "play_pause", "toggle": self = .playPause
        case "next": self = .next
        case "previous", "prev": self = .previous
        case "volume_up": self = .volumeUp
        case "volume_down": self = .volumeDown
        case "take_control": self = .takeControl
        case "join": self = .join
        case "none", "": self = .none
        default:
            guard name.hasPrefix("volume_step:"), let n = Int(name.dropFirst("volume_step:".count)), n != 0, abs(n) <= 100 else { return nil }
            self = .volumeStep(n)
        }
    }

    public var description: String {
        switch self {
        case .playPause: "play_pause"
        case .next: "next"
        case .previous: "previous"
        case .volumeUp: "volume_up"
        case .volumeDown: "volume_down"
        case .volumeStep(let n): "volume_step:\(n)"
        case .takeControl: "take_control"
        case .join: "join"
        case .none: "none"
        }
    }

    /// Every accepted name, for error messages.
    public static let names = "play_pause, next, previous, volume_up, volume_down, volume_step:N, take_control, join, none"
}

public enum Gesture: String, Sendable, Equatable, CaseIterable {
    case short, long, double
}

/// The actions of one button, by gesture.
public struct ButtonActions: Sendable, Equatable {
    public var short: ButtonAction
    public var long: ButtonAction
    public var double: ButtonAction

    public init(short: ButtonAction = .none, long: ButtonAction = .none, double: ButtonAction = .none) {
        self.short = short; self.long = long; self.double = double
    }

    public subscript(_ g: Gesture) -> ButtonAction {
        switch g {
        case .short: short
        case .long: long
        case .double: double
        }
    }

    /// The default map: media keys do what they say, a long press on the button named "dj"
    /// takes control of the convoy, a press on the button named "join" is the join button. `key` is the evdev key name, if any.
    public static func defaults(name: String, key: String?) -> ButtonActions {
        var a = ButtonActions()
        switch key ?? "" {
        case "KEY_PLAYPAUSE", "KEY_PLAY", "KEY_PAUSE": a.short = .playPause
        case "KEY_NEXTSONG", "KEY_NEXT": a.short = .next
        case "KEY_PREVIOUSSONG", "KEY_PREVIOUS": a.short = .previous
        case "KEY_VOLUMEUP": a.short = .volumeUp
        case "KEY_VOLUMEDOWN": a.short = .volumeDown
        default:
            switch name {
            case "play_pause", "play": a.short = .playPause
            case "next": a.short = .next
            case "previous", "prev": a.short = .previous
            case "volume_up": a.short = .volumeUp
            case "volume_down": a.short = .volumeDown
            case "join": a.short = .join
            default: break
            }
        }
        if name == "dj" { a.long = .takeControl }
        return a
    }
}

/// Gesture timing, per button.
public struct GestureSettings: Sendable, Equatable {
    /// Held this long: a long press (fires at the threshold, while still held).
    public var longPress: Nanos = nanosPerSecond
    /// A second press starting within this long after the first release: a double press.
    public var doubleWindow: Nanos = 300 * 1_000_000
    /// Edges closer than this to the previous accepted edge are contact bounce (on top of the
    /// kernel's own debounce, which not every input has).
    public var debounce: Nanos = 10 * 1_000_000
    /// Only a button with a double-press action waits for a second press; any other button's
    /// short press fires at release, at once.
    public var hasDouble = false
    /// Without a long-press action, a long hold is a short press when released.
    public var hasLong = true

    public init() {}
    public init(for actions: ButtonActions, longPress: Nanos = nanosPerSecond, debounce: Nanos = 10 * 1_000_000) {
        self.longPress = longPress
        self.debounce = debounce
        hasDouble = actions.double != .none
        hasLong = actions.long != .none
    }
}

/// One button: edges in, at most one gesture per call out.
public struct GestureRecognizer: Sendable, Equatable {
    public var settings: GestureSettings
    public private(set) var isPressed = false
    private var lastEdge: Nanos?
    private var pressedAt: Nanos = 0
    private var longFired = false
    /// First release of a possible double press, waiting for the window to pass.
    private var pendingSince: Nanos?
    /// This press is the second of a double press.
    private var secondPress = false
    /// Edges dropped as bounce or repeats (a counter for the status).
    public private(set) var ignoredEdges = 0

    public init(settings: GestureSettings = GestureSettings()) { self.settings = settings }

    private mutating func accept(_ t: Nanos, pressed: Bool) -> Bool {
        if pressed == isPressed { ignoredEdges += 1; return false }
        if let last = lastEdge, t - last < settings.debounce { ignoredEdges += 1; return false }
        lastEdge = t
        isPressed = pressed
        return true
    }

    /// A press edge at `t`. A press never completes a gesture by itself, except that a pending
    /// first press whose window has already passed fires its short press now.
    public mutating func press(at t: Nanos) -> Gesture? {
        var out: Gesture? = nil
        if let p = pendingSince, t - p > settings.doubleWindow { pendingSince = nil; out = .short }
        guard accept(t, pressed: true) else { return out }
        pressedAt = t
        longFired = false
        if pendingSince != nil { pendingSince = nil; secondPress = true } else { secondPress = false }
        return out
    }

    /// A release edge at `t`.
    public mutating func release(at t: Nanos) -> Gesture? {
        // A long press that was due but not ticked yet still counts as long.
        if let g = tick(at: t) { _ = accept(t, pressed: false); return g }
        guard accept(t, pressed: false) else { return nil }
        if longFired { longFired = false; secondPress = false; return nil }
        if secondPress { secondPress = false; return .double }
        if settings.hasDouble { pendingSince = t; return nil }
        return .short
    }

    /// Time passes: fires a long press at its threshold, or a short press whose double-press
    /// window ran out.
    public mutating func tick(at t: Nanos) -> Gesture? {
        if isPressed, settings.hasLong, !longFired, t - pressedAt >= settings.longPress {
            longFired = true
            secondPress = false
            return .long
        }
        if let p = pendingSince, !isPressed, t - p > settings.doubleWindow {
            pendingSince = nil
            return .short
        }
        return nil
    }

    /// When `tick` next has something to do (nil: nothing until the next edge).
    public var nextDeadline: Nanos? {
        if isPressed, settings.hasLong, !longFired { return pressedAt + settings.longPress }
        if let p = pendingSince { return p + settings.doubleWindow + 1 }
        return nil
    }
}

/// A rotary encoder on two GPIO lines (A, B): Gray-code transitions in, detent steps out.
/// Invalid transitions (both lines changed: a missed edge) are dropped and counted.
public struct QuadratureDecoder: Sendable, Equatable {
    /// Quarter steps per detent (most mechanical encoders: 4; some: 2 or 1).
    public var stepsPerDetent: Int
    private var state: UInt8?
    private var quarter = 0
    public private(set) var invalidTransitions = 0

    public init(stepsPerDetent: Int = 4) { self.stepsPerDetent = max(1, stepsPerDetent) }

    /// The new levels of A and B; returns whole detents moved (+ clockwise, A leading).
    public mutating func update(a: Bool, b: Bool) -> Int {
        let s: UInt8 = (a ? 2 : 0) | (b ? 1 : 0)
        guard let old = state else { state = s; return 0 }
        state = s
        if old == s { return 0 }
        // Gray sequence clockwise: 00 → 10 → 11 → 01 → 00.
        let order: [UInt8] = [0b00, 0b10, 0b11, 0b01]
        let i = order.firstIndex(of: old)!, j = order.firstIndex(of: s)!
        switch (j - i + 4) % 4 {
        case 1: quarter += 1
        case 3: quarter -= 1
        default: invalidTransitions += 1; return 0
        }
        let steps = quarter / stepsPerDetent
        quarter -= steps * stepsPerDetent
        return steps
    }
}

/// A rotary encoder reported as EV_REL counts (rotary-encoder driver, `linux,axis`): counts in,
/// detent steps out.
public struct RelativeEncoder: Sendable, Equatable {
    public var countsPerStep: Int
    private var rest = 0
    public init(countsPerStep: Int = 1) { self.countsPerStep = max(1, countsPerStep) }
    public mutating func update(_ value: Int) -> Int {
        rest += value
        let steps = rest / countsPerStep
        rest -= steps * countsPerStep
        return steps
    }
}
