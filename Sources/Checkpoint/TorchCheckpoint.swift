// Opening a torch.save file: pick the container (zip or legacy), unpickle with the safe machine,
// attach storages zero-copy, name the tensors and keep everything else as metadata.

/// A `torch.save` checkpoint opened without executing anything from it.
///
/// The file is memory-mapped; tensor views (`CheckpointTensor.storageBytes`) point into the mapping
/// (or into inflated buffers for deflated zip entries) and stay valid while this object or the tensor lives.
public final class TorchCheckpoint: @unchecked Sendable {
    /// The path the checkpoint was opened from.
    public let path: String
    /// Zip archive (torch >= 1.6 default) or legacy pickle stream.
    public let format: ArchiveFormat
    /// The archive's top folder (what the file was called when saved, e.g. `base`); nil for legacy files.
    public let archivePrefix: String?
    /// Every tensor, in the order the pickle defines them (the state dict's order).
    public let tensors: [CheckpointTensor]
    /// Non-tensor values: the other top-level keys beside the state dict (tensors inside them appear
    /// as `.tensor(name)`). Keys of nested state-dict entries are joined with dots.
    public let metadata: [String: PickleValue]
    /// `metadata`'s keys in file order.
    public let metadataKeys: [String]
    /// The allowlisted globals the pickle referenced, e.g. `torch._utils._rebuild_tensor_v2`, in first-use order.
    public let globalsReferenced: [String]
    /// The top-level key holding the state dict (e.g. `state_dict`), or nil when the state dict is the top level.
    public let stateDictKey: String?
    /// The pickle protocol of the object pickle (from its PROTO opcode; 0 or 1 when absent).
    public let pickleProtocol: Int
    /// Small descriptive records: zip `version`, `byteorder`, `.format_version`, `.storage_alignment`,
    /// `.data/serialization_id`; legacy `protocol_version`, `little_endian`, `type_sizes`.
    public let archiveInfo: [(key: String, value: String)]
    /// All entries of the zip archive (empty for legacy files).
    public let zipEntries: [ZipEntryInfo]
    /// Size of the file in bytes.
    public let fileSize: Int
    /// Number of distinct storages (shared storages counted once).
    public let storageCount: Int
    /// Total bytes of the distinct storages.
    public let storageByteCount: Int

    private let region: ByteRegion
    private let indexByName: [String: Int]

    /// The tensor called `name`, if any.
    public func tensor(named name: String) -> CheckpointTensor? {
        indexByName[name].map { tensors[$0] }
    }
    /// Total elements over all tensors (tensors sharing storage each count).
    public var parameterCount: Int { tensors.reduce(0) { $0 + $1.elementCount } }
    /// Total bytes of all tensors when packed.
    public var tensorByteCount: Int { tensors.reduce(0) { $0 + $1.byteCount } }

    /// Opens and validates a checkpoint. With `verifyChecksums`, the CRC-32 of every stored zip entry is
    /// checked (this reads the whole file); deflated entries and the pickle are always checked.
    public convenience init(path: String, verifyChecksums: Bool = true) throws {
        try self.init(region: try ByteRegion(mapping: path), path: path, verifyChecksums: verifyChecksums)
    }

    /// Reads a checkpoint held in memory (the bytes are copied). `path` is only used in messages.
    public convenience init(bytes: [UInt8], path: String = "<memory>", verifyChecksums: Bool = true) throws {
        let buffer = UnsafeMutableRawPointer.allocate(byteCount: max(bytes.count, 1), alignment: 64)
        bytes.withUnsafeBytes { if let base = $0.baseAddress { buffer.copyMemory(from: base, byteCount: bytes.count) } }
        try self.init(region: ByteRegion(owning: buffer, count: bytes.count), path: path, verifyChecksums: verifyChecksums)
    }

    private init(region: ByteRegion, path: String, verifyChecksums: Bool) throws {
        let b = region.bytes
        self.path = path
        self.region = region
        self.fileSize = b.count

        let objects: TorchObjects
        let root: Value
        let arena = BoxArena()
        var storageViews: [ByteView?]
        var info: [(key: String, value: String)] = []
        if b.count >= 2 && b[0] == 0x50 && b[1] == 0x4B {
            format = .zip
            objects = TorchObjects(legacy: false)
            let zip = try ZipArchive(file: region)
            zipEntries = zip.entries
            let pickleNames = zip.entries.map(\.name).filter { name in
                name == "data.pkl" || (name.hasSuffix("/data.pkl") && name.split(separator: "/", omittingEmptySubsequences: false).count == 2)
            }
            guard let pickleName = pickleNames.first else { throw CheckpointError.missingEntry(name: "<archive>/data.pkl") }
            if pickleNames.count > 1 { throw CheckpointError.duplicateEntry(name: pickleNames.joined(separator: ", ")) }
            let prefix = pickleName == "data.pkl" ? "" : String(pickleName.dropLast("/data.pkl".count))
            archivePrefix = prefix
            let dir = prefix.isEmpty ? "" : prefix + "/"

            for record in ["version", ".format_version", ".storage_alignment", "byteorder", ".data/version", ".data/serialization_id"] {
                guard let e = zip.entry(named: dir + record) else { continue }
                let v = try zip.contents(of: e, limit: 4096, verifyCRC: true)
                let text = String(decoding: v.bytes, as: UTF8.self).trimmingSpaces()
                info.append((record, text))
                if record == "byteorder" && text != "little" { throw CheckpointError.unsupportedByteOrder(text) }
            }

            let pickleEntry = zip.entry(named: pickleName)!
            let pickle = try zip.contents(of: pickleEntry, limit: ZipArchive.defaultEntryLimit, verifyCRC: true)
            var machine = PickleMachine(data: pickle.bytes, start: 0, base: pickleEntry.method == 0 ? pickleEntry.dataOffset : 0,
                                        objects: objects, arena: arena)
            root = try machine.run()
            pickleProtocol = machine.protocolVersion

            // Storages: `<prefix>/data/<key>`, exactly numel * width bytes.
            storageViews = []
            for s in objects.storages {
                let entryName = dir + "data/" + s.key
                guard let e = zip.entry(named: entryName) else { throw CheckpointError.missingStorage(key: s.key) }
                let expected = s.numel * s.dtype.byteWidth
                guard e.uncompressedSize == expected else {
                    throw CheckpointError.storageSizeMismatch(key: s.key, expectedBytes: expected, actualBytes: e.uncompressedSize)
                }
                storageViews.append(try zip.contents(of: e, limit: expected, verifyCRC: verifyChecksums))
            }
        } else if b.count >= 1 && b[0] == 0x80 {
            format = .legacy
            archivePrefix = nil
            zipEntries = []
            objects = TorchObjects(legacy: true)
            (root, pickleProtocol, storageViews) = try TorchCheckpoint.readLegacy(region, objects, arena, &info)
        } else {
            let head = b.prefix(8).map { String($0, radix: 16) }.joined(separator: " ")
            throw CheckpointError.unrecognizedFormat(path: path, expected: "a zip archive (50 4b ..) or a legacy pickle (80 ..)",
                                                     actual: b.isEmpty ? "an empty file" : head)
        }
        archiveInfo = info
        globalsReferenced = objects.globals

        // Name tensors and convert everything else, after bounding the size of the structure as a tree
        // (shared memo references would otherwise expand exponentially).
        var sizes: [ObjectIdentifier: Int] = [:]
        _ = try Namer.treeSize(root, depth: 0, sizes: &sizes)
        var namer = Namer(objects: objects)
        var metadata: [String: PickleValue] = [:]
        var metadataKeys: [String] = []
        func addMetadata(_ key: String, _ value: PickleValue) {
            if metadata[key] == nil { metadataKeys.append(key) }
            metadata[key] = value
        }
        var sdKey: String? = nil
        if case .dict(let top) = root {
            let hasTensor = top.values.contains { if case .tensor = $0 { return true } else { return false } }
            var stateDict: DictBox? = hasTensor ? top : nil
            if stateDict == nil {
                let preferred = ["state_dict", "model", "model_state_dict", "module", "ema", "params", "weights"]
                var candidates: [(String, DictBox)] = []
                for (k, v) in zip(top.keys, top.values) {
                    if case .dict(let d) = v, d.values.contains(where: { if case .tensor = $0 { return true } else { return false } }) {
                        candidates.append((Namer.keyString(k), d))
                    }
                }
                if let c = preferred.lazy.compactMap({ p in candidates.first { $0.0 == p } }).first ?? candidates.first {
                    sdKey = c.0
                    stateDict = c.1
                }
            }
            if let sd = stateDict {
                let sdPath = sdKey ?? ""
                for (k, v) in zip(sd.keys, sd.values) {
                    let name = Namer.keyString(k)
                    if case .tensor(let t) = v {
                        try namer.register(name: name, record: t)
                    } else {
                        addMetadata(Namer.join(sdPath, name), try namer.convert(v, path: name, depth: 1))
                    }
                }
            }
            if stateDict !== top {
                for (k, v) in zip(top.keys, top.values) {
                    let key = Namer.keyString(k)
                    if key == sdKey { continue }
                    addMetadata(key, try namer.convert(v, path: key, depth: 1))
                }
            }
        } else if case .tensor(let t) = root {
            try namer.register(name: "tensor", record: t)
        } else {
            addMetadata("root", try namer.convert(root, path: "", depth: 0))
        }
        self.metadata = metadata
        self.metadataKeys = metadataKeys
        self.stateDictKey = sdKey

        // Build and bounds-check the tensor views.
        var tensors: [CheckpointTensor] = []
        tensors.reserveCapacity(namer.named.count)
        var index: [String: Int] = [:]
        for (name, r) in namer.named {
            let rec = objects.tensors[r]
            let storage = objects.storages[rec.storage]
            guard let view = storageViews[rec.storage] else { throw CheckpointError.missingStorage(key: storage.key) }
            let width = storage.dtype.byteWidth
            var numel = 1
            for (d, s) in zip(rec.shape, rec.strides) {
                guard d >= 0 else { throw CheckpointError.invalidTensor(name: name, reason: "negative size \(d) in \(rec.shape)") }
                guard s >= 0 else { throw CheckpointError.invalidTensor(name: name, reason: "negative stride \(s) in \(rec.strides)") }
                guard let n = checkedMul(numel, d) else { throw CheckpointError.invalidTensor(name: name, reason: "element count of \(rec.shape) overflows") }
                numel = n
            }
            guard checkedMul(numel, width) != nil else { throw CheckpointError.invalidTensor(name: name, reason: "byte count of \(rec.shape) overflows") }
            let available = storage.viewCount
            if numel > 0 {
                var last = rec.storageOffset
                for (d, s) in zip(rec.shape, rec.strides) {
                    guard let step = checkedMul(d - 1, s), let next = checkedAdd(last, step) else {
                        throw CheckpointError.tensorOutOfBounds(name: name, requiredElements: Int.max, storageElements: available)
                    }
                    last = next
                }
                guard last < available else {
                    throw CheckpointError.tensorOutOfBounds(name: name, requiredElements: last &+ 1, storageElements: available)
                }
            } else if rec.storageOffset > available {
                throw CheckpointError.tensorOutOfBounds(name: name, requiredElements: rec.storageOffset, storageElements: available)
            }
            let bytes = view.bytes.slice(storage.viewOffset * width, storage.viewCount * width)
            index[name] = tensors.count
            tensors.append(CheckpointTensor(name: name, dtype: storage.dtype, shape: rec.shape, strides: rec.strides,
                                            storageOffset: rec.storageOffset, storageKey: storage.key,
                                            storageBytes: bytes, owner: view.owner))
        }
        self.tensors = tensors
        self.indexByName = index
        var seenRoots = Set<String>()
        var storageBytes = 0
        for s in objects.storages where seenRoots.insert(s.key).inserted { storageBytes += s.numel * s.dtype.byteWidth }
        storageCount = seenRoots.count
        storageByteCount = storageBytes
        _ = arena   // boxes are emptied iteratively when the arena goes away
    }

    // MARK: Legacy format

    /// Magic number 0x1950a86a20f9469cfc6c as LONG1 bytes (little-endian).
    private static let legacyMagic: [UInt8] = [0x6C, 0xFC, 0x9C, 0x46, 0xF9, 0x20, 0x6A, 0xA8, 0x50, 0x19]

    private static func readLegacy(_ region: ByteRegion, _ objects: TorchObjects, _ arena: BoxArena,
                                   _ info: inout [(key: String, value: String)]) throws -> (Value, Int, [ByteView?]) {
        let b = region.bytes
        var pos = 0
        func next() throws -> (Value, Int, Int) {
            let start = pos
            var m = PickleMachine(data: b, start: pos, base: 0, objects: objects, arena: arena)
            let v = try m.run()
            pos = m.position
            return (v, start, m.protocolVersion)
        }
        let (magic, magicAt, _) = try next()
        let magicOK: Bool
        switch magic {
        case .bigInt(let bytes): magicOK = bytes == legacyMagic
        default: magicOK = false
        }
        guard magicOK else { throw CheckpointError.invalidLegacyHeader(reason: "magic number is not 0x1950a86a20f9469cfc6c", offset: magicAt) }
        let (proto, protoAt, _) = try next()
        guard case .int(1001) = proto else {
            throw CheckpointError.invalidLegacyHeader(reason: "protocol version is \(proto.typeName == "int" ? "\(proto)" : proto.typeName), not 1001", offset: protoAt)
        }
        info.append(("protocol_version", "1001"))
        let (sysInfo, sysAt, _) = try next()
        guard case .dict(let sys) = sysInfo else {
            throw CheckpointError.invalidLegacyHeader(reason: "sys_info is \(sysInfo.typeName), not dict", offset: sysAt)
        }
        for (k, v) in zip(sys.keys, sys.values) {
            guard case .string(let key) = k else { continue }
            if key == "little_endian" {
                guard case .bool(let little) = v else {
                    throw CheckpointError.invalidLegacyHeader(reason: "little_endian is \(v.typeName)", offset: sysAt)
                }
                info.append((key, little ? "True" : "False"))
                if !little { throw CheckpointError.unsupportedByteOrder("big") }
            } else if key == "type_sizes", case .dict(let sizes) = v {
                let text = zip(sizes.keys, sizes.values).map { (k, v) -> String in
                    if case .string(let n) = k, case .int(let s) = v { return "\(n)=\(s)" }
                    return "?"
                }.joined(separator: " ")
                info.append((key, text))
            }
        }
        let (root, _, proto2) = try next()
        let (keyList, keysAt, _) = try next()
        guard case .list(let keysBox) = keyList, !keysBox.isSet else {
            throw CheckpointError.invalidLegacyHeader(reason: "storage key list is \(keyList.typeName), not list", offset: keysAt)
        }
        // Raw storages follow, in the key list's order: int64 element count, then the bytes.
        var rootViews: [String: ByteView] = [:]
        for k in keysBox.items {
            guard case .string(let key) = k else {
                throw CheckpointError.invalidLegacyHeader(reason: "storage key is \(k.typeName), not str", offset: keysAt)
            }
            guard let first = objects.rootIndex[key] else {
                throw CheckpointError.invalidLegacyHeader(reason: "storage key '\(key)' is listed but never referenced", offset: keysAt)
            }
            guard rootViews[key] == nil else {
                throw CheckpointError.invalidLegacyHeader(reason: "storage key '\(key)' is listed twice", offset: keysAt)
            }
            let s = objects.storages[first]
            guard b.contains(offset: pos, length: 8) else {
                throw CheckpointError.truncated(what: "size of storage '\(key)'", offset: pos, needed: 8, available: b.count - pos)
            }
            let count = Int64(bitPattern: b.u64(pos))
            guard count == Int64(s.numel) else {
                let actual = count < 0 ? -1 : (checkedMul(Int(count), s.dtype.byteWidth) ?? Int.max)
                throw CheckpointError.storageSizeMismatch(key: key, expectedBytes: s.numel * s.dtype.byteWidth, actualBytes: actual)
            }
            pos += 8
            let nbytes = s.numel * s.dtype.byteWidth
            guard b.contains(offset: pos, length: nbytes) else {
                throw CheckpointError.truncated(what: "storage '\(key)'", offset: pos, needed: nbytes, available: b.count - pos)
            }
            rootViews[key] = ByteView(bytes: b.slice(pos, nbytes), owner: region)
            pos += nbytes
        }
        var views: [ByteView?] = []
        for s in objects.storages {
            guard let v = rootViews[s.key] else { throw CheckpointError.missingStorage(key: s.key) }
            views.append(v)
        }
        return (root, proto2, views)
    }
}

/// Decodes one standalone pickle with the same allowlist and limits as checkpoints use
/// (for tools, tests and fuzzing). Tensors cannot be materialised without an archive; they appear as
/// `.tensor(path)` named by where they sit.
public enum PickleDecoder {
    /// Runs the pickle in `bytes` up to its STOP and returns the value, or throws the refusal.
    public static func decode(_ bytes: UnsafeRawBufferPointer) throws -> PickleValue {
        let objects = TorchObjects(legacy: false)
        let arena = BoxArena()
        var machine = PickleMachine(data: bytes, start: 0, base: 0, objects: objects, arena: arena)
        let root = try machine.run()
        var sizes: [ObjectIdentifier: Int] = [:]
        _ = try Namer.treeSize(root, depth: 0, sizes: &sizes)
        var namer = Namer(objects: objects)
        return try namer.convert(root, path: "", depth: 0)
    }
}

/// Assigns tensor names and converts machine values to `PickleValue`, with bounded depth and size.
struct Namer {
    static let maxDepth = 200
    static let maxNodes = 1 << 21
    let objects: TorchObjects
    var named: [(String, Int)] = []
    var names: Set<String> = []
    var nodes = 0

    init(objects: TorchObjects) { self.objects = objects }

    static func keyString(_ k: Value) -> String {
        switch k {
        case .string(let s): return s
        case .int(let i): return String(i)
        case .bool(let b): return b ? "True" : "False"
        case .none: return "None"
        case .float(let d): return String(d)
        default: return "<\(k.typeName)>"
        }
    }
    static func join(_ path: String, _ sub: String) -> String { path.isEmpty ? sub : path + "." + sub }

    /// Number of values `v` expands to as a tree, computed once per container; throws past `maxNodes`
    /// or `maxDepth` (which also catches reference cycles).
    static func treeSize(_ v: Value, depth: Int, sizes: inout [ObjectIdentifier: Int]) throws -> Int {
        guard depth <= maxDepth else {
            throw CheckpointError.limitExceeded(what: "levels of nesting (or a reference cycle)", limit: maxDepth, offset: 0)
        }
        let id: ObjectIdentifier
        let children: [Value]
        switch v {
        case .tuple(let t): id = ObjectIdentifier(t); children = t.items
        case .list(let l): id = ObjectIdentifier(l); children = l.items
        case .dict(let d): id = ObjectIdentifier(d); children = d.keys + d.values
        case .object(let o): id = ObjectIdentifier(o); children = o.args
        default: return 1
        }
        if let known = sizes[id] { return known }
        var total = 1
        for c in children {
            total += try treeSize(c, depth: depth + 1, sizes: &sizes)
            if total > maxNodes {
                throw CheckpointError.limitExceeded(what: "values in the decoded structure", limit: maxNodes, offset: 0)
            }
        }
        sizes[id] = total
        return total
    }

    mutating func register(name: String, record: Int) throws {
        guard names.insert(name).inserted else { throw CheckpointError.duplicateTensorName(name) }
        named.append((name, record))
    }

    mutating func convert(_ v: Value, path: String, depth: Int) throws -> PickleValue {
        nodes += 1
        guard nodes <= Namer.maxNodes else {
            throw CheckpointError.limitExceeded(what: "values in the decoded structure", limit: Namer.maxNodes, offset: 0)
        }
        guard depth <= Namer.maxDepth else {
            throw CheckpointError.limitExceeded(what: "levels of nesting (or a reference cycle)", limit: Namer.maxDepth, offset: 0)
        }
        switch v {
        case .none: return .none
        case .bool(let x): return .bool(x)
        case .int(let x): return .int(x)
        case .bigInt(let x): return .bigInt(x)
        case .float(let x): return .float(x)
        case .string(let x): return .string(x)
        case .bytes(let x): return .bytes(x)
        case .tuple(let t):
            return .tuple(try t.items.enumerated().map { try convert($1, path: Namer.join(path, String($0)), depth: depth + 1) })
        case .list(let l):
            return .list(try l.items.enumerated().map { try convert($1, path: Namer.join(path, String($0)), depth: depth + 1) })
        case .dict(let d):
            var entries: [PickleDictEntry] = []
            for (k, val) in zip(d.keys, d.values) {
                let key = try convert(k, path: path, depth: depth + 1)
                let value = try convert(val, path: Namer.join(path, Namer.keyString(k)), depth: depth + 1)
                entries.append(PickleDictEntry(key: key, value: value))
            }
            return .dict(entries)
        case .object(let o):
            return .object(type: o.type, args: try o.args.map { try convert($0, path: path, depth: depth + 1) })
        case .global(_, let name): return .global(name)
        case .storage(let i): return .storage(objects.storages[i].key)
        case .tensor(let i):
            let name = path.isEmpty ? "tensor" : path
            try register(name: name, record: i)
            return .tensor(name)
        }
    }
}

extension String {
    fileprivate func trimmingSpaces() -> String {
        var s = Substring(self)
        while let f = s.first, f == " " || f == "\n" || f == "\r" || f == "\t" { s.removeFirst() }
        while let l = s.last, l == " " || l == "\n" || l == "\r" || l == "\t" { s.removeLast() }
        return String(s)
    }
}
