import CLinuxInput
import Foundation
import Glibc
import JamzControls
import JamzCore
import Logging
import Synchronization
import Testing

/// The readers against a device double at the device boundary only: a pipe or a FIFO fed with
/// real `struct input_event` / `struct gpio_v2_line_event` bytes laid out by the kernel headers
/// (through CLinuxInput). The ioctl parts (open by name, line request) need real hardware.
@Suite struct ReaderTests {
    /// Raw kernel time → daemon time: a daemon clock 5 s ahead of CLOCK_MONOTONIC.
    static let clock = ReaderClock(now: { 42 }, fromRaw: { $0 + 5 * nanosPerSecond })

    static func inputEvent(sec: Int64, usec: Int64, type: Int32, code: Int32, value: Int32) -> [UInt8] {
        var b = [UInt8](repeating: 0, count: jamz_input_event_size())
        jamz_input_event_encode(&b, sec, usec, UInt16(type), UInt16(code), value)
        return b
    }

    static func gpioEvent(ns: UInt64, rising: Bool, seq: UInt32) -> [UInt8] {
        var b = [UInt8](repeating: 0, count: jamz_gpio_v2_line_event_size())
        jamz_gpio_event_encode(&b, ns, rising ? jamz_gpio_v2_line_event_rising() : jamz_gpio_v2_line_event_falling(), 17, seq)
        return b
    }

    func pipePair() -> (r: Int32, w: Int32) {
        var fds: [Int32] = [0, 0]
        #expect(pipe(&fds) == 0)
        return (fds[0], fds[1])
    }

    @Test func structSizesAreTheKernelsForThisABI() {
        // 24 bytes on 64-bit (struct timeval), 16 on 32-bit ARM; gpio_v2_line_event is 48 everywhere.
        #expect(jamz_input_event_size() == (MemoryLayout<Int>.size == 8 ? 24 : 16))
        #expect(jamz_gpio_v2_line_event_size() == 48)
        #expect(InputCodes.keys["KEY_PLAYPAUSE"] == 164)     // spot check against the header table
        #expect(InputCodes.switches["SW_DOCK"] == 5)
    }

    @Test func evdevKeysSwitchesAndRelativeAxesBecomeNamedEvents() {
        var cfg = EvdevReader.Config(deviceName: "TrafficJamz Buttons")
        cfg.keys = [InputCodes.keys["KEY_PLAYPAUSE"]!: "play", InputCodes.keys["KEY_PROG1"]!: "dj"]
        cfg.switches = [InputCodes.switches["SW_DOCK"]!: "acc"]
        cfg.rel = [Int(REL_DIAL): "volume"]
        let (r, w) = pipePair()
        defer { close(r) }
        var bytes: [UInt8] = []
        bytes += Self.inputEvent(sec: 10, usec: 500, type: EV_KEY, code: KEY_PLAYPAUSE, value: 1)
        bytes += Self.inputEvent(sec: 10, usec: 0, type: EV_SYN, code: 0, value: 0)
        bytes += Self.inputEvent(sec: 10, usec: 90_000, type: EV_KEY, code: KEY_PLAYPAUSE, value: 2)  // autorepeat: ignored
        bytes += Self.inputEvent(sec: 10, usec: 100_000, type: EV_KEY, code: KEY_PLAYPAUSE, value: 0)
        bytes += Self.inputEvent(sec: 11, usec: 0, type: EV_KEY, code: KEY_A, value: 1)              // not mapped
        // Lost events: the levels are read again (EVIOCGKEY/EVIOCGSW, which a pipe refuses: nothing).
        bytes += Self.inputEvent(sec: 11, usec: 1, type: EV_SYN, code: SYN_DROPPED, value: 0)
        bytes += Self.inputEvent(sec: 12, usec: 0, type: EV_SW, code: SW_DOCK, value: 0)
        bytes += Self.inputEvent(sec: 13, usec: 0, type: EV_REL, code: REL_DIAL, value: -2)
        bytes += Self.inputEvent(sec: 14, usec: 0, type: EV_SW, code: SW_DOCK, value: 1)
        // Written in odd-sized pieces: a record split across reads is put back together.
        var off = 0
        while off < bytes.count {
            let n = min(7, bytes.count - off)
            _ = bytes.withUnsafeBytes { write(w, $0.baseAddress! + off, n) }
            off += n
        }
        close(w)
        var got: [ControlEvent] = []
        let end = EvdevReader.read(fd: r, config: cfg, kernelMonotonic: true, clock: Self.clock, stop: StopSignal()) { got.append($0) }
        #expect(end == .endOfFile)
        let s: Nanos = nanosPerSecond
        #expect(got == [
            ControlEvent(name: "play", change: .pressed, time: 15 * s + 500_000),
            ControlEvent(name: "play", change: .released, time: 15 * s + 100_000_000),
            ControlEvent(name: "acc", change: .released, time: 17 * s),
            ControlEvent(name: "volume", change: .relative(-2), time: 18 * s),
            ControlEvent(name: "acc", change: .pressed, time: 19 * s),
        ])
    }

    @Test func evdevWithoutMonotonicTimestampsIsTimedWhenRead() {
        var cfg = EvdevReader.Config(path: "/x")
        cfg.keys = [Int(KEY_NEXTSONG): "next"]
        let (r, w) = pipePair()
        defer { close(r) }
        let b = Self.inputEvent(sec: 999, usec: 0, type: EV_KEY, code: KEY_NEXTSONG, value: 1)
        _ = b.withUnsafeBytes { write(w, $0.baseAddress!, $0.count) }
        close(w)
        var got: [ControlEvent] = []
        _ = EvdevReader.read(fd: r, config: cfg, kernelMonotonic: false, clock: Self.clock, stop: StopSignal()) { got.append($0) }
        #expect(got == [ControlEvent(name: "next", change: .pressed, time: 42)])
    }

    @Test func gpioEdgesBecomePressAndReleaseWithKernelTimestamps() {
        let (r, w) = pipePair()
        defer { close(r) }
        var bytes = Self.gpioEvent(ns: 1_000, rising: true, seq: 1) + Self.gpioEvent(ns: 80_000_000, rising: false, seq: 2)
        var bad = Self.gpioEvent(ns: 5, rising: true, seq: 3)
        bad[8] = 9                                                         // id 9: no such edge
        bytes += bad
        _ = bytes.withUnsafeBytes { write(w, $0.baseAddress!, $0.count) }
        close(w)
        var got: [ControlEvent] = []
        let end = GPIOLineReader.read(fd: r, name: "dj", kernelTimestamps: true, clock: Self.clock, stop: StopSignal()) { got.append($0) }
        #expect(end == .endOfFile)
        #expect(got == [
            ControlEvent(name: "dj", change: .pressed, time: 5 * nanosPerSecond + 1_000),
            ControlEvent(name: "dj", change: .released, time: 5 * nanosPerSecond + 80_000_000),
        ])
    }

    /// A loop asleep on a silent pipe wakes for the stop at once (its eventfd), not at a timeout.
    @Test func aStopEndsTheLoopWithoutAnyInput() throws {
        let (r, w) = pipePair()
        defer { close(r); close(w) }
        let stop = StopSignal()
        let end = Mutex<(ReadEnd, Date)?>(nil)
        let t = Thread {
            let e = EvdevReader.read(fd: r, config: .init(path: "/x"), kernelMonotonic: false, clock: Self.clock, stop: stop) { _ in }
            end.withLock { $0 = (e, Date()) }
        }
        t.start()
        usleep(300_000)
        #expect(end.withLock { $0 } == nil)             // asleep: no input, no stop
        let stoppedAt = Date()
        stop.stop()
        try wait { end.withLock { $0 } != nil }
        let (e, at) = try #require(end.withLock { $0 })
        #expect(e == .stopped)
        print("read loop ended \(Int(at.timeIntervalSince(stoppedAt) * 1e6)) µs after the stop")
    }

    @Test func aClosedDeviceEndsTheLoopWithAnError() {
        let stop = StopSignal()              // made first: its eventfd must not take the closed fd's number
        let (r, w) = pipePair()
        close(w)
        close(r)
        let end = GPIOLineReader.read(fd: r, name: "x", kernelTimestamps: true, clock: Self.clock, stop: stop) { _ in }
        #expect(end == .failed(EBADF))
    }

    /// The hot-plug path end to end through the documented FIFO hook: missing → reported and
    /// retried; appears → opened and read; events arrive in order.
    @Test func aMissingFIFODeviceIsOpenedWhenItAppears() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("jamz-ctl-\(getpid())-\(UInt32.random(in: 0...UInt32.max))")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("buttons").path
        var cfg = EvdevReader.Config(path: path)
        cfg.keys = [Int(KEY_PROG1): "dj"]
        let reader = EvdevReader(config: cfg, clock: Self.clock, logger: Logger(label: "test"))
        let got = Mutex<[ControlEvent]>([])
        reader.start { e in got.withLock { $0.append(e) } }
        defer { reader.stop() }
        try wait { reader.report.state == "missing" && reader.report.problem != nil }
        #expect(mkfifo(path, 0o600) == 0)
        try wait(timeout: 10) { reader.report.state == "open" }
        let w = open(path, O_WRONLY)
        let bytes = Self.inputEvent(sec: 0, usec: 0, type: EV_KEY, code: KEY_PROG1, value: 1)
            + Self.inputEvent(sec: 0, usec: 0, type: EV_KEY, code: KEY_PROG1, value: 0)
        _ = bytes.withUnsafeBytes { write(w, $0.baseAddress!, $0.count) }
        close(w)
        try wait { got.withLock { $0.count } == 2 }
        #expect(got.withLock { $0.map(\.change) } == [.pressed, .released])
        #expect(reader.report.opens == 1 && reader.report.events == 2)
    }

    func tempDir() throws -> URL {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("jamz-ctl-\(getpid())-\(UInt32.random(in: 0...UInt32.max))")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        return dir
    }

    /// A missing device costs nothing while it is missing: the reader looks once, then sleeps
    /// (inotify on the folder, the stop's eventfd) until the node appears, and opens it then,
    /// without a retry timer. Its thread's voluntary context switches over 2 s idle are printed
    /// (a figure; the assertion is on the looks, which do not depend on timing).
    @Test func aMissingDeviceIsWaitedForNotLookedFor() throws {
        let dir = try tempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("buttons").path
        var cfg = EvdevReader.Config(path: path)
        cfg.keys = [Int(KEY_PROG1): "dj"]
        let reader = EvdevReader(config: cfg, clock: Self.clock, logger: Logger(label: "test"))
        reader.start { _ in }
        defer { reader.stop() }
        try wait { reader.report.state == "missing" && reader.threadID != 0 }
        // Unrelated entries in the folder do not wake it into a look either.
        _ = FileManager.default.createFile(atPath: dir.appendingPathComponent("other").path, contents: Data([1]))
        usleep(100_000)
        let looks = reader.looks
        let before = voluntaryContextSwitches(thread: reader.threadID)
        usleep(2_000_000)
        let after = voluntaryContextSwitches(thread: reader.threadID)
        #expect(reader.looks == looks, "looked \(reader.looks - looks) times while nothing changed")
        if let before, let after {
            print("missing device: reader thread made \(after - before) voluntary context switches in 2 s idle (looks: \(looks))")
            #expect(after - before <= 2)
        }
        let made = Date()
        #expect(mkfifo(path, 0o600) == 0)
        try wait { reader.report.state == "open" }
        print("device opened \(Int(Date().timeIntervalSince(made) * 1000)) ms after its node appeared")
        #expect(reader.looks == looks + 1)
    }

    /// The folder itself may be missing too (/dev/input before the first input device): its
    /// parent is watched until it appears, then the folder.
    @Test func aMissingFolderIsWaitedForInItsParent() throws {
        let dir = try tempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        let sub = dir.appendingPathComponent("input/by-test")
        let path = sub.appendingPathComponent("buttons").path
        let reader = GPIOLineReader(name: "dj", spec: { var s = GPIOLineSpec(); s.path = path; return s }(), clock: Self.clock, logger: Logger(label: "test"))
        let got = Mutex<[ControlEvent]>([])
        reader.start { e in got.withLock { $0.append(e) } }
        defer { reader.stop() }
        try wait { reader.report.state == "missing" && reader.threadID != 0 }
        usleep(200_000)
        let looks = reader.looks
        try FileManager.default.createDirectory(at: sub, withIntermediateDirectories: true)
        #expect(mkfifo(path, 0o600) == 0)
        try wait { reader.report.state == "open" }
        #expect(reader.looks <= looks + 3)      // one per folder level at most, then the node
        let w = open(path, O_WRONLY | O_NONBLOCK)
        defer { close(w) }
        let e = Self.gpioEvent(ns: 1, rising: true, seq: 1)
        _ = e.withUnsafeBytes { write(w, $0.baseAddress!, $0.count) }
        try wait { got.withLock { $0.count } == 1 }
    }

    /// A path whose folder is a file cannot appear until the file is replaced: waited for, not
    /// looked at over and over.
    @Test func aPathUnderAFileIsWaitedForWithoutSpinning() throws {
        let dir = try tempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        let file = dir.appendingPathComponent("not-a-folder")
        try Data([1]).write(to: file)
        let reader = EvdevReader(config: .init(path: file.appendingPathComponent("buttons").path), clock: Self.clock, logger: Logger(label: "test"))
        reader.start { _ in }
        defer { reader.stop() }
        try wait { reader.report.state == "missing" }
        usleep(500_000)
        #expect(reader.looks <= 2)
    }

    /// stop() wakes a reader asleep waiting for its device, and one asleep on an open device.
    @Test func aStopWakesAReaderWhetherItsDeviceIsMissingOrOpen() throws {
        let dir = try tempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        let missing = EvdevReader(config: .init(deviceName: "No Such Device"), clock: Self.clock, logger: Logger(label: "test"))
        let fifo = dir.appendingPathComponent("acc").path
        #expect(mkfifo(fifo, 0o600) == 0)
        let open = EvdevReader(config: .init(path: fifo), clock: Self.clock, logger: Logger(label: "test"))
        missing.start { _ in }
        open.start { _ in }
        try wait { missing.report.state == "missing" && open.report.state == "open" }
        usleep(200_000)
        let t0 = Date()
        missing.stop()
        open.stop()
        try wait(timeout: 2) { missing.report.state == "stopped" && open.report.state == "stopped" }
        print("both readers stopped \(Int(Date().timeIntervalSince(t0) * 1e6)) µs after stop()")
    }

    /// A regular file standing in for a device is read to its end once, not over and over: it
    /// is read again when it changes.
    @Test func aRegularFileIsReadOnceUntilItChanges() throws {
        let dir = try tempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("recording").path
        let press = Data(Self.inputEvent(sec: 0, usec: 0, type: EV_KEY, code: KEY_PROG1, value: 1))
        _ = FileManager.default.createFile(atPath: path, contents: press)
        var cfg = EvdevReader.Config(path: path)
        cfg.keys = [Int(KEY_PROG1): "dj"]
        let reader = EvdevReader(config: cfg, clock: Self.clock, logger: Logger(label: "test"))
        let got = Mutex(0)
        reader.start { _ in got.withLock { $0 += 1 } }
        defer { reader.stop() }
        try wait { got.withLock { $0 } == 1 && reader.report.losses == 1 }
        usleep(2_500_000)                 // past the 1.5 s pause after a quick loss
        #expect(got.withLock { $0 } == 1)
        #expect(reader.looks <= 3)
        try press.write(to: URL(fileURLWithPath: path))
        try wait { got.withLock { $0 } == 2 }
    }

    func wait(timeout: Double = 5, _ cond: () -> Bool) throws {
        let end = Date().addingTimeInterval(timeout)
        while !cond() {
            if Date() > end { throw CancellationError() }
            usleep(10_000)
        }
    }
}
