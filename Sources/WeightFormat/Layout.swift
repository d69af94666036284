// The on-disk layout of a .glw file (Formats/glw.md): constants, the dtype enum, header and entry records.
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import CZlib

/// Element types a `.glw` tensor can have. Raw values are the on-disk dtype codes.
public enum WeightDType: UInt8, Sendable, CaseIterable, CustomStringConvertible {
    /// IEEE binary32.
    case f32 = 0
    /// IEEE binary16, stored as UInt16 bit patterns.
    case f16 = 1
    /// bfloat16 (upper half of binary32), stored as UInt16 bit patterns.
    case bf16 = 2
    /// Symmetric per-row int8 with one f32 scale per row (first dimension).
    case int8 = 3
    /// Signed 64-bit integers.
    case i64 = 4
    /// One byte per element, 0 or 1.
    case bool = 5

    /// Bytes per element of the value array (int8: 1; its scales are separate).
    public var byteWidth: Int {
        switch self {
        case .f32: return 4
        case .f16, .bf16: return 2
        case .int8, .bool: return 1
        case .i64: return 8
        }
    }
    /// Lower-case name as used by the CLI and the metadata ("f32", "int8", ...).
    public var description: String {
        switch self {
        case .f32: return "f32"
        case .f16: return "f16"
        case .bf16: return "bf16"
        case .int8: return "int8"
        case .i64: return "i64"
        case .bool: return "bool"
        }
    }
    /// Parses "f32", "f16", "bf16", "int8", "i64", "bool".
    public init?(name: String) {
        guard let t = WeightDType.allCases.first(where: { $0.description == name }) else { return nil }
        self = t
    }
}

/// Fixed numbers of the format.
public enum GLWLayout {
    /// "GLWF".
    public static let magic: [UInt8] = [0x47, 0x4C, 0x57, 0x46]
    /// The only version this module reads and writes.
    public static let version: UInt32 = 1
    /// Size of the fixed header.
    public static let headerSize = 64
    /// Size of one tensor-table entry.
    public static let entrySize = 128
    /// Hard cap on the JSON metadata.
    public static let maxMetadataLength: UInt64 = 16 << 20
    /// Cap on the number of entries.
    public static let maxEntryCount: UInt64 = 1_000_000
    /// Cap on the concatenated names.
    public static let maxNamesLength: UInt64 = 64 << 20
    /// Longest entry name.
    public static let maxNameLength = 1024
    /// Highest rank.
    public static let maxRank = 8
    /// Largest single dimension.
    public static let maxDimension: UInt64 = 1 << 40
    /// Alignment used by the writer.
    public static let defaultAlignment = 64
    /// Alignment of int8 scales inside a tensor region.
    public static let scalesAlignment: UInt64 = 64
    /// Entry flag: an embedded file, not a tensor.
    static let flagFile: UInt16 = 1
    /// dtype code of embedded files.
    static let dtypeU8: UInt8 = 6
    /// Prefix of embedded tokenizer file names.
    public static let tokenizerPrefix = "tokenizer/"
}

/// One decoded table entry (tensor or embedded file), before or after validation.
struct RawEntry {
    var nameOffset: UInt64 = 0
    var nameLength: UInt32 = 0
    var dtype: UInt8 = 0
    var rank: UInt8 = 0
    var flags: UInt16 = 0
    var shape: [UInt64] = Array(repeating: 0, count: 8)
    var dataOffset: UInt64 = 0
    var dataLength: UInt64 = 0
    var scalesOffset: UInt64 = 0
    var scalesLength: UInt64 = 0
    var crc32: UInt32 = 0
    var quantBlock: UInt32 = 0
    var reserved: UInt64 = 0

    init() {}

    init(reading p: UnsafeRawPointer) {
        nameOffset = p.le64(0)
        nameLength = p.le32(8)
        dtype = p.load(fromByteOffset: 12, as: UInt8.self)
        rank = p.load(fromByteOffset: 13, as: UInt8.self)
        flags = p.le16(14)
        for i in 0..<8 { shape[i] = p.le64(16 + 8 * i) }
        dataOffset = p.le64(80)
        dataLength = p.le64(88)
        scalesOffset = p.le64(96)
        scalesLength = p.le64(104)
        crc32 = p.le32(112)
        quantBlock = p.le32(116)
        reserved = p.le64(120)
    }

    func encode(into b: inout [UInt8]) {
        b.appendLE(nameOffset); b.appendLE(nameLength)
        b.append(dtype); b.append(rank); b.appendLE(flags)
        for s in shape { b.appendLE(s) }
        b.appendLE(dataOffset); b.appendLE(dataLength); b.appendLE(scalesOffset); b.appendLE(scalesLength)
        b.appendLE(crc32); b.appendLE(quantBlock); b.appendLE(reserved)
    }

    /// End of the region (values, padding and scales).
    var regionEnd: UInt64 { scalesLength > 0 ? scalesOffset &+ scalesLength : dataOffset &+ dataLength }
}

extension UnsafeRawPointer {
    @inline(__always) func le16(_ o: Int) -> UInt16 { UInt16(littleEndian: loadUnaligned(fromByteOffset: o, as: UInt16.self)) }
    @inline(__always) func le32(_ o: Int) -> UInt32 { UInt32(littleEndian: loadUnaligned(fromByteOffset: o, as: UInt32.self)) }
    @inline(__always) func le64(_ o: Int) -> UInt64 { UInt64(littleEndian: loadUnaligned(fromByteOffset: o, as: UInt64.self)) }
}

extension Array where Element == UInt8 {
    mutating func appendLE<T: FixedWidthInteger>(_ v: T) {
        Swift.withUnsafeBytes(of: v.littleEndian) { append(contentsOf: $0) }
    }
    mutating func setLE<T: FixedWidthInteger>(_ v: T, at offset: Int) {
        Swift.withUnsafeBytes(of: v.littleEndian) { src in
            for i in 0..<src.count { self[offset + i] = src[i] }
        }
    }
}

/// Rounds `v` up to a multiple of `a` (a power of two); nil on overflow.
@inline(__always) func roundUp(_ v: UInt64, _ a: UInt64) -> UInt64? {
    let (s, o) = v.addingReportingOverflow(a - 1)
    return o ? nil : s & ~(a - 1)
}

/// CRC-32 (zlib polynomial) of a byte range, continuing from `crc` (0 to start).
public func glwCRC32(_ bytes: UnsafeRawBufferPointer, continuing crc: UInt32 = 0) -> UInt32 {
    guard let base = bytes.baseAddress, bytes.count > 0 else { return crc }
    return UInt32(truncatingIfNeeded: crc32_z(UInt(crc), base.assumingMemoryBound(to: UInt8.self), bytes.count))
}

func errnoText(_ e: Int32) -> String {
    guard let s = strerror(e) else { return "errno \(e)" }
    return String(cString: s)
}
