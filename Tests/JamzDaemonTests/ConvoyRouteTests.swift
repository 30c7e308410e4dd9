@testable import JamzDaemon
import JamzCore
import NIOCore
import Testing

/// Which link a message to one car takes: the LAN while it is fresh (fast, copies tracks), then
/// its Bluetooth LE channel (near, no mobile data), then the relay; and what `jamz peers` says.
@Suite struct ConvoyRouteTests {
    let id = MemberID(42)
    let s: Nanos = nanosPerSecond

    func kind(_ r: Convoy.Route) -> String { r.description == "relay" || r.description == "ble" ? r.description : "lan" }

    @Test func freshLANThenBLEThenRelay() throws {
        let lan = try SocketAddress(ipAddress: "10.0.0.2", port: 47_800)
        var p = Convoy.Peer(name: "car 2", lastHeard: 0)
        p.lan = lan; p.lanHeard = 100 * s; p.relayHeard = 100 * s; p.bleDataHeard = 100 * s
        #expect(kind(p.route(id, now: 101 * s)) == "lan")
        p.lanHeard = 90 * s   // the LAN went quiet: the car is still near
        #expect(kind(p.route(id, now: 101 * s)) == "ble")
        p.bleDataHeard = 90 * s   // and drove off: the mobile link
        #expect(kind(p.route(id, now: 101 * s)) == "relay")
        #expect(p.link == "lan+relay+ble")
        // Heard only over BLE: it stays the way to it, however long ago.
        var b = Convoy.Peer(name: "car 3", lastHeard: 0)
        #expect(b.link == "lan")   // nothing heard yet: the default
        b.bleHeard = 50 * s
        #expect(b.link == "ble")
        b.bleDataHeard = 50 * s
        #expect(kind(b.route(id, now: 200 * s)) == "ble")
        // A LAN car with no relay keeps the LAN even when quiet.
        var l = Convoy.Peer(name: "car 4", lastHeard: 0)
        l.lan = lan; l.lanHeard = 10 * s
        #expect(kind(l.route(id, now: 200 * s)) == "lan" && l.link == "lan")
    }
}
