import CLinuxInput
import Glibc
import JamzPlatform
import Logging

/// One look for a reader's device.
enum Look<Device> {
    case found(Device, fd: Int32, at: String)
    /// Not there, and why. `watch`: a descriptor that becomes readable when it is worth looking
    /// again besides the folder (a GPIO chip watching a busy line), owned by the cycle; -1: none.
    case missing(String, watch: Int32 = -1)
}

/// A regular file (a test's stand-in) as it was when it was read to its end: not read again
/// until it changes (a new inode, or a new change time).
struct FileIdentity: Equatable {
    let dev: UInt, ino: UInt, ctimeSec: Int, ctimeNsec: Int

    init?(_ fd: Int32) {
        var st = stat()
        guard fstat(fd, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG else { return nil }
        dev = UInt(st.st_dev); ino = UInt(st.st_ino)
        ctimeSec = Int(st.st_ctim.tv_sec); ctimeNsec = Int(st.st_ctim.tv_nsec)
    }
}

/// The cycle both readers run on their own thread: look for the device; read it until it is
/// lost or the stop; while it is missing, sleep until its folder changes (`FolderWatch`: a node
/// appears, or udev fixes one's permissions) or the stop. No periodic look: a missing device
/// costs no wake-ups. Two waits have a deadline, neither taken in normal running: a device lost
/// within a second of opening is looked for again after `retryInterval` at the latest (a
/// device that fails at once is not hammered, nor waited for forever), and when inotify cannot
/// be had (EMFILE, ENOSPC) the folder is looked at every `retryInterval`.
struct DeviceCycle {
    let state: ReaderState
    /// "input \"TrafficJamz Buttons\"", "gpio DJ_BTN (dj)".
    let label: String
    /// How a failed look reads in the log: "not found", "not available".
    let missingWord: String
    let folder: String
    /// The folder is a configured path's (a test hook): a regular file written again there is
    /// a change too.
    let rewrites: Bool
    let matches: (String) -> Bool
    let retryInterval: Double
    let logger: Logger

    func run<Device>(look: () -> Look<Device>, read: (Device, _ fd: Int32, _ at: String) -> ReadEnd) {
        state.thread.withLock { $0 = jamz_gettid() }
        var loggedMissing = false, loggedNoWatch = false
        var lostFile: FileIdentity?
        var quickLoss = false
        cycle: while !state.isStopped {
            // The watch before the look: a node that appears in between wakes the wait.
            let watch = FolderWatch(folder: folder, rewrites: rewrites, matches: matches)
            if watch == nil, !loggedNoWatch {
                logger.warning("\(label): cannot watch \(folder) for the device (\(errnoText())); looking every \(retryInterval) s instead")
                loggedNoWatch = true
            }
            if quickLoss {
                quickLoss = false
                guard pause(watch, timeoutMs: Int32(retryInterval * 1000)) else { break cycle }
            }
            state.looks.withLock { $0 += 1 }
            var extra: Int32 = -1
            switch look() {
            case .missing(let why, let w):
                extra = w
                state.update { $0.state = "missing"; $0.problem = why; $0.path = nil }
                if !loggedMissing {
                    logger.warning("\(label) \(missingWord) (\(why)); waiting for it to appear, the music goes on")
                    loggedMissing = true
                }
            case .found(let device, let fd, let at):
                let identity = FileIdentity(fd)
                if let identity, identity == lostFile {
                    close(fd)        // the same file, read to its end and unchanged: wait for a change
                    break            // (out of the switch, to the wait)
                }
                loggedMissing = false
                state.update { $0.state = "open"; $0.problem = nil; $0.path = at; $0.opens += 1 }
                let opened = monotonicSeconds()
                let end = read(device, fd, at)
                close(fd)
                if end == .stopped { break cycle }
                state.update { $0.state = "missing"; $0.problem = end.description; $0.losses += 1; $0.path = nil }
                logger.warning("\(label) lost (\(end)); waiting for it to come back")
                loggedMissing = true
                lostFile = identity
                quickLoss = identity == nil && monotonicSeconds() - opened < 1
                continue cycle      // look again at once (behind a fresh watch): it may be back already
            }
            let waited = pause(watch, timeoutMs: -1, also: extra)
            if extra >= 0 { close(extra) }
            if !waited { break cycle }
        }
        state.update { $0.state = "stopped" }
    }

    /// Sleeps until the folder changes, `also` is readable, the timeout (if any) or the stop.
    /// False: stopped.
    private func pause(_ watch: FolderWatch?, timeoutMs: Int32, also: Int32 = -1) -> Bool {
        guard let watch else {
            return waitReadable([also], stop: state.stop, timeoutMs: Int32(retryInterval * 1000)) != .stopped
        }
        switch watch.wait(stop: state.stop, timeoutMs: timeoutMs, also: also) {
        case .stopped: return false
        case .changed: return true
        case .failed(let e):
            logger.warning("\(label): waiting on \(watch.watching) failed (\(errnoText(e))); looking again in \(retryInterval) s")
            return waitReadable([], stop: state.stop, timeoutMs: Int32(retryInterval * 1000)) != .stopped
        }
    }

    private func monotonicSeconds() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
    }
}
