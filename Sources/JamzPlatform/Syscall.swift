import Glibc

/// Calls `body` again while it fails with EINTR (a signal came in): the one retry of an
/// interrupted system call. Returns what the call returned; on -1, errno is the call's.
@inline(__always)
public func retryingEINTR<T: FixedWidthInteger & SignedInteger>(_ body: () -> T) -> T {
    while true {
        let r = body()
        if r != -1 || errno != EINTR { return r }
    }
}

/// errno's text.
public func errnoText(_ e: Int32 = errno) -> String { String(cString: strerror(e)) }
