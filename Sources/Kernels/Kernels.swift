// Kernels: compute over raw buffers (matmul, convolution, norms, attention, resampling).
// Knows nothing about tensor names or files. See README.md in this folder for the API and layouts.
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import CKernelsX86

/// How the elements of a weight matrix are stored. The matrix is row-major `[rows, cols]`
/// (cols = K contiguous), as PyTorch stores `Linear` weights and `Conv2d` weights viewed as `[O, I*kh*kw]`.
public enum WeightElements: @unchecked Sendable {
    /// IEEE float32 values.
    case f32(UnsafePointer<Float>)
    /// IEEE binary16 bit patterns.
    case f16(UnsafePointer<UInt16>)
    /// bfloat16 bit patterns (the upper half of a float32).
    case bf16(UnsafePointer<UInt16>)
    /// Symmetric int8 per output row: `w[r, c] ~= Float(q[r, c]) * scales[r]`, q in -127...127.
    case int8(UnsafePointer<Int8>, scales: UnsafePointer<Float>)
}

/// A read-only view of a weight matrix `[rows, cols]` in any supported element type.
/// Element `(r, c)` lives at index `r * rowStride + c` (the scale of an int8 row at `scales[r]`).
public struct WeightMatrix: @unchecked Sendable {
    /// Output features (first dimension of the PyTorch tensor).
    public var rows: Int
    /// Reduction length K (product of the remaining dimensions).
    public var cols: Int
    /// Distance in elements between consecutive rows (normally `cols`).
    public var rowStride: Int
    /// The element storage.
    public var elements: WeightElements
    /// int8 weights: the bound `|q| <= int8ActivationMax` (1...32767) to which the fast paths quantize this matrix's
    /// activations: 127 = 8-bit (one `vpdpbusd` pass, twice the 16-bit rate), 32767 = 16-bit. nil (the default):
    /// `KernelSettings.int8ActivationMax`. Ignored by other element types, the scalar path and the integer Winograd
    /// (whose transformed activations have their own bound). Env `GLIDE_INT8_ACTIVATION_MAX` overrides it (studies).
    public var int8ActivationMax: Int? = nil
    /// Optional cache of this weight's packed GEMM panels (`PackedWeightCache`), set by the weight's owner;
    /// nil: panels are packed per call.
    public var packed: PackedWeightCache? = nil
    /// Optional cache of this weight's transformed int8 Winograd panels (`WinogradWeightCache`, usually one per
    /// model), set by the weight's owner; nil: transformed per call.
    public var winogradPanels: WinogradWeightCache? = nil

    /// A view of `rows x cols` weights; `rowStride` defaults to `cols` (dense).
    public init(rows: Int, cols: Int, elements: WeightElements, rowStride: Int? = nil) {
        precondition(rows >= 0 && cols >= 0)
        self.rows = rows
        self.cols = cols
        self.rowStride = rowStride ?? cols
        self.elements = elements
    }

    /// Dense f32 weights.
    public init(rows: Int, cols: Int, f32: UnsafePointer<Float>) {
        self.init(rows: rows, cols: cols, elements: .f32(f32))
    }

    /// The element at `(row, col)` converted to f32 (int8 is dequantized with its row scale).
    @inline(__always)
    public func value(_ row: Int, _ col: Int) -> Float {
        let i = row * rowStride + col
        switch elements {
        case .f32(let p): return p[i]
        case .f16(let p): return f16ToF32(p[i])
        case .bf16(let p): return bf16ToF32(p[i])
        case .int8(let q, let s): return Float(q[i]) * s[row]
        }
    }

    /// A short name of the element type: "f32", "f16", "bf16" or "int8".
    public var dtypeName: String {
        switch elements {
        case .f32: return "f32"
        case .f16: return "f16"
        case .bf16: return "bf16"
        case .int8: return "int8"
        }
    }
}

/// A read-only strided f32 matrix: element `(i, j)` at `base[i * rowStride + j * colStride]`.
public struct MatrixOperand: @unchecked Sendable {
    public var base: UnsafePointer<Float>
    public var rowStride: Int
    public var colStride: Int
    public init(_ base: UnsafePointer<Float>, rowStride: Int, colStride: Int = 1) {
        self.base = base; self.rowStride = rowStride; self.colStride = colStride
    }
    @inline(__always) public subscript(i: Int, j: Int) -> Float { base[i * rowStride + j * colStride] }
}

/// A writable strided f32 matrix: element `(i, j)` at `base[i * rowStride + j * colStride]`.
public struct MutableMatrixOperand: @unchecked Sendable {
    public var base: UnsafeMutablePointer<Float>
    public var rowStride: Int
    public var colStride: Int
    public init(_ base: UnsafeMutablePointer<Float>, rowStride: Int, colStride: Int = 1) {
        self.base = base; self.rowStride = rowStride; self.colStride = colStride
    }
    @inline(__always) public subscript(i: Int, j: Int) -> Float {
        get { base[i * rowStride + j * colStride] }
        nonmutating set { base[i * rowStride + j * colStride] = newValue }
    }
}

/// Run-time settings shared by all kernels.
public enum KernelSettings {
    nonisolated(unsafe) private static var _threads: Int = {
        if let s = getenv("GLIDE_THREADS"), let n = Int(String(cString: s)), n > 0 { return n }
        return max(1, Int(sysconf(Int32(_SC_NPROCESSORS_ONLN))))
    }()
    nonisolated(unsafe) private static var _forceScalar: Bool = getenv("GLIDE_SCALAR_KERNELS") != nil

    /// Worker threads used by the parallel kernels (default: online CPUs, or `GLIDE_THREADS`).
    /// Results are bit-identical for every value. Set it before running work, not concurrently with it.
    public static var threadCount: Int {
        get { _threads }
        set { _threads = max(1, newValue) }
    }

    /// When true every kernel takes its portable scalar path (also set by env `GLIDE_SCALAR_KERNELS`).
    public static var forceScalar: Bool {
        get { _forceScalar }
        set { _forceScalar = newValue }
    }

    /// True when this CPU has AVX2 + FMA + F16C and the fast x86 kernels can run.
    public static let hasAVX2FMA: Bool = glide_cpu_has_avx2_fma() != 0

    /// True when the AVX2 (or higher) fast paths are in use now: the CPU has them, `forceScalar` is off and
    /// `cpuCap` allows at least `.avx2`.
    public static var useAVX2: Bool { cpuPath >= .avx2 }

    /// The instruction-set level in use now, for logs and benchmarks ("avx512", "avx2" or "scalar");
    /// `gemmPath(for:)` names the GEMM micro-kernel per weight type.
    public static var activePath: String { cpuPath.description }
}
