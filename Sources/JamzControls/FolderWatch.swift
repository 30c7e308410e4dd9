import Glibc
import JamzPlatform

/// Waits for a device node to appear in a folder (/dev/input for event devices, /dev for GPIO
/// chips, a test's folder for a FIFO): inotify on the folder for the names that concern a reader.
/// IN_CREATE and IN_MOVED_TO for a new node; IN_ATTRIB because udev creates the node and then
/// fixes its owner and mode (a node that could not be opened yet can be now); IN_CLOSE_WRITE only
/// when asked (`rewrites`: a configured path, where a test's regular file may be written again;
/// never on /dev, where every close of /dev/null written to would wake the reader). A folder that does not exist yet (/dev/input on a
/// machine with no input device at all) is waited for in its parent, and so on up.
///
/// Made before the look for the device, so a node that appears between the look and the wait
/// is not missed.
final class FolderWatch {
    static let entryEvents = UInt32(IN_CREATE | IN_ATTRIB | IN_MOVED_TO)
    /// The watched folder itself went away or was renamed (watch again, from scratch).
    static let selfEvents = UInt32(IN_DELETE_SELF | IN_MOVE_SELF | IN_IGNORED | IN_Q_OVERFLOW)

    enum Outcome: Equatable { case changed, stopped, failed(Int32) }

    private let fd: Int32
    /// The name to watch for in the watched folder: an entry's test, or the next folder down.
    private let concerns: (String) -> Bool
    /// Something that concerns us already exists (a folder made while the watch on its parent
    /// was being set): the first wait returns at once.
    private var pending = false
    /// What is watched, for logs and tests.
    let watching: String

    /// Nil if inotify cannot be had (EMFILE, ENOSPC: too many watches) or no folder up the path
    /// can be watched; errno then says why.
    init?(folder: String, rewrites: Bool = false, matches: @escaping (String) -> Bool) {
        fd = inotify_init1(Int32(IN_NONBLOCK) | Int32(IN_CLOEXEC))
        guard fd >= 0 else { return nil }
        var target = folder
        var child: String?      // the next component down towards `folder`, when watching above it
        while true {
            let mask = child == nil ? Self.entryEvents | (rewrites ? UInt32(IN_CLOSE_WRITE) : 0) : UInt32(IN_CREATE | IN_MOVED_TO)
            if inotify_add_watch(fd, target, mask | UInt32(IN_DELETE_SELF | IN_MOVE_SELF | IN_ONLYDIR)) >= 0 { break }
            let e = errno
            guard e == ENOENT || e == ENOTDIR, target != "/", !target.isEmpty else {
                close(fd)
                errno = e
                return nil
            }
            let cut = target.lastIndex(of: "/") ?? target.startIndex
            child = String(target[target.index(after: cut)...])
            target = cut == target.startIndex ? "/" : String(target[..<cut])
        }
        watching = target
        if let child {
            concerns = { $0 == child }
            // Made meanwhile? (A file of that name is no folder: wait for it to be replaced.)
            var st = stat()
            pending = stat(target == "/" ? "/\(child)" : "\(target)/\(child)", &st) == 0 && (st.st_mode & S_IFMT) == S_IFDIR
        } else {
            concerns = matches
        }
    }

    deinit { close(fd) }

    /// Sleeps until something concerning the reader appears or changes in the folder, the stop
    /// is given, or `timeoutMs` (none by default) passes (→ `.changed`: look again).
    func wait(stop: StopSignal, timeoutMs: Int32 = -1, also extra: Int32 = -1) -> Outcome {
        if pending { pending = false; return .changed }
        var buf = [UInt8](repeating: 0, count: 4096)
        while true {
            switch waitReadable([fd, extra], stop: stop, timeoutMs: timeoutMs) {
            case .stopped: return .stopped
            case .failed(let e): return .failed(e)
            case .timedOut: return .changed
            case .ready(index: 1, _): return .changed
            case .ready: break
            }
            let n = retryingEINTR { buf.withUnsafeMutableBytes { read(fd, $0.baseAddress!, $0.count) } }
            if n < 0 {
                if errno == EAGAIN { continue }
                return .failed(errno)
            }
            if Self.concerned(buf.prefix(n), concerns) { return .changed }
        }
    }

    /// Whether any `struct inotify_event` in `bytes` names an entry `concerns` accepts, or says
    /// the watch itself is gone or overflowed.
    static func concerned(_ bytes: ArraySlice<UInt8>, _ concerns: (String) -> Bool) -> Bool {
        let header = MemoryLayout<inotify_event>.size       // wd, mask, cookie, len: 16 bytes
        var off = bytes.startIndex
        while off + header <= bytes.endIndex {
            let mask: UInt32 = bytes.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: off - bytes.startIndex + 4, as: UInt32.self) }
            let len = Int(bytes.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: off - bytes.startIndex + 12, as: UInt32.self) })
            let nameBytes = bytes[(off + header)..<min(off + header + len, bytes.endIndex)].prefix { $0 != 0 }
            if mask & selfEvents != 0 { return true }
            if !nameBytes.isEmpty, concerns(String(decoding: nameBytes, as: UTF8.self)) { return true }
            off += header + len
        }
        return false
    }
}
