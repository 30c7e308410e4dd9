import Foundation
import Glibc

/// A dedicated OS thread for one device's blocking reads (never the Swift concurrency pool).
enum ReaderThread {
    static func start(_ name: String, _ body: @escaping @Sendable () -> Void) {
        let t = Thread {
            let fd = open("/proc/thread-self/comm", O_WRONLY)
            if fd >= 0 {
                let bytes = Array(name.utf8.prefix(15))
                _ = write(fd, bytes, bytes.count)
                close(fd)
            }
            body()
        }
        t.name = name
        t.stackSize = 256 << 10
        t.start()
    }

    /// Sleeps `seconds` in short naps, returning early when `stop` says so.
    static func nap(_ seconds: Double, stop: () -> Bool) {
        var left = seconds
        while left > 0 && !stop() {
            usleep(UInt32(min(left, 0.1) * 1e6))
            left -= 0.1
        }
    }
}

/// Why a record loop ended.
public enum ReadEnd: Sendable, Equatable, CustomStringConvertible {
    case stopped
    /// The writer went away (a pipe, a FIFO without a writer).
    case endOfFile
    /// read/poll failed: ENODEV when a device is unplugged.
    case failed(Int32)

    public var description: String {
        switch self {
        case .stopped: "stopped"
        case .endOfFile: "end of file"
        case .failed(let e): String(cString: strerror(e))
        }
    }
}

/// Reads fixed-size kernel records (struct input_event, struct gpio_v2_line_event) from `fd`
/// until `stop()` or an error: poll with a short timeout (so a stop is noticed), read whatever
/// is there, hand each whole record to `record` (a partial one waits for the rest).
public func readRecords(fd: Int32, size: Int, stop: () -> Bool, _ record: (UnsafeRawBufferPointer) -> Void) -> ReadEnd {
    var buf = [UInt8](repeating: 0, count: size * 64)
    var have = 0
    while !stop() {
        var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        let r = poll(&p, 1, 250)
        if r < 0 {
            if errno == EINTR { continue }
            return .failed(errno)
        }
        if r == 0 { continue }
        if p.revents & Int16(POLLNVAL) != 0 { return .failed(EBADF) }
        let n = buf.withUnsafeMutableBytes { b in read(fd, b.baseAddress! + have, b.count - have) }
        if n < 0 {
            if errno == EINTR || errno == EAGAIN { continue }
            return .failed(errno)
        }
        if n == 0 { return .endOfFile }
        have += n
        let whole = have / size * size
        buf.withUnsafeBytes { b in
            var off = 0
            while off < whole { record(UnsafeRawBufferPointer(rebasing: b[off..<off + size])); off += size }
        }
        if whole > 0 {
            buf.withUnsafeMutableBytes { b in
                if have > whole { memmove(b.baseAddress!, b.baseAddress! + whole, have - whole) }
            }
            have -= whole
        }
    }
    return .stopped
}

/// Opens a FIFO (the documented test/integration hook) read-write so it never reports end of
/// file when a writer leaves; anything else read-only. Non-blocking, close-on-exec.
func openInput(_ path: String) -> (fd: Int32, isFIFO: Bool)? {
    var st = stat()
    guard stat(path, &st) == 0 else { return nil }
    let fifo = (st.st_mode & S_IFMT) == S_IFIFO
    let fd = open(path, (fifo ? O_RDWR : O_RDONLY) | O_NONBLOCK | O_CLOEXEC)
    return fd < 0 ? nil : (fd, fifo)
}

func errnoText(_ e: Int32 = errno) -> String { String(cString: strerror(e)) }
