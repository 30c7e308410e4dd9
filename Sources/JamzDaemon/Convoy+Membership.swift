import Foundation
import JamzPlatform
import JamzCore
import JamzNet
import JamzStore

/// Membership (the secret in `<data-dir>/convoy.json`, the envelope boot counter) and the
/// commands: create, join, leave, take control, add, change. A command's timeline or ops are
/// made by the node, stored, then applied and sent (`ConvoyNode.applyOwn`).
extension Convoy {
    func loadMembership() async throws {
        guard let data = FileManager.default.contents(atPath: membershipPath) else { return }
        guard let m = try? JSONDecoder().decode(Membership.self, from: data),
              let s = try? JoinCode.parse(m.code, name: m.name) else {
            logger.error("\(membershipPath) is unreadable: not in a convoy until `jamz group join` again")
            return
        }
        adopt(s, boots: try await nextBoot())
        node.rejoined()
    }

    /// The envelope boot counter: increased and made durable before anything is sealed, never
    /// reset (not by a join, a leave or a new convoy), so (key, sequence number) never repeats.
    private func nextBoot() async throws -> UInt32 {
        let path = (membershipPath as NSString).deletingLastPathComponent + "/convoy.boot"
        return try await onThread("jamz-convoy-boot") {
            let last = FileManager.default.contents(atPath: path).flatMap { UInt32(String(decoding: $0, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)) } ?? 0
            guard last < UInt32.max else { throw Player.CommandError("convoy boot counter exhausted: make a new member identity") }
            do { try DurableFile.replace(path, with: Array("\(last + 1)\n".utf8)) } catch { throw Player.CommandError("\(error)") }
            return last + 1
        }
    }

    private func saveMembership(_ m: Membership) async throws {
        let bytes = Array(try JSONEncoder().encode(m)), path = membershipPath
        // Root only (the secret): a power cut leaves the old file or the new one.
        try await onThread("jamz-convoy-save") {
            do { try DurableFile.replace(path, with: bytes, mode: 0o600) } catch { throw Player.CommandError("\(error)") }
        }
    }

    private func adopt(_ s: ConvoySecret, boots: UInt32) {
        membershipEpoch += 1
        pairing.closeInvite()   // a code opened for the old convoy, or for none
        convoyPrompts.reset()
        if let old = secret { receiver.remove(group: old.groupID) }
        // The track server answers members of one convoy: restarted with the new key by tick().
        if let server = trackServer { trackServer = nil; Task { await server.close() } }
        secret = s
        receiver.add(s.key)
        outbox.use(Sealer(key: s.key, sender: me, bootCount: boots))
        trackServerRetry = 0
        lastRelayBeacon = 0
        startRelay(s)
        startBLE(s)
        wakeup.ring()
    }

    private func saveTimeline() async throws {
        let t = node.session.timeline
        try await store.convoyLog.saveTimeline(t)
    }

    func create(name: String) async throws -> (String, String) {
        let s = ConvoySecret.random(name: name.isEmpty ? "\(node.carName)'s convoy" : name)
        try await saveMembership(Membership(code: JoinCode.make(s), name: s.name))
        adopt(s, boots: try await nextBoot())
        // The creator is DJ of the convoy's first term; the music it plays is the convoy's.
        _ = node.founded()
        try await saveTimeline()
        announce()
        return (JoinCode.make(s), s.name)
    }

    func join(code: String) async throws -> String {
        if Self.isShortCode(code) { return try await joinShort(code: code) }
        let s: ConvoySecret
        do { s = try JoinCode.parse(code) } catch { throw Player.CommandError("\(error)") }
        return try await join(secret: s)
    }

    /// Joins the convoy of this secret (from a long code or a short-code/push-button exchange).
    func join(secret s: ConvoySecret) async throws -> String {
        try await saveMembership(Membership(code: JoinCode.make(s), name: s.name))
        adopt(s, boots: try await nextBoot())
        node.joined()
        lanAddress.removeAll()
        location?.forgetPeers()
        try await store.convoyLog.clearOps()
        try await saveTimeline()
        await follow()
        prompts?.say(.joinedConvoy)
        return "joined convoy \(s.groupID); waiting for the others (beacons every second)"
    }

    func leave() async throws -> String {
        guard let s = secret else { return "not in a convoy" }
        try? FileManager.default.removeItem(atPath: membershipPath)
        receiver.remove(group: s.groupID)
        secret = nil; outbox.use(nil)
        pairing.closeInvite()
        convoyPrompts.reset()
        membershipEpoch += 1
        node.left(); lanAddress.removeAll()
        relay?.close(); relay = nil
        ble?.close(); ble = nil
        location?.forgetPeers()
        if let server = trackServer { trackServer = nil; await server.close() }
        try await saveTimeline()
        let kept = await player.leftConvoy()
        prompts?.say(.leftConvoy)
        return "left convoy \(s.groupID); playing alone, its playlist is this car's queue now (\(kept) entr\(kept == 1 ? "y" : "ies"))"
    }

    /// At shutdown: the relay says goodbye to its broker (best effort: the goodbye is sent on the
    /// relay's control queue, which the exit may overtake; the broker then waits out the keep-alive).
    func shutdown() {
        inboxSink.finish()   // ends the inbox task, which holds this actor
        relay?.close()
        relay = nil
        ble?.close()
        ble = nil
    }

    /// After a restart this car's clock began again. The DJ re-anchors the convoy where the
    /// player resumed (the position saved before the power went). A follower plays on from there
    /// by itself ("solo") until it hears the DJ, then takes the DJ's timeline again: the music
    /// comes back with the ignition even when the rest of the convoy is out of reach.
    func resume(saved: PlayerRecord?) async {
        guard inGroup, let rec = saved, let id = rec.entryId,
              let e = node.log.entries.first(where: { $0.id.queueEntryID == id }) else { return }
        let frame = min(max(0, rec.frame), max(0, e.frames - 1))
        let here = TimelineAnchor(entry: e.id, track: e.track, frame: frame, time: clock.now() + 300_000_000, rate: rec.playing ? 1 : 0)
        let t = node.resume(at: here)
        if node.solo != nil { logger.info("the DJ is not heard yet: playing on from \(e.track.short) frame \(frame) until it is") }
        guard let t else { return }
        try? await store.convoyLog.saveTimeline(t)
        logger.info("resuming the convoy as its DJ at \(e.track.short) frame \(frame)")
    }

    // MARK: commands (DJ rules)

    func takeControl() async throws -> String {
        if inGroup, node.session.isDJ { return "this car is already the DJ (term \(node.session.term.number))" }
        let now = nodeNow()
        let fromSolo = node.solo != nil && node.djEstimate(at: now) == nil
        let t: ConvoyTimeline
        do { t = try node.takeOverTimeline(now: now) } catch { throw Player.CommandError("\(error)") }
        try await store.convoyLog.saveTimeline(t)
        await run(node.applyOwn(t, now: nodeNow()), from: nil)
        return "this car is the DJ now (term \(t.term.number))" + (fromSolo ? ", from where it was playing" : "")
    }

    func add(_ records: [TrackRecord]) async throws -> String {
        let made = try await edit(records.compactMap { r in TrackID(hex: r.id).map { .add(track: $0, frames: r.frames, after: nil) } })
        return "added \(made.count) track\(made.count == 1 ? "" : "s") to the convoy playlist (\(node.log.entries.count) entries)"
    }

    /// Playlist edits by this car: adds by anyone, removes and moves by the DJ (the node refuses
    /// the others with the reason).
    @discardableResult
    func edit(_ edits: [PlaylistEdit]) async throws -> [PlaylistOp] {
        guard !editing else { throw Player.CommandError("another edit is being saved; try again") }
        editing = true
        defer { editing = false }
        // Made on a copy and stored before the log (and so beacons and anti-entropy) can show it.
        let made: [PlaylistOp]
        do { made = try node.make(edits) } catch {
            throw Player.CommandError(error.description)
        }
        try await store.convoyLog.append(made)
        await run(node.applyOwn(made, now: nodeNow()), from: nil)
        return made
    }

    /// `jamz remove N` / `jamz move N M`: `seen` is the player's list (the convoy's playlist as
    /// last handed over) and the first index it lets an edit touch. The places are checked
    /// against the convoy's playlist in the same step as the ops are made (no await between), so
    /// a merge that arrived meanwhile cannot make them name other entries: the command is
    /// refused instead.
    func edit(places: [Int], verb: String, seen: (ids: [Int64], first: Int), _ make: ([PlaylistEntry]) -> [PlaylistEdit]) async throws {
        let list = playlist
        guard list.map(\.id.queueEntryID) == seen.ids else {
            throw Player.CommandError("the convoy playlist changed just now; look at it again (`jamz queue`)")
        }
        try Player.checkEditable(places, count: list.count, first: seen.first, verb: verb)
        _ = try await edit(make(list))
    }

    func change(_ change: TimelineChange, lead: Nanos) async throws -> String {
        let t: ConvoyTimeline
        do { t = try node.scheduled(change, at: nodeNow() + lead) } catch { throw Player.CommandError("\(error)") }
        try await store.convoyLog.saveTimeline(t)
        await run(node.applyOwn(t, now: nodeNow()), from: nil)   // unless a newer term arrived meanwhile
        return "scheduled in \(lead / 1_000_000) ms for every car"
    }
}
