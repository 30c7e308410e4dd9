/// Where the convoy's music is, as a straight line in the DJ's clock: entry `entry` (the
/// playlist entry, named by the op that added it) is at frame `frame` at DJ time `time` and
/// advances `rate` (0 or 1) frames per frame period from there. With the playlist's track lengths
/// this says which frame every car should hear at any instant, with no further messages.
public struct TimelineAnchor: Sendable, Equatable, Codable {
    public var entry: OpID
    public var track: TrackID
    public var frame: Int64
    public var time: Nanos
    public var rate: Int
    public init(entry: OpID, track: TrackID, frame: Int64, time: Nanos, rate: Int) {
        self.entry = entry; self.track = track; self.frame = frame; self.time = time; self.rate = rate
    }
}

/// The convoy's session: the term (who is DJ) and the timeline, in that DJ's clock.
///
/// A change scheduled for DJ time `anchor.time` keeps `previous` in force until then, so every car
/// switches at the same instant even though the message reached them at different times.
public struct ConvoyTimeline: Sendable, Equatable, Codable {
    public var term: Term
    /// Bumped with every change within a term; (term, version) orders all timelines.
    public var version: UInt64
    public var anchor: TimelineAnchor?
    public var previous: TimelineAnchor?
    public init(term: Term, version: UInt64 = 0, anchor: TimelineAnchor? = nil, previous: TimelineAnchor? = nil) {
        self.term = term; self.version = version; self.anchor = anchor; self.previous = previous
    }

    /// The anchor in force at DJ time `t`: before the anchor's time, the previous one; before
    /// the first anchor of a session, nothing (the music starts at its anchor time, not earlier).
    public func anchor(at t: Nanos) -> TimelineAnchor? {
        if let a = anchor, t < a.time {
            if let p = previous, t >= p.time { return p }
            return nil
        }
        return anchor
    }

    /// Whether `other` supersedes this timeline.
    public func isOlder(than other: ConvoyTimeline) -> Bool {
        term != other.term ? term < other.term : version < other.version
    }

    /// The same timeline in another clock: `toOther` maps a time of the DJ's clock to the new one.
    public func reexpressed(term newTerm: Term, version newVersion: UInt64, _ toOther: (Nanos) -> Nanos) -> ConvoyTimeline {
        func map(_ a: TimelineAnchor?) -> TimelineAnchor? {
            guard var a else { return nil }
            a.time = toOther(a.time)
            return a
        }
        return ConvoyTimeline(term: newTerm, version: newVersion, anchor: map(anchor), previous: map(previous))
    }
}

/// A place in a playlist: index, entry, frame within it, and frames before it (global position).
public struct PlaylistPosition: Sendable, Equatable {
    public var index: Int
    public var entry: OpID
    public var frame: Int64
    public var globalFrame: Int64
}

extension ConvoyTimeline {
    /// Where the music is at DJ time `t` (nil: nothing plays — no anchor, entry gone, list ran out).
    /// Walks forward through the playlist by track lengths, so track changes are gapless and need
    /// no message. `fraction` receives the sub-frame part (0..<1) for sub-frame sync.
    public func position(at t: Nanos, in playlist: [PlaylistEntry], sampleRate: Int) -> PlaylistPosition? {
        precisePosition(at: t, in: playlist, sampleRate: sampleRate)?.position
    }

    public func precisePosition(at t: Nanos, in playlist: [PlaylistEntry], sampleRate: Int) -> (position: PlaylistPosition, fraction: Double)? {
        guard let a = anchor(at: t), var index = playlist.firstIndex(where: { $0.id == a.entry }) else { return nil }
        var frame = a.frame
        var fraction = 0.0
        if a.rate != 0, t > a.time {
            let whole = FrameMath.frames(in: t - a.time, rate: sampleRate)
            frame += whole
            fraction = Double(t - a.time - FrameMath.duration(ofFrames: whole, rate: sampleRate)) * Double(sampleRate) / 1e9
            if fraction < 0 { fraction = 0 } else if fraction >= 1 { fraction = 0.999_999 }
        }
        frame = max(0, frame)
        var before: Int64 = 0
        for i in 0..<index { before += playlist[i].frames }
        while frame >= playlist[index].frames {
            frame -= playlist[index].frames
            before += playlist[index].frames
            index += 1
            if index >= playlist.count { return nil }
        }
        return (PlaylistPosition(index: index, entry: playlist[index].id, frame: frame, globalFrame: before + frame), fraction)
    }
}

/// A change the DJ schedules (play, pause, seek, skip).
public enum TimelineChange: Sendable, Equatable, Codable {
    case play
    case pause
    /// Seek within the current entry to `frame`.
    case seek(frame: Int64)
    /// Start entry `entry` at frame 0 (next/previous/play N).
    case start(entry: OpID)
}

/// One car's view of the session: the term and timeline it follows, and the rules that make
/// every car end with the same DJ and the same music.
public struct Session: Sendable {
    public let me: MemberID
    public private(set) var timeline: ConvoyTimeline
    /// Timelines ignored because an equal or newer one was already held.
    public private(set) var stale = 0

    public init(me: MemberID, timeline: ConvoyTimeline? = nil) {
        self.me = me
        self.timeline = timeline ?? ConvoyTimeline(term: Term(number: 0, dj: me))
    }

    public var term: Term { timeline.term }
    public var isDJ: Bool { timeline.term.dj == me }

    /// A timeline announced by a peer: adopted when its (term, version) is higher — so the highest
    /// (term, member) wins everywhere, whatever order the announcements arrive in.
    @discardableResult
    public mutating func receive(_ t: ConvoyTimeline) -> Bool {
        guard timeline.isOlder(than: t) else { stale += 1; return false }
        timeline = t
        return true
    }

    /// Take control: propose `term + 1` with ourselves as DJ and re-express the running timeline
    /// in our own clock (`djToLocal` maps the old DJ's clock to ours, from our offset estimate),
    /// so the music does not skip. The caller announces the result.
    public mutating func takeOver(djToLocal: (Nanos) -> Nanos) -> ConvoyTimeline {
        let newTerm = timeline.term.next(for: me)
        if timeline.term.dj == me {
            timeline = timeline.reexpressed(term: newTerm, version: 0) { $0 }
        } else {
            timeline = timeline.reexpressed(term: newTerm, version: 0, djToLocal)
        }
        return timeline
    }

    /// DJ only: the music restarts from `anchor` (a new version, nothing before it): after the
    /// DJ's own restart, when its monotonic clock began again and the old anchor times mean
    /// nothing, it re-anchors where its player resumes.
    public mutating func restart(from anchor: TimelineAnchor) -> ConvoyTimeline? {
        guard isDJ else { return nil }
        timeline = ConvoyTimeline(term: timeline.term, version: timeline.version + 1, anchor: anchor, previous: nil)
        return timeline
    }

    /// DJ only: the change takes effect at `at` (our clock, = the DJ clock); until then the current
    /// anchor stays in force. Returns the new timeline to announce, or nil when not DJ or when the
    /// change names nothing playable.
    public mutating func schedule(_ change: TimelineChange, at: Nanos, playlist: [PlaylistEntry], sampleRate: Int) -> ConvoyTimeline? {
        guard isDJ else { return nil }
        let current = timeline.anchor(at: at)
        let here = timeline.position(at: at, in: playlist, sampleRate: sampleRate)
        var next: TimelineAnchor
        switch change {
        case .play, .pause:
            let rate = change == .play ? 1 : 0
            if let here {
                next = TimelineAnchor(entry: here.entry, track: playlist[here.index].track, frame: here.frame, time: at, rate: rate)
            } else if let first = playlist.first, rate == 1 {
                next = TimelineAnchor(entry: first.id, track: first.track, frame: 0, time: at, rate: 1)
            } else { return nil }
        case .seek(let frame):
            guard let here else { return nil }
            let e = playlist[here.index]
            next = TimelineAnchor(entry: e.id, track: e.track, frame: min(max(0, frame), max(0, e.frames - 1)), time: at, rate: current?.rate ?? 1)
        case .start(let entry):
            guard let e = playlist.first(where: { $0.id == entry }) else { return nil }
            next = TimelineAnchor(entry: e.id, track: e.track, frame: 0, time: at, rate: 1)
        }
        // The anchor in force until `at`: the current one, held as is.
        timeline = ConvoyTimeline(term: timeline.term, version: timeline.version + 1, anchor: next, previous: current)
        return timeline
    }
}

/// How far ahead the DJ schedules changes so that every car has them in time: the worst recent
/// round trip to any member (an upper bound on the one-way delay), plus how far ahead of the DAC
/// the renderers write (a car that already wrote past the change cannot apply it on time), plus
/// a margin, within bounds.
public struct LeadEstimator: Sendable {
    public var minimum: Nanos = 50_000_000
    public var maximum: Nanos = 500_000_000
    public var margin: Nanos = 20_000_000
    /// How long an observed delay counts.
    public var memory: Nanos = 60 * nanosPerSecond
    private var observed: [(at: Nanos, delay: Nanos)] = []

    public init() {}

    /// A round trip (or any upper bound on a one-way delay) seen at time `at`.
    public mutating func observe(delay: Nanos, at: Nanos) {
        observed.append((at, delay))
        if observed.count > 512 { observed.removeFirst(observed.count - 512) }
    }

    /// `renderAhead`: how far ahead of what is heard the renderers write (buffer + one block).
    public func lead(now: Nanos, renderAhead: Nanos) -> Nanos {
        let worst = observed.lazy.filter { now - $0.at <= memory }.map(\.delay).max() ?? 0
        return min(max(worst + renderAhead + margin, minimum), maximum)
    }
}
