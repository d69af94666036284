// Reader for .glw files: maps the file once, validates the whole index, hands out zero-copy views.
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import CJSONC

/// A hyperparameter value from the file's metadata (`hyperparameters` object).
public enum HyperValue: Equatable, Sendable, CustomStringConvertible {
    case int(Int)
    case double(Double)
    case string(String)
    case bool(Bool)

    /// The value as an Int (ints only).
    public var intValue: Int? { if case let .int(v) = self { return v }; return nil }
    /// The value as a Double (ints convert).
    public var doubleValue: Double? {
        switch self { case let .double(v): return v; case let .int(v): return Double(v); default: return nil }
    }
    /// The value as a String (strings only).
    public var stringValue: String? { if case let .string(v) = self { return v }; return nil }
    /// The value as a Bool (bools only).
    public var boolValue: Bool? { if case let .bool(v) = self { return v }; return nil }

    public var description: String {
        switch self {
        case let .int(v): return String(v)
        case let .double(v): return String(v)
        case let .string(v): return "\"\(v)\""
        case let .bool(v): return v ? "true" : "false"
        }
    }
}

/// A zero-copy view of one tensor in a mapped `.glw` file. Valid while its `WeightFile` lives.
public struct WeightTensor: @unchecked Sendable {
    /// The tensor's name (the checkpoint's state_dict key).
    public let name: String
    /// Element type of `data`.
    public let dtype: WeightDType
    /// Dimensions, outermost first (PyTorch order).
    public let shape: [Int]
    /// The values (for int8: the int8 values only), in the checkpoint's element order.
    public let data: UnsafeRawBufferPointer
    /// Per-row scales of an int8 tensor (one per first-dimension row); nil for other dtypes.
    public let scales: UnsafeBufferPointer<Float>?
    /// Absolute file offset of `data`.
    public let offset: Int
    /// Stored CRC-32 of the tensor's region (values, padding, scales).
    public let crc32: UInt32

    /// Number of elements (product of `shape`; 1 for a scalar).
    public var elementCount: Int { shape.reduce(1, *) }
    /// Bytes of the whole region (values, internal padding and scales).
    public var regionByteCount: Int {
        guard let s = scales else { return data.count }
        return Int(bitPattern: s.baseAddress.map { UnsafeRawPointer($0) } ?? data.baseAddress!) - Int(bitPattern: data.baseAddress!) + s.count * 4
    }
}

/// An embedded file (e.g. `tokenizer/encoder.json.gz`) inside a `.glw` file.
public struct WeightEmbeddedFile: @unchecked Sendable {
    /// Full entry name, e.g. `tokenizer/vocab.bpe.gz`.
    public let name: String
    /// The file's bytes (zero-copy).
    public let bytes: UnsafeRawBufferPointer
    /// Absolute file offset.
    public let offset: Int
    /// Stored CRC-32.
    public let crc32: UInt32
}

/// A memory-mapped `.glw` weight file (spec: `Formats/glw.md`).
///
/// `init` maps the file once and validates the header, metadata and every table entry (offsets,
/// lengths, alignment, overlaps, dtype and shape) without touching tensor data, so opening costs
/// the same for a 1 MB and a 1.5 GB file. Views handed out stay valid while the object lives.
public final class WeightFile: @unchecked Sendable {
    /// The path the file was opened from.
    public let path: String
    /// Size of the file in bytes.
    public let fileSize: Int
    /// Format version (1).
    public let version: UInt32
    /// Alignment of every tensor's offset.
    public let alignment: Int
    /// The metadata header, verbatim (a JSON object).
    public let metadataJSON: String
    /// The `hyperparameters` object of the metadata (reference option names).
    public let hyperparameters: [String: HyperValue]
    /// The metadata's `model` string (`base`, `upsample`, ..., `clip/text-enc`, `unet`, `tensors`), if present.
    public let modelName: String?
    /// Activation precision of int8 tensors, from `quantization.tensors.<name>.activation_bits` (8 or 16): the
    /// bits to which a runtime quantizes the inputs of the product with this weight. Empty for files written
    /// before `glw-policy-2` (a runtime then uses its default, 16). Validated at open: only int8 tensors, 8 or 16.
    public let int8ActivationBits: [String: Int]
    /// Tensor names in file order (embedded files excluded).
    public let tensorNames: [String]
    /// All tensors in file order.
    public let tensors: [WeightTensor]
    /// Embedded files in file order.
    public let embeddedFiles: [WeightEmbeddedFile]
    /// Embedded tokenizer files, keyed by file name without the `tokenizer/` prefix.
    public let tokenizerFiles: [String: UnsafeRawBufferPointer]

    private let base: UnsafeMutableRawPointer
    private let mappedLength: Int
    private let index: [String: Int]
    private let entries: [RawEntry]
    private let entryNames: [String]

    /// Maps and validates `path`. With `verifyChecksums`, also checks every tensor's CRC-32 and all padding.
    public init(path: String, verifyChecksums: Bool = false) throws {
        self.path = path
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw WeightFormatError.io(path: path, operation: "open", errno: errno) }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else { throw WeightFormatError.io(path: path, operation: "stat", errno: errno) }
        let size = Int(st.st_size)
        guard size >= GLWLayout.headerSize else { throw WeightFormatError.tooSmall(size: size) }
        guard let m = mmap(nil, size, PROT_READ, MAP_PRIVATE, fd, 0), m != MAP_FAILED else {
            throw WeightFormatError.io(path: path, operation: "mmap", errno: errno)
        }
        var ok = false
        defer { if !ok { munmap(m, size) } }
        let parsed = try WeightFile.parse(UnsafeRawPointer(m), size: size)
        base = m
        mappedLength = size
        fileSize = size
        version = parsed.version
        alignment = parsed.alignment
        metadataJSON = parsed.metadata.json
        hyperparameters = parsed.metadata.hyperparameters
        modelName = parsed.metadata.model
        int8ActivationBits = parsed.metadata.activationBits
        entries = parsed.entries
        entryNames = parsed.names
        var tensors: [WeightTensor] = []
        var files: [WeightEmbeddedFile] = []
        var tok: [String: UnsafeRawBufferPointer] = [:]
        var index: [String: Int] = [:]
        let cbase = UnsafeRawPointer(m)
        for (i, e) in parsed.entries.enumerated() {
            let name = parsed.names[i]
            let data = UnsafeRawBufferPointer(start: cbase + Int(e.dataOffset), count: Int(e.dataLength))
            if e.flags & GLWLayout.flagFile != 0 {
                files.append(WeightEmbeddedFile(name: name, bytes: data, offset: Int(e.dataOffset), crc32: e.crc32))
                if name.hasPrefix(GLWLayout.tokenizerPrefix) {
                    tok[String(name.dropFirst(GLWLayout.tokenizerPrefix.count))] = data
                }
                continue
            }
            let dtype = WeightDType(rawValue: e.dtype)!
            var scales: UnsafeBufferPointer<Float>? = nil
            if dtype == .int8 {
                scales = UnsafeBufferPointer(start: (cbase + Int(e.scalesOffset)).assumingMemoryBound(to: Float.self),
                                             count: Int(e.scalesLength) / 4)
            }
            index[name] = tensors.count
            tensors.append(WeightTensor(name: name, dtype: dtype, shape: e.shape[0..<Int(e.rank)].map { Int($0) },
                                        data: data, scales: scales, offset: Int(e.dataOffset), crc32: e.crc32))
        }
        self.tensors = tensors
        self.tensorNames = tensors.map(\.name)
        self.embeddedFiles = files
        self.tokenizerFiles = tok
        self.index = index
        ok = true
        if verifyChecksums { try self.verifyChecksums() }
    }

    deinit { munmap(base, mappedLength) }

    /// Drops this file's pages from the process's resident memory. Tensor views stay valid: a page touched
    /// again is read back from the file (or the page cache). Call it when a model will not run for a while,
    /// e.g. the base model while the upsampler runs, so that the two do not add up in peak memory.
    public func releaseResidentMemory() {
        releasePages(UnsafeRawPointer(base), mappedLength)
    }

    /// The tensor called `name`, or nil.
    public func tensor(_ name: String) -> WeightTensor? {
        guard let i = index[name] else { return nil }
        return tensors[i]
    }

    /// Checks every entry's CRC-32 and that all padding between regions is zero; throws the first failure.
    public func verifyChecksums() throws {
        if let first = checksumFailures(stopAtFirst: true).first { throw first }
    }

    /// Checks every entry's CRC-32 and all padding; returns every failure found (empty when sound).
    /// Pages are released after each entry is checked, so memory use stays small even for big files.
    public func checksumFailures(stopAtFirst: Bool = false, progress: ((Int, Int) -> Void)? = nil) -> [WeightFormatError] {
        var failures: [WeightFormatError] = []
        let cbase = UnsafeRawPointer(base)
        var previousEnd = entries.isEmpty ? UInt64(mappedLength) : entries[0].dataOffset
        var previousName = "(index)"
        for (i, e) in entries.enumerated() {
            let name = entryNames[i]
            // Padding before this region must be zero (the gap before the first region is under the header CRC).
            if let bad = firstNonZero(cbase, from: previousEnd, to: e.dataOffset) {
                failures.append(.nonZeroPadding(after: previousName, offset: bad))
                if stopAtFirst { return failures }
            }
            let region = UnsafeRawBufferPointer(start: cbase + Int(e.dataOffset), count: Int(e.regionEnd - e.dataOffset))
            var crc: UInt32 = 0
            var done = 0
            let chunk = 8 << 20
            while done < region.count {
                let n = min(chunk, region.count - done)
                crc = glwCRC32(UnsafeRawBufferPointer(rebasing: region[done..<(done + n)]), continuing: crc)
                releasePages(cbase + Int(e.dataOffset) + done, n)
                done += n
                progress?(Int(e.dataOffset) + done, mappedLength)
            }
            if crc != e.crc32 {
                failures.append(.checksumMismatch(tensor: name, expected: e.crc32, actual: crc))
                if stopAtFirst { return failures }
            }
            previousEnd = e.regionEnd
            previousName = name
        }
        return failures
    }

    /// Drops the mapped pages fully inside [p, p+n) from this process (they are re-read from the file if touched again).
    private func releasePages(_ p: UnsafeRawPointer, _ n: Int) {
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        let start = (Int(bitPattern: p) + page - 1) & ~(page - 1)
        let end = (Int(bitPattern: p) + n) & ~(page - 1)
        if end > start { _ = madvise(UnsafeMutableRawPointer(bitPattern: start), end - start, Int32(MADV_DONTNEED)) }
    }

    private func firstNonZero(_ p: UnsafeRawPointer, from: UInt64, to: UInt64) -> UInt64? {
        guard to > from else { return nil }
        for o in from..<to where p.load(fromByteOffset: Int(o), as: UInt8.self) != 0 { return o }
        return nil
    }

    // MARK: - Parsing and validation

    struct Metadata {
        var json: String
        var hyperparameters: [String: HyperValue]
        var model: String?
        var activationBits: [String: Int] = [:]
    }
    struct Parsed {
        var version: UInt32
        var alignment: Int
        var metadata: Metadata
        var entries: [RawEntry]
        var names: [String]
    }

    /// Validates the whole index of a mapped file of `size` bytes (see the reading rules in Formats/glw.md).
    static func parse(_ p: UnsafeRawPointer, size: Int) throws -> Parsed {
        let fsize = UInt64(size)
        let magic = (0..<4).map { p.load(fromByteOffset: $0, as: UInt8.self) }
        guard magic == GLWLayout.magic else { throw WeightFormatError.badMagic(found: magic) }
        let version = p.le32(4)
        guard version == GLWLayout.version else { throw WeightFormatError.unsupportedVersion(found: version, supported: GLWLayout.version) }
        let align32 = p.le32(8)
        guard align32 >= 64, align32 <= 65536, align32 & (align32 - 1) == 0 else { throw WeightFormatError.badAlignment(found: align32) }
        let align = UInt64(align32)
        let storedHeaderCRC = p.le32(12)
        let metaOffset = p.le64(16), metaLength = p.le64(24)
        let tableOffset = p.le64(32), entryCount = p.le64(40)
        let namesOffset = p.le64(48), namesLength = p.le64(56)

        guard metaOffset == UInt64(GLWLayout.headerSize) else {
            throw WeightFormatError.badHeaderField(field: "metadata_offset", expected: "64", actual: metaOffset)
        }
        guard metaLength <= GLWLayout.maxMetadataLength else {
            throw WeightFormatError.metadataTooLarge(length: metaLength, limit: GLWLayout.maxMetadataLength)
        }
        guard metaLength >= 1 else { throw WeightFormatError.badHeaderField(field: "metadata_length", expected: ">= 1", actual: 0) }
        let expectedTable = roundUp(metaOffset + metaLength, 8)!
        guard tableOffset == expectedTable else {
            throw WeightFormatError.badHeaderField(field: "table_offset", expected: String(expectedTable), actual: tableOffset)
        }
        guard entryCount <= GLWLayout.maxEntryCount else {
            throw WeightFormatError.badHeaderField(field: "entry_count", expected: "<= \(GLWLayout.maxEntryCount)", actual: entryCount)
        }
        let expectedNames = tableOffset + entryCount * UInt64(GLWLayout.entrySize)  // cannot overflow: both capped
        guard namesOffset == expectedNames else {
            throw WeightFormatError.badHeaderField(field: "names_offset", expected: String(expectedNames), actual: namesOffset)
        }
        guard namesLength <= GLWLayout.maxNamesLength else {
            throw WeightFormatError.badHeaderField(field: "names_length", expected: "<= \(GLWLayout.maxNamesLength)", actual: namesLength)
        }
        let namesEnd = namesOffset + namesLength
        let dataStart = roundUp(namesEnd, align)!
        guard dataStart <= fsize else {
            throw WeightFormatError.badHeaderField(field: "names_length", expected: "index to end inside the \(fsize)-byte file", actual: namesLength)
        }

        // Header CRC: bytes [0, dataStart) with the CRC field read as zero.
        var crc = glwCRC32(UnsafeRawBufferPointer(start: p, count: 12))
        var zero: UInt32 = 0
        crc = withUnsafeBytes(of: &zero) { glwCRC32($0, continuing: crc) }
        crc = glwCRC32(UnsafeRawBufferPointer(start: p + 16, count: Int(dataStart) - 16), continuing: crc)
        guard crc == storedHeaderCRC else { throw WeightFormatError.headerChecksumMismatch(expected: storedHeaderCRC, actual: crc) }

        let metadata = try parseMetadata(UnsafeRawBufferPointer(start: p + Int(metaOffset), count: Int(metaLength)))

        // Entries.
        var entries: [RawEntry] = []
        entries.reserveCapacity(Int(entryCount))
        var names: [String] = []
        names.reserveCapacity(Int(entryCount))
        var seen = Set<String>(minimumCapacity: Int(entryCount))
        var previousEnd = dataStart
        var previousName = "(index)"
        for i in 0..<Int(entryCount) {
            let e = RawEntry(reading: p + Int(tableOffset) + i * GLWLayout.entrySize)
            // Name.
            guard e.nameLength >= 1, Int(e.nameLength) <= GLWLayout.maxNameLength else {
                throw WeightFormatError.badName(index: i, reason: "length \(e.nameLength) not in 1...\(GLWLayout.maxNameLength)")
            }
            let (nameEnd, o1) = e.nameOffset.addingReportingOverflow(UInt64(e.nameLength))
            guard !o1, nameEnd <= namesLength else {
                throw WeightFormatError.badName(index: i, reason: "bytes \(e.nameOffset)..<\(e.nameOffset &+ UInt64(e.nameLength)) outside the \(namesLength)-byte name table")
            }
            let nameBytes = UnsafeRawBufferPointer(start: p + Int(namesOffset + e.nameOffset), count: Int(e.nameLength))
            guard let name = String(validating: nameBytes.bindMemory(to: UInt8.self), as: UTF8.self) else {
                throw WeightFormatError.badName(index: i, reason: "not valid UTF-8")
            }
            guard seen.insert(name).inserted else { throw WeightFormatError.duplicateName(name: name) }

            // Kind, dtype, reserved fields.
            let isFile = e.flags & GLWLayout.flagFile != 0
            guard e.flags & ~GLWLayout.flagFile == 0 else { throw WeightFormatError.badReservedField(tensor: name, field: "flags", value: UInt64(e.flags)) }
            guard e.reserved == 0 else { throw WeightFormatError.badReservedField(tensor: name, field: "reserved", value: e.reserved) }
            guard e.quantBlock == 0 else { throw WeightFormatError.badReservedField(tensor: name, field: "quant_block", value: UInt64(e.quantBlock)) }
            let elementSize: UInt64
            var dtype: WeightDType? = nil
            if isFile {
                guard e.dtype == GLWLayout.dtypeU8 else { throw WeightFormatError.unknownDType(tensor: name, code: e.dtype) }
                guard e.rank == 1 else { throw WeightFormatError.badShape(tensor: name, shape: Array(e.shape.prefix(Int(min(e.rank, 8)))), reason: "an embedded file has rank 1") }
                elementSize = 1
            } else {
                guard let t = WeightDType(rawValue: e.dtype) else { throw WeightFormatError.unknownDType(tensor: name, code: e.dtype) }
                dtype = t
                elementSize = UInt64(t.byteWidth)
            }

            // Shape and length.
            guard Int(e.rank) <= GLWLayout.maxRank else {
                throw WeightFormatError.badShape(tensor: name, shape: e.shape, reason: "rank \(e.rank) > \(GLWLayout.maxRank)")
            }
            let dims = Array(e.shape.prefix(Int(e.rank)))
            if let k = e.shape[Int(e.rank)...].firstIndex(where: { $0 != 0 }) {
                throw WeightFormatError.badShape(tensor: name, shape: dims, reason: "unused shape slot \(k) is \(e.shape[k]), must be 0")
            }
            var count: UInt64 = 1
            for d in dims {
                guard d <= GLWLayout.maxDimension else {
                    throw WeightFormatError.badShape(tensor: name, shape: dims, reason: "dimension \(d) > 2^40")
                }
                let (c, o) = count.multipliedReportingOverflow(by: d)
                guard !o else { throw WeightFormatError.badShape(tensor: name, shape: dims, reason: "element count overflows 64 bits") }
                count = c
            }
            let (expectedLength, o2) = count.multipliedReportingOverflow(by: elementSize)
            guard !o2, expectedLength <= fsize else {
                throw WeightFormatError.badShape(tensor: name, shape: dims, reason: "needs more bytes than the \(fsize)-byte file holds")
            }
            guard e.dataLength == expectedLength else { throw WeightFormatError.badLength(tensor: name, expected: expectedLength, actual: e.dataLength) }

            // Offsets.
            guard e.dataOffset % align == 0 else { throw WeightFormatError.misaligned(tensor: name, offset: e.dataOffset, alignment: align) }
            guard e.dataOffset >= previousEnd else {
                throw WeightFormatError.overlap(tensor: name, previous: previousName, offset: e.dataOffset, previousEnd: previousEnd)
            }
            guard e.dataOffset <= fsize, e.dataLength <= fsize - e.dataOffset else {
                throw WeightFormatError.truncated(tensor: name, end: e.dataOffset &+ e.dataLength, fileSize: fsize)
            }
            var end = e.dataOffset + e.dataLength
            if dtype == .int8 {
                guard dims.count >= 2 else { throw WeightFormatError.badShape(tensor: name, shape: dims, reason: "an int8 tensor has rank >= 2") }
                let so = roundUp(end, GLWLayout.scalesAlignment)!
                let sl = dims[0] * 4
                guard e.scalesOffset == so, e.scalesLength == sl else {
                    throw WeightFormatError.badScales(tensor: name, expectedOffset: so, expectedLength: sl, actualOffset: e.scalesOffset, actualLength: e.scalesLength)
                }
                guard so <= fsize, sl <= fsize - so else { throw WeightFormatError.truncated(tensor: name, end: so &+ sl, fileSize: fsize) }
                end = so + sl
            } else if e.scalesOffset != 0 || e.scalesLength != 0 {
                throw WeightFormatError.badScales(tensor: name, expectedOffset: 0, expectedLength: 0, actualOffset: e.scalesOffset, actualLength: e.scalesLength)
            }
            previousEnd = end
            previousName = name
            entries.append(e)
            names.append(name)
        }
        guard previousEnd == fsize else {
            if previousEnd < fsize { throw WeightFormatError.trailingBytes(expectedEnd: previousEnd, fileSize: fsize) }
            throw WeightFormatError.truncated(tensor: previousName, end: previousEnd, fileSize: fsize)
        }
        let position = metadata.activationBits.isEmpty ? [:] : Dictionary(uniqueKeysWithValues: names.enumerated().map { ($1, $0) })
        for (name, bits) in metadata.activationBits.sorted(by: { $0.key < $1.key }) {
            guard let i = position[name], entries[i].flags & GLWLayout.flagFile == 0 else {
                throw WeightFormatError.badActivationBits(tensor: name, expected: "a tensor of the file", actual: "no such tensor")
            }
            guard entries[i].dtype == WeightDType.int8.rawValue else {
                let dt = WeightDType(rawValue: entries[i].dtype)?.description ?? "dtype \(entries[i].dtype)"
                throw WeightFormatError.badActivationBits(tensor: name, expected: "an int8 tensor", actual: "a \(dt) tensor")
            }
            guard bits == 8 || bits == 16 else {
                throw WeightFormatError.badActivationBits(tensor: name, expected: "8 or 16", actual: String(bits))
            }
        }
        return Parsed(version: version, alignment: Int(align), metadata: metadata, entries: entries, names: names)
    }

    /// Parses the metadata JSON with json-c and extracts `format`, `model` and `hyperparameters`.
    static func parseMetadata(_ bytes: UnsafeRawBufferPointer) throws -> Metadata {
        guard let json = String(validating: bytes.bindMemory(to: UInt8.self), as: UTF8.self) else {
            throw WeightFormatError.badMetadata(reason: "not valid UTF-8")
        }
        guard let tok = json_tokener_new_ex(64) else { throw WeightFormatError.badMetadata(reason: "json-c could not allocate a tokenizer") }
        defer { json_tokener_free(tok) }
        let obj = bytes.withMemoryRebound(to: CChar.self) { json_tokener_parse_ex(tok, $0.baseAddress, Int32(bytes.count)) }
        guard let obj, json_tokener_get_error(tok) == json_tokener_success else {
            let err = json_tokener_get_error(tok)
            let msg = json_tokener_error_desc(err).map { String(cString: $0) } ?? "parse error"
            throw WeightFormatError.badMetadata(reason: "JSON: \(msg)")
        }
        defer { json_object_put(obj) }
        guard json_tokener_get_parse_end(tok) == bytes.count else {
            throw WeightFormatError.badMetadata(reason: "extra bytes after the JSON object at \(json_tokener_get_parse_end(tok))")
        }
        guard json_object_get_type(obj) == json_type_object else { throw WeightFormatError.badMetadata(reason: "not a JSON object") }
        var format: OpaquePointer? = nil
        guard json_object_object_get_ex(obj, "format", &format) != 0, json_object_get_type(format) == json_type_string,
              String(cString: json_object_get_string(format)) == "glw" else {
            throw WeightFormatError.badMetadata(reason: "missing \"format\": \"glw\"")
        }
        var model: String? = nil
        var m: OpaquePointer? = nil
        if json_object_object_get_ex(obj, "model", &m) != 0, json_object_get_type(m) == json_type_string {
            model = String(cString: json_object_get_string(m))
        }
        var hp: [String: HyperValue] = [:]
        var h: OpaquePointer? = nil
        if json_object_object_get_ex(obj, "hyperparameters", &h) != 0 {
            guard json_object_get_type(h) == json_type_object else { throw WeightFormatError.badMetadata(reason: "\"hyperparameters\" is not an object") }
            hp = try scalarMembers(h)
        }
        return Metadata(json: json, hyperparameters: hp, model: model, activationBits: try activationBits(obj))
    }

    /// `quantization.tensors.<name>.activation_bits` of every tensor that has one (values checked by `parse`).
    static func activationBits(_ obj: OpaquePointer?) throws -> [String: Int] {
        var q: OpaquePointer? = nil, ts: OpaquePointer? = nil
        guard json_object_object_get_ex(obj, "quantization", &q) != 0, json_object_get_type(q) == json_type_object,
              json_object_object_get_ex(q, "tensors", &ts) != 0, json_object_get_type(ts) == json_type_object else { return [:] }
        var bits: [String: Int] = [:]
        var it = json_object_iter_begin(ts)
        var end = json_object_iter_end(ts)
        while json_object_iter_equal(&it, &end) == 0 {
            let name = String(cString: json_object_iter_peek_name(&it))
            let entry = json_object_iter_peek_value(&it)
            var b: OpaquePointer? = nil
            if json_object_get_type(entry) == json_type_object, json_object_object_get_ex(entry, "activation_bits", &b) != 0 {
                guard json_object_get_type(b) == json_type_int else {
                    let text = json_object_to_json_string(b).map { String(cString: $0) } ?? "?"
                    throw WeightFormatError.badActivationBits(tensor: name, expected: "8 or 16", actual: text)
                }
                bits[name] = Int(json_object_get_int64(b))
            }
            json_object_iter_next(&it)
        }
        return bits
    }

    /// The members of a json-c object whose values are numbers, strings or bools (ints and doubles kept apart).
    static func scalarMembers(_ h: OpaquePointer?) throws -> [String: HyperValue] {
        var hp: [String: HyperValue] = [:]
        var it = json_object_iter_begin(h)
        var end = json_object_iter_end(h)
        while json_object_iter_equal(&it, &end) == 0 {
            let key = String(cString: json_object_iter_peek_name(&it))
            let v = json_object_iter_peek_value(&it)
            switch json_object_get_type(v) {
            case json_type_int: hp[key] = .int(Int(json_object_get_int64(v)))
            case json_type_double: hp[key] = .double(json_object_get_double(v))
            case json_type_boolean: hp[key] = .bool(json_object_get_boolean(v) != 0)
            case json_type_string: hp[key] = .string(String(cString: json_object_get_string(v)))
            default: throw WeightFormatError.badMetadata(reason: "hyperparameter \(key) is not a number, string or bool")
            }
            json_object_iter_next(&it)
        }
        return hp
    }

    /// Parses a JSON object of option name -> number, string or bool with json-c, keeping `1` (int) and `1.0`
    /// (double) apart. Used for options files; throws `badMetadata` for anything else.
    public static func parseHyperparameters(json: String) throws -> [String: HyperValue] {
        let bytes = Array(json.utf8)
        guard let tok = json_tokener_new_ex(64) else { throw WeightFormatError.badMetadata(reason: "json-c could not allocate a tokenizer") }
        defer { json_tokener_free(tok) }
        let obj = bytes.withUnsafeBufferPointer { b in
            b.withMemoryRebound(to: CChar.self) { json_tokener_parse_ex(tok, $0.baseAddress, Int32(b.count)) }
        }
        guard let obj, json_tokener_get_error(tok) == json_tokener_success, json_tokener_get_parse_end(tok) == bytes.count
              || bytes[json_tokener_get_parse_end(tok)...].allSatisfy({ $0 == 0x20 || $0 == 0x0A || $0 == 0x0D || $0 == 0x09 }) else {
            throw WeightFormatError.badMetadata(reason: "not valid JSON")
        }
        defer { json_object_put(obj) }
        guard json_object_get_type(obj) == json_type_object else { throw WeightFormatError.badMetadata(reason: "not a JSON object") }
        return try scalarMembers(obj)
    }
}
