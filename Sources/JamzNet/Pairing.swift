import Crypto
import JamzCore

/// Joining a convoy without typing its 55-character code, sans-IO: what comes in (datagrams,
/// commands, the time) goes in, what to send and what happened comes out. Two ways:
///
/// - **Short code.** A car in the convoy opens an invite (`invite`): a 6-digit code, valid
///   `codeLifetime`. The joining car (`join(code:)`) multicasts a hello with its CPace share; a
///   car holding an open invite answers with its share and a key-confirmation tag; the joiner
///   checks the tag, answers with its own, and the host sends the convoy secret sealed under a
///   key derived from the exchange's ISK. The code never travels and cannot be tested offline:
///   each exchange tests one guess. The host answers at most one new exchange per
///   `freshSpacing` and `attemptsPerCode` exchanges that did not end in a join per code; then
///   the code is used up. The joiner checks at most `repliesChecked` replies per attempt.
/// - **Push button.** The join button pressed on two cars within `buttonWindow` of each other.
///   Each multicasts an offer once a second while its window is open. A car that hears exactly
///   one other car by the time its window has settled runs one exchange with it, with an empty
///   password; the host is the car in a convoy (else the one with more members, else the lower
///   member id), from the ranks both advertised at their press. A car that hears two other cars
///   gives up (overlap: which one was meant?), as does one that hears a second exchange or the
///   same car from a second address. Nothing authenticates the two cars to each other but the
///   moment and the link, so both speak two check words derived from the ISK. The joiner commits
///   to its share in its hello (a hash) and reveals it only after the host's share has come:
///   a man in the middle fixes each of its two keys before it learns the other, so it cannot
///   steer the words, and the two cars speak the same words only 1 time in 1024. The host sends
///   the convoy's secret only after its driver heard the same words from both cars and pressed
///   join again (within `confirmWindow`): a man in the middle learns no secret, new or old.
///
/// The exchange follows draft-irtf-cfrg-cpace-21 (`CPace`, initiator: the joiner), with its
/// §10.4 key confirmation (mac_key = SHA-512("CPaceMac" ‖ sid ‖ ISK); Ta, Tb = HMAC-SHA-512
/// over lv_cat(Y, AD)) and §10.3's KDF before the ISK keys anything (docs/cpace.md).
public struct Pairing<Address: Sendable & Equatable> {
    public struct Settings: Sendable {
        public var codeLifetime: Nanos = 5 * 60 * nanosPerSecond
        public var codeDigits = 6
        /// Exchanges per code that did not end in a join (a wrong code, or a tag obtained and
        /// never answered: that tested a guess too).
        public var attemptsPerCode = 5
        /// Between two new exchanges a host answers (brute force from many addresses at once).
        public var freshSpacing: Nanos = nanosPerSecond
        public var buttonWindow: Nanos = 30 * nanosPerSecond
        /// After the check words are spoken: how long the host waits for its driver's second
        /// press (the joiner waits for the welcome a little longer, `joinerGrace`).
        public var confirmWindow: Nanos = 30 * nanosPerSecond
        public var offerEvery: Nanos = nanosPerSecond
        public var resendEvery: Nanos = 500_000_000
        /// Sends of a hello or a confirm before the joiner gives up.
        public var tries = 6
        /// How long a host keeps an exchange waiting for its confirm.
        public var exchangeTimeout: Nanos = 10 * nanosPerSecond
        /// Replies with a new host whose tag a joiner checks before it gives up (wrong code).
        public var repliesChecked = 2
        /// Confirms with a wrong tag a host takes on one exchange before dropping it.
        public var wrongTags = 3
        public init() {}
    }

    public enum Failure: Error, Equatable, Sendable, CustomStringConvertible {
        case wrongCode, noAnswer, overlap, buttonTimeout, notConfirmed, badCode(String), cannot(String)
        public var description: String {
            switch self {
            case .wrongCode: "wrong join code: the car that answered has another one"
            case .noAnswer: "no car with an open join code answered (is it on this network, and its code still valid?)"
            case .overlap: "more than one car pressed join: press again on the two cars only"
            case .buttonTimeout: "no other car pressed join within 30 s"
            case .notConfirmed: "the check words were not confirmed by a second press of join on the car that asked for it"
            case .badCode(let why): why
            case .cannot(let why): "join: \(why)"
            }
        }
    }

    /// A join by code or by button (each has its own attempt and its own outcomes).
    public typealias Way = PairingWire.Mode

    public enum Outcome: Sendable, Equatable {
        /// This car has the convoy's secret (`host`: the car that gave it).
        case joined(ConvoySecret, host: String, checkWord: String, by: Way)
        /// A car joined this car's convoy.
        case welcomed(member: MemberID, name: String, checkWord: String)
        case failed(Failure, by: Way)
        /// A push-button exchange made its key: speak the check words. `confirm`: this car hosts
        /// and waits for its driver to press join again if the other car says the same words.
        case compare(checkWord: String, confirm: Bool)
        /// This car hosts a push-button join but is in no convoy: make one.
        case needConvoy
    }

    public enum Output: Sendable {
        case multicast([UInt8])
        case send([UInt8], to: Address)
        case outcome(Outcome)
        /// A counter to increase (`join.*`).
        case count(String)
        case note(String)
    }

    struct Invite { var code: [UInt8]; var expires: Nanos; var attemptsLeft: Int }
    /// A hosted exchange: the session and what the joiner sent first (its share, or for a button
    /// its commitment), so a hello with a copied session id cannot take another's place.
    struct HostKey: Hashable { var session: [UInt8]; var first: [UInt8] }
    struct Hosted {
        var mode: Way
        var peer: MemberID
        var name: String
        var address: Address
        /// A code: the invite's digits (its refund); nil for a button.
        var code: [UInt8]?
        /// A code: known at the hello. A button: known at the reveal.
        var isk: [UInt8]?
        var expectedTag: [UInt8]?
        /// A button: the responder's party and the joiner's AD, for the reveal.
        var party: CPace.Party?
        var joinerAD: [UInt8]
        var reply: [UInt8]
        var welcome: [UInt8]?
        var wrongTags = 0
        var expires: Nanos
    }
    struct Attempt {
        var mode: Way
        var party: CPace.Party
        var session: [UInt8]
        var isk: [UInt8]?
        var host: (member: MemberID, name: String)?
        var hostAddress: Address?
        var message: [UInt8]
        var sends = 1
        var nextSend: Nanos
        var badHosts: Set<MemberID> = []
        /// Replies whose tag was checked (a flood of made-up hosts costs one check each).
        var checked = 0
        /// A button: the car chosen as host (its answer is taken even if the window ended).
        var chosen: MemberID?
        /// A button's reveal is sent again until the host's driver confirms, up to this time.
        var until: Nanos?
    }
    enum Role { case undecided, host(MemberID), join(MemberID) }
    struct Heard { var address: Address; var hosting: Bool; var members: Int; var name: String }
    struct Button {
        var opened: Nanos
        var until: Nanos
        var session: [UInt8]
        var nextOffer: Nanos
        /// This car's rank, frozen at the press (what its offers advertise).
        var hosting: Bool
        var members: Int
        /// The other cars offering, as first heard (a later offer changes nothing).
        var heard: [MemberID: Heard] = [:]
        var role = Role.undecided
        /// The host's one exchange of the window began.
        var used = false
        var askedForConvoy = false
        /// The host's exchange whose words are spoken, waiting for this car's second press.
        var confirming: HostKey?
        var confirmed = false
        /// Two other cars were heard: given up, but offers go on until the window ends, so the
        /// others hear a third car too.
        var overlapped = false
    }

    public let settings: Settings
    let me: MemberID
    public var name: String
    let random: @Sendable (Int) -> [UInt8]
    var invite: Invite?
    var lastFresh: Nanos?
    var hosted: [HostKey: Hosted] = [:]
    var attempts: [Way: Attempt] = [:]
    var button: Button?
    /// Whether this car is in a convoy, and how many members it hears (the push-button's host;
    /// read at the press).
    public var hosting = false
    public var members = 0

    /// `random`: cryptographically random bytes (sessions, scalars, codes).
    public init(me: MemberID, name: String, settings: Settings = Settings(), random: @escaping @Sendable (Int) -> [UInt8]) {
        self.me = me; self.name = name; self.settings = settings; self.random = random
    }

    var myAssociated: [UInt8] { PairingWire.associated(member: me, name: name) }
    static var codeChannel: [UInt8] { Array("jamz code join v1".utf8) }
    static func buttonChannel(joiner: MemberID, host: MemberID) -> [UInt8] {
        CPace.lvCat(Array("jamz button join v1".utf8), PairingWire.associated(member: joiner, name: ""),
                    PairingWire.associated(member: host, name: ""))
    }
    static func macKey(session: [UInt8], isk: [UInt8]) -> SymmetricKey {
        SymmetricKey(data: Array(SHA512.hash(data: Array("CPaceMac".utf8) + session + isk)))
    }
    static func tag(_ key: SymmetricKey, _ share: [UInt8], _ ad: [UInt8]) -> [UInt8] {
        Array(HMAC<SHA512>.authenticationCode(for: CPace.lvCat(share, ad), using: key))
    }
    static func welcomeKey(session: [UInt8], isk: [UInt8]) -> SymmetricKey {
        HKDF<SHA256>.deriveKey(inputKeyMaterial: SymmetricKey(data: isk), salt: session, info: Array("jamz join welcome v1".utf8), outputByteCount: 32)
    }
    /// The words both cars speak: two bytes of HKDF-SHA256(ISK, sid, "jamz check word v1"),
    /// one word each (10 bits).
    static func checkWord(session: [UInt8], isk: [UInt8]) -> String {
        let k = HKDF<SHA256>.deriveKey(inputKeyMaterial: SymmetricKey(data: isk), salt: session, info: Array("jamz check word v1".utf8), outputByteCount: 2)
        return k.withUnsafeBytes { CheckWords.word(for: $0[0]) + " " + CheckWords.word(for: $0[1]) }
    }
    /// What a button joiner's hello carries instead of its share.
    static func commitment(session: [UInt8], share: [UInt8]) -> [UInt8] {
        Array(SHA256.hash(data: Array("jamz button commit v1".utf8) + session + share))
    }

    /// The digits of a short code, or why it is not one (spaces and dashes are ignored).
    public static func parse(code: String, digits: Int = Settings().codeDigits) throws(Failure) -> [UInt8] {
        let d = Array(code.utf8.filter { $0 != 0x20 && $0 != 0x2D })
        guard d.allSatisfy({ (0x30...0x39).contains($0) }) else { throw .badCode("a short join code has digits only") }
        guard d.count == digits else { throw .badCode("a short join code has \(digits) digits, not \(d.count)") }
        return d
    }

    // MARK: the host

    /// Opens an invite with a fresh code (a previous one is closed): "482 193".
    public mutating func invite(now: Nanos) -> String {
        var digits: [UInt8] = []
        while digits.count < settings.codeDigits {
            for b in random(settings.codeDigits) where b < 250 && digits.count < settings.codeDigits { digits.append(0x30 + b % 10) }
        }
        closeInvite()
        invite = Invite(code: digits, expires: now + settings.codeLifetime, attemptsLeft: settings.attemptsPerCode)
        let s = String(decoding: digits, as: UTF8.self)
        return String(s.prefix(3)) + " " + String(s.dropFirst(3))
    }

    /// Closes the invite and drops its exchanges not yet welcomed (this car left, joined or made
    /// another convoy, or opened a new code).
    public mutating func closeInvite() {
        invite = nil
        hosted = hosted.filter { $0.value.mode != .code || $0.value.welcome != nil }
    }

    /// The open invite's code, its time left and its attempts left.
    public func openInvite(now: Nanos) -> (code: String, left: Nanos, attempts: Int)? {
        guard let i = invite, now < i.expires else { return nil }
        return (String(decoding: i.code, as: UTF8.self), i.expires - now, i.attemptsLeft)
    }

    /// The push-button was pressed: offers go out for `buttonWindow`. Pressed again while this
    /// car hosts an exchange whose words were spoken: the driver confirms them, and the convoy's
    /// secret goes to the other car (`secret`: this car's convoy; none: make one first).
    public mutating func press(now: Nanos, secret: ConvoySecret?) -> [Output] {
        if var b = button, now < b.until {
            if b.confirming != nil, b.confirmed {
                return [.note("join button: check words already confirmed; making the convoy for the two cars")]
            }
            if let key = b.confirming, !b.confirmed, let h = hosted[key] {
                b.confirmed = true
                button = b
                guard let secret else {
                    button?.askedForConvoy = true
                    return [.note("join button: \(h.name)'s check words confirmed"), .outcome(.needConvoy)]
                }
                button = nil
                return [.note("join button: \(h.name)'s check words confirmed")] + welcomed(key, secret: secret, to: h.address)
            }
            return [.note("join button: already waiting, \((b.until - now) / nanosPerSecond) s left")]
        }
        let b = Button(opened: now, until: now + settings.buttonWindow, session: random(PairingWire.sessionCount),
                       nextOffer: now + settings.offerEvery, hosting: hosting, members: members)
        button = b
        attempts[.button] = nil
        dropButtonExchanges()
        return [.multicast(offer(b))]
    }

    /// Drops the push-button exchanges not welcomed (the window ended, gave up, or a new one
    /// opened): one window's exchange is never confirmed in another.
    mutating func dropButtonExchanges() {
        hosted = hosted.filter { $0.value.mode != .button || $0.value.welcome != nil }
    }

    /// A car decides whom it pairs with this long after its press (1.5 offers): every car that
    /// pressed by then has been heard, so two others are an overlap, not a race.
    var settle: Nanos { settings.offerEvery * 3 / 2 }

    func offer(_ b: Button) -> [UInt8] {
        PairingWire.encode(.offer(session: b.session, member: me, hosting: b.hosting, members: UInt8(clamping: b.members), name: name))
    }

    // MARK: the joiner

    /// Joins with a short code: multicasts a hello; the outcome comes from `received`/`due`.
    public mutating func join(code: String, now: Nanos) throws(Failure) -> [Output] {
        let digits = try Self.parse(code: code, digits: settings.codeDigits)
        guard attempts[.code] == nil else { throw .cannot("a join by code is already running") }
        return start(mode: .code, password: digits, channel: Self.codeChannel, to: nil, now: now)
    }

    mutating func start(mode: Way, password: [UInt8], channel: [UInt8], to address: Address?, now: Nanos) -> [Output] {
        let session = random(PairingWire.sessionCount)
        let party: CPace.Party
        do {
            party = try CPace.Party(role: .initiator, password: password, channel: channel, session: session, associated: myAssociated, scalar: random(32))
        } catch {
            if mode == .button { button = nil }
            return [.count("join.no_share"), .outcome(.failed(.cannot("no CPace share (\(error))"), by: mode))]
        }
        let first = mode == .code ? party.share : Self.commitment(session: session, share: party.share)
        let hello = PairingWire.encode(.hello(session: session, mode: mode, share: first, associated: myAssociated))
        attempts[mode] = Attempt(mode: mode, party: party, session: session, hostAddress: address, message: hello, nextSend: now + settings.resendEvery)
        return [address.map { .send(hello, to: $0) } ?? .multicast(hello)]
    }

    /// This car hosts a push-button exchange whose check words were spoken and waits for its
    /// driver's second press.
    public var awaitingConfirmation: Bool { button?.confirming != nil && button?.confirmed == false }

    /// What is waiting: an invite, a pressed button, an attempt (status).
    public func summary(now: Nanos) -> String? {
        var parts: [String] = []
        if let i = openInvite(now: now) {
            parts.append("join code \(i.code.prefix(3)) \(i.code.dropFirst(3)) valid \(i.left / nanosPerSecond) s, \(i.attempts) tries left")
        }
        if let b = button, now < b.until {
            parts.append(awaitingConfirmation ? "join button: check words spoken; press join again to let the other car in (\((b.until - now) / nanosPerSecond) s left)"
                                              : "join button: waiting \((b.until - now) / nanosPerSecond) s")
        }
        if !attempts.isEmpty { parts.append("joining…") }
        return parts.isEmpty ? nil : parts.joined(separator: "; ")
    }
}
