import JamzCore
import JamzNet
import Logging
import Synchronization

/// The phone page on the board's interfaces (`[page] listen = ["wlan1"]`) as their addresses
/// come: a hotspot interface often gets its address after jamzd has started. The kernel's
/// notices (`InterfaceWatch`, rtnetlink, no polling) make it look at the interfaces again; an
/// address not served yet is bound and handed to the running server. A socket stays bound to an
/// address that goes away and serves again when it comes back.
final class PageBinder: Sendable {
    let config: DaemonConfig
    let server: PageServer
    let info: PageInfo
    let logger: Logger
    let stream: AsyncStream<PageServer.Listener>
    private let continuation: AsyncStream<PageServer.Listener>.Continuation
    private let bound = Mutex<Set<String>>([])
    private let watch = Mutex<InterfaceWatch?>(nil)
    /// A look running, and whether another is wanted after it (a burst of notices is two looks).
    private let looking = Mutex<(running: Bool, again: Bool)>((false, false))

    init(config: DaemonConfig, server: PageServer, info: PageInfo, bound: [String], logger: Logger) {
        self.config = config; self.server = server; self.info = info; self.logger = logger
        (stream, continuation) = AsyncStream.makeStream(of: PageServer.Listener.self)
        self.bound.withLock { $0 = Set(bound) }
    }

    /// Starts listening to the kernel's notices (nothing to do when the addresses were given).
    func start() {
        guard config.pageListen.isEmpty else { continuation.finish(); return }
        do {
            let w = try InterfaceWatch { [weak self] changes in
                guard changes.contains(where: { $0.kind != .linkGone && $0.kind != .addressGone }) else { return }
                self?.look()
            }
            watch.withLock { $0 = w }
        } catch {
            logger.error("phone page: no interface notices (\(error)); served on the addresses found at start only")
        }
    }

    func stop() {
        watch.withLock { $0?.stop(); $0 = nil }
        continuation.finish()
    }

    private func look() {
        let start = looking.withLock { l -> Bool in
            if l.running { l.again = true; return false }
            l.running = true
            return true
        }
        guard start else { return }
        Task {
            repeat {
                await bindNew()
            } while looking.withLock { l -> Bool in
                if l.again { l.again = false; return true }
                l.running = false
                return false
            }
        }
    }

    private func bindNew() async {
        guard let now = try? await PageServer.addresses(config: config, logger: nil) else { return }
        let new = now.filter { a in bound.withLock { !$0.contains(a) } }
        for a in new {
            do {
                let l = try await server.bind([a])
                bound.withLock { _ = $0.insert(a) }
                info.add(url: "http://\(a)/")
                for x in l { continuation.yield(x) }
                logger.notice("phone page now also on \(a)")
            } catch {
                logger.error("phone page: cannot listen on \(a): \(error)")
            }
        }
    }
}

/// The page's addresses (they grow as interfaces get addresses) and its PIN, for `jamz status`.
final class PageInfo: Sendable {
    let pin: String
    private let urls: Mutex<[String]>
    init(pin: String, urls: [String]) { self.pin = pin; self.urls = Mutex(urls) }
    func add(url: String) { urls.withLock { if !$0.contains(url) { $0.append(url) } } }
    var report: PageReport { PageReport(urls: urls.withLock { $0 }, pin: pin) }
}
