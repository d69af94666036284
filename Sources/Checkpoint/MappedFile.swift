// Memory-mapped input files and owned byte buffers, plus bounds-checked little-endian reads.
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Bytes that stay valid as long as this object lives: a read-only mapping of a file, or an owned heap buffer
/// (inflated zip entries).
final class ByteRegion: @unchecked Sendable {
    let bytes: UnsafeRawBufferPointer
    private let kind: Kind
    private enum Kind { case mapped, owned, empty }

    /// Maps `path` read-only. An empty file gives an empty region.
    init(mapping path: String) throws {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw CheckpointError.cannotOpen(path: path, reason: errnoText()) }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else { throw CheckpointError.cannotOpen(path: path, reason: errnoText()) }
        guard (st.st_mode & 0o170000) == 0o100000 else {
            throw CheckpointError.cannotOpen(path: path, reason: "not a regular file")
        }
        let size = Int(st.st_size)
        if size == 0 {
            bytes = UnsafeRawBufferPointer(start: nil, count: 0)
            kind = .empty
            return
        }
        guard let p = mmap(nil, size, PROT_READ, MAP_PRIVATE, fd, 0), p != MAP_FAILED else {
            throw CheckpointError.cannotOpen(path: path, reason: "mmap: " + errnoText())
        }
        bytes = UnsafeRawBufferPointer(start: UnsafeRawPointer(p), count: size)
        kind = .mapped
    }

    /// Takes ownership of a buffer allocated with `UnsafeMutableRawPointer.allocate(byteCount:alignment:)`.
    init(owning pointer: UnsafeMutableRawPointer, count: Int) {
        bytes = UnsafeRawBufferPointer(start: UnsafeRawPointer(pointer), count: count)
        kind = .owned
    }

    deinit {
        switch kind {
        case .mapped: munmap(UnsafeMutableRawPointer(mutating: bytes.baseAddress!), bytes.count)
        case .owned: UnsafeMutableRawPointer(mutating: bytes.baseAddress!).deallocate()
        case .empty: break
        }
    }
}

/// A byte range that keeps its backing region alive.
struct ByteView: @unchecked Sendable {
    let bytes: UnsafeRawBufferPointer
    let owner: ByteRegion
}

func errnoText() -> String {
    if let s = strerror(errno) { return String(cString: s) }
    return "errno \(errno)"
}

extension UnsafeRawBufferPointer {
    @inline(__always) func u8(_ at: Int) -> UInt8 { self[at] }
    @inline(__always) func u16(_ at: Int) -> UInt16 { UInt16(littleEndian: loadUnaligned(fromByteOffset: at, as: UInt16.self)) }
    @inline(__always) func u32(_ at: Int) -> UInt32 { UInt32(littleEndian: loadUnaligned(fromByteOffset: at, as: UInt32.self)) }
    @inline(__always) func u64(_ at: Int) -> UInt64 { UInt64(littleEndian: loadUnaligned(fromByteOffset: at, as: UInt64.self)) }
    /// True when `[offset, offset + length)` lies inside the buffer (overflow-safe).
    @inline(__always) func contains(offset: Int, length: Int) -> Bool {
        offset >= 0 && length >= 0 && offset <= count && length <= count - offset
    }
    /// A sub-range; callers check bounds first.
    @inline(__always) func slice(_ offset: Int, _ length: Int) -> UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(rebasing: self[offset..<(offset + length)])
    }
}

/// Decodes bytes as UTF-8, or nil if they are not valid UTF-8.
func decodeUTF8(_ bytes: UnsafeRawBufferPointer) -> String? {
    String(validating: bytes.bindMemoryUnsafe(), as: UTF8.self)
}

extension UnsafeRawBufferPointer {
    fileprivate func bindMemoryUnsafe() -> UnsafeBufferPointer<UInt8> {
        guard let base = baseAddress else { return UnsafeBufferPointer(start: nil, count: 0) }
        return UnsafeBufferPointer(start: base.assumingMemoryBound(to: UInt8.self), count: count)
    }
}

/// Checked arithmetic helpers: nil on overflow.
@inline(__always) func checkedMul(_ a: Int, _ b: Int) -> Int? {
    let (r, o) = a.multipliedReportingOverflow(by: b)
    return o ? nil : r
}
@inline(__always) func checkedAdd(_ a: Int, _ b: Int) -> Int? {
    let (r, o) = a.addingReportingOverflow(b)
    return o ? nil : r
}
