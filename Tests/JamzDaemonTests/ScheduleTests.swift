import JamzAudio
import JamzCore
import NIOCore
import NIOPosix
import Synchronization
import Testing
@testable import JamzDaemon

/// The doorbell and `runDue`: the daemon's loops run when something is due and sleep otherwise.
@Suite struct ScheduleTests {
    final class Flag: Sendable {
        let value = Mutex(0)
        func bump() { value.withLock { $0 += 1 } }
        var count: Int { value.withLock { $0 } }
    }

    /// Waits (up to 20 s: a loaded machine is slow, this is no timing check) until `done`.
    func until(_ done: () -> Bool) async {
        for _ in 0..<2000 where !done() { try? await Task.sleep(for: .milliseconds(10)) }
    }

    @Test func aRingBeforeTheWaitEndsItAtOnce() async {
        let bell = Doorbell()
        bell.ring()
        bell.ring()   // rings are not counted
        await bell.wait(atMost: nil)
        // The second ring was absorbed by the same turn: a further wait needs a new ring.
        let done = Flag()
        let t = Task { await bell.wait(atMost: nil); done.bump() }
        try? await Task.sleep(for: .milliseconds(200))
        #expect(done.count == 0)
        bell.ring()
        await t.value
        #expect(done.count == 1)
    }

    @Test func aWaitWithADeadlineEndsWithoutARing() async {
        let bell = Doorbell()
        await bell.wait(atMost: 20_000_000)
        await bell.wait(atMost: 0)
        await bell.wait(atMost: -5)
    }

    @Test func cancellingEndsAWaitWithNoDeadline() async {
        let bell = Doorbell()
        let t = Task { await bell.wait(atMost: nil) }
        try? await Task.sleep(for: .milliseconds(50))
        t.cancel()
        await t.value
    }

    @Test func aStaleTimerDoesNotEndALaterWait() async {
        let bell = Doorbell()
        // A wait with a 100 ms deadline, ended early by a ring …
        let first = Task { await bell.wait(atMost: 100_000_000) }
        try? await Task.sleep(for: .milliseconds(10))
        bell.ring()
        await first.value
        // … must not have its timer end the next wait, which has none.
        let done = Flag()
        let second = Task { await bell.wait(atMost: nil); done.bump() }
        try? await Task.sleep(for: .milliseconds(300))
        #expect(done.count == 0)
        second.cancel()
        await second.value
    }

    /// A doorbell timed by an event loop, awaited by a task that prefers that loop as its
    /// executor (the convoy's loops): its deadline, its ring and its cancellation end the wait,
    /// a stale timer does not, and the task carries on on the loop's thread, not on a thread of
    /// Swift's global pool.
    @Test func aDoorbellOnAnEventLoopResumesOnTheLoop() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let loop = group.next()
        let executor = EventLoopTaskExecutor(loop)
        let bell = Doorbell(loop: loop)
        let onLoop = Flag()
        await withTaskExecutorPreference(executor) {
            await bell.wait(atMost: 20_000_000)           // the loop's timer ends it
            if loop.inEventLoop { onLoop.bump() }
            let ringer = Task { try? await Task.sleep(for: .milliseconds(50)); bell.ring() }
            await bell.wait(atMost: 60 * nanosPerSecond)  // the ring ends it, long before
            if loop.inEventLoop { onLoop.bump() }
            await ringer.value
        }
        #expect(onLoop.count == 2)
        // The 60 s timer of the wait a ring ended does not end a later wait.
        let done = Flag()
        let second = Task(executorPreference: executor) { await bell.wait(atMost: nil); done.bump() }
        try? await Task.sleep(for: .milliseconds(300))
        #expect(done.count == 0)
        second.cancel()
        await second.value
        #expect(done.count == 1)
        try await group.shutdownGracefully()
    }

    @Test func runDueTurnsOnlyWhenDueOrRung() async {
        let bell = Doorbell()
        let clock = SystemClock()
        let turns = Flag()
        let loop = Task {
            await runDue(clock: clock, doorbell: bell) {
                turns.bump()
                // Due again in 10 ms for the first three turns, then only when rung.
                return turns.count < 3 ? clock.now() + 10_000_000 : nil
            }
        }
        await until { turns.count >= 3 }
        // No deadline any more: no turn until a ring.
        try? await Task.sleep(for: .milliseconds(300))
        #expect(turns.count == 3)
        bell.ring()
        await until { turns.count >= 4 }
        #expect(turns.count == 4)
        loop.cancel()
        await loop.value
    }
}
