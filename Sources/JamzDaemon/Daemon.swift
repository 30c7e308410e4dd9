import Foundation
import JamzAudio
import JamzCore
import JamzLibrary
import JamzStore
import Logging
import NIOPosix
import ServiceLifecycle
import UnixSignals

/// `jamzd`: opens the store (moving a broken one aside), reconciles the cache, starts the audio
/// path, restores the player, serves the control socket, tells systemd it is ready, and on
/// SIGTERM fades out, saves and exits 0.
public enum Daemon {
    /// Starts everything, serves until SIGTERM/SIGINT, then fades out, saves and returns.
    public static func run(config: DaemonConfig, configProblems: [String], logger: Logger) async throws {
        let d = try await start(config: config, configProblems: configProblems, logger: logger)
        SystemdNotify.send("READY=1\nSTATUS=playing through \(d.renderer.outputLabel)")
        // SIGTERM/SIGINT: a graceful shutdown, services stopped in reverse order (the player,
        // first in the list, last: it fades out and saves once nothing else acts on it).
        try await d.serviceGroup(gracefulShutdownSignals: [.sigterm, .sigint], logger: logger).run()
        SystemdNotify.send("STOPPING=1")
    }

    /// Opens the store, the cache and the output, restores the player and binds the control
    /// socket: a daemon ready to serve (`Running.serve`), also usable in-process by tests.
    public static func start(config: DaemonConfig, configProblems: [String], logger: Logger) async throws -> Running {
        for p in configProblems { logger.error("\(p)") }
        let clock = SystemClock(offset: Nanos(config.clockOffsetMs * 1e6), driftPPM: config.clockDriftPPM)
        if config.clockOffsetMs != 0 || config.clockDriftPPM != 0 {
            // A test hook (never on a car): say so, with the raw instant the drift counts from,
            // so a harness can compute this clock's true reading.
            logger.warning("test clock: offset \(config.clockOffsetMs) ms, drift \(config.clockDriftPPM) ppm from raw monotonic \(clock.origin) ns")
        }

        // The store, and the cache it indexes: file system and SQLite work, done on a thread.
        let dbPath = (config.dataDir as NSString).appendingPathComponent("jamz.sqlite")
        let (opened, cache, rec) = try await onThread("jamz-open") {
            try FileManager.default.createDirectory(atPath: config.dataDir, withIntermediateDirectories: true)
            let opened = try Store.open(path: dbPath)
            let cache = try TrackCache(dir: URL(fileURLWithPath: config.dataDir).appendingPathComponent("cache"), store: opened.store,
                                       limits: .init(maxTracks: config.maxTracks, maxBytes: config.maxBytes), logger: logger)
            return (opened, cache, try cache.reconcile(rate: config.sampleRate))
        }
        let store = opened.store
        if let aside = opened.movedAside {
            logger.critical("database \(dbPath) could not be used (\(opened.reason ?? "?")): moved to \(aside); starting a fresh one and re-indexing the cache")
        }
        if rec.added > 0 || rec.missing > 0 {
            logger.notice("cache re-indexed: \(rec.added) file(s) added to the catalog, \(rec.missing) missing file(s) marked")
        }
        if !configProblems.isEmpty {
            store.counters.add("config.errors", Int64(configProblems.count))
        }

        // The audio path.
        let output: any AudioOutput
        if config.output.hasPrefix("file:") {
            output = FileOutput(path: String(config.output.dropFirst(5)), clock: clock)
        } else {
            output = ALSAOutput(device: String(config.output.dropFirst(5)), clock: clock, bufferMicros: config.bufferMs * 1000)
        }
        var settings = Renderer.Settings(format: config.format)
        settings.boardLatency = Nanos(config.boardLatencyMs * 1e6)
        if config.output.hasPrefix("file:") {
            // The file sink's timing is exact (it releases each block at its own instant): no
            // measurement noise to ride out, so the controller's sub-frame dead band applies.
            settings.corrector.deadbandFrames = RenderController.Settings(rate: config.sampleRate).deadbandFrames
        }
        let renderer = Renderer(settings: settings, output: output, logger: logger,
                                trackPath: { [cache] id in cache.path(for: id) })
        try await withCheckedThrowingContinuation { (c: CheckedContinuation<Void, any Error>) in
            renderer.start { error in
                if let error { c.resume(throwing: error) } else { c.resume() }
            }
        }
        logger.info("audio output: \(renderer.outputLabel), \(config.sampleRate) Hz S16_LE stereo")

        var promptSettings = config.board?.prompts ?? .init()
        if let dir = config.promptsDir { promptSettings.dir = dir }
        let prompts = await Prompts.start(settings: promptSettings, renderer: renderer, format: config.format,
                                          counters: store.counters, logger: logger)

        let player = Player(store: store, cache: cache, renderer: renderer, clock: clock, config: config, logger: logger)
        renderer.onEntryFailed = { id, why in Task { await player.entryFailed(id, reason: why) } }
        renderer.onStartSlipped = { moved in Task { await player.startSlipped(moved) } }
        // Read before the player restores (and re-saves) its state: a convoy car resumes from it.
        let savedPlayer = try await store.playerState.load()
        try await player.restore()

        let library = Library(cache: cache, rate: config.sampleRate, logger: logger)
        let convoy = try await Convoy.load(store: store, cache: cache, clock: clock, player: player, config: config, logger: logger)
        await convoy.resume(saved: savedPlayer)
        var where_ = Location.Settings()
        if config.gpsPort > 0 { where_.gps = .init(host: config.gpsHost, port: config.gpsPort) }
        where_.declaredWallAccuracy = config.testGPSTimeAccuracy
        where_.history.retention = Nanos(config.historyDays) * 86_400 * nanosPerSecond
        where_.together = .init(radius: config.togetherRadiusM, enterDwell: Nanos(config.togetherDwellS * 1e9), leaveDwell: Nanos(config.togetherDwellS * 1e9))
        let location = Location(settings: where_, store: store, clock: clock, me: convoy.me, logger: logger)
        location.start()
        await convoy.attach(location)
        await convoy.attach(prompts)
        location.attach(prompts)
        await convoy.start()
        await convoy.follow()
        var commands = Commands(player: player, library: library, convoy: convoy, location: location, logger: logger)
        var controls: Controls?
        if !config.boardProblems.isEmpty {
            for p in config.boardProblems { logger.error("\(p)") }
            store.counters.add("controls.board_errors", Int64(config.boardProblems.count))
        }
        if let board = config.board {
            // Buttons act through the same commands as the control socket (no status from them).
            controls = Controls(board: board, commands: commands, player: player, clock: clock, counters: store.counters, logger: logger)
            commands.controls = controls
        }
        var page: (PageServer, [PageServer.Listener], PageBinder)?
        let pageListen = try await PageServer.addresses(config: config, logger: logger)
        if !pageListen.isEmpty || config.board?.pageInterfaces.isEmpty == false {
            let access = PageAccess(pin: config.pagePin ?? config.board?.pagePin, counters: store.counters)
            let info = PageInfo(pin: access.pin, urls: [])
            commands.page = info
            var server = PageServer(commands: commands, access: access, counters: store.counters, changes: [player.changed, location.changed], logger: logger)
            server.maxUpload = Int64(config.pageMaxUploadMB ?? config.board?.pageMaxUploadMB ?? 50) << 20
            try await PageUpload.clean(PageUpload.folder(cache))
            let binder = PageBinder(config: config, server: server, info: info, logger: logger)
            // Addresses given in the config must all be served (a typo stops the daemon with the
            // reason); an interface's addresses are bound one by one as they become usable.
            let listeners = config.pageListen.isEmpty ? [] : try await server.bind(pageListen)
            if !config.pageListen.isEmpty { binder.served(pageListen) }
            await binder.start(found: config.pageListen.isEmpty ? pageListen : [])
            page = (server, listeners, binder)
            let served = info.report.urls
            logger.notice("phone page on \(served.isEmpty ? "no address yet" : served.joined(separator: ", ")), PIN \(access.pin)")
        }
        let server = ControlServer(path: config.socket, commands: commands, logger: logger)
        let channel = try await server.bind()
        logger.info("control socket \(config.socket); data in \(config.dataDir)")
        return Running(store: store, player: player, renderer: renderer, convoy: convoy, location: location, commands: server.commands, server: server, channel: channel, controls: controls, page: page)
    }

    /// A started daemon.
    public struct Running: Sendable {
        public let store: Store
        let player: Player
        let renderer: Renderer
        let convoy: Convoy
        let location: Location
        let commands: Commands
        let server: ControlServer
        let channel: NIOAsyncChannelOfConnections
        let controls: Controls?
        let page: (PageServer, [PageServer.Listener], PageBinder)?

        /// Serves until the task is cancelled; then fades out and saves (tests run it in-process).
        public func serve() async {
            try? await serviceGroup(gracefulShutdownSignals: [], logger: Logger(label: "jamzd.services")).run()
        }

        /// The daemon's subsystems as services of one group. Each runs when something is due
        /// and sleeps otherwise: no fixed-rate loop (`runDue`, `Doorbell`).
        func serviceGroup(gracefulShutdownSignals: [UnixSignal], logger: Logger) -> ServiceGroup {
            var services: [SubsystemService] = [
                SubsystemService("player", body: { [player] in
                    await runDue(clock: player.clock, doorbell: player.wakeup) { await player.tick() }
                }, shutdown: { [player] in await player.shutdown() }),
                countersService(),
                SubsystemService("control-server", body: { [server, channel] in try? await server.serve(channel) }),
                SubsystemService("convoy", body: { [convoy] in
                    await convoy.runDue()
                }, shutdown: { [convoy] in await convoy.shutdown() }),
                SubsystemService("location", body: { [location, player] in
                    await runDue(clock: player.clock, doorbell: location.wakeup) { await location.tick(now: location.now) }
                }),
            ]
            if let (server, listeners, binder) = page {
                services.append(SubsystemService("page", body: { await server.serve(listeners, more: binder.stream) },
                                                 shutdown: { binder.stop() }))
            }
            if let controls { services.append(SubsystemService("controls", body: { await controls.run() })) }
            if let every = SystemdNotify.watchdogInterval() { services.append(watchdogService(every: every)) }
            // A service that returns (the control socket closed, no controls) leaves the others running.
            let configs = services.map { ServiceGroupConfiguration.ServiceConfiguration(service: $0, successTerminationBehavior: .ignore) }
            return ServiceGroup(configuration: .init(services: configs, gracefulShutdownSignals: gracefulShutdownSignals, logger: logger))
        }

        /// Counters are counted in memory and written 5 s after the first unsaved one (one small
        /// transaction however many arrived meanwhile), and at shutdown.
        private func countersService() -> SubsystemService {
            let counters = store.counters
            return SubsystemService("counters", body: {
                let bell = Doorbell()
                counters.whenUnsaved { bell.ring() }
                while !Task.isCancelled {
                    await bell.wait(atMost: nil)
                    try? await Task.sleep(for: .seconds(5))
                    guard !Task.isCancelled else { return }
                    do { try await counters.flush() } catch { Logger(label: "jamzd").error("cannot save counters: \(error); trying again") }
                }
            }, shutdown: {
                _ = try? await onThread("jamz-counters") { try counters.flushNow() }
            })
        }

        /// systemd's watchdog (WatchdogSec=): WATCHDOG=1 at half the interval, but only while the
        /// renderer thread keeps turning (a block written since the last look, or asleep with
        /// nothing to play) and the player actor answers. A stuck output or a hung actor stops the
        /// pings and systemd restarts jamzd (Restart=always).
        private func watchdogService(every: Duration) -> SubsystemService {
            SubsystemService("watchdog", body: { [renderer, player] in
                var beat = renderer.heartbeat
                while !Task.isCancelled {
                    try? await Task.sleep(for: every)
                    guard !Task.isCancelled else { return }
                    let now = renderer.heartbeat
                    defer { beat = now }
                    guard now != beat || renderer.isParked else { continue }
                    _ = await player.isAlive()
                    SystemdNotify.send("WATCHDOG=1")
                }
            })
        }

        /// One control request, in-process (tests): the same path a socket line takes.
        public func request(_ json: String) async -> String {
            let out = await commands.handle(line: Array(json.utf8)) { _ in }
            return String(decoding: out, as: UTF8.self)
        }
    }
}
