// Dispatch to the AVX2/FMA GEMM in CKernelsX86 (packing, cache blocking), split over threads.
import CKernelsX86

extension KernelSettings {
    nonisolated(unsafe) private static var _int8ActivationMax: Int32 = 32767

    /// int8-weight GEMMs quantize activations on the fly to `|q| <= int8ActivationMax`. The default, 32767
    /// (int8 weights x int16 activations), runs at the same speed on AVX2 as 127 (int8 x int8; both use
    /// `vpmaddwd`) and is ~256x more precise on the activation side, so the int8 file's error is essentially
    /// its weight quantization alone.
    public static var int8ActivationMax: Int {
        get { Int(_int8ActivationMax) }
        set { _int8ActivationMax = Int32(max(1, min(32767, newValue))) }
    }
}

/// The fast path of `gemm` and `conv2d` (caller checked `KernelSettings.useAVX2`).
func gemmAVX2(weight: WeightMatrix, source: GemmSource, columns: Int, output: MutableMatrixOperand,
              bias: UnsafePointer<Float>?, accumulate: Bool, threads: Int? = nil) {
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
    d.act_qmax = Int32(KernelSettings.int8ActivationMax)

    let m = weight.rows, n = columns
    let macs = Double(m) * Double(n) * Double(max(weight.cols, 1))
    var t = threads ?? KernelSettings.threadCount
    if macs < 200_000 { t = 1 }
    var run: GemmEntry = { glide_gemm_avx2($0, $1, $2, $3, $4) }
    var (mr, nr) = (Int(GLIDE_GEMM_MR), Int(GLIDE_GEMM_NR))
    if case .int8 = weight.elements, let dot = int8DotProductEntry() { (run, mr, nr) = (dot.entry, dot.rows, dot.columns) }
    // Split the dimension whose duplicated packing is cheaper: splitting N re-packs W (M*K) per thread,
    // splitting M re-packs X (K*N) per thread.
    let splitN = n >= m
    let blocks = splitN ? (n + nr - 1) / nr : (m + mr - 1) / mr
    t = max(1, min(t, blocks))
    let desc = d
    var failed = false
    if t == 1 {
        failed = withUnsafePointer(to: desc) { run($0, 0, m, 0, n) } != 0
    } else {
        let flags = UnsafeMutablePointer<Int32>.allocate(capacity: t)
        defer { flags.deallocate() }
        parallelFor(t) { i in
            let lo = blocks * i / t, hi = blocks * (i + 1) / t
            let r: Int32 = withUnsafePointer(to: desc) { p in
                if splitN {
                    return run(p, 0, m, lo * nr, min(n, hi * nr))
                } else {
                    return run(p, lo * mr, min(m, hi * mr), 0, n)
                }
            }
            flags[i] = r
        }
        for i in 0..<t where flags[i] != 0 { failed = true }
    }
    precondition(!failed, "gemm: out of memory for packing buffers")
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
