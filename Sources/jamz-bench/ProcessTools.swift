import Foundation
import Glibc
import JamzPlatform

/// Processes the benchmark starts and measures: CPU from /proc, peak RSS, exact rusage of a child.
struct Child {
    let pid: pid_t

    /// Starts `path args` with stderr to `log` (stdout to `stdoutFD` if given); returns at once.
    static func spawn(_ path: String, _ args: [String], log: String? = nil, stdoutFD: Int32? = nil) throws -> Child {
        var fa: posix_spawn_file_actions_t = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&fa)
        defer { posix_spawn_file_actions_destroy(&fa) }
        if let fd = stdoutFD { posix_spawn_file_actions_adddup2(&fa, fd, 1) } else {
            posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0)
        }
        posix_spawn_file_actions_addopen(&fa, 2, log ?? "/dev/null", O_WRONLY | O_CREAT | O_APPEND, 0o644)
        var pid: pid_t = 0
        let argv = ([path] + args).map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        let rc = posix_spawn(&pid, path, &fa, nil, argv, environ)
        guard rc == 0 else { throw BenchError("cannot start \(path): \(String(cString: strerror(rc)))") }
        return Child(pid: pid)
    }

    /// Waits for the child; returns its exit status and resource usage.
    func wait() -> (status: Int32, usage: rusage) {
        var st: Int32 = 0
        var ru = rusage()
        _ = retryingEINTR { wait4(pid, &st, 0, &ru) }
        return (st, ru)
    }

    func kill(_ sig: Int32) { _ = Glibc.kill(pid, sig) }

    /// user+system CPU seconds so far, from /proc/PID/stat.
    var cpuSeconds: Double {
        guard let s = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
              let close = s.lastIndex(of: ")") else { return 0 }
        let f = s[s.index(after: close)...].split(separator: " ")
        // fields after the command: state(0) ppid(1) ... utime(11) stime(12)
        let ticks = Double(sysconf(Int32(_SC_CLK_TCK)))
        return ((Double(f[11]) ?? 0) + (Double(f[12]) ?? 0)) / ticks
    }

    /// CPU seconds so far per thread name (threads of the same name added up).
    var threadCPU: [String: Double] {
        let ticks = Double(sysconf(Int32(_SC_CLK_TCK)))
        var out: [String: Double] = [:]
        let tasks = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/task")) ?? []
        for t in tasks {
            guard let stat = try? String(contentsOfFile: "/proc/\(pid)/task/\(t)/stat", encoding: .utf8),
                  let open = stat.firstIndex(of: "("), let close = stat.lastIndex(of: ")") else { continue }
            let name = String(stat[stat.index(after: open)..<close])
            let f = stat[stat.index(after: close)...].split(separator: " ")
            out[name, default: 0] += ((Double(f[11]) ?? 0) + (Double(f[12]) ?? 0)) / ticks
        }
        return out
    }

    /// Per thread id so far: its name (/proc/PID/task/TID/comm), context switches (voluntary +
    /// involuntary, /proc/PID/task/TID/status: each one a wake-up), of which involuntary (preempted),
    /// and time on a CPU (ns, the first field of /proc/PID/task/TID/schedstat: finer than stat's 10 ms ticks).
    var threads: [String: (name: String, switches: Int, involuntary: Int, cpuNs: Int)] {
        var out: [String: (name: String, switches: Int, involuntary: Int, cpuNs: Int)] = [:]
        for t in (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/task")) ?? [] {
            let dir = "/proc/\(pid)/task/\(t)"
            let f = Self.fields(dir + "/status")
            guard let v = f["voluntary_ctxt_switches"], let nv = f["nonvoluntary_ctxt_switches"] else { continue }
            let name = (try? String(contentsOfFile: dir + "/comm", encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines) ?? "?"
            let ns = (try? String(contentsOfFile: dir + "/schedstat", encoding: .utf8))?.split(separator: " ").first.flatMap { Int($0) } ?? 0
            out[t] = (name, v + nv, nv, ns)
        }
        return out
    }

    /// /proc/PID/smaps_rollup in bytes: Rss, Pss, Private_Dirty, ...
    var memory: [String: Int] { Self.fields("/proc/\(pid)/smaps_rollup") }

    /// Private_Dirty bytes by what is mapped (/proc/PID/smaps: a file's name, "[heap]", "[stack]",
    /// or "anonymous" for the rest: malloc arenas beyond the heap, thread stacks, the runtime's
    /// own allocations).
    var privateDirtyByMapping: [String: Int] {
        // Read to the end: a /proc file says it is empty, and smaps is longer than one read.
        let fd = open("/proc/\(pid)/smaps", O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return [:] }
        defer { close(fd) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n <= 0 { break }
            bytes += chunk[0..<n]
        }
        let s = String(decoding: bytes, as: UTF8.self)
        var out: [String: Int] = [:]
        var name = "anonymous"
        for line in s.split(separator: "\n") {
            let parts = line.split(separator: " ", omittingEmptySubsequences: true)
            if let first = parts.first, first.contains("-"), first.allSatisfy({ $0.isHexDigit || $0 == "-" }) {
                name = parts.count >= 6 ? parts[5...].joined(separator: " ") : "anonymous"
                if let slash = name.lastIndex(of: "/"), !name.hasPrefix("[") { name = String(name[name.index(after: slash)...]) }
            } else if parts.first == "Private_Dirty:", parts.count >= 2, let kb = Int(parts[1]) {
                out[name, default: 0] += kb * 1024
            }
        }
        return out
    }

    /// Bytes this process caused to be written to storage so far (/proc/PID/io write_bytes:
    /// counted when a page cache page turns dirty, so rewriting a still-dirty page is not counted again).
    var writeBytes: Int { Self.fields("/proc/\(pid)/io")["write_bytes"] ?? 0 }

    /// "Name: value [kB]" lines of a /proc file, values in bytes where the file says kB.
    static func fields(_ path: String) -> [String: Int] {
        guard let s = try? String(contentsOfFile: path, encoding: .utf8) else { return [:] }
        var out: [String: Int] = [:]
        for line in s.split(separator: "\n") {
            guard let colon = line.firstIndex(of: ":") else { continue }
            let rest = line[line.index(after: colon)...].split(whereSeparator: { $0 == " " || $0 == "\t" })
            guard let n = rest.first.flatMap({ Int($0) }) else { continue }
            out[String(line[..<colon])] = rest.last == "kB" ? n * 1024 : n
        }
        return out
    }

    /// Peak resident set (VmHWM) in bytes.
    var peakRSS: Int { statusField("VmHWM:") }

    /// Resident memory that is the process's own (heap, stacks), not shared code pages.
    var anonRSS: Int { statusField("RssAnon:") }

    private func statusField(_ name: String) -> Int {
        guard let s = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8) else { return 0 }
        for line in s.split(separator: "\n") where line.hasPrefix(name) {
            return (Int(line.split(separator: " ", omittingEmptySubsequences: true)[1]) ?? 0) * 1024
        }
        return 0
    }
}

struct BenchError: Error, CustomStringConvertible {
    let description: String
    init(_ s: String) { description = s }
}

func monotonicNow() -> Int64 {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Int64(ts.tv_sec) * 1_000_000_000 + Int64(ts.tv_nsec)
}

func percentile(_ xs: [Double], _ p: Double) -> Double {
    guard !xs.isEmpty else { return .nan }
    let s = xs.sorted()
    let i = min(s.count - 1, max(0, Int((p / 100 * Double(s.count - 1)).rounded())))
    return s[i]
}

func waitFor(_ what: String, timeout: Double = 10, _ cond: () -> Bool) throws {
    let end = Date().addingTimeInterval(timeout)
    while !cond() {
        if Date() > end { throw BenchError("timed out waiting for \(what)") }
        usleep(20_000)
    }
}
