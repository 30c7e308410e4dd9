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
    /// Addresses that could not be bound, each with the reasons logged: each reason once per
    /// address (an interface's notices come in bursts; the same failure is not a stream of lines).
    private let failing = Mutex<[String: Set<String>]>([:])
    private let watch = Mutex<InterfaceWatch?>(nil)
    /// A look running, and whether another is wanted after it (a burst of notices is two looks).
    private let looking = Mutex<(running: Bool, again: Bool)>((false, false))

    init(config: DaemonConfig, server: PageServer, info: PageInfo, logger: Logger) {
        self.config = config; self.server = server; self.info = info; self.logger = logger
        (stream, continuation) = AsyncStream.makeStream(of: PageServer.Listener.self)
    }

    /// Addresses bound by the caller (`[page] listen` in the config).
    func served(_ addresses: [String]) {
        bound.withLock { $0.formUnion(addresses) }
        for a in addresses { info.add(url: "http://\(a)/") }
    }

    /// Binds the interfaces' addresses `found` at start, one by one (one that cannot be bound yet,
    /// such as an IPv6 address still being checked for duplicates, is tried again at the next
    /// notice), then listens to the kernel's notices and looks once more: an address that came
    /// between the first look and the watch's start has no notice of its own.
    func start(found: [String]) async {
        guard config.pageListen.isEmpty else { continuation.finish(); return }
        await bind(found)
        do {
            let w = try InterfaceWatch { [weak self] changes in
                guard changes.contains(where: { $0.kind != .linkGone && $0.kind != .addressGone }) else { return }
                self?.look()
            }
            watch.withLock { $0 = w }
            look()
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
        await bind(now)
    }

    private func bind(_ addresses: [String]) async {
        for a in addresses where bound.withLock({ !$0.contains(a) }) {
            do {
                let l = try await server.bind([a])
                served([a])
                for x in l { continuation.yield(x) }
                failing.withLock { $0[a] = nil }
                logger.notice("phone page now on \(a)")
            } catch {
                let why = "\(error)"
                if failing.withLock({ $0[a, default: []].insert(why).inserted }) {
                    logger.error("phone page: cannot listen on \(a) yet: \(why)")
                }
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
