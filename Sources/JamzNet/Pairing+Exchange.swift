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
            return offered(member: member, heard: Heard(address: from, hosting: theirHosting, members: Int(theirMembers), name: theirName), now: now)
        case .hello(let s, let mode, let first, let ad):
            return hello(session: s, mode: mode, first: first, associated: ad, from: from, now: now)
        case .reply(let s, let share, let ad, let tag):
            return reply(session: s, share: share, associated: ad, tag: tag, from: from, now: now)
        case .confirm(let s, let tag):
            return confirm(session: s, tag: tag, from: from, secret: secret, now: now)
        case .answer(let s, let share, let ad):
            return answer(session: s, share: share, associated: ad, from: from, now: now)
        case .reveal(let s, let share, let tag):
            return reveal(session: s, share: share, tag: tag, from: from, secret: secret, now: now)
        case .welcome(let s, let sealed):
            return welcome(session: s, sealed: sealed)
        }
    }

    // MARK: the push-button's roles

    mutating func offered(member: MemberID, heard h: Heard, now: Nanos) -> [Output] {
        guard member != me, var b = button, now < b.until else { return [] }
        if let known = b.heard[member] {
            // The same car from a second address: itself on two links, or someone posing as it.
            return known.address == h.address ? [] : overlap(because: "\(h.name) offering from a second address")
        }
        // Two are an overlap already: a flood of made-up members is not kept.
        guard b.heard.count < 3 else { return [] }
        b.heard[member] = h
        button = b
        if b.heard.count >= 2 { return overlap(because: "\(b.heard.count) other cars pressed join") }
        return now >= b.opened + settle ? decide(now: now) : []
    }

    /// Gives up the button's window (once): two other cars, a second exchange, a second address.
    mutating func overlap(because why: String) -> [Output] {
        guard let b = button, !b.overlapped else { return [] }
        button?.overlapped = true
        button?.confirming = nil
        button?.confirmed = false
        attempts[.button] = nil
        dropButtonExchanges()
        return [.count("join.overlap"), .note("join button: \(why)"), .outcome(.failed(.overlap, by: .button))]
    }

    /// The roles, once the window has settled with one other car heard, from the ranks both
    /// advertised: the host is the car in a convoy, else the one with more members heard, else
    /// the lower member id.
    mutating func decide(now: Nanos) -> [Output] {
        guard let b = button, case .undecided = b.role, !b.overlapped, b.heard.count == 1, let (member, them) = b.heard.first
        else { return [] }
        let iHost = (b.hosting ? 1 : 0, b.members, member.raw) > (them.hosting ? 1 : 0, them.members, me.raw)
        if iHost {
            button?.role = .host(member)
            return [.note("join button: hosting \(them.name)")]
        }
        button?.role = .join(member)
        let out = start(mode: .button, password: [], channel: Self.buttonChannel(joiner: me, host: member), to: them.address, now: now)
        attempts[.button]?.chosen = member
        return [.note("join button: joining \(them.name)")] + out
    }

    // MARK: the host

    mutating func hello(session s: [UInt8], mode: Way, first: [UInt8], associated ad: [UInt8], from: Address, now: Nanos) -> [Output] {
        let key = HostKey(session: s, first: first)
        if let h = hosted[key] { return h.address == from ? [.send(h.reply, to: from)] : [.count("join.stray")] }   // our reply was lost
        guard let (peer, peerName) = PairingWire.parseAssociated(ad), peer != me else { return [.count("join.bad_datagram")] }
        switch mode {
        case .code:
            guard var i = invite, now < i.expires else { return [.count("join.no_invite")] }
            if let l = lastFresh, now - l < settings.freshSpacing {
                return [.count("join.rate_limited"), .note("join: a hello from \(peerName) refused (one new exchange per \(settings.freshSpacing / 1_000_000) ms)")]
            }
            guard i.attemptsLeft > 0 else {
                return [.count("join.code_used_up"), .note("join: code used up after \(settings.attemptsPerCode) failed tries: make a new one (jamz group invite)")]
            }
            lastFresh = now
            let party: CPace.Party, isk: [UInt8]
            do {
                party = try CPace.Party(role: .responder, password: i.code, channel: Self.codeChannel, session: s, associated: myAssociated, scalar: random(32))
                isk = try party.key(peerShare: first, peerAssociated: ad)
            } catch {
                return [.count("join.bad_share"), .note("join: hello from \(peerName) refused: \(error)")]
            }
            i.attemptsLeft -= 1
            invite = i
            let mac = Self.macKey(session: s, isk: isk)
            let reply = PairingWire.encode(.reply(session: s, share: party.share, associated: myAssociated, tag: Self.tag(mac, party.share, myAssociated)))
            hosted[key] = Hosted(mode: .code, peer: peer, name: peerName, address: from, code: i.code, isk: isk,
                                 expectedTag: Self.tag(mac, first, ad), joinerAD: ad, reply: reply, expires: now + settings.exchangeTimeout)
            return [.count("join.exchanges"), .send(reply, to: from)]
        case .button:
            guard var b = button, now < b.until, !b.overlapped else { return [.count("join.no_button")] }
            if case .undecided = b.role, now >= b.opened + settle {
                let out = decide(now: now)
                b = button ?? b
                guard case .host = b.role else { return out + [.count("join.no_button")] }
            }
            // Only from the one car heard offering, at its address, and only if this car hosts.
            guard case .host(let chosen) = b.role, chosen == peer, b.heard[peer]?.address == from else {
                return [.count("join.no_button")]
            }
            // One exchange per window: a second is someone else (or the same car twice): give up.
            guard !b.used else { return overlap(because: "a second join exchange from \(peerName)") }
            let party: CPace.Party
            do {
                party = try CPace.Party(role: .responder, password: [], channel: Self.buttonChannel(joiner: peer, host: me), session: s,
                                        associated: myAssociated, scalar: random(32))
            } catch {
                return [.count("join.no_share"), .note("join: no CPace share (\(error))")]
            }
            b.used = true
            button = b
            let answer = PairingWire.encode(.answer(session: s, share: party.share, associated: myAssociated))
            hosted[key] = Hosted(mode: .button, peer: peer, name: peerName, address: from, party: party, joinerAD: ad, reply: answer,
                                 expires: now + settings.exchangeTimeout)
            return [.count("join.exchanges"), .send(answer, to: from)]
        }
    }

    /// A code's confirm: the joiner's tag, checked against each exchange of this session from
    /// this address (a forged tag is counted; `settings.wrongTags` of them drop the exchange).
    mutating func confirm(session s: [UInt8], tag: [UInt8], from: Address, secret: ConvoySecret?, now: Nanos) -> [Output] {
        let keys = hosted.filter { $0.key.session == s && $0.value.mode == .code && $0.value.address == from }.map(\.key)
        guard !keys.isEmpty else { return [.count("join.stray")] }
        for key in keys {
            guard let h = hosted[key], let expected = h.expectedTag, constantTimeEqual(tag, expected) else { continue }
            if let w = h.welcome { return [.send(w, to: from)] }   // our welcome was lost
            guard let secret else { return [.note("join: \(h.name) confirmed, but this car left its convoy")] }
            if let c = h.code, invite?.code == c { invite?.attemptsLeft += 1 }   // a join is not a failed try
            return welcomed(key, secret: secret, to: from)
        }
        var out: [Output] = [.count("join.wrong_code")]
        for key in keys {
            guard var h = hosted[key] else { continue }
            h.wrongTags += 1
            if h.wrongTags >= settings.wrongTags {
                hosted[key] = nil
                out.append(.note("join: \(h.name) confirmed with another code; refused"))
            } else {
                hosted[key] = h
            }
        }
        return out
    }

    /// A button's reveal: the joiner's share (matching its commitment) and tag.
    mutating func reveal(session s: [UInt8], share: [UInt8], tag: [UInt8], from: Address, secret: ConvoySecret?, now: Nanos) -> [Output] {
        let key = HostKey(session: s, first: Self.commitment(session: s, share: share))
        guard var h = hosted[key], h.address == from else { return [.count("join.stray")] }
        if let w = h.welcome { return [.send(w, to: from)] }   // our welcome was lost
        // A button exchange not welcomed is this window's one exchange, with the car it chose:
        // those of earlier windows are dropped when a window ends or opens (`dropButtonExchanges`).
        guard let b = button, now < b.until, !b.overlapped else { return [.count("join.no_button")] }
        if h.isk == nil {
            guard let party = h.party, let isk = try? party.key(peerShare: share, peerAssociated: h.joinerAD) else {
                hosted[key] = nil
                return [.count("join.bad_share")]
            }
            h.isk = isk
            h.expectedTag = Self.tag(Self.macKey(session: s, isk: isk), share, h.joinerAD)
        }
        guard let expected = h.expectedTag, constantTimeEqual(tag, expected) else {
            h.wrongTags += 1
            hosted[key] = h.wrongTags >= settings.wrongTags ? nil : h
            return [.count("join.wrong_tag")]
        }
        guard b.confirmed else {
            // The words first: the secret goes once this car's driver heard the same words from
            // both cars and pressed join again (`press`). The joiner sends its reveal meanwhile.
            guard b.confirming == nil else { hosted[key] = h; return [] }
            // Kept as long as the joiner sends its reveal, so a welcome lost near the end of the
            // wait is sent again (unconfirmed, it is dropped when the window ends).
            h.expires = max(h.expires, now + settings.confirmWindow + joinerGrace)
            hosted[key] = h
            button?.confirming = key
            button?.until = max(b.until, now + settings.confirmWindow)
            let word = Self.checkWord(session: s, isk: h.isk ?? [])
            return [.note("join button: \(h.name) says \(word)? press join again if so"), .outcome(.compare(checkWord: word, confirm: true))]
        }
        hosted[key] = h
        guard let secret else {
            // This car makes its convoy now (the joiner sends its reveal again).
            guard !b.askedForConvoy else { return [] }
            button?.askedForConvoy = true
            return [.outcome(.needConvoy)]
        }
        button = nil
        return welcomed(key, secret: secret, to: from)
    }

    /// How much longer a button joiner waits for the welcome than the host's driver has to
    /// confirm (the host's wait starts when the joiner's first reveal arrives, later).
    var joinerGrace: Nanos { 5 * settings.resendEvery }

    /// The convoy this car was asked to make for a confirmed push-button join (`needConvoy`) is
    /// made: the welcome goes now, not at the joiner's next reveal.
    public mutating func convoyMade(secret: ConvoySecret) -> [Output] {
        guard let b = button, b.confirmed, b.askedForConvoy, let key = b.confirming, let h = hosted[key], h.isk != nil else {
            return [.note("join button: the convoy was made, but the pairing ended meanwhile (time-out or another car)")]
        }
        button = nil
        return welcomed(key, secret: secret, to: h.address)
    }

    /// The convoy asked for (`needConvoy`) could not be made: the pairing ends, and says so.
    public mutating func convoyFailed(_ why: String) -> [Output] {
        guard let b = button, b.askedForConvoy else { return [] }
        button = nil
        dropButtonExchanges()
        return [.count("join.no_convoy"), .outcome(.failed(.cannot("cannot make a convoy: \(why)"), by: .button))]
    }

    mutating func welcomed(_ key: HostKey, secret: ConvoySecret, to: Address) -> [Output] {
        guard var h = hosted[key], let isk = h.isk else { return [] }
        let s = key.session
        let header = PairingWire.header(5, s)
        guard let box = try? ChaChaPoly.seal(secret.bytes + PairingWire.shortName(secret.name, max: 200), using: Self.welcomeKey(session: s, isk: isk),
                                             nonce: ChaChaPoly.Nonce(data: [UInt8](repeating: 0, count: 12)), authenticating: header) else { return [] }
        let w = header + Array(box.ciphertext) + Array(box.tag)
        h.welcome = w
        hosted[key] = h
        return [.count("join.welcomed"), .send(w, to: to),
                .outcome(.welcomed(member: h.peer, name: h.name, checkWord: Self.checkWord(session: s, isk: isk)))]
    }

    // MARK: the joiner

    /// A code's reply: the host's share and tag.
    mutating func reply(session s: [UInt8], share: [UInt8], associated ad: [UInt8], tag: [UInt8], from: Address, now: Nanos) -> [Output] {
        guard var a = attempts[.code], a.session == s else { return [.count("join.stray")] }
        guard a.isk == nil else { return [] }   // a second host, or our confirm's reply repeated
        guard let (host, hostName) = PairingWire.parseAssociated(ad) else { return [.count("join.bad_datagram")] }
        // The same host answers each hello we send again: one check per host.
        guard !a.badHosts.contains(host) else { return [] }
        a.checked += 1
        guard let isk = try? a.party.key(peerShare: share, peerAssociated: ad),
              HMAC<SHA512>.isValidAuthenticationCode(tag, authenticating: CPace.lvCat(share, ad), using: Self.macKey(session: s, isk: isk)) else {
            a.badHosts.insert(host)
            var out: [Output] = [.count("join.wrong_code"), .note("join: \(hostName) answered with another code")]
            if a.checked >= settings.repliesChecked {
                attempts[.code] = nil
                out += [.count("join.refused"), .outcome(.failed(.wrongCode, by: .code))]
            } else {
                attempts[.code] = a
            }
            return out
        }
        a.isk = isk; a.host = (host, hostName); a.hostAddress = from
        a.message = PairingWire.encode(.confirm(session: s, tag: Self.tag(Self.macKey(session: s, isk: isk), a.party.share, myAssociated)))
        a.sends = 1; a.nextSend = now + settings.resendEvery
        attempts[.code] = a
        return [.send(a.message, to: from)]
    }

    /// A button's answer: the host's share, from the car chosen and its address only.
    mutating func answer(session s: [UInt8], share: [UInt8], associated ad: [UInt8], from: Address, now: Nanos) -> [Output] {
        guard var a = attempts[.button], a.session == s, a.isk == nil, a.hostAddress == from,
              let (host, hostName) = PairingWire.parseAssociated(ad), a.chosen == host
        else { return [.count("join.stray")] }
        guard let isk = try? a.party.key(peerShare: share, peerAssociated: ad) else { return [.count("join.bad_share")] }
        a.isk = isk; a.host = (host, hostName)
        a.message = PairingWire.encode(.reveal(session: s, share: a.party.share, tag: Self.tag(Self.macKey(session: s, isk: isk), a.party.share, myAssociated)))
        // Sent again until the host's driver has compared the words and pressed join again.
        a.sends = 1; a.nextSend = now + settings.resendEvery; a.until = now + settings.confirmWindow + joinerGrace
        attempts[.button] = a
        let word = Self.checkWord(session: s, isk: isk)
        return [.send(a.message, to: from), .note("join button: check words \(word), for \(hostName)'s driver to confirm"),
                .outcome(.compare(checkWord: word, confirm: false))]
    }

    mutating func welcome(session s: [UInt8], sealed: [UInt8]) -> [Output] {
        guard let (way, a) = attempts.first(where: { $0.value.session == s }), let isk = a.isk else { return [.count("join.stray")] }
        let key = Self.welcomeKey(session: s, isk: isk)
        guard let box = try? ChaChaPoly.SealedBox(nonce: ChaChaPoly.Nonce(data: [UInt8](repeating: 0, count: 12)),
                                                  ciphertext: sealed.dropLast(16), tag: sealed.suffix(16)),
              let plain = try? ChaChaPoly.open(box, using: key, authenticating: PairingWire.header(5, s)),
              let secret = ConvoySecret(bytes: Array(plain.prefix(ConvoySecret.byteCount)), name: String(decoding: plain.dropFirst(ConvoySecret.byteCount), as: UTF8.self))
        else { return [.count("join.bad_welcome"), .note("join: a welcome that does not open; ignored")] }
        attempts[way] = nil
        if way == .button { button = nil }
        return [.count("join.joined"), .outcome(.joined(secret, host: a.host?.name ?? "?", checkWord: Self.checkWord(session: s, isk: isk), by: way))]
    }

    // MARK: time

    /// Resends, expiries and time-outs due at `now`.
    public mutating func due(now: Nanos) -> [Output] {
        var out: [Output] = []
        for (way, var a) in attempts where now >= a.nextSend {
            if let until = a.until {
                if now < until {
                    a.nextSend = min(now + settings.resendEvery, until)
                    attempts[way] = a
                    if let to = a.hostAddress { out.append(.send(a.message, to: to)) }
                } else {
                    attempts[way] = nil
                    if way == .button { button = nil }
                    out += [.count("join.not_confirmed"), .outcome(.failed(.notConfirmed, by: way))]
                }
            } else if a.sends < settings.tries {
                a.sends += 1
                a.nextSend += settings.resendEvery
                attempts[way] = a
                out.append(a.hostAddress.map { .send(a.message, to: $0) } ?? .multicast(a.message))
            } else {
                attempts[way] = nil
                // The button's window ends with its one attempt.
                if way == .button { button = nil }
                let f: Failure = a.isk == nil && !a.badHosts.isEmpty ? .wrongCode : .noAnswer
                out += [.count(f == .wrongCode ? "join.refused" : "join.no_answer"), .outcome(.failed(f, by: way))]
            }
        }
        for (key, h) in hosted where now >= h.expires {
            hosted[key] = nil
            if h.welcome == nil { out += [.count("join.unconfirmed"), .note("join: \(h.name) never confirmed (a wrong code, or gone)")] }
        }
        if let i = invite, now >= i.expires { closeInvite(); out.append(.note("join code expired")) }
        if let b = button {
            if now >= b.until {
                button = nil
                dropButtonExchanges()
                if b.confirming != nil {
                    out += [.count("join.not_confirmed"), .outcome(.failed(.notConfirmed, by: .button))]
                } else if attempts[.button] == nil, !b.overlapped {
                    out += [.count("join.button_timeout"), .outcome(.failed(.buttonTimeout, by: .button))]
                }
            } else {
                if case .undecided = b.role, !b.overlapped, now >= b.opened + settle, b.heard.count == 1 { out += decide(now: now) }
                if let b = button, now >= b.nextOffer {
                    button?.nextOffer = now + settings.offerEvery
                    out.append(.multicast(offer(b)))
                }
            }
        }
        return out
    }

    /// When `due` has something to do next (nil: nothing is waiting). Never in the past once
    /// `due(now:)` has run: each deadline listed moves on when it is handled.
    public func deadline() -> Nanos? {
        var d: [Nanos] = hosted.values.map(\.expires)
        d += attempts.values.map(\.nextSend)
        if let i = invite { d.append(i.expires) }
        if let b = button {
            d += [b.until, b.nextOffer]
            if case .undecided = b.role, !b.overlapped, b.heard.count == 1 { d.append(b.opened + settle) }
        }
        return d.min()
    }

    func constantTimeEqual(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        guard a.count == b.count else { return false }
        return zip(a, b).reduce(UInt8(0)) { $0 | ($1.0 ^ $1.1) } == 0
    }
}
