import Foundation
import JamzPlatform
import Glibc

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
/// until `stop` or an error: sleeps in poll() on the fd and the stop (no timeout: an idle device
/// costs no wake-ups), reads whatever is there, hands each whole record to `record` (a partial
/// one waits for the rest).
public func readRecords(fd: Int32, size: Int, stop: StopSignal, _ record: (UnsafeRawBufferPointer) -> Void) -> ReadEnd {
    var buf = [UInt8](repeating: 0, count: size * 64)
    var have = 0
    while true {
        switch waitReadable([fd], stop: stop) {
        case .stopped: return .stopped
        case .failed(let e): return .failed(e)
        case .timedOut: continue
        case .ready(_, let events): if events & Int16(POLLNVAL) != 0 { return .failed(EBADF) }
        }
        let n = retryingEINTR { buf.withUnsafeMutableBytes { b in read(fd, b.baseAddress! + have, b.count - have) } }
        if n < 0 {
            if errno == EAGAIN { continue }
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
}

/// Opens a FIFO (the documented test/integration hook) read-write so it never reports end of
/// file when a writer leaves (and, with no writer yet, simply waits for one); anything else
/// read-only. Non-blocking, close-on-exec.
func openInput(_ path: String) -> (fd: Int32, isFIFO: Bool)? {
    var st = stat()
    guard stat(path, &st) == 0 else { return nil }
    let fifo = (st.st_mode & S_IFMT) == S_IFIFO
    let fd = retryingEINTR { open(path, (fifo ? O_RDWR : O_RDONLY) | O_NONBLOCK | O_CLOEXEC) }
    return fd < 0 ? nil : (fd, fifo)
}

