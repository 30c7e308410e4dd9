// JamzNet: transports (LAN UDP multicast/unicast; later Bluetooth LE and an internet relay),
// sealed envelopes, the peer table and track transfer. See docs/architecture.md, "Networking".
