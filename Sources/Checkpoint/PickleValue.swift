// Plain values decoded from a checkpoint's pickle (everything that is not a tensor).

/// A value from the pickle, as data. Nothing here was executed: objects the allowlist permits
/// (e.g. `torch.device`) are recorded as `object(type:args:)`.
public indirect enum PickleValue: Sendable, Equatable, CustomStringConvertible {
    /// Python's None (and the scalars below: bool, int, float, str, bytes).
    case none
    case bool(Bool)
    case int(Int)
    /// An integer beyond 64 bits: little-endian two's complement bytes.
    case bigInt([UInt8])
    case float(Double)
    case string(String)
    case bytes([UInt8])
    /// A list (sets and frozensets are decoded as lists too).
    case list([PickleValue])
    case tuple([PickleValue])
    /// A dict or OrderedDict, in insertion order.
    case dict([PickleDictEntry])
    /// An allowlisted object recorded by type name and arguments, e.g. `torch.device("cpu")`.
    case object(type: String, args: [PickleValue])
    /// A reference to an allowlisted global that was not called (e.g. a storage class).
    case global(String)
    /// A tensor; the string is its name in `TorchCheckpoint.tensors`.
    case tensor(String)
    /// A bare storage (not wrapped in a tensor), by archive key.
    case storage(String)

    /// The value under string key `key` when this is a dict.
    public subscript(key: String) -> PickleValue? {
        guard case .dict(let entries) = self else { return nil }
        return entries.first { $0.key == .string(key) }?.value
    }

    /// A Python-like rendering, for display.
    public var description: String {
        switch self {
        case .none: return "None"
        case .bool(let b): return b ? "True" : "False"
        case .int(let i): return String(i)
        case .bigInt(let bytes): return bytes.count <= 128 ? bigIntDecimal(bytes) : "<int of \(bytes.count) bytes>"
        case .float(let d): return String(d)
        case .string(let s): return "'" + s + "'"
        case .bytes(let b): return "b<\(b.count) bytes>"
        case .list(let items): return "[" + items.map(\.description).joined(separator: ", ") + "]"
        case .tuple(let items):
            return "(" + items.map(\.description).joined(separator: ", ") + (items.count == 1 ? ",)" : ")")
        case .dict(let entries):
            return "{" + entries.map { "\($0.key.description): \($0.value.description)" }.joined(separator: ", ") + "}"
        case .object(let type, let args): return type + "(" + args.map(\.description).joined(separator: ", ") + ")"
        case .global(let name): return "<global \(name)>"
        case .tensor(let name): return "<tensor \(name)>"
        case .storage(let key): return "<storage \(key)>"
        }
    }
}

/// One key/value pair of a decoded dict.
public struct PickleDictEntry: Sendable, Equatable {
    public let key: PickleValue
    public let value: PickleValue
    /// A key/value pair.
    public init(key: PickleValue, value: PickleValue) {
        self.key = key
        self.value = value
    }
}

/// Decimal text of a little-endian two's complement integer.
func bigIntDecimal(_ bytes: [UInt8]) -> String {
    guard let last = bytes.last else { return "0" }
    let negative = last & 0x80 != 0
    var mag = bytes
    if negative {   // magnitude = two's complement negation
        var carry = 1
        for i in mag.indices {
            let v = Int(~mag[i]) + carry
            mag[i] = UInt8(truncatingIfNeeded: v)
            carry = v >> 8
        }
    }
    // 32-bit limbs, most significant first, divided repeatedly by 10^9.
    while mag.count % 4 != 0 { mag.append(0) }
    var limbs: [UInt32] = []
    var i = mag.count
    while i > 0 {
        var limb: UInt32 = 0
        for j in stride(from: i - 1, through: max(0, i - 4), by: -1) { limb = limb << 8 | UInt32(mag[j]) }
        limbs.append(limb)
        i -= 4
    }
    var chunks: [UInt32] = []
    while limbs.contains(where: { $0 != 0 }) {
        var rem: UInt64 = 0
        for k in limbs.indices {
            let cur = rem << 32 | UInt64(limbs[k])
            limbs[k] = UInt32(cur / 1_000_000_000)
            rem = cur % 1_000_000_000
        }
        chunks.append(UInt32(rem))
    }
    guard let top = chunks.popLast() else { return "0" }
    var text = (negative ? "-" : "") + String(top)
    for c in chunks.reversed() {
        let d = String(c)
        text += String(repeating: "0", count: 9 - d.count) + d
    }
    return text
}
