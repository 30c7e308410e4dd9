/// One entry of the play queue. Entries have their own ids because the same track may be
/// queued twice and indices shift as the queue is edited.
public struct QueueEntry: Sendable, Equatable, Codable {
    public var id: Int64
    public var trackID: TrackID
    /// Track length in frames at the output rate.
    public var frames: Int64
    public init(id: Int64, trackID: TrackID, frames: Int64) {
        self.id = id; self.trackID = trackID; self.frames = frames
    }
}

/// The whole of "what plays when": frame `frame` of queue entry `entryID` is heard at `time`,
/// and from there the music advances at the output rate (playing) or stands still (paused).
/// With the queue's track lengths this says which frame is heard at any instant, so the
/// renderer (and later every car of a convoy) needs no further messages to keep playing.
public struct PlayAnchor: Sendable, Equatable, Codable {
    public var entryID: Int64
    public var frame: Int64
    public var time: Nanos
    public var playing: Bool
    public init(entryID: Int64, frame: Int64, time: Nanos, playing: Bool) {
        self.entryID = entryID; self.frame = frame; self.time = time; self.playing = playing
    }
}

/// A place in the queue: entry `index` (its id and track), frame `frame` of that track.
public struct Cursor: Sendable, Equatable {
    public var index: Int
    public var entryID: Int64
    public var trackID: TrackID
    public var frame: Int64
    public init(index: Int, entryID: Int64, trackID: TrackID, frame: Int64) {
        self.index = index; self.entryID = entryID; self.trackID = trackID; self.frame = frame
    }
}

public enum Timeline {
    /// Where the anchor says the music is at time `t`: walks forward through the queue by track
    /// lengths (gapless). `nil` when the anchored entry is not in the queue or the queue has run
    /// out. Before the anchor time a playing timeline is held at the anchor frame.
    public static func locate(_ anchor: PlayAnchor, in queue: [QueueEntry], at t: Nanos, rate: Int) -> Cursor? {
        guard var index = queue.firstIndex(where: { $0.id == anchor.entryID }) else { return nil }
        var frame = anchor.frame
        if anchor.playing && t > anchor.time {
            frame += FrameMath.frames(in: t - anchor.time, rate: rate)
        }
        frame = max(0, frame)
        while frame >= queue[index].frames {
            frame -= queue[index].frames
            index += 1
            if index >= queue.count { return nil }
        }
        let e = queue[index]
        return Cursor(index: index, entryID: e.id, trackID: e.trackID, frame: frame)
    }

    /// The anchor that continues the same music from `t` with a new play state.
    public static func reanchor(_ anchor: PlayAnchor, in queue: [QueueEntry], at t: Nanos, rate: Int, playing: Bool) -> PlayAnchor? {
        guard let c = locate(anchor, in: queue, at: t, rate: rate) else { return nil }
        return PlayAnchor(entryID: c.entryID, frame: c.frame, time: t, playing: playing)
    }
}
