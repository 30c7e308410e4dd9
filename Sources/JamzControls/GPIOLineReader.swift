import CLinuxInput
import Foundation
import Glibc
import JamzCore
import Logging

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
/// thread of its own. Rising edge (inactive → active, after active-low) = pressed.
public final class GPIOLineReader: ButtonSource {
    public let name: String
    public let spec: GPIOLineSpec
    /// Deliver the line's level as soon as it is open (the ACC sense), not only its edges.
    public let reportsLevel: Bool
    let clock: ReaderClock
    let logger: Logger
    let state: ReaderState
    public var retryInterval: Double { 1.5 }

    public init(name: String, spec: GPIOLineSpec, reportsLevel: Bool = false, clock: ReaderClock, logger: Logger) {
        self.name = name; self.spec = spec; self.reportsLevel = reportsLevel; self.clock = clock; self.logger = logger
        state = ReaderState(device: spec.description)
    }

    public var report: SourceReport { state.report.withLock { $0 } }
    public func stop() { state.stopped.withLock { $0 = true } }

    public func start(_ sink: @escaping @Sendable (ControlEvent) -> Void) {
        ReaderThread.start("jamz-gpio") { [self] in run(sink) }
    }

    private func open() -> Result<(fd: Int32, kernel: Bool, at: String), GPIOError> {
        if let path = spec.path {
            guard let (fd, fifo) = openInput(path) else { return .failure(GPIOError("\(path): \(errnoText())")) }
            return .success((fd, !fifo, path))
        }
        switch spec.locate() {
        case .failure(let e): return .failure(e)
        case .success(let (chip, offset, at)):
            defer { close(chip) }
            let fd = jamz_gpio_request_input(chip, offset, "jamzd", spec.activeLow ? 1 : 0, spec.pullUp ? 1 : 0, spec.debounceMicros)
            if fd < 0 { return .failure(GPIOError("\(at): cannot request the line: \(errnoText())")) }
            return .success((fd, true, at))
        }
    }

    private func run(_ sink: @escaping @Sendable (ControlEvent) -> Void) {
        var loggedMissing = false
        while !state.isStopped {
            let line: (fd: Int32, kernel: Bool, at: String)
            switch open() {
            case .failure(let why):
                state.update { $0.state = "missing"; $0.problem = why.description; $0.path = nil }
                if !loggedMissing {
                    logger.warning("\(spec) (\(name)) not available (\(why)); trying again every \(retryInterval) s, the music goes on")
                    loggedMissing = true
                }
                ReaderThread.nap(retryInterval) { state.isStopped }
                continue
            case .success(let l): line = l
            }
            loggedMissing = false
            state.update { $0.state = "open"; $0.problem = nil; $0.path = line.at; $0.opens += 1 }
            logger.info("\(spec) (\(name)) opened: \(line.at)")
            if reportsLevel, line.kernel {
                let v = jamz_gpio_get_value(line.fd)
                if v >= 0 { sink(ControlEvent(name: name, change: v == 1 ? .pressed : .released, time: clock.now())) }
            }
            let end = GPIOLineReader.read(fd: line.fd, name: name, kernelTimestamps: line.kernel, clock: clock, state: state,
                                          stop: { state.isStopped }, sink)
            close(line.fd)
            if end == .stopped { break }
            state.update { $0.state = "missing"; $0.problem = end.description; $0.losses += 1; $0.path = nil }
            logger.warning("\(spec) (\(name)) lost (\(end)); trying again every \(retryInterval) s")
            loggedMissing = true
            ReaderThread.nap(retryInterval) { state.isStopped }
        }
        state.update { $0.state = "stopped" }
    }

    /// The reading loop over an already-open line fd (or a test's pipe fed with real
    /// `struct gpio_v2_line_event` bytes): rising → pressed, falling → released, timed by the
    /// kernel's CLOCK_MONOTONIC timestamp when `kernelTimestamps`.
    public static func read(fd: Int32, name: String, kernelTimestamps: Bool, clock: ReaderClock,
                            stop: () -> Bool, _ sink: (ControlEvent) -> Void) -> ReadEnd {
        read(fd: fd, name: name, kernelTimestamps: kernelTimestamps, clock: clock, state: nil, stop: stop, sink)
    }

    static func read(fd: Int32, name: String, kernelTimestamps: Bool, clock: ReaderClock, state: ReaderState?,
                     stop: () -> Bool, _ sink: (ControlEvent) -> Void) -> ReadEnd {
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
