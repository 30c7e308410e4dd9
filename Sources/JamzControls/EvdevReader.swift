import CLinuxInput
import Foundation
import Glibc
import JamzCore
import Logging
import JamzPlatform

/// An evdev input device (steering-wheel buttons, a keyboard-like button board, an ACC switch,
/// a rotary encoder on EV_REL), found by its name among /dev/input/event*, read on one thread of
/// its own. A missing or vanished device is logged once and waited for: inotify on /dev/input
/// (its node appearing, or udev fixing its permissions), no periodic look.
public final class EvdevReader: ButtonSource {
    public struct Config: Sendable, Equatable {
        /// The device's name as EVIOCGNAME reports it ("TrafficJamz Buttons").
        public var deviceName: String?
        /// A fixed path instead (/dev/input/by-path/…, or a FIFO: the test/integration hook).
        public var path: String?
        /// Key code → button name.
        public var keys: [Int: String] = [:]
        /// Switch code → name (ACC on an EV_SW switch).
        public var switches: [Int: String] = [:]
        /// Relative axis code → encoder name.
        public var rel: [Int: String] = [:]
        /// Take the device for jamzd alone (EVIOCGRAB): its keys reach no console or other reader.
        public var grab = false
        public init(deviceName: String? = nil, path: String? = nil) { self.deviceName = deviceName; self.path = path }
        var label: String { deviceName.map { "input \"\($0)\"" } ?? "input \(path ?? "?")" }
    }

    public let config: Config
    let clock: ReaderClock
    let logger: Logger
    let state: ReaderState
    /// Seconds before a device that failed at once is looked for again (and between looks when
    /// inotify cannot be had); a missing device is otherwise waited for, not looked for.
    public var retryInterval: Double { 1.5 }

    public init(config: Config, clock: ReaderClock, logger: Logger) {
        self.config = config; self.clock = clock; self.logger = logger
        state = ReaderState(device: config.label)
    }

    public var report: SourceReport { state.report.withLock { $0 } }
    /// How many times the reader has looked for its device (tests: no look without a cause).
    public var looks: Int { state.looks.withLock { $0 } }
    /// The reader thread's id (/proc/self/task/TID), once it runs; 0 before.
    public var threadID: Int32 { state.thread.withLock { $0 } }
    public func stop() { state.stop.stop() }

    public func start(_ sink: @escaping @Sendable (ControlEvent) -> Void) {
        NamedThread.start("jamz-evdev", stackSize: 256 << 10) { [self] in run(sink) }
    }

    /// The folder the device's node appears in: /dev/input, or the configured path's folder.
    var folder: (path: String, matches: (String) -> Bool) {
        guard let path = config.path else { return ("/dev/input", { $0.hasPrefix("event") }) }
        let cut = path.lastIndex(of: "/")
        let dir = cut.map { $0 == path.startIndex ? "/" : String(path[..<$0]) } ?? "."
        let name = cut.map { String(path[path.index(after: $0)...]) } ?? path
        return (dir, { $0 == name })
    }

    private func run(_ sink: @escaping @Sendable (ControlEvent) -> Void) {
        let (dir, matches) = folder
        let cycle = DeviceCycle(state: state, label: config.label, missingWord: "not found", folder: dir,
                                rewrites: config.path != nil, matches: matches,
                                retryInterval: retryInterval, logger: logger)
        cycle.run(look: { () -> Look<Device> in
            switch open() {
            case .success(let dev): .found(dev, fd: dev.fd, at: dev.path)
            case .failure(let why): .missing(why.description)
            }
        }, read: { dev, fd, at in
            logger.info("\(config.label) opened at \(at)\(dev.monotonic ? "" : " (no kernel monotonic timestamps: events timed when read)")")
            // Switches report their level at once (ACC may already be off at start).
            if dev.monotonic {
                var switches = config
                switches.keys = [:]
                for e in EvdevReader.levels(fd: fd, config: switches, at: clock.now()) { sink(e) }
            }
            return EvdevReader.read(fd: fd, config: config, kernelMonotonic: dev.monotonic, clock: clock, state: state,
                                    stop: state.stop, sink)
        })
    }

    struct OpenError: Error, CustomStringConvertible { let description: String }

    struct Device {
        let fd: Int32
        let path: String
        let monotonic: Bool
    }

    private func open() -> Result<Device, OpenError> {
        if let path = config.path {
            guard let (fd, fifo) = openInput(path) else { return .failure(OpenError(description: "\(path): \(errnoText())")) }
            if fifo { return .success(Device(fd: fd, path: path, monotonic: false)) }
            return .success(prepared(fd, path))
        }
        guard let want = config.deviceName else { return .failure(OpenError(description: "no device name or path")) }
        let dir = "/dev/input"
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: dir) else {
            return .failure(OpenError(description: "\(dir) does not exist"))
        }
        var seen: [String] = []
        for n in names.filter({ $0.hasPrefix("event") }).sorted(by: { $0.count == $1.count ? $0 < $1 : $0.count < $1.count }) {
            let path = "\(dir)/\(n)"
            let fd = retryingEINTR { Glibc.open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC) }
            if fd < 0 { continue }
            if let name = EvdevReader.deviceName(fd), name == want {
                return .success(prepared(fd, path))
            } else if let name = EvdevReader.deviceName(fd) {
                seen.append(name)
            }
            Glibc.close(fd)
        }
        return .failure(OpenError(description: seen.isEmpty ? "no input devices" : "devices present: \(seen.map { "\"\($0)\"" }.joined(separator: ", "))"))
    }

    /// A real event device: CLOCK_MONOTONIC timestamps, and the grab if asked for.
    private func prepared(_ fd: Int32, _ path: String) -> Device {
        let monotonic = jamz_evdev_use_monotonic(fd) == 0
        if config.grab, jamz_ioctl_int(fd, jamz_eviocgrab(), 1) != 0 {
            logger.warning("\(config.label): cannot grab \(path) (\(errnoText())); other readers see its keys too")
        }
        return Device(fd: fd, path: path, monotonic: monotonic)
    }

    /// EVIOCGNAME of an open event device.
    public static func deviceName(_ fd: Int32) -> String? {
        var buf = [CChar](repeating: 0, count: 256)
        guard jamz_ioctl_ptr(fd, jamz_eviocgname(UInt32(buf.count - 1)), &buf) >= 0 else { return nil }
        return String(cString: buf)
    }

    /// The current levels of the mapped keys and switches (EVIOCGKEY, EVIOCGSW) as events.
    static func levels(fd: Int32, config: Config, at t: Nanos) -> [ControlEvent] {
        var out: [ControlEvent] = []
        var keys = [UInt8](repeating: 0, count: 96), sws = [UInt8](repeating: 0, count: 8)
        if !config.keys.isEmpty, jamz_ioctl_ptr(fd, jamz_eviocgkey(UInt32(keys.count)), &keys) >= 0 {
            for (code, name) in config.keys.sorted(by: { $0.key < $1.key }) where code >= 0 && code < keys.count * 8 {
                out.append(ControlEvent(name: name, change: jamz_test_bit(keys, UInt32(code)) == 1 ? .pressed : .released, time: t))
            }
        }
        if !config.switches.isEmpty, jamz_ioctl_ptr(fd, jamz_eviocgsw(UInt32(sws.count)), &sws) >= 0 {
            for (code, name) in config.switches.sorted(by: { $0.key < $1.key }) where code >= 0 && code < sws.count * 8 {
                out.append(ControlEvent(name: name, change: jamz_test_bit(sws, UInt32(code)) == 1 ? .pressed : .released, time: t))
            }
        }
        return out
    }

    /// The reading loop over an already-open fd (a device, or a test's pipe/socket fed with real
    /// `struct input_event` bytes): EV_KEY 1/0 → pressed/released (2, autorepeat, ignored),
    /// EV_SW → pressed (on)/released (off), EV_REL → relative counts; codes not in `config`
    /// are skipped. Kernel timestamps are used when they are CLOCK_MONOTONIC.
    public static func read(fd: Int32, config: Config, kernelMonotonic: Bool, clock: ReaderClock,
                            stop: StopSignal, _ sink: (ControlEvent) -> Void) -> ReadEnd {
        read(fd: fd, config: config, kernelMonotonic: kernelMonotonic, clock: clock, state: nil, stop: stop, sink)
    }

    static func read(fd: Int32, config: Config, kernelMonotonic: Bool, clock: ReaderClock, state: ReaderState?,
                     stop: StopSignal, _ sink: (ControlEvent) -> Void) -> ReadEnd {
        readRecords(fd: fd, size: jamz_input_event_size(), stop: stop) { rec in
            var sec: Int64 = 0, usec: Int64 = 0, type: UInt16 = 0, code: UInt16 = 0, value: Int32 = 0
            jamz_input_event_decode(rec.baseAddress!, &sec, &usec, &type, &code, &value)
            let t = kernelMonotonic ? clock.fromRaw(sec * nanosPerSecond + usec * 1000) : clock.now()
            let c = Int(code)
            var event: ControlEvent?
            switch Int32(type) {
            case EV_KEY:
                guard let name = config.keys[c] else { return }
                switch value {
                case 1: event = ControlEvent(name: name, change: .pressed, time: t)
                case 0: event = ControlEvent(name: name, change: .released, time: t)
                case 2: return
                default: state?.update { $0.badRecords += 1 }; return
                }
            case EV_SW:
                guard let name = config.switches[c] else { return }
                event = ControlEvent(name: name, change: value != 0 ? .pressed : .released, time: t)
            case EV_REL:
                guard let name = config.rel[c] else { return }
                event = ControlEvent(name: name, change: .relative(Int(value)), time: t)
            case EV_SYN:
                // The kernel's buffer overflowed and events were lost: read the keys' and
                // switches' levels again (the recognizers ignore levels they already have).
                if c == Int(SYN_DROPPED), kernelMonotonic {
                    state?.update { $0.badRecords += 1 }
                    for e in levels(fd: fd, config: config, at: clock.now()) { sink(e) }
                }
                return
            case EV_MSC, EV_LED, EV_REP:
                return
            default:
                state?.update { $0.badRecords += 1 }
                return
            }
            if let event {
                state?.update { $0.events += 1 }
                sink(event)
            }
        }
    }
}
