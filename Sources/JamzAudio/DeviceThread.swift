import Foundation
import Glibc

/// A dedicated OS thread for blocking work (ALSA writes, mpg123 decoding, imports), never the
/// Swift concurrency pool. The name (15 characters at most) shows in `top -H` and /proc.
public enum DeviceThread {
    public static func start(_ name: String, _ body: @escaping @Sendable () -> Void) {
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
        t.stackSize = 1 << 20
        t.start()
    }
}
