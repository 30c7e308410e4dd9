/// Lower-case hex of bytes: the one encoder (track ids from digests and the wire, relay topics).
public enum Hex {
    static let digits = Array("0123456789abcdef".utf8)

    public static func encode(_ bytes: some Sequence<UInt8>) -> String {
        let b = Array(bytes)
        return String(unsafeUninitializedCapacity: b.count * 2) { buf in
            for (i, x) in b.enumerated() {
                buf[2 * i] = digits[Int(x >> 4)]
                buf[2 * i + 1] = digits[Int(x & 0xF)]
            }
            return b.count * 2
        }
    }
}
