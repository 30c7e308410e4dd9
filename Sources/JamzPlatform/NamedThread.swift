import Foundation
import Glibc

/// A dedicated OS thread for blocking work (ALSA writes, mpg123 decoding, device reads, gpsd,
/// Bluetooth, netlink), never the Swift concurrency pool. The name (15 characters at most)
/// shows in `top -H` and /proc.
public enum NamedThread {
    public static func start(_ name: String, stackSize: Int = 1 << 20, _ body: @escaping @Sendable () -> Void) {
        let t = Thread {
            // pthread_setname_np is not visible from Swift's Glibc module; /proc does the same.
            let fd = open("/proc/thread-self/comm", O_WRONLY)
            if fd >= 0 {
                let bytes = Array(name.utf8.prefix(15))
                _ = write(fd, bytes, bytes.count)
                close(fd)
            }
            body()
        }
        t.name = name
        t.stackSize = stackSize
        t.start()
    }

    /// Puts the calling thread in the real-time FIFO class at `priority` (1–99), as audio
    /// servers do for the thread that feeds the DAC: it then wakes when its sleep or its device
    /// says, not when the CPU is free, and the kernel applies no timer slack to it. Fails
    /// without CAP_SYS_NICE or an RLIMIT_RTPRIO allowance (returns the errno text).
    public static func makeRealtime(priority: Int32) -> String? {
        var p = sched_param()
        p.sched_priority = priority
        return sched_setscheduler(0, SCHED_FIFO, &p) == 0 ? nil : errnoText()
    }
}
