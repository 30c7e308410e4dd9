import JamzCore

/// A deterministic convoy: N cars with their own clocks and DACs on a simulated network, run in
/// virtual time. Same config and seed, same run, bit for bit. It measures from outside the cars
/// what matters: at true time t, which frame each car's DAC is emitting.
public final class Simulation {
    public struct Config: Sendable {
        public var cars = 5
        public var link: LinkProfile
        public var policy: SyncPolicy = .jamz
        /// Every car's wall clock is GPS-PPS disciplined to this stated accuracy (nil: no GPS).
        public var gpsAccuracy: Nanos? = nil
        public var seed: UInt64 = 1
        public var sampleRate = 44_100
        public var blockFrames = 1024
        public var bufferBlocks = 4
        public var maxClockOrigin: Nanos = 3_600 * nanosPerSecond
        public var maxClockPPM = 100.0
        public var clockWanderPPM = 0.2
        public var maxDacPPM = 100.0
        /// Noise (sd, ns) on every timestamp a car takes (kernel receive stamps, DAC status).
        public var stampNoise: Nanos = 2_000
        public var partitions: [Partition] = []
        /// Run the renderers (off: only sessions and playlists, for fast merge tests).
        public var render = true
        public var sampleEvery: Nanos = 10_000_000
        /// Each car's node starts within this after its boot (then beacons every second, and
        /// clock exchanges as its pacer says: `ConvoyNode`).
        public var beaconEvery: Nanos = nanosPerSecond
        /// Playlist: track lengths in frames (added by car 0 before the run).
        public var tracks: [Int64] = (0..<40).map { 44_100 * Int64(150 + ($0 * 37) % 150) }
        public init(link: LinkProfile) { self.link = link }
    }

    /// Things a scenario makes happen at a true time.
    public enum Action: Sendable {
        /// Car `car` takes control (the DJ button).
        case takeOver(car: Int)
        /// The current DJ (in car `car`'s view) schedules a change.
        case change(car: Int, TimelineChange)
        /// Car `car`'s DJ skips to the next entry.
        case next(car: Int)
        /// Car `car` seeks to `seconds` into the playing track.
        case seek(car: Int, seconds: Double)
        /// Car `car` makes a playlist edit.
        case edit(car: Int, PlaylistEdit)
        /// The DJ starts the playlist from its first entry.
        case start(car: Int)
        /// Car `car` makes an edit chosen when it happens (from its own list): an add, or, when it
        /// is DJ in its own view, a remove or a move too.
        case randomEdit(car: Int, seed: UInt64)
        /// Car `car` multicasts its timeline again.
        case announce(car: Int)
    }

    public struct Jump: Sendable { public var car: Int; public var time: Nanos; public var frames: Int64 }
    public struct Switch: Sendable { public var car: Int; public var term: Term; public var version: UInt64; public var heard: Nanos }

    enum Event {
        case deliver(Message)
        case tick(Int)
        /// Car i's convoy node: what is due (beacons, exchanges, following the timeline).
        case node(Int)
        case wall(Int)
        case seedPosition
        case sample
        case action(Action)
    }

    public let config: Config
    public private(set) var now: Nanos = 0
    var cars: [Car] = []
    /// Car index by member id.
    var index: [MemberID: Int] = [:]
    var queue = EventQueue<Event>()
    var net: Network
    var rng: SplitMix64
    let epoch: Nanos = 1_800_000_000 * nanosPerSecond

    /// Inter-car spread (max − min heard position, ns) at each sample time while all cars play.
    public private(set) var spreads: [(time: Nanos, spread: Double)] = []
    public private(set) var notPlayingSamples = 0
    public private(set) var jumps: [Jump] = []
    public private(set) var switches: [Switch] = []
    /// Edits refused by a car's log (not DJ, entry gone).
    public private(set) var refusedEdits = 0
    /// Take-overs refused (the car is the DJ already, or never measured the DJ's clock).
    public private(set) var refusedTakeOvers = 0
    /// Every op made anywhere in the run.
    public private(set) var madeOps: Set<OpID> = []
    private var measureFrom: Nanos = 0

    public init(_ config: Config) {
        self.config = config
        rng = SplitMix64(seed: config.seed)
        net = Network(profile: config.link, partitions: config.partitions, cars: config.cars, rng: SplitMix64(seed: config.seed ^ 0x5EED))
        var r = rng
        // Car 0 built the playlist before the run; every car starts with it (the convoy formed earlier).
        let ids = (0..<config.cars).map { i in MemberID(UInt64(i + 1) << 32 | (r.next() & 0xFFFF_FFFF)) }
        var seedLog = PlaylistLog(me: ids[0])
        for (n, frames) in config.tracks.enumerated() {
            let hex = String(repeating: String(n % 16, radix: 16), count: 52) + String(repeating: "0", count: 12 - String(n, radix: 16).count) + String(n, radix: 16)
            _ = try? seedLog.make(.add(track: TrackID(hex: hex)!, frames: frames, after: nil), term: Term(number: 0, dj: ids[0]))
        }
        for i in 0..<config.cars {
            let clock = SimClock(origin: i == 0 ? 0 : Nanos((r.unit() * 2 - 1) * Double(config.maxClockOrigin)),
                                 ppm: (r.unit() * 2 - 1) * config.maxClockPPM,
                                 wanderPPM: config.clockWanderPPM, wanderPeriod: (600 + r.unit() * 1200) * 1e9)
            let boot = Nanos(r.unit() * 2e9)
            let dac = SimDAC(rate: config.sampleRate, ppm: (r.unit() * 2 - 1) * config.maxDacPPM,
                             start: boot + 100_000_000, latency: Nanos(r.unit() * 5e6))
            // Everyone starts in term 0 of car 0 (car 0 made the group and is DJ).
            let car = Car(index: i, id: ids[i], cars: config.cars, clock: clock, dac: dac, policy: config.policy,
                          rate: config.sampleRate, ops: seedLog.ops, dj: ids[0])
            car.wallBias = Nanos((r.unit() * 2 - 1) * Double(config.gpsAccuracy ?? 0) / 2)
            cars.append(car)
            index[ids[i]] = i
            if config.render { queue.push(dac.start, .tick(i)) }
            for _ in 0..<config.cars - 1 { _ = r.unit() }   // (the draws of the exchanges' former start times: same clocks per seed)
            scheduleNode(car, at: boot + Nanos(r.unit() * Double(config.beaconEvery)))
            if config.gpsAccuracy != nil { queue.push(boot, .wall(i)) }
        }
        rng = r
        if config.policy == .seed { queue.push(nanosPerSecond, .seedPosition) }
    }

    public var memberIDs: [MemberID] { cars.map(\.id) }
    public var carCount: Int { cars.count }

    public func at(_ t: Nanos, _ action: Action) { queue.push(t, .action(action)) }

    /// Record the inter-car spread every `sampleEvery` from `from` on.
    public func measure(from: Nanos) {
        measureFrom = from
        queue.push(from, .sample)
    }

    public func run(until end: Nanos) {
        while let t = queue.nextTime, t <= end {
            let (time, event) = queue.pop()!
            now = time
            handle(event)
        }
        now = end
    }

    // MARK: - What each car knows

    public func term(of car: Int) -> Term { cars[car].session.term }
    public func timeline(of car: Int) -> ConvoyTimeline { cars[car].session.timeline }
    public func playlist(of car: Int) -> [PlaylistEntry] { cars[car].log.entries }
    public func ops(of car: Int) -> [PlaylistOp] { cars[car].log.ops }
    public func bytesSent(by car: Int) -> Int { cars[car].bytesSent }
    /// When car `car` last adopted a timeline from a higher term or version (or took over).
    public func agreedAt(car: Int) -> Nanos? { cars[car].agreedAt }
    public func clockEstimate(car: Int, peer: Int) -> ClockEstimate? { cars[car].node.peers[cars[peer].id]?.filter.estimate }
    public var datagrams: (sent: Int, lost: Int, duplicated: Int) { (net.sent, net.lost, net.duplicated) }

    /// The car's estimate of `peer − car` clock offset minus the truth, now (ns), and its bound.
    public func offsetError(car: Int, peer: Int) -> (error: Double, bound: Nanos)? {
        let c = cars[car], p = cars[peer]
        let local = c.clock.local(now)
        guard let est = c.offset(to: peer, id: p.id, at: local) else { return nil }
        let truth = Double(p.clock.local(now) - local)
        return (est.offset - truth, est.bound)
    }

    /// The content frame car `car` is emitting at true time `t` (nil: silence). Only for `t` at or
    /// after earlier queries (the output log is walked forward).
    public func heard(car: Int, at t: Nanos) -> Double? {
        let c = cars[car]
        guard let (k, phase) = c.dac.slot(at: t), k < c.written else { return nil }
        return c.output.content(atSlot: k, phase: phase)
    }

    // MARK: - Events

    private func handle(_ e: Event) {
        switch e {
        case .deliver(let m): receive(m)
        case .tick(let i): tick(cars[i])
        case .node(let i): nodeTick(cars[i])
        case .wall(let i): wallReading(cars[i])
        case .seedPosition: seedPosition()
        case .sample: sample()
        case .action(let a): perform(a)
        }
    }

    private func noise() -> Nanos {
        config.stampNoise == 0 ? 0 : Nanos((Double(config.stampNoise) * rng.gaussian()).rounded())
    }

    private func send(_ from: Car, to: Int, _ p: Payload, at t: Nanos? = nil) {
        let sendTime = t ?? now
        from.bytesSent += p.bytes
        for d in net.fate(from: from.index, to: to, at: sendTime) {
            queue.push(sendTime + d, .deliver(Message(from: from.index, to: to, payload: p)))
        }
    }

    /// One multicast datagram (counted once) that every other car may receive.
    private func broadcast(_ from: Car, _ p: Payload) {
        from.bytesSent += p.bytes
        for j in 0..<cars.count where j != from.index {
            for d in net.fate(from: from.index, to: j, at: now) {
                queue.push(now + d, .deliver(Message(from: from.index, to: j, payload: p)))
            }
        }
    }

    private func receive(_ m: Message) {
        let car = cars[m.to]
        switch m.payload {
        case .wire(let message):
            // When it arrived, as the car's clock (and its receive stamp's noise) says.
            let at = car.clock.local(now) + noise()
            if case let .timeReply(t1, t2, t3, _) = message {
                // The references' own views of the exchange, and the lead's recent delays.
                let s = ClockSample(t1: t1, t2: t2, t3: t3, t4: at)
                car.lastRTT[m.from] = s.delay
                if car.policy == .snapcast { car.medians[m.from].add(s) }
                car.lead.observe(delay: s.delay, at: at)
            }
            let before = car.session.timeline
            // (The network's duplicates reach the node twice: the daemon's replay window would drop them.)
            let effects = car.node.opened(from: cars[m.from].id, boot: 1, via: .lan, at: at)
                + car.node.heard(message, from: cars[m.from].id, via: .lan, at: at)
            if car.session.timeline != before { car.agreedAt = now }
            carry(effects, of: car, replyTo: m.from)
        case .position(let frame):
            guard car.policy == .seed else { return }
            let delay = Double(car.lastRTT[m.from]) / 2
            car.seedRef = (frame + delay * Double(config.sampleRate) / 1e9, car.clock.local(now))
        }
    }

    /// What the node asks for, carried out on the simulated network the way the daemon does on
    /// its links: clock exchanges stamped as they leave (a reply 20 µs after the request came);
    /// what the player, the store and the track copies would do is not modelled here.
    private func carry(_ effects: [ConvoyNode.Effect], of car: Car, replyTo: Int?) {
        for e in effects {
            switch e {
            case .broadcast(let m): broadcast(car, .wire(m))
            case .reply(let m): if let j = replyTo { send(car, to: j, .wire(m)) }
            case .timeRequest(let to, _, let count):
                guard let j = index[to] else { break }
                for _ in 0..<count { send(car, to: j, .wire(.timeRequest(t1: car.clock.local(now) + noise(), wall: nil))) }
            case .timeReply(let t1, let t2):
                guard let j = replyTo else { break }
                let turnaround: Nanos = 20_000
                let t3 = car.clock.local(now + turnaround) + noise()
                send(car, to: j, .wire(.timeReply(t1: t1, t2: t2, t3: t3, wall: nil)), at: now + turnaround)
            case .announce:
                // Sent twice, 10 ms apart: one lost datagram must not make a car apply a change late.
                broadcast(car, .wire(.timeline(car.session.timeline)))
                queue.push(now + 10_000_000, .action(.announce(car: car.index)))
            case .wake: scheduleNode(car, at: now)
            default: break
            }
        }
    }

    private func scheduleNode(_ car: Car, at t: Nanos) {
        // One tick queued per car: an earlier one still to come covers this.
        if let d = car.nodeDue, d <= t, d >= now { return }
        car.nodeDue = t
        queue.push(t, .node(car.index))
    }

    private func nodeTick(_ car: Car) {
        guard car.nodeDue == now else { return }   // superseded by an earlier one
        car.nodeDue = nil
        let local = car.clock.local(now)
        let (effects, next) = car.node.tick(now: local, bleChannel: { _ in false }) { ConvoyNode.BeaconExtras(wall: self.ownWallSample(car)) }
        carry(effects, of: car, replyTo: nil)
        // The next deadline is on the car's clock: ±100 ppm off true time, µs over a second.
        if let next { scheduleNode(car, at: now + max(1_000, next - local)) }
    }

    private func ownWallSample(_ car: Car) -> WallClockSample? {
        guard let acc = config.gpsAccuracy else { return nil }
        return car.ownWall.latest.map { _ in
            WallClockSample(mono: car.clock.local(now), wall: now + epoch + car.wallBias + noise() / 2, accuracy: acc, ppsDisciplined: true)
        }
    }

    private func wallReading(_ car: Car) {
        guard let acc = config.gpsAccuracy else { return }
        car.ownWall.add(WallClockSample(mono: car.clock.local(now), wall: now + epoch + car.wallBias + noise() / 2, accuracy: acc, ppsDisciplined: true))
        car.node.ownWall = car.ownWall
        queue.push(now + nanosPerSecond, .wall(car.index))
    }

    private func seedPosition() {
        let dj = cars[0]
        if let k = dj.dac.slot(at: now), k.0 < dj.written, let c = dj.output.content(atSlot: k.0, phase: k.1) {
            broadcast(dj, .position(frame: c))
        }
        queue.push(now + nanosPerSecond, .seedPosition)
    }

    private func sample() {
        var lo = Double.infinity, hi = -Double.infinity
        var all = true
        for i in cars.indices {
            guard let c = heard(car: i, at: now) else { all = false; break }
            lo = min(lo, c); hi = max(hi, c)
        }
        if all { spreads.append((now, (hi - lo) * 1e9 / Double(config.sampleRate))) } else { notPlayingSamples += 1 }
        for c in cars { c.output.trim() }
        queue.push(now + config.sampleEvery, .sample)
    }

    // MARK: - Actions

    private func perform(_ a: Action) {
        switch a {
        case .takeOver(let i):
            // As the daemon does: refused when this car is the DJ already or has never measured
            // the DJ's clock.
            let car = cars[i], local = car.clock.local(now)
            guard let t = try? car.node.takeOverTimeline(now: local) else { refusedTakeOvers += 1; return }
            car.agreedAt = now
            carry(car.node.applyOwn(t, now: local), of: car, replyTo: nil)
        case .change(let i, let change):
            schedule(change, by: cars[i])
        case .next(let i):
            let car = cars[i]
            let list = car.log.entries
            let at = car.clock.local(now) + car.lead.lead(now: car.clock.local(now), renderAhead: renderAhead)
            guard let here = car.session.timeline.position(at: at, in: list, sampleRate: config.sampleRate),
                  here.index + 1 < list.count else { return }
            schedule(.start(entry: list[here.index + 1].id), by: car)
        case .seek(let i, let seconds):
            schedule(.seek(frame: Int64(seconds * Double(config.sampleRate))), by: cars[i])
        case .start(let i):
            guard let first = cars[i].log.entries.first else { return }
            schedule(.start(entry: first.id), by: cars[i])
        case .announce(let i):
            broadcast(cars[i], .wire(.timeline(cars[i].session.timeline)))
        case .randomEdit(let i, let seed):
            var r = SplitMix64(seed: seed)
            let car = cars[i]
            let list = car.log.entries
            let track = TrackID(hex: String(repeating: "f", count: 48) + String(repeating: "0", count: 16 - String(seed & 0xFFFF_FFFF, radix: 16).count) + String(seed & 0xFFFF_FFFF, radix: 16))!
            var edit = PlaylistEdit.add(track: track, frames: 44_100 * 60, after: list.isEmpty || r.unit() < 0.5 ? nil : list[Int(r.next() % UInt64(list.count))].id)
            if car.session.isDJ, !list.isEmpty {
                let pick = list[Int(r.next() % UInt64(list.count))].id
                switch r.next() % 3 {
                case 0: edit = .remove(entry: pick)
                case 1: edit = .move(entry: pick, after: r.unit() < 0.3 ? nil : list[Int(r.next() % UInt64(list.count))].id)
                default: break
                }
                if case .move(let e, let a) = edit, e == a { edit = .move(entry: e, after: nil) }
            }
            perform(.edit(car: i, edit))
        case .edit(let i, let edit):
            let car = cars[i]
            guard let ops = try? car.node.make([edit]) else { refusedEdits += 1; return }
            madeOps.formUnion(ops.map(\.id))
            carry(car.node.applyOwn(ops, now: car.clock.local(now)), of: car, replyTo: nil)
        }
    }

    /// How far ahead of the DAC the renderers write: the buffer plus the block being written.
    var renderAhead: Nanos {
        Nanos(Double((config.bufferBlocks + 1) * config.blockFrames) * 1e9 / Double(config.sampleRate))
    }

    private func schedule(_ change: TimelineChange, by car: Car) {
        let local = car.clock.local(now)
        let at = local + car.lead.lead(now: local, renderAhead: renderAhead)
        guard let t = try? car.node.scheduled(change, at: at) else { return }
        carry(car.node.applyOwn(t, now: local), of: car, replyTo: nil)
    }

    // MARK: - Rendering

    private func tick(_ car: Car) {
        let B = config.blockFrames
        let consumed = car.dac.consumed(at: now)
        let delay = car.written - consumed
        // What the renderer can know: its clock, the DAC's delay, the board's output latency.
        let heardLocal = car.clock.local(now) + noise() + Nanos((Double(delay) * 1e9 / Double(config.sampleRate)).rounded()) + car.dac.latency
        car.written += Int64(render(car, slot: car.written, count: B, heardLocal: heardLocal))
        let next = car.dac.time(whenConsumed: car.written - Int64(B * config.bufferBlocks))
        queue.push(max(next, now), .tick(car.index))
    }

    /// Fill output slots [slot, slot+count) whose first is heard at our time `heardLocal`; returns
    /// how many were filled (a jamz car's block is longer by the frames it repeats).
    private func render(_ car: Car, slot: Int64, count: Int, heardLocal: Nanos) -> Int {
        if car.policy == .seed && !car.session.isDJ {
            renderSeed(car, slot: slot, count: count, heardLocal: heardLocal)
            return count
        }
        let djIndex = cars.firstIndex(where: { $0.id == car.session.term.dj })
        let o = djIndex.flatMap { car.offset(to: $0, id: cars[$0].id, at: heardLocal) }
        if car.policy == .jamz {
            return renderPlanned(car, slot: slot, count: count, heardLocal: heardLocal, toDJ: o.map { Nanos($0.offset.rounded()) })
        }
        guard let o else {
            silence(car, slot: slot)
            return count
        }
        let djStart = heardLocal + Nanos(o.offset.rounded())
        let tl = car.session.timeline
        // A change scheduled inside this block switches at its exact frame.
        var split = count
        if let a = tl.anchor, a.time > djStart {
            let k = Int(((Double(a.time - djStart) * Double(config.sampleRate)) / 1e9).rounded(.up))
            if k < count { split = max(k, 0) }
        }
        let slotNs = 1e9 / Double(config.sampleRate)
        if split > 0 { piece(car, slot: slot, count: split, djTime: djStart) }
        if split < count {
            piece(car, slot: slot + Int64(split), count: count - split, djTime: djStart + Nanos((Double(split) * slotNs).rounded()))
        }
        return count
    }

    /// A jamz car's block as the daemon's renderer thread builds it: the convoy timeline in this
    /// car's clock (`toDJ`: its estimate of the DJ's clock minus its own; nil: none yet) is the
    /// plan, `BlockPlanner` says what the block holds, and its steps are carried out on a
    /// decoder that is always ready and on the DAC. A change scheduled inside the block switches
    /// at its frame: the part before follows the previous anchor. Returns the slots filled: the
    /// block's `count` and the frames it repeats (as the renderer thread writes them).
    private func renderPlanned(_ car: Car, slot: Int64, count: Int, heardLocal: Nanos, toDJ: Nanos?) -> Int {
        let rate = config.sampleRate
        let queue = car.log.entries.map { QueueEntry(id: $0.id.queueEntryID, trackID: $0.track, frames: $0.frames) }
        let tl = car.session.timeline
        // As the renderer thread splits it.
        var split = count
        if let d = toDJ, let a = tl.anchor, a.time - d > heardLocal {
            let end = heardLocal + FrameMath.duration(ofFrames: Int64(count), rate: rate)
            split = a.time - d >= end ? count : Int(FrameMath.frames(in: a.time - d - heardLocal, rate: rate))
        }
        var s = slot
        for (first, n) in [(true, split), (false, count - split)] where n > 0 {
            let offset = Int(s - slot)   // frames already in the block, repeats included
            let t = heardLocal + FrameMath.duration(ofFrames: Int64(offset), rate: rate)
            var plan: PlayAnchor?
            // The part before a change follows the previous anchor; the rest, the change.
            if let d = toDJ, let a = !first && split < count ? tl.anchor : tl.anchor(at: t + d) {
                plan = PlayAnchor(entryID: a.entry.queueEntryID, frame: a.frame, time: a.time - d, playing: a.rate != 0)
                if a.rate == 0 {
                    car.renderedAnchor = nil
                } else if a != car.renderedAnchor {
                    car.renderedAnchor = a
                    switches.append(Switch(car: car.index, term: car.session.term, version: tl.version, heard: car.dac.heardTime(ofSlot: s)))
                }
            } else {
                car.renderedAnchor = nil
            }
            var slip: BlockPlanner.Slip?
            let head = car.content.flatMap { Self.place(ofGlobal: $0, in: queue) }
            let steps = car.planner.span(plan, queue: queue, failed: [], head: head, buffered: Int(Self.decodedAhead * Double(rate)),
                                         audible: car.audible, slip: &slip, fetchPending: false, blockStart: heardLocal, offset: offset, frames: n)
            s = carryOut(steps, car, from: s, queue: queue)
        }
        return Int(s - slot)
    }

    /// Seconds of music the daemon's decoder keeps decoded ahead (`DecoderThread`).
    static let decodedAhead = 1.5

    /// The planner's steps on the simulated decoder (`car.content`) and DAC, from `slot`;
    /// returns the slot after them. A repeat or a drop of k frames shows as the content moving
    /// by k at that slot.
    private func carryOut(_ steps: [BlockPlanner.Step], _ car: Car, from slot: Int64, queue: [QueueEntry]) -> Int64 {
        var s = slot, jumping = false
        for step in steps {
            switch step {
            case .take(let k):
                guard k > 0, let c = car.content else { continue }
                car.output.append(slot: s, content: c)
                car.content = c + Int64(k)
                car.audible = true
                s += Int64(k)
            case .skip(let k):
                car.content = car.content.map { $0 + Int64(k) }
            case .repeatLast(let k):
                guard k > 0 else { continue }
                car.output.append(slot: s, content: car.content.map { $0 - Int64(k) })
                s += Int64(k)
            case .silence(let k), .fadeOut(let k):
                guard k > 0 else { continue }
                car.output.append(slot: s, content: nil)
                car.audible = false
                s += Int64(k)
            case .request(let entryID, let frame):
                let target = Self.global(entryID: entryID, frame: frame, in: queue)
                if jumping, let from = car.content, let to = target {
                    jumps.append(Jump(car: car.index, time: car.dac.heardTime(ofSlot: s), frames: to - from))
                }
                car.content = target
                jumping = false
            case .countJump:
                jumping = true
            case .entryFailed, .slip, .slipLimitReached, .countRepeated, .countDropped:
                break
            }
        }
        return s
    }

    /// The entry and frame of global frame `g` (frames from the playlist's start); nil past its end.
    static func place(ofGlobal g: Int64, in queue: [QueueEntry]) -> BlockPlanner.Head? {
        var start: Int64 = 0
        for e in queue {
            if g < start + e.frames { return BlockPlanner.Head(entryID: e.id, frame: g - start) }
            start += e.frames
        }
        return nil
    }

    static func global(entryID: Int64, frame: Int64, in queue: [QueueEntry]) -> Int64? {
        var start: Int64 = 0
        for e in queue {
            if e.id == entryID { return start + frame }
            start += e.frames
        }
        return nil
    }

    private func wanted(_ car: Car, at djTime: Nanos) -> (Double, TimelineAnchor)? {
        let tl = car.session.timeline
        guard let a = tl.anchor(at: djTime), a.rate != 0,
              let p = tl.precisePosition(at: djTime, in: car.log.entries, sampleRate: config.sampleRate) else { return nil }
        return (Double(p.position.globalFrame) + p.fraction, a)
    }

    private func piece(_ car: Car, slot: Int64, count: Int, djTime: Nanos) {
        guard let (w, anchor) = wanted(car, at: djTime) else {
            silence(car, slot: slot)
            return
        }
        if anchor != car.renderedAnchor {
            car.renderedAnchor = anchor
            switches.append(Switch(car: car.index, term: car.session.term, version: car.session.timeline.version,
                                   heard: car.dac.heardTime(ofSlot: slot)))
        }
        guard let c = car.content else {
            let start = Int64(w.rounded())
            write(car, slot: slot, count: count, from: start, adjust: 0)
            return
        }
        let action = car.policy == .snapcast
            ? car.inserter.decide(error: Double(c) - w, blockFrames: count)
            : car.controller.decide(error: Double(c) - w, blockFrames: count)
        switch action {
        case .none: write(car, slot: slot, count: count, from: c, adjust: 0)
        case .adjust(let n): write(car, slot: slot, count: count, from: c, adjust: n)
        case .jump(let n):
            jumps.append(Jump(car: car.index, time: car.dac.heardTime(ofSlot: slot), frames: n))
            write(car, slot: slot, count: count, from: c + n, adjust: 0)
        }
    }

    private func renderSeed(_ car: Car, slot: Int64, count: Int, heardLocal: Nanos) {
        guard let ref = car.seedRef else { silence(car, slot: slot); return }
        let w = ref.frame + Double(heardLocal - ref.local) * Double(config.sampleRate) / 1e9
        guard let c = car.content else { write(car, slot: slot, count: count, from: Int64(w.rounded()), adjust: 0); return }
        if abs(Double(c) - w) > 2 * Double(config.sampleRate) {
            jumps.append(Jump(car: car.index, time: car.dac.heardTime(ofSlot: slot), frames: Int64(w.rounded()) - c))
            write(car, slot: slot, count: count, from: Int64(w.rounded()), adjust: 0)
        } else {
            write(car, slot: slot, count: count, from: c, adjust: 0)
        }
    }

    private func silence(_ car: Car, slot: Int64) {
        car.content = nil
        car.renderedAnchor = nil
        car.output.append(slot: slot, content: nil)
    }

    /// Write `count` slots starting with content `from`, repeating (`adjust > 0`) or dropping
    /// (`< 0`) |adjust| single frames spread evenly through the block.
    private func write(_ car: Car, slot: Int64, count: Int, from: Int64, adjust: Int) {
        let m = abs(adjust)
        let seg = count / (m + 1)
        for j in 0...m {
            let shift = Int64(j) * (adjust > 0 ? -1 : 1)
            car.output.append(slot: slot + Int64(j * seg), content: from + Int64(j * seg) + (m == 0 ? 0 : shift))
        }
        car.content = from + Int64(count - adjust)
    }
}
