import ArgumentParser
import Foundation
import Glibc
import JamzCore
import JamzNet
import JamzTestSupport
import Logging
import Synchronization

/// Many car sessions against one real mosquitto, in one process, with the real relay transport
/// (libmosquitto, one connection and thread each) and real sealing: what one broker carries and
/// costs. Each car sends a beacon-sized datagram at QoS 0 every second and an op at QoS 1 every
/// 10 s to its convoy; each delivery is opened by the receiving car's `Receiver` and timed.
struct RelayLoad: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "relay-load",
        abstract: "Delivery latency, loss at QoS 1 and broker CPU for many car sessions through one mosquitto (issue 12).")

    @Option(help: "Car sessions") var sessions = 500
    @Option(help: "Cars per convoy") var perConvoy = 5
    @Option(help: "Seconds measured") var seconds = 60.0
    @Option(help: "Sessions per process: libmosquitto's loop uses select(), so one process holds ~300 (file descriptors < 1024)") var perProcess = 250
    @Option(help: "(internal) run as a worker against this broker, writing results to --out") var broker: String?
    @Option(help: "(internal) a worker's result file") var out: String?
    @Option(help: "(internal) a worker's start time (monotonic ns) for the measured window") var at: Int64?

    final class Car: Sendable {
        let member: MemberID
        let convoy: Int
        let outbox: Mutex<Sealer>
        let inbox: Mutex<Receiver>
        init(member: MemberID, convoy: Int, outbox: Sealer, inbox: Receiver) {
            self.member = member; self.convoy = convoy; self.outbox = Mutex(outbox); self.inbox = Mutex(inbox)
        }
    }

    /// What every car received, opened and timed.
    final class Tally: Sendable {
        struct State {
            var latency0: [Double] = []   // ms, QoS 0
            var latency1: [Double] = []   // ms, QoS 1
            var reliable = Set<String>()  // receiver/sender/seq of QoS 1 deliveries
            var unopened = 0
        }
        let state = Mutex(State())
    }

    func run() throws {
        if let url = broker, let out, let at { return try work(url: url, out: out, at: at) }
        let rig = try MosquittoRig(extraConfig: "max_inflight_messages 100\nmax_queued_messages 100000\n")
        defer { rig.kill() }
        guard let broker = rig.process else { throw BenchError("the broker did not start") }
        let pid = broker.pid
        // The broker logs each connection to its stdout, a pipe: drained here, or mosquitto
        // blocks once the pipe holds 64 KiB (about 400 connections) and every car times out.
        Thread.detachNewThread { while broker.isRunning { broker.pump(wait: 60); broker.forget() } }
        let workers = (sessions + perProcess - 1) / perProcess
        print("jamz-bench relay-load: \(sessions) car sessions in convoys of \(perConvoy), \(workers) processes of up to \(perProcess) (the real relay transport and sealing), one mosquitto (\(rig.url)), \(Int(seconds)) s")
        func cpu() -> Double {
            guard let s = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8), let close = s.lastIndex(of: ")") else { return 0 }
            let f = s[s.index(after: close)...].split(separator: " ")
            return (Double(f[11]) ?? 0) + (Double(f[12]) ?? 0)   // utime + stime, clock ticks
        }
        let self_ = CommandLine.arguments[0]
        let begin = monotonicNow() + 20_000_000_000   // every worker connected by then
        let dir = NSTemporaryDirectory() + "jamz-relay-load-\(getpid())"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let children = try (0..<workers).map { k in
            try Child.spawn(self_, ["relay-load", "--sessions", "\(min(perProcess, sessions - k * perProcess))", "--per-convoy", "\(perConvoy)",
                                    "--seconds", "\(seconds)", "--broker", rig.url, "--out", "\(dir)/w\(k).json", "--at", "\(begin)"],
                            log: "\(dir)/w\(k).log", stdoutFD: 2)
        }
        while monotonicNow() < begin { usleep(100_000) }
        let cpu0 = cpu()
        while monotonicNow() < begin + Int64(seconds * 1e9) { usleep(100_000) }
        let brokerCPU = (cpu() - cpu0) / Double(sysconf(Int32(_SC_CLK_TCK))) / seconds
        for (k, c) in children.enumerated() {
            let st = c.wait().status
            guard st == 0 else {
                let log = (try? String(contentsOfFile: "\(dir)/w\(k).log", encoding: .utf8)) ?? ""
                throw BenchError("worker \(k) failed (wait status \(st)): \(log.suffix(2000))")
            }
        }
        var l0: [Double] = [], l1: [Double] = []
        var sent0 = 0, sent1 = 0, got1 = 0, expected1 = 0, expected0 = 0, unopened = 0, refused = 0, connectSeconds = 0.0
        for k in 0..<workers {
            guard let d = FileManager.default.contents(atPath: "\(dir)/w\(k).json"), let r = try? JSONDecoder().decode(WorkerResult.self, from: d) else {
                throw BenchError("worker \(k) left no result")
            }
            l0 += r.latency0; l1 += r.latency1; sent0 += r.sent0; sent1 += r.sent1; got1 += r.got1
            expected0 += r.sent0 * (perConvoy - 1); expected1 += r.sent1 * (perConvoy - 1)
            unopened += r.unopened; refused += r.refused; connectSeconds = max(connectSeconds, r.connectSeconds)
        }
        l0.sort(); l1.sort()
        func f(_ v: Double) -> String { String(format: "%.2f", v) }
        print("  all sessions connected within \(f(connectSeconds)) s")
        print("  sent: \(sent0) datagrams (QoS 0) and \(sent1) ops (QoS 1) in \(Int(seconds)) s, \(f(Double(sent0 + sent1) / seconds)) messages/s in, each to \(perConvoy - 1) cars")
        print("  delivery latency (send → opened by the receiving car), QoS 0: p50 \(f(percentile(l0, 50))) ms, p99 \(f(percentile(l0, 99))) ms, max \(f(l0.last ?? 0)) ms")
        print("  delivery latency, QoS 1: p50 \(f(percentile(l1, 50))) ms, p99 \(f(percentile(l1, 99))) ms, max \(f(l1.last ?? 0)) ms")
        print("  QoS 1 delivered: \(got1) of \(expected1) (lost \(expected1 - got1)); QoS 0 delivered \(l0.count) of \(expected0); unopened \(unopened); publishes refused by libmosquitto \(refused)")
        print("  broker CPU: \(f(brokerCPU * 100)) % of one core (\(f(brokerCPU * 1000 / Double(sessions))) ms of CPU per car per second)")
    }

    struct WorkerResult: Codable {
        var latency0: [Double], latency1: [Double]
        var sent0: Int, sent1: Int, got1: Int, unopened: Int, refused: Int, connectSeconds: Double
    }

    /// One worker: its sessions, sending from `at` for `seconds`, results to `out`.
    func work(url: String, out: String, at begin: Int64) throws {
        var logger = Logger(label: "relay-load")
        logger.logLevel = .error
        let convoys = (sessions + perConvoy - 1) / perConvoy
        let secrets = (0..<convoys).map { _ in ConvoySecret.random() }
        var g = SystemRandomNumberGenerator()
        let cars = (0..<sessions).map { i -> Car in
            let c = i / perConvoy, m = MemberID(g.next())
            return Car(member: m, convoy: c, outbox: Sealer(key: secrets[c].key, sender: m, bootCount: 1),
                       inbox: Receiver(me: m, keys: [secrets[c].key]))
        }
        let tally = Tally()
        struct Clock: HostClock { func now() -> Nanos { monotonicNow() } }
        let links = try cars.enumerated().map { i, car in
            try RelayTransport(settings: .init(url: url), topic: secrets[car.convoy].relayTopic, clientID: "load-\(getpid())-\(i)",
                               clock: Clock(), logger: logger) { bytes, at in
                guard let (_, _, seq, payload) = car.inbox.withLock({ try? $0.admit(bytes) }), payload.count >= 9 else {
                    tally.state.withLock { $0.unopened += 1 }
                    return
                }
                let sent = payload.prefix(8).enumerated().reduce(Int64(0)) { $0 | Int64($1.element) << (8 * Int64($1.offset)) }
                let ms = Double(at - sent) / 1e6
                tally.state.withLock { s in
                    if payload[8] == 1 {
                        s.latency1.append(ms)
                        s.reliable.insert("\(car.member.raw)/\(seq)")
                    } else {
                        s.latency0.append(ms)
                    }
                }
            }
        }
        defer { links.forEach { $0.close() } }
        let t0 = monotonicNow()
        links.forEach { $0.start() }
        do {
            try waitFor("every session connected", timeout: 120) { links.allSatisfy { $0.status.connected } }
        } catch {
            let down = links.filter { !$0.status.connected }
            print("  \(down.count) of \(sessions) sessions not connected; problems: \(Set(down.compactMap { $0.status.problem }).prefix(5))")
            throw error
        }
        let connectSeconds = Double(monotonicNow() - t0) / 1e9
        while monotonicNow() < begin { usleep(10_000) }   // every worker starts together
        let start = begin
        var sentReliable = 0, sentDatagrams = 0
        // Every car once a second, spread evenly over the second; every tenth round an op too.
        var round = 0
        while monotonicNow() < start + Int64(seconds * 1e9) {
            let roundStart = start + Int64(round) * 1_000_000_000
            for (i, car) in cars.enumerated() {
                let due = roundStart + Int64(i) * 1_000_000_000 / Int64(cars.count)
                let wait = due - monotonicNow()
                if wait > 0 { usleep(UInt32(wait / 1000)) }
                let reliable = (round + i) % 10 == 0
                let now = monotonicNow()
                var payload = (0..<8).map { UInt8(truncatingIfNeeded: now >> (8 * Int64($0))) } + [reliable ? 1 : 0]
                payload += [UInt8](repeating: 0x20, count: reliable ? 60 : 110)   // an op / a beacon's size
                let bytes = car.outbox.withLock { $0.seal(payload) }
                links[i].publish(bytes, reliable ? .reliable : .datagram)
                if reliable { sentReliable += 1 } else { sentDatagrams += 1 }
            }
            round += 1
        }
        Thread.sleep(forTimeInterval: 5)   // what is in flight arrives
        let st = tally.state.withLock { $0 }
        let r = WorkerResult(latency0: st.latency0, latency1: st.latency1, sent0: sentDatagrams, sent1: sentReliable, got1: st.reliable.count,
                             unopened: st.unopened, refused: Int(links.map { $0.status.sendFailures }.reduce(0, +)), connectSeconds: connectSeconds)
        try JSONEncoder().encode(r).write(to: URL(fileURLWithPath: out))
    }
}
