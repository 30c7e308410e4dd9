import Foundation
import Logging
import NIOCore
import NIOHTTP1
import NIOWebSocket
import Synchronization

/// Something the phone page shows has changed: fired by the player (a new convoy playlist, a
/// start or stop), the location (another car's beacon) and every command that acts. Listeners
/// are the page's WebSocket connections; firing with none costs a lock and an empty loop.
final class ChangeSignal: Sendable {
    private let listeners = Mutex<[Int: AsyncStream<Void>.Continuation]>([:])
    private static let nextID = Atomic<Int>(0)

    func fire() {
        listeners.withLock { for c in $0.values { c.yield() } }
    }

    /// One stream of "something changed" from any of `signals`; a burst while the listener is
    /// busy is one element.
    static func listen(_ signals: [ChangeSignal]) -> (id: Int, stream: AsyncStream<Void>) {
        let (stream, cont) = AsyncStream<Void>.makeStream(bufferingPolicy: .bufferingNewest(1))
        let id = nextID.add(1, ordering: .relaxed).newValue
        for s in signals { s.listeners.withLock { $0[id] = cont } }
        return (id, stream)
    }

    static func stop(_ id: Int, _ signals: [ChangeSignal]) {
        for s in signals { s.listeners.withLock { $0.removeValue(forKey: id) }?.finish() }
    }
}

/// What a connection to the page turned out to be once its first request was read.
enum PageConnection: Sendable {
    case http(PageServer.Connection, client: String)
    case live(NIOAsyncChannel<WebSocketFrame, WebSocketFrame>, client: String)
}

extension PageServer {
    /// The WebSocket upgrade on `/api/live`: only with a live session and from the page's own
    /// origin. Refused, the request goes on as plain HTTP and is answered 401/403.
    func liveUpgrader(client: String) -> NIOTypedWebSocketServerUpgrader<PageConnection> {
        NIOTypedWebSocketServerUpgrader<PageConnection>(
            maxFrameSize: 1 << 12,
            shouldUpgrade: { [access] channel, head in
                let ok = head.uri == "/api/live" && access.valid(cookieHeader: head.headers["Cookie"].first) && PageServer.sameOrigin(head)
                return channel.eventLoop.makeSucceededFuture(ok ? HTTPHeaders() : nil)
            },
            upgradePipelineHandler: { channel, _ in
                channel.eventLoop.makeCompletedFuture {
                    // A live page only listens: its silence is not idleness.
                    _ = channel.pipeline.removeHandler(name: PageServer.idleHandler)
                    return .live(try NIOAsyncChannel<WebSocketFrame, WebSocketFrame>(wrappingChannelSynchronously: channel), client: client)
                }
            })
    }

    /// The page's state as it is now, then again after each change (coalesced: a burst of
    /// changes while one state is being gathered or sent is one more push). No timer: the
    /// position between pushes is extrapolated by the page from the state's sample instant.
    func live(_ ws: NIOAsyncChannel<WebSocketFrame, WebSocketFrame>, client: String) async {
        counters.add("page.live_connections")
        let (id, stream) = ChangeSignal.listen(changes)
        defer { ChangeSignal.stop(id, changes) }
        do {
            try await ws.executeThenClose { inbound, outbound in
                try await withThrowingTaskGroup(of: Void.self) { group in
                    group.addTask {
                        try await self.push(outbound)
                        for await _ in stream { try await self.push(outbound) }
                    }
                    group.addTask {
                        for try await frame in inbound {
                            switch frame.opcode {
                            case .ping:
                                try await outbound.write(WebSocketFrame(fin: true, opcode: .pong, data: frame.unmaskedData))
                            case .connectionClose:
                                try? await outbound.write(WebSocketFrame(fin: true, opcode: .connectionClose, data: ByteBuffer()))
                                return
                            default:
                                break   // the page sends nothing else; commands go through POST /api/cmd
                            }
                        }
                    }
                    // Whichever ends first (the phone went away, or a write failed) ends both.
                    try await group.next()
                    group.cancelAll()
                }
            }
        } catch {
            logger.debug("page live connection from \(client) closed: \(error)")
        }
    }

    private func push(_ outbound: NIOAsyncChannelOutboundWriter<WebSocketFrame>) async throws {
        let s = await stateJSON()
        try await outbound.write(WebSocketFrame(fin: true, opcode: .text, data: ByteBuffer(bytes: s)))
    }

    /// Browsers send an Origin with every POST and WebSocket handshake: it must name the host
    /// the request was sent to. Clients that are not browsers send none (and no ambient cookie).
    static func sameOrigin(_ h: HTTPRequestHead) -> Bool {
        guard let origin = h.headers["Origin"].first else { return true }
        return origin == "http://\(h.headers["Host"].first ?? "")"
    }
}
