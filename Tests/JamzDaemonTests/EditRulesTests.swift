import JamzCore
import Testing
@testable import JamzDaemon

/// Which places `jamz remove` and `jamz move` may touch (`Player.firstEditable`): past the entry
/// playing five seconds from now; nothing while the last entry ends within that margin.
@Suite struct EditRulesTests {
    let rate = 48_000
    let s = nanosPerSecond
    /// Three entries of 10 s, 10 s and 4 s.
    var list: [QueueEntry] {
        [QueueEntry(id: 11, trackID: tid("a"), frames: 480_000), QueueEntry(id: 12, trackID: tid("b"), frames: 480_000),
         QueueEntry(id: 13, trackID: tid("c"), frames: 192_000)]
    }

    func first(_ anchor: PlayAnchor?, at now: Nanos) -> Int {
        Player.firstEditable(anchor: anchor, entries: list, now: now, rate: rate)
    }

    @Test func nothingAnchoredLetsEveryPlaceChange() {
        #expect(first(nil, at: 0) == 0)
    }

    @Test func theEntryPlayingFiveSecondsFromNowAndThoseBeforeItStay() {
        let a = PlayAnchor(entryID: 11, frame: 0, time: 100 * s, playing: true)
        #expect(first(a, at: 100 * s) == 1)            // entry 1 plays at +5 s
        #expect(first(a, at: 106 * s) == 2)            // entry 2 starts within 5 s
        #expect(first(a, at: 112 * s) == 2)
        // Paused on entry 2: its place and those before it stay, whatever the time.
        let paused = PlayAnchor(entryID: 12, frame: 1000, time: 100 * s, playing: false)
        #expect(first(paused, at: 500 * s) == 2)
    }

    /// The review's case: the last entry ends within the margin. Nothing plays at +5 s, but
    /// an edit before it would move what is heard as it ends: no place may change.
    @Test func theLastEntryEndingWithinTheMarginLocksEveryPlace() {
        let a = PlayAnchor(entryID: 11, frame: 0, time: 100 * s, playing: true)
        #expect(first(a, at: 121 * s) == 3)            // entry 3 (4 s) ends at 124 s
        #expect(first(a, at: 123 * s) == 3)
        // Past the end nothing is heard: every place may change again.
        #expect(first(a, at: 125 * s) == 0)
    }

    @Test func checkEditableNamesTheReason() throws {
        #expect(throws: Player.CommandError.self) { try Player.checkEditable([3], count: 3, first: 3, verb: "remove") }
        #expect(throws: Player.CommandError.self) { try Player.checkEditable([4], count: 3, first: 0, verb: "remove") }
        #expect(throws: Player.CommandError.self) { try Player.checkEditable([1], count: 0, first: 0, verb: "remove") }
        try Player.checkEditable([2, 3], count: 3, first: 1, verb: "move")
        do {
            try Player.checkEditable([3], count: 3, first: 3, verb: "remove")
        } catch {
            #expect("\(error)".contains("cannot remove place 3: it is playing or starts within 5 s"))
        }
    }

    private func tid(_ c: Character) -> TrackID { TrackID(hex: String(repeating: String(c), count: 64))! }
}
