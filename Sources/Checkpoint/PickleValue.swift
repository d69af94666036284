// Plain values decoded from a checkpoint's pickle (everything that is not a tensor).

/// A value from the pickle, as data. Nothing here was executed: objects the allowlist permits
/// (e.g. `torch.device`) are recorded as `object(type:args:)`.
public indirect enum PickleValue: Sendable, Equatable, CustomStringConvertible {
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
        case .bigInt(let bytes): return "<int of \(bytes.count) bytes>"
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
    public init(key: PickleValue, value: PickleValue) {
        self.key = key
        self.value = value
    }
}
