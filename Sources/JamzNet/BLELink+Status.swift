import JamzCore

extension BLELink {
    public struct Sighting: Sendable {
        public var member: MemberID
        /// The low 24 bits of its term number, and whether it says it is the DJ.
        public var term: UInt32
        public var isDJ: Bool
        public var address: Mgmt.Address
        /// dBm; nil when the controller reports none.
        public var rssi: Int8?
        public var at: Nanos
    }

    /// `jamz group show --json` → `ble`.
    public struct Status: Codable, Sendable, Equatable {
        public var controller: String
        public var address: String?
        public var up: Bool
        public var problem: String?
        public var advertisements: Int64
        public var sightings: Int64
        /// Advertisements heard that were not this convoy's, by reason (`BLEAdvertisement.Drop`).
        public var dropped: [String: Int64]
        public var malformedEvents: Int64
        /// L2CAP channels open now, made (connected or accepted) and failed to connect.
        public var channels: Int
        public var channelsMade: Int64
        public var connectFailures: Int64
        public var messagesSent: Int64
        public var messagesReceived: Int64
        public var bytesSent: Int64
        public var bytesReceived: Int64
        /// Envelopes not sent: the channel was full or the envelope larger than its MTU.
        public var sendDrops: Int64
        /// Channels refused: from a device whose convoy advertisement was not heard, or over the cap.
        public var refusedChannels: Int64 = 0
        /// Channels closed because nothing came over them for `silenceTimeout` (a channel that
        /// stalled, or whose other end the kernel mismatched: docs/ble.md).
        public var silentChannels: Int64 = 0
        /// Whether the controller advertises and connects from resolvable private addresses (nil: not known yet).
        public var privateAddress: Bool?
        /// Whether the advertisement goes out in the extended format (the controller has it).
        public var extendedAdvertising: Bool = false
        /// Why the last envelope was not sent (errno's text), while sends fail; nil once one goes.
        public var sendProblem: String?

        /// One line for `jamz group show`.
        public var summary: String {
            var s = "\(controller)\(address.map { " \($0)" } ?? "") " + (up ? "advertising and scanning" : "down: \(problem ?? "starting")")
            if up {
                s += privateAddress == true ? " from private addresses" : " from its public address"
                s += extendedAdvertising ? " (extended advertising)" : ""
            }
            s += ", \(advertisements) advertisements sent, \(sightings) convoy sightings"
            s += ", \(channels) channel\(channels == 1 ? "" : "s") (\(messagesSent) messages / \(bytesSent) bytes out, \(messagesReceived) / \(bytesReceived) in)"
            let d = dropped.values.reduce(0, +)
            if d > 0 { s += ", \(d) others' advertisements ignored" }
            return s
        }
    }
}
