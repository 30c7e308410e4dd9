import Foundation
import JamzCore
import Logging
import NIOCore
import NIOPosix

/// The control socket: a Unix stream socket speaking JSON lines (`ControlRequest` in, progress
/// lines and one reply line out), served with SwiftNIO. Requests on one connection are answered
/// in order; connections are independent.
struct ControlServer: Sendable {
    let path: String
    let commands: Commands
    let logger: Logger

    /// Binds the socket (mode 0660, replacing a stale one) and serves until cancelled.
    func bind() async throws -> NIOAsyncChannelOfConnections {
        let dir = (path as NSString).deletingLastPathComponent
        if !dir.isEmpty {
            try await onThread("jamz-mkdir") { try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true) }
        }
        let server = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .bind(unixDomainSocketPath: path, cleanupExistingSocketFile: true) { channel in
                channel.eventLoop.makeCompletedFuture {
                    try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel)
                }
            }
        chmod(path, 0o660)
        return server
    }

    func serve(_ server: NIOAsyncChannelOfConnections) async throws {
        defer { unlink(path) }
        try await withThrowingDiscardingTaskGroup { group in
            try await server.executeThenClose { inbound in
                for try await conn in inbound {
                    group.addTask { await self.handle(conn) }
                }
            }
        }
    }

    private func handle(_ conn: NIOAsyncChannel<ByteBuffer, ByteBuffer>) async {
        do {
            try await conn.executeThenClose { inbound, outbound in
                var pending = [UInt8]()
                for try await var buf in inbound {
                    pending.append(contentsOf: buf.readBytes(length: buf.readableBytes) ?? [])
                    if pending.count > 1 << 20 {
                        try await outbound.write(ByteBuffer(bytes: Commands.line(Commands.failure("request line too long (over 1 MiB)"))))
                        return
                    }
                    while let nl = pending.firstIndex(of: UInt8(ascii: "\n")) {
                        let line = Array(pending[..<nl])
                        pending.removeSubrange(...nl)
                        if line.allSatisfy({ $0 == 32 || $0 == 13 || $0 == 9 }) { continue }
                        let reply = await commands.handle(line: line) { progress in
                            try? await outbound.write(ByteBuffer(bytes: progress))
                        }
                        try await outbound.write(ByteBuffer(bytes: reply))
                    }
                }
            }
        } catch {
            logger.debug("control connection closed: \(error)")
        }
    }
}

typealias NIOAsyncChannelOfConnections = NIOAsyncChannel<NIOAsyncChannel<ByteBuffer, ByteBuffer>, Never>
