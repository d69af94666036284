// torch checkpoint -> .glw, and .glw -> .glw requantization: streaming, one tensor at a time,
// bounded memory, deterministic output, atomic replacement of the destination.
import ElementConversion
import Foundation
#if canImport(Glibc)
import Glibc
#endif
import Checkpoint
import WeightFormat

/// Settings for `convertCheckpoint` and `requantize`.
public struct ConversionOptions {
    /// Requested type: f32, f16, bf16 or int8 (per-tensor exceptions follow glw-policy-2).
    public var target: WeightDType = .f32
    /// int8 files: how each int8 tensor's `activation_bits` is chosen (default: by layer role).
    public var int8Activations: Int8ActivationChoice = .role
    /// Options JSON (reference option names) for GLIDE models that are not the released ones.
    public var configPath: String? = nil
    /// Folder holding the tokenizer files to embed.
    public var tokenizerDirectory: String? = nil
    /// Replace an existing destination.
    public var overwrite = false
    /// Alignment of tensor offsets in the output.
    public var alignment = GLWLayout.defaultAlignment
    /// Called with (phase, bytes done, bytes total) as work proceeds.
    public var progress: ((String, Int, Int) -> Void)? = nil
    /// Called with each warning as it arises.
    public var warn: (String) -> Void = { _ in }

    public init() {}
}

/// What a conversion did.
public struct ConversionSummary: Sendable {
    public var model: String
    public var tensorCount: Int
    public var sourceBytes: Int
    public var outputBytes: Int
    /// Number of tensors stored as each type.
    public var storedTypes: [String: Int]
    public var warnings: [String]
    public var sourceSHA256: String
}

/// Version string recorded in provenance.
public let converterVersion = "glide-swift convert 1"

/// Converts a `torch.save` checkpoint (zip or legacy) at `source` to a `.glw` file at `destination`.
public func convertCheckpoint(source: String, destination: String, options: ConversionOptions) throws -> ConversionSummary {
    try refuseSameFile(source, destination)
    let ckpt = try TorchCheckpoint(path: source, verifyChecksums: false)   // stored-entry CRCs are checked in the hashing pass
    var warnings: [String] = []
    func warn(_ s: String) { warnings.append(s); options.warn(s) }
    removeStaleTemporaries(besides: destination, warn: warn)

    let tensors = SourceTensor.all(from: ckpt)
    var config: [String: HyperValue]? = nil
    if let p = options.configPath { config = try loadConfig(p) }
    let description = try ModelRecognizer.describe(tensors: tensors.map { ($0.name, $0.shape) }, config: config)
    description.warnings.forEach(warn)

    // Hash the source and check the CRC of every stored zip entry in one sequential read.
    let dir = ckpt.archivePrefix.map { $0.isEmpty ? "" : $0 + "/" } ?? ""
    let storedEntries = ckpt.zipEntries.filter { $0.method == 0 && $0.crc32 != 0 && $0.name.hasPrefix(dir + "data/") }
        .map { (name: $0.name, offset: $0.dataOffset, size: $0.uncompressedSize, crc: $0.crc32) }
    // This runs on a second thread while the tensors are converted; the digest is filled in at the end.
    let hasher = BackgroundHasher(path: source, checking: storedEntries)
    let size = ckpt.fileSize

    let provenance: (String) -> JSONValue = { sha in
        var p: [String: JSONValue] = [
            "converter": .string(converterVersion),
            "source": .object(["name": .string((source as NSString).lastPathComponent), "size": .int(size),
                               "sha256": .string(sha), "format": .string(ckpt.format.rawValue)]),
        ]
        if let prefix = ckpt.archivePrefix, !prefix.isEmpty { p["archive_prefix"] = .string(prefix) }
        return .object(p)
    }

    var modelJSON: [String: JSONValue] = [
        "model": .string(description.model),
        "hyperparameters": .object(description.hyperparameters.mapValues(\.json)),
    ]
    let embedded = try tokenizerFiles(for: description, directory: options.tokenizerDirectory, warn: warn)
    if let kind = description.tokenizerKind {
        modelJSON["tokenizer"] = .object(["kind": .string(kind), "files": .array(embedded.map { .string($0.name) })])
    }
    return try writeGLW(tensors: tensors, destination: destination, modelJSON: modelJSON, provenance: provenance,
                        hasher: hasher, embedded: embedded, model: description.model, sourceBytes: size,
                        options: options, warnings: &warnings)
}

/// Rewrites a `.glw` file with another requested type, without the original checkpoint.
/// Going to a wider type than a tensor has (e.g. int8 -> f32) is allowed but cannot restore lost precision; a warning says so.
public func requantize(source: String, destination: String, options: ConversionOptions) throws -> ConversionSummary {
    try refuseSameFile(source, destination)
    let file = try WeightFile(path: source, verifyChecksums: false)
    var warnings: [String] = []
    func warn(_ s: String) { warnings.append(s); options.warn(s) }
    removeStaleTemporaries(besides: destination, warn: warn)
    try file.verifyChecksums()   // never requantize damaged bytes
    let hasher = BackgroundHasher(path: source, checking: [])
    let size = file.fileSize

    let old = (try? JSONValue.parse(file.metadataJSON)) ?? .object([:])
    var modelJSON: [String: JSONValue] = [:]
    for key in ["model", "tokenizer"] { if let v = old[key] { modelJSON[key] = v } }
    modelJSON["hyperparameters"] = .object(file.hyperparameters.mapValues(\.json))   // json-c keeps 100.0 a double
    let provenance: (String) -> JSONValue = { sha in
        var p: [String: JSONValue] = [
            "converter": .string(converterVersion),
            "source": .object(["name": .string((source as NSString).lastPathComponent), "size": .int(size),
                               "sha256": .string(sha), "format": .string("glw")]),
        ]
        if let d = old["provenance"] { p["derived_from"] = d }
        return .object(p)
    }

    let lossy = file.tensors.filter { t in
        let rule = QuantizationPolicy.rule(name: t.name, shape: t.shape, isFloat: SourceElement(t.dtype).isFloat)
        let stored = rule == .nonFloat ? t.dtype : QuantizationPolicy.storedType(rule: rule, target: options.target)
        return precisionRank(t.dtype) < precisionRank(stored)
    }
    if !lossy.isEmpty {
        let kinds = Set(lossy.map(\.dtype.description)).sorted().joined(separator: "/")
        warn("\(lossy.count) tensors are \(kinds) in the source and become \(options.target) or wider: this is lossy, the original precision is not restored (the values are the dequantized \(kinds) values)")
    }
    let embedded = file.embeddedFiles.map { (name: String($0.name.dropFirst(GLWLayout.tokenizerPrefix.count)), bytes: Array($0.bytes)) }
    return try writeGLW(tensors: SourceTensor.all(from: file), destination: destination, modelJSON: modelJSON,
                        provenance: provenance, hasher: hasher, embedded: embedded,
                        model: file.modelName ?? "tensors", sourceBytes: size, options: options, warnings: &warnings)
}

/// Removes the temporary files that killed conversions (SIGKILL, power cut) left in the destination's folder,
/// saying so through `warn`.
func removeStaleTemporaries(besides destination: String, warn: (String) -> Void) {
    for t in WeightFileWriter.removeStaleTemporaries(besides: destination) {
        warn("removed \(t.path) (\(formatBytes(t.byteCount))), the temporary file of an interrupted conversion by process \(t.pid), which no longer runs")
    }
}

private func precisionRank(_ t: WeightDType) -> Int {
    switch t { case .int8: return 0; case .f16, .bf16: return 1; default: return 2 }
}

/// Reads the options file: a JSON object of option name -> number, string or bool.
func loadConfig(_ path: String) throws -> [String: HyperValue] {
    guard let data = FileManager.default.contents(atPath: path) else {
        throw ConverterError.io(path: path, operation: "open", errno: errno == 0 ? ENOENT : errno)
    }
    do {
        return try WeightFile.parseHyperparameters(json: String(decoding: data, as: UTF8.self))
    } catch let WeightFormatError.badMetadata(reason) {
        throw ConverterError.invalidConfig(path: path, reason: reason)
    }
}

private func tokenizerFiles(for d: ModelDescription, directory: String?, warn: (String) -> Void) throws -> [(name: String, bytes: [UInt8])] {
    guard let directory else { return [] }
    guard d.tokenizerKind != nil else {
        warn("the tokenizer directory is ignored: no tokenizer is known for plain tensors")
        return []
    }
    return try d.tokenizerFiles.map { name in
        let path = (directory as NSString).appendingPathComponent(name)
        guard let data = FileManager.default.contents(atPath: path) else { throw ConverterError.tokenizerFileMissing(path: path) }
        return (name, [UInt8](data))
    }
}

private func refuseSameFile(_ a: String, _ b: String) throws {
    var sa = stat(), sb = stat()
    if stat(a, &sa) == 0, stat(b, &sb) == 0, sa.st_dev == sb.st_dev, sa.st_ino == sb.st_ino {
        throw ConverterError.sameSourceAndDestination(path: b)
    }
}

/// SHA-256 and size of a file read sequentially; checks the CRC-32 of the given byte ranges on the way.
func hashFile(_ path: String, checking ranges: [(name: String, offset: Int, size: Int, crc: UInt32)],
              progress: ((String, Int, Int) -> Void)?) throws -> (String, Int) {
    let fd = open(path, O_RDONLY | O_CLOEXEC)
    guard fd >= 0 else { throw ConverterError.io(path: path, operation: "open", errno: errno) }
    defer { close(fd) }
    var st = stat()
    fstat(fd, &st)
    let total = Int(st.st_size)
    _ = posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL)
    let bufSize = 4 << 20
    let buf = UnsafeMutableRawPointer.allocate(byteCount: bufSize, alignment: 4096)
    defer { buf.deallocate() }
    let sha = FastSHA256()
    let sorted = ranges.sorted { $0.offset < $1.offset }
    var crcs = [UInt32](repeating: 0, count: sorted.count)
    var firstOpen = 0   // ranges before this index end before the current position
    var pos = 0
    while true {
        let n = read(fd, buf, bufSize)
        if n < 0 { if errno == EINTR { continue }; throw ConverterError.io(path: path, operation: "read", errno: errno) }
        if n == 0 { break }
        let chunk = UnsafeRawBufferPointer(start: buf, count: n)
        sha.update(chunk)
        var i = firstOpen
        while i < sorted.count, sorted[i].offset < pos + n {
            let r = sorted[i]
            let a = max(r.offset, pos), b = min(r.offset + r.size, pos + n)
            if b > a { crcs[i] = glwCRC32(UnsafeRawBufferPointer(rebasing: chunk[(a - pos)..<(b - pos)]), continuing: crcs[i]) }
            if r.offset + r.size <= pos + n {
                if crcs[i] != r.crc { throw ConverterError.sourceChecksumMismatch(entry: r.name, expected: r.crc, actual: crcs[i]) }
                if i == firstOpen { firstOpen += 1 }
            }
            i += 1
        }
        pos += n
        progress?("hashing", pos, total)
    }
    for (i, r) in sorted.enumerated() where r.offset + r.size > pos {
        throw ConverterError.sourceChecksumMismatch(entry: r.name, expected: r.crc, actual: crcs[i])
    }
    // The hashing read filled the page cache; keep it (the conversion reads the same pages next).
    return (sha.finalizeHex(), pos)
}

/// Runs `hashFile` on its own thread (the conversion runs meanwhile); `wait()` returns the digest or rethrows.
final class BackgroundHasher: @unchecked Sendable {
    private let done = DispatchSemaphore(value: 0)
    private var result: Result<String, Error> = .success("")
    private var finished = false

    init(path: String, checking ranges: [(name: String, offset: Int, size: Int, crc: UInt32)]) {
        let thread = Thread { [self] in
            result = Result { try hashFile(path, checking: ranges, progress: nil).0 }
            done.signal()
        }
        thread.stackSize = 1 << 20
        thread.start()
    }

    /// Blocks until the hash is done (repeatable).
    func wait() throws -> String {
        if !finished { done.wait(); finished = true }
        return try result.get()
    }
}

/// Plans, writes and commits the output file.
private func writeGLW(tensors: [SourceTensor], destination: String, modelJSON: [String: JSONValue],
                      provenance: (String) -> JSONValue, hasher: BackgroundHasher,
                      embedded: [(name: String, bytes: [UInt8])], model: String, sourceBytes: Int,
                      options: ConversionOptions, warnings: inout [String]) throws -> ConversionSummary {
    defer { _ = try? hasher.wait() }
    guard [.f32, .f16, .bf16, .int8].contains(options.target) else {
        throw ConverterError.unsupportedTargetType(options.target.description)
    }
    var plans: [WeightEntryPlan] = []
    var perTensor: [String: JSONValue] = [:]
    var stored: [WeightDType] = []
    var counts: [String: Int] = [:]
    for t in tensors {
        let rule = QuantizationPolicy.rule(name: t.name, shape: t.shape, isFloat: t.element.isFloat)
        var dtype = QuantizationPolicy.storedType(rule: rule, target: options.target)
        if rule == .nonFloat { dtype = t.element == .bool ? .bool : .i64 }
        if t.element == .i32 || t.element == .i16 || t.element == .i8 || t.element == .u8 {
            let w = "tensor '\(t.name)' (\(t.element.rawValue)) is stored widened to int64"
            warnings.append(w); options.warn(w)
        }
        plans.append(.tensor(t.name, dtype, t.shape))
        stored.append(dtype)
        counts[dtype.description, default: 0] += 1
        var entry: [String: JSONValue] = ["dtype": .string(dtype.description), "rule": .string(rule.rawValue),
                                          "source_dtype": .string(t.element.glwName)]
        if dtype == .int8 { entry["activation_bits"] = .int(options.int8Activations.bits(name: t.name)) }
        perTensor[t.name] = .object(entry)
    }
    for f in embedded { plans.append(.file(GLWLayout.tokenizerPrefix + f.name, byteCount: f.bytes.count)) }

    var meta = modelJSON
    meta["format"] = .string("glw")
    var quantization: [String: JSONValue] = ["requested": .string(options.target.description), "policy": .string(QuantizationPolicy.name),
                                             "rules": QuantizationPolicy.rulesJSON, "tensors": .object(perTensor)]
    if stored.contains(.int8) { quantization["int8_activations"] = .string(options.int8Activations.rawValue) }
    meta["quantization"] = .object(quantization)
    func metadata(sha: String) -> String {
        var m = meta
        m["provenance"] = provenance(sha)
        return JSONValue.object(m).encoded
    }
    // Planned with a placeholder digest of the same length; the real one is written by finish().
    let writer = try WeightFileWriter(destination: destination, overwrite: options.overwrite,
                                      metadataJSON: metadata(sha: String(repeating: "0", count: 64)), entries: plans,
                                      alignment: options.alignment)
    let streamer = TensorStreamer(writer: writer)
    var sha = ""
    do {
        for (i, t) in tensors.enumerated() {
            try streamer.stream(t, as: stored[i]) { options.progress?("writing", writer.bytesWritten, writer.totalBytes) }
        }
        for f in embedded { try f.bytes.withUnsafeBytes { try writer.write($0) } }
        sha = try hasher.wait()
        try writer.finish(metadataJSON: metadata(sha: sha))
    } catch {
        writer.abort()
        _ = try hasher.wait()   // a damaged source explains a failure better than its symptom
        throw error
    }
    options.progress?("writing", writer.totalBytes, writer.totalBytes)
    return ConversionSummary(model: model, tensorCount: tensors.count, sourceBytes: sourceBytes, outputBytes: writer.totalBytes,
                             storedTypes: counts, warnings: warnings, sourceSHA256: sha)
}

/// Converts tensors chunk by chunk into the writer, holding at most a few MiB and dropping source pages after use.
final class TensorStreamer {
    let writer: WeightFileWriter
    static let chunkElements = 1 << 20
    private var floats: UnsafeMutablePointer<Float>
    private var floatCapacity: Int
    private var out: UnsafeMutableRawPointer
    private var outCapacity: Int

    init(writer: WeightFileWriter) {
        self.writer = writer
        floatCapacity = Self.chunkElements
        floats = .allocate(capacity: floatCapacity)
        outCapacity = Self.chunkElements * 8
        out = .allocate(byteCount: outCapacity, alignment: 64)
    }
    deinit { floats.deallocate(); out.deallocate() }

    private func reserve(elements n: Int) {
        if n > floatCapacity { floats.deallocate(); floats = .allocate(capacity: n); floatCapacity = n }
        if n * 8 > outCapacity { out.deallocate(); outCapacity = n * 8; out = .allocate(byteCount: outCapacity, alignment: 64) }
    }

    func stream(_ t: SourceTensor, as dtype: WeightDType, progress: () -> Void) throws {
        try t.withView { v in
            let n = t.elementCount
            let width = t.element.byteWidth
            if dtype == .int8 {
                try streamInt8(t, v, progress: progress)
                return
            }
            // Same encoding: copy bytes through.
            if (dtype == .f32 && t.element == .f32) || (dtype == .f16 && t.element == .f16) || (dtype == .bf16 && t.element == .bf16)
                || (dtype == .i64 && t.element == .i64) || (dtype == .bool && t.element == .bool) {
                var done = 0
                let total = n * width
                let step = Self.chunkElements * 4
                while done < total {
                    let k = min(step, total - done)
                    try writer.write(UnsafeRawBufferPointer(rebasing: v.bytes[done..<(done + k)]))
                    releasePages(v, byteOffset: done, count: k)
                    done += k
                    progress()
                }
                return
            }
            var start = 0
            while start < n {
                let k = min(Self.chunkElements, n - start)
                switch dtype {
                case .i64:
                    readInts(v, t.element, start: start, count: k, into: out.assumingMemoryBound(to: Int64.self))
                    try writer.write(UnsafeRawBufferPointer(start: out, count: k * 8))
                case .f32, .f16, .bf16:
                    readFloats(v, t.element, rowLength: t.rowLength, start: start, count: k, into: floats)
                    if dtype == .f32 {
                        try writer.write(UnsafeRawBufferPointer(start: floats, count: k * 4))
                    } else {
                        let h = out.assumingMemoryBound(to: UInt16.self)
                        if dtype == .f16 {
                            for i in 0..<k {
                                let x = floats[i]
                                let b = f32ToF16(x)
                                if b & 0x7C00 == 0x7C00, x.isFinite { throw ConverterError.valueOutOfRange(tensor: t.name, target: "f16", value: x) }
                                h[i] = b
                            }
                        } else {
                            for i in 0..<k { h[i] = f32ToBF16(floats[i]) }
                        }
                        try writer.write(UnsafeRawBufferPointer(start: out, count: k * 2))
                    }
                case .bool, .int8:
                    preconditionFailure("bool and int8 outputs are handled above")
                }
                releasePages(v, byteOffset: start * width, count: k * width)
                start += k
                progress()
            }
        }
    }

    private func streamInt8(_ t: SourceTensor, _ v: SourceView, progress: () -> Void) throws {
        let rows = t.shape[0]
        let k = t.rowLength
        reserve(elements: k)
        let rowsPerChunk = max(1, Self.chunkElements / max(k, 1))
        var scales = [Float](repeating: 0, count: rows)
        let q = out.assumingMemoryBound(to: Int8.self)
        var r = 0
        while r < rows {
            let nr = min(rowsPerChunk, rows - r)
            readFloats(v, t.element, rowLength: k, start: r * k, count: nr * k, into: floats)
            for j in 0..<nr {
                let row = UnsafeBufferPointer(start: floats + j * k, count: k)
                if let bad = row.first(where: { !$0.isFinite }) {
                    throw ConverterError.valueOutOfRange(tensor: t.name, target: "int8", value: bad)
                }
                scales[r + j] = quantizeRowInt8(row, into: q + j * k)
            }
            try writer.write(UnsafeRawBufferPointer(start: out, count: nr * k))
            releasePages(v, byteOffset: r * k * t.element.byteWidth, count: nr * k * t.element.byteWidth)
            r += nr
            progress()
        }
        try scales.withUnsafeBufferPointer { try writer.writeScales($0) }
    }
}
