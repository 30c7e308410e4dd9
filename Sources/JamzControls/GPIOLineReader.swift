import CLinuxInput
import Foundation
import Glibc
import JamzCore
import Logging
import JamzPlatform

/// Where a GPIO line is: by its `gpio-line-names` label (searched on every /dev/gpiochip*), or by
/// chip (name "gpiochip0" or label "pinctrl-bcm2711") and offset.
public struct GPIOLineSpec: Sendable, Equatable, CustomStringConvertible {
    public var lineName: String?
    public var chip: String?
    public var offset: Int?
    public var activeLow = false
    public var pullUp = false
    /// The kernel's debounce (GPIO_V2_LINE_ATTR_ID_DEBOUNCE), microseconds; 0: none.
    public var debounceMicros: UInt32 = 0
    /// A FIFO fed with `struct gpio_v2_line_event` records instead (test/integration hook).
    public var path: String?

    public init(lineName: String? = nil, chip: String? = nil, offset: Int? = nil) {
        self.lineName = lineName; self.chip = chip; self.offset = offset
    }

    public var description: String {
        if let path { return "gpio \(path)" }
        if let lineName { return "gpio \"\(lineName)\"" }
        return "gpio \(chip ?? "?") line \(offset.map(String.init) ?? "?")"
    }

    /// Finds the line: (chip fd, offset, where). The caller closes the chip fd.
    func locate() -> Result<(Int32, UInt32, String), GPIOError> {
        let chips = ((try? FileManager.default.contentsOfDirectory(atPath: "/dev")) ?? [])
            .filter { $0.hasPrefix("gpiochip") }
            .sorted { $0.count == $1.count ? $0 < $1 : $0.count < $1.count }
        if chips.isEmpty { return .failure(GPIOError("no /dev/gpiochip* on this machine")) }
        for c in chips {
            let fd = open("/dev/\(c)", O_RDWR | O_CLOEXEC)
            if fd < 0 { continue }
            var name = [CChar](repeating: 0, count: 64), label = [CChar](repeating: 0, count: 64)
            var lines: UInt32 = 0
            guard jamz_gpio_chip_info(fd, &name, name.count, &label, label.count, &lines) == 0 else { close(fd); continue }
            let chipName = String(cString: name), chipLabel = String(cString: label)
            if let want = lineName {
                for i in 0..<lines {
                    var ln = [CChar](repeating: 0, count: 64)
                    var flags: UInt64 = 0
                    if jamz_gpio_line_info(fd, i, &ln, ln.count, &flags) == 0, String(cString: ln) == want {
                        return .success((fd, i, "\(chipName) line \(i)"))
                    }
                }
            } else if let chip, let offset, chip == chipName || chip == chipLabel || chip == "/dev/\(chipName)" {
                guard offset >= 0, UInt32(offset) < lines else {
                    close(fd)
                    return .failure(GPIOError("\(chipName) has lines 0...\(Int(lines) - 1), not \(offset)"))
                }
                return .success((fd, UInt32(offset), "\(chipName) line \(offset)"))
            }
            close(fd)
        }
        return .failure(GPIOError(lineName != nil ? "no line named \"\(lineName!)\" on \(chips.joined(separator: ", "))"
                                                  : "no chip \"\(chip ?? "")\" among \(chips.joined(separator: ", "))"))
    }
}

public struct GPIOError: Error, CustomStringConvertible {
    public let description: String
    init(_ s: String) { description = s }
}

/// One GPIO input line (a button, one phase of an encoder, the ACC sense) requested through the
/// GPIO character device (uAPI v2) with both edges, the kernel's debounce and active-low from
/// the board file; its `struct gpio_v2_line_event`s (CLOCK_MONOTONIC timestamps) are read on a
/// thread of its own. Rising edge (inactive → active, after active-low) = pressed. A missing chip
/// is waited for with inotify on /dev, a busy line through its chip's line-info watch.
public final class GPIOLineReader: ButtonSource {
    public let name: String
    public let spec: GPIOLineSpec
    /// Deliver the line's level as soon as it is open (the ACC sense), not only its edges.
    public let reportsLevel: Bool
    let clock: ReaderClock
    let logger: Logger
    let state: ReaderState
    /// Seconds before a line that failed at once is looked for again (and between looks when
    /// inotify cannot be had); a missing chip or busy line is otherwise waited for.
    public var retryInterval: Double { 1.5 }

    public init(name: String, spec: GPIOLineSpec, reportsLevel: Bool = false, clock: ReaderClock, logger: Logger) {
        self.name = name; self.spec = spec; self.reportsLevel = reportsLevel; self.clock = clock; self.logger = logger
        state = ReaderState(device: spec.description)
    }

    public var report: SourceReport { state.report.withLock { $0 } }
    /// How many times the reader has looked for its line (tests: no look without a cause).
    public var looks: Int { state.looks.withLock { $0 } }
    /// The reader thread's id (/proc/self/task/TID), once it runs; 0 before.
    public var threadID: Int32 { state.thread.withLock { $0 } }
    public func stop() { state.stop.stop() }

    public func start(_ sink: @escaping @Sendable (ControlEvent) -> Void) {
        NamedThread.start("jamz-gpio", stackSize: 256 << 10) { [self] in run(sink) }
    }

    /// The folder the line's chip appears in: /dev (gpiochipN), or the configured path's folder.
    var folder: (path: String, matches: (String) -> Bool) {
        guard let path = spec.path else { return ("/dev", { $0.hasPrefix("gpiochip") }) }
        let cut = path.lastIndex(of: "/")
        let dir = cut.map { $0 == path.startIndex ? "/" : String(path[..<$0]) } ?? "."
        let name = cut.map { String(path[path.index(after: $0)...]) } ?? path
        return (dir, { $0 == name })
    }

    /// The line requested (kernel: its events carry kernel timestamps), or why not. A line held
    /// by someone else (EBUSY) is watched on its chip (GPIO_V2_GET_LINEINFO_WATCH_IOCTL): the
    /// chip fd becomes readable when the line is released, and the reader looks again then.
    private func look() -> Look<Bool> {
        if let path = spec.path {
            guard let (fd, fifo) = openInput(path) else { return .missing("\(path): \(errnoText())") }
            return .found(!fifo, fd: fd, at: path)
        }
        switch spec.locate() {
        case .failure(let e): return .missing(e.description)
        case .success(let (chip, offset, at)):
            let fd = jamz_gpio_request_input(chip, offset, "jamzd", spec.activeLow ? 1 : 0, spec.pullUp ? 1 : 0, spec.debounceMicros)
            let e = errno
            if fd >= 0 { close(chip); return .found(true, fd: fd, at: at) }
            let why = "\(at): cannot request the line: \(errnoText(e))"
            if e == EBUSY, jamz_gpio_watch_line(chip, offset) == 0 { return .missing(why, watch: chip) }
            close(chip)
            return .missing(why)
        }
    }

    private func run(_ sink: @escaping @Sendable (ControlEvent) -> Void) {
        let (dir, matches) = folder
        let cycle = DeviceCycle(state: state, label: "\(spec) (\(name))", missingWord: "not available", folder: dir,
                                rewrites: spec.path != nil, matches: matches,
                                retryInterval: retryInterval, logger: logger)
        cycle.run(look: look, read: { kernel, fd, at in
            logger.info("\(spec) (\(name)) opened: \(at)")
            if reportsLevel, kernel {
                let v = jamz_gpio_get_value(fd)
                if v >= 0 { sink(ControlEvent(name: name, change: v == 1 ? .pressed : .released, time: clock.now())) }
            }
            return GPIOLineReader.read(fd: fd, name: name, kernelTimestamps: kernel, clock: clock, state: state,
                                       stop: state.stop, sink)
        })
    }

    /// The reading loop over an already-open line fd (or a test's pipe fed with real
    /// `struct gpio_v2_line_event` bytes): rising → pressed, falling → released, timed by the
    /// kernel's CLOCK_MONOTONIC timestamp when `kernelTimestamps`.
    public static func read(fd: Int32, name: String, kernelTimestamps: Bool, clock: ReaderClock,
                            stop: StopSignal, _ sink: (ControlEvent) -> Void) -> ReadEnd {
        read(fd: fd, name: name, kernelTimestamps: kernelTimestamps, clock: clock, state: nil, stop: stop, sink)
    }

    static func read(fd: Int32, name: String, kernelTimestamps: Bool, clock: ReaderClock, state: ReaderState?,
                     stop: StopSignal, _ sink: (ControlEvent) -> Void) -> ReadEnd {
        readRecords(fd: fd, size: jamz_gpio_v2_line_event_size(), stop: stop) { rec in
            var ts: UInt64 = 0, id: UInt32 = 0, offset: UInt32 = 0, seq: UInt32 = 0
            jamz_gpio_event_decode(rec.baseAddress!, &ts, &id, &offset, &seq)
            let t = kernelTimestamps ? clock.fromRaw(Nanos(truncatingIfNeeded: ts)) : clock.now()
            let change: ControlEvent.Change
            switch id {
            case jamz_gpio_v2_line_event_rising(): change = .pressed
            case jamz_gpio_v2_line_event_falling(): change = .released
            default: state?.update { $0.badRecords += 1 }; return
            }
            state?.update { $0.events += 1 }
            sink(ControlEvent(name: name, change: change, time: t))
        }
    }
}

/// A power-hold output line: requested active when the daemon starts (keeping the board's
/// supply on), released to let the supply cut the power.
public final class GPIOOutputLine: Sendable {
    let fd: Int32
    public let at: String

    public init(spec: GPIOLineSpec) throws {
        switch spec.locate() {
        case .failure(let e): throw e
        case .success(let (chip, offset, at)):
            defer { close(chip) }
            let fd = jamz_gpio_request_output(chip, offset, "jamzd-power-hold", spec.activeLow ? 1 : 0, 1)
            if fd < 0 { throw GPIOError("\(at): cannot request the line as output: \(errnoText())") }
            self.fd = fd
            self.at = at
        }
    }

    /// Drives the line inactive: the supply turns off.
    public func release() throws {
        if jamz_gpio_set_value(fd, 0) != 0 { throw GPIOError("\(at): cannot set the line: \(errnoText())") }
    }

    deinit { close(fd) }
}
