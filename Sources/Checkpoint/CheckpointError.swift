// The one error type of the Checkpoint module. Every case names what was refused and where.

/// Why a `torch.save` file was refused. Offsets are byte offsets: for zip structures and legacy
/// files they count from the start of the file; for a pickle stored inside a zip they count from
/// the start of the file when the pickle entry is stored (torch's default), or from the start of
/// the inflated pickle when it was deflated.
public enum CheckpointError: Error, Equatable, Sendable, CustomStringConvertible {
    // MARK: File

    /// The file could not be opened, inspected or memory-mapped.
    case cannotOpen(path: String, reason: String)
    /// The file is neither a zip archive nor a legacy torch pickle (`expected` says what was looked for).
    case unrecognizedFormat(path: String, expected: String, actual: String)

    // MARK: Zip container

    /// No end-of-central-directory record in the last 64 KiB: not a complete zip (e.g. truncated).
    case noEndOfCentralDirectory(fileSize: Int)
    /// A zip structure or storage runs past the end of the file.
    case truncated(what: String, offset: Int, needed: Int, available: Int)
    /// The central directory is malformed (bad signature, impossible entry count, bad extra field).
    case invalidCentralDirectory(offset: Int, reason: String)
    /// ZIP64 records disagree with the classic records, or are missing/short where required.
    case inconsistentZip64(field: String, expected: String, actual: String)
    /// The archive says it spans several disks.
    case multiDiskArchive(disks: Int)
    /// Two central-directory entries have the same name.
    case duplicateEntry(name: String)
    /// The entry is flagged as encrypted.
    case encryptedEntry(name: String)
    /// The entry uses a compression method other than stored (0) or deflate (8).
    case unsupportedCompression(name: String, method: Int)
    /// The local header of an entry disagrees with its central-directory record.
    case headerMismatch(name: String, field: String, central: String, local: String)
    /// Entry data lies outside the file or overlaps the central directory.
    case entryOutOfBounds(name: String, offset: Int, length: Int, limit: Int)
    /// The CRC-32 of the entry's bytes is not the one the central directory records.
    case crcMismatch(name: String, expected: UInt32, actual: UInt32)
    /// The deflate stream of the entry is corrupt or ends early.
    case inflateFailed(name: String, reason: String)
    /// Inflating would exceed the allowed output size (a deflate bomb, or an implausible declared size).
    case outputLimitExceeded(name: String, limit: Int, declared: Int)
    /// The entry's stored or inflated size is not the declared size.
    case entrySizeMismatch(name: String, declared: Int, actual: Int)
    /// A required entry (the pickle, a storage) is not in the archive.
    case missingEntry(name: String)
    /// The archive's `byteorder` entry says something other than `little`.
    case unsupportedByteOrder(String)

    // MARK: Pickle

    /// The pickle ends in the middle of an opcode, or without STOP.
    case truncatedPickle(opcode: String, offset: Int)
    /// A byte that is not a pickle opcode.
    case unknownOpcode(byte: UInt8, offset: Int)
    /// An opcode this reader never runs (object construction, extension registry, out-of-band buffers, text persistent ids).
    case forbiddenOpcode(opcode: String, offset: Int)
    /// A global that is not on the allowlist (e.g. `os.system`, `builtins.eval`).
    case forbiddenGlobal(name: String, offset: Int)
    /// REDUCE or BUILD applied to something the allowlist does not allow calling or updating.
    case forbiddenCall(callable: String, offset: Int)
    /// An allowed callable got arguments of the wrong number or type.
    case invalidArguments(callable: String, reason: String, offset: Int)
    /// An opcode needs more values than the stack (above the current MARK) holds.
    case stackUnderflow(opcode: String, offset: Int)
    /// An opcode that collects items back to a MARK found no MARK.
    case missingMark(opcode: String, offset: Int)
    /// An opcode found a value of the wrong type (e.g. SETITEMS on a list, an unhashable dict key).
    case unexpectedType(opcode: String, expected: String, actual: String, offset: Int)
    /// GET of a memo slot that was never PUT.
    case invalidMemoKey(key: Int, offset: Int)
    /// A declared string/bytes/frame length exceeds the bytes that follow.
    case lengthExceedsInput(opcode: String, declared: Int, available: Int, offset: Int)
    /// A text literal (number, quoted string, UTF-8, protocol number) is malformed.
    case invalidLiteral(opcode: String, reason: String, offset: Int)
    /// A resource bound was hit (stack size, values created, nesting depth, digits of a long).
    case limitExceeded(what: String, limit: Int, offset: Int)
    /// A persistent id that is not `('storage', type, key, location, numel[, view])`.
    case invalidPersistentID(reason: String, offset: Int)

    // MARK: Storages and tensors

    /// A tensor refers to a storage whose bytes are not in the file.
    case missingStorage(key: String)
    /// A storage's bytes do not match its declared element count.
    case storageSizeMismatch(key: String, expectedBytes: Int, actualBytes: Int)
    /// One storage is referenced with two different element types or counts.
    case storageConflict(key: String, first: String, second: String)
    /// A view reaches past the end of its storage (`storage_offset + sum((size-1)*stride)`).
    case tensorOutOfBounds(name: String, requiredElements: Int, storageElements: Int)
    /// A tensor's shape/strides are malformed (negative, rank mismatch, too many elements).
    case invalidTensor(name: String, reason: String)
    /// Two tensors would get the same name.
    case duplicateTensorName(String)
    /// `copyContiguous(into:)` got a buffer of the wrong size.
    case bufferSizeMismatch(name: String, expected: Int, actual: Int)

    // MARK: Legacy format

    /// The legacy header (magic number, protocol 1001, sys_info, storage key list) is wrong.
    case invalidLegacyHeader(reason: String, offset: Int)

    public var description: String {
        switch self {
        case let .cannotOpen(path, reason): return "cannot open \(path): \(reason)"
        case let .unrecognizedFormat(path, expected, actual):
            return "\(path) is not a torch checkpoint: expected \(expected), found \(actual)"
        case let .noEndOfCentralDirectory(size):
            return "zip end-of-central-directory record not found (file of \(size) bytes is truncated or not a zip)"
        case let .truncated(what, offset, needed, available):
            return "truncated: \(what) at byte \(offset) needs \(needed) bytes, only \(available) remain"
        case let .invalidCentralDirectory(offset, reason): return "invalid zip central directory at byte \(offset): \(reason)"
        case let .inconsistentZip64(field, expected, actual):
            return "inconsistent ZIP64 \(field): expected \(expected), found \(actual)"
        case let .multiDiskArchive(disks): return "multi-disk zip archives are not supported (\(disks) disks)"
        case let .duplicateEntry(name): return "duplicate zip entry '\(name)'"
        case let .encryptedEntry(name): return "zip entry '\(name)' is encrypted"
        case let .unsupportedCompression(name, method):
            return "zip entry '\(name)' uses unsupported compression method \(method) (only 0 stored, 8 deflate)"
        case let .headerMismatch(name, field, central, local):
            return "zip entry '\(name)': local header \(field) is \(local) but central directory says \(central)"
        case let .entryOutOfBounds(name, offset, length, limit):
            return "zip entry '\(name)': \(length) bytes at byte \(offset) run past byte \(limit)"
        case let .crcMismatch(name, expected, actual):
            return "zip entry '\(name)': CRC-32 is \(hex(actual)) but central directory says \(hex(expected))"
        case let .inflateFailed(name, reason): return "zip entry '\(name)': deflate stream is corrupt: \(reason)"
        case let .outputLimitExceeded(name, limit, declared):
            return "zip entry '\(name)': refused to inflate beyond \(limit) bytes (declared \(declared)); deflate bomb or bad size"
        case let .entrySizeMismatch(name, declared, actual):
            return "zip entry '\(name)': declared \(declared) bytes but holds \(actual)"
        case let .missingEntry(name): return "zip entry '\(name)' is missing"
        case let .unsupportedByteOrder(order): return "unsupported byte order '\(order)' (only little-endian checkpoints)"
        case let .truncatedPickle(opcode, offset): return "pickle truncated in \(opcode) at byte \(offset)"
        case let .unknownOpcode(byte, offset): return "unknown pickle opcode 0x\(String(byte, radix: 16)) at byte \(offset)"
        case let .forbiddenOpcode(opcode, offset): return "refused pickle opcode \(opcode) at byte \(offset)"
        case let .forbiddenGlobal(name, offset): return "refused global '\(name)' at byte \(offset) (not on the allowlist)"
        case let .forbiddenCall(callable, offset): return "refused call of \(callable) at byte \(offset)"
        case let .invalidArguments(callable, reason, offset): return "bad arguments to \(callable) at byte \(offset): \(reason)"
        case let .stackUnderflow(opcode, offset): return "pickle stack underflow in \(opcode) at byte \(offset)"
        case let .missingMark(opcode, offset): return "pickle \(opcode) at byte \(offset) has no MARK"
        case let .unexpectedType(opcode, expected, actual, offset):
            return "pickle \(opcode) at byte \(offset) expected \(expected), found \(actual)"
        case let .invalidMemoKey(key, offset): return "pickle memo key \(key) read at byte \(offset) was never stored"
        case let .lengthExceedsInput(opcode, declared, available, offset):
            return "pickle \(opcode) at byte \(offset) declares \(declared) bytes but only \(available) remain"
        case let .invalidLiteral(opcode, reason, offset): return "pickle \(opcode) at byte \(offset): \(reason)"
        case let .limitExceeded(what, limit, offset): return "limit exceeded at byte \(offset): more than \(limit) \(what)"
        case let .invalidPersistentID(reason, offset): return "bad persistent id at byte \(offset): \(reason)"
        case let .missingStorage(key): return "storage '\(key)' is referenced but its bytes are not in the file"
        case let .storageSizeMismatch(key, expected, actual):
            return "storage '\(key)' should hold \(expected) bytes but holds \(actual)"
        case let .storageConflict(key, first, second): return "storage '\(key)' is used as \(first) and as \(second)"
        case let .tensorOutOfBounds(name, required, available):
            return "tensor '\(name)' needs \(required) elements of its storage, which has \(available)"
        case let .invalidTensor(name, reason): return "tensor '\(name)': \(reason)"
        case let .duplicateTensorName(name): return "two tensors are named '\(name)'"
        case let .bufferSizeMismatch(name, expected, actual):
            return "tensor '\(name)': destination holds \(actual) bytes, \(expected) needed"
        case let .invalidLegacyHeader(reason, offset): return "legacy torch file, byte \(offset): \(reason)"
        }
    }
}

private func hex(_ v: UInt32) -> String {
    let s = String(v, radix: 16)
    return "0x" + String(repeating: "0", count: max(0, 8 - s.count)) + s
}
