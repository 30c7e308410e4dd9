import JamzCore
import JamzNet
import Synchronization

/// The sealing side of a car's convoy link: the sealer (key, sender id, sequence numbers) and
/// what was sent, behind a lock, so that both the convoy's actor and the transport's event loop
/// (which stamps and seals clock exchanges at the last moment) can seal.
final class Outbox: Sendable {
    private let sealer = Mutex<Sealer?>(nil)
    private let counts = Mutex((bytes: Int64(0), datagrams: Int64(0)))

    func use(_ s: Sealer?) { sealer.withLock { $0 = s } }

    /// The message sealed for sending (nil: not in a convoy), counted as sent.
    func seal(_ m: WireMessage) -> [UInt8]? { seal(stampedBy: { 0 }) { _ in m } }

    /// A message that carries the moment it leaves: the clock is read once the lock is held (a
    /// seal by the actor at that moment must not delay one direction of an exchange only).
    func seal(stampedBy read: () -> Nanos, _ message: (Nanos) -> WireMessage) -> [UInt8]? {
        guard let bytes = sealer.withLock({ s -> [UInt8]? in
            guard var x = s else { return nil }
            defer { s = x }
            return x.seal(WireCodec.encode(message(read())))
        }) else { return nil }
        counts.withLock { $0.bytes += Int64(bytes.count) + 28; $0.datagrams += 1 }   // + IPv4 and UDP headers
        return bytes
    }

    var sent: (bytes: Int64, datagrams: Int64) { counts.withLock { $0 } }

    /// Seals `m` without sending it or using a sequence number (see `Sealer.rehearse`).
    func rehearse(_ m: WireMessage) {
        let payload = WireCodec.encode(m)
        sealer.withLock { $0?.rehearse(payload) }
    }
}
