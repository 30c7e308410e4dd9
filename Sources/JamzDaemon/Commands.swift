import Foundation
import JamzAudio
import JamzCore
import JamzStore
import Logging

/// Executes control commands: player, library, convoy and GPS actions and their replies.
struct Commands: Sendable {
    let player: Player
    let library: Library
    var convoy: Convoy? = nil
    var location: Location? = nil
    let logger: Logger
    var controls: Controls? = nil
    /// The phone page's addresses and PIN, shown by `jamz status` (nil: the page is off).
    var page: PageInfo? = nil

    static let encoder: JSONEncoder = {
        let e = JSONEncoder()
        e.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return e
    }()

    static func line<T: Encodable>(_ v: T) -> [UInt8] {
        var d = (try? encoder.encode(v)) ?? Data(#"{"ok":false,"message":"internal error: cannot encode the reply"}"#.utf8)
        d.append(UInt8(ascii: "\n"))
        return Array(d)
    }

    static func failure(_ why: String) -> ControlReplyValue {
        ControlReplyValue(ok: false, message: why, error: why)
    }

    static func success(_ message: String) -> ControlReplyValue {
        ControlReplyValue(ok: true, message: message)
    }

    static func success(_ message: String, _ data: some Encodable & Sendable) -> ControlReplyValue {
        ControlReplyValue(ok: true, message: message, data: ReplyData(data))
    }

    /// One request line in, its progress lines and reply line out (the socket's and the tests' path).
    func handle(line: [UInt8], progress: @escaping @Sendable ([UInt8]) async -> Void) async -> [UInt8] {
        let req: ControlRequest
        do { req = try JSONDecoder().decode(ControlRequest.self, from: Data(line)) } catch {
            library.count("control.bad_requests")
            return Commands.line(Commands.failure("not a valid request: expected one JSON object per line like {\"cmd\":\"status\",\"args\":[]}"))
        }
        let cmd: ControlCommand
        do { cmd = try ControlCommand(req) } catch {
            if case .unknownCommand = error { library.count("control.bad_requests") }
            return Commands.line(Commands.failure(error.description))
        }
        return Commands.line(await execute(cmd) { p in await progress(Commands.line(ProgressLine(progress: p))) })
    }

    /// Does one command; a refusal or failure is an ok=false reply.
    func execute(_ cmd: ControlCommand, progress: @escaping @Sendable (ImportProgressReport) async -> Void = { _ in }) async -> ControlReplyValue {
        do {
            let reply = try await run(cmd, progress: progress)
            switch cmd {
            case .status, .queue, .cache, .peers, .where, .convoy, .group(.show): break
            default: player.changed.fire()   // whoever pressed, the phone page shows it
            }
            return reply
        } catch let e as Player.CommandError {
            return Commands.failure(e.description)
        } catch {
            logger.error("\(cmd.name.rawValue) failed: \(error)")
            return Commands.failure("\(cmd.name.rawValue) failed: \(error)")
        }
    }

    /// A command this daemon does not serve (no convoy, no GPS): answered as an unknown one.
    private func notServed(_ cmd: ControlCommand) -> Player.CommandError {
        library.count("control.bad_requests")
        return Player.CommandError(ControlCommand.unknown(cmd.name.rawValue))
    }

    private func run(_ cmd: ControlCommand, progress: @escaping @Sendable (ImportProgressReport) async -> Void) async throws -> ControlReplyValue {
        if let location, let answer = runLocation(cmd, location) { return answer }
        if let convoy, let answer = try await runConvoy(cmd, convoy) { return answer }
        switch cmd {
        case .status:
            var s = await player.status()
            if let convoy { s.counters.merge(await convoy.counters) { $1 } }
            if let location {
                s.counters.merge(location.counters) { $1 }
                s.gps = location.summary(now: location.now)
            }
            if let controls { s.controls = await controls.report() }
            s.page = page?.report
            return Commands.success(Commands.describe(s), s)
        case .queue:
            let q = await player.queueReport()
            let text = q.isEmpty ? "the queue is empty" : q.map { i in
                "\(i.current ? "▶" : " ") \(i.index). \(i.title)\(i.artist.isEmpty ? "" : " — \(i.artist)") [\(Commands.clock(i.duration))] \(i.id.prefix(12))"
            }.joined(separator: "\n")
            return Commands.success(text, q)
        case .play(let n):
            if let n, n < 1 { throw Player.CommandError("usage: play [N] (N = place in the queue, from 1)") }
            return Commands.success(try await player.play(n))
        case .pause: return Commands.success(try await player.pause())
        case .toggle: return Commands.success(try await player.toggle())
        case .next: return Commands.success(try await player.next())
        case .prev: return Commands.success(try await player.prev())
        case .seek(let s): return Commands.success(try await player.seek(s))
        case .volume(let v): return Commands.success(try await player.setVolume(v))
        case .add(let q): return Commands.success(try await player.add(q))
        case .remove(let n): return Commands.success(try await player.remove(n))
        case .move(let n, let m): return Commands.success(try await player.move(n, to: m))
        case .cache:
            let r = try await library.cacheReport()
            let rate = r.hitRate.map { String(format: "%.0f%%", $0 * 100) } ?? "n/a"
            return Commands.success("""
                \(r.tracks) tracks, \(Commands.bytes(r.bytes)) (limits \(r.maxTracks) tracks, \(Commands.bytes(r.maxBytes)))
                hits \(r.hits), misses \(r.misses), hit rate \(rate), evictions \(r.evictions)
                """, r)
        case .import(let dir):
            let summary = try await library.importTree(dir) { p in
                var r = ImportProgressReport(done: p.done, total: p.total, file: p.file, result: "added", reason: nil, title: nil)
                switch p.result {
                case .added(let info): r.title = info.title
                case .duplicate: r.result = "duplicate"
                case .skipped(let why): r.result = "skipped"; r.reason = why
                }
                await progress(r)
            }
            return Commands.success("""
                imported \(summary.added) new track\(summary.added == 1 ? "" : "s") of \(summary.found) found \
                (\(summary.duplicates) already known, \(summary.skipped) skipped, \(summary.evicted) evicted)
                """, summary)
        case .group, .peers, .takeControl, .where, .convoy:
            throw notServed(cmd)
        }
    }

    /// Convoy commands, and playback commands while in a convoy (the DJ's rules apply).
    /// nil: not a convoy matter, the local player answers.
    private func runConvoy(_ cmd: ControlCommand, _ convoy: Convoy) async throws -> ControlReplyValue? {
        switch cmd {
        case .group(.create(let name)):
            let (code, name) = try await convoy.create(name: name)
            return Commands.success("created convoy \"\(name)\"; this car is the DJ. Join code (type it on the other cars: jamz group join CODE):\n\(code)", ["code": code, "name": name])
        case .group(.join(let code)):
            return Commands.success(try await convoy.join(code: code))
        case .group(.leave):
            return Commands.success(try await convoy.leave())
        case .group(.invite):
            return Commands.success(try await convoy.invite())
        case .group(.button):
            return Commands.success(await convoy.pressJoin())
        case .group(.show):
            let r = await convoy.report()
            let text = r.inGroup
                ? "convoy \"\(r.name ?? "")\" (\(r.group ?? "")), this car \(r.member)\(r.isDJ ? " is the DJ" : ", DJ \(r.dj)") (term \(r.term))\njoin code: \(r.joinCode ?? "")\naccepted \(r.accepted) datagrams, dropped \(r.drops.total)" + (r.relay.map { "\nrelay: \($0.summary)" } ?? "") + (r.ble.map { "\nble: \($0.summary)" } ?? "")
                    + (r.pairing.map { "\n\($0)" } ?? "") + (r.checkWord.map { "\nlast pairing's check words: \($0)" } ?? "")
                : "not in a convoy: `jamz group create [NAME]`, `jamz group join CODE` or `jamz group button`"
                    + (r.pairing.map { "\n\($0)" } ?? "") + (r.checkWord.map { "\nlast pairing's check words: \($0)" } ?? "")
            return Commands.success(text, r)
        case .peers:
            let ps = await convoy.peersReport()
            let text = ps.isEmpty ? "no peers heard (yet)" : ps.map { p in
                let off = p.offsetMs.map { String(format: "offset %+.3f ms ± %.3f (spread %.3f, %@)", $0, p.boundMs ?? 0, p.spreadMs ?? 0, p.quality) } ?? "offset: measuring"
                return "\(p.isDJ ? "DJ " : "   ")\(p.car.map { "car \($0): " } ?? "")\(p.name) \(p.member) \(p.address) \(p.link)\(p.rssi.map { " \($0) dBm" } ?? "") heard \(String(format: "%.1f", p.lastHeardSeconds)) s ago, \(off)"
            }.joined(separator: "\n")
            return Commands.success(text, ps)
        case .takeControl:
            return Commands.success(try await convoy.takeControl())
        default:
            break
        }
        guard await convoy.inGroup else { return nil }
        let lead = await player.convoyLead(convoy: convoy)
        switch cmd {
        case .add(let q):
            return Commands.success(try await convoy.add(try await player.findCached(q)))
        case .remove(let n), .move(let n, _):
            // Entries after the one playing only (Player+Edits.swift); the DJ only (the node).
            let view = await player.editView()
            if case .move(_, let m) = cmd {
                guard n != m else {
                    try Player.checkEditable([n], count: view.ids.count, first: view.first, verb: "move")
                    return Commands.success("place \(n) is already there")
                }
                try await convoy.edit(places: [n, m], verb: "move", seen: view) { list in
                    [.move(entry: list[n - 1].id, after: Player.after(list.map(\.id), moving: n - 1, to: m))]
                }
                return Commands.success("moved place \(n) to place \(m) of the convoy playlist")
            }
            try await convoy.edit(places: [n], verb: "remove", seen: view) { list in [.remove(entry: list[n - 1].id)] }
            return Commands.success("removed place \(n) from the convoy playlist (\(await convoy.playlist.count) entries)")
        case .play(let n):
            if let n {
                let list = await convoy.playlist
                guard n >= 1, n <= list.count else { throw Player.CommandError("usage: play [N] (N = place in the convoy playlist, 1…\(list.count))") }
                return Commands.success(try await convoy.change(.start(entry: list[n - 1].id), lead: lead))
            }
            return Commands.success(try await convoy.change(.play, lead: lead))
        case .pause: return Commands.success(try await convoy.change(.pause, lead: lead))
        case .toggle:
            let playing = await convoy.timeline.anchor?.rate == 1
            return Commands.success(try await convoy.change(playing ? .pause : .play, lead: lead))
        case .next, .prev:
            let list = await convoy.playlist
            let here = await player.convoyIndex(at: lead, convoy: convoy)
            let target = (here ?? -1) + (cmd == .next ? 1 : -1)
            guard target >= 0, target < list.count else { throw Player.CommandError(cmd == .next ? "no next entry" : "no previous entry") }
            return Commands.success(try await convoy.change(.start(entry: list[target].id), lead: lead))
        case .seek(let s):
            guard s.isFinite, s >= 0, s < 86_400 else { throw Player.CommandError("usage: seek SECONDS (0 or more)") }
            let rate = await player.rate
            return Commands.success(try await convoy.change(.seek(frame: Int64(s * Double(rate))), lead: lead))
        default:
            return nil
        }
    }

    static func describe(_ s: StatusReport) -> String {
        var out = s.state
        if let t = s.track {
            out += " \(s.queueIndex.map { "\($0)/\(s.queueLength)" } ?? "") \"\(t.title)\""
            if !t.artist.isEmpty { out += " by \(t.artist)" }
            out += " \(clock(s.position)) / \(clock(t.duration))"
        } else {
            out += " (queue: \(s.queueLength))"
        }
        out += " · volume \(s.volume) · \(s.output)"
        if let c = s.controls {
            if c.acc != "none" { out += " · ACC \(c.acc)\(c.powerOffIn.map { String(format: " (power-off in %.0f s)", $0) } ?? "")" }
            let missing = c.devices.filter { $0.state != "open" }
            if !missing.isEmpty { out += " · missing: \(missing.map(\.device).joined(separator: ", "))" }
        }
        if let p = s.page {
            out += "\nphone page: \(p.urls.joined(separator: " ")) · PIN \(p.pin)"
        }
        if let g = s.gps {
            out += "\nGPS: gpsd \(g.gpsd), \(g.mode)\(g.stale && g.mode != "no fix" ? " (stale)" : "") · clock: \(g.clock)"
        }
        return out
    }

    static func clock(_ s: Double) -> String {
        String(format: "%d:%04.1f", Int(s) / 60, s.truncatingRemainder(dividingBy: 60))
    }

    static func bytes(_ b: Int64) -> String {
        b >= 1 << 30 ? String(format: "%.1f GiB", Double(b) / Double(1 << 30))
            : b >= 1 << 20 ? String(format: "%.1f MiB", Double(b) / Double(1 << 20)) : "\(b) B"
    }
}

/// A command's reply, its data still typed: encoded once, by the socket.
typealias ControlReplyValue = ControlReply<ReplyData>

/// Any reply payload (`StatusReport`, `[PeerReport]`, `CacheReport`, …).
struct ReplyData: Encodable, Sendable {
    let value: any Encodable & Sendable
    init(_ value: any Encodable & Sendable) { self.value = value }
    func encode(to encoder: any Encoder) throws { try value.encode(to: encoder) }
}
