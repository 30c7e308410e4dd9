import Foundation
import Glibc
import JamzCore
import JamzNet
import JamzTestSupport
import Logging
import Synchronization
import Testing

/// The relay link against a real mosquitto broker (Debian's, started per test on a free port).
@Suite(.serialized) struct RelayTransportTests {
    struct Monotonic: HostClock {
        func now() -> Nanos {
            var ts = timespec()
            clock_gettime(CLOCK_MONOTONIC, &ts)
            return Nanos(ts.tv_sec) * 1_000_000_000 + Nanos(ts.tv_nsec)
        }
    }

    /// What one car's link received.
    final class Inbox: Sendable {
        let got = Mutex<[[UInt8]]>([])
        var all: [[UInt8]] { got.withLock { $0 } }
        func add(_ b: [UInt8]) { got.withLock { $0.append(b) } }
    }

    static func until(_ what: String, timeout: Double = 15, _ ok: () -> Bool) throws {
        let end = Date().addingTimeInterval(timeout)
        while !ok() {
            guard Date() < end else { throw RigError("\(what): not within \(timeout) s") }
            usleep(10_000)
        }
    }

    func car(_ name: String, _ broker: MosquittoRig, topic: String = "jamz/v1/test", ca: String? = nil,
             inbox: Inbox) throws -> RelayTransport {
        let settings = RelayTransport.Settings(url: broker.url, caFile: ca ?? (broker.tls ? broker.caFile : nil))
        let t = try RelayTransport(settings: settings, topic: topic, clientID: "\(name)-\(getpid())", clock: Monotonic(),
                                   logger: Logger(label: name)) { bytes, _ in inbox.add(bytes) }
        t.start()
        return t
    }

    @Test func carsHearEachOtherThroughTheBrokerButNotThemselves() throws {
        let broker = try MosquittoRig()
        let (inA, inB, inC) = (Inbox(), Inbox(), Inbox())
        let a = try car("a", broker, inbox: inA), b = try car("b", broker, inbox: inB)
        let c = try car("c", broker, topic: "jamz/v1/another-convoy", inbox: inC)
        defer { a.close(); b.close(); c.close() }
        try Self.until("all connected") { a.status.connected && b.status.connected && c.status.connected }
        // Subscriptions are made on connection: a message published right after may precede
        // them. Publish until the first one arrives, then count from there.
        try Self.until("the first message") { a.publish([0], .datagram); return !inB.all.isEmpty }
        let before = inB.all.count
        a.publish([1, 2, 3], .reliable)
        a.publish([4, 5], .datagram)
        b.publish([9, 9], .reliable)
        try Self.until("b hears a's two messages") { inB.all.count >= before + 2 }
        try Self.until("a hears b") { inA.all.contains([9, 9]) }
        #expect(Array(inB.all.suffix(2)) == [[1, 2, 3], [4, 5]])
        // No local: a never gets its own messages back; c (another convoy's topic) hears nothing.
        #expect(inA.all == [[9, 9]])
        #expect(inC.all.isEmpty)
        #expect(a.status.messagesSent >= 3 && b.status.messagesReceived >= 3)
        try Self.until("a's QoS 1 round trip measured") { a.status.rttMillis != nil }
    }

    @Test func aCarThatConnectsLaterGetsTheRetainedTimeline() throws {
        let broker = try MosquittoRig()
        let (inA, inB) = (Inbox(), Inbox())
        let a = try car("a", broker, inbox: inA)
        defer { a.close() }
        try Self.until("a connected") { a.status.connected }
        a.publish([7, 7, 7], .retainedTimeline)
        a.publish([8, 8, 8], .retainedTimeline)   // the latest replaces it
        try Self.until("both acknowledged") { a.status.rttMillis != nil }
        usleep(200_000)
        let b = try car("b", broker, inbox: inB)
        defer { b.close() }
        try Self.until("b gets the retained timeline") { !inB.all.isEmpty }
        usleep(200_000)
        #expect(inB.all == [[8, 8, 8]])
    }

    @Test func aBrokerRestartIsRiddenThroughWithBackoff() throws {
        let broker = try MosquittoRig()
        let (inA, inB) = (Inbox(), Inbox())
        let a = try car("a", broker, inbox: inA), b = try car("b", broker, inbox: inB)
        defer { a.close(); b.close() }
        try Self.until("connected") { a.status.connected && b.status.connected }
        broker.kill()
        try Self.until("both see the broker gone") { !a.status.connected && !b.status.connected }
        #expect(a.status.problem?.contains("lost") == true)
        try broker.start()
        try Self.until("both back", timeout: 40) { a.status.connected && b.status.connected }
        #expect(a.status.connects >= 2)
        try Self.until("a message after the restart") { a.publish([5], .reliable); return inB.all.contains([5]) }
    }

    @Test func tlsVerifiesTheBroker() throws {
        let broker = try MosquittoRig(tls: true)
        let (inA, inB, inX) = (Inbox(), Inbox(), Inbox())
        let a = try car("a", broker, inbox: inA), b = try car("b", broker, inbox: inB)
        // A car that trusts another CA must not talk to this broker.
        let x = try car("x", broker, ca: broker.dir + "/other-ca.crt", inbox: inX)
        defer { a.close(); b.close(); x.close() }
        try Self.until("a, b connected over TLS") { a.status.connected && b.status.connected }
        try Self.until("a message over TLS") { a.publish([3], .datagram); return inB.all.contains([3]) }
        try Self.until("x has a problem") { x.status.problem != nil }
        #expect(!x.status.connected)
        #expect(inX.all.isEmpty)
    }

    @Test func badSettingsSayWhatIsWrong() {
        func why(_ s: RelayTransport.Settings) -> String? {
            do { _ = try s.endpoint(); return nil } catch { return error.description }
        }
        #expect(why(.init(url: "http://broker"))?.contains("mqtt://") == true)
        #expect(why(.init(url: "mqtt://broker:99999"))?.contains("port") == true)
        #expect(why(.init(url: "mqtt://:1883"))?.contains("host") == true)
        #expect(why(.init(url: "mqtt://b", username: "u"))?.contains("password") == true)
        #expect(why(.init(url: "mqtt://b", caFile: "/x"))?.contains("mqtts") == true)
        #expect(try! RelayTransport.Settings(url: "mqtts://broker.example").endpoint() == .init(tls: true, host: "broker.example", port: 8883))
        #expect(try! RelayTransport.Settings(url: "mqtt://[::1]:1884").endpoint() == .init(tls: false, host: "::1", port: 1884))
        #expect(throws: RelayError.self) {
            try RelayTransport(settings: .init(url: "mqtts://b", caFile: "/nonexistent/ca.crt"), topic: "t", clientID: "c",
                               clock: Monotonic(), logger: Logger(label: "t")) { _, _ in }
        }
    }

    @Test func theTopicRevealsNeitherNameNorGroup() {
        let s = ConvoySecret(bytes: Array(repeating: 1, count: 32), name: "Road trip")!
        let t = s.relayTopic
        #expect(t.hasPrefix("jamz/v1/") && t.count == 8 + 32)
        #expect(!t.contains(s.groupID.description))
        #expect(ConvoySecret(bytes: Array(repeating: 2, count: 32))!.relayTopic != t)
        #expect(ConvoySecret(bytes: Array(repeating: 1, count: 32), name: "other")!.relayTopic == t)
    }
}
