import JamzCore
import JamzNet
import NIOCore

/// Joining without the long code (`JamzNet.Pairing`): a 6-digit invite, or two join buttons
/// pressed within 30 s. The exchange's datagrams go over the LAN link in clear (they carry
/// nothing a listener can use); the convoy secret arrives sealed and is adopted as a join by
/// code would adopt it. Not over the relay or Bluetooth LE: a join needs the cars side by side
/// on one network (the car park, the hotspot).
extension Convoy {
    /// A join datagram from the LAN.
    func pairingReceived(_ bytes: [UInt8], from: SocketAddress, at: Nanos) async {
        refreshPairingRank()
        let outcomes = emit(pairing.received(bytes, from: from, secret: secret, now: clock.now()))
        await settle(outcomes)
        wakeup.ring()   // a resend or a time-out may be due sooner now
    }

    /// Resends and time-outs due now; when the next is due (nil: nothing waits).
    func pairingDue() async -> Nanos? {
        let outcomes = emit(pairing.due(now: clock.now()))
        await settle(outcomes)
        return pairing.deadline()
    }

    /// `jamz group invite`: a short code for a car on this network.
    func invite() throws -> String {
        guard let s = secret else { throw Player.CommandError("not in a convoy: `jamz group create` first, then invite") }
        guard transport != nil else { throw Player.CommandError("no LAN link (convoy_port = 0): a short code needs the cars on one network") }
        let code = pairing.invite(now: clock.now())
        wakeup.ring()
        let minutes = pairing.settings.codeLifetime / (60 * nanosPerSecond)
        logger.notice("join code \(code) open for \(minutes) minutes")
        return "join code\(s.name.isEmpty ? "" : " for convoy \"\(s.name)\""): \(code) (valid \(minutes) minutes, on this network: jamz group join \(code.replacingOccurrences(of: " ", with: "")))"
    }

    /// Whether a code is a short one (digits only, ≤ 8 once spaces and dashes are gone).
    nonisolated static func isShortCode(_ code: String) -> Bool {
        let d = code.filter { $0 != " " && $0 != "-" }
        return !d.isEmpty && d.count <= 8 && d.allSatisfy(\.isASCII) && d.allSatisfy(\.isNumber)
    }

    /// `jamz group join 482193`: returns when joined, or throws why not (a few seconds at most).
    func joinShort(code: String) async throws -> String {
        guard transport != nil else { throw Player.CommandError("no LAN link (convoy_port = 0): a short code needs the cars on one network") }
        guard joinWaiter == nil else { throw Player.CommandError("a join is already running; wait for it") }
        let out: [Pairing<SocketAddress>.Output]
        do { out = try pairing.join(code: code, now: clock.now()) } catch { throw Player.CommandError(error.description) }
        for case .outcome(.failed(let f, _)) in out {
            _ = emit(out)
            throw Player.CommandError(f.description)
        }
        return try await withCheckedThrowingContinuation { c in
            joinWaiter = c
            _ = emit(out)
            wakeup.ring()
        }
    }

    /// The join button (or `jamz group button`).
    func pressJoin() async -> String {
        guard transport != nil else { return "no LAN link (convoy_port = 0): push-button join needs the cars on one network" }
        refreshPairingRank()
        let out = pairing.press(now: clock.now(), secret: secret)
        let started = out.contains { if case .multicast = $0 { true } else { false } }
        // This press confirmed the words if it let the other car in (or asked for a convoy to
        // give it): decided on what the press did, not on what was waiting before it.
        let welcomed = out.contains { if case .outcome(.welcomed) = $0 { true } else { false } }
        let needConvoy = out.contains { if case .outcome(.needConvoy) = $0 { true } else { false } }
        await settle(emit(out))
        wakeup.ring()
        if welcomed { return "join button: check words confirmed; the other car gets this convoy's key" }
        if needConvoy {
            return inGroup ? "join button: check words confirmed; the two cars are a new convoy"
                           : "join button: check words confirmed, but no convoy could be made (see the log)"
        }
        guard started else { return pairing.summary(now: clock.now()) ?? "join button: waiting" }
        prompts?.say(.joinWaiting)
        return "join button: waiting 30 s for the join button of another car on this network"
    }

    /// Who hosts a push-button join: the car in a convoy, the one hearing more cars.
    private func refreshPairingRank() {
        pairing.hosting = inGroup
        pairing.members = inGroup ? node.peers.count + 1 : 0
    }

    /// Sends and counts what the exchange asks for; returns what happened, for `settle`.
    private func emit(_ out: [Pairing<SocketAddress>.Output]) -> [Pairing<SocketAddress>.Outcome] {
        var outcomes: [Pairing<SocketAddress>.Outcome] = []
        for o in out {
            switch o {
            case .multicast(let b): transport?.multicast(b)
            case .send(let b, let to): transport?.send(b, to: to)
            case .count(let c): store.counters.add(c)
            case .note(let n):
                // A flood of join datagrams is counted, not logged line by line.
                let now = clock.now()
                if now - pairingNotes.since >= nanosPerSecond { pairingNotes = (now, 0) }
                pairingNotes.count += 1
                if pairingNotes.count <= 5 { logger.info("\(n)") } else { store.counters.add("join.notes_dropped") }
            case .outcome(let oc): outcomes.append(oc)
            }
        }
        return outcomes
    }

    private func settle(_ outcomes: [Pairing<SocketAddress>.Outcome]) async {
        for o in outcomes {
            switch o {
            case .joined(let s, let host, let word, let way):
                lastCheckWord = word
                var message: String
                if s.bytes == secret?.bytes {
                    message = "already in convoy \"\(s.name)\""
                } else {
                    do { message = try await join(secret: s) } catch {
                        logger.error("join: cannot adopt the convoy: \(error)")
                        if way == .code { finishJoin(.failure(error)) }
                        continue
                    }
                }
                message += " from \(host); check words: \(word)"
                logger.notice("\(message)")
                // A button's words were spoken before the key came (`compare`); join() said "joined".
                if way == .code { prompts?.say(.paired(checkWord: word)) }
                if way == .code { finishJoin(.success(message)) }
            case .welcomed(_, let name, let word):
                logger.notice("\(name) joined this car's convoy; check words: \(word)")
                prompts?.say(word == lastCheckWord ? .pairedConfirmed : .paired(checkWord: word))
                lastCheckWord = word
            case .compare(let word, let confirm):
                lastCheckWord = word
                logger.notice("join button: check words \(word); \(confirm ? "press join again if the other car says the same" : "the other car's driver confirms them")")
                prompts?.say(.compare(checkWord: word, confirm: confirm))
            case .failed(let f, let way):
                logger.notice("join failed: \(f)")
                prompts?.say(f == .overlap ? .joinOverlap : .joinFailed)
                if way == .code { finishJoin(.failure(Player.CommandError(f.description))) }
            case .needConvoy:
                // (In a convoy by now, made or joined meanwhile: that one is given.)
                if !inGroup {
                    do { _ = try await create(name: "") } catch {
                        logger.error("push-button join: cannot make a convoy: \(error)")
                        await settle(emit(pairing.convoyFailed("\(error)")))
                        continue
                    }
                }
                if let s = secret { await settle(emit(pairing.convoyMade(secret: s))) }
            }
        }
    }

    private func finishJoin(_ r: Result<String, any Error>) {
        guard let w = joinWaiter else { return }
        joinWaiter = nil
        w.resume(with: r)
    }
}
