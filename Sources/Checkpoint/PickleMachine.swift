// A pickle virtual machine for protocols 0-5 that builds data only. Globals resolve from a fixed allowlist;
// REDUCE and BUILD do only what the allowlist says; every other way of constructing objects is refused.
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

// MARK: - Values on the machine's stack

// Containers release their children through a shared queue (see `ReleaseQueue`), so tearing down
// 100,000 nested lists never recurses deeply.
final class TupleBox {
    var items: [Value]
    let queue: ReleaseQueue
    init(_ items: [Value], queue: ReleaseQueue) { self.items = items; self.queue = queue }
    deinit { queue.absorb(&items) }
}
final class ListBox {
    var items: [Value]
    let isSet: Bool
    let queue: ReleaseQueue
    init(_ items: [Value], isSet: Bool = false, queue: ReleaseQueue) { self.items = items; self.isSet = isSet; self.queue = queue }
    deinit { queue.absorb(&items) }
}
final class DictBox {
    var keys: [Value] = []
    var values: [Value] = []
    var index: [HashKey: Int] = [:]
    /// State applied by BUILD (an OrderedDict's `__dict__`, e.g. torch's `_metadata`).
    var attributes: [Value] = []
    let queue: ReleaseQueue
    init(queue: ReleaseQueue) { self.queue = queue }
    deinit { queue.absorb(&keys); queue.absorb(&values); queue.absorb(&attributes) }
}
final class ObjectBox {
    let type: String
    var args: [Value]
    let queue: ReleaseQueue
    init(type: String, args: [Value], queue: ReleaseQueue) { self.type = type; self.args = args; self.queue = queue }
    deinit { queue.absorb(&args) }
}

/// Releases values iteratively: a box's deinit hands its children to the queue instead of releasing
/// them in place, and only the outermost release drains the queue.
final class ReleaseQueue {
    private var pending: [Value] = []
    private var draining = false
    func absorb(_ values: inout [Value]) {
        if values.isEmpty { return }
        pending.append(contentsOf: values)
        values = []
        guard !draining else { return }
        draining = true
        while let v = pending.popLast() { withExtendedLifetime(v) {} }   // may re-enter absorb, which only appends
        draining = false
    }
}

/// Stack values. Containers are reference boxes so memo entries share them as Python objects do.
enum Value {
    case none, bool(Bool), int(Int), bigInt([UInt8]), float(Double), string(String), bytes([UInt8])
    case tuple(TupleBox), list(ListBox), dict(DictBox), object(ObjectBox)
    case global(AllowedGlobal, String)
    /// Index into `TorchObjects.storages`.
    case storage(Int)
    /// Index into `TorchObjects.tensors`.
    case tensor(Int)

    var typeName: String {
        switch self {
        case .none: return "None"
        case .bool: return "bool"
        case .int, .bigInt: return "int"
        case .float: return "float"
        case .string: return "str"
        case .bytes: return "bytes"
        case .tuple: return "tuple"
        case .list(let l): return l.isSet ? "set" : "list"
        case .dict: return "dict"
        case .object(let o): return o.type
        case .global(_, let name): return "global \(name)"
        case .storage: return "storage"
        case .tensor: return "tensor"
        }
    }
}

/// Dict keys we can hash: the hashable Python values a checkpoint's dict may use.
indirect enum HashKey: Hashable {
    case none, int(Int), big([UInt8]), float(UInt64), string(String), bytes([UInt8]), tuple([HashKey]), ref(Int, Int)
}

// MARK: - Allowlist

/// The globals a checkpoint may reference. Nothing else resolves.
enum AllowedGlobal: Equatable {
    case orderedDict
    case rebuildTensorV2, rebuildTensor, rebuildParameter, rebuildParameterWithState
    case storageType(TorchDType)
    case torchSize, torchDevice
}

let allowedGlobals: [String: AllowedGlobal] = {
    var table: [String: AllowedGlobal] = [
        "collections.OrderedDict": .orderedDict,
        "torch._utils._rebuild_tensor_v2": .rebuildTensorV2,
        "torch._utils._rebuild_tensor": .rebuildTensor,
        "torch._utils._rebuild_parameter": .rebuildParameter,
        "torch._utils._rebuild_parameter_with_state": .rebuildParameterWithState,
        "torch.UntypedStorage": .storageType(.uint8),
        "torch.storage.UntypedStorage": .storageType(.uint8),
        "torch.Size": .torchSize,
        "torch.device": .torchDevice,
    ]
    for dtype in TorchDType.allCases { table[dtype.storageClassName] = .storageType(dtype) }
    return table
}()

// MARK: - Storages and tensors found while unpickling

struct StorageRecord {
    let key: String
    let dtype: TorchDType
    /// Elements of the root storage as the persistent id declares them.
    let numel: Int
    let location: String
    /// Legacy storage views: element range of the root storage this storage covers.
    let viewOffset: Int
    let viewCount: Int
    let isView: Bool
}

struct TensorRecord {
    let storage: Int
    let storageOffset: Int
    let shape: [Int]
    let strides: [Int]
}

/// Storages, tensors and globals gathered across the pickles of one file.
final class TorchObjects {
    let legacy: Bool
    var storages: [StorageRecord] = []
    var storageIndex: [String: Int] = [:]
    /// First storage record of each root key.
    var rootIndex: [String: Int] = [:]
    var tensors: [TensorRecord] = []
    var globals: [String] = []
    var globalSet: Set<String> = []
    init(legacy: Bool) { self.legacy = legacy }
}

/// Owns the release queue and breaks reference cycles at the end. Only a list or dict that was memoised
/// or DUPed can close a cycle (a container can be reached again only through the memo or DUP), so
/// emptying those when the file is done frees everything, cycles included.
final class BoxArena {
    let queue = ReleaseQueue()
    private var cycleCandidates: [Value] = []
    private var seen = Set<ObjectIdentifier>()
    func noteShared(_ v: Value) {
        switch v {
        case .list(let l): if seen.insert(ObjectIdentifier(l)).inserted { cycleCandidates.append(v) }
        case .dict(let d): if seen.insert(ObjectIdentifier(d)).inserted { cycleCandidates.append(v) }
        default: break
        }
    }
    deinit {
        for v in cycleCandidates {
            switch v {
            case .list(let l): queue.absorb(&l.items)
            case .dict(let d): queue.absorb(&d.keys); queue.absorb(&d.values); queue.absorb(&d.attributes)
            default: break
            }
        }
        queue.absorb(&cycleCandidates)
    }
}

// MARK: - The machine

struct PickleMachine {
    /// Limits that keep hostile input from exhausting memory.
    static let maxStack = 1 << 20
    static let maxValuesCreated = 1 << 23
    static let maxRank = 64
    static let maxLongDigits = 1000

    private let data: UnsafeRawBufferPointer
    private var pos: Int
    /// Added to positions in error messages (the pickle's offset in the file).
    private let base: Int
    private let objects: TorchObjects
    private let arena: BoxArena
    private var stack: [Value] = []
    private var marks: [Int] = []
    private var memo: [Int: Value] = [:]
    private var created = 0
    private(set) var protocolVersion = 0
    private var opOffset = 0

    init(data: UnsafeRawBufferPointer, start: Int, base: Int, objects: TorchObjects, arena: BoxArena) {
        self.data = data
        self.pos = start
        self.base = base
        self.objects = objects
        self.arena = arena
    }

    /// Position after the STOP opcode once `run()` returned.
    var position: Int { pos }

    // MARK: Stack helpers

    private var frameBase: Int { marks.last ?? 0 }
    private var at: Int { base + opOffset }

    private mutating func push(_ v: Value) throws {
        created += 1
        if created > PickleMachine.maxValuesCreated {
            throw CheckpointError.limitExceeded(what: "pickle values", limit: PickleMachine.maxValuesCreated, offset: at)
        }
        if stack.count >= PickleMachine.maxStack {
            throw CheckpointError.limitExceeded(what: "stack entries", limit: PickleMachine.maxStack, offset: at)
        }
        stack.append(v)
    }
    private mutating func pop(_ op: String) throws -> Value {
        guard stack.count > frameBase else { throw CheckpointError.stackUnderflow(opcode: op, offset: at) }
        return stack.removeLast()
    }
    private func top(_ op: String) throws -> Value {
        guard stack.count > frameBase else { throw CheckpointError.stackUnderflow(opcode: op, offset: at) }
        return stack[stack.count - 1]
    }
    private mutating func popToMark(_ op: String) throws -> [Value] {
        guard let m = marks.popLast() else { throw CheckpointError.missingMark(opcode: op, offset: at) }
        let items = Array(stack[m...])
        stack.removeSubrange(m...)
        return items
    }

    private func newTuple(_ items: [Value]) -> Value { .tuple(TupleBox(items, queue: arena.queue)) }
    private func newList(_ items: [Value], isSet: Bool = false) -> Value { .list(ListBox(items, isSet: isSet, queue: arena.queue)) }
    private func newDict() -> DictBox { DictBox(queue: arena.queue) }


    // MARK: Reading bytes

    private mutating func read(_ n: Int, _ op: String) throws -> UnsafeRawBufferPointer {
        guard n >= 0, n <= data.count - pos else {
            if n > 64 {   // a declared length, not a fixed-size argument
                throw CheckpointError.lengthExceedsInput(opcode: op, declared: n, available: data.count - pos, offset: at)
            }
            throw CheckpointError.truncatedPickle(opcode: op, offset: at)
        }
        let s = data.slice(pos, n)
        pos += n
        return s
    }
    private mutating func readLength(_ n: UInt64, _ op: String) throws -> UnsafeRawBufferPointer {
        guard n <= UInt64(data.count - pos) else {
            throw CheckpointError.lengthExceedsInput(opcode: op, declared: n > UInt64(Int.max) ? Int.max : Int(n),
                                                     available: data.count - pos, offset: at)
        }
        return try read(Int(n), op)
    }
    private mutating func u8(_ op: String) throws -> Int { Int(try read(1, op)[0]) }
    private mutating func u16(_ op: String) throws -> Int { Int(try read(2, op).u16(0)) }
    private mutating func u32(_ op: String) throws -> UInt32 { try read(4, op).u32(0) }
    private mutating func u64(_ op: String) throws -> UInt64 { try read(8, op).u64(0) }
    private mutating func line(_ op: String) throws -> UnsafeRawBufferPointer {
        var i = pos
        while i < data.count && data[i] != 0x0A { i += 1 }
        guard i < data.count else { throw CheckpointError.truncatedPickle(opcode: op, offset: at) }
        let s = data.slice(pos, i - pos)
        pos = i + 1
        return s
    }
    private func utf8(_ bytes: UnsafeRawBufferPointer, _ op: String) throws -> String {
        guard let s = decodeUTF8(bytes) else {
            throw CheckpointError.invalidLiteral(opcode: op, reason: "invalid UTF-8", offset: at)
        }
        return s
    }

    // MARK: Run

    /// Runs until STOP and returns the result.
    mutating func run() throws -> Value {
        while true {
            opOffset = pos
            guard pos < data.count else { throw CheckpointError.truncatedPickle(opcode: "STOP (missing)", offset: at) }
            let op = data[pos]
            pos += 1
            switch op {
            case 0x80:  // PROTO
                let v = try u8("PROTO")
                guard v <= 5 else { throw CheckpointError.invalidLiteral(opcode: "PROTO", reason: "unsupported protocol \(v)", offset: at) }
                protocolVersion = v
            case 0x95:  // FRAME: a length hint; the bytes must exist
                let n = try u64("FRAME")
                guard n <= UInt64(data.count - pos) else {
                    throw CheckpointError.lengthExceedsInput(opcode: "FRAME", declared: n > UInt64(Int.max) ? Int.max : Int(n),
                                                             available: data.count - pos, offset: at)
                }
            case 0x2E:  // STOP
                let v = try pop("STOP")
                return v
            case 0x28: // MARK
                guard marks.count < PickleMachine.maxStack else {
                    throw CheckpointError.limitExceeded(what: "marks", limit: PickleMachine.maxStack, offset: at)
                }
                marks.append(stack.count)
            case 0x30:  // POP
                if stack.count > frameBase { stack.removeLast() }
                else if !marks.isEmpty { marks.removeLast() }
                else { throw CheckpointError.stackUnderflow(opcode: "POP", offset: at) }
            case 0x31:  // POP_MARK
                _ = try popToMark("POP_MARK")
            case 0x32:  // DUP
                let v = try top("DUP")
                arena.noteShared(v)
                try push(v)

            // Constants and numbers
            case 0x4E: try push(.none)                       // NONE
            case 0x88: try push(.bool(true))                 // NEWTRUE
            case 0x89: try push(.bool(false))                // NEWFALSE
            case 0x4A: try push(.int(Int(Int32(bitPattern: try u32("BININT")))))
            case 0x4B: try push(.int(try u8("BININT1")))
            case 0x4D: try push(.int(try u16("BININT2")))
            case 0x49:  // INT (text; "00"/"01" are False/True)
                let l = try line("INT")
                if l.count == 2 && l[0] == 0x30 && (l[1] == 0x30 || l[1] == 0x31) { try push(.bool(l[1] == 0x31)) }
                else { try push(try parseDecimal(l, "INT", trailingL: false)) }
            case 0x4C:  // LONG (text)
                try push(try parseDecimal(try line("LONG"), "LONG", trailingL: true))
            case 0x8A:  // LONG1
                let n = try u8("LONG1")
                try push(longFromBytes(try read(n, "LONG1")))
            case 0x8B:  // LONG4
                let n = Int32(bitPattern: try u32("LONG4"))
                guard n >= 0 else { throw CheckpointError.invalidLiteral(opcode: "LONG4", reason: "negative length \(n)", offset: at) }
                try push(longFromBytes(try readLength(UInt64(n), "LONG4")))
            case 0x47:  // BINFLOAT (big-endian)
                try push(.float(Double(bitPattern: UInt64(bigEndian: try read(8, "BINFLOAT").loadUnaligned(as: UInt64.self)))))
            case 0x46:  // FLOAT (text)
                try push(.float(try parseFloat(try line("FLOAT"))))

            // Strings and bytes
            case 0x58:  // BINUNICODE
                try push(.string(try utf8(try readLength(UInt64(try u32("BINUNICODE")), "BINUNICODE"), "BINUNICODE")))
            case 0x8C:  // SHORT_BINUNICODE
                try push(.string(try utf8(try read(try u8("SHORT_BINUNICODE"), "SHORT_BINUNICODE"), "SHORT_BINUNICODE")))
            case 0x8D:  // BINUNICODE8
                try push(.string(try utf8(try readLength(try u64("BINUNICODE8"), "BINUNICODE8"), "BINUNICODE8")))
            case 0x56:  // UNICODE (raw-unicode-escape text)
                try push(.string(try rawUnicodeEscape(try line("UNICODE"))))
            case 0x53:  // STRING (quoted text)
                try push(try pythonStringLiteral(try line("STRING")))
            case 0x54:  // BINSTRING
                let n = Int32(bitPattern: try u32("BINSTRING"))
                guard n >= 0 else { throw CheckpointError.invalidLiteral(opcode: "BINSTRING", reason: "negative length \(n)", offset: at) }
                try push(py2String(try readLength(UInt64(n), "BINSTRING")))
            case 0x55:  // SHORT_BINSTRING
                try push(py2String(try read(try u8("SHORT_BINSTRING"), "SHORT_BINSTRING")))
            case 0x42:  // BINBYTES
                try push(.bytes(Array(try readLength(UInt64(try u32("BINBYTES")), "BINBYTES"))))
            case 0x43:  // SHORT_BINBYTES
                try push(.bytes(Array(try read(try u8("SHORT_BINBYTES"), "SHORT_BINBYTES"))))
            case 0x8E:  // BINBYTES8
                try push(.bytes(Array(try readLength(try u64("BINBYTES8"), "BINBYTES8"))))
            case 0x96:  // BYTEARRAY8
                try push(.bytes(Array(try readLength(try u64("BYTEARRAY8"), "BYTEARRAY8"))))

            // Containers
            case 0x29: try push(newTuple([]))                                  // EMPTY_TUPLE
            case 0x85: let a = try pop("TUPLE1"); try push(newTuple([a]))    // TUPLE1
            case 0x86:  // TUPLE2
                let b = try pop("TUPLE2"), a = try pop("TUPLE2"); try push(newTuple([a, b]))
            case 0x87:  // TUPLE3
                let c = try pop("TUPLE3"), b = try pop("TUPLE3"), a = try pop("TUPLE3"); try push(newTuple([a, b, c]))
            case 0x74: try push(newTuple(try popToMark("TUPLE")))               // TUPLE
            case 0x5D: try push(newList([]))                                     // EMPTY_LIST
            case 0x6C: try push(newList(try popToMark("LIST")))                 // LIST
            case 0x7D: try push(.dict(newDict()))                                // EMPTY_DICT
            case 0x64:  // DICT
                let items = try popToMark("DICT")
                guard items.count % 2 == 0 else {
                    throw CheckpointError.unexpectedType(opcode: "DICT", expected: "key/value pairs", actual: "\(items.count) items", offset: at)
                }
                let d = newDict()
                for i in stride(from: 0, to: items.count, by: 2) { try setItem(d, items[i], items[i + 1], "DICT") }
                try push(.dict(d))
            case 0x8F: try push(newList([], isSet: true))                        // EMPTY_SET
            case 0x91: try push(newList(try popToMark("FROZENSET"), isSet: true)) // FROZENSET
            case 0x61:  // APPEND
                let v = try pop("APPEND")
                try listTarget("APPEND").items.append(v)
            case 0x65:  // APPENDS
                let items = try popToMark("APPENDS")
                try listTarget("APPENDS").items.append(contentsOf: items)
            case 0x90:  // ADDITEMS
                let items = try popToMark("ADDITEMS")
                try listTarget("ADDITEMS", set: true).items.append(contentsOf: items)
            case 0x73:  // SETITEM
                let v = try pop("SETITEM"), k = try pop("SETITEM")
                try setItem(try dictTarget("SETITEM"), k, v, "SETITEM")
            case 0x75:  // SETITEMS
                let items = try popToMark("SETITEMS")
                guard items.count % 2 == 0 else {
                    throw CheckpointError.unexpectedType(opcode: "SETITEMS", expected: "key/value pairs", actual: "\(items.count) items", offset: at)
                }
                let d = try dictTarget("SETITEMS")
                for i in stride(from: 0, to: items.count, by: 2) { try setItem(d, items[i], items[i + 1], "SETITEMS") }

            // Memo
            case 0x70:  // PUT
                let key = try memoKeyFromLine(try line("PUT"), "PUT")
                try put(key, "PUT")
            case 0x71: try put(try u8("BINPUT"), "BINPUT")
            case 0x72: try put(Int(try u32("LONG_BINPUT")), "LONG_BINPUT")
            case 0x94: try put(memo.count, "MEMOIZE")
            case 0x67: try get(try memoKeyFromLine(try line("GET"), "GET"))
            case 0x68: try get(try u8("BINGET"))
            case 0x6A: try get(Int(try u32("LONG_BINGET")))

            // Globals, calls, persistent ids
            case 0x63:  // GLOBAL
                let module = try utf8(try line("GLOBAL"), "GLOBAL"), name = try utf8(try line("GLOBAL"), "GLOBAL")
                try push(try resolve(module: module, name: name))
            case 0x93:  // STACK_GLOBAL
                let nameV = try pop("STACK_GLOBAL"), moduleV = try pop("STACK_GLOBAL")
                guard case .string(let module) = moduleV, case .string(let name) = nameV else {
                    throw CheckpointError.unexpectedType(opcode: "STACK_GLOBAL", expected: "two strings",
                                                         actual: "\(moduleV.typeName), \(nameV.typeName)", offset: at)
                }
                try push(try resolve(module: module, name: name))
            case 0x52:  // REDUCE
                let args = try pop("REDUCE"), callable = try pop("REDUCE")
                try push(try reduce(callable, args))
            case 0x62:  // BUILD
                let state = try pop("BUILD"), target = try top("BUILD")
                try build(target, state)
            case 0x51:  // BINPERSID
                let pid = try pop("BINPERSID")
                try push(try persistentLoad(pid))

            case 0x50: throw CheckpointError.forbiddenOpcode(opcode: "PERSID", offset: at)
            case 0x69: throw CheckpointError.forbiddenOpcode(opcode: "INST", offset: at)
            case 0x6F: throw CheckpointError.forbiddenOpcode(opcode: "OBJ", offset: at)
            case 0x81: throw CheckpointError.forbiddenOpcode(opcode: "NEWOBJ", offset: at)
            case 0x92: throw CheckpointError.forbiddenOpcode(opcode: "NEWOBJ_EX", offset: at)
            case 0x82: throw CheckpointError.forbiddenOpcode(opcode: "EXT1", offset: at)
            case 0x83: throw CheckpointError.forbiddenOpcode(opcode: "EXT2", offset: at)
            case 0x84: throw CheckpointError.forbiddenOpcode(opcode: "EXT4", offset: at)
            case 0x97: throw CheckpointError.forbiddenOpcode(opcode: "NEXT_BUFFER", offset: at)
            case 0x98: throw CheckpointError.forbiddenOpcode(opcode: "READONLY_BUFFER", offset: at)
            default: throw CheckpointError.unknownOpcode(byte: op, offset: at)
            }
        }
    }

    // MARK: Opcode helpers

    private mutating func put(_ key: Int, _ op: String) throws {
        let v = try top(op)
        arena.noteShared(v)
        memo[key] = v
    }

    private mutating func get(_ key: Int) throws {
        guard let v = memo[key] else { throw CheckpointError.invalidMemoKey(key: key, offset: at) }
        try push(v)
    }

    private func memoKeyFromLine(_ l: UnsafeRawBufferPointer, _ op: String) throws -> Int {
        guard !l.isEmpty, l.count <= 18, l.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) else {
            throw CheckpointError.invalidLiteral(opcode: op, reason: "memo key is not a decimal number", offset: at)
        }
        return l.reduce(0) { $0 * 10 + Int($1 - 0x30) }
    }

    private func listTarget(_ op: String, set: Bool = false) throws -> ListBox {
        let t = try top(op)
        guard case .list(let box) = t, box.isSet == set else {
            throw CheckpointError.unexpectedType(opcode: op, expected: set ? "set" : "list", actual: t.typeName, offset: at)
        }
        return box
    }

    private func dictTarget(_ op: String) throws -> DictBox {
        let t = try top(op)
        guard case .dict(let box) = t else {
            throw CheckpointError.unexpectedType(opcode: op, expected: "dict", actual: t.typeName, offset: at)
        }
        return box
    }

    private func setItem(_ d: DictBox, _ k: Value, _ v: Value, _ op: String) throws {
        let hk = try hashKey(k, op, depth: 0)
        if let i = d.index[hk] {
            d.values[i] = v
        } else {
            d.index[hk] = d.keys.count
            d.keys.append(k)
            d.values.append(v)
        }
    }

    private func hashKey(_ v: Value, _ op: String, depth: Int) throws -> HashKey {
        switch v {
        case .none: return .none
        case .bool(let b): return .int(b ? 1 : 0)
        case .int(let i): return .int(i)
        case .bigInt(let b): return .big(b)
        case .float(let d):
            if d == d.rounded(), abs(d) < 9.0e15 { return .int(Int(d)) }
            return .float(d.bitPattern)
        case .string(let s): return .string(s)
        case .bytes(let b): return .bytes(b)
        case .tuple(let t):
            guard depth < 32 else {
                throw CheckpointError.limitExceeded(what: "levels of tuple nesting in a dict key", limit: 32, offset: at)
            }
            return .tuple(try t.items.map { try hashKey($0, op, depth: depth + 1) })
        case .storage(let i): return .ref(1, i)
        case .tensor(let i): return .ref(2, i)
        default:
            throw CheckpointError.unexpectedType(opcode: op, expected: "a hashable key", actual: v.typeName, offset: at)
        }
    }

    private mutating func resolve(module: String, name: String) throws -> Value {
        let full = module + "." + name
        guard let g = allowedGlobals[full] else { throw CheckpointError.forbiddenGlobal(name: full, offset: at) }
        if objects.globalSet.insert(full).inserted { objects.globals.append(full) }
        return .global(g, full)
    }

    private mutating func reduce(_ callable: Value, _ argsValue: Value) throws -> Value {
        guard case .global(let g, let name) = callable else {
            throw CheckpointError.forbiddenCall(callable: callable.typeName, offset: at)
        }
        guard case .tuple(let argBox) = argsValue else {
            throw CheckpointError.unexpectedType(opcode: "REDUCE", expected: "argument tuple", actual: argsValue.typeName, offset: at)
        }
        let args = argBox.items
        func bad(_ reason: String) -> CheckpointError { .invalidArguments(callable: name, reason: reason, offset: at) }
        switch g {
        case .orderedDict:
            guard args.isEmpty else { throw bad("expected no arguments, got \(args.count)") }
            return .dict(newDict())
        case .rebuildTensorV2, .rebuildTensor:
            let allowedCounts = g == .rebuildTensor ? [4] : [6, 7]
            guard allowedCounts.contains(args.count) else { throw bad("expected \(allowedCounts.map(String.init).joined(separator: " or ")) arguments, got \(args.count)") }
            guard case .storage(let storage) = args[0] else { throw bad("argument 1 is \(args[0].typeName), not a storage") }
            guard case .int(let offset) = args[1], offset >= 0 else { throw bad("storage offset is not a non-negative int") }
            let shape = try intSequence(args[2], name, "size")
            let strides = try intSequence(args[3], name, "stride")
            guard shape.count == strides.count else { throw bad("size has \(shape.count) dims but stride has \(strides.count)") }
            guard shape.count <= PickleMachine.maxRank else { throw bad("\(shape.count) dimensions (limit \(PickleMachine.maxRank))") }
            if g == .rebuildTensorV2 {
                guard case .bool = args[4] else { throw bad("requires_grad is \(args[4].typeName), not bool") }
                if case .dict(let hooks) = args[5] {
                    guard hooks.keys.isEmpty else { throw bad("backward hooks are not empty") }
                } else if case .none = args[5] {} else { throw bad("backward_hooks is \(args[5].typeName)") }
            }
            objects.tensors.append(TensorRecord(storage: storage, storageOffset: offset, shape: shape, strides: strides))
            return .tensor(objects.tensors.count - 1)
        case .rebuildParameter, .rebuildParameterWithState:
            let expected = g == .rebuildParameter ? 3 : 4
            guard args.count == expected else { throw bad("expected \(expected) arguments, got \(args.count)") }
            guard case .tensor = args[0] else { throw bad("argument 1 is \(args[0].typeName), not a tensor") }
            if case .dict(let hooks) = args[2] {
                guard hooks.keys.isEmpty else { throw bad("backward hooks are not empty") }
            } else if case .none = args[2] {} else { throw bad("backward_hooks is \(args[2].typeName)") }
            return args[0]
        case .torchSize:
            guard args.count == 1 else { throw bad("expected 1 argument, got \(args.count)") }
            let dims = try intSequence(args[0], name, "dims")
            return newTuple(dims.map { .int($0) })
        case .torchDevice:
            guard (1...2).contains(args.count), case .string = args[0] else { throw bad("expected ('type'[, index])") }
            if args.count == 2 {
                switch args[1] { case .int, .none: break; default: throw bad("device index is \(args[1].typeName)") }
            }
            return .object(ObjectBox(type: "torch.device", args: args, queue: arena.queue))
        case .storageType:
            throw CheckpointError.forbiddenCall(callable: name, offset: at)
        }
    }

    private func intSequence(_ v: Value, _ callable: String, _ what: String) throws -> [Int] {
        let items: [Value]
        switch v {
        case .tuple(let t): items = t.items
        case .list(let l) where !l.isSet: items = l.items
        default: throw CheckpointError.invalidArguments(callable: callable, reason: "\(what) is \(v.typeName), not a tuple", offset: at)
        }
        guard items.count <= PickleMachine.maxRank else {
            throw CheckpointError.invalidArguments(callable: callable, reason: "\(what) has \(items.count) entries (limit \(PickleMachine.maxRank))", offset: at)
        }
        return try items.map {
            guard case .int(let i) = $0 else {
                throw CheckpointError.invalidArguments(callable: callable, reason: "\(what) holds \($0.typeName), not int", offset: at)
            }
            return i
        }
    }

    private func build(_ target: Value, _ state: Value) throws {
        // Only an OrderedDict may receive state: a dict of attributes (torch's `_metadata`). Nothing is called.
        guard case .dict(let d) = target else {
            throw CheckpointError.forbiddenCall(callable: "BUILD on \(target.typeName)", offset: at)
        }
        guard case .dict = state else {
            throw CheckpointError.unexpectedType(opcode: "BUILD", expected: "dict state", actual: state.typeName, offset: at)
        }
        d.attributes.append(state)
    }

    private mutating func persistentLoad(_ pid: Value) throws -> Value {
        func bad(_ reason: String) -> CheckpointError { .invalidPersistentID(reason: reason, offset: at) }
        guard case .tuple(let t) = pid else { throw bad("expected a tuple, found \(pid.typeName)") }
        let items = t.items
        let expectedCount = objects.legacy ? 6 : 5
        guard items.count == expectedCount else { throw bad("expected \(expectedCount) fields, found \(items.count)") }
        guard case .string("storage") = items[0] else { throw bad("first field is not 'storage'") }
        guard case .global(.storageType(let dtype), let typeName) = items[1] else {
            throw bad("second field is \(items[1].typeName), not a storage type")
        }
        let key: String
        switch items[2] {
        case .string(let s): key = s
        case .int(let i): key = String(i)
        default: throw bad("key is \(items[2].typeName)")
        }
        guard case .string(let location) = items[3] else { throw bad("location is \(items[3].typeName)") }
        guard case .int(let numel) = items[4], numel >= 0 else { throw bad("element count is not a non-negative int") }
        guard checkedMul(numel, dtype.byteWidth) != nil else { throw bad("element count \(numel) overflows") }

        var viewOffset = 0, viewCount = numel, isView = false, viewKey = ""
        if objects.legacy, case .tuple(let view) = items[5] {
            guard view.items.count == 3, case .string(let vk) = view.items[0], case .int(let vo) = view.items[1],
                  case .int(let vc) = view.items[2], vo >= 0, vc >= 0 else { throw bad("malformed view metadata") }
            guard let end = checkedAdd(vo, vc), end <= numel else { throw bad("view [\(vo), +\(vc)) exceeds root of \(numel) elements") }
            viewOffset = vo; viewCount = vc; isView = true; viewKey = vk
        } else if objects.legacy {
            guard case .none = items[5] else { throw bad("view metadata is \(items[5].typeName)") }
        }
        // The same root storage must always be declared with the same type and size.
        if let first = objects.rootIndex[key] {
            let existing = objects.storages[first]
            if existing.dtype != dtype || existing.numel != numel {
                throw CheckpointError.storageConflict(key: key, first: "\(existing.dtype.storageClassName)[\(existing.numel)]",
                                                      second: "\(typeName)[\(numel)]")
            }
        }
        let lookup = isView ? key + "\u{0}" + viewKey : key
        if let i = objects.storageIndex[lookup] { return .storage(i) }
        objects.storages.append(StorageRecord(key: key, dtype: dtype, numel: numel, location: location,
                                              viewOffset: viewOffset, viewCount: viewCount, isView: isView))
        objects.storageIndex[lookup] = objects.storages.count - 1
        if objects.rootIndex[key] == nil { objects.rootIndex[key] = objects.storages.count - 1 }
        return .storage(objects.storages.count - 1)
    }

    // MARK: Literals

    /// Drops redundant sign-extension bytes so equal integers always have equal bytes.
    private func minimalTwosComplement(_ bytes: [UInt8]) -> [UInt8] {
        var b = bytes
        while b.count > 1 {
            let last = b[b.count - 1], prev = b[b.count - 2]
            if (last == 0 && prev & 0x80 == 0) || (last == 0xFF && prev & 0x80 != 0) { b.removeLast() } else { break }
        }
        return b
    }

    private func longFromBytes(_ raw: UnsafeRawBufferPointer) -> Value {
        if raw.isEmpty { return .int(0) }
        if raw.count > 8 {
            let m = minimalTwosComplement(Array(raw))
            if m.count > 8 { return .bigInt(m) }
            return m.withUnsafeBytes { longFromBytes($0) }
        }
        let b = raw
        if b.count <= 8 {
            var v: UInt64 = 0
            for i in 0..<b.count { v |= UInt64(b[i]) << (8 * UInt64(i)) }
            if b.count < 8 && b[b.count - 1] & 0x80 != 0 { v |= ~UInt64(0) << (8 * UInt64(b.count)) }
            return .int(Int(bitPattern: UInt(v)))
        }
        return .bigInt(Array(b))
    }

    private func parseDecimal(_ l: UnsafeRawBufferPointer, _ op: String, trailingL: Bool) throws -> Value {
        var bytes = Array(l)
        if trailingL, bytes.last == 0x4C { bytes.removeLast() }
        var negative = false
        if let f = bytes.first, f == 0x2D || f == 0x2B { negative = f == 0x2D; bytes.removeFirst() }
        guard !bytes.isEmpty, bytes.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) else {
            throw CheckpointError.invalidLiteral(opcode: op, reason: "not a decimal integer", offset: at)
        }
        guard bytes.count <= PickleMachine.maxLongDigits else {
            throw CheckpointError.limitExceeded(what: "decimal digits", limit: PickleMachine.maxLongDigits, offset: at)
        }
        // Magnitude in 32-bit limbs, little-endian.
        var limbs: [UInt32] = [0]
        for d in bytes {
            var carry = UInt64(d - 0x30)
            for i in 0..<limbs.count {
                let v = UInt64(limbs[i]) * 10 + carry
                limbs[i] = UInt32(truncatingIfNeeded: v)
                carry = v >> 32
            }
            if carry != 0 { limbs.append(UInt32(carry)) }
        }
        if limbs.count <= 2 {
            let mag = UInt64(limbs[0]) | (limbs.count > 1 ? UInt64(limbs[1]) << 32 : 0)
            if !negative && mag <= UInt64(Int.max) { return .int(Int(mag)) }
            if negative && mag <= UInt64(Int.max) + 1 { return .int(mag == UInt64(Int.max) + 1 ? Int.min : -Int(mag)) }
        }
        // Two's complement bytes with room for the sign bit.
        var out: [UInt8] = []
        for l in limbs { for s in 0..<4 { out.append(UInt8(truncatingIfNeeded: l >> (8 * UInt32(s)))) } }
        out.append(0)
        if negative {
            var carry = 1
            for i in 0..<out.count {
                let v = Int(~out[i]) + carry
                out[i] = UInt8(truncatingIfNeeded: v)
                carry = v >> 8
            }
        }
        return .bigInt(minimalTwosComplement(out))
    }

    private func parseFloat(_ l: UnsafeRawBufferPointer) throws -> Double {
        guard !l.isEmpty, l.count < 64 else {
            throw CheckpointError.invalidLiteral(opcode: "FLOAT", reason: "not a float", offset: at)
        }
        var buf = Array(l) + [0]
        var result = 0.0
        let ok: Bool = buf.withUnsafeMutableBufferPointer { p in
            let start = UnsafeMutableRawPointer(p.baseAddress!).assumingMemoryBound(to: CChar.self)
            var end: UnsafeMutablePointer<CChar>? = nil
            result = strtod(start, &end)
            return end == start + l.count
        }
        guard ok else { throw CheckpointError.invalidLiteral(opcode: "FLOAT", reason: "not a float", offset: at) }
        _ = buf.popLast()
        return result
    }

    /// Protocol 0-2 `str` payloads: UTF-8 text when valid, else raw bytes (as torch's `encoding` would give).
    private func py2String(_ b: UnsafeRawBufferPointer) -> Value {
        if let s = decodeUTF8(b) { return .string(s) }
        return .bytes(Array(b))
    }

    /// STRING: a Python `repr` of a byte string, quoted with ' or ".
    private func pythonStringLiteral(_ l: UnsafeRawBufferPointer) throws -> Value {
        func bad(_ r: String) -> CheckpointError { .invalidLiteral(opcode: "STRING", reason: r, offset: at) }
        guard l.count >= 2, (l[0] == 0x27 || l[0] == 0x22), l[l.count - 1] == l[0] else { throw bad("not a quoted string") }
        var out: [UInt8] = []
        var i = 1
        let end = l.count - 1
        func hexValue(_ c: UInt8) -> Int? {
            switch c {
            case 0x30...0x39: return Int(c - 0x30)
            case 0x61...0x66: return Int(c - 0x61 + 10)
            case 0x41...0x46: return Int(c - 0x41 + 10)
            default: return nil
            }
        }
        while i < end {
            let c = l[i]
            if c != 0x5C { out.append(c); i += 1; continue }
            guard i + 1 < end else { throw bad("dangling backslash") }
            let e = l[i + 1]
            i += 2
            switch e {
            case 0x5C: out.append(0x5C)
            case 0x27: out.append(0x27)
            case 0x22: out.append(0x22)
            case 0x6E: out.append(0x0A)
            case 0x72: out.append(0x0D)
            case 0x74: out.append(0x09)
            case 0x78:
                guard i + 1 < end, let h = hexValue(l[i]), let lo = hexValue(l[i + 1]) else { throw bad("bad \\x escape") }
                out.append(UInt8(h * 16 + lo)); i += 2
            case 0x30...0x37:
                var v = Int(e - 0x30), n = 1
                while n < 3 && i < end && (0x30...0x37).contains(l[i]) { v = v * 8 + Int(l[i] - 0x30); i += 1; n += 1 }
                out.append(UInt8(truncatingIfNeeded: v))
            default: throw bad("unsupported escape \\\(Character(Unicode.Scalar(e)))")
            }
        }
        return out.withUnsafeBytes { py2String($0) }
    }

    /// UNICODE: raw-unicode-escape (bytes are Latin-1 code points; only \uXXXX and \UXXXXXXXX escape).
    private func rawUnicodeEscape(_ l: UnsafeRawBufferPointer) throws -> String {
        var scalars = String.UnicodeScalarView()
        var i = 0
        while i < l.count {
            let c = l[i]
            if c == 0x5C && i + 1 < l.count && (l[i + 1] == 0x75 || l[i + 1] == 0x55) {
                let digits = l[i + 1] == 0x75 ? 4 : 8
                guard i + 2 + digits <= l.count else {
                    throw CheckpointError.invalidLiteral(opcode: "UNICODE", reason: "truncated \\u escape", offset: at)
                }
                var v: UInt32 = 0
                for j in 0..<digits {
                    let h = l[i + 2 + j]
                    let d: UInt32
                    switch h {
                    case 0x30...0x39: d = UInt32(h - 0x30)
                    case 0x61...0x66: d = UInt32(h - 0x61 + 10)
                    case 0x41...0x46: d = UInt32(h - 0x41 + 10)
                    default: throw CheckpointError.invalidLiteral(opcode: "UNICODE", reason: "bad hex digit in escape", offset: at)
                    }
                    v = v << 4 | d
                }
                guard let s = Unicode.Scalar(v) else {
                    throw CheckpointError.invalidLiteral(opcode: "UNICODE", reason: "escape is not a Unicode scalar", offset: at)
                }
                scalars.append(s)
                i += 2 + digits
            } else {
                scalars.append(Unicode.Scalar(c))
                i += 1
            }
        }
        return String(scalars)
    }
}
