import JamzAudio
import JamzCore
import Logging
import NIOCore
import ServiceLifecycle
import Synchronization

/// Wakes a service's loop before its next deadline: something happened that may make work due
/// sooner (a command, a new peer, a new plan). Rings are not counted: one or many before a wait
/// make one early turn. One waiter at a time (the loop that owns it).
final class Doorbell: Sendable {
    private struct State {
        var rung = false
        var waiter: CheckedContinuation<Void, Never>?
        var generation: UInt64 = 0
        var cancelTimer: (@Sendable () -> Void)?
    }
    private let state = Mutex(State())
    /// Where deadlines are timed: this event loop's timers (for an actor running on that loop:
    /// the deadline and the turn then wake one thread), else a sleeping task.
    private let loop: (any EventLoop)?

    init(loop: (any EventLoop)? = nil) { self.loop = loop }

    func ring() { wake(generation: nil) }

    /// Returns when rung (or rung since the last wait), after `delay` ns (nil: no deadline), or
    /// when the task is cancelled. Runs on the caller's executor (`isolation`): an actor on an
    /// event loop waits without a hop through Swift's global pool.
    func wait(atMost delay: Nanos?, isolation: isolated (any Actor)? = #isolation) async {
        if let d = delay, d <= 0 {
            state.withLock { $0.rung = false }
            return
        }
        await withTaskCancellationHandler(operation: {
            await withCheckedContinuation(isolation: isolation) { (c: CheckedContinuation<Void, Never>) in
                let ready = state.withLock { s -> Bool in
                    if s.rung || Task.isCancelled { s.rung = false; return true }
                    s.generation &+= 1
                    s.waiter = c
                    if let d = delay {
                        let g = s.generation
                        if let loop {
                            let t = loop.scheduleTask(in: .nanoseconds(d)) { [weak self] in self?.wake(generation: g) }
                            s.cancelTimer = { t.cancel() }
                        } else {
                            let t = Task { [weak self] in
                                try? await Task.sleep(for: .nanoseconds(d))
                                self?.wake(generation: g)
                            }
                            s.cancelTimer = { t.cancel() }
                        }
                    }
                    return false
                }
                if ready { c.resume() }
            }
        }, onCancel: {
            self.wake(generation: nil)
        }, isolation: isolation)
    }

    /// Resumes the waiter (if `generation` is given, only the wait it was set for).
    private func wake(generation: UInt64?) {
        let (w, cancelTimer) = state.withLock { s -> (CheckedContinuation<Void, Never>?, (@Sendable () -> Void)?) in
            guard let w = s.waiter else {
                if generation == nil { s.rung = true }
                return (nil, nil)
            }
            if let g = generation, g != s.generation { return (nil, nil) }
            s.waiter = nil
            s.rung = false
            defer { s.cancelTimer = nil }
            return (w, s.cancelTimer)
        }
        if generation == nil { cancelTimer?() }
        w?.resume()
    }
}

/// A SwiftNIO event loop as a task executor (SE-0417): a task that prefers it runs its
/// nonisolated code there, so continuations resumed on the loop (a datagram yielded to a stream,
/// a loop timer ringing a doorbell) carry on in that loop turn instead of waking a thread of
/// Swift's global pool that would then hop back to an actor on the loop.
final class EventLoopTaskExecutor: TaskExecutor {
    let loop: any EventLoop
    init(_ loop: any EventLoop) { self.loop = loop }

    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        loop.execute { job.runSynchronously(on: self.asUnownedTaskExecutor()) }
    }
}

/// Runs `turn` whenever it is due until cancelled: `turn` does the work that is due and returns
/// the instant (on `clock`) of its next deadline, or nil when only a ring can make work due.
/// Nothing runs between deadlines: an appliance with nothing to do sleeps.
func runDue(clock: SystemClock, doorbell: Doorbell, _ turn: () async -> Nanos?) async {
    while !Task.isCancelled {
        let next = await turn()
        guard !Task.isCancelled else { return }
        await doorbell.wait(atMost: next.map { max(0, $0 - clock.now()) })
    }
}

/// One of the daemon's subsystems as a service of its ServiceGroup: `body` runs until the task
/// is cancelled or the group shuts down gracefully; then `shutdown` (fade out, save, close).
struct SubsystemService: Service, CustomStringConvertible {
    let name: String
    let body: @Sendable () async -> Void
    var shutdown: @Sendable () async -> Void = {}

    init(_ name: String, body: @escaping @Sendable () async -> Void, shutdown: @escaping @Sendable () async -> Void = {}) {
        self.name = name; self.body = body; self.shutdown = shutdown
    }

    var description: String { name }

    func run() async throws {
        await cancelWhenGracefulShutdown { await body() }   // swift-service-lifecycle's
        await shutdown()
    }
}

