// A uniform view of the tensors to convert, whether they come from a torch checkpoint or a .glw file,
// with element decoding to f32 in bounded chunks and release of source pages after use.
#if canImport(Glibc)
import ElementConversion
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
#elseif canImport(Darwin)
import Darwin
#endif
import Checkpoint
import WeightFormat

/// Element encodings a source tensor can have.
enum SourceElement: String {
    case f32 = "float32", f16 = "float16", bf16 = "bfloat16", f64 = "float64", int8Rows = "int8-per-row"
    case i64 = "int64", i32 = "int32", i16 = "int16", i8 = "int8", u8 = "uint8", bool

    var isFloat: Bool { [.f32, .f16, .bf16, .f64, .int8Rows].contains(self) }
    var byteWidth: Int {
        switch self {
        case .f64, .i64: return 8
        case .f32, .i32: return 4
        case .f16, .bf16, .i16: return 2
        case .int8Rows, .i8, .u8, .bool: return 1
        }
    }
    init(_ t: TorchDType) {
        switch t {
        case .float32: self = .f32
        case .float16: self = .f16
        case .bfloat16: self = .bf16
        case .float64: self = .f64
        case .int64: self = .i64
        case .int32: self = .i32
        case .int16: self = .i16
        case .int8: self = .i8
        case .uint8: self = .u8
        case .bool: self = .bool
        }
    }
    init(_ t: WeightDType) {
        switch t {
        case .f32: self = .f32
        case .f16: self = .f16
        case .bf16: self = .bf16
        case .int8: self = .int8Rows
        case .i64: self = .i64
        case .bool: self = .bool
        }
    }
    /// The name recorded as `source_dtype` (glw names for .glw sources).
    var glwName: String {
        switch self {
        case .f32: return "f32"
        case .f16: return "f16"
        case .bf16: return "bf16"
        case .int8Rows: return "int8"
        case .i64: return "i64"
        case .bool: return "bool"
        default: return rawValue
        }
    }
}

/// The packed bytes of one source tensor.
struct SourceView {
    let bytes: UnsafeRawBufferPointer
    let scales: UnsafeBufferPointer<Float>?
    /// True when the bytes are a read-only private file mapping, so dropping their pages is safe.
    let releasable: Bool
}

/// One tensor to convert.
struct SourceTensor {
    let name: String
    let shape: [Int]
    let element: SourceElement
    let withView: ((SourceView) throws -> Void) throws -> Void

    var elementCount: Int { shape.reduce(1, *) }
    /// Elements per row for int8 (product of all but the first dimension).
    var rowLength: Int { shape.count >= 1 && shape[0] > 0 ? elementCount / shape[0] : max(elementCount, 1) }
}

extension SourceTensor {
    /// Tensors of a torch checkpoint, in file order.
    static func all(from ckpt: TorchCheckpoint) -> [SourceTensor] {
        let dir = ckpt.archivePrefix.map { $0.isEmpty ? "" : $0 + "/" } ?? ""
        var stored = Set<String>()
        for e in ckpt.zipEntries where e.method == 0 { stored.insert(e.name) }
        return ckpt.tensors.map { t in
            let mapped = ckpt.format == .legacy || stored.contains(dir + "data/" + t.storageKey)
            return SourceTensor(name: t.name, shape: t.shape, element: SourceElement(t.dtype)) { body in
                if t.isContiguous {
                    try t.withContiguousBytes { try body(SourceView(bytes: $0, scales: nil, releasable: mapped)) }
                } else {
                    try t.withContiguousBytes { try body(SourceView(bytes: $0, scales: nil, releasable: false)) }
                }
            }
        }
    }

    /// Tensors of a .glw file, in file order.
    static func all(from file: WeightFile) -> [SourceTensor] {
        file.tensors.map { t in
            SourceTensor(name: t.name, shape: t.shape, element: SourceElement(t.dtype)) { body in
                try body(SourceView(bytes: t.data, scales: t.scales, releasable: true))
            }
        }
    }
}

/// Decodes `count` elements starting at element `start` of a float source into `dst` as f32.
func readFloats(_ v: SourceView, _ element: SourceElement, rowLength: Int, start: Int, count: Int, into dst: UnsafeMutablePointer<Float>) {
    guard count > 0, let p = v.bytes.baseAddress else { return }
    switch element {
    case .f32:
        memcpy(dst, p + start * 4, count * 4)
    case .f16:
        for i in 0..<count { dst[i] = f16ToF32(p.loadUnaligned(fromByteOffset: (start + i) * 2, as: UInt16.self)) }
    case .bf16:
        for i in 0..<count { dst[i] = bf16ToF32(p.loadUnaligned(fromByteOffset: (start + i) * 2, as: UInt16.self)) }
    case .f64:
        for i in 0..<count { dst[i] = Float(p.loadUnaligned(fromByteOffset: (start + i) * 8, as: Double.self)) }
    case .int8Rows:
        let scales = v.scales!
        var row = start / rowLength
        var inRow = start % rowLength
        var scale = scales[row]
        for i in 0..<count {
            dst[i] = Float(p.load(fromByteOffset: start + i, as: Int8.self)) * scale
            inRow += 1
            if inRow == rowLength, i + 1 < count { inRow = 0; row += 1; scale = scales[row] }
        }
    default:
        preconditionFailure("readFloats on a non-float source")
    }
}

/// Decodes `count` integer elements starting at `start` into `dst` as Int64.
func readInts(_ v: SourceView, _ element: SourceElement, start: Int, count: Int, into dst: UnsafeMutablePointer<Int64>) {
    guard count > 0, let p = v.bytes.baseAddress else { return }
    for i in 0..<count {
        let o = start + i
        switch element {
        case .i64: dst[i] = p.loadUnaligned(fromByteOffset: o * 8, as: Int64.self)
        case .i32: dst[i] = Int64(p.loadUnaligned(fromByteOffset: o * 4, as: Int32.self))
        case .i16: dst[i] = Int64(p.loadUnaligned(fromByteOffset: o * 2, as: Int16.self))
        case .i8: dst[i] = Int64(p.load(fromByteOffset: o, as: Int8.self))
        case .u8: dst[i] = Int64(p.load(fromByteOffset: o, as: UInt8.self))
        default: preconditionFailure("readInts on a non-integer source")
        }
    }
}

/// Drops the pages fully inside `[start, start + count)` of a releasable view from this process.
func releasePages(_ v: SourceView, byteOffset start: Int, count: Int) {
    guard v.releasable, count > 0, let base = v.bytes.baseAddress else { return }
    let page = Int(sysconf(Int32(_SC_PAGESIZE)))
    let a = (Int(bitPattern: base) + start + page - 1) & ~(page - 1)
    let b = (Int(bitPattern: base) + start + count) & ~(page - 1)
    if b > a { _ = madvise(UnsafeMutableRawPointer(bitPattern: a), b - a, Int32(MADV_DONTNEED)) }
}
