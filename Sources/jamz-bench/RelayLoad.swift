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
        let broker = try MosquittoRig(extraConfig: "max_inflight_messages 100\nmax_queued_messages 100000\n")
        defer { broker.kill() }
        guard let pid = broker.process?.pid else { throw BenchError("the broker did not start") }
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
        print("jamz-bench relay-load: \(sessions) car sessions in \(convoys) convoys of \(perConvoy), one mosquitto (\(broker.url)), \(Int(seconds)) s")
        let links = try cars.enumerated().map { i, car in
            try RelayTransport(settings: .init(url: broker.url), topic: secrets[car.convoy].relayTopic, clientID: "load-\(i)",
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
        try waitFor("every session connected", timeout: 120) { links.allSatisfy { $0.status.connected } }
        print("  all \(sessions) sessions connected in \(String(format: "%.1f", Double(monotonicNow() - t0) / 1e9)) s")
        Thread.sleep(forTimeInterval: 2)   // subscriptions settle

        func cpu() -> Double {
            guard let s = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
                  let close = s.lastIndex(of: ")") else { return 0 }
            let f = s[s.index(after: close)...].split(separator: " ")
            return (Double(f[11]) ?? 0) + (Double(f[12]) ?? 0)   // utime + stime, clock ticks
        }
        let cpu0 = cpu(), start = monotonicNow()
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
        let elapsed = Double(monotonicNow() - start) / 1e9
        let brokerCPU = (cpu() - cpu0) / Double(sysconf(Int32(_SC_CLK_TCK))) / elapsed
        Thread.sleep(forTimeInterval: 5)   // what is in flight arrives
        let s = tally.state.withLock { $0 }
        let expectedReliable = sentReliable * (perConvoy - 1)
        let expectedDatagrams = sentDatagrams * (perConvoy - 1)
        func f(_ v: Double) -> String { String(format: "%.2f", v) }
        let l0 = s.latency0.sorted(), l1 = s.latency1.sorted()
        print("  sent: \(sentDatagrams) datagrams (QoS 0) and \(sentReliable) ops (QoS 1) in \(f(elapsed)) s, \(f(Double(sentDatagrams + sentReliable) / elapsed)) messages/s in, each to \(perConvoy - 1) cars")
        print("  delivery latency (send → opened by the receiving car), QoS 0: p50 \(f(percentile(l0, 50))) ms, p99 \(f(percentile(l0, 99))) ms, max \(f(l0.last ?? 0)) ms")
        print("  delivery latency, QoS 1: p50 \(f(percentile(l1, 50))) ms, p99 \(f(percentile(l1, 99))) ms, max \(f(l1.last ?? 0)) ms")
        print("  QoS 1 delivered: \(s.reliable.count) of \(expectedReliable) (lost \(expectedReliable - s.reliable.count)); QoS 0 delivered \(l0.count) of \(expectedDatagrams); unopened \(s.unopened)")
        print("  broker CPU: \(f(brokerCPU * 100)) % of one core (\(f(brokerCPU * 1000 / Double(sessions))) ms of CPU per car per second)")
        let failures = links.map { $0.status.sendFailures }.reduce(0, +)
        print("  publishes refused by libmosquitto: \(failures)")
    }
}
