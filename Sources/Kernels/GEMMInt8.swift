// int8-weight GEMM on vpdpbusd (AVX512-VNNI / AVX-VNNI) and its portable emulation, chosen at run time.
// The C side is gemm_int8_vnni.c; `gemmAVX2` hands int8 weights here when a vpdpbusd path is active.
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import CKernelsX86

/// Which code computes GEMMs and convolutions with int8 weights on the fast path.
public enum Int8GEMMPath: String, Sendable, CaseIterable {
    /// AVX512-VNNI `vpdpbusd` on zmm (8x32 tile).
    case avx512vnni
    /// AVX-VNNI `vpdpbusd` on ymm (6x16 tile).
    case avxvnni
    /// AVX2 `vpmaddwd`: int8 weights widened to int16 (gemm.c).
    case avx2
    /// Portable C emulation of `vpdpbusd` with the AVX512-VNNI tile layout (tests and CPUs without VNNI).
    case emulatedZMM = "emulated-zmm"
    /// Portable C emulation of `vpdpbusd` with the AVX-VNNI tile layout.
    case emulatedYMM = "emulated-ymm"

    /// True when this CPU can run the path.
    public var isSupported: Bool {
        switch self {
        case .avx512vnni: return KernelSettings.hasAVX512VNNI
        case .avxvnni: return KernelSettings.hasAVXVNNI
        case .avx2: return KernelSettings.hasAVX2FMA
        case .emulatedZMM, .emulatedYMM: return true
        }
    }

    /// The CPU flag a path needs (for skip messages), nil for the portable ones.
    public var requiredFlag: String? {
        switch self {
        case .avx512vnni: return "avx512_vnni"
        case .avxvnni: return "avx_vnni"
        case .avx2: return "avx2"
        case .emulatedZMM, .emulatedYMM: return nil
        }
    }

    /// Register tile (rows, columns): threads split the work on multiples of it.
    var tile: (rows: Int, columns: Int) {
        switch self {
        case .avx512vnni, .emulatedZMM: return (Int(GLIDE_I8_ZMM_MR), Int(GLIDE_I8_ZMM_NB))
        case .avxvnni, .emulatedYMM: return (Int(GLIDE_I8_YMM_MR), Int(GLIDE_I8_YMM_NB))
        case .avx2: return (Int(GLIDE_GEMM_MR), Int(GLIDE_GEMM_NR))
        }
    }
}

extension KernelSettings {
    /// True when the CPU has AVX512F/BW/VL + AVX512_VNNI.
    public static let hasAVX512VNNI: Bool = glide_cpu_has_avx512_vnni() != 0
    /// True when the CPU has AVX-VNNI (VEX `vpdpbusd` on ymm).
    public static let hasAVXVNNI: Bool = glide_cpu_has_avx_vnni() != 0

    /// The best int8 path at the current dispatch level (`KernelSettings.cpuPath`, capped by env `GLIDE_CPU`):
    /// `avx512` uses AVX512-VNNI, `avxvnni` AVX-VNNI, `avx2` neither (as on Zen 3).
    static var defaultInt8Path: Int8GEMMPath {
        if has(.avx512vnni) { return .avx512vnni }
        if has(.avxVNNI) { return .avxvnni }
        return .avx2
    }

    nonisolated(unsafe) private static var _int8PathOverride: Int8GEMMPath?

    /// The path of int8-weight GEMMs and convolutions when the fast kernels are on (default: the best one at
    /// the current dispatch level). Setting an unsupported path falls back to `.avx2`; `resetInt8Path()`
    /// returns to the default.
    public static var int8Path: Int8GEMMPath {
        get { _int8PathOverride ?? defaultInt8Path }
        set { _int8PathOverride = newValue.isSupported ? newValue : .avx2 }
    }

    /// Drops an explicit `int8Path`, so the path follows `cpuPath` again.
    public static func resetInt8Path() { _int8PathOverride = nil }

    /// True when int8 GEMMs use a `vpdpbusd` path (real or emulated) rather than AVX2 `vpmaddwd`.
    static var int8UsesDotProduct: Bool { int8Path != .avx2 }

    /// Fewest 2x2 tiles (batch x tiles per image) for which an int8-weight 3x3 convolution takes the
    /// Winograd path (in integers, `WinogradInt8.swift`), per int8 path: `winogradMinimumTilesInt8VNNI` with
    /// AVX512-VNNI, `winogradMinimumTilesInt8` with the ymm paths (vpmaddwd, AVX-VNNI). Measured with
    /// `glide bench kernels --cpu-time` (README "Fast paths").
    static var int8WinogradMinimumTiles: Int {
        if let forced = int8WinogradMinimumTilesOverride { return forced }
        switch int8Path {
        case .avx512vnni, .emulatedZMM: return winogradMinimumTilesInt8VNNI
        case .avxvnni, .avx2, .emulatedYMM: return winogradMinimumTilesInt8
        }
    }

    /// `int8WinogradMinimumTiles` on the AVX512-VNNI path: 16x16x576 batch 1 (64 tiles) gains 1.1-1.4x over the
    /// vpdpbusd implicit GEMM, 8x8x768 batch 2 (32 tiles) loses 2x.
    nonisolated(unsafe) public internal(set) static var winogradMinimumTilesInt8VNNI = 64

    /// Env `GLIDE_INT8_WINOGRAD_MIN_TILES` (benchmarks): overrides `int8WinogradMinimumTiles` on every path.
    nonisolated(unsafe) static var int8WinogradMinimumTilesOverride: Int? =
        getenv("GLIDE_INT8_WINOGRAD_MIN_TILES").flatMap { Int(String(cString: $0)) }
}

/// Throughput of `vpdpbusd` on one thread in int8 GOP/s (2 ops per multiply-add), register-only
/// (12 independent chains); 0 when the CPU lacks the instruction.
public func measureVNNIPeakGOPS(zmm: Bool = true, seconds: Double = 0.2, cpuTime: Bool = false) -> Double {
    guard zmm ? KernelSettings.hasAVX512VNNI : KernelSettings.hasAVXVNNI else { return 0 }
    let clock = cpuTime ? threadCPUSeconds : monotonicSeconds
    let macsPerIteration = 12.0 * (zmm ? 64 : 32)
    var iterations = 1_000_000
    while true {
        let t0 = clock()
        _ = zmm ? glide_vnni512_peak_probe(iterations) : glide_avxvnni_peak_probe(iterations)
        let dt = clock() - t0
        if dt >= seconds { return Double(iterations) * macsPerIteration * 2 / dt / 1e9 }
        iterations = Int(Double(iterations) * min(10, max(1.5, seconds * 1.2 / max(dt, 1e-6))))
    }
}

/// True when an int8-weight convolution is cheaper on f32 weights (widened once per call; no activation
/// quantization): with few output channels (the UNet's 192->6 output convolution: every int8 path is bound by
/// quantizing the activations, which only 6 rows share) and, on the ymm paths, with a short reduction (the
/// 3->192 input convolution, K = 27). Measured with `glide bench kernels --filter '>'`.
func int8ConvolutionRunsInF32(_ weight: WeightMatrix, _ g: Conv2dGeometry) -> Bool {
    guard case .int8 = weight.elements, KernelSettings.useAVX2 else { return false }
    if g.outChannels < 16 { return true }
    let zmm = KernelSettings.int8Path == .avx512vnni || KernelSettings.int8Path == .emulatedZMM
    return !zmm && g.reductionLength < 64
}

/// Calls `body` with `weight` widened to dense f32 (int8 dequantized with its row scales).
func withF32Weights<R>(_ weight: WeightMatrix, _ body: (WeightMatrix) -> R) -> R {
    let scratch = ScratchFrame(); defer { scratch.release() }
    let dense = scratch.allocate(Float.self, count: weight.rows * weight.cols)
    for r in 0..<weight.rows { widenRow(weight, r, into: dense + r * weight.cols) }
    return body(WeightMatrix(rows: weight.rows, cols: weight.cols, f32: dense))
}
