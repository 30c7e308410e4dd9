import JamzCore

/// The Linux kernel's Bluetooth management interface (mgmt: a raw HCI socket bound to the
/// control channel, `HCI_CHANNEL_CONTROL`), the messages jamzd needs to advertise and scan
/// beside bluetoothd without taking the adapter from it (the driver's phone keeps working).
/// BlueZ documents the protocol in `doc/mgmt-api.txt`; Debian ships no `mgmt.h`, so the few
/// opcodes and layouts are here, checked against the kernel of Debian 12 under `btvirt`
/// (docs/ble.md). Every message: opcode or event code (u16), controller index (u16, 0xFFFF =
/// none), parameter length (u16), all little-endian, then the parameters. Pure: no I/O.
public enum Mgmt {
    /// The index of a message about no controller (version, index list).
    public static let noIndex: UInt16 = 0xFFFF
    public static let headerLength = 6

    public enum Opcode: UInt16, Sendable {
        case readVersion = 0x0001
        case readIndexList = 0x0003
        case readInfo = 0x0004
        case setPowered = 0x0005
        case setLE = 0x000D
        case setPrivacy = 0x002F
        case startDiscovery = 0x0023
        case stopDiscovery = 0x0024
        case readAdvertisingFeatures = 0x003D
        case addAdvertising = 0x003E
        case removeAdvertising = 0x003F
    }

    /// Discovery of LE devices, public and random addresses.
    public static let discoveryLE: UInt8 = 0x06

    /// ADD_ADVERTISING flags.
    public struct AdvertisingFlags: OptionSet, Sendable {
        public let rawValue: UInt32
        public init(rawValue: UInt32) { self.rawValue = rawValue }
        /// Connectable undirected advertising: the other car's LE L2CAP connect needs it.
        public static let connectable = AdvertisingFlags(rawValue: 0x01)
        /// The kernel adds the Flags AD ("general discoverable"); our payload then has 3 bytes less.
        public static let discoverable = AdvertisingFlags(rawValue: 0x02)
        /// Extended advertising PDUs on the LE 1M PHY: more than 31 bytes of data (controllers
        /// with extended advertising only; READ_ADV_FEATURES lists it).
        public static let secondary1M = AdvertisingFlags(rawValue: 0x80)
    }

    /// READ_ADV_FEATURES's reply: what the controller's advertising can do.
    public struct AdvertisingFeatures: Sendable, Equatable {
        public var supportedFlags: AdvertisingFlags
        /// Bytes of advertising data one instance takes (31 legacy; up to 251 extended).
        public var maxDataLength: Int
        public var maxInstances: Int
        /// Extended (non-legacy) advertising with room for `length` bytes.
        public func extended(room length: Int) -> Bool {
            supportedFlags.contains(.secondary1M) && maxDataLength >= length
        }
        public init(supportedFlags: AdvertisingFlags, maxDataLength: Int, maxInstances: Int) {
            self.supportedFlags = supportedFlags; self.maxDataLength = maxDataLength; self.maxInstances = maxInstances
        }
        public init(reply: [UInt8]) throws(WireError) {
            var r = WireReader(reply)
            supportedFlags = AdvertisingFlags(rawValue: try r.u32("adv.flags"))
            maxDataLength = Int(try r.u8("adv.maxData"))
            _ = try r.u8("adv.maxScanResponse")
            maxInstances = Int(try r.u8("adv.maxInstances"))
        }
    }

    /// Advertising data a legacy advertisement can carry.
    public static let legacyAdvertisingLength = 31

    public struct Command: Sendable, Equatable {
        public var opcode: Opcode
        public var index: UInt16
        public var parameters: [UInt8]

        /// The datagram to write to the control socket.
        public var bytes: [UInt8] {
            var w = WireWriter()
            w.u16(opcode.rawValue); w.u16(index); w.u16(UInt16(parameters.count))
            return w.bytes + parameters
        }

        public static func readInfo(_ index: UInt16) -> Command { Command(opcode: .readInfo, index: index, parameters: []) }
        public static func setPowered(_ index: UInt16, _ on: Bool) -> Command { Command(opcode: .setPowered, index: index, parameters: [on ? 1 : 0]) }
        public static func setLE(_ index: UInt16, _ on: Bool) -> Command { Command(opcode: .setLE, index: index, parameters: [on ? 1 : 0]) }
        public static func readAdvertisingFeatures(_ index: UInt16) -> Command { Command(opcode: .readAdvertisingFeatures, index: index, parameters: []) }
        /// Privacy on: the controller advertises and connects from resolvable private addresses
        /// made from `irk` (new every 15 minutes by default). Only while it is powered off.
        public static func setPrivacy(_ index: UInt16, irk: [UInt8]) -> Command {
            precondition(irk.count == 16)
            return Command(opcode: .setPrivacy, index: index, parameters: [1] + irk)
        }
        public static func startDiscovery(_ index: UInt16) -> Command { Command(opcode: .startDiscovery, index: index, parameters: [discoveryLE]) }
        public static func stopDiscovery(_ index: UInt16) -> Command { Command(opcode: .stopDiscovery, index: index, parameters: [discoveryLE]) }
        public static func removeAdvertising(_ index: UInt16, instance: UInt8) -> Command {
            Command(opcode: .removeAdvertising, index: index, parameters: [instance])
        }

        /// One advertising instance (1…the controller's maximum). `duration`: its slot when the
        /// kernel rotates several instances (0: the default, 2 s); `timeout`: 0 = until removed.
        /// `maxDataLength`: the controller's (READ_ADV_FEATURES), taken only with `.secondary1M`.
        public static func addAdvertising(_ index: UInt16, instance: UInt8, flags: AdvertisingFlags,
                                          duration: UInt16 = 0, timeout: UInt16 = 0,
                                          data: [UInt8], scanResponse: [UInt8] = [],
                                          maxDataLength: Int = legacyAdvertisingLength) throws(MgmtError) -> Command {
            let limit = flags.contains(.secondary1M) ? min(maxDataLength, 251) : legacyAdvertisingLength
            let room = limit - (flags.contains(.discoverable) ? 3 : 0)
            guard data.count <= room, scanResponse.count <= legacyAdvertisingLength else {
                throw .tooLong(data.count, limit: room)
            }
            guard instance > 0 else { throw .badInstance }
            var w = WireWriter()
            w.u8(instance); w.u32(flags.rawValue); w.u16(duration); w.u16(timeout)
            w.u8(UInt8(data.count)); w.u8(UInt8(scanResponse.count))
            return Command(opcode: .addAdvertising, index: index, parameters: w.bytes + data + scanResponse)
        }
    }

    public enum MgmtError: Error, Sendable, Equatable, CustomStringConvertible {
        case tooLong(Int, limit: Int)
        case badInstance
        public var description: String {
            switch self {
            case .tooLong(let n, let limit): "advertising data of \(n) bytes (at most \(limit))"
            case .badInstance: "advertising instance 0 (instances count from 1)"
            }
        }
    }

    /// A command's result status (mgmt-api.txt, "Status codes"): the ones a car meets, by name.
    public static func statusName(_ s: UInt8) -> String {
        switch s {
        case 0x00: "success"
        case 0x03: "failed"
        case 0x0A: "busy"
        case 0x0C: "not supported"
        case 0x0D: "invalid parameters"
        case 0x0F: "not powered"
        case 0x10: "cancelled"
        case 0x11: "invalid index"
        case 0x12: "rfkilled"
        case 0x14: "permission denied"
        default: "status 0x" + Hex.encode([s])
        }
    }

    /// A controller's address as it travels (6 bytes, least significant first).
    public struct Address: Hashable, Sendable, CustomStringConvertible {
        public var bytes: [UInt8]
        public init(bytes: [UInt8]) { precondition(bytes.count == 6); self.bytes = bytes }
        /// "00:AA:01:00:00:00" (most significant first, as tools print it).
        public init?(_ text: String) {
            let parts = text.split(separator: ":")
            guard parts.count == 6 else { return nil }
            var b = [UInt8]()
            for p in parts.reversed() {
                guard p.count == 2, let v = UInt8(p, radix: 16) else { return nil }
                b.append(v)
            }
            bytes = b
        }
        public var description: String { bytes.reversed().map { Hex.encode([$0]).uppercased() }.joined(separator: ":") }
    }

    /// READ_INFO's reply: the controller's address and settings.
    public struct ControllerInfo: Sendable, Equatable {
        public var address: Address
        public var supported: UInt32
        public var current: UInt32
        public var isPowered: Bool { current & 1 != 0 }
        public var supportsLE: Bool { supported & (1 << 9) != 0 }
        public var isLE: Bool { current & (1 << 9) != 0 }
        /// Advertising and connecting from resolvable private addresses.
        public var isPrivate: Bool { current & (1 << 13) != 0 }

        public init(reply: [UInt8]) throws(WireError) {
            var r = WireReader(reply)
            address = Address(bytes: try r.raw(6, "info.address"))
            _ = try r.u8("info.version")
            _ = try r.u16("info.manufacturer")
            supported = try r.u32("info.supported")
            current = try r.u32("info.current")
        }
    }

    /// An LE advertisement heard while discovering.
    public struct DeviceFound: Sendable, Equatable {
        public var address: Address
        /// 1: LE public, 2: LE random.
        public var addressType: UInt8
        /// dBm; nil when the controller has none (127; `btvirt` never has one).
        public var rssi: Int8?
        public var flags: UInt32
        /// The advertising data (AD structures: length, type, value), scan response appended.
        public var data: [UInt8]
    }

    public enum Event: Sendable, Equatable {
        /// A command's answer: success or not (`status`), and its reply parameters.
        case commandComplete(opcode: UInt16, index: UInt16, status: UInt8, reply: [UInt8])
        /// A command that failed before doing anything.
        case commandStatus(opcode: UInt16, index: UInt16, status: UInt8)
        case indexAdded(UInt16)
        case indexRemoved(UInt16)
        case newSettings(index: UInt16, settings: UInt32)
        case deviceFound(index: UInt16, DeviceFound)
        /// A discovery session started or ended (the kernel ends each after about 10 s).
        case discovering(index: UInt16, on: Bool)
        case advertisingAdded(index: UInt16, instance: UInt8)
        case advertisingRemoved(index: UInt16, instance: UInt8)
        /// An event jamzd has no use for (pairing, connections, …).
        case other(code: UInt16, index: UInt16)
    }

    /// One datagram from the control socket. A malformed one (shorter than its header says, or
    /// a known event with short parameters) is an error: the caller counts it and goes on.
    public static func decode(_ bytes: [UInt8]) throws(WireError) -> Event {
        var r = WireReader(bytes)
        let code = try r.u16("mgmt.event")
        let index = try r.u16("mgmt.index")
        let length = Int(try r.u16("mgmt.length"))
        guard r.remaining >= length else { throw .truncated(field: "mgmt.parameters") }
        var p = WireReader(try r.raw(length, "mgmt.parameters"))
        switch code {
        case 0x0001:
            let op = try p.u16("complete.opcode"), st = try p.u8("complete.status")
            return .commandComplete(opcode: op, index: index, status: st, reply: try p.raw(p.remaining, "complete.reply"))
        case 0x0002:
            return .commandStatus(opcode: try p.u16("status.opcode"), index: index, status: try p.u8("status.status"))
        case 0x0004: return .indexAdded(index)
        case 0x0005: return .indexRemoved(index)
        case 0x0006: return .newSettings(index: index, settings: try p.u32("settings"))
        case 0x0012:
            let address = Address(bytes: try p.raw(6, "found.address"))
            let type = try p.u8("found.type")
            let rssi = Int8(bitPattern: try p.u8("found.rssi"))
            let flags = try p.u32("found.flags")
            let n = Int(try p.u16("found.length"))
            let data = try p.raw(n, "found.data")
            return .deviceFound(index: index, DeviceFound(address: address, addressType: type, rssi: rssi == 127 ? nil : rssi,
                                                          flags: flags, data: data))
        case 0x0013:
            _ = try p.u8("discovering.type")
            return .discovering(index: index, on: try p.u8("discovering.on") != 0)
        case 0x0023: return .advertisingAdded(index: index, instance: try p.u8("advertising.instance"))
        case 0x0024: return .advertisingRemoved(index: index, instance: try p.u8("advertising.instance"))
        default: return .other(code: code, index: index)
        }
    }
}
