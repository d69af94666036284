// Streaming writer for .glw files: one entry at a time, deterministic bytes, atomic replace of the destination.
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// One planned entry of a `.glw` file: a tensor (dtype + shape) or an embedded file (byte count).
public struct WeightEntryPlan: Sendable, Equatable {
    /// Entry name (tensor name, or `tokenizer/<file>` for an embedded file).
    public let name: String
    /// Tensor dtype; nil for an embedded file.
    public let dtype: WeightDType?
    /// Tensor shape; `[byteCount]` for an embedded file.
    public let shape: [Int]

    /// A tensor entry.
    public static func tensor(_ name: String, _ dtype: WeightDType, _ shape: [Int]) -> WeightEntryPlan {
        WeightEntryPlan(name: name, dtype: dtype, shape: shape)
    }
    /// An embedded-file entry of `byteCount` bytes.
    public static func file(_ name: String, byteCount: Int) -> WeightEntryPlan {
        WeightEntryPlan(name: name, dtype: nil, shape: [byteCount])
    }
    /// Number of elements.
    public var elementCount: Int { shape.reduce(1, *) }
    /// Bytes of the value array (int8: values only).
    public var valueByteCount: Int { elementCount * (dtype?.byteWidth ?? 1) }
}

/// Writes a `.glw` file entry by entry.
///
/// The file is written to a temporary file beside `destination` (`.<name>.tmp-<pid>`); `finish()`
/// writes the index, flushes to disk and renames it into place. If `finish()` is never reached
/// (an error, `abort()`, or the writer is released), the temporary file is removed and the
/// destination is untouched. Entries must be written in plan order: for each, `write(_:)` its
/// value bytes (in any number of chunks), then for int8 `writeScales(_:)` once.
public final class WeightFileWriter {
    /// Final path.
    public let destination: String
    /// Temporary path written until `finish()`.
    public let temporaryPath: String
    /// Size the finished file will have.
    public let totalBytes: Int
    /// Bytes of tensor data written so far (for progress).
    public var bytesWritten: Int { Int(position) }

    private let overwrite: Bool
    private var metadata: [UInt8]
    private var entries: [RawEntry]
    private let plans: [WeightEntryPlan]
    private let namesBlob: [UInt8]
    private let alignment: UInt64
    private let dataStart: UInt64
    private var fd: Int32
    private var finished = false

    private var current = 0              // index of the entry being written
    private var valuesDone: UInt64 = 0   // value bytes of the current entry written
    private var crc: UInt32 = 0          // running CRC of the current entry's region
    private var position: UInt64         // file offset of the next byte
    private let staging: UnsafeMutableRawPointer
    private let stagingCapacity = 1 << 20
    private var staged = 0
    private var stagedStart: UInt64

    /// Plans the layout and creates the temporary file.
    /// - Throws: `destinationExists` if `destination` exists and `overwrite` is false; `writerMisuse` for an impossible plan; `io`.
    public init(destination: String, overwrite: Bool = false, metadataJSON: String,
                entries plans: [WeightEntryPlan], alignment: Int = GLWLayout.defaultAlignment) throws {
        guard alignment >= 64, alignment <= 65536, alignment & (alignment - 1) == 0 else {
            throw WeightFormatError.writerMisuse(reason: "alignment \(alignment) is not a power of two in 64...65536")
        }
        if !overwrite, access(destination, F_OK) == 0 { throw WeightFormatError.destinationExists(path: destination) }
        self.destination = destination
        self.overwrite = overwrite
        self.alignment = UInt64(alignment)
        self.plans = plans
        metadata = Array(metadataJSON.utf8)
        guard !metadata.isEmpty, UInt64(metadata.count) <= GLWLayout.maxMetadataLength else {
            throw WeightFormatError.metadataTooLarge(length: UInt64(metadata.count), limit: GLWLayout.maxMetadataLength)
        }
        guard UInt64(plans.count) <= GLWLayout.maxEntryCount else {
            throw WeightFormatError.writerMisuse(reason: "\(plans.count) entries, more than \(GLWLayout.maxEntryCount)")
        }
        // Names and table layout.
        var names: [UInt8] = []
        var seen = Set<String>()
        var raws: [RawEntry] = []
        for p in plans {
            let nb = Array(p.name.utf8)
            guard nb.count >= 1, nb.count <= GLWLayout.maxNameLength else {
                throw WeightFormatError.writerMisuse(reason: "name '\(p.name)' is \(nb.count) bytes (1...\(GLWLayout.maxNameLength) allowed)")
            }
            guard seen.insert(p.name).inserted else { throw WeightFormatError.duplicateName(name: p.name) }
            guard p.shape.count <= GLWLayout.maxRank, p.shape.allSatisfy({ $0 >= 0 && UInt64($0) <= GLWLayout.maxDimension }) else {
                throw WeightFormatError.badShape(tensor: p.name, shape: p.shape.map { UInt64(max($0, 0)) }, reason: "rank > 8 or dimension out of range")
            }
            if p.dtype == .int8, p.shape.count < 2 {
                throw WeightFormatError.badShape(tensor: p.name, shape: p.shape.map { UInt64($0) }, reason: "an int8 tensor has rank >= 2")
            }
            var r = RawEntry()
            r.nameOffset = UInt64(names.count)
            r.nameLength = UInt32(nb.count)
            names += nb
            r.dtype = p.dtype?.rawValue ?? GLWLayout.dtypeU8
            r.flags = p.dtype == nil ? GLWLayout.flagFile : 0
            r.rank = UInt8(p.shape.count)
            for (i, d) in p.shape.enumerated() { r.shape[i] = UInt64(d) }
            r.dataLength = UInt64(p.valueByteCount)
            raws.append(r)
        }
        namesBlob = names
        let tableOffset = roundUp(UInt64(GLWLayout.headerSize + metadata.count), 8)!
        let namesEnd = tableOffset + UInt64(plans.count * GLWLayout.entrySize + names.count)
        dataStart = roundUp(namesEnd, self.alignment)!
        var cursor = dataStart
        for i in raws.indices {
            cursor = roundUp(cursor, self.alignment)!
            raws[i].dataOffset = cursor
            cursor += raws[i].dataLength
            if plans[i].dtype == .int8 {
                raws[i].scalesOffset = roundUp(cursor, GLWLayout.scalesAlignment)!
                raws[i].scalesLength = UInt64(plans[i].shape[0]) * 4
                cursor = raws[i].scalesOffset + raws[i].scalesLength
            }
        }
        entries = raws
        totalBytes = Int(cursor)

        // Temporary file beside the destination.
        temporaryPath = WeightFileWriter.temporaryPath(for: destination)
        var f = open(temporaryPath, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
        if f < 0, errno == EEXIST {   // left by a dead process with our pid
            unlink(temporaryPath)
            f = open(temporaryPath, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
        }
        guard f >= 0 else { throw WeightFormatError.io(path: temporaryPath, operation: "create", errno: errno) }
        fd = f
        position = dataStart
        stagedStart = dataStart
        staging = UnsafeMutableRawPointer.allocate(byteCount: stagingCapacity, alignment: 64)
        try skipEmptyEntries()
    }

    deinit {
        staging.deallocate()
        if !finished { discard() }
    }

    /// The temporary path a writer for `destination` uses in this process: `<dir>/.<name>.tmp-<pid>`.
    public static func temporaryPath(for destination: String) -> String {
        let slash = destination.lastIndex(of: "/")
        let dir = slash.map { String(destination[..<$0]) } ?? ""
        let base = slash.map { String(destination[destination.index(after: $0)...]) } ?? destination
        return (slash == nil ? "" : dir + "/") + "." + base + ".tmp-\(getpid())"
    }

    /// A temporary file left beside a destination by a writer whose process no longer runs
    /// (killed with SIGKILL, or by a power cut, before `finish()` or its cleanup ran).
    public struct StaleTemporary: Sendable, Equatable {
        /// Path of the removed file.
        public let path: String
        /// The process id encoded in its name (`.<name>.tmp-<pid>`).
        public let pid: Int32
        /// Its size when it was removed.
        public let byteCount: Int
    }

    /// Removes, in the folder of `destination`, the temporary files of writers (`.<name>.tmp-<pid>`, any name)
    /// whose process is gone, and returns them. Files of this process and of running processes are kept;
    /// a process id that now belongs to an unrelated process keeps its file too (it is removed once that
    /// process ends). Files this user cannot remove are skipped.
    @discardableResult
    public static func removeStaleTemporaries(besides destination: String) -> [StaleTemporary] {
        let slash = destination.lastIndex(of: "/")
        let dir = slash.map { String(destination[..<$0]) } ?? "."
        guard let d = opendir(dir.isEmpty ? "/" : dir) else { return [] }
        var names: [String] = []
        while let entry = readdir(d) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(decoding: raw.prefix(while: { $0 != 0 }), as: UTF8.self)
            }
            names.append(name)
        }
        closedir(d)
        var removed: [StaleTemporary] = []
        for name in names {
            guard let pid = temporaryOwner(name), pid != getpid(), pid > 0 else { continue }
            guard kill(pid, 0) != 0, errno == ESRCH else { continue }   // running (or not ours to ask about)
            let path = (dir.isEmpty ? "" : dir + "/") + name
            var st = stat()
            guard lstat(path, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG, st.st_uid == getuid() else { continue }
            if unlink(path) == 0 { removed.append(StaleTemporary(path: path, pid: pid, byteCount: Int(st.st_size))) }
        }
        return removed
    }

    /// The process id in a writer's temporary file name `.<name>.tmp-<pid>`, or nil for any other name.
    static func temporaryOwner(_ fileName: String) -> Int32? {
        let bytes = Array(fileName.utf8), marker = Array(".tmp-".utf8)
        guard bytes.first == UInt8(ascii: "."), bytes.count > marker.count + 2 else { return nil }
        guard let at = stride(from: bytes.count - marker.count, through: 2, by: -1)
            .first(where: { Array(bytes[$0..<($0 + marker.count)]) == marker }) else { return nil }
        let digits = String(decoding: bytes[(at + marker.count)...], as: UTF8.self)
        guard !digits.isEmpty, digits.count <= 10, digits.allSatisfy({ $0.isASCII && $0.isNumber }) else { return nil }
        return Int32(digits)
    }

    /// Name of the entry that the next `write` goes to, or nil when all entries are written.
    public var currentEntryName: String? { current < plans.count ? plans[current].name : nil }

    /// Appends value bytes to the current entry (tensor values or embedded-file bytes).
    public func write(_ bytes: UnsafeRawBufferPointer) throws {
        var rest = bytes
        while !rest.isEmpty {
            guard current < entries.count else { throw WeightFormatError.writerMisuse(reason: "more bytes than planned") }
            let e = entries[current]
            guard valuesDone < e.dataLength else {
                throw WeightFormatError.writerMisuse(reason: "'\(plans[current].name)' expects its scales, not more values")
            }
            let n = Int(min(UInt64(rest.count), e.dataLength - valuesDone))
            let chunk = UnsafeRawBufferPointer(rebasing: rest[0..<n])
            crc = glwCRC32(chunk, continuing: crc)
            try emit(chunk)
            valuesDone += UInt64(n)
            rest = UnsafeRawBufferPointer(rebasing: rest[n...])
            if valuesDone == e.dataLength {
                if plans[current].dtype == .int8 {
                    try emitZeros(upTo: e.scalesOffset, intoCRC: true)
                } else {
                    try completeEntry()
                }
            }
        }
    }

    /// Writes the per-row scales of the current int8 entry (after all its values).
    public func writeScales(_ scales: UnsafeBufferPointer<Float>) throws {
        guard current < entries.count, plans[current].dtype == .int8, valuesDone == entries[current].dataLength else {
            throw WeightFormatError.writerMisuse(reason: "scales written when no int8 tensor is waiting for them")
        }
        guard UInt64(scales.count) * 4 == entries[current].scalesLength else {
            throw WeightFormatError.writerMisuse(reason: "'\(plans[current].name)': \(scales.count) scales, expected \(entries[current].scalesLength / 4)")
        }
        var le = scales.map { $0.bitPattern.littleEndian }
        try le.withUnsafeMutableBytes { b in
            crc = glwCRC32(UnsafeRawBufferPointer(b), continuing: crc)
            try emit(UnsafeRawBufferPointer(b))
        }
        try completeEntry()
    }

    /// Writes the index, flushes the file to disk and moves it to `destination`.
    /// - Parameter metadataJSON: replacement metadata of exactly the planned byte length (e.g. to fill in a hash computed while writing).
    public func finish(metadataJSON: String? = nil) throws {
        guard !finished else { throw WeightFormatError.writerMisuse(reason: "finish called twice") }
        guard current == entries.count else {
            throw WeightFormatError.writerMisuse(reason: "finish before all entries were written (next: '\(plans[current].name)')")
        }
        if let m = metadataJSON {
            let b = Array(m.utf8)
            guard b.count == metadata.count else {
                throw WeightFormatError.writerMisuse(reason: "final metadata is \(b.count) bytes, planned \(metadata.count)")
            }
            metadata = b
        }
        try flush()
        var index = indexBytes()
        try index.withUnsafeMutableBytes { try pwriteAll(UnsafeRawBufferPointer($0), at: 0) }
        guard fsync(fd) == 0 else { throw WeightFormatError.io(path: temporaryPath, operation: "fsync", errno: errno) }
        guard close(fd) == 0 else { fd = -1; throw WeightFormatError.io(path: temporaryPath, operation: "close", errno: errno) }
        fd = -1
        try commit()
        finished = true
    }

    /// Abandons the file: removes the temporary file; the destination is untouched.
    public func abort() {
        if !finished { discard(); finished = true }
    }

    // MARK: - Internals

    private func discard() {
        if fd >= 0 { close(fd); fd = -1 }
        unlink(temporaryPath)
    }

    private func commit() throws {
        if overwrite {
            guard rename(temporaryPath, destination) == 0 else { throw WeightFormatError.io(path: destination, operation: "rename", errno: errno) }
        } else if link(temporaryPath, destination) == 0 {
            unlink(temporaryPath)
        } else {
            let e = errno
            if e == EEXIST { throw WeightFormatError.destinationExists(path: destination) }
            // File systems without hard links: check, then rename.
            guard access(destination, F_OK) != 0 else { throw WeightFormatError.destinationExists(path: destination) }
            guard rename(temporaryPath, destination) == 0 else { throw WeightFormatError.io(path: destination, operation: "rename", errno: errno) }
        }
        // Make the rename durable.
        let slash = destination.lastIndex(of: "/")
        let dir = slash.map { String(destination[..<$0]) } ?? "."
        let dfd = open(dir.isEmpty ? "/" : dir, O_RDONLY | O_CLOEXEC)
        if dfd >= 0 { _ = fsync(dfd); close(dfd) }
    }

    private func completeEntry() throws {
        entries[current].crc32 = crc
        current += 1
        valuesDone = 0
        crc = 0
        try skipEmptyEntries()
    }

    /// Moves past entries with nothing to write and pads up to the next entry's offset.
    private func skipEmptyEntries() throws {
        while current < entries.count {
            try emitZeros(upTo: entries[current].dataOffset, intoCRC: false)
            if entries[current].dataLength > 0 { return }
            if plans[current].dtype == .int8 {   // zero rows * K: scales may still exist
                try emitZeros(upTo: entries[current].scalesOffset, intoCRC: true)
                if entries[current].scalesLength > 0 { return }
            }
            entries[current].crc32 = crc
            current += 1
            crc = 0
        }
    }

    private func emitZeros(upTo offset: UInt64, intoCRC: Bool) throws {
        guard offset > position else { return }
        let n = Int(offset - position)
        let zeros = [UInt8](repeating: 0, count: n)
        try zeros.withUnsafeBytes { z in
            if intoCRC { crc = glwCRC32(z, continuing: crc) }
            try emit(z)
        }
    }

    private func emit(_ bytes: UnsafeRawBufferPointer) throws {
        if bytes.count >= stagingCapacity {
            try flush()
            try pwriteAll(bytes, at: position)
            position += UInt64(bytes.count)
            stagedStart = position
            return
        }
        if staged + bytes.count > stagingCapacity { try flush() }
        (staging + staged).copyMemory(from: bytes.baseAddress!, byteCount: bytes.count)
        staged += bytes.count
        position += UInt64(bytes.count)
    }

    private func flush() throws {
        if staged > 0 { try pwriteAll(UnsafeRawBufferPointer(start: staging, count: staged), at: stagedStart) }
        staged = 0
        stagedStart = position
    }

    private func pwriteAll(_ bytes: UnsafeRawBufferPointer, at offset: UInt64) throws {
        var done = 0
        while done < bytes.count {
            let n = pwrite(fd, bytes.baseAddress! + done, bytes.count - done, off_t(offset) + off_t(done))
            if n < 0 {
                if errno == EINTR { continue }
                throw WeightFormatError.io(path: destination, operation: "write", errno: errno)
            }
            if n == 0 { throw WeightFormatError.io(path: destination, operation: "write", errno: ENOSPC) }
            done += n
        }
    }

    /// Header, metadata, table, names and padding up to the data section, with the header CRC filled in.
    private func indexBytes() -> [UInt8] {
        let tableOffset = roundUp(UInt64(GLWLayout.headerSize + metadata.count), 8)!
        var b: [UInt8] = []
        b.reserveCapacity(Int(dataStart))
        b += GLWLayout.magic
        b.appendLE(GLWLayout.version)
        b.appendLE(UInt32(alignment))
        b.appendLE(UInt32(0))                       // header_crc32, filled below
        b.appendLE(UInt64(GLWLayout.headerSize))
        b.appendLE(UInt64(metadata.count))
        b.appendLE(tableOffset)
        b.appendLE(UInt64(entries.count))
        b.appendLE(tableOffset + UInt64(entries.count * GLWLayout.entrySize))
        b.appendLE(UInt64(namesBlob.count))
        b += metadata
        b += [UInt8](repeating: 0, count: Int(tableOffset) - b.count)
        for e in entries { e.encode(into: &b) }
        b += namesBlob
        b += [UInt8](repeating: 0, count: Int(dataStart) - b.count)
        let crc = b.withUnsafeBytes { glwCRC32($0) }
        b.setLE(crc, at: 12)
        return b
    }
}
