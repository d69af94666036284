// Dispatch to the AVX2/FMA GEMM in CKernelsX86 (packing, cache blocking), split over threads.
import CKernelsX86
#if canImport(Glibc)
import Glibc
#endif

extension KernelSettings {
    /// True when env `GLIDE_INT8_ACTIVATION_MAX` was set at start: it then overrides every matrix's own
    /// `WeightMatrix.int8ActivationMax` (error and speed studies of one bound for all layers).
    public static let int8ActivationMaxFromEnvironment = getenv("GLIDE_INT8_ACTIVATION_MAX") != nil

    /// The bound used for `weight`'s activations: the environment's, else the matrix's own, else `int8ActivationMax`.
    static func int8ActivationMax(for weight: WeightMatrix) -> Int {
        if int8ActivationMaxFromEnvironment { return int8ActivationMax }
        return weight.int8ActivationMax.map { max(1, min(32767, $0)) } ?? int8ActivationMax
    }

    nonisolated(unsafe) private static var _int8ActivationMax: Int32 =
        getenv("GLIDE_INT8_ACTIVATION_MAX").flatMap { Int32(String(cString: $0)) }.map { max(1, min(32767, $0)) } ?? 32767

    /// int8-weight GEMMs quantize activations on the fly to `|q| <= int8ActivationMax` unless the matrix has its own
    /// bound (`WeightMatrix.int8ActivationMax`, set from the file's `activation_bits`). The default, 32767
    /// (int8 weights x int16 activations), runs at the same speed on AVX2 as 127 (int8 x int8; both use
    /// `vpmaddwd`) and is ~256x more precise on the activation side, so the int8 file's error is essentially
    /// its weight quantization alone. Env `GLIDE_INT8_ACTIVATION_MAX=N` sets it at start (error studies).
    public static var int8ActivationMax: Int {
        get { Int(_int8ActivationMax) }
        set { _int8ActivationMax = Int32(max(1, min(32767, newValue))) }
    }
}

/// The fast path of `gemm` and `conv2d` (caller checked `KernelSettings.useAVX2`).
/// `kernel` overrides the choice of `fastGemmKernel` (tests use it for the bf16 emulation).
func gemmAVX2(weight: WeightMatrix, source: GemmSource, columns: Int, output: MutableMatrixOperand,
              bias: UnsafePointer<Float>?, accumulate: Bool, threads: Int? = nil, kernel: FastGemmKernel? = nil) {
    let chosen = kernel ?? fastGemmKernel(for: weight.elements.kind, columns: columns) ?? .avx2
    let entry = chosen.entry
    var d = glide_gemm_desc()
    d.M = weight.rows; d.N = columns; d.K = weight.cols
    d.ldw = weight.rowStride
    switch weight.elements {
    case .f32(let p): d.w_dtype = Int32(GLIDE_W_F32); d.w = UnsafeRawPointer(p)
    case .f16(let p): d.w_dtype = Int32(GLIDE_W_F16); d.w = UnsafeRawPointer(p)
    case .bf16(let p): d.w_dtype = Int32(GLIDE_W_BF16); d.w = UnsafeRawPointer(p)
    case .int8(let p, let s): d.w_dtype = Int32(GLIDE_W_INT8); d.w = UnsafeRawPointer(p); d.w_scales = s
    }
    switch source {
    case .matrix(let x):
        d.src_kind = Int32(GLIDE_SRC_STRIDED); d.x = x.base; d.x_rs = x.rowStride; d.x_cs = x.colStride
    case .conv(let c):
        let g = c.geometry
        d.src_kind = Int32(GLIDE_SRC_CONV); d.x = c.input
        d.conv_c = Int32(g.inChannels); d.conv_h = Int32(g.height); d.conv_w = Int32(g.width)
        d.conv_k = Int32(g.kernelSize); d.conv_stride = Int32(g.stride); d.conv_pad = Int32(g.padding)
        d.conv_ow = Int32(g.outWidth)
    }
    d.y = output.base; d.y_rs = output.rowStride; d.y_cs = output.colStride
    d.bias = bias; d.accumulate = accumulate ? 1 : 0
    d.act_qmax = Int32(KernelSettings.int8ActivationMax(for: weight))
    attachPackedWeights(&d, weight: weight, kernel: chosen)

    let m = weight.rows, n = columns
    let macs = Double(m) * Double(n) * Double(max(weight.cols, 1))
    var t = threads ?? KernelSettings.threadCount
    if macs < 200_000 { t = 1 }
    let (mr, nr) = chosen.tile
    // Split the dimension whose duplicated packing is cheaper: splitting N re-packs W (M*K) per thread,
    // splitting M re-packs X (K*N) per thread.
    let splitN = n >= m
    let blocks = splitN ? (n + nr - 1) / nr : (m + mr - 1) / mr
    t = max(1, min(t, blocks))
    let desc = d
    var failed = false
    if t == 1 {
        failed = withUnsafePointer(to: desc) { entry($0, 0, m, 0, n) } != 0
    } else {
        let scratch = ScratchFrame(); defer { scratch.release() }
        let flags = scratch.allocate(Int32.self, count: t)
        parallelFor(t) { i in
            let lo = blocks * i / t, hi = blocks * (i + 1) / t
            let r: Int32 = withUnsafePointer(to: desc) { p in
                if splitN {
                    return entry(p, 0, m, lo * nr, min(n, hi * nr))
                } else {
                    return entry(p, lo * mr, min(m, hi * mr), 0, n)
                }
            }
            flags[i] = r
        }
        for i in 0..<t where flags[i] != 0 { failed = true }
    }
    precondition(!failed, "gemm: out of memory for packing buffers")
}

/// The bf16 GEMM with a portable emulation of `vdpbf16ps` in place of the instruction: bf16 `weight` (other
/// types trap) x `input` rounded to bf16 (RNE), f32 accumulation, through the same packing, blocking and
/// store code as the AVX512_BF16 path, so it gives the same bits on CPUs that implement the instruction as
/// Intel's SDM. Runs on every CPU (slowly): the scalar twin of the `vdpbf16ps` path.
public func gemmBF16Emulated(weight: WeightMatrix, input: MatrixOperand, columns: Int, output: MutableMatrixOperand,
                             bias: UnsafePointer<Float>? = nil, accumulate: Bool = false) {
    guard case .bf16 = weight.elements else { preconditionFailure("gemmBF16Emulated: bf16 weights only") }
    if weight.rows == 0 || columns == 0 { return }
    gemmAVX2(weight: weight, source: .matrix(input), columns: columns, output: output, bias: bias,
             accumulate: accumulate, kernel: .bf16Emulated)
}

/// `conv2d` (implicit-im2col GEMM, never Winograd) with bf16 weights through `gemmBF16Emulated`'s kernel.
public func conv2dBF16Emulated(input: UnsafePointer<Float>, weight: WeightMatrix, bias: UnsafePointer<Float>?,
                               output: UnsafeMutablePointer<Float>, geometry g: Conv2dGeometry, accumulate: Bool = false) {
    guard case .bf16 = weight.elements else { preconditionFailure("conv2dBF16Emulated: bf16 weights only") }
    precondition(weight.rows == g.outChannels && weight.cols == g.reductionLength)
    let hw = g.height * g.width, ohw = g.outHeight * g.outWidth
    for n in 0..<g.batch {
        gemmAVX2(weight: weight, source: .conv(ConvSource(input: input + n * g.inChannels * hw, geometry: g)),
                 columns: ohw, output: MutableMatrixOperand(output + n * g.outChannels * ohw, rowStride: ohw),
                 bias: bias, accumulate: accumulate, kernel: .bf16Emulated)
    }
}

/// Measures this machine's f32 FMA peak in GFLOP/s on one thread (12 independent 8-wide FMA chains).
/// With `cpuTime` the thread's CPU time is used instead of wall time (insensitive to other processes).
public func measureFMAPeakGFLOPS(seconds: Double = 0.2, cpuTime: Bool = false) -> Double {
    guard KernelSettings.hasAVX2FMA else { return 0 }
    let clock = cpuTime ? threadCPUSeconds : monotonicSeconds
    var iterations = 1_000_000
    while true {
        let t0 = clock()
        _ = glide_fma_peak_probe(iterations)
        let dt = clock() - t0
        if dt >= seconds { return Double(iterations) * 12 * 16 / dt / 1e9 }
        iterations = Int(Double(iterations) * min(10, max(1.5, seconds * 1.2 / max(dt, 1e-6))))
    }
}

/// The instruction sets with a peak probe (`measurePeakGFLOPS`).
public enum PeakProbe: String, CaseIterable, Sendable {
    /// 8-wide f32 FMA (`vfmadd231ps ymm`), 12 chains.
    case fma256 = "avx2 fma"
    /// 16-wide f32 FMA (`vfmadd231ps zmm`), 24 chains.
    case fma512 = "avx512 fma"
    /// `vdpbf16ps zmm` (32 bf16 products per instruction, counted as 64 FLOPs), 24 chains.
    case bf16Dot512 = "avx512 vdpbf16ps"
    /// `vpdpbusd zmm` (64 int8 products per instruction, counted as 128 ops), 12 chains.
    case vnni512 = "avx512_vnni vpdpbusd"
    /// `vpdpbusd ymm` (AVX-VNNI, 32 int8 products per instruction), 12 chains.
    case vnni256 = "avx_vnni vpdpbusd"

    /// True when this CPU can run the probe (whatever `cpuCap`).
    public var available: Bool {
        switch self {
        case .fma256: return KernelSettings.hasAVX2FMA
        case .fma512: return KernelSettings.supportedPath == .avx512
        case .bf16Dot512: return KernelSettings.supportedPath == .avx512 && KernelSettings.detectedFeatures.contains(.avx512bf16)
        case .vnni512: return KernelSettings.hasAVX512VNNI
        case .vnni256: return KernelSettings.hasAVXVNNI
        }
    }
}

/// One thread's peak GFLOP/s of `probe` (0 when the CPU lacks it). `cpuTime`: thread CPU time, not wall time.
public func measurePeakGFLOPS(_ probe: PeakProbe, seconds: Double = 0.2, cpuTime: Bool = false) -> Double {
    guard probe.available else { return 0 }
    if probe == .fma256 { return measureFMAPeakGFLOPS(seconds: seconds, cpuTime: cpuTime) }
    if probe == .vnni512 || probe == .vnni256 {
        return measureVNNIPeakGOPS(zmm: probe == .vnni512, seconds: seconds, cpuTime: cpuTime)
    }
    let clock = cpuTime ? threadCPUSeconds : monotonicSeconds
    let flopsPerIteration: Double = probe == .fma512 ? 24 * 32 : 24 * 64
    var iterations = 1_000_000
    while true {
        let t0 = clock()
        _ = probe == .fma512 ? glide_fma512_peak_probe(iterations) : glide_bf16_peak_probe(iterations)
        let dt = clock() - t0
        if dt >= seconds { return Double(iterations) * flopsPerIteration / dt / 1e9 }
        iterations = Int(Double(iterations) * min(10, max(1.5, seconds * 1.2 / max(dt, 1e-6))))
    }
}
