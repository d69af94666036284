// Run-time dispatch levels: what the CPU supports, capped by env GLIDE_CPU / `KernelSettings.cpuCap`.
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import CKernelsX86

/// Instruction-set levels of the kernels' run-time dispatcher, lowest first.
///
/// - `scalar`: the portable Swift twins only.
/// - `avx2`: AVX2 + FMA + F16C (6x16 f32 GEMM, int8 via `vpmaddwd`, vector math), as on Zen 3.
/// - `avxvnni`: `avx2` plus AVX-VNNI (ymm `vpdpbusd`/`vpdpwssd` for int8 weights; e.g. Alder Lake).
/// - `avx512`: AVX-512 F + BW + VL on top (14x32 f32 GEMM on 32 zmm registers; with AVX512_BF16 bf16
///   weights use `vdpbf16ps`; AVX512_VNNI code may run here).
public enum CPUPath: Int, Comparable, CaseIterable, Sendable, CustomStringConvertible {
    case scalar, avx2, avxvnni, avx512

    /// Parses `scalar`, `avx2`, `avxvnni` or `avx512` (the values of env `GLIDE_CPU`).
    public init?(name: String) {
        switch name.lowercased() {
        case "scalar": self = .scalar
        case "avx2": self = .avx2
        case "avxvnni", "avx_vnni", "avx2+vnni": self = .avxvnni
        case "avx512": self = .avx512
        default: return nil
        }
    }

    public var description: String {
        switch self {
        case .scalar: return "scalar"
        case .avx2: return "avx2"
        case .avxvnni: return "avxvnni"
        case .avx512: return "avx512"
        }
    }

    public static func < (a: CPUPath, b: CPUPath) -> Bool { a.rawValue < b.rawValue }
}

/// x86 instruction-set extensions the kernels dispatch on (names as in /proc/cpuinfo).
public enum CPUFeature: String, CaseIterable, Sendable {
    /// AVX2 + FMA + F16C with YMM state enabled.
    case avx2FMA = "avx2+fma+f16c"
    case avx512f, avx512bw, avx512vl
    /// `vdpbf16ps` / `vcvtne2ps2bf16` on zmm.
    case avx512bf16 = "avx512_bf16"
    /// `vpdpbusd` / `vpdpwssd` on zmm (EVEX).
    case avx512vnni = "avx512_vnni"
    /// `vpdpbusd` / `vpdpwssd` on ymm (VEX, e.g. Alder Lake, Zen 5).
    case avxVNNI = "avx_vnni"

    /// The lowest dispatch level at which kernels may use this feature.
    public var level: CPUPath {
        switch self {
        case .avx2FMA: return .avx2
        case .avxVNNI: return .avxvnni
        case .avx512f, .avx512bw, .avx512vl, .avx512bf16, .avx512vnni: return .avx512
        }
    }

    var bit: UInt32 {
        switch self {
        case .avx2FMA: return UInt32(GLIDE_CPU_AVX2_FMA)
        case .avx512f: return UInt32(GLIDE_CPU_AVX512F)
        case .avx512bw: return UInt32(GLIDE_CPU_AVX512BW)
        case .avx512vl: return UInt32(GLIDE_CPU_AVX512VL)
        case .avx512bf16: return UInt32(GLIDE_CPU_AVX512BF16)
        case .avx512vnni: return UInt32(GLIDE_CPU_AVX512VNNI)
        case .avxVNNI: return UInt32(GLIDE_CPU_AVXVNNI)
        }
    }
}

/// Weight element types, for naming the GEMM path that runs per dtype.
public enum WeightElementKind: String, CaseIterable, Sendable {
    case f32, f16, bf16, int8
}

extension WeightElements {
    /// The element type without its storage.
    public var kind: WeightElementKind {
        switch self {
        case .f32: return .f32
        case .f16: return .f16
        case .bf16: return .bf16
        case .int8: return .int8
        }
    }
}

extension KernelSettings {
    /// The features this CPU has (and the OS enabled), whatever the cap.
    public static let detectedFeatures: Set<CPUFeature> = {
        let bits = UInt32(glide_cpu_features())
        return Set(CPUFeature.allCases.filter { bits & $0.bit != 0 })
    }()

    /// The highest level this CPU supports (`.avx512` needs AVX-512 F, BW and VL besides AVX2/FMA/F16C).
    public static let supportedPath: CPUPath = {
        let f = detectedFeatures
        guard f.contains(.avx2FMA) else { return .scalar }
        if f.isSuperset(of: [.avx512f, .avx512bw, .avx512vl]) { return .avx512 }
        return f.contains(.avxVNNI) ? .avxvnni : .avx2
    }()

    nonisolated(unsafe) private static var _cpuCap: CPUPath = {
        guard let s = getenv("GLIDE_CPU") else { return .avx512 }
        let name = String(cString: s)
        if let p = CPUPath(name: name) { return p }
        let message = Array("glide: ignoring GLIDE_CPU=\(name) (use avx512, avxvnni, avx2 or scalar)\n".utf8)
        _ = message.withUnsafeBytes { write(2, $0.baseAddress, $0.count) }
        return .avx512
    }()

    /// The highest dispatch level kernels may use (default `.avx512`, or env `GLIDE_CPU=avx512|avx2|scalar`),
    /// so one machine can compare paths in one run. Set it before running work, not concurrently with it.
    public static var cpuCap: CPUPath {
        get { _cpuCap }
        set { _cpuCap = newValue }
    }

    /// The level in use now: `min(cpuCap, supportedPath)`, or `.scalar` with `forceScalar`.
    public static var cpuPath: CPUPath { forceScalar ? .scalar : min(cpuCap, supportedPath) }

    /// True when kernels may use `feature` now: the CPU has it and `cpuPath` reaches its level
    /// (e.g. `has(.avx512vnni)` is false under `GLIDE_CPU=avx2` even on a CPU with AVX512_VNNI).
    public static func has(_ feature: CPUFeature) -> Bool {
        detectedFeatures.contains(feature) && cpuPath >= feature.level
    }

    nonisolated(unsafe) private static var _bf16Dot: Bool = getenv("GLIDE_BF16_AS_F32") == nil

    /// When true (default; env `GLIDE_BF16_AS_F32` turns it off) and `has(.avx512bf16)`, bf16 weights are
    /// multiplied with `vdpbf16ps`: activations rounded to bf16 (RNE) while packing, f32 accumulation.
    /// Otherwise bf16 weights are widened to f32 and take the f32 path (exact products).
    public static var bf16DotProducts: Bool {
        get { _bf16Dot }
        set { _bf16Dot = newValue }
    }

    /// True when GEMMs and convolutions with bf16 weights use `vdpbf16ps` now.
    public static var useBF16Dot: Bool { bf16DotProducts && has(.avx512bf16) }

    /// The GEMM micro-kernel `gemm`/`linear`/`conv2d` use now for weights of `kind`, e.g.
    /// "avx512 f32 14x32", "avx512_bf16 vdpbf16ps 14x32", "avx2 f32 6x16", "avx2 int8 vpmaddwd 6x16", "scalar".
    /// `columns`: the GEMM's N (f32 weights with fewer than 129 columns keep the AVX2 kernel).
    public static func gemmPath(for kind: WeightElementKind, columns: Int = Int.max) -> String {
        switch fastGemmKernel(for: kind, columns: columns) {
        case nil: return "scalar"
        case .avx2?: return kind == .int8 ? "avx2 int8 vpmaddwd 6x16" : "avx2 f32 6x16"
        case .avx512F32?: return "avx512 f32 \(avx512Tile)"
        case .avx512BF16?: return "avx512_bf16 vdpbf16ps \(avx512Tile)"
        case .bf16Emulated?: return "bf16 emulated \(avx512Tile)"
        case .int8Dot(let p)?:
            let (mr, nr) = p.tile
            switch p {
            case .avx512vnni: return "avx512_vnni vpdpbusd \(mr)x\(nr)"
            case .avxvnni: return "avx_vnni vpdpbusd \(mr)x\(nr)"
            default: return "int8 \(p.rawValue) vpdpbusd \(mr)x\(nr)"
            }
        }
    }
}

private let avx512Tile = "\(GLIDE_GEMM512_MR)x\(GLIDE_GEMM512_NR)"

/// The C GEMM entry points behind `gemm`/`conv2d` (all share `glide_gemm_desc`).
enum FastGemmKernel {
    /// `glide_gemm_avx2`: 6x16 f32 FMA tile (f16/bf16 widened), int8 via `vpmaddwd`.
    case avx2
    /// `glide_gemm_avx512`: 14x32 f32 FMA tile (f16/bf16 widened).
    case avx512F32
    /// `glide_gemm_avx512_bf16`: bf16 weights x bf16-rounded activations, `vdpbf16ps`.
    case avx512BF16
    /// `glide_gemm_bf16_emulated`: the same as `avx512BF16` with a portable emulation of the instruction.
    case bf16Emulated
    /// int8 weights x u8 activations on `vpdpbusd` (`gemm_int8_vnni.c`): AVX512-VNNI, AVX-VNNI or the emulation.
    case int8Dot(Int8GEMMPath)

    typealias Entry = @convention(c) (UnsafePointer<glide_gemm_desc>?, Int, Int, Int, Int) -> Int32

    var entry: Entry {
        switch self {
        case .avx2: return glide_gemm_avx2
        case .avx512F32: return glide_gemm_avx512
        case .avx512BF16: return glide_gemm_avx512_bf16
        case .bf16Emulated: return glide_gemm_bf16_emulated
        case .int8Dot(let p):
            switch p {
            case .avx512vnni: return { glide_gemm_int8_avx512vnni($0, $1, $2, $3, $4) }
            case .avxvnni: return { glide_gemm_int8_avxvnni($0, $1, $2, $3, $4) }
            case .emulatedZMM: return { glide_gemm_int8_emulated($0, $1, $2, $3, $4, Int32(GLIDE_I8_LAYOUT_ZMM)) }
            case .emulatedYMM: return { glide_gemm_int8_emulated($0, $1, $2, $3, $4, Int32(GLIDE_I8_LAYOUT_YMM)) }
            case .avx2: return glide_gemm_avx2
            }
        }
    }

    /// Register tile (rows, columns), for tile-aligned work partitioning.
    var tile: (rows: Int, columns: Int) {
        switch self {
        case .avx2: return (Int(GLIDE_GEMM_MR), Int(GLIDE_GEMM_NR))
        case .int8Dot(let p): return p.tile
        default: return (Int(GLIDE_GEMM512_MR), Int(GLIDE_GEMM512_NR))
        }
    }
}

/// Fewest columns for which f32 weights take the AVX-512 kernel: below, the AVX2 kernel reads the weight rows
/// directly instead of packing them (the timestep MLPs, N = batch). Measured (Zen 5, 1 thread): at N = 64-128
/// the packed AVX-512 kernel already runs 1.4-1.8x the direct AVX2 one.
let avx512MinimumColumnsF32 = 16

/// The fast kernel for weights of `kind` at the current settings (nil: the scalar twin).
func fastGemmKernel(for kind: WeightElementKind, columns: Int) -> FastGemmKernel? {
    let path = KernelSettings.cpuPath
    if path == .scalar { return nil }
    if kind == .int8 {
        let p = KernelSettings.int8Path
        return p == .avx2 ? .avx2 : .int8Dot(p)
    }
    switch path {
    case .scalar: return nil
    case .avx2, .avxvnni: return .avx2
    case .avx512:
        switch kind {
        case .int8: return .avx2
        case .bf16 where KernelSettings.useBF16Dot: return .avx512BF16
        case .f32 where columns < avx512MinimumColumnsF32: return .avx2
        default: return .avx512F32
        }
    }
}

/// The path `conv2d` takes now for geometry `g` and weights of `kind`: the GEMM path (`KernelSettings.gemmPath`)
/// of the implicit-im2col GEMM, or "winograd " + the path of its 16 GEMMs.
public func conv2dPath(_ g: Conv2dGeometry, kind: WeightElementKind) -> String {
    if conv2dUsesWinograd(g, kind: kind) {
        if kind == .int8 && KernelSettings.int8WinogradInIntegers {
            let tile = "F(\(KernelSettings.int8WinogradTile(for: g).rawValue))"
            return "winograd int8 integer \(tile) (\(KernelSettings.int8Path.rawValue))"
        }
        let tiles = ((g.outHeight + 1) / 2) * ((g.outWidth + 1) / 2)
        return "winograd " + KernelSettings.gemmPath(for: winogradGemmKind(kind), columns: tiles)
    }
    return KernelSettings.gemmPath(for: kind, columns: g.outHeight * g.outWidth)
}
