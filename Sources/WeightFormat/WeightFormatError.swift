// Errors of the WeightFormat module (reading, validating and writing .glw files).

/// Everything that can go wrong reading, validating or writing a `.glw` file.
/// Each case names the entry (tensor) involved when there is one, with the expected and the actual value.
public enum WeightFormatError: Error, Equatable, Sendable, CustomStringConvertible {
    /// A system call failed (`operation` is e.g. "open", "mmap", "write", "rename"); `errno` is the C error number.
    case io(path: String, operation: String, errno: Int32)
    /// The file is shorter than the 64-byte fixed header.
    case tooSmall(size: Int)
    /// The first four bytes are not "GLWF".
    case badMagic(found: [UInt8])
    /// The version field is not one this reader knows.
    case unsupportedVersion(found: UInt32, supported: UInt32)
    /// The alignment field is not a power of two in 64...65536.
    case badAlignment(found: UInt32)
    /// The metadata header is larger than the hard cap (checked before anything is parsed).
    case metadataTooLarge(length: UInt64, limit: UInt64)
    /// A header field (offset, length or count) is inconsistent with the rules or the file size.
    case badHeaderField(field: String, expected: String, actual: UInt64)
    /// The CRC-32 over header, metadata, table and names does not match (the index is damaged).
    case headerChecksumMismatch(expected: UInt32, actual: UInt32)
    /// The metadata is not a JSON object of the required form.
    case badMetadata(reason: String)
    /// An entry's name is out of bounds, empty, too long or not UTF-8 (`index` is the table position).
    case badName(index: Int, reason: String)
    /// Two entries have the same name.
    case duplicateName(name: String)
    /// An entry has a dtype code this reader does not know (or one not allowed for it).
    case unknownDType(tensor: String, code: UInt8)
    /// An entry's rank or dimensions are impossible (rank > 8, a dimension > 2^40, product overflows, nonzero unused slot).
    case badShape(tensor: String, shape: [UInt64], reason: String)
    /// An entry's byte length does not equal product(shape) * element size.
    case badLength(tensor: String, expected: UInt64, actual: UInt64)
    /// An entry's data offset is not a multiple of the file's alignment.
    case misaligned(tensor: String, offset: UInt64, alignment: UInt64)
    /// An int8 entry's scales are not where the spec says (or a non-int8 entry has scales).
    case badScales(tensor: String, expectedOffset: UInt64, expectedLength: UInt64, actualOffset: UInt64, actualLength: UInt64)
    /// An entry's region starts before the end of the previous region (or before the data section).
    case overlap(tensor: String, previous: String, offset: UInt64, previousEnd: UInt64)
    /// An entry's region extends past the end of the file (the file is truncated).
    case truncated(tensor: String, end: UInt64, fileSize: UInt64)
    /// The file continues after the last region.
    case trailingBytes(expectedEnd: UInt64, fileSize: UInt64)
    /// A reserved field or flag bit of an entry is not zero, or quant_block is nonzero (unsupported in version 1).
    case badReservedField(tensor: String, field: String, value: UInt64)
    /// A tensor's `activation_bits` in the metadata's `quantization.tensors` is not 8 or 16, names no tensor of
    /// the file, or is given for a tensor that is not int8.
    case badActivationBits(tensor: String, expected: String, actual: String)
    /// A tensor's bytes do not match its CRC-32.
    case checksumMismatch(tensor: String, expected: UInt32, actual: UInt32)
    /// Padding bytes after the named entry are not zero.
    case nonZeroPadding(after: String, offset: UInt64)
    /// The destination exists and overwriting was not requested.
    case destinationExists(path: String)
    /// The writer was given an impossible plan or driven out of order (message says what).
    case writerMisuse(reason: String)

    public var description: String {
        switch self {
        case let .io(path, op, err): return "\(op) \(path): \(errnoText(err))"
        case let .tooSmall(size): return "not a .glw file: \(size) bytes, shorter than the 64-byte header"
        case let .badMagic(found): return "not a .glw file: magic is \(found.map { hex2($0) }.joined(separator: " ")), expected 47 4c 57 46 (\"GLWF\")"
        case let .unsupportedVersion(found, supported): return ".glw version \(found) is not supported (this reader knows version \(supported))"
        case let .badAlignment(found): return "bad alignment \(found): must be a power of two between 64 and 65536"
        case let .metadataTooLarge(length, limit): return "metadata header is \(length) bytes, over the \(limit)-byte limit"
        case let .badHeaderField(field, expected, actual): return "header field \(field) is \(actual), expected \(expected)"
        case let .headerChecksumMismatch(expected, actual): return "header checksum mismatch: stored \(hex8(expected)), computed \(hex8(actual)) (header, metadata or tensor table is damaged)"
        case let .badMetadata(reason): return "bad metadata: \(reason)"
        case let .badName(index, reason): return "entry #\(index): bad name: \(reason)"
        case let .duplicateName(name): return "duplicate entry name '\(name)'"
        case let .unknownDType(tensor, code): return "tensor '\(tensor)': unknown dtype code \(code)"
        case let .badShape(tensor, shape, reason): return "tensor '\(tensor)': bad shape \(shape): \(reason)"
        case let .badLength(tensor, expected, actual): return "tensor '\(tensor)': byte length \(actual), expected \(expected) from dtype and shape"
        case let .misaligned(tensor, offset, alignment): return "tensor '\(tensor)': offset \(offset) is not a multiple of \(alignment)"
        case let .badScales(tensor, eo, el, ao, al): return "tensor '\(tensor)': scales at \(ao) (\(al) bytes), expected at \(eo) (\(el) bytes)"
        case let .overlap(tensor, previous, offset, previousEnd): return "tensor '\(tensor)' at \(offset) overlaps '\(previous)' which ends at \(previousEnd)"
        case let .truncated(tensor, end, fileSize): return "tensor '\(tensor)' ends at \(end) but the file has only \(fileSize) bytes (truncated)"
        case let .trailingBytes(expectedEnd, fileSize): return "file is \(fileSize) bytes but the last tensor ends at \(expectedEnd)"
        case let .badReservedField(tensor, field, value): return "tensor '\(tensor)': field \(field) is \(value), must be 0 in version 1"
        case let .badActivationBits(tensor, expected, actual): return "tensor '\(tensor)': activation_bits must be \(expected), found \(actual)"
        case let .checksumMismatch(tensor, expected, actual): return "tensor '\(tensor)': CRC-32 mismatch: stored \(hex8(expected)), computed \(hex8(actual))"
        case let .nonZeroPadding(after, offset): return "nonzero padding byte at \(offset) after '\(after)'"
        case let .destinationExists(path): return "\(path) already exists (the writer overwrites only when asked to)"
        case let .writerMisuse(reason): return "weight file writer: \(reason)"
        }
    }
}

private let hexDigits = Array("0123456789abcdef")
func hex2(_ b: UInt8) -> String { String([hexDigits[Int(b >> 4)], hexDigits[Int(b & 15)]]) }
func hex8(_ v: UInt32) -> String { (0..<4).map { hex2(UInt8(truncatingIfNeeded: v >> UInt32(24 - 8 * $0))) }.joined() }
