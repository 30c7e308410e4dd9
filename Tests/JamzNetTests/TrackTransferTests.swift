import Crypto
import Foundation
import JamzCore
@testable import JamzNet
import JamzTestSupport
import NIOPosix
import Testing

private func convoyKey(_ seed: UInt64) -> ConvoyKey {
    var rng = SplitMix64(seed: seed)
    return ConvoySecret.random(name: "xfer", using: &rng).key
}

private func randomBytes(_ count: Int, seed: UInt64) -> [UInt8] {
    var rng = SplitMix64(seed: seed)
    var out: [UInt8] = []
    out.reserveCapacity(count + 8)
    while out.count < count {
        let w = rng.next()
        for i in 0..<8 { out.append(UInt8(truncatingIfNeeded: w >> (8 * i))) }
    }
    return Array(out.prefix(count))
}

private func trackID(of bytes: [UInt8]) -> TrackID {
    TrackID(hex: SHA256.hash(data: bytes).map { String(format: "%02x", $0) }.joined())!
}

/// A server dir holding one track, and an empty client dir.
struct XferSetup {
    let serverDir = Fixtures.tempDir()
    let clientDir = Fixtures.tempDir()

    @discardableResult
    func put(_ bytes: [UInt8]) throws -> TrackID {
        let id = trackID(of: bytes)
        try Data(bytes).write(to: serverDir.appendingPathComponent(id.hex + ".mp3"))
        return id
    }

    func cleanUp() {
        try? FileManager.default.removeItem(at: serverDir)
        try? FileManager.default.removeItem(at: clientDir)
    }
}

private func fetchError(_ body: () async throws -> URL) async -> TrackFetchError? {
    do {
        _ = try await body()
        return nil
    } catch let e as TrackFetchError {
        return e
    } catch {
        Issue.record("unexpected error \(error)")
        return nil
    }
}

@Suite(.timeLimit(.minutes(1))) struct TrackTransferTests {
    let key = convoyKey(1)
    let me = MemberID(0xCA2)

    func start(_ s: XferSetup, key: ConvoyKey? = nil) async throws -> TrackServer {
        try await TrackServer.start(cacheDir: s.serverDir.path, key: key ?? self.key, host: "127.0.0.1",
                                    group: MultiThreadedEventLoopGroup.singleton)
    }

    func fetch(_ id: TrackID, _ server: TrackServer, _ s: XferSetup, key: ConvoyKey? = nil) async throws -> URL {
        try await TrackFetcher.fetch(id, from: "127.0.0.1", port: server.port, key: key ?? self.key, sender: me,
                                     into: s.clientDir.path, timeout: .seconds(5))
    }

    @Test func fetchesWholeFile() async throws {
        let s = XferSetup(); defer { s.cleanUp() }
        let bytes = randomBytes(300_000, seed: 7)
        let id = try s.put(bytes)
        let server = try await start(s)
        let url = try await fetch(id, server, s)
        await server.close()

        #expect(url.lastPathComponent == id.hex + ".mp3")
        #expect(url.path == s.clientDir.appendingPathComponent(id.hex + ".mp3").path)
        #expect([UInt8](try Data(contentsOf: url)) == bytes)
        #expect(!FileManager.default.fileExists(atPath: url.path + ".part"))
        let c = server.counters
        #expect(c.served == 1 && c.refused == 0 && c.bytesSent == 300_000)
    }

    @Test func resumesFromPartialFile() async throws {
        let s = XferSetup(); defer { s.cleanUp() }
        let bytes = randomBytes(300_000, seed: 8)
        let id = try s.put(bytes)
        let part = s.clientDir.appendingPathComponent(id.hex + ".mp3.part")
        try Data(bytes[0..<100_000]).write(to: part)
        let server = try await start(s)
        let url = try await fetch(id, server, s)
        await server.close()

        #expect([UInt8](try Data(contentsOf: url)) == bytes)
        #expect(!FileManager.default.fileExists(atPath: part.path))
        // Asked from 100 KB: only the rest went over the wire.
        #expect(server.counters.bytesSent == 200_000)
        #expect(server.served == 1)
    }

    @Test func wrongPartialFailsHashAndIsRemoved() async throws {
        let s = XferSetup(); defer { s.cleanUp() }
        let bytes = randomBytes(300_000, seed: 9)
        let id = try s.put(bytes)
        let part = s.clientDir.appendingPathComponent(id.hex + ".mp3.part")
        try Data(randomBytes(100_000, seed: 99)).write(to: part)
        let server = try await start(s)
        let error = await fetchError { try await fetch(id, server, s) }
        await server.close()

        guard case .hashMismatch(let expected, let actual)? = error else {
            Issue.record("expected hashMismatch, got \(String(describing: error))")
            return
        }
        #expect(expected == id && actual != id)
        #expect(!FileManager.default.fileExists(atPath: part.path))
        #expect(!FileManager.default.fileExists(atPath: s.clientDir.appendingPathComponent(id.hex + ".mp3").path))
    }

    @Test func unknownTrackIsNotHere() async throws {
        let s = XferSetup(); defer { s.cleanUp() }
        try s.put(randomBytes(1_000, seed: 10))
        let other = trackID(of: randomBytes(1_000, seed: 11))
        let server = try await start(s)
        let error = await fetchError { try await fetch(other, server, s) }
        await server.close()

        #expect(error == .notHere)
        #expect(server.counters.notHere == 1 && server.served == 0)
        #expect(try FileManager.default.contentsOfDirectory(atPath: s.clientDir.path).isEmpty)
    }

    @Test func foreignConvoyIsRefused() async throws {
        let s = XferSetup(); defer { s.cleanUp() }
        let id = try s.put(randomBytes(10_000, seed: 12))
        let server = try await start(s)
        let error = await fetchError { try await fetch(id, server, s, key: convoyKey(2)) }
        // Same group id, different key: a forgery, also refused.
        let forged = ConvoyKey(groupID: key.groupID, key: SymmetricKey(size: .bits256))
        let error2 = await fetchError { try await fetch(id, server, s, key: forged) }
        await server.close()

        #expect(error == .refused)
        #expect(error2 == .refused)
        #expect(server.refused == 2 && server.served == 0 && server.counters.bytesSent == 0)
    }

    @Test func garbageRequestIsRefused() async throws {
        let s = XferSetup(); defer { s.cleanUp() }
        let server = try await start(s)
        // A well-framed request whose envelope is noise.
        let h = FileHandle(fileDescriptor: try connectRaw(port: server.port), closeOnDealloc: true)
        var frame: [UInt8] = [0, 82]
        frame += randomBytes(82, seed: 13)
        try h.write(contentsOf: frame)
        let reply = try h.readToEnd() ?? Data()
        await server.close()
        #expect(reply.isEmpty)
        #expect(server.refused == 1)
    }

    @Test func concurrentFetches() async throws {
        let s = XferSetup(); defer { s.cleanUp() }
        let a = randomBytes(400_000, seed: 14), b = randomBytes(250_000, seed: 15)
        let idA = try s.put(a), idB = try s.put(b)
        let server = try await start(s)
        async let ua = fetch(idA, server, s)
        async let ub = fetch(idB, server, s)
        let (urlA, urlB) = try await (ua, ub)
        await server.close()

        #expect([UInt8](try Data(contentsOf: urlA)) == a)
        #expect([UInt8](try Data(contentsOf: urlB)) == b)
        #expect(server.served == 2 && server.counters.bytesSent == 650_000)
    }

    @Test func interruptedTransferKeepsPartAndResumes() async throws {
        let s = XferSetup(); defer { s.cleanUp() }
        let bytes = randomBytes(300_000, seed: 16)
        let id = try s.put(bytes)
        // A server that announces the whole size, sends 120 000 bytes and hangs up.
        let port = try halfServer(total: bytes.count, send: Array(bytes[0..<120_000]))
        let error = await fetchError {
            try await TrackFetcher.fetch(id, from: "127.0.0.1", port: port, key: key, sender: me,
                                         into: s.clientDir.path, timeout: .seconds(5))
        }
        #expect(error == .truncated(received: 120_000, expected: 300_000))
        let part = s.clientDir.appendingPathComponent(id.hex + ".mp3.part")
        #expect((try? Data(contentsOf: part).count) == 120_000)

        let server = try await start(s)
        let url = try await fetch(id, server, s)
        await server.close()
        #expect([UInt8](try Data(contentsOf: url)) == bytes)
        #expect(server.counters.bytesSent == 180_000)
    }

    /// A server that stops sending mid-file: the fetch gives up after `timeout` of silence (an
    /// inactivity limit, not one on the whole transfer) and keeps what arrived for a resume.
    @Test func aSilentServerTimesOutAndThePartIsKept() async throws {
        let s = XferSetup(); defer { s.cleanUp() }
        let bytes = randomBytes(200_000, seed: 23)
        let id = try s.put(bytes)
        let port = try halfServer(total: bytes.count, send: Array(bytes[0..<50_000]), hold: 5)
        let error = await fetchError {
            try await TrackFetcher.fetch(id, from: "127.0.0.1", port: port, key: key, sender: me,
                                         into: s.clientDir.path, timeout: .milliseconds(300))
        }
        #expect(error == .timedOut)
        let part = s.clientDir.appendingPathComponent(id.hex + ".mp3.part")
        #expect((try? Data(contentsOf: part).count) == 50_000)
    }

    @Test func anUnknownHostIsNamed() async throws {
        let s = XferSetup(); defer { s.cleanUp() }
        let error = await fetchError {
            try await TrackFetcher.fetch(trackID(of: [1]), from: "no-such-car.invalid", port: 9, key: key, sender: me,
                                         into: s.clientDir.path, timeout: .seconds(2))
        }
        #expect(error == .unresolved("no-such-car.invalid"))
    }

    @Test func nothingListeningFailsFast() async throws {
        let s = XferSetup(); defer { s.cleanUp() }
        let server = try await start(s)
        let port = server.port
        await server.close()
        let error = await fetchError {
            try await TrackFetcher.fetch(trackID(of: [1]), from: "127.0.0.1", port: port, key: key, sender: me,
                                         into: s.clientDir.path, timeout: .seconds(2))
        }
        guard case .system(call: "connect", errno: ECONNREFUSED)? = error else {
            Issue.record("expected connection refused, got \(String(describing: error))")
            return
        }
    }

    @Test func requestWireFormat() throws {
        let id = trackID(of: [1, 2, 3])
        let r = TrackFetcher.request(id, offset: 0x0102, key: key, sender: me)
        #expect(r.count == 84 && r[0] == 0 && r[1] == 82)
        let opened = try Envelope.open(Array(r[2...]), keys: [key.groupID: key])
        #expect(opened.sender == me)
        #expect(opened.payload.count == 40)
        #expect(opened.payload[0..<32].map { String(format: "%02x", $0) }.joined() == id.hex)
        #expect(Array(opened.payload[32...]) == [2, 1, 0, 0, 0, 0, 0, 0])
    }
}

/// A blocking TCP connection to 127.0.0.1:`port` (for hand-made requests).
private func connectRaw(port: Int) throws -> Int32 {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    var addr = sockaddr_in()
    addr.sin_family = sa_family_t(AF_INET)
    addr.sin_port = in_port_t(UInt16(port).bigEndian)
    addr.sin_addr.s_addr = inet_addr("127.0.0.1")
    let r = withUnsafePointer(to: &addr) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
    }
    guard r == 0 else { throw TrackFetchError.system(call: "connect", errno: errno) }
    return fd
}

/// Listens on 127.0.0.1, takes one request (84 bytes), answers "ok, `total` bytes", sends `send`,
/// stays silent for `hold` seconds and closes. Returns the port.
private func halfServer(total: Int, send bytes: [UInt8], hold: Double = 0) throws -> Int {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    var addr = sockaddr_in()
    addr.sin_family = sa_family_t(AF_INET)
    addr.sin_addr.s_addr = inet_addr("127.0.0.1")
    var len = socklen_t(MemoryLayout<sockaddr_in>.size)
    let ok = withUnsafeMutablePointer(to: &addr) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
            bind(fd, $0, len) == 0 && listen(fd, 1) == 0 && getsockname(fd, $0, &len) == 0
        }
    }
    guard ok else { throw TrackFetchError.system(call: "bind", errno: errno) }
    let port = Int(UInt16(bigEndian: addr.sin_port))
    Thread {
        let c = accept(fd, nil, nil)
        close(fd)
        let h = FileHandle(fileDescriptor: c, closeOnDealloc: true)
        var got = 0
        while got < 84, let d = try? h.read(upToCount: 84 - got), !d.isEmpty { got += d.count }
        var reply: [UInt8] = [0]
        withUnsafeBytes(of: UInt64(total).littleEndian) { reply += $0 }
        try? h.write(contentsOf: reply + bytes)
        if hold > 0 { Thread.sleep(forTimeInterval: hold) }
        try? h.close()
    }.start()
    return port
}
