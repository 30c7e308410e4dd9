import CBluetooth  // also where <sys/socket.h>'s SOCK_/MSG_ constants may come from (its headers include it)
import Crypto
import Foundation
import JamzPlatform
import JamzCore
import NIOCore
import NIOPosix
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

// The client side of track transfer (protocol in `TrackServer`, TrackTransfer.swift).

/// Why `TrackFetcher.fetch` failed.
public enum TrackFetchError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The server does not hold the track.
    case notHere
    /// The server called the request malformed.
    case badRequest
    /// The server closed the connection without answering: it could not authenticate the request
    /// (we are not in its convoy, or hold another key), or it timed out waiting for it.
    case refused
    /// The whole file did not hash to the requested id. The `.part` file was deleted.
    case hashMismatch(expected: TrackID, actual: TrackID)
    /// The `.part` file was longer than the track: it cannot be a prefix of it and was deleted.
    case partialTooLong(partial: Int64, track: Int64)
    /// The connection ended before the whole file arrived. The `.part` file is kept: fetching
    /// again resumes from where this stopped.
    case truncated(received: Int64, expected: Int64)
    /// No progress (connect, send or receive) for the whole timeout. The `.part` is kept.
    case timedOut
    /// Unknown status byte: not a track server.
    case protocolError(String)
    /// The host name did not resolve.
    case unresolved(String)
    /// A system call failed (connect, open, write, rename…).
    case system(call: String, errno: Int32)

    public var description: String {
        switch self {
        case .notHere: "the server does not have this track"
        case .badRequest: "the server rejected the request as malformed"
        case .refused: "the server closed the connection without answering (request not authenticated?)"
        case .hashMismatch(let e, let a): "downloaded file hashes to \(a), expected \(e.hex); partial file deleted"
        case .partialTooLong(let p, let t): "partial file (\(p) bytes) is longer than the track (\(t) bytes); deleted"
        case .truncated(let r, let e): "connection closed after \(r) of \(e) bytes; partial file kept for resuming"
        case .timedOut: "timed out"
        case .protocolError(let s): "protocol error: \(s)"
        case .unresolved(let h): "cannot resolve \(h)"
        case .system(let call, let e): "\(call): \(String(cString: strerror(e)))"
        }
    }
}

/// The client side of track transfer (protocol in `TrackServer`).
///
/// `fetch` downloads into `<cacheDir>/<hex>.mp3.part`, resuming from that file's size when it
/// exists (the server is asked from that offset), then checks the SHA-256 of the whole file
/// against the id: only a file that hashes right is fsynced and renamed to `<hex>.mp3` (the
/// rename is atomic, so the cache never holds a partial or wrong `.mp3`). A mismatch deletes the
/// `.part` (a wrong prefix would poison every resume). A broken connection keeps it.
///
/// The socket work is blocking and runs on a dedicated `Thread`, never on the Swift concurrency
/// pool; `timeout` bounds every step that waits (connect, each send, each receive), i.e. it is
/// an inactivity timeout, not a limit on the whole transfer. The fetch is not cancellable beyond
/// that. Two concurrent fetches of the *same* id into the same folder would share the `.part`:
/// callers must not do that (different ids are fine).
public enum TrackFetcher {
    public static func fetch(_ id: TrackID, from host: String, port: Int, key: ConvoyKey, sender: MemberID,
                             into cacheDir: String, timeout: Duration) async throws -> URL {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<URL, any Error>) in
            NamedThread.start("jamz-fetch") {
                continuation.resume(with: Result {
                    try fetchBlocking(id, host: host, port: port, key: key, sender: sender,
                                      cacheDir: cacheDir, timeout: timeout)
                })
            }
        }
    }

    /// The 84 request bytes for `id` from `offset`.
    static func request(_ id: TrackID, offset: UInt64, key: ConvoyKey, sender: MemberID) -> [UInt8] {
        var payload = id.bytes
        withUnsafeBytes(of: offset.littleEndian) { payload += $0 }
        let envelope = Envelope.seal(payload: payload, sender: sender, seq: UInt64.random(in: 1...UInt64.max), key: key)
        return [UInt8(envelope.count >> 8), UInt8(envelope.count & 0xFF)] + envelope
    }


    private static func sys(_ call: String) -> TrackFetchError { .system(call: call, errno: errno) }

    static func fetchBlocking(_ id: TrackID, host: String, port: Int, key: ConvoyKey, sender: MemberID,
                              cacheDir: String, timeout: Duration) throws -> URL {
        let finalPath = (cacheDir as NSString).appendingPathComponent(id.hex + ".mp3")
        let partPath = finalPath + ".part"
        var st = stat()
        let offset: Int64 = stat(partPath, &st) == 0 ? Int64(st.st_size) : 0

        let sock = try Socket.connect(host: host, port: port, timeout: timeout)
        defer { close(sock.fd) }
        try sock.send(request(id, offset: UInt64(offset), key: key, sender: sender))

        var status: UInt8 = 0
        guard try sock.receive(into: &status, count: 1) == 1 else { throw TrackFetchError.refused }
        switch status {
        case 0: break
        case 1: throw TrackFetchError.notHere
        case 2: throw TrackFetchError.badRequest
        default: throw TrackFetchError.protocolError("status byte \(status)")
        }
        var sizeLE: UInt64 = 0
        guard try sock.receive(into: &sizeLE, count: 8) == 8 else { throw TrackFetchError.truncated(received: offset, expected: -1) }
        let total = Int64(bitPattern: UInt64(littleEndian: sizeLE))
        guard total >= 0 else { throw TrackFetchError.protocolError("size \(total)") }
        if offset > total {
            unlink(partPath)
            throw TrackFetchError.partialTooLong(partial: offset, track: total)
        }

        let fd = open(partPath, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw sys("open \(partPath)") }
        var fdOpen = true
        defer { if fdOpen { close(fd) } }
        // Append exactly where the offset said, even if the file changed since the stat.
        guard ftruncate(fd, off_t(offset)) == 0 else { throw sys("ftruncate") }

        var position = offset
        var buffer = [UInt8](repeating: 0, count: 64 * 1024)
        while position < total {
            let want = Int(min(Int64(buffer.count), total - position))
            let n = try buffer.withUnsafeMutableBytes { try sock.receiveSome(into: $0.baseAddress!, count: want) }
            if n == 0 { throw TrackFetchError.truncated(received: position, expected: total) }
            try buffer.withUnsafeBytes { p in
                var done = 0
                while done < n {
                    let w = pwrite(fd, p.baseAddress! + done, n - done, off_t(position) + off_t(done))
                    if w < 0 { if errno == EINTR { continue }; throw sys("write \(partPath)") }
                    done += w
                }
            }
            position += Int64(n)
        }

        // Verify the whole file, as it is on disk.
        var hasher = SHA256()
        var at: Int64 = 0
        while true {
            let n = buffer.withUnsafeMutableBytes { pread(fd, $0.baseAddress!, $0.count, off_t(at)) }
            if n < 0 { if errno == EINTR { continue }; throw sys("read \(partPath)") }
            if n == 0 { break }
            buffer.withUnsafeBytes { hasher.update(bufferPointer: UnsafeRawBufferPointer(rebasing: $0[0..<n])) }
            at += Int64(n)
        }
        let actual = TrackID(digest: hasher.finalize())!
        guard actual == id else {
            close(fd); fdOpen = false
            unlink(partPath)
            throw TrackFetchError.hashMismatch(expected: id, actual: actual)
        }
        guard fsync(fd) == 0 else { throw sys("fsync \(partPath)") }
        close(fd); fdOpen = false
        guard rename(partPath, finalPath) == 0 else { throw sys("rename \(partPath)") }
        DurableFile.syncFolder(of: finalPath)   // the rename itself durable
        return URL(fileURLWithPath: finalPath)
    }

    /// A connected blocking TCP socket with send/receive timeouts.
    struct Socket {
        let fd: Int32

        static func connect(host: String, port: Int, timeout: Duration) throws -> Socket {
            let c = timeout.components
            let ms = Int32(clamping: max(1, c.seconds * 1000 + c.attoseconds / 1_000_000_000_000_000))
            var hints = addrinfo()
            hints.ai_family = AF_UNSPEC
            #if canImport(Glibc) || canImport(Musl)
            hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
            #else
            hints.ai_socktype = SOCK_STREAM
            #endif
            var list: UnsafeMutablePointer<addrinfo>?
            guard getaddrinfo(host, String(port), &hints, &list) == 0, let first = list else {
                throw TrackFetchError.unresolved(host)
            }
            defer { freeaddrinfo(first) }
            var lastError: any Error = TrackFetchError.unresolved(host)
            var ai: UnsafeMutablePointer<addrinfo>? = first
            while let a = ai {
                ai = a.pointee.ai_next
                let fd = socket(a.pointee.ai_family, a.pointee.ai_socktype, a.pointee.ai_protocol)
                guard fd >= 0 else { lastError = sys("socket"); continue }
                do {
                    try connect(fd, a.pointee.ai_addr, a.pointee.ai_addrlen, ms: ms)
                    var tv = timeval(tv_sec: .init(ms / 1000), tv_usec: .init((ms % 1000) * 1000))
                    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
                    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
                    #if canImport(Darwin)
                    var one: Int32 = 1
                    setsockopt(fd, SOL_SOCKET, SO_NOSIGPIPE, &one, socklen_t(MemoryLayout<Int32>.size))
                    #endif
                    return Socket(fd: fd)
                } catch {
                    close(fd)
                    lastError = error
                }
            }
            throw lastError
        }

        /// Non-blocking connect bounded by `ms`, then back to blocking mode.
        private static func connect(_ fd: Int32, _ addr: UnsafeMutablePointer<sockaddr>!, _ len: socklen_t, ms: Int32) throws {
            let flags = fcntl(fd, F_GETFL)
            _ = fcntl(fd, F_SETFL, flags | O_NONBLOCK)
            if systemConnect(fd, addr, len) != 0 {
                guard errno == EINPROGRESS || errno == EINTR else { throw sys("connect") }
                var p = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
                let r = poll(&p, 1, ms)
                if r == 0 { throw TrackFetchError.timedOut }
                if r < 0 { throw sys("poll") }
                var err: Int32 = 0
                var errLen = socklen_t(MemoryLayout<Int32>.size)
                getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &errLen)
                if err != 0 { throw TrackFetchError.system(call: "connect", errno: err) }
            }
            _ = fcntl(fd, F_SETFL, flags)
        }

        func send(_ bytes: [UInt8]) throws {
            #if canImport(Glibc) || canImport(Musl)
            let flags = Int32(MSG_NOSIGNAL)
            #else
            let flags: Int32 = 0
            #endif
            try bytes.withUnsafeBytes { p in
                var done = 0
                while done < p.count {
                    let n = systemSend(fd, p.baseAddress! + done, p.count - done, flags)
                    if n < 0 {
                        if errno == EINTR { continue }
                        if errno == EAGAIN || errno == EWOULDBLOCK { throw TrackFetchError.timedOut }
                        throw sys("send")
                    }
                    done += n
                }
            }
        }

        /// One recv: the number of bytes read, 0 at end of stream. A reset counts as end of stream
        /// (the server drops unauthenticated requests by closing).
        func receiveSome(into p: UnsafeMutableRawPointer, count: Int) throws -> Int {
            while true {
                let n = recv(fd, p, count, 0)
                if n >= 0 { return n }
                if errno == EINTR { continue }
                if errno == EAGAIN || errno == EWOULDBLOCK { throw TrackFetchError.timedOut }
                if errno == ECONNRESET { return 0 }
                throw sys("recv")
            }
        }

        /// Fills `count` bytes of `value`; returns how many arrived before end of stream.
        func receive<T>(into value: inout T, count: Int) throws -> Int {
            try withUnsafeMutableBytes(of: &value) { p in
                var got = 0
                while got < count {
                    let n = try receiveSome(into: p.baseAddress! + got, count: count - got)
                    if n == 0 { break }
                    got += n
                }
                return got
            }
        }
    }
}

// The C functions, under names the `Socket` methods do not shadow.
func systemConnect(_ fd: Int32, _ addr: UnsafeMutablePointer<sockaddr>!, _ len: socklen_t) -> Int32 {
    connect(fd, addr, len)
}

func systemSend(_ fd: Int32, _ p: UnsafeRawPointer, _ n: Int, _ flags: Int32) -> Int {
    send(fd, p, n, flags)
}

func systemClose(_ fd: Int32) {
    _ = close(fd)
}
