import Crypto
import Foundation
import JamzPlatform
import JamzCore
import NIOCore
import Glibc
import NIOPosix

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
/// The connection is a SwiftNIO channel on `group` (as the server's), read as an async stream
/// with NIO's back-pressure; the file work (open, each write, the hash, fsync, rename) runs on
/// NIO's thread pool, never on an event loop or the Swift concurrency pool. `timeout` bounds
/// every step that waits (the connect, then each read: NIO's `IdleStateHandler`), so it is an
/// inactivity timeout, not a limit on the whole transfer. Cancelling the calling task closes
/// the connection (the `.part` is kept). Two concurrent fetches of the *same* id into the same
/// folder would share the `.part`: callers must not do that (different ids are fine).
public enum TrackFetcher {
    public static func fetch(_ id: TrackID, from host: String, port: Int, key: ConvoyKey, sender: MemberID,
                             into cacheDir: String, timeout: Duration,
                             group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton) async throws -> URL {
        let finalPath = (cacheDir as NSString).appendingPathComponent(id.hex + ".mp3")
        let part = PartFile(path: finalPath + ".part")
        let files = NIOThreadPool.singleton
        let offset = try await files.runIfActive { part.size() }

        let idle = TimeAmount(timeout)
        let connection: NIOAsyncChannel<ByteBuffer, ByteBuffer>
        do {
            connection = try await ClientBootstrap(group: group)
                .connectTimeout(idle)
                .connect(host: host, port: port) { ch in
                    ch.eventLoop.makeCompletedFuture {
                        try ch.pipeline.syncOperations.addHandlers(IdleStateHandler(readTimeout: idle), IdleToTimeout())
                        return try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: ch)
                    }
                }
        } catch {
            throw connectFailure(error, host: host)
        }
        let channel = connection.channel
        return try await withTaskCancellationHandler {
            try await connection.executeThenClose { inbound, outbound in
                var request = channel.allocator.buffer(capacity: 84)
                request.writeBytes(Self.request(id, offset: UInt64(offset), key: key, sender: sender))
                try await outbound.write(request)

                var stream = inbound.makeAsyncIterator()
                var pending = ByteBuffer()
                /// The next chunk, nil at end of stream (a reset counts as one: the server drops
                /// unauthenticated requests by closing).
                func next() async throws -> ByteBuffer? {
                    do { return try await stream.next() } catch let e as IOError where e.errnoCode == ECONNRESET { return nil }
                }
                while pending.readableBytes < 1 {
                    guard var more = try await next() else { throw TrackFetchError.refused }
                    pending.writeBuffer(&more)
                }
                switch pending.readInteger(as: UInt8.self)! {
                case 0: break
                case 1: throw TrackFetchError.notHere
                case 2: throw TrackFetchError.badRequest
                case let b: throw TrackFetchError.protocolError("status byte \(b)")
                }
                while pending.readableBytes < 8 {
                    guard var more = try await next() else { throw TrackFetchError.truncated(received: offset, expected: -1) }
                    pending.writeBuffer(&more)
                }
                let total = Int64(bitPattern: pending.readInteger(endianness: .little, as: UInt64.self)!)
                guard total >= 0 else { throw TrackFetchError.protocolError("size \(total)") }
                if offset > total {
                    try await files.runIfActive { part.remove() }
                    throw TrackFetchError.partialTooLong(partial: offset, track: total)
                }

                let fd = try await files.runIfActive { try part.open(at: offset) }
                // What arrived is gathered and written in batches of `writeBatch` bytes (one
                // hop to the thread pool each, not one per read), and on any failure before
                // the error goes up, so a resume starts after every byte that arrived.
                var written = offset
                var batch = channel.allocator.buffer(capacity: Self.writeBatch)
                func flush() async throws {
                    guard batch.readableBytes > 0 else { return }
                    let (chunk, at) = (batch, written)
                    try await files.runIfActive { try part.write(chunk, fd: fd, at: at) }
                    written += Int64(batch.readableBytes)
                    batch.clear()
                }
                do {
                    while written + Int64(batch.readableBytes) < total {
                        if pending.readableBytes == 0 {
                            guard let more = try await next() else {
                                try await flush()
                                throw TrackFetchError.truncated(received: written, expected: total)
                            }
                            pending = more
                        }
                        // Bytes past the announced size are not the file's: not written.
                        let left = total - written - Int64(batch.readableBytes)
                        var chunk = pending.readSlice(length: Int(min(Int64(pending.readableBytes), left)))!
                        batch.writeBuffer(&chunk)
                        if batch.readableBytes >= Self.writeBatch { try await flush() }
                    }
                    try await flush()
                    return try await files.runIfActive { try part.commit(fd: fd, as: finalPath, id: id) }
                } catch {
                    try? await flush()   // what arrived before a timeout or a reset (a failed write fails again, harmlessly)
                    try? await files.runIfActive { part.close(fd) }
                    throw error
                }
            }
        } onCancel: {
            channel.close(promise: nil)
        }
    }

    /// Bytes written to the `.part` at a time.
    static let writeBatch = 256 * 1024

    /// The 84 request bytes for `id` from `offset`.
    static func request(_ id: TrackID, offset: UInt64, key: ConvoyKey, sender: MemberID) -> [UInt8] {
        var payload = id.bytes
        withUnsafeBytes(of: offset.littleEndian) { payload += $0 }
        let envelope = Envelope.seal(payload: payload, sender: sender, seq: UInt64.random(in: 1...UInt64.max), key: key)
        return [UInt8(envelope.count >> 8), UInt8(envelope.count & 0xFF)] + envelope
    }

    /// A failed connect as a `TrackFetchError`: the first attempt's errno (refused, unreachable),
    /// a name that did not resolve, or the timeout.
    static func connectFailure(_ error: any Error, host: String) -> any Error {
        if let e = error as? ChannelError, case .connectTimeout = e { return TrackFetchError.timedOut }
        if let e = error as? NIOConnectionError {
            for f in e.connectionErrors {
                if let io = f.error as? IOError { return TrackFetchError.system(call: "connect", errno: io.errnoCode) }
                if let c = f.error as? ChannelError, case .connectTimeout = c { return TrackFetchError.timedOut }
            }
            return e.connectionErrors.isEmpty ? TrackFetchError.unresolved(host) : error
        }
        if let io = error as? IOError { return TrackFetchError.system(call: "connect", errno: io.errnoCode) }
        if error is SocketAddressError { return TrackFetchError.unresolved(host) }
        return error
    }

    /// The `.part` file's blocking work (run on NIO's thread pool).
    struct PartFile: Sendable {
        let path: String

        private func sys(_ call: String) -> TrackFetchError { .system(call: "\(call) \(path)", errno: errno) }

        /// Its size; 0 when there is none.
        func size() -> Int64 {
            var st = stat()
            return stat(path, &st) == 0 ? Int64(st.st_size) : 0
        }

        func remove() { unlink(path) }

        /// Opens it cut to `offset` bytes: appending starts exactly where the request said, even
        /// if the file changed since it was measured.
        func open(at offset: Int64) throws -> Int32 {
            let fd = Glibc.open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
            guard fd >= 0 else { throw sys("open") }
            guard ftruncate(fd, off_t(offset)) == 0 else { let e = sys("ftruncate"); Glibc.close(fd); throw e }
            return fd
        }

        func close(_ fd: Int32) { _ = Glibc.close(fd) }

        func write(_ chunk: ByteBuffer, fd: Int32, at: Int64) throws {
            try chunk.withUnsafeReadableBytes { p in
                var done = 0
                while done < p.count {
                    let w = retryingEINTR { pwrite(fd, p.baseAddress! + done, p.count - done, off_t(at) + off_t(done)) }
                    guard w >= 0 else { throw sys("write") }
                    done += w
                }
            }
        }

        /// Hashes the whole file as it is on disk; if it is `id`, fsyncs it and renames it to
        /// `finalPath` (durably: the folder is synced too). Otherwise deletes it. Closes `fd`.
        func commit(fd: Int32, as finalPath: String, id: TrackID) throws -> URL {
            defer { close(fd) }
            var hasher = SHA256()
            var buffer = [UInt8](repeating: 0, count: 64 * 1024)
            var at: Int64 = 0
            while true {
                let n = buffer.withUnsafeMutableBytes { b in retryingEINTR { pread(fd, b.baseAddress!, b.count, off_t(at)) } }
                guard n >= 0 else { throw sys("read") }
                if n == 0 { break }
                buffer.withUnsafeBytes { hasher.update(bufferPointer: UnsafeRawBufferPointer(rebasing: $0[0..<n])) }
                at += Int64(n)
            }
            let actual = TrackID(digest: hasher.finalize())!
            guard actual == id else {
                unlink(path)
                throw TrackFetchError.hashMismatch(expected: id, actual: actual)
            }
            guard fsync(fd) == 0 else { throw sys("fsync") }
            do { try DurableFile.commit(path, as: finalPath) } catch { throw sys("rename") }
            return URL(fileURLWithPath: finalPath)
        }
    }
}

/// Turns NIO's read-idle event into `TrackFetchError.timedOut` on the channel's stream.
private final class IdleToTimeout: ChannelInboundHandler, Sendable {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let e = event as? IdleStateHandler.IdleStateEvent, e == .read {
            context.fireErrorCaught(TrackFetchError.timedOut)
            context.close(promise: nil)
        } else {
            context.fireUserInboundEventTriggered(event)
        }
    }
}
