import Glibc

/// Calls `body` again while it fails with EINTR (a signal came in): JamzNet's one retry of an
/// interrupted system call. Returns what the call returned; on -1, errno is the call's.
@inline(__always)
func retryingEINTR<T: FixedWidthInteger & SignedInteger>(_ body: () -> T) -> T {
    while true {
        let r = body()
        if r != -1 || errno != EINTR { return r }
    }
}
