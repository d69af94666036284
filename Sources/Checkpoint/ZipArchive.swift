// A zip reader that trusts only the central directory: ZIP64 aware, stored entries as zero-copy slices,
// deflated entries inflated through zlib into a buffer of exactly the declared size.
import CZlib

/// One entry of a zip archive, as its central directory describes it.
public struct ZipEntryInfo: Sendable, Equatable {
    /// Full name inside the archive, e.g. `base/data/0`.
    public let name: String
    /// 0 stored, 8 deflate.
    public let method: Int
    /// CRC-32 of the uncompressed bytes; 0 means "not computed" and is not checked.
    public let crc32: UInt32
    /// Bytes of the entry's data in the file.
    public let compressedSize: Int
    /// Bytes after inflating (equal to `compressedSize` when stored).
    public let uncompressedSize: Int
    /// Offset of the entry's data in the file (after its local header).
    public let dataOffset: Int
}

struct ZipArchive {
    let file: ByteRegion
    let entries: [ZipEntryInfo]
    private let index: [String: Int]

    /// Output cap for entries whose size is not otherwise known (the pickle, small text entries).
    static let defaultEntryLimit = 1 << 30
    /// deflate cannot expand better than ~1032:1; a declared size beyond this is a lie.
    static let maxDeflateRatio = 1032

    init(file: ByteRegion) throws {
        self.file = file
        let b = file.bytes
        let size = b.count

        // End of central directory: last 22 + 65535 bytes, scanning backwards.
        guard let eocd = ZipArchive.findEndOfCentralDirectory(b) else {
            throw CheckpointError.noEndOfCentralDirectory(fileSize: size)
        }
        let diskNumber = Int(b.u16(eocd + 4)), cdDisk = Int(b.u16(eocd + 6))
        var entriesOnDisk = Int(b.u16(eocd + 8)), totalEntries = Int(b.u16(eocd + 10))
        var cdSize = Int(b.u32(eocd + 12)), cdOffset = Int(b.u32(eocd + 16))
        var cdLimit = eocd   // the central directory must end before this

        let needs64 = totalEntries == 0xFFFF || entriesOnDisk == 0xFFFF || cdSize == 0xFFFF_FFFF || cdOffset == 0xFFFF_FFFF
        let locator = eocd - 20
        if locator >= 0 && b.u32(locator) == 0x0706_4b50 {
            let disks = Int(b.u32(locator + 16))
            if disks > 1 { throw CheckpointError.multiDiskArchive(disks: disks) }
            let rec64 = b.u64(locator + 8)
            guard rec64 <= UInt64(locator), b.contains(offset: Int(rec64), length: 56), Int(rec64) + 56 <= locator else {
                throw CheckpointError.inconsistentZip64(field: "end of central directory offset",
                                                        expected: "a record before byte \(locator)", actual: "\(rec64)")
            }
            let r = Int(rec64)
            guard b.u32(r) == 0x0606_4b50 else {
                throw CheckpointError.inconsistentZip64(field: "end of central directory signature",
                                                        expected: "0x06064b50", actual: "0x" + String(b.u32(r), radix: 16))
            }
            let d64 = Int(b.u32(r + 16)), cd64Disk = Int(b.u32(r + 20))
            if d64 != 0 || cd64Disk != 0 { throw CheckpointError.multiDiskArchive(disks: max(d64, cd64Disk) + 1) }
            func big(_ at: Int, _ field: String) throws -> Int {
                let v = b.u64(at)
                guard v <= UInt64(Int.max / 2) else {
                    throw CheckpointError.inconsistentZip64(field: field, expected: "a plausible value", actual: "\(v)")
                }
                return Int(v)
            }
            let onDisk64 = try big(r + 24, "entries on disk"), total64 = try big(r + 32, "total entries")
            let size64 = try big(r + 40, "central directory size"), offset64 = try big(r + 48, "central directory offset")
            // Where the classic record holds a real value, it must agree with the ZIP64 one.
            func agree(_ classic: Int, _ sentinel: Int, _ v64: Int, _ field: String) throws {
                if classic != sentinel && classic != v64 {
                    throw CheckpointError.inconsistentZip64(field: field, expected: "\(classic)", actual: "\(v64)")
                }
            }
            try agree(entriesOnDisk, 0xFFFF, onDisk64, "entries on disk")
            try agree(totalEntries, 0xFFFF, total64, "total entries")
            try agree(cdSize, 0xFFFF_FFFF, size64, "central directory size")
            try agree(cdOffset, 0xFFFF_FFFF, offset64, "central directory offset")
            entriesOnDisk = onDisk64; totalEntries = total64; cdSize = size64; cdOffset = offset64
            cdLimit = r
        } else if needs64 {
            throw CheckpointError.inconsistentZip64(field: "end of central directory locator",
                                                    expected: "present (classic record holds 0xFFFF.. markers)", actual: "absent")
        } else if diskNumber != 0 || cdDisk != 0 {
            throw CheckpointError.multiDiskArchive(disks: max(diskNumber, cdDisk) + 1)
        }
        guard entriesOnDisk == totalEntries else { throw CheckpointError.multiDiskArchive(disks: 2) }
        guard cdOffset <= cdLimit, cdSize <= cdLimit - cdOffset else {
            throw CheckpointError.truncated(what: "central directory", offset: cdOffset, needed: cdSize,
                                            available: max(0, cdLimit - cdOffset))
        }
        guard totalEntries <= cdSize / 46 else {
            throw CheckpointError.invalidCentralDirectory(offset: cdOffset,
                reason: "\(totalEntries) entries cannot fit in \(cdSize) bytes")
        }

        var entries: [ZipEntryInfo] = []
        entries.reserveCapacity(totalEntries)
        var index: [String: Int] = [:]
        var p = cdOffset
        let cdEnd = cdOffset + cdSize
        for _ in 0..<totalEntries {
            guard p <= cdEnd - 46 else {
                throw CheckpointError.invalidCentralDirectory(offset: p, reason: "entry header runs past the directory end")
            }
            guard b.u32(p) == 0x0201_4b50 else {
                throw CheckpointError.invalidCentralDirectory(offset: p, reason: "bad entry signature 0x" + String(b.u32(p), radix: 16))
            }
            let flags = Int(b.u16(p + 8)), method = Int(b.u16(p + 10))
            let crc = b.u32(p + 16)
            var csize = Int(b.u32(p + 20)), usize = Int(b.u32(p + 24))
            let nameLen = Int(b.u16(p + 28)), extraLen = Int(b.u16(p + 30)), commentLen = Int(b.u16(p + 32))
            let diskStart = Int(b.u16(p + 34))
            var localOffset = Int(b.u32(p + 42))
            let varLen = nameLen + extraLen + commentLen
            guard varLen <= cdEnd - (p + 46) else {
                throw CheckpointError.invalidCentralDirectory(offset: p, reason: "name/extra/comment run past the directory end")
            }
            let nameBytes = b.slice(p + 46, nameLen)
            let name = decodeUTF8(nameBytes) ?? String(decoding: nameBytes, as: UTF8.self)

            // ZIP64 extended information: the fields whose classic value is the 0xFFFFFFFF marker, in order.
            var want: [String] = []
            if usize == 0xFFFF_FFFF { want.append("uncompressed size") }
            if csize == 0xFFFF_FFFF { want.append("compressed size") }
            if localOffset == 0xFFFF_FFFF { want.append("local header offset") }
            if diskStart == 0xFFFF { want.append("disk start") }
            var found64 = false
            var e = p + 46 + nameLen
            let extraEnd = e + extraLen
            while e < extraEnd {
                guard extraEnd - e >= 4 else {
                    throw CheckpointError.invalidCentralDirectory(offset: e, reason: "extra field header of '\(name)' is cut short")
                }
                let id = b.u16(e), len = Int(b.u16(e + 2))
                guard len <= extraEnd - (e + 4) else {
                    throw CheckpointError.invalidCentralDirectory(offset: e, reason: "extra field of '\(name)' runs past its end")
                }
                if id == 0x0001 && !found64 {
                    found64 = true
                    var q = e + 4
                    let needed = want.filter { $0 != "disk start" }.count * 8 + (want.contains("disk start") ? 4 : 0)
                    guard len >= needed else {
                        throw CheckpointError.inconsistentZip64(field: "extra field of '\(name)'",
                                                                expected: "\(needed) bytes", actual: "\(len) bytes")
                    }
                    for field in want {
                        if field == "disk start" { q += 4; continue }
                        let v = b.u64(q); q += 8
                        guard v <= UInt64(Int.max / 2) else {
                            throw CheckpointError.inconsistentZip64(field: "\(field) of '\(name)'", expected: "a plausible value", actual: "\(v)")
                        }
                        switch field {
                        case "uncompressed size": usize = Int(v)
                        case "compressed size": csize = Int(v)
                        default: localOffset = Int(v)
                        }
                    }
                }
                e += 4 + len
            }
            if !want.isEmpty && !found64 {
                throw CheckpointError.inconsistentZip64(field: "extra field of '\(name)'",
                                                        expected: "ZIP64 values for " + want.joined(separator: ", "), actual: "absent")
            }
            if flags & 0x41 != 0 { throw CheckpointError.encryptedEntry(name: name) }
            if method != 0 && method != 8 { throw CheckpointError.unsupportedCompression(name: name, method: method) }
            if index[name] != nil { throw CheckpointError.duplicateEntry(name: name) }

            // Local header: only for where the data starts; it must agree with the central record.
            guard b.contains(offset: localOffset, length: 30), localOffset + 30 <= cdOffset else {
                throw CheckpointError.entryOutOfBounds(name: name, offset: localOffset, length: 30, limit: cdOffset)
            }
            let l = localOffset
            guard b.u32(l) == 0x0403_4b50 else {
                throw CheckpointError.headerMismatch(name: name, field: "signature", central: "0x04034b50",
                                                     local: "0x" + String(b.u32(l), radix: 16))
            }
            let lFlags = Int(b.u16(l + 6)), lMethod = Int(b.u16(l + 8))
            let lCrc = b.u32(l + 14), lCsize = b.u32(l + 18), lUsize = b.u32(l + 22)
            let lNameLen = Int(b.u16(l + 26)), lExtraLen = Int(b.u16(l + 28))
            guard l + 30 + lNameLen + lExtraLen <= cdOffset else {
                throw CheckpointError.entryOutOfBounds(name: name, offset: l, length: 30 + lNameLen + lExtraLen, limit: cdOffset)
            }
            let lName = b.slice(l + 30, lNameLen)
            if !lName.elementsEqual(nameBytes) {
                throw CheckpointError.headerMismatch(name: name, field: "name", central: name,
                                                     local: String(decoding: lName, as: UTF8.self))
            }
            if lMethod != method {
                throw CheckpointError.headerMismatch(name: name, field: "compression method", central: "\(method)", local: "\(lMethod)")
            }
            if lFlags & 0x41 != 0 { throw CheckpointError.encryptedEntry(name: name) }
            if lFlags & 0x08 == 0 {   // no data descriptor: sizes and CRC in the local header are meant to be real
                if lCrc != 0 && lCrc != crc {
                    throw CheckpointError.headerMismatch(name: name, field: "CRC-32", central: "\(crc)", local: "\(lCrc)")
                }
                if lCsize != 0 && lCsize != 0xFFFF_FFFF && Int(lCsize) != csize {
                    throw CheckpointError.headerMismatch(name: name, field: "compressed size", central: "\(csize)", local: "\(lCsize)")
                }
                if lUsize != 0 && lUsize != 0xFFFF_FFFF && Int(lUsize) != usize {
                    throw CheckpointError.headerMismatch(name: name, field: "uncompressed size", central: "\(usize)", local: "\(lUsize)")
                }
            }
            let dataOffset = l + 30 + lNameLen + lExtraLen
            guard csize <= cdOffset - dataOffset else {
                throw CheckpointError.entryOutOfBounds(name: name, offset: dataOffset, length: csize, limit: cdOffset)
            }
            index[name] = entries.count
            entries.append(ZipEntryInfo(name: name, method: method, crc32: crc, compressedSize: csize,
                                        uncompressedSize: usize, dataOffset: dataOffset))
            p += 46 + varLen
        }
        self.entries = entries
        self.index = index
    }

    private static func findEndOfCentralDirectory(_ b: UnsafeRawBufferPointer) -> Int? {
        guard b.count >= 22 else { return nil }
        let lowest = max(0, b.count - 22 - 65535)
        var p = b.count - 22
        var fallback: Int? = nil
        while p >= lowest {
            if b[p] == 0x50 && b[p + 1] == 0x4b && b[p + 2] == 0x05 && b[p + 3] == 0x06 {
                let commentLen = Int(b.u16(p + 20))
                if p + 22 + commentLen == b.count { return p }
                if fallback == nil && p + 22 + commentLen <= b.count { fallback = p }
            }
            p -= 1
        }
        return fallback
    }

    func entry(named name: String) -> ZipEntryInfo? {
        index[name].map { entries[$0] }
    }

    /// The uncompressed bytes of `entry`: a slice of the mapping when stored, an inflated buffer when deflated.
    /// `limit` bounds the output size; `verifyCRC` checks a non-zero CRC-32 (always done when inflating).
    func contents(of entry: ZipEntryInfo, limit: Int, verifyCRC: Bool) throws -> ByteView {
        let b = file.bytes
        if entry.method == 0 {
            guard entry.compressedSize == entry.uncompressedSize else {
                throw CheckpointError.entrySizeMismatch(name: entry.name, declared: entry.uncompressedSize, actual: entry.compressedSize)
            }
            if entry.uncompressedSize > limit {
                throw CheckpointError.outputLimitExceeded(name: entry.name, limit: limit, declared: entry.uncompressedSize)
            }
            let view = b.slice(entry.dataOffset, entry.compressedSize)
            if verifyCRC && entry.crc32 != 0 {
                let actual = crc32Of(view)
                if actual != entry.crc32 { throw CheckpointError.crcMismatch(name: entry.name, expected: entry.crc32, actual: actual) }
            }
            return ByteView(bytes: view, owner: file)
        }
        // Deflate: refuse impossible or over-limit sizes before allocating anything.
        let ratioCap = (checkedMul(entry.compressedSize, ZipArchive.maxDeflateRatio) ?? Int.max) &+ 64
        let cap = min(limit, ratioCap)
        if entry.uncompressedSize > cap {
            throw CheckpointError.outputLimitExceeded(name: entry.name, limit: cap, declared: entry.uncompressedSize)
        }
        let outCount = entry.uncompressedSize
        let out = UnsafeMutableRawPointer.allocate(byteCount: max(outCount, 1), alignment: 64)
        let region = ByteRegion(owning: out, count: outCount)
        let input = b.slice(entry.dataOffset, entry.compressedSize)
        try inflateRaw(name: entry.name, input: input, output: out, outputCount: outCount)
        let view = region.bytes
        if entry.crc32 != 0 {
            let actual = crc32Of(view)
            if actual != entry.crc32 { throw CheckpointError.crcMismatch(name: entry.name, expected: entry.crc32, actual: actual) }
        }
        return ByteView(bytes: view, owner: region)
    }
}

/// zlib CRC-32 over any number of bytes.
func crc32Of(_ bytes: UnsafeRawBufferPointer) -> UInt32 {
    var crc: UInt = crc32(0, nil, 0)
    guard var p = bytes.baseAddress?.assumingMemoryBound(to: Bytef.self) else { return UInt32(truncatingIfNeeded: crc) }
    var left = bytes.count
    while left > 0 {
        let n = min(left, 1 << 30)
        crc = crc32(crc, p, uInt(n))
        p += n
        left -= n
    }
    return UInt32(truncatingIfNeeded: crc)
}

/// Inflates a raw deflate stream into exactly `outputCount` bytes; more output than that is refused
/// (it is never produced into memory beyond a 1-byte probe), less is an error.
private func inflateRaw(name: String, input: UnsafeRawBufferPointer, output: UnsafeMutableRawPointer, outputCount: Int) throws {
    var strm = z_stream()
    guard inflateInit2_(&strm, -15, zlibVersion(), Int32(MemoryLayout<z_stream>.size)) == Z_OK else {
        throw CheckpointError.inflateFailed(name: name, reason: "zlib init failed")
    }
    defer { inflateEnd(&strm) }
    var inPos = 0, outPos = 0
    let inBase = input.baseAddress.map { UnsafeMutablePointer(mutating: $0.assumingMemoryBound(to: Bytef.self)) }
    let outBase = output.assumingMemoryBound(to: Bytef.self)
    var probe: UInt8 = 0
    while true {
        if strm.avail_in == 0 && inPos < input.count, let inBase {
            let n = min(input.count - inPos, Int(UInt32.max / 2))
            strm.next_in = inBase + inPos
            strm.avail_in = uInt(n)
            inPos += n
        }
        let probing = outPos >= outputCount
        let status: Int32 = withUnsafeMutablePointer(to: &probe) { probePtr in
            if probing {
                strm.next_out = probePtr
                strm.avail_out = 1
            } else {
                let n = min(outputCount - outPos, Int(UInt32.max / 2))
                strm.next_out = outBase + outPos
                strm.avail_out = uInt(n)
            }
            let before = strm.avail_out
            let r = inflate(&strm, Z_NO_FLUSH)
            let produced = Int(before - strm.avail_out)
            if probing {
                if produced > 0 { return Int32.min }   // more data than declared
            } else {
                outPos += produced
            }
            return r
        }
        if status == Int32.min {
            throw CheckpointError.outputLimitExceeded(name: name, limit: outputCount, declared: outputCount)
        }
        switch status {
        case Z_STREAM_END:
            if outPos != outputCount {
                throw CheckpointError.entrySizeMismatch(name: name, declared: outputCount, actual: outPos)
            }
            return
        case Z_OK:
            continue
        case Z_BUF_ERROR:
            if strm.avail_in == 0 && inPos >= input.count {
                throw CheckpointError.inflateFailed(name: name, reason: "stream ends early after \(outPos) bytes")
            }
            if probing {   // no room and nothing more produced: stream should have ended
                throw CheckpointError.inflateFailed(name: name, reason: "stream does not end after \(outPos) bytes")
            }
            continue
        default:
            let msg = strm.msg.map { String(cString: $0) } ?? "zlib error \(status)"
            throw CheckpointError.inflateFailed(name: name, reason: msg)
        }
    }
}
