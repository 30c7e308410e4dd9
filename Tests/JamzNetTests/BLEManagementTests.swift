import Dispatch
import JamzCore
import JamzNet
import Logging
import Testing

/// The Bluetooth management interface's messages, against bytes taken from Debian 12's kernel
/// with `btvirt` controllers (docs/ble.md): what jamzd sends to advertise and scan, and the
/// events it reads back. Malformed events are errors the link counts, never a crash.
@Suite struct BLEManagementTests {
    static func bytes(_ hex: String) -> [UInt8] {
        var out = [UInt8](), s = Substring(hex)
        while s.count >= 2 { out.append(UInt8(s.prefix(2), radix: 16)!); s = s.dropFirst(2) }
        return out
    }

    /// ADD_ADVERTISING as sent to hci0 in the guest (instance 1, connectable + discoverable,
    /// 24 bytes of manufacturer data), answered "success".
    @Test func addAdvertisingMatchesWhatTheKernelTook() throws {
        let data = Self.bytes("17ffffff4a414d5a01101112131415161718191a1b1c1d1e")
        let c = try Mgmt.Command.addAdvertising(0, instance: 1, flags: [.connectable, .discoverable], data: data)
        #expect(c.bytes == Self.bytes("3e0000002300010300000000000000180017ffffff4a414d5a01101112131415161718191a1b1c1d1e"))
    }

    @Test func theConvoyBeaconFitsALegacyAdvertisementWithItsOwnFlags() throws {
        let secret = ConvoySecret(bytes: Array(repeating: 3, count: 32))!
        let ad = BLEAdvertisement.encode(.init(member: MemberID(7), term: 3, isDJ: false), key: secret.bleKey, slot: 1, nonce: 9)
        // The beacon carries its own Flags AD: the kernel must not add one (31 bytes exactly).
        let c = try Mgmt.Command.addAdvertising(2, instance: 1, flags: .connectable, data: ad)
        #expect(c.parameters.count == 11 + 31 && c.index == 2)
        #expect(throws: Mgmt.MgmtError.tooLong(31, limit: 28)) {
            try Mgmt.Command.addAdvertising(2, instance: 1, flags: [.connectable, .discoverable], data: ad)
        }
        #expect(throws: Mgmt.MgmtError.badInstance) { try Mgmt.Command.addAdvertising(0, instance: 0, flags: [], data: []) }
        #expect(Mgmt.Command.startDiscovery(1).bytes == [0x23, 0, 1, 0, 1, 0, 0x06])
        #expect(Mgmt.Command.setPowered(0, true).bytes == [0x05, 0, 0, 0, 1, 0, 1])
    }

    /// DEVICE_FOUND on hci1 for hci0's advertisement, as the guest's kernel sent it.
    @Test func deviceFoundFromTheKernel() throws {
        let params = Self.bytes("00000001aa00017f000000001b0002010617ffffff4a414d5a01101112131415161718191a1b1c1d1e")
        let event = [0x12, 0x00, 0x01, 0x00, UInt8(params.count), 0x00] + params
        guard case .deviceFound(let index, let found) = try Mgmt.decode(event) else { Issue.record("not a device found"); return }
        #expect(index == 1)
        #expect(found.address.description == "00:AA:01:00:00:00" && found.address == Mgmt.Address("00:AA:01:00:00:00"))
        #expect(found.addressType == 1 && found.rssi == nil && found.flags == 0)
        #expect(found.data == Self.bytes("02010617ffffff4a414d5a01101112131415161718191a1b1c1d1e"))
    }

    @Test func commandAnswersAndControllerInfo() throws {
        // READ_INFO's answer for hci0 under btvirt: address, version 9, manufacturer 1521,
        // supported and current settings (powered, LE, secure connections).
        var reply = Self.bytes("000000 00aa00".replacingOccurrences(of: " ", with: "")) + [9, 0xF1, 0x05]
        reply += [0xFF, 0xEA, 0x01, 0x00] + [0x01, 0x0A, 0x00, 0x00] + [UInt8](repeating: 0, count: 3 + 249 + 11)
        let event = [0x01, 0x00, 0x00, 0x00] + [UInt8(truncatingIfNeeded: (reply.count + 3)), UInt8((reply.count + 3) >> 8)] + [0x04, 0x00, 0x00] + reply
        guard case .commandComplete(let op, 0, 0, let r) = try Mgmt.decode(event) else { Issue.record("not a command complete"); return }
        #expect(op == Mgmt.Opcode.readInfo.rawValue)
        let info = try Mgmt.ControllerInfo(reply: r)
        #expect(info.address.description == "00:AA:00:00:00:00" && info.isPowered && info.isLE && info.supportsLE)
        #expect(try Mgmt.decode([0x02, 0, 0, 0, 3, 0, 0x23, 0, 0x0A]) == .commandStatus(opcode: 0x23, index: 0, status: 0x0A))
        #expect(Mgmt.statusName(0x0A) == "busy" && Mgmt.statusName(0x99) == "status 0x99")
        #expect(try Mgmt.decode([0x13, 0, 1, 0, 2, 0, 6, 0]) == .discovering(index: 1, on: false))
        #expect(try Mgmt.decode([0x0F, 0, 1, 0, 0, 0]) == .other(code: 0x0F, index: 1))
    }

    @Test func malformedEventsAreErrorsNeverACrash() {
        #expect(throws: WireError.self) { try Mgmt.decode([0x12, 0x00]) }
        // A header promising more than came.
        #expect(throws: WireError.self) { try Mgmt.decode([0x12, 0, 0, 0, 40, 0, 1, 2, 3]) }
        // DEVICE_FOUND whose AD length runs past its parameters.
        #expect(throws: WireError.self) { try Mgmt.decode([0x12, 0, 0, 0, 14, 0] + [UInt8](repeating: 0, count: 12) + [0xFF, 0x00]) }
        var g = SystemRandomNumberGenerator()
        for _ in 0..<20_000 {
            let n = Int.random(in: 0..<64, using: &g)
            var b = (0..<n).map { _ in UInt8.random(in: 0...255, using: &g) }
            if b.count >= 6 { b[4] = UInt8(b.count - 6); b[5] = 0; b[0] = [0x01, 0x02, 0x06, 0x12, 0x13, 0x23][Int(b[0]) % 6]; b[1] = 0 }
            _ = try? Mgmt.decode(b)
        }
    }

    /// Whether this kernel has no Bluetooth (this build machine's has none; the QEMU guest's has).
    static let noBluetooth: Bool = {
        guard let s = try? BLEControlSocket() else { return true }
        s.close()
        return false
    }()

    /// This build machine's kernel has no Bluetooth: opening says so plainly (jamzd logs it once
    /// and runs on its other links). In the QEMU guest the same call opens the control channel.
    @Test(.enabled(if: noBluetooth)) func noBluetoothIsAClearError() throws {
        #expect(throws: BLEControlSocket.OpenError.self) { try BLEControlSocket() }
        do { _ = try BLEControlSocket() } catch {
            guard case .noBluetooth = error else { Issue.record("unexpected: \(error)"); return }
            #expect(error.description.contains("no Bluetooth"))
        }
    }

    /// The link on a kernel without Bluetooth (this machine): down, with the reason, once; the
    /// thread ends by itself. In the QEMU guest (`image/test-ble`) the same link finds the
    /// other car over btvirt's controllers.
    @Test(.enabled(if: noBluetooth)) func theLinkWithoutBluetoothSaysWhyAndStaysDown() async throws {
        struct Clock: HostClock { func now() -> Nanos { Nanos(DispatchTime.now().uptimeNanoseconds) } }
        let secret = ConvoySecret(bytes: Array(repeating: 4, count: 32))!
        let link = BLELink(controller: 0, me: MemberID(1), key: secret.bleKey, clock: Clock(), logger: Logger(label: "test"), netns: nil) { _ in
            Issue.record("a sighting without Bluetooth")
        }
        link.advertise(.init(member: MemberID(1), term: 1, isDJ: true))
        link.start()
        for _ in 0..<200 where link.status.problem == nil { try await Task.sleep(for: .milliseconds(10)) }
        let st = link.status
        #expect(!st.up && st.problem?.contains("no Bluetooth") == true)
        #expect(st.advertisements == 0 && st.sightings == 0 && st.channels == 0)
        #expect(st.summary.contains("hci0 down: no Bluetooth"))
        link.close()
    }
}
