// Tensors of a checkpoint: dtype, shape, strides and a zero-copy view of their storage.
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The element types a `torch.save` checkpoint can hold here.
public enum TorchDType: String, Sendable, CaseIterable, Equatable {
    /// Raw values are torch's names without the `torch.` prefix.
    case float32, float16, bfloat16, float64, int64, int32, int16, int8, uint8, bool

    /// Bytes per element.
    public var byteWidth: Int {
        switch self {
        case .float64, .int64: return 8
        case .float32, .int32: return 4
        case .float16, .bfloat16, .int16: return 2
        case .int8, .uint8, .bool: return 1
        }
    }

    /// The typed-storage class torch pickles for this dtype, e.g. `torch.FloatStorage`.
    public var storageClassName: String {
        switch self {
        case .float32: return "torch.FloatStorage"
        case .float16: return "torch.HalfStorage"
        case .bfloat16: return "torch.BFloat16Storage"
        case .float64: return "torch.DoubleStorage"
        case .int64: return "torch.LongStorage"
        case .int32: return "torch.IntStorage"
        case .int16: return "torch.ShortStorage"
        case .int8: return "torch.CharStorage"
        case .uint8: return "torch.ByteStorage"
        case .bool: return "torch.BoolStorage"
        }
    }
}

/// Whether the file was a zip archive (torch >= 1.6 default) or the older legacy pickle stream.
public enum ArchiveFormat: String, Sendable, Equatable {
    /// A zip archive: `<prefix>/data.pkl` plus one `<prefix>/data/<key>` entry per storage.
    case zip
    /// Consecutive pickles (magic, protocol 1001, sys_info, object, storage keys) followed by raw storages.
    case legacy
}

/// One named tensor of a checkpoint. `storageBytes` is a zero-copy view of the whole storage the
/// tensor lives in (inside the memory-mapped file, or an inflated buffer); it stays valid while this
/// value (or its `TorchCheckpoint`) lives.
public struct CheckpointTensor: @unchecked Sendable {
    /// The state-dict key, or a dotted path for tensors found outside the state dict.
    public let name: String
    /// Element type (the storage's type).
    public let dtype: TorchDType
    /// Sizes per dimension; empty for a 0-d tensor.
    public let shape: [Int]
    /// Strides in elements, as torch records them.
    public let strides: [Int]
    /// Offset of the first element in the storage, in elements.
    public let storageOffset: Int
    /// The storage's key in the archive (`data/<key>`), shared by tensors that share storage.
    public let storageKey: String
    /// All bytes of the storage (not only this tensor's elements).
    public let storageBytes: UnsafeRawBufferPointer
    /// True when the elements are laid out row-major without gaps (size-1 dimensions ignored; empty tensors count as contiguous, as in torch).
    public let isContiguous: Bool
    /// Keeps `storageBytes` alive.
    let owner: AnyObject

    /// Number of elements (product of the shape; 1 for a 0-d tensor).
    public var elementCount: Int { shape.reduce(1, *) }
    /// Bytes of the tensor's elements when packed contiguously.
    public var byteCount: Int { elementCount * dtype.byteWidth }

    init(name: String, dtype: TorchDType, shape: [Int], strides: [Int], storageOffset: Int,
         storageKey: String, storageBytes: UnsafeRawBufferPointer, owner: AnyObject) {
        self.name = name
        self.dtype = dtype
        self.shape = shape
        self.strides = strides
        self.storageOffset = storageOffset
        self.storageKey = storageKey
        self.storageBytes = storageBytes
        self.owner = owner
        if shape.contains(0) { self.isContiguous = true; return }   // empty tensors count as contiguous
        var expected = 1
        var contiguous = true
        for d in stride(from: shape.count - 1, through: 0, by: -1) where shape[d] != 1 {
            if strides[d] != expected { contiguous = false; break }
            expected *= shape[d]
        }
        self.isContiguous = contiguous
    }

    /// Copies the elements, row-major and packed, into `destination`, which must hold exactly `byteCount` bytes.
    public func copyContiguous(into destination: UnsafeMutableRawBufferPointer) throws {
        guard destination.count == byteCount else {
            throw CheckpointError.bufferSizeMismatch(name: name, expected: byteCount, actual: destination.count)
        }
        gather(into: destination)
    }

    /// Calls `body` with the elements packed row-major: the storage slice itself when contiguous,
    /// otherwise a temporary packed copy.
    public func withContiguousBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        let width = dtype.byteWidth
        if isContiguous {
            let start = storageOffset * width
            return try body(UnsafeRawBufferPointer(rebasing: storageBytes[start..<(start + byteCount)]))
        }
        let tmp = UnsafeMutableRawBufferPointer.allocate(byteCount: max(byteCount, 1), alignment: 64)
        defer { tmp.deallocate() }
        let packed = UnsafeMutableRawBufferPointer(rebasing: tmp[0..<byteCount])
        gather(into: packed)
        return try body(UnsafeRawBufferPointer(packed))
    }

    /// Strided gather; bounds were checked when the checkpoint was opened.
    private func gather(into destination: UnsafeMutableRawBufferPointer) {
        let count = elementCount
        if count == 0 { return }
        let width = dtype.byteWidth
        guard let src = storageBytes.baseAddress, let dst = destination.baseAddress else { return }
        if isContiguous {
            memcpy(dst, src + storageOffset * width, count * width)
            return
        }
        let rank = shape.count
        let inner = shape[rank - 1], innerStride = strides[rank - 1] * width
        var index = [Int](repeating: 0, count: rank)
        var out = 0
        var base = storageOffset * width
        while true {
            var s = base
            switch width {
            case 1:
                for _ in 0..<inner { dst.storeBytes(of: src.load(fromByteOffset: s, as: UInt8.self), toByteOffset: out, as: UInt8.self); out += 1; s += innerStride }
            case 2:
                for _ in 0..<inner { dst.storeBytes(of: src.loadUnaligned(fromByteOffset: s, as: UInt16.self), toByteOffset: out, as: UInt16.self); out += 2; s += innerStride }
            case 4:
                for _ in 0..<inner { dst.storeBytes(of: src.loadUnaligned(fromByteOffset: s, as: UInt32.self), toByteOffset: out, as: UInt32.self); out += 4; s += innerStride }
            default:
                for _ in 0..<inner { dst.storeBytes(of: src.loadUnaligned(fromByteOffset: s, as: UInt64.self), toByteOffset: out, as: UInt64.self); out += 8; s += innerStride }
            }
            // Advance the outer index (odometer over dimensions 0..<rank-1).
            var d = rank - 2
            while d >= 0 {
                index[d] += 1
                base += strides[d] * width
                if index[d] < shape[d] { break }
                base -= strides[d] * width * shape[d]
                index[d] = 0
                d -= 1
            }
            if d < 0 { return }
        }
    }
}
