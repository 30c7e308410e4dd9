import Glibc

/// Files that survive a power cut whole: either the old content or the new, never a mix.
/// Blocking (fsync): call from a thread of its own.
public enum DurableFile {
    public struct Failure: Error, CustomStringConvertible {
        public let description: String
    }

    /// Replaces `path` with `bytes`: a temporary file (`mode`), fsync, rename over, fsync of the folder.
    public static func replace(_ path: String, with bytes: [UInt8], mode: mode_t = 0o600) throws(Failure) {
        let tmp = path + ".tmp"
        unlink(tmp)
        let fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode)
        guard fd >= 0 else { throw Failure(description: "cannot write \(tmp): \(errnoText())") }
        var written = 0
        while written < bytes.count {
            let n = bytes.withUnsafeBytes { p in retryingEINTR { write(fd, p.baseAddress! + written, p.count - written) } }
            guard n > 0 else { break }
            written += n
        }
        let ok = written == bytes.count && fsync(fd) == 0
        let why = errnoText()
        close(fd)
        guard ok else { unlink(tmp); throw Failure(description: "cannot write \(tmp): \(why)") }
        try commit(tmp, as: path)
    }

    /// Renames a file already written and fsynced over `path`, then fsyncs the folder so the
    /// rename itself survives a power cut.
    public static func commit(_ written: String, as path: String) throws(Failure) {
        guard rename(written, path) == 0 else { throw Failure(description: "cannot rename \(written) to \(path): \(errnoText())") }
        syncFolder(of: path)
    }

    /// fsync of the folder holding `path` (a rename or a new file in it survives a power cut).
    public static func syncFolder(of path: String) {
        let folder = path.lastIndex(of: "/").map { String(path[..<$0]) } ?? "."
        let fd = open(folder.isEmpty ? "/" : folder, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if fd >= 0 { _ = fsync(fd); close(fd) }
    }
}
