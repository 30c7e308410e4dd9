import CLinuxInput
import Foundation
import Glibc
import Synchronization
import JamzPlatform

/// A stop that a reader thread blocked in poll() sees at once: a flag, and an eventfd that
/// becomes readable (and stays so: it is never read) when the stop is given.
public final class StopSignal: Sendable {
    /// The eventfd; -1 if none could be made (descriptors exhausted): waits then look at the
    /// flag every 250 ms instead.
    let fd: Int32
    private let flag = Mutex(false)

    public init() { fd = eventfd(0, Int32(EFD_CLOEXEC) | Int32(EFD_NONBLOCK)) }

    /// Sets the flag and wakes whoever waits on the eventfd. Returns at once.
    public func stop() {
        flag.withLock { $0 = true }
        guard fd >= 0 else { return }
        var one: UInt64 = 1
        _ = retryingEINTR { write(fd, &one, MemoryLayout<UInt64>.size) }
    }

    public var isStopped: Bool { flag.withLock { $0 } }

    deinit { if fd >= 0 { close(fd) } }
}

/// How a wait ended.
enum Wake: Equatable {
    /// The descriptor at this index is ready: its revents (POLLIN, POLLHUP, POLLERR, POLLNVAL).
    case ready(index: Int, events: Int16)
    case stopped
    case timedOut
    case failed(Int32)
}

/// Blocks until one of `fds` is readable (or hung up, or in error) or `stop` is given: one
/// poll() on the descriptors and the stop's eventfd, with no timeout unless one is asked for,
/// so the thread sleeps until the kernel has something for it. Negative fds are left out.
func waitReadable(_ fds: [Int32], stop: StopSignal, timeoutMs: Int32 = -1) -> Wake {
    var set = fds.map { pollfd(fd: $0, events: Int16(POLLIN), revents: 0) }
    set.append(pollfd(fd: stop.fd, events: Int16(POLLIN), revents: 0))
    // Without an eventfd the stop is only a flag: look at it every 250 ms.
    let timeout = stop.fd >= 0 ? timeoutMs : (timeoutMs < 0 ? 250 : min(timeoutMs, 250))
    let r = retryingEINTR { poll(&set, nfds_t(set.count), timeout) }
    let e = errno
    if stop.isStopped || (r > 0 && set[fds.count].revents != 0) { return .stopped }
    if r < 0 { return .failed(e) }
    if r == 0 { return .timedOut }
    for (i, p) in set.prefix(fds.count).enumerated() where p.revents != 0 { return .ready(index: i, events: p.revents) }
    return .timedOut
}

/// A thread's voluntary context switches so far (/proc/self/task/TID/status): how often it went
/// to sleep and was woken. For figures and tests; nil if unreadable.
public func voluntaryContextSwitches(thread tid: Int32) -> Int? {
    guard let text = try? String(contentsOfFile: "/proc/self/task/\(tid)/status", encoding: .utf8) else { return nil }
    let key = "voluntary_ctxt_switches:"
    guard let line = text.split(separator: "\n").first(where: { $0.hasPrefix(key) }) else { return nil }
    return Int(line.dropFirst(key.count).trimmingCharacters(in: .whitespaces))
}
