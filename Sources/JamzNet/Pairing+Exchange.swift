import Crypto
import JamzCore

/// `Pairing`'s exchange: what a datagram does, what the time does.
extension Pairing {
    /// A join datagram from `from`. `secret`: this car's convoy, if any (what a host gives).
    public mutating func received(_ bytes: [UInt8], from: Address, secret: ConvoySecret?, now: Nanos) -> [Output] {
        let m: PairingWire.Message
        do { m = try PairingWire.decode(bytes) } catch { return [.count("join.bad_datagram"), .note("\(error)")] }
        switch m {
        case .offer(_, let member, let theirHosting, let theirMembers, let theirName):
            return offered(member: member, hosting: theirHosting, members: Int(theirMembers), name: theirName, from: from, now: now)
        case .hello(let s, let mode, let share, let ad):
            return hello(session: s, mode: mode, share: share, associated: ad, from: from, now: now)
        case .reply(let s, let share, let ad, let tag):
            return reply(session: s, share: share, associated: ad, tag: tag, from: from, now: now)
        case .confirm(let s, let tag):
            return confirm(session: s, tag: tag, from: from, secret: secret, now: now)
        case .welcome(let s, let sealed):
            return welcome(session: s, sealed: sealed)
        }
    }

    mutating func offered(member: MemberID, hosting theirHosting: Bool, members theirMembers: Int, name: String, from: Address, now: Nanos) -> [Output] {
        guard member != me, var b = button, now < b.until else { return [] }
        // Two are an overlap already: a flood of made-up members is not kept.
        guard b.heard[member] != nil || b.heard.count < 3 else { return [] }
        b.heard[member] = from
        peers[member] = (theirHosting, theirMembers, name)
        button = b
        if let o = overlap() { return o }
        return now >= b.opened + settle ? decide(now: now) : []
    }

    /// Two other cars heard while the button's window is open: give up (once).
    mutating func overlap() -> [Output]? {
        guard let b = button, b.heard.count >= 2 else { return nil }
        guard !b.overlapped else { return [] }
        button?.overlapped = true
        attempt = nil
        hosted = hosted.filter { $0.value.mode != .button }
        return [.count("join.overlap"), .outcome(.failed(.overlap))]
    }

    /// The roles, once the window has settled with one other car heard. The host: the car in a
    /// convoy, else the one with more members heard, else the lower member id.
    mutating func decide(now: Nanos) -> [Output] {
        guard let b = button, !b.decided, !b.overlapped, b.heard.count == 1, let (member, address) = b.heard.first,
              let them = peers[member] else { return [] }
        button?.decided = true
        let iHost = (hosting ? 1 : 0, members, member.raw) > (them.hosting ? 1 : 0, them.members, me.raw)
        if iHost {
            guard !hosting else { return [.note("join button: hosting \(them.name)")] }
            button?.askedForConvoy = true
            return [.note("join button: hosting \(them.name) in a new convoy"), .outcome(.needConvoy)]
        }
        return [.note("join button: joining \(them.name)")]
            + start(mode: .button, password: [], channel: Self.buttonChannel(joiner: me, host: member), to: address, now: now)
    }

    mutating func hello(session s: [UInt8], mode: PairingWire.Mode, share: [UInt8], associated ad: [UInt8], from: Address, now: Nanos) -> [Output] {
        if let h = hosted[s] { return [.send(h.reply, to: from)] }   // our reply was lost
        guard let (peer, peerName) = PairingWire.parseAssociated(ad), peer != me else { return [.count("join.bad_datagram")] }
        let password: [UInt8], channel: [UInt8]
        switch mode {
        case .code:
            guard var i = invite, now < i.expires else { return [.count("join.no_invite")] }
            if let l = lastFresh, now - l < settings.freshSpacing {
                return [.count("join.rate_limited"), .note("join: a hello from \(peerName) refused (one new exchange per \(settings.freshSpacing / 1_000_000) ms)")]
            }
            guard i.attemptsLeft > 0 else {
                return [.count("join.code_used_up"), .note("join: code used up after \(settings.attemptsPerCode) failed tries: make a new one (jamz group invite)")]
            }
            i.attemptsLeft -= 1
            invite = i
            lastFresh = now
            (password, channel) = (i.code, Self.codeChannel)
        case .button:
            guard var b = button, now < b.until, !b.overlapped else { return [.count("join.no_button")] }
            // Not before the window settled (the joiner sends again): a third car is heard first.
            guard now >= b.opened + settle else { return [] }
            b.heard[peer] = b.heard[peer] ?? from
            button = b
            if let o = overlap() { return o }
            (password, channel) = ([], Self.buttonChannel(joiner: peer, host: me))
        }
        let party: CPace.Party, isk: [UInt8]
        do {
            party = try CPace.Party(role: .responder, password: password, channel: channel, session: s, associated: myAssociated, scalar: random(32))
            isk = try party.key(peerShare: share, peerAssociated: ad)
        } catch {
            return [.count("join.bad_share"), .note("join: hello from \(peerName) refused: \(error)")]
        }
        let key = Self.macKey(session: s, isk: isk)
        let reply = PairingWire.encode(.reply(session: s, share: party.share, associated: myAssociated, tag: Self.tag(key, party.share, myAssociated)))
        hosted[s] = Hosted(mode: mode, peer: peer, name: peerName, isk: isk, expectedTag: Self.tag(key, share, ad), reply: reply,
                           expires: now + settings.exchangeTimeout)
        return [.count("join.exchanges"), .send(reply, to: from)]
    }

    mutating func reply(session s: [UInt8], share: [UInt8], associated ad: [UInt8], tag: [UInt8], from: Address, now: Nanos) -> [Output] {
        guard var a = attempt, a.session == s else { return [.count("join.stray")] }
        guard a.isk == nil else { return [] }   // a second host, or our confirm's reply repeated
        guard let (host, hostName) = PairingWire.parseAssociated(ad),
              let isk = try? a.party.key(peerShare: share, peerAssociated: ad) else { return [.count("join.bad_share")] }
        let key = Self.macKey(session: s, isk: isk)
        guard HMAC<SHA512>.isValidAuthenticationCode(tag, authenticating: CPace.lvCat(share, ad), using: key) else {
            // The same host answers each hello we send again: one refusal per host.
            guard a.badHosts.insert(host).inserted else { return [] }
            attempt = a
            return [.count("join.wrong_code"), .note("join: \(hostName) answered with another code")]
        }
        a.isk = isk; a.macKey = key; a.host = (host, hostName); a.hostAddress = from
        a.message = PairingWire.encode(.confirm(session: s, tag: Self.tag(key, a.party.share, myAssociated)))
        a.sends = 1; a.nextSend = now + settings.resendEvery
        attempt = a
        return [.send(a.message, to: from)]
    }

    mutating func confirm(session s: [UInt8], tag: [UInt8], from: Address, secret: ConvoySecret?, now: Nanos) -> [Output] {
        guard var h = hosted[s] else { return [.count("join.stray")] }
        if let w = h.welcome { return [.send(w, to: from)] }   // our welcome was lost
        guard constantTimeEqual(tag, h.expectedTag) else {
            hosted[s] = nil
            return [.count("join.wrong_code"), .note("join: \(h.name) confirmed with another code; refused")]
        }
        guard let secret else {
            // A push-button host still making its convoy: the joiner sends its confirm again.
            if h.mode == .button, button?.askedForConvoy != true { button?.askedForConvoy = true; return [.outcome(.needConvoy)] }
            return []
        }
        let key = Self.welcomeKey(session: s, isk: h.isk)
        let header = PairingWire.header(5, s)
        guard let box = try? ChaChaPoly.seal(secret.bytes + Array(secret.name.utf8.prefix(200)), using: key,
                                             nonce: ChaChaPoly.Nonce(data: [UInt8](repeating: 0, count: 12)), authenticating: header) else { return [] }
        let w = header + Array(box.ciphertext) + Array(box.tag)
        h.welcome = w
        hosted[s] = h
        if h.mode == .code { invite?.attemptsLeft += 1 } else { button = nil }
        return [.count("join.welcomed"), .send(w, to: from),
                .outcome(.welcomed(member: h.peer, name: h.name, checkWord: Self.checkWord(session: s, isk: h.isk)))]
    }

    mutating func welcome(session s: [UInt8], sealed: [UInt8]) -> [Output] {
        guard let a = attempt, a.session == s, let isk = a.isk else { return [.count("join.stray")] }
        let key = Self.welcomeKey(session: s, isk: isk)
        guard let box = try? ChaChaPoly.SealedBox(nonce: ChaChaPoly.Nonce(data: [UInt8](repeating: 0, count: 12)),
                                                  ciphertext: sealed.dropLast(16), tag: sealed.suffix(16)),
              let plain = try? ChaChaPoly.open(box, using: key, authenticating: PairingWire.header(5, s)),
              let secret = ConvoySecret(bytes: Array(plain.prefix(ConvoySecret.byteCount)), name: String(decoding: plain.dropFirst(ConvoySecret.byteCount), as: UTF8.self))
        else { return [.count("join.bad_welcome"), .note("join: a welcome that does not open; ignored")] }
        attempt = nil
        button = nil
        return [.count("join.joined"), .outcome(.joined(secret, host: a.host?.name ?? "?", checkWord: Self.checkWord(session: s, isk: isk)))]
    }

    /// Resends, expiries and time-outs due at `now`.
    public mutating func due(now: Nanos) -> [Output] {
        var out: [Output] = []
        if var a = attempt, now >= a.nextSend {
            if a.sends < settings.tries {
                a.sends += 1
                a.nextSend += settings.resendEvery
                attempt = a
                out.append(a.hostAddress.map { .send(a.message, to: $0) } ?? .multicast(a.message))
            } else {
                attempt = nil
                let f: Failure = a.isk == nil && !a.badHosts.isEmpty ? .wrongCode : .noAnswer
                if a.mode == .button && a.isk == nil { button = nil }
                out += [.count(f == .wrongCode ? "join.refused" : "join.no_answer"), .outcome(.failed(f))]
            }
        }
        for (s, h) in hosted where now >= h.expires {
            hosted[s] = nil
            if h.welcome == nil { out += [.count("join.unconfirmed"), .note("join: \(h.name) never confirmed (a wrong code, or gone)")] }
        }
        if let i = invite, now >= i.expires { invite = nil; out.append(.note("join code expired")) }
        if let b = button {
            if now >= b.until {
                button = nil
                if attempt == nil, !b.overlapped { out += [.count("join.button_timeout"), .outcome(.failed(.buttonTimeout))] }
            } else if !b.decided, now >= b.opened + settle, b.heard.count == 1 {
                out += decide(now: now)
            } else if now >= b.nextOffer {
                var next = b
                next.nextOffer = now + settings.offerEvery
                button = next
                out.append(.multicast(offer(b)))
            }
        }
        return out
    }

    /// When `due` has something to do next (nil: nothing is waiting).
    public func deadline() -> Nanos? {
        var d: [Nanos] = hosted.values.map(\.expires)
        if let a = attempt { d.append(a.nextSend) }
        if let i = invite { d.append(i.expires) }
        if let b = button {
            d += [b.until, b.nextOffer]
            if !b.decided, b.heard.count == 1 { d.append(b.opened + settle) }
        }
        return d.min()
    }

    func constantTimeEqual(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        guard a.count == b.count else { return false }
        return zip(a, b).reduce(UInt8(0)) { $0 | ($1.0 ^ $1.1) } == 0
    }
}
