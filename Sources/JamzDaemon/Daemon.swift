import Foundation
import JamzAudio
import JamzCore
import JamzStore
import Logging
import NIOPosix
import ServiceLifecycle

/// `jamzd`: opens the store (moving a broken one aside), reconciles the cache, starts the audio
/// path, restores the player, serves the control socket, tells systemd it is ready, and on
/// SIGTERM fades out, saves and exits 0.
public enum Daemon {
    /// Starts everything, serves until SIGTERM/SIGINT, then fades out, saves and returns.
    public static func run(config: DaemonConfig, configProblems: [String], logger: Logger) async throws {
        let d = try await start(config: config, configProblems: configProblems, logger: logger)
        SystemdNotify.send("READY=1\nSTATUS=playing through \(d.renderer.outputLabel)")
        let service = DaemonService(daemon: d)
        let group = ServiceGroup(configuration: .init(services: [.init(service: service)],
                                                      gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        try await group.run()
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

        let player = Player(store: store, cache: cache, renderer: renderer, clock: clock, config: config, logger: logger)
        renderer.onEntryFailed = { id, why in Task { await player.entryFailed(id, reason: why) } }
        renderer.onStartSlipped = { moved in Task { await player.startSlipped(moved) } }
        // Read before the player restores (and re-saves) its state: a convoy car resumes from it.
        let savedPlayer = try await store.pool.read { db in try PlayerState.load(db) }
        try await player.restore()

        let library = Library(cache: cache, rate: config.sampleRate, logger: logger)
        let convoy = try await Convoy.load(store: store, cache: cache, clock: clock, player: player, config: config, logger: logger)
        await convoy.resume(saved: savedPlayer)
        var where_ = Location.Settings()
        if config.gpsPort > 0 { where_.gps = .init(host: config.gpsHost, port: config.gpsPort) }
        where_.history.retention = Nanos(config.historyDays) * 86_400 * nanosPerSecond
        where_.together = .init(radius: config.togetherRadiusM, enterDwell: Nanos(config.togetherDwellS * 1e9), leaveDwell: Nanos(config.togetherDwellS * 1e9))
        let location = Location(settings: where_, store: store, clock: clock, me: convoy.me, logger: logger)
        location.start()
        await convoy.attach(location)
        await convoy.start(group: MultiThreadedEventLoopGroup.singleton)
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
        let server = ControlServer(path: config.socket, commands: commands, logger: logger)
        let channel = try await server.bind()
        logger.info("control socket \(config.socket); data in \(config.dataDir)")
        return Running(store: store, player: player, renderer: renderer, convoy: convoy, location: location, commands: server.commands, server: server, channel: channel, controls: controls)
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

        /// Serves the control socket and ticks the player until cancelled; then fades out and saves.
        public func serve() async {
            await withDiscardingTaskGroup { group in
                group.addTask { try? await server.serve(channel) }
                if let controls { group.addTask { await controls.run() } }
                group.addTask {
                    while !Task.isCancelled {
                        await player.tick()
                        try? await Task.sleep(for: .milliseconds(500))
                    }
                }
                group.addTask {
                    while !Task.isCancelled {
                        await convoy.tick()
                        try? await Task.sleep(for: .milliseconds(20))
                    }
                }
                group.addTask {
                    while !Task.isCancelled {
                        await location.tick(now: location.now)
                        try? await Task.sleep(for: .seconds(1))
                    }
                }
                if let every = SystemdNotify.watchdogInterval() {
                    // systemd's watchdog (WatchdogSec=): WATCHDOG=1 at half the interval, but only
                    // while the renderer thread keeps turning (a block written, or half a second
                    // idle: its heartbeat moved in the last 2 s) and the player actor answers. A
                    // stuck output or a hung actor stops the pings and systemd restarts jamzd
                    // (Restart=always).
                    group.addTask {
                        let clock = ContinuousClock()
                        var beat = renderer.heartbeat
                        var moved = clock.now
                        var lastPing = clock.now
                        while !Task.isCancelled {
                            try? await Task.sleep(for: min(every, .milliseconds(250)))
                            guard !Task.isCancelled else { break }
                            let now = renderer.heartbeat
                            if now != beat { beat = now; moved = clock.now }
                            if clock.now - moved > .seconds(2) { continue }
                            _ = await player.isAlive()
                            if clock.now - lastPing >= every {
                                SystemdNotify.send("WATCHDOG=1")
                                lastPing = clock.now
                            }
                        }
                    }
                }
                while !Task.isCancelled { try? await Task.sleep(for: .seconds(3600)) }
                group.cancelAll()
            }
            await player.shutdown()
        }

        /// One control request, in-process (tests): the same path a socket line takes.
        public func request(_ json: String) async -> String {
            let out = await commands.handle(line: Array(json.utf8)) { _ in }
            return String(decoding: out, as: UTF8.self)
        }
    }
}

struct DaemonService: Service {
    let daemon: Daemon.Running

    func run() async throws {
        await withDiscardingTaskGroup { group in
            group.addTask { await daemon.serve() }
            try? await gracefulShutdown()
            group.cancelAll()
        }
    }
}
