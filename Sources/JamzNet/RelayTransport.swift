import CMosquitto
import Foundation
import JamzCore
import Logging
import Synchronization

/// The convoy's link through the internet: an MQTT 5 broker (Debian's libmosquitto), reached
/// over the car's modem. The broker only ever sees sealed envelopes under a topic derived from
/// the convoy secret (`ConvoySecret.relayTopic`): no name, no member id in clear.
///
/// libmosquitto runs the connection on a thread of its own (`mosquitto_loop_start`): connects,
/// reconnects with exponential backoff (1 s doubling to 30 s), keep-alives. Its callbacks run on
/// that thread and hand what arrived to `receive` with this car's clock reading; `publish` may
/// be called from any thread. Subscribed with "no local": a car does not get its own messages
/// back (mobile data).
///
/// Topics under the convoy's base: `…/m` for what every car hears (beacons at QoS 0, ops and
/// timelines at QoS 1), `…/t` for the retained latest timeline, so a car that comes online
/// mid-drive follows at once, and `…/p/<inbox>` for what is meant for one car (clock exchanges,
/// replies): each car subscribes to its own inbox (`ConvoySecret.relayInbox(for:)`) only.
public final class RelayTransport: Sendable {
    public struct Settings: Sendable, Equatable {
        /// `mqtt://host:port` or `mqtts://host:port` (TLS, the broker's certificate verified
        /// against `caFile`, or the system's CAs when nil).
        public var url: String
        public var caFile: String?
        public var username: String?
        public var password: String?
        /// Client certificate and key (PEM), for brokers that authenticate cars by certificate.
        public var certFile: String?
        public var keyFile: String?
        public var keepalive: Int32 = 30

        public init(url: String, caFile: String? = nil, username: String? = nil, password: String? = nil,
                    certFile: String? = nil, keyFile: String? = nil) {
            self.url = url; self.caFile = caFile; self.username = username; self.password = password
            self.certFile = certFile; self.keyFile = keyFile
        }

        public struct Endpoint: Sendable, Equatable {
            public var tls: Bool
            public var host: String
            public var port: Int32
            public init(tls: Bool, host: String, port: Int32) { self.tls = tls; self.host = host; self.port = port }
        }

        /// The broker named by `url`; a clear message when it is not one.
        public func endpoint() throws(RelayError) -> Endpoint {
            let tls: Bool
            let rest: Substring
            if url.hasPrefix("mqtt://") { tls = false; rest = url.dropFirst(7) }
            else if url.hasPrefix("mqtts://") { tls = true; rest = url.dropFirst(8) }
            else { throw RelayError("relay.url \"\(url)\" must start with mqtt:// or mqtts://") }
            let hostPort = rest.split(separator: "/", maxSplits: 1, omittingEmptySubsequences: false).first ?? ""
            var host = String(hostPort), port: Int32 = tls ? 8883 : 1883
            if let colon = hostPort.lastIndex(of: ":"), !hostPort.hasSuffix("]") {
                host = String(hostPort[..<colon])
                guard let p = Int32(hostPort[hostPort.index(after: colon)...]), (1...65_535).contains(p) else {
                    throw RelayError("relay.url \"\(url)\": the port must be a number from 1 to 65535")
                }
                port = p
            }
            if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
            guard !host.isEmpty else { throw RelayError("relay.url \"\(url)\" names no broker host") }
            if (username == nil) != (password == nil) {
                throw RelayError("relay.username and relay.password go together: set both or neither")
            }
            if (certFile == nil) != (keyFile == nil) {
                throw RelayError("relay.cert_file and relay.key_file go together: set both or neither")
            }
            if !tls && (caFile != nil || certFile != nil) {
                throw RelayError("relay.ca_file and relay.cert_file need an mqtts:// broker")
            }
            return Endpoint(tls: tls, host: host, port: port)
        }
    }

    /// What `jamz status`/`jamz peers` show of the link.
    public struct Status: Sendable, Equatable, Codable {
        public var connected = false
        public var broker = ""
        /// Why the last connection attempt failed or the connection was lost.
        public var problem: String?
        /// Last round trip of a QoS 1 publish to the broker and its acknowledgement.
        public var rttMillis: Double?
        public var connects = 0
        public var messagesSent: Int64 = 0
        public var messagesReceived: Int64 = 0
        public var bytesSent: Int64 = 0
        public var bytesReceived: Int64 = 0
        /// Publishes refused by the library (not connected, queue full).
        public var sendFailures: Int64 = 0

        /// One line for people: "connected to mqtt://… (RTT 85 ms), 12 kB sent, 30 kB received".
        public var summary: String {
            let state = connected ? "connected to \(broker)" + (rttMillis.map { String(format: " (RTT %.0f ms)", $0) } ?? "")
                                  : "not connected to \(broker)" + (problem.map { ": \($0)" } ?? "")
            return "\(state), \(messagesSent) messages / \(bytesSent / 1000) kB sent, \(messagesReceived) / \(bytesReceived / 1000) kB received"
        }
    }

    public enum Kind: Sendable {
        /// Beacons and clock exchanges: QoS 0, late is useless.
        case datagram
        /// Ops and timelines: QoS 1, delivered at least once (duplicates dropped by the replay window).
        case reliable
        /// The latest timeline, also kept by the broker for cars that connect later.
        case retainedTimeline
    }

    /// Called on libmosquitto's thread with the payload and this car's clock at its arrival.
    public typealias Receive = @Sendable (_ bytes: [UInt8], _ at: Nanos) -> Void

    struct State {
        var status = Status()
        var sentAt: [Int32: Nanos] = [:]
        var loggedProblem: String?
    }

    public let settings: Settings
    public let topic: String
    /// This car's own subtopic (`…/p/<inbox>`), if it takes messages meant for it alone.
    public let inbox: String?
    let endpoint: Settings.Endpoint
    let clock: any HostClock
    let logger: Logger
    let receive: Receive
    let state = Mutex(State())
    private let closed = Mutex(false)
    /// Connects and teardowns, in order, off the caller's thread.
    private let control = DispatchQueue(label: "jamz-relay-control")
    // The library's handle: thread-safe for publish/subscribe once the loop thread runs.
    nonisolated(unsafe) let mosq: OpaquePointer

    static let success = Int32(MOSQ_ERR_SUCCESS.rawValue)
    private static let libraryReady: Bool = { mosquitto_lib_init() == success }()

    /// Sets the link up and starts connecting in the background (it keeps trying until `close`).
    /// Throws only for settings that can never work (a bad URL, a missing CA file).
    public init(settings: Settings, topic: String, inbox: String? = nil, clientID: String, clock: any HostClock, logger: Logger,
                receive: @escaping Receive) throws(RelayError) {
        self.settings = settings
        self.topic = topic
        self.inbox = inbox
        self.endpoint = try settings.endpoint()
        self.clock = clock
        self.logger = logger
        self.receive = receive
        guard Self.libraryReady, let m = mosquitto_new(clientID, true, nil) else {
            throw RelayError("libmosquitto could not make a client (out of memory?)")
        }
        mosq = m
        state.withLock { $0.status.broker = "\(endpoint.tls ? "mqtts" : "mqtt")://\(endpoint.host):\(endpoint.port)" }
        // On a throw the instance is already whole: its deinit destroys the handle (destroying
        // it here as well freed it twice and corrupted the heap).
        try configure()
    }

    private func configure() throws(RelayError) {
        mosquitto_int_option(mosq, MOSQ_OPT_PROTOCOL_VERSION, MQTT_PROTOCOL_V5)
        mosquitto_int_option(mosq, MOSQ_OPT_TCP_NODELAY, 1)
        mosquitto_reconnect_delay_set(mosq, 1, 30, true)
        if let u = settings.username, let p = settings.password {
            try check(mosquitto_username_pw_set(mosq, u, p), "relay username/password")
        }
        if endpoint.tls {
            if let ca = settings.caFile {
                guard FileManager.default.isReadableFile(atPath: ca) else { throw RelayError("relay.ca_file \(ca) cannot be read") }
                try check(mosquitto_tls_set(mosq, ca, nil, settings.certFile, settings.keyFile, nil), "relay TLS settings")
            } else {
                mosquitto_int_option(mosq, MOSQ_OPT_TLS_USE_OS_CERTS, 1)
                if settings.certFile != nil {
                    try check(mosquitto_tls_set(mosq, nil, "/etc/ssl/certs", settings.certFile, settings.keyFile, nil), "relay TLS settings")
                }
            }
            // The broker's name must match its certificate.
            mosquitto_tls_insecure_set(mosq, false)
        }
        // The library's thread holds this object until `close` has stopped that thread: no
        // callback can reach a released object.
        mosquitto_user_data_set(mosq, Unmanaged.passRetained(self).toOpaque())
        mosquitto_connect_v5_callback_set(mosq) { _, obj, rc, _, _ in
            RelayTransport.from(obj)?.connected(rc: rc)
        }
        mosquitto_disconnect_v5_callback_set(mosq) { _, obj, rc, _ in
            RelayTransport.from(obj)?.disconnected(rc: rc)
        }
        mosquitto_publish_v5_callback_set(mosq) { _, obj, mid, _, _ in
            RelayTransport.from(obj)?.acknowledged(mid: mid)
        }
        // The library's own errors (TLS: the broker's certificate not trusted, a handshake that
        // failed) come only through its log.
        mosquitto_log_callback_set(mosq) { _, obj, level, text in
            guard level & (MOSQ_LOG_ERR | MOSQ_LOG_WARNING) != 0, let text, let t = RelayTransport.from(obj) else { return }
            t.problem(String(cString: text))
        }
        mosquitto_message_v5_callback_set(mosq) { _, obj, message, _ in
            guard let t = RelayTransport.from(obj), let message else { return }
            t.arrived(message.pointee)
        }
    }

    private static func from(_ obj: UnsafeMutableRawPointer?) -> RelayTransport? {
        obj.map { Unmanaged<RelayTransport>.fromOpaque($0).takeUnretainedValue() }
    }

    private func check(_ rc: Int32, _ what: String) throws(RelayError) {
        guard rc == Self.success else { throw RelayError("\(what): \(String(cString: mosquitto_strerror(rc)))") }
    }

    /// Starts the connection thread. A broker that cannot be reached now is tried again with
    /// backoff; `status.problem` says why it is not connected.
    public func start() {
        mosquitto_loop_start(mosq)
        // The first connect resolves the broker's name and may block (DNS over a modem): on the
        // control queue, never on the caller's (the convoy actor's) thread.
        control.async { [self] in
            let rc = mosquitto_connect_async(mosq, endpoint.host, endpoint.port, settings.keepalive)
            if rc != Self.success {
                // The first attempt failed before the loop took over (no route, name not found):
                // the loop thread keeps reconnecting.
                problem(describe(rc))
            }
        }
    }

    /// Publishes a sealed envelope to the convoy. Never blocks: the library queues it for its
    /// thread. QoS 1 messages are queued while disconnected and sent on reconnection.
    /// `to`: the inbox of the one car it is meant for (nil: every car).
    public func publish(_ bytes: [UInt8], _ kind: Kind, to: String? = nil) {
        let qos: Int32 = kind == .datagram ? 0 : 1
        let sub = kind == .retainedTimeline ? "/t" : to.map { "/p/" + $0 } ?? "/m"
        var mid: Int32 = 0
        let now = clock.now()
        let rc = bytes.withUnsafeBytes { b in
            mosquitto_publish_v5(mosq, &mid, topic + sub, Int32(b.count), b.baseAddress, qos, kind == .retainedTimeline, nil)
        }
        state.withLock { s in
            guard rc == Self.success else { s.status.sendFailures += 1; return }
            s.status.messagesSent += 1
            s.status.bytesSent += Int64(bytes.count)
            if qos == 1 {
                if s.sentAt.count > 1024 { s.sentAt.removeAll() }
                s.sentAt[mid] = now
            }
        }
    }

    public var status: Status { state.withLock { $0.status } }

    /// Disconnects and ends the link: the library's thread is stopped and its handle freed on the
    /// control queue (stopping waits for the thread), so the caller never blocks; then this
    /// object is let go. Must be called once the link is no longer wanted. Idempotent.
    public func close() {
        guard closed.withLock({ c in defer { c = true }; return !c }) else { return }
        control.async { [self] in
            mosquitto_disconnect_v5(mosq, 0, nil)
            mosquitto_loop_stop(mosq, false)
            mosquitto_user_data_set(mosq, nil)
            mosquitto_destroy(mosq)
            Unmanaged.passUnretained(self).release()   // the library's hold, taken in configure
        }
    }

    /// Only a transport whose settings failed in `init` (never started, never held by the
    /// library) ends here unclosed.
    deinit {
        if !closed.withLock({ $0 }) { mosquitto_destroy(mosq) }
    }

    // MARK: - On libmosquitto's thread

    private func connected(rc: Int32) {
        guard rc == 0 else {
            problem("the broker refused the connection: \(String(cString: mosquitto_reason_string(rc)))")
            return
        }
        let first = state.withLock { s in
            s.status.connected = true
            s.status.problem = nil
            s.status.connects += 1
            defer { s.loggedProblem = nil }
            return s.status.connects == 1 || s.loggedProblem != nil
        }
        if first { logger.info("relay connected to \(status.broker)") }
        let options = Int32(MQTT_SUB_OPT_NO_LOCAL.rawValue)
        for t in [topic + "/m", topic + "/t"] + (inbox.map { [topic + "/p/" + $0] } ?? []) {
            let rc = mosquitto_subscribe_v5(mosq, nil, t, 1, options, nil)
            if rc != Self.success { problem("cannot subscribe to \(t): \(describe(rc))") }
        }
    }

    private func disconnected(rc: Int32) {
        state.withLock { $0.status.connected = false }
        // 0: we asked for it (close).
        if rc != 0 { problem("connection to the broker lost: \(describe(rc))") }
    }

    private func acknowledged(mid: Int32) {
        let now = clock.now()
        state.withLock { s in
            if let t = s.sentAt.removeValue(forKey: mid) { s.status.rttMillis = Double(now - t) / 1e6 }
        }
    }

    private func arrived(_ m: mosquitto_message) {
        let at = clock.now()
        let n = Int(max(0, m.payloadlen))
        let bytes = n == 0 || m.payload == nil ? [] : [UInt8](UnsafeRawBufferPointer(start: m.payload, count: n))
        state.withLock { s in
            s.status.messagesReceived += 1
            s.status.bytesReceived += Int64(n)
        }
        receive(bytes, at)
    }

    /// Records why the link is down; logs each different reason once, not every retry.
    private func problem(_ why: String) {
        let log = state.withLock { s in
            s.status.problem = why
            defer { s.loggedProblem = why }
            return s.loggedProblem != why
        }
        if log { logger.warning("relay \(status.broker): \(why); trying again with backoff") }
    }

    private func describe(_ rc: Int32) -> String {
        if rc == Int32(MOSQ_ERR_ERRNO.rawValue) { return String(cString: strerror(errno)) }
        return String(cString: mosquitto_strerror(rc))
    }
}

public struct RelayError: Error, CustomStringConvertible, Sendable, Equatable {
    public let description: String
    public init(_ description: String) { self.description = description }
}
