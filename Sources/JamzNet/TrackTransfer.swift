import CBluetooth  // also where <sys/socket.h>'s SOCK_/MSG_ constants may come from (its headers include it)
import Crypto
import Foundation
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

// Track transfer between cars by content hash: `TrackServer` (every car runs one on its track
// cache) and `TrackFetcher` (resumable, verified download into the cache).

/// The TCP track server of one car: hands out the MP3 files of its track cache by content hash.
///
/// ## Cache layout
/// A track lives in the cache folder as `<dir>/<sha256-hex>.mp3`, the hex being its `TrackID`
/// (lower-case SHA-256 of the file bytes). Only such names are ever served: the file name is
/// rebuilt from the 32 raw id bytes of the request, so it is always exactly 64 lower-case hex
/// digits plus `.mp3` — no path can be smuggled in. Only regular files are served.
///
/// ## Protocol (one request per TCP connection)
/// Request, client → server: a 2-byte **big-endian** length, then that many bytes of a sealed
/// envelope (`Envelope.seal`, the convoy key, the requesting member as sender, a fresh random
/// sequence number — requests are idempotent, so no replay window is kept). The envelope's
/// payload is 40 bytes: the 32 raw bytes of the track id, then the offset to start from as a
/// UInt64 **little-endian**. So a request is `2 + 26 + 40 + 16 = 84` bytes on the stream.
///
/// Response, server → client: one status byte — `0` ok, `1` not here, `2` bad request — and, only
/// when ok, the total file size as UInt64 little-endian followed by the file bytes from `offset`
/// to the end (none when `offset` ≥ size). Then the server closes the connection.
///
/// A request that does not open with the convoy key (wrong length, foreign group, forged or
/// sealed with another convoy's key) gets no answer at all: the connection is closed and
/// `Counters.refused` counts it. A request that is not whole within `requestTimeout` is dropped
/// the same way (not counted).
///
/// ## Security
/// Content is public-by-hash: the file bytes travel in clear, and integrity does not come from
/// the transport but from the client checking the SHA-256 of the whole file against the id it
/// asked for (`TrackFetcher`). What the envelope buys is access control: a car that is not a
/// convoy member cannot make a request, so it cannot pull files off a car (nor learn which ids
/// a car holds). A member's request seen on the LAN could be replayed by an eavesdropper, but
/// that only fetches bytes the eavesdropper already saw go by in clear.
///
/// Files are read in 64 KB chunks on a thread pool (`NIOThreadPool.singleton`), one chunk in
/// flight per connection, so neither the event loop nor memory is held by a large file.
public final class TrackServer: Sendable {
    /// What the server has done since it started.
    public struct Counters: Sendable, Equatable {
        /// Requests answered "ok" (the file was found and sending started).
        public var served = 0
        /// Requests dropped because they did not authenticate with the convoy key.
        public var refused = 0
        /// Authenticated requests for a track this car does not hold.
        public var notHere = 0
        /// Authenticated requests with a malformed payload.
        public var badRequests = 0
        /// File bytes handed to the sockets (counted as each chunk is written).
        public var bytesSent: Int64 = 0
        public init() {}
    }

    /// How long a connection may take to deliver its request.
    public static let requestTimeout: TimeAmount = .seconds(10)
    /// Size of the chunks read from disk and written to the socket.
    public static let chunkSize = 64 * 1024

    final class State: Sendable {
        let cacheDir: String
        let key: ConvoyKey
        let counters = Mutex(Counters())
        init(cacheDir: String, key: ConvoyKey) { self.cacheDir = cacheDir; self.key = key }
        func count(_ body: (inout Counters) -> Void) { counters.withLock { body(&$0) } }
    }

    private let channel: any Channel
    private let state: State
    private let task: Task<Void, Never>
    /// The TCP port actually bound (differs from the argument when that was 0).
    public let port: Int

    private init(channel: any Channel, state: State, task: Task<Void, Never>, port: Int) {
        self.channel = channel; self.state = state; self.task = task; self.port = port
    }

    /// A snapshot of the counters.
    public var counters: Counters { state.counters.withLock { $0 } }
    /// Requests answered "ok".
    public var served: Int { counters.served }
    /// Requests dropped for not authenticating.
    public var refused: Int { counters.refused }

    /// Binds the server and starts serving `<cacheDir>/<hex>.mp3` to holders of `key`.
    public static func start(cacheDir: String, key: ConvoyKey, host: String = "0.0.0.0", port: Int = 0,
                             group: any EventLoopGroup) async throws -> TrackServer {
        let state = State(cacheDir: cacheDir, key: key)
        let server = try await ServerBootstrap(group: group)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .serverChannelOption(.backlog, value: 64)
            .bind(host: host, port: port) { ch in
                ch.eventLoop.makeCompletedFuture {
                    try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: ch)
                }
            }
        let channel = server.channel
        let task = Task {
            await withDiscardingTaskGroup { group in
                _ = try? await server.executeThenClose { connections in
                    for try await connection in connections {
                        group.addTask { await serve(connection, state: state) }
                    }
                }
            }
        }
        return TrackServer(channel: channel, state: state, task: task, port: channel.localAddress?.port ?? port)
    }

    /// Stops accepting, aborts transfers in progress and waits until every connection is closed.
    public func close() async {
        try? await channel.close()
        task.cancel()
        await task.value
    }

    // MARK: one connection

    private enum Frame { case request([UInt8]), invalid, incomplete }

    /// Reads one length-prefixed frame (the request); nothing after it is looked at.
    private static func readFrame(_ inbound: NIOAsyncChannelInboundStream<ByteBuffer>) async throws -> Frame {
        var buffer = ByteBuffer()
        for try await var chunk in inbound {
            buffer.writeBuffer(&chunk)
            guard let length = buffer.getInteger(at: buffer.readerIndex, as: UInt16.self) else { continue }
            // A request envelope is 82 bytes; allow some slack for future payloads, no more.
            guard (Envelope.minimumCount...1024).contains(Int(length)) else { return .invalid }
            if buffer.readableBytes >= 2 + Int(length) {
                return .request(buffer.getBytes(at: buffer.readerIndex + 2, length: Int(length))!)
            }
        }
        return .incomplete
    }

    private static func serve(_ connection: NIOAsyncChannel<ByteBuffer, ByteBuffer>, state: State) async {
        let channel = connection.channel
        let deadline = channel.eventLoop.scheduleTask(in: requestTimeout) { channel.close(promise: nil) }
        await withTaskCancellationHandler {
            _ = try? await connection.executeThenClose { inbound, _ in
                let frame = try await readFrame(inbound)
                deadline.cancel()
                let payload: [UInt8]
                switch frame {
                case .incomplete: return
                case .invalid:
                    state.count { $0.refused += 1 }
                    return
                case .request(let bytes):
                    let key = state.key
                    guard let opened = try? Envelope.open(bytes, keys: { $0 == key.groupID ? key : nil }) else {
                        state.count { $0.refused += 1 }
                        return
                    }
                    payload = opened.payload
                }
                try await answer(payload, on: channel, state: state)
            }
        } onCancel: {
            channel.close(promise: nil)
        }
        deadline.cancel()
    }

    private static func status(_ s: UInt8, on channel: any Channel) async throws {
        var b = channel.allocator.buffer(capacity: 1)
        b.writeInteger(s)
        try await channel.writeAndFlush(b)
    }

    /// Answers an authenticated request payload.
    private static func answer(_ payload: [UInt8], on channel: any Channel, state: State) async throws {
        guard payload.count == 40 else {
            state.count { $0.badRequests += 1 }
            return try await status(2, on: channel)
        }
        var offset: UInt64 = 0
        for i in (32..<40).reversed() { offset = offset << 8 | UInt64(payload[i]) }
        guard offset <= UInt64(Int64.max) else {
            state.count { $0.badRequests += 1 }
            return try await status(2, on: channel)
        }
        // 64 lower-case hex digits by construction: never a path.
        let hex = TrackID(digest: payload[0..<32])!.hex
        let path = (state.cacheDir as NSString).appendingPathComponent(hex + ".mp3")
        let pool = NIOThreadPool.singleton
        let opened: (fd: Int32, size: Int64)? = try await pool.runIfActive {
            let fd = open(path, O_RDONLY | O_CLOEXEC)
            guard fd >= 0 else { return nil }
            var st = stat()
            guard fstat(fd, &st) == 0, (st.st_mode & mode_t(S_IFMT)) == mode_t(S_IFREG) else {
                systemClose(fd)
                return nil
            }
            return (fd, Int64(st.st_size))
        }
        guard let opened else {
            state.count { $0.notHere += 1 }
            return try await status(1, on: channel)
        }
        let (fd, size) = opened
        defer { systemClose(fd) }
        state.count { $0.served += 1 }
        var head = channel.allocator.buffer(capacity: 9)
        head.writeInteger(UInt8(0))
        head.writeInteger(UInt64(size), endianness: .little)
        try await channel.writeAndFlush(head)

        let allocator = channel.allocator
        var position = Int64(offset)
        while position < size {
            try Task.checkCancellation()
            let at = position
            let want = Int(min(Int64(chunkSize), size - position))
            let chunk: ByteBuffer = try await pool.runIfActive {
                var b = allocator.buffer(capacity: want)
                b.writeWithUnsafeMutableBytes(minimumWritableBytes: want) { p in
                    max(0, pread(fd, p.baseAddress, want, off_t(at)))
                }
                return b
            }
            if chunk.readableBytes == 0 { return }  // shrank under us (or EIO): the client sees a short read
            position += Int64(chunk.readableBytes)
            state.count { $0.bytesSent += Int64(chunk.readableBytes) }
            try await channel.writeAndFlush(chunk)
        }
    }
}

/// close(2), under a name `TrackServer.close()` does not shadow.
func systemClose(_ fd: Int32) {
    _ = close(fd)
}
