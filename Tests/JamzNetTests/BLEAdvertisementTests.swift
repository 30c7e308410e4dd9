import JamzCore
import JamzNet
import Testing

/// The convoy's Bluetooth LE advertisement: 31 bytes, a hint that rotates every 15 minutes,
/// everything else sealed; strangers' and garbage advertisements dropped and counted.
@Suite struct BLEAdvertisementTests {
    let ours = ConvoySecret(bytes: Array(repeating: 1, count: 32), name: "Road trip")!
    let theirs = ConvoySecret(bytes: Array(repeating: 2, count: 32), name: "Road trip")!
    let beacon = BLEAdvertisement.Beacon(member: MemberID(0x0123_4567_89AB_CDEF), term: 0x1_0000_0042, isDJ: true)
    let slot = BLEAdvertisement.slot(unixSeconds: 1_796_353_697)

    @Test func roundTripsInALegacyAdvertisement() throws {
        let ad = BLEAdvertisement.encode(beacon, key: ours.bleKey, slot: slot, nonce: 0xBEEF)
        #expect(ad.count == BLEAdvertisement.Format.legacy.length && ad.count == 31)
        let got = try BLEAdvertisement.decode(ad, keys: [theirs.bleKey, ours.bleKey], slot: slot).get()
        #expect(got.beacon == beacon && got.key == 1)
        #expect(got.beacon.term == 0x42)   // the low 24 bits
        // Nothing of the member id or the convoy's group id in clear.
        let member = (0..<8).map { UInt8(truncatingIfNeeded: beacon.member.raw >> (8 * UInt64($0))) }
        #expect(!contains(ad, member) && !contains(ad, ours.groupID.wireBytes))
    }

    @Test func theHintRotatesAndNeighbouringSlotsAreAccepted() throws {
        let a = BLEAdvertisement.encode(beacon, key: ours.bleKey, slot: slot, nonce: 1)
        let b = BLEAdvertisement.encode(beacon, key: ours.bleKey, slot: slot + 1, nonce: 1)
        #expect(a[8..<14] != b[8..<14])          // the hint
        #expect(a[14...] != b[14...])            // and everything after it
        // Same slot, another nonce: the sealed body differs too (no constant bytes to follow).
        let c = BLEAdvertisement.encode(beacon, key: ours.bleKey, slot: slot, nonce: 2)
        #expect(a[8..<14] == c[8..<14] && a[16..<28] != c[16..<28])
        // A car whose clock is in the next (or previous) slot still hears it; two slots off, not.
        #expect(try BLEAdvertisement.decode(b, keys: [ours.bleKey], slot: slot).get().beacon == beacon)
        #expect(try BLEAdvertisement.decode(a, keys: [ours.bleKey], slot: slot + 1).get().beacon == beacon)
        #expect(drop(BLEAdvertisement.decode(a, keys: [ours.bleKey], slot: slot + 2)) == .foreignConvoy)
    }

    @Test func otherConvoysForgeriesAndGarbageAreDroppedAndCounted() {
        let ad = BLEAdvertisement.encode(beacon, key: ours.bleKey, slot: slot, nonce: 7)
        #expect(drop(BLEAdvertisement.decode(ad, keys: [theirs.bleKey], slot: slot)) == .foreignConvoy)
        var forged = ad
        forged[20] ^= 0x01   // one bit of the sealed body
        #expect(drop(BLEAdvertisement.decode(forged, keys: [ours.bleKey], slot: slot)) == .badTag)
        var future = ad
        future[7] = 3        // a format this car does not know
        #expect(drop(BLEAdvertisement.decode(future, keys: [ours.bleKey], slot: slot)) == .badVersion)
        future[7] = 2        // the extended format's version on a legacy-sized value
        #expect(drop(BLEAdvertisement.decode(future, keys: [ours.bleKey], slot: slot)) == .malformed)
        // A phone's iBeacon (Apple's company id) and a name-only advertisement: not ours.
        let iBeacon: [UInt8] = [2, 1, 6, 26, 0xFF, 0x4C, 0x00, 2, 21] + Array(repeating: 0xAA, count: 21)
        #expect(drop(BLEAdvertisement.decode(iBeacon, keys: [ours.bleKey], slot: slot)) == .notOurs)
        #expect(drop(BLEAdvertisement.decode([5, 9] + Array("car1".utf8), keys: [ours.bleKey], slot: slot)) == .notOurs)
        #expect(drop(BLEAdvertisement.decode([30, 0xFF, 0xFF], keys: [ours.bleKey], slot: slot)) == .malformed)
        #expect(drop(BLEAdvertisement.decode(Array(ad.prefix(30)), keys: [ours.bleKey], slot: slot)) == .malformed)
        // Random bytes, and our own advertisement cut and flipped at random: never taken, never
        // a crash; each dropped for a reason.
        var rng = SplitMix64(seed: 42)
        var counts: [BLEAdvertisement.Drop: Int] = [:]
        for i in 0..<20_000 {
            var bytes: [UInt8]
            if i % 2 == 0 {
                bytes = (0..<Int(rng.next() % 40)).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
            } else {
                bytes = Array(ad.prefix(Int(rng.next() % 32)))
                if !bytes.isEmpty { bytes[Int(rng.next() % UInt64(bytes.count))] ^= UInt8(truncatingIfNeeded: rng.next() | 1) }
            }
            switch BLEAdvertisement.decode(bytes, keys: [ours.bleKey], slot: slot) {
            case .success(let got):
                // Only a change outside our manufacturer data (the flags) leaves it valid.
                #expect(bytes.count == ad.count && bytes[3...] == ad[3...] && got.beacon == beacon, "a changed advertisement was taken: \(bytes)")
            case .failure(let why): counts[why, default: 0] += 1
            }
        }
        #expect(counts.values.reduce(0, +) >= 19_900)
        #expect(counts[.malformed, default: 0] > 0 && counts[.notOurs, default: 0] > 0)
    }

    @Test func theExtendedFormatCarriesALongerTagAndNonce() throws {
        let ad = BLEAdvertisement.encode(beacon, key: ours.bleKey, slot: slot, nonce: 0xDEAD_BEEF, format: .extended)
        #expect(ad.count == BLEAdvertisement.Format.extended.length && ad.count == 40 && ad[7] == 2)
        #expect(try BLEAdvertisement.decode(ad, keys: [theirs.bleKey, ours.bleKey], slot: slot).get().beacon == beacon)
        #expect(try BLEAdvertisement.decode(ad, keys: [ours.bleKey], slot: slot - 1).get().beacon == beacon)
        // The whole 4-byte nonce counts: two nonces equal in their low 16 bits seal differently.
        let other = BLEAdvertisement.encode(beacon, key: ours.bleKey, slot: slot, nonce: 0x1234_BEEF, format: .extended)
        #expect(ad[20..<32] != other[20..<32])
        #expect(drop(BLEAdvertisement.decode(ad, keys: [theirs.bleKey], slot: slot)) == .foreignConvoy)
        // Every single-bit change of the hint, nonce, body or tag is refused.
        for i in 8..<ad.count {
            var f = ad
            f[i] ^= 0x10
            let d = drop(BLEAdvertisement.decode(f, keys: [ours.bleKey], slot: slot))
            #expect(d == .badTag || (i < 16 && d == .foreignConvoy), "byte \(i): \(String(describing: d))")
        }
        // Cut short: malformed, not read past its end.
        #expect(drop(BLEAdvertisement.decode(Array(ad.prefix(39)), keys: [ours.bleKey], slot: slot)) == .malformed)
    }

    @Test func extendedAdvertisingOnlyWhereTheControllerHasIt() throws {
        // btvirt -L (legacy only, as docs/ble.md measured): 31 bytes, no secondary PHY flags.
        let legacy = Mgmt.AdvertisingFeatures(supportedFlags: [.connectable, .discoverable], maxDataLength: 31, maxInstances: 5)
        #expect(!legacy.extended(room: BLEAdvertisement.Format.extended.length))
        // A controller with extended advertising (the kernel reports 251 bytes and the PHY flags).
        let reply: [UInt8] = [0xFF, 0x03, 0, 0, 251, 251, 5, 0]
        let ext = try Mgmt.AdvertisingFeatures(reply: reply)
        #expect(ext.maxDataLength == 251 && ext.maxInstances == 5 && ext.extended(room: 40))
        #expect(throws: WireError.self) { try Mgmt.AdvertisingFeatures(reply: [0xFF, 0x03]) }
        let ad = BLEAdvertisement.encode(beacon, key: ours.bleKey, slot: slot, nonce: 1, format: .extended)
        let c = try Mgmt.Command.addAdvertising(0, instance: 1, flags: [.connectable, .secondary1M], data: ad, maxDataLength: 251)
        #expect(c.parameters.count == 11 + 40 && c.parameters[1] == 0x81)
        #expect(throws: Mgmt.MgmtError.tooLong(40, limit: 31)) {
            try Mgmt.Command.addAdvertising(0, instance: 1, flags: .connectable, data: ad, maxDataLength: 251)
        }
        #expect(Mgmt.Command.setPrivacy(1, irk: Array(repeating: 7, count: 16)).bytes == [0x2F, 0, 1, 0, 17, 0, 1] + Array(repeating: 7, count: 16))
    }

    func drop<T>(_ r: Result<T, BLEAdvertisement.Drop>) -> BLEAdvertisement.Drop? {
        if case .failure(let d) = r { return d }
        return nil
    }

    func contains(_ hay: [UInt8], _ needle: [UInt8]) -> Bool {
        guard needle.count <= hay.count else { return false }
        return (0...(hay.count - needle.count)).contains { Array(hay[$0..<($0 + needle.count)]) == needle }
    }
}
