import Foundation
import JamzCore
import JamzStore
import Logging
import NIOCore
import NIOHTTP1
import NIOPosix

/// The passengers' phone page: HTTP/1.1 on SwiftNIO (the daemon's event loop group), off unless
/// `page.listen` / `--page-listen` names an address. The page is another front end of the
/// control commands (`Commands.execute`), never a second implementation of them; every API call
/// needs a session (`PageAccess`), and a state-changing one a same-origin request.
struct PageServer: Sendable {
    let commands: Commands
    let access: PageAccess
    let counters: Counters
    /// Fired when something the page shows changed (pushed to the live connections).
    let changes: [ChangeSignal]
    let logger: Logger
    /// An uploaded MP3 may be this big (`page.max_upload_mb`, the board's `[page] max_upload_mb`).
    var maxUpload: Int64 = 50 << 20
    /// API request bodies are small JSON objects.
    static let maxBody = 64 << 10
    /// What a phone may ask for: playback, adding a cached track, taking the DJ role.
    static let allowed: Set<ControlCommand.Name> = [.play, .pause, .toggle, .next, .prev, .add, .remove, .move, .takeControl]
    /// Of the group commands, a passenger logged in with the car's PIN may open a short code and
    /// join a convoy (not create or leave one); a session made with the convoy's join code none.
    static func allowedGroup(_ cmd: ControlCommand, role: PageAccess.Role) -> Bool {
        switch cmd {
        case .group(.invite), .group(.join): role == .pin
        default: false
        }
    }

    static let idleHandler = "page-idle"
    typealias Connection = NIOAsyncChannel<HTTPServerRequestPart, HTTPServerResponsePart>
    typealias Listener = NIOAsyncChannel<EventLoopFuture<PageConnection>, Never>

    /// Parses `HOST:PORT` (an IPv4 address, or `[IPv6]:PORT`).
    static func address(_ spec: String) -> (host: String, port: Int)? {
        guard let colon = spec.lastIndex(of: ":"), let port = Int(spec[spec.index(after: colon)...]), (0...65_535).contains(port) else { return nil }
        var host = String(spec[..<colon])
        if host.hasPrefix("["), host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        guard !host.isEmpty else { return nil }
        return (host, port)
    }

    /// Where to serve: the config's/flag's HOST:PORT addresses, else the board's `[page] listen`
    /// interfaces' IPv4 and IPv6 addresses as they are now (`PageBinder` looks again when the
    /// kernel says an address or a link changed).
    static func addresses(config: DaemonConfig, logger: Logger?) async throws -> [String] {
        if !config.pageListen.isEmpty { return config.pageListen }
        guard let b = config.board, !b.pageInterfaces.isEmpty else { return [] }
        let devices = try await onThread("jamz-page-ifaddrs") { try System.enumerateDevices() }
        var out: [String] = []
        for name in b.pageInterfaces {
            let found = devices.filter { $0.name == name }.compactMap { d -> String? in
                guard let ip = d.address?.ipAddress else { return nil }
                if case .v6 = d.address {
                    guard !ip.lowercased().hasPrefix("fe80") else { return nil }   // link-local needs a scope id
                    return "[\(ip)]:\(b.pagePort)"
                }
                return "\(ip):\(b.pagePort)"
            }
            if found.isEmpty { logger?.notice("phone page: interface \(name) has no address yet; served there when it gets one") }
            out += found
        }
        return out
    }

    /// Binds one listening socket per address. Each connection is HTTP, or becomes the live
    /// WebSocket (`PageLive.swift`) when its first request is a valid upgrade.
    func bind(_ specs: [String]) async throws -> [Listener] {
        var out: [Listener] = []
        for spec in specs {
            guard let (host, port) = PageServer.address(spec) else { throw PageError("page listen \"\(spec)\": expected HOST:PORT") }
            let l = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
                .bind(host: host, port: port) { channel in
                    channel.eventLoop.makeCompletedFuture {
                        let client = channel.remoteAddress?.ipAddress ?? "?"
                        let upgrade = NIOTypedHTTPServerUpgradeConfiguration<PageConnection>(
                            upgraders: [self.liveUpgrader(client: client)],
                            notUpgradingCompletionHandler: { channel in
                                channel.eventLoop.makeCompletedFuture { .http(try Connection(wrappingChannelSynchronously: channel), client: client) }
                            })
                        // Malformed requests and oversized headers (NIOHTTP1's 80 KB cap) get a 400;
                        // `PageGuard` then counts and closes, and closes a connection idle for 60 s.
                        let ops = channel.pipeline.syncOperations
                        try ops.addHandler(IdleStateHandler(readTimeout: .seconds(60)), name: PageServer.idleHandler)
                        let upgraded = try ops.configureUpgradableHTTPServerPipeline(configuration: .init(upgradeConfiguration: upgrade))
                        try ops.addHandler(PageGuard(counters: self.counters))
                        return upgraded
                    }
                }
            out.append(l)
        }
        return out
    }

    /// Serves `listeners`, and each listener `more` brings (an interface that got an address).
    func serve(_ listeners: [Listener], more: AsyncStream<Listener>? = nil) async {
        await withDiscardingTaskGroup { group in
            if let more {
                group.addTask {
                    await withDiscardingTaskGroup { added in
                        for await l in more { added.addTask { await self.serve([l]) } }
                    }
                }
            }
            for l in listeners {
                group.addTask {
                    try? await withThrowingDiscardingTaskGroup { conns in
                        try await l.executeThenClose { inbound in
                            for try await upgraded in inbound {
                                conns.addTask {
                                    switch try? await upgraded.get() {
                                    case .http(let conn, let client): await self.handle(conn, client: client)
                                    case .live(let ws, let client): await self.live(ws, client: client)
                                    case nil: break   // closed before a request was read (PageGuard counted a bad one)
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    private func handle(_ conn: Connection, client: String) async {
        var upload: PageUpload?
        do {
            try await conn.executeThenClose { inbound, outbound in
                func send(_ r: PageResponse, _ h: HTTPRequestHead, close: Bool) async throws {
                    var headers = HTTPHeaders()
                    headers.add(name: "Content-Type", value: r.contentType)
                    headers.add(name: "Content-Length", value: String(r.body.count))
                    headers.add(name: "Cache-Control", value: "no-store")
                    headers.add(name: "X-Content-Type-Options", value: "nosniff")
                    headers.add(name: "X-Frame-Options", value: "DENY")
                    for (k, v) in r.headers { headers.add(name: k, value: v) }
                    if close { headers.add(name: "Connection", value: "close") }
                    try await outbound.write(.head(HTTPResponseHead(version: h.version, status: r.status, headers: headers)))
                    try await outbound.write(.body(.byteBuffer(ByteBuffer(bytes: r.body))))
                    try await outbound.write(.end(nil))
                }
                var head: HTTPRequestHead?
                var body = ByteBuffer()
                var tooBig = false
                for try await part in inbound {
                    switch part {
                    case .head(let h):
                        head = h; body.clear(); tooBig = false
                        if h.method == .POST, h.uri.split(separator: "?").first == "/api/upload" {
                            // Refused at the head: answered now, and the connection closed
                            // rather than the body read.
                            switch await beginUpload(h) {
                            case .success(let u): upload = u
                            case .failure(let r): try await send(r, h, close: true); return
                            }
                        }
                    case .body(let b):
                        if let u = upload {
                            guard try await u.append(b) else {
                                await u.discard(); upload = nil
                                if let h = head { try await send(tooLarge(), h, close: true) }
                                return
                            }
                        } else if body.readableBytes + b.readableBytes > PageServer.maxBody {
                            tooBig = true
                        } else {
                            var b = b
                            body.writeBuffer(&b)
                        }
                    case .end:
                        guard let h = head else { continue }
                        head = nil
                        let r: PageResponse
                        if let u = upload {
                            upload = nil
                            r = await finishUpload(u)
                        } else if tooBig {
                            counters.add("page.bad_requests")
                            r = .json(.payloadTooLarge, ["error": "request body over \(PageServer.maxBody / 1024) KB"])
                        } else {
                            r = await respond(h, Array(body.readableBytesView), client: client)
                        }
                        try await send(r, h, close: !h.isKeepAlive)
                        if !h.isKeepAlive { return }
                    }
                }
            }
        } catch {
            logger.debug("page connection from \(client) closed: \(error)")
        }
        // The phone went away mid-upload: nothing of it stays.
        if let u = upload { await u.discard() }
    }

    /// One request: the page itself, login, or an API call (session required).
    func respond(_ h: HTTPRequestHead, _ body: [UInt8], client: String) async -> PageResponse {
        let path = String(h.uri.split(separator: "?", maxSplits: 1).first ?? "")
        switch (h.method, path) {
        case (.GET, "/"), (.GET, "/index.html"):
            return PageResponse(status: .ok, contentType: "text/html; charset=utf-8", body: Array(PageHTML.page.utf8),
                                headers: [("Content-Security-Policy", "default-src 'self'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src 'self' data:")])
        case (.POST, "/api/login"):
            if let why = crossSite(h) { return why }
            guard let req = try? JSONDecoder().decode([String: String].self, from: Data(body)), let secret = req["pin"] else {
                counters.add("page.bad_requests")
                return .json(.badRequest, ["error": "expected {\"pin\": \"123456\"}"])
            }
            let code = await commands.convoy?.report().joinCode
            switch access.login(secret: secret, joinCode: code, client: client) {
            case .session(let token, let role):
                return .json(.ok, ["ok": "logged in", "access": role.rawValue], headers: [("Set-Cookie", PageAccess.setCookie(token))])
            case .wrong:
                return .json(.forbidden, ["error": "wrong PIN"])
            case .limited(let s):
                return .json(.tooManyRequests, ["error": "too many wrong PINs: try again in \(s) s"], headers: [("Retry-After", String(s))])
            }
        default:
            break
        }
        guard path.hasPrefix("/api/") else { return .json(.notFound, ["error": "no such page"]) }
        guard let role = access.role(cookieHeader: h.headers["Cookie"].first) else {
            counters.add("page.unauthorized")
            return .json(.unauthorized, ["error": "not logged in: enter the car's PIN"])
        }
        switch (h.method, path) {
        case (.GET, "/api/state"):
            return PageResponse(status: .ok, contentType: "application/json", body: await stateJSON(access: role))
        case (.GET, "/api/qr.svg"):
            // The join QR: the long code, for another car's passenger to scan.
            guard let code = await commands.convoy?.report().joinCode else { return .json(.notFound, ["error": "not in a convoy: no join code"]) }
            do {
                return PageResponse(status: .ok, contentType: "image/svg+xml", body: Array(try PageQR.svg(code).utf8), headers: [("Cache-Control", "no-store")])
            } catch {
                counters.add("page.qr_failures")
                return .json(.internalServerError, ["error": "\(error)"])
            }
        case (.GET, "/api/live"):
            if let why = crossSite(h) { return why }
            counters.add("page.bad_requests")
            return .json(.badRequest, ["error": "expected a WebSocket upgrade"])
        case (.POST, "/api/cmd"):
            if let why = crossSite(h) { return why }
            let cmd: ControlCommand
            do { cmd = try JSONDecoder().decode(ControlCommand.self, from: Data(body)) } catch {
                counters.add("page.bad_requests")
                let why = (error as? ControlCommand.ParseError)?.description ?? "expected {\"cmd\": NAME, \"args\": [...]}"
                return .json(.badRequest, ["error": why])
            }
            guard PageServer.allowed.contains(cmd.name) || PageServer.allowedGroup(cmd, role: role) else {
                counters.add("page.bad_requests")
                if PageServer.allowedGroup(cmd, role: .pin) {
                    return .json(.forbidden, ["error": "this needs the car's PIN (the page was opened with the convoy's code)"])
                }
                return .json(.forbidden, ["error": "\(cmd.name.rawValue) is not available on the phone page"])
            }
            let reply = await commands.execute(cmd)
            return PageResponse(status: reply.ok ? .ok : .conflict, contentType: "application/json", body: Commands.line(reply))
        default:
            return .json(.notFound, ["error": "no such call"])
        }
    }

    /// A state-changing request must come from the page itself (`sameOrigin`).
    private func crossSite(_ h: HTTPRequestHead) -> PageResponse? {
        if PageServer.sameOrigin(h) { return nil }
        counters.add("page.cross_site")
        return .json(.forbidden, ["error": "cross-site request refused"])
    }

    /// Everything the page shows, from the same commands `jamz` runs; `access`: what made the
    /// asking session (the live pushes, the same for every phone, leave it out).
    func stateJSON(access: PageAccess.Role? = nil) async -> [UInt8] {
        async let status = commands.execute(.status)
        async let queue = commands.execute(.queue)
        async let group = commands.execute(.group(.show))
        async let cars = commands.execute(.convoy)
        let catalog = commands.library.cache.store.catalog
        let tracks = (try? await onThread("jamz-page-library") { try catalog.all() }) ?? []
        let library = tracks.filter(\.cached).map { PageState.Track(id: $0.id, title: $0.title, artist: $0.artist) }
        let s = PageState(status: await status, queue: await queue, group: await group, cars: await cars, library: library, maxUploadMB: Int(maxUpload >> 20),
                          access: access?.rawValue)
        return Commands.line(s)
    }
}

struct PageState: Encodable, Sendable {
    struct Track: Encodable, Sendable {
        let id: String
        let title: String
        let artist: String
    }
    let status: ControlReplyValue
    let queue: ControlReplyValue
    let group: ControlReplyValue
    let cars: ControlReplyValue
    let library: [Track]
    let maxUploadMB: Int
    /// "pin" or "convoy-code" (`PageAccess.Role`); only in the answer to GET /api/state.
    let access: String?
}

struct PageResponse: Sendable {
    var status: HTTPResponseStatus
    var contentType: String
    var body: [UInt8]
    var headers: [(String, String)] = []

    static func json(_ status: HTTPResponseStatus, _ v: [String: String], headers: [(String, String)] = []) -> PageResponse {
        PageResponse(status: status, contentType: "application/json", body: Commands.line(v), headers: headers)
    }
}

struct PageError: Error, CustomStringConvertible {
    let description: String
    init(_ s: String) { description = s }
}

/// Counts a malformed request (NIO's error handler has answered it 400) and closes the
/// connection; closes one that sent nothing for the idle time (a half-open or slow client).
final class PageGuard: ChannelInboundHandler, Sendable {
    typealias InboundIn = NIOAny
    let counters: Counters
    init(counters: Counters) { self.counters = counters }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        context.fireChannelRead(data)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if error is HTTPParserError {
            counters.add("page.bad_requests")
            context.close(promise: nil)
        }
        context.fireErrorCaught(error)
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is IdleStateHandler.IdleStateEvent { context.close(promise: nil); return }
        context.fireUserInboundEventTriggered(event)
    }
}
