import Foundation
import Glibc

/// A real MQTT broker for the relay tests: Debian's `mosquitto` with a config of its own on a
/// free loopback port (optionally in a network namespace, on a given address), logging to
/// stdout, killed as a process group at the end. With `tls`, it listens with a certificate for
/// `localhost`/`127.0.0.1` signed by a CA made for the rig (`caFile`). It runs as root (the
/// rig's key files are root's) and line-buffered (`stdbuf`), so the test sees when it listens.
public final class MosquittoRig: @unchecked Sendable {
    // @unchecked: used from one test at a time.
    public let port: Int
    public let dir: String
    public let tls: Bool
    let netns: String?
    let bind: String
    let extraConfig: String
    public private(set) var process: GroupProcess?

    public var caFile: String { dir + "/ca.crt" }
    public var url: String { "\(tls ? "mqtts" : "mqtt")://\(tls ? "localhost" : bind):\(port)" }

    public init(tls: Bool = false, port: Int? = nil, bind: String = "127.0.0.1", netns: String? = nil, extraConfig: String = "") throws {
        self.port = try port ?? GPSDRig.freePort()
        self.tls = tls
        self.netns = netns
        self.bind = bind
        self.extraConfig = extraConfig
        dir = NSTemporaryDirectory() + "jamz-mosquitto-\(getpid())-\(self.port)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        if tls { try Self.makeCertificates(in: dir) }
        try start()
    }

    /// Starts (or restarts) the broker and waits until it listens.
    public func start() throws {
        var conf = """
        listener \(port) \(bind)
        user root
        allow_anonymous true
        persistence false
        log_dest stdout
        log_type error
        log_type warning
        log_type notice
        log_type information
        max_queued_messages 10000
        set_tcp_nodelay true

        """
        if tls {
            conf += "cafile \(dir)/ca.crt\ncertfile \(dir)/server.crt\nkeyfile \(dir)/server.key\n"
        }
        conf += extraConfig
        try conf.write(toFile: dir + "/mosquitto.conf", atomically: true, encoding: .utf8)
        let argv = (netns.map { ["ip", "netns", "exec", $0] } ?? []) + ["stdbuf", "-oL", "mosquitto", "-c", dir + "/mosquitto.conf"]
        let p = try GroupProcess(argv, log: dir + "/stderr.log")
        process = p
        _ = try p.waitFor("mosquitto listening", timeout: 20) { $0.contains(" running") }
    }

    /// Kills the broker at once (a crash, a lost data centre).
    public func kill() {
        process?.killGroup()
        process = nil
    }

    deinit {
        kill()
        try? FileManager.default.removeItem(atPath: dir)
    }

    /// A CA and a server certificate for localhost/127.0.0.1 (openssl, RSA 2048, 1 day).
    static func makeCertificates(in dir: String) throws {
        let ext = dir + "/san.ext"
        try "subjectAltName=DNS:localhost,IP:127.0.0.1\n".write(toFile: ext, atomically: true, encoding: .utf8)
        let steps: [[String]] = [
            ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=jamz test CA",
             "-keyout", dir + "/ca.key", "-out", dir + "/ca.crt"],
            ["openssl", "req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=localhost",
             "-keyout", dir + "/server.key", "-out", dir + "/server.csr"],
            ["openssl", "x509", "-req", "-in", dir + "/server.csr", "-CA", dir + "/ca.crt", "-CAkey", dir + "/ca.key",
             "-CAcreateserial", "-days", "1", "-extfile", ext, "-out", dir + "/server.crt"],
            // A second CA that signed nothing here: a car trusting only it must refuse the broker.
            ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=someone else",
             "-keyout", dir + "/other-ca.key", "-out", dir + "/other-ca.crt"],
        ]
        for argv in steps {
            let p = try GroupProcess(argv, log: dir + "/openssl.log")
            var st: Int32 = 0
            while waitpid(p.pid, &st, 0) < 0 && errno == EINTR {}
            guard st == 0 else { throw RigError("\(argv.prefix(3).joined(separator: " ")) failed: see \(dir)/openssl.log") }
        }
    }
}
