/// Why `WireCodec.decode` refused a datagram. Every case that concerns a field names it by its
/// path in the message, e.g. `beacon.timeline.anchor.frame` or `ops[3].edit.after`.
public enum WireError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The first byte is a format version this build does not speak (the receiver drops the
    /// message and counts it: a newer peer, or garbage).
    case unsupportedVersion(UInt8)
    /// The second byte names no message type of this version.
    case unknownType(UInt8)
    /// The datagram ended inside `field`.
    case truncated(field: String)
    /// Bytes left after the last field of a complete message.
    case trailingBytes(WireMessageKind, count: Int)
    /// A count or string length above the limit of its field.
    case overLimit(field: String, count: Int, limit: Int)
    /// An optional's presence byte other than 0 or 1.
    case invalidPresence(field: String, byte: UInt8)
    /// A byte that must be one of a few values (a bool, a rate, an edit kind) is none of them.
    case invalidEnum(field: String, byte: UInt8)
    /// A string that is not valid UTF-8.
    case invalidUTF8(field: String)
    /// A number outside the range its field allows (a negative frame count, a latitude past 90°).
    case outOfRange(field: String, value: Int64)
    /// A map whose keys are not strictly increasing (unsorted, or a key twice): not canonical.
    case keyOrder(field: String)

    /// The path of the field at fault, when the error concerns one.
    public var field: String? {
        switch self {
        case .unsupportedVersion: "version"
        case .unknownType: "type"
        case .trailingBytes: nil
        case .truncated(let f), .overLimit(let f, _, _), .invalidPresence(let f, _), .invalidEnum(let f, _),
             .invalidUTF8(let f), .outOfRange(let f, _), .keyOrder(let f):
            f
        }
    }

    public var description: String {
        switch self {
        case .unsupportedVersion(let v):
            "unsupported wire version \(v) (this build speaks version \(WireCodec.version))"
        case .unknownType(let t):
            "unknown message type \(t) in wire version \(WireCodec.version)"
        case .truncated(let f):
            "\(f): message ends before this field is complete (truncated)"
        case .trailingBytes(let kind, let n):
            "\(kind): \(n) trailing byte\(n == 1 ? "" : "s") after the last field"
        case .overLimit(let f, let count, let limit):
            "\(f): count \(count) is over the limit of \(limit)"
        case .invalidPresence(let f, let b):
            "\(f): presence byte \(b) is neither 0 (absent) nor 1 (present)"
        case .invalidEnum(let f, let b):
            "\(f): byte \(b) is not a valid value for this field"
        case .invalidUTF8(let f):
            "\(f): string is not valid UTF-8"
        case .outOfRange(let f, let v):
            "\(f): value \(v) is out of range"
        case .keyOrder(let f):
            "\(f): map keys must be strictly increasing (sorted, no duplicates)"
        }
    }

    /// The same error with its field path put under `prefix` (`frame` → `anchor.frame`).
    func within(_ prefix: String) -> WireError {
        func join(_ f: String) -> String { f.hasPrefix("[") ? prefix + f : prefix + "." + f }
        switch self {
        case .unsupportedVersion, .unknownType, .trailingBytes: return self
        case .truncated(let f): return .truncated(field: join(f))
        case .overLimit(let f, let c, let l): return .overLimit(field: join(f), count: c, limit: l)
        case .invalidPresence(let f, let b): return .invalidPresence(field: join(f), byte: b)
        case .invalidEnum(let f, let b): return .invalidEnum(field: join(f), byte: b)
        case .invalidUTF8(let f): return .invalidUTF8(field: join(f))
        case .outOfRange(let f, let v): return .outOfRange(field: join(f), value: v)
        case .keyOrder(let f): return .keyOrder(field: join(f))
        }
    }
}
