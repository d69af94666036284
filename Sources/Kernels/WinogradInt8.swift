// Winograd F(2x2, 3x3), F(4x2, 3x3) and F(4x4, 3x3) for int8 weights in integers (gemm_int8_avx2.c,
// winograd_f42.c, winograd_f44.c): exact int16 transformed weights, the transformed input quantized per column and
// 256-long K block, int16 x int16 -> int32 products.
// `conv2dWinograd` hands int8 weights here; `conv2dScalar` is the twin.
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import CKernelsX86

/// The integer GEMM of the int8 Winograd products.
public enum Int8WinogradKernel: String, Sendable {
    /// AVX2 `vpmaddwd`, 6x16 tile.
    case avx2
    /// AVX-VNNI `vpdpwssd` on ymm, 6x16 tile.
    case avxvnni
    /// AVX512-VNNI `vpdpwssd`, 8x32 tile.
    case avx512vnni
    /// Portable emulation with the AVX2 tile.
    case emulatedYMM = "emulated-ymm"
    /// Portable emulation with the AVX512 tile.
    case emulatedZMM = "emulated-zmm"
}

extension Int8WinogradKernel {
    /// Output channels per weight panel (the micro-kernel's rows) and tiles per activation panel (its columns).
    var panelShape: (mr: Int, nb: Int) {
        switch self {
        case .avx512vnni, .emulatedZMM: return (Int(GLIDE_WI16_ZMM_MR), Int(GLIDE_WI16_ZMM_NB))
        case .avx2, .avxvnni, .emulatedYMM: return (Int(GLIDE_WI16_YMM_MR), Int(GLIDE_WI16_YMM_NB))
        }
    }

    /// The GLIDE_WI16_KERNEL_* number the fused C passes take.
    var id: Int32 {
        switch self {
        case .avx2: return Int32(GLIDE_WI16_KERNEL_AVX2)
        case .avxvnni: return Int32(GLIDE_WI16_KERNEL_AVXVNNI)
        case .avx512vnni: return Int32(GLIDE_WI16_KERNEL_AVX512VNNI)
        case .emulatedYMM: return Int32(GLIDE_WI16_KERNEL_EMULATED_YMM)
        case .emulatedZMM: return Int32(GLIDE_WI16_KERNEL_EMULATED_ZMM)
        }
    }

    /// The position GEMM (`glide_gemm_wi16_*`).
    var gemm: WinogradInt16Entry {
        switch self {
        case .avx2: return { glide_gemm_wi16_avx2($0, $1, $2, $3, $4) }
        case .avxvnni: return { glide_gemm_wi16_avxvnni($0, $1, $2, $3, $4) }
        case .avx512vnni: return { glide_gemm_wi16_avx512vnni($0, $1, $2, $3, $4) }
        case .emulatedYMM: return { glide_gemm_wi16_emulated($0, $1, $2, $3, $4, Int32(GLIDE_I8_LAYOUT_YMM)) }
        case .emulatedZMM: return { glide_gemm_wi16_emulated($0, $1, $2, $3, $4, Int32(GLIDE_I8_LAYOUT_ZMM)) }
        }
    }
}

/// The tile of the integer int8 Winograd (`KernelSettings.int8WinogradTile`).
public enum Int8WinogradTile: String, Sendable {
    /// F(2x2, 3x3), F(4x2, 3x3) or F(4x4, 3x3) per shape, whichever measured faster (within the error gate).
    case auto
    /// F(2x2, 3x3): 16 positions per 4 outputs.
    case f2x2 = "2x2"
    /// F(4x2, 3x3): 24 positions per 8 outputs (winograd_f42.c).
    case f4x2 = "4x2"
    /// F(4x4, 3x3): 36 positions per 16 outputs (winograd_f44.c).
    case f4x4 = "4x4"
}

extension KernelSettings {
    nonisolated(unsafe) private static var _int8WinogradInIntegers = getenv("GLIDE_INT8_WINOGRAD_F32") == nil
    nonisolated(unsafe) private static var _int8WinogradActivationMax: Int32 = Int32(GLIDE_WI16_QMAX)

    /// When true (default; env `GLIDE_INT8_WINOGRAD_F32` turns it off) int8-weight Winograd convolutions run in
    /// integers; otherwise the weights are widened to f32 and the f32 Winograd runs.
    public static var int8WinogradInIntegers: Bool {
        get { _int8WinogradInIntegers }
        set { _int8WinogradInIntegers = newValue }
    }

    nonisolated(unsafe) private static var _int8WinogradFusedInput: Bool? =
        getenv("GLIDE_INT8_WINOGRAD_UNFUSED") != nil ? false : nil

    /// Whether the integer int8 Winograd transforms, quantizes and packs its input in one pass per panel of tiles
    /// (`glide_winograd_input_i16_packed`: no f32 transformed input in memory) instead of the f32 input transform
    /// followed by the GEMM's own packing (the same bits either way). nil (default): fused where AVX-512 runs the
    /// transform; env `GLIDE_INT8_WINOGRAD_UNFUSED` sets false.
    public static var int8WinogradFusedInput: Bool? {
        get { _int8WinogradFusedInput }
        set { _int8WinogradFusedInput = newValue }
    }

    nonisolated(unsafe) private static var _int8WinogradFusedOutput: Bool? =
        getenv("GLIDE_INT8_WINOGRAD_FUSED_OUTPUT") != nil ? nil : false

    /// With the fused input (`int8WinogradFusedInput`): whether the 16 products and the output transform run in one
    /// pass per panel of tiles and output channels (`glide_winograd_i16_gemm_output`: the products stay in an L1
    /// buffer) instead of 16 GEMMs into f32 planes and the output transform. Same bits. nil: fused up to
    /// `int8WinogradFusedOutputMaxChannels` input channels (the 16 positions' activation panels of a pass stay in
    /// L2; with more, measured slower). Default false (opt-in, env `GLIDE_INT8_WINOGRAD_FUSED_OUTPUT` sets nil):
    /// 1-3 % faster steps, but the upsampler's `bench step` peak RSS measured 60-85 MB higher with it (not yet
    /// explained; the memory target is tight).
    public static var int8WinogradFusedOutput: Bool? {
        get { _int8WinogradFusedOutput }
        set { _int8WinogradFusedOutput = newValue }
    }
    /// Largest input channel count for which `int8WinogradFusedOutput == nil` fuses (512: measured; with 768 the
    /// 16 positions' activation panels of a pass outgrow L2). Env `GLIDE_INT8_WINOGRAD_FUSED_OUTPUT_MAX_CHANNELS`.
    nonisolated(unsafe) static var int8WinogradFusedOutputMaxChannels =
        getenv("GLIDE_INT8_WINOGRAD_FUSED_OUTPUT_MAX_CHANNELS").flatMap { Int(String(cString: $0)) } ?? 512

    nonisolated(unsafe) private static var _int8WinogradTile: Int8WinogradTile =
        getenv("GLIDE_INT8_WINOGRAD_TILE").flatMap { Int8WinogradTile(rawValue: String(cString: $0)) } ?? .auto

    /// The tile of the integer int8 Winograd: F(2x2, 3x3), F(4x2, 3x3), F(4x4, 3x3) or per shape (default; env
    /// `GLIDE_INT8_WINOGRAD_TILE=2x2|4x2|4x4|auto`).
    public static var int8WinogradTile: Int8WinogradTile {
        get { _int8WinogradTile }
        set { _int8WinogradTile = newValue }
    }

    /// Smallest output height and width for which `int8WinogradTile == .auto` takes F(4x2) (measured; see
    /// BENCHMARKS.md). Env `GLIDE_INT8_WINOGRAD_F42_MIN_SIZE`.
    nonisolated(unsafe) static var int8WinogradF42MinimumSize =
        getenv("GLIDE_INT8_WINOGRAD_F42_MIN_SIZE").flatMap { Int(String(cString: $0)) } ?? 32

    /// Whether the integer int8 Winograd of geometry `g` runs F(4x2, 3x3) (`int8WinogradTile(for:)`). Auto: outputs of
    /// at least `int8WinogradF42MinimumSize` in both directions (measured faster there on the AVX-512 and the
    /// AVX2 paths, slower at 16x16: the GEMMs get too few columns and the 24 transformed weights cost more). The
    /// F(2x2) opt-in fused output (`int8WinogradFusedOutput`) and the unfused input keep F(2x2); F(4x2) has its
    /// own fused output (`int8WinogradF42FusedOutput`).
    static func int8WinogradUsesF42(_ g: Conv2dGeometry) -> Bool { int8WinogradTile(for: g) == .f4x2 }

    /// Smallest output height and width for which `int8WinogradTile == .auto` takes F(4x4) (measured, and within
    /// the error gate; see BENCHMARKS.md). Env `GLIDE_INT8_WINOGRAD_F44_MIN_SIZE`.
    nonisolated(unsafe) static var int8WinogradF44MinimumSize =
        getenv("GLIDE_INT8_WINOGRAD_F44_MIN_SIZE").flatMap { Int(String(cString: $0)) } ?? 64

    /// The tile the integer int8 Winograd of geometry `g` runs: `int8WinogradTile` when forced, else (auto)
    /// F(4x4) from `int8WinogradF44MinimumSize` on the hardware kernels (measured faster there on AVX512-VNNI and
    /// AVX2; the emulated kernels keep F(4x2)), F(4x2) from `int8WinogradF42MinimumSize` (`int8WinogradUsesF42`),
    /// F(2x2) below.
    static func int8WinogradTile(for g: Conv2dGeometry) -> Int8WinogradTile {
        switch int8WinogradTile {
        case .f2x2, .f4x2, .f4x4: return int8WinogradTile
        case .auto:
            if int8WinogradFusedOutput != false || int8WinogradFusedInput == false { return .f2x2 }
            let size = min(g.outHeight, g.outWidth)
            let hardware = int8WinogradKernel != .emulatedYMM && int8WinogradKernel != .emulatedZMM
            if hardware && size >= int8WinogradF44MinimumSize { return .f4x4 }
            return size >= int8WinogradF42MinimumSize ? .f4x2 : .f2x2
        }
    }

    /// Quantization bound of the transformed input in the integer int8 Winograd (1 ... 7300; 7300 is the
    /// largest that cannot overflow int32 over a 256-long K block).
    public static var int8WinogradActivationMax: Int {
        get { Int(_int8WinogradActivationMax) }
        set { _int8WinogradActivationMax = Int32(max(1, min(Int(GLIDE_WI16_QMAX), newValue))) }
    }

    /// Tile panels per pass of the fused F(4x2) (0: automatic, activation panels of a pass <= 640 KB). Env
    /// `GLIDE_INT8_WINOGRAD_F42_FUSED_PANELS` (tuning).
    nonisolated(unsafe) static var int8WinogradF42FusedPanels: Int =
        getenv("GLIDE_INT8_WINOGRAD_F42_FUSED_PANELS").flatMap { Int(String(cString: $0)) } ?? 0

    /// Whether the fused F(4x2) / F(4x4) passes prefetch the output they add to (accumulating convolutions) and the
    /// F(4x4) pass stores whole output lines non-temporally when it overwrites them (default true: measured faster,
    /// BENCHMARKS.md "F(4x4) fused pass (session 7)"; same bits either way). Env
    /// `GLIDE_INT8_WINOGRAD_OUTPUT_STREAMING=0` turns both off (tuning).
    nonisolated(unsafe) static var int8WinogradFusedOutputStreaming: Bool =
        getenv("GLIDE_INT8_WINOGRAD_OUTPUT_STREAMING").map { String(cString: $0) != "0" } ?? true

    nonisolated(unsafe) private static var _int8WinogradF42FusedOutput: Bool? =
        getenv("GLIDE_INT8_WINOGRAD_F42_FUSED").map { String(cString: $0) != "0" }

    /// Whether F(4x2) runs its 24 products and the output transform in one pass per group of tile panels and
    /// panel of output channels (`glide_wf42_gemm_output`: the products stay in an L1 buffer, no product planes
    /// are allocated) instead of 24 GEMMs into f32 planes and the output transform. Same bits. nil (default): fused
    /// where it measured faster (`int8WinogradF42Fuses`). Env `GLIDE_INT8_WINOGRAD_F42_FUSED=0|1`.
    public static var int8WinogradF42FusedOutput: Bool? {
        get { _int8WinogradF42FusedOutput }
        set { _int8WinogradF42FusedOutput = newValue }
    }

    /// Largest input x output channel product for which `int8WinogradF42FusedOutput == nil` fuses F(4x2)
    /// (384 x 192, measured: the fused pass streams all 24 x O x C transformed weights once per 32 tiles from L3,
    /// so larger layers lose more there than the product planes cost). Env `GLIDE_INT8_WINOGRAD_F42_FUSED_MAX`.
    nonisolated(unsafe) static var int8WinogradF42FusedMaxChannelProduct =
        getenv("GLIDE_INT8_WINOGRAD_F42_FUSED_MAX").flatMap { Int(String(cString: $0)) } ?? 384 * 192

    /// Whether F(4x2) of `c` -> `o` channels on `kernel` runs fused (`int8WinogradF42FusedOutput`, else the
    /// measured default: the AVX512-VNNI kernel up to `int8WinogradF42FusedMaxChannelProduct`; on the ymm kernels
    /// it measured no faster, BENCHMARKS.md).
    static func int8WinogradF42Fuses(_ kernel: Int8WinogradKernel, inChannels c: Int, outChannels o: Int) -> Bool {
        if let forced = int8WinogradF42FusedOutput { return forced }
        return kernel == .avx512vnni && c * o <= int8WinogradF42FusedMaxChannelProduct
    }

    /// Tests: the F(4x2) transforms on their portable bodies whatever the CPU has (the same bits).
    nonisolated(unsafe) static var int8WinogradF42PortableTransforms = false

    /// Product elements per F(4x2) chunk (nil: `winogradChunkElements`). Env `GLIDE_INT8_WINOGRAD_F42_CHUNK`.
    nonisolated(unsafe) static var int8WinogradF42ChunkElements: Int? =
        getenv("GLIDE_INT8_WINOGRAD_F42_CHUNK").flatMap { Int(String(cString: $0)) }

    /// Optional cap on the F(4x2) activation bound (nil, default: the largest that cannot overflow int32 for the
    /// layer's transformed weights, `glide_wf42_qmax`). Env `GLIDE_INT8_WINOGRAD_F42_QMAX`.
    nonisolated(unsafe) public static var int8WinogradF42ActivationMax: Int? =
        getenv("GLIDE_INT8_WINOGRAD_F42_QMAX").flatMap { Int(String(cString: $0)) }

    /// The kernel of the integer int8 Winograd for the active int8 path.
    static var int8WinogradKernel: Int8WinogradKernel {
        switch int8Path {
        case .avx512vnni: return .avx512vnni
        case .avxvnni: return .avxvnni
        case .avx2: return .avx2
        case .emulatedZMM: return .emulatedZMM
        case .emulatedYMM: return .emulatedYMM
        }
    }
}

typealias WinogradInt16Entry = @convention(c) (UnsafePointer<glide_wi16_gemm_desc>?, Int, Int, Int, Int) -> Int32

/// Runs `body(p0, p1)` over `panels` split into up to four contiguous blocks per worker thread, in parallel (the C
/// passes return 0, or nonzero when out of memory), and stops the process with `failure` if any block failed.
func forEachPanelBlock(_ panels: Int, failure: @autoclosure () -> String, _ body: (_ p0: Int, _ p1: Int) -> Int32) {
    let blocks = max(1, min(panels, 4 * KernelSettings.threadCount))
    let scratch = ScratchFrame(); defer { scratch.release() }
    let failed = scratch.allocate(Int32.self, count: blocks)
    parallelFor(blocks) { b in failed[b] = body(panels * b / blocks, panels * (b + 1) / blocks) }
    for b in 0..<blocks { precondition(failed[b] == 0, failure()) }
}

/// `conv2dWinograd` for int8 weights `q` (row stride `rowStride`, scales per output channel).
/// `weightCache`: where the transformed weights are kept across calls (nil: transformed per call).
func conv2dWinogradInt8(input: UnsafePointer<Float>, q: UnsafePointer<Int8>, scales: UnsafePointer<Float>,
                        rowStride: Int, bias: UnsafePointer<Float>?, output: UnsafeMutablePointer<Float>,
                        geometry g: Conv2dGeometry, accumulate: Bool, weightCache: WinogradWeightCache? = nil) {
    switch KernelSettings.int8WinogradTile(for: g) {
    case .f4x2:
        conv2dWinogradInt8Tiled(.f4x2, input: input, q: q, scales: scales, rowStride: rowStride, bias: bias,
                                output: output, geometry: g, accumulate: accumulate, weightCache: weightCache)
        return
    case .f4x4:
        conv2dWinogradInt8Tiled(.f4x4, input: input, q: q, scales: scales, rowStride: rowStride, bias: bias,
                                output: output, geometry: g, accumulate: accumulate, weightCache: weightCache)
        return
    case .f2x2, .auto: break
    }
    let c = g.inChannels, o = g.outChannels, h = g.height, w = g.width
    let tilesPerRow = (w + 1) / 2, tileRows = (h + 1) / 2
    let kernel = KernelSettings.int8WinogradKernel
    let (mr, nb) = kernel.panelShape
    // The transformed weights go straight into the GEMM's panel layout, once per call for every batch item
    // and chunk (no [16][O][C] intermediate, no per-chunk panel packing; the same words either way).
    let panels = (o + mr - 1) / mr
    let xiWords = glide_wi16_packed_words(Int32(o), Int32(c), Int32(mr))
    let scratch = ScratchFrame(); defer { scratch.release() }   // the call's buffers (released last)
    let uScales = scratch.allocate(Float.self, count: o)
    for i in 0..<o { uScales[i] = scales[i] * 0.25 }
    let weights = WinogradWeightPanels(cache: weightCache, q: q, rowStride: rowStride, outChannels: o, inChannels: c,
                                       positions: 16, mr: mr, xiWords: xiWords) { u in
        let weightProbe = KernelProfiler.begin("winograd weight transform", "int8 \(c)->\(o)")
        defer { KernelProfiler.end(weightProbe) }
        let weightBlocks = max(1, min(panels, 4 * KernelSettings.threadCount))
        let weightScratch = ScratchFrame(); defer { weightScratch.release() }
        let weightFailed = weightScratch.allocate(Int32.self, count: weightBlocks)
        parallelFor(weightBlocks) { b in
            weightFailed[b] = glide_winograd_weights_i16_packed(q, rowStride, Int32(o), Int32(c), Int32(mr),
                                                                Int32(panels * b / weightBlocks),
                                                                Int32(panels * (b + 1) / weightBlocks), u)
        }
        return (0..<weightBlocks).allSatisfy { weightFailed[$0] == 0 } ? [] : nil
    }
    let u = weights.u
    defer { weights.deallocate() }
    let run = kernel.gemm
    let qmax = Int32(KernelSettings.int8WinogradActivationMax)
    // Tile rows per chunk: the transformed input and the products of a chunk take ~8 MB each at most.
    let targetTiles = max(tilesPerRow, KernelSettings.winogradChunkElements / (16 * max(c, o)))
    let rowsPerChunk = max(1, min(tileRows, targetTiles / tilesPerRow))
    let ld = rowsPerChunk * tilesPerRow
    let transformOnZMM = KernelSettings.has(.avx512f)
    let fused = KernelSettings.int8WinogradFusedInput ?? transformOnZMM
    // Fused: the chunk's quantized input panels (int16 pairs; half the f32 transformed input) and their scales.
    let panelCap = (ld + nb - 1) / nb, kBlocks = (c + 255) / 256
    let bWordsCap = glide_wi16_packed_words(Int32(panelCap * nb), Int32(c), Int32(nb))
    // 64-byte aligned: the kernels load the panels with aligned vector loads.
    let bp = scratch.allocate(UInt32.self, count: fused ? 16 * bWordsCap : 1)
    let bs = scratch.allocate(Float.self, count: fused ? 16 * kBlocks * panelCap * nb : 1)
    let v = scratch.allocate(Float.self, count: fused ? 1 : 16 * c * ld)
    let fusedOutput = fused && (KernelSettings.int8WinogradFusedOutput ?? (c <= KernelSettings.int8WinogradFusedOutputMaxChannels))
    let kernelID = kernel.id
    let m = scratch.allocate(Float.self, count: fusedOutput ? 1 : 16 * o * ld)
    let vStride = c * ld, mStride = o * ld
    let channelBlocks = min(c, 4 * KernelSettings.threadCount)
    let outputBlocks = min(o, 4 * KernelSettings.threadCount)
    let failed = scratch.allocate(Int32.self, count: 16)
    let outputTransform = winogradOutputTransform()
    for n in 0..<g.batch {
        let x = input + n * c * h * w
        let y = output + n * o * h * w
        var ty0 = 0
        while ty0 < tileRows {
            let ty1 = min(tileRows, ty0 + rowsPerChunk)
            let tiles = (ty1 - ty0) * tilesPerRow
            let panels = (tiles + nb - 1) / nb
            let bWords = glide_wi16_packed_words(Int32(tiles), Int32(c), Int32(nb))
            if fused {
                let inputProbe = KernelProfiler.begin("winograd input transform+pack", "int8 \(c) ch \(h)x\(w)")
                forEachPanelBlock(panels, failure: "conv2d: out of memory for the Winograd input") { p0, p1 in
                    glide_winograd_input_i16_packed(x, Int32(h), Int32(w), Int32(c), Int32(ty0), tiles, Int32(nb), qmax,
                                                    p0, p1, bp, bs, transformOnZMM ? 1 : 0)
                }
                KernelProfiler.end(inputProbe)
            } else {
                let inputProbe = KernelProfiler.begin("winograd input transform", "\(c) ch \(h)x\(w)")
                parallelFor(channelBlocks) { b in
                    let c0 = c * b / channelBlocks, c1 = c * (b + 1) / channelBlocks
                    glide_winograd_input_avx2(x, Int32(h), Int32(w), Int32(c0), Int32(c1), Int32(ty0), Int32(ty1),
                                   v, ld, vStride)
                }
                KernelProfiler.end(inputProbe)
            }
            if fusedOutput {
                let probe = KernelProfiler.begin("winograd gemm+output", "16 x \(o)x\(c) . \(c)x\(tiles) int8",
                                                 flops: 32 * Double(o) * Double(c) * Double(tiles))
                var d = glide_wi16_fused_desc()
                d.M = o; d.K = c; d.tiles = tiles
                d.w_packed = UnsafePointer(u); d.w_words = xiWords; d.w_scales = UnsafePointer(uScales)
                d.x_packed = UnsafePointer(bp); d.x_words = bWords; d.x_scales = UnsafePointer(bs)
                d.act_qmax = qmax; d.OH = Int32(h); d.OW = Int32(w); d.ty0 = Int32(ty0); d.accumulate = accumulate ? 1 : 0
                d.bias = bias; d.y = y
                let desc = d
                forEachPanelBlock(panels, failure: "conv2d: out of memory for the Winograd buffers") { p0, p1 in
                    withUnsafePointer(to: desc) { glide_winograd_i16_gemm_output($0, p0, p1, kernelID) }
                }
                KernelProfiler.end(probe)
                ty0 = ty1
                continue
            }
            let gemmProbe = KernelProfiler.begin("winograd gemm", "16 x \(o)x\(c) . \(c)x\(tiles) int8",
                                                 flops: 32 * Double(o) * Double(c) * Double(tiles))
            parallelFor(16) { xi in
                var d = glide_wi16_gemm_desc()
                d.M = o; d.N = tiles; d.K = c
                d.w_packed = UnsafePointer(u + xi * xiWords); d.w_scales = UnsafePointer(uScales)
                if fused {
                    d.x_packed = UnsafePointer(bp + xi * bWords)
                    d.x_scales = UnsafePointer(bs + xi * kBlocks * panels * nb)
                    d.x_panels = panels
                } else {
                    d.x = UnsafePointer(v + xi * vStride); d.x_rs = ld
                }
                d.y = m + xi * mStride; d.y_rs = ld
                d.act_qmax = qmax
                failed[xi] = withUnsafePointer(to: d) { run($0, 0, o, 0, tiles) }
            }
            KernelProfiler.end(gemmProbe)
            for xi in 0..<16 { precondition(failed[xi] == 0, "conv2d: out of memory for packing buffers") }
            let outputProbe = KernelProfiler.begin("winograd output transform", "\(o) ch \(h)x\(w)")
            parallelFor(outputBlocks) { b in
                let o0 = o * b / outputBlocks, o1 = o * (b + 1) / outputBlocks
                outputTransform(m, ld, mStride, Int32(o0), Int32(o1), Int32(h), Int32(w),
                                           Int32(ty0), Int32(ty1), bias, y, accumulate ? 1 : 0)
            }
            KernelProfiler.end(outputProbe)
            ty0 = ty1
        }
    }
}

/// The tile of the shared F(4x2) / F(4x4) driver (`conv2dWinogradInt8Tiled`): its positions, tile height and C
/// entry points (winograd_f42.c, winograd_f44.c); both tiles give 4 outputs along the width.
struct Int8WinogradTileKind: Sendable {
    typealias Weights = @Sendable (_ q: UnsafePointer<Int8>, _ ldq: Int, _ o: Int32, _ c: Int32, _ mr: Int32, _ p0: Int32,
                         _ p1: Int32, _ dst: UnsafeMutablePointer<UInt32>, _ maxL1: UnsafeMutablePointer<Int32>) -> Int32
    typealias Input = @Sendable (_ x: UnsafePointer<Float>, _ h: Int32, _ w: Int32, _ c: Int32, _ ty0: Int32, _ tiles: Int,
                       _ nb: Int32, _ qmax: UnsafePointer<Int32>, _ p0: Int, _ p1: Int, _ dst: UnsafeMutablePointer<UInt32>,
                       _ scales: UnsafeMutablePointer<Float>, _ isa: Int32) -> Int32
    typealias Output = @Sendable (_ m: UnsafePointer<Float>, _ ldm: Int, _ xiStride: Int, _ o: Int32, _ o0: Int32, _ o1: Int32,
                        _ oh: Int32, _ ow: Int32, _ ty0: Int32, _ ty1: Int32, _ bias: UnsafePointer<Float>?,
                        _ y: UnsafeMutablePointer<Float>, _ accumulate: Int32, _ isa: Int32) -> Void
    typealias InputPreActivated = @Sendable (_ x: UnsafePointer<Float>, _ h: Int32, _ w: Int32, _ c: Int32, _ ty0: Int32,
                                   _ tiles: Int, _ nb: Int32, _ qmax: UnsafePointer<Int32>, _ p0: Int, _ p1: Int,
                                   _ dst: UnsafeMutablePointer<UInt32>, _ scales: UnsafeMutablePointer<Float>,
                                   _ pre: UnsafePointer<glide_preact>?, _ isa: Int32) -> Int32
    typealias GemmOutput = @Sendable (_ d: UnsafePointer<glide_wi16_fused_desc>, _ p0: Int, _ p1: Int, _ kernel: Int32,
                            _ isa: Int32) -> Int32

    /// "F(4x2)" or "F(4x4)" (profile labels).
    let name: String
    /// Transformed positions per tile (GEMMs per chunk).
    let positions: Int
    /// Outputs per tile along the height (2 or 4).
    let tileHeight: Int
    /// Writes the packed panels and per position the largest K-block L1 sum of |U| (`positions` entries).
    let weights: Weights
    /// Transform + quantize + pack, one activation bound per position.
    let input: Input
    /// `input` with a pre-activation applied to each value loaded (`ConvPreActivation`), or nil where the tile has
    /// none (F(4x4): `conv2dFusesPreActivation` is false there).
    let inputPreActivated: InputPreActivated?
    /// The output transform from product planes.
    let output: Output
    /// The fused products + output transform.
    let gemmOutput: GemmOutput

    static let f4x2 = Int8WinogradTileKind(
        name: "F(4x2)", positions: 24, tileHeight: 2,
        weights: { glide_wf42_weights_i16_packed($0, $1, $2, $3, $4, $5, $6, $7, $8) },
        input: { glide_wf42_input_i16_packed($0, $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) },
        inputPreActivated: { glide_wf42_input_i16_packed_preact($0, $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) },
        output: { glide_wf42_output($0, $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) },
        gemmOutput: { glide_wf42_gemm_output($0, $1, $2, $3, $4) })

    static let f4x4 = Int8WinogradTileKind(
        name: "F(4x4)", positions: 36, tileHeight: 4,
        weights: { glide_wf44_weights_i16_packed($0, $1, $2, $3, $4, $5, $6, $7, $8) },
        input: { glide_wf44_input_i16_packed($0, $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) },
        inputPreActivated: nil,
        output: { glide_wf44_output($0, $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) },
        gemmOutput: { glide_wf44_gemm_output($0, $1, $2, $3, $4) })
}

/// `conv2dWinogradInt8` with F(4x2, 3x3) or F(4x4, 3x3) tiles (`tile`; winograd_f42.c, winograd_f44.c): the
/// transformed input fused with its quantization and packing, the same GEMMs, fused with the output transform
/// where that measured faster. The activation bound of each position follows the layer's transformed weights: the
/// largest sum of |U| over a row's 256-long K block times it stays < 2^31, so no K block can overflow int32
/// (deterministic per layer and position; worst cases: F(4x2) 3145, F(4x4) 1348). `preActivation` (the tile must
/// have `inputPreActivated`): applied to each input value as the transform loads it.
func conv2dWinogradInt8Tiled(_ tile: Int8WinogradTileKind, input: UnsafePointer<Float>, q: UnsafePointer<Int8>,
                             scales: UnsafePointer<Float>, rowStride: Int, bias: UnsafePointer<Float>?,
                             output: UnsafeMutablePointer<Float>, geometry g: Conv2dGeometry, accumulate: Bool,
                             weightCache: WinogradWeightCache? = nil, preActivation: ConvPreActivation? = nil) {
    precondition(preActivation == nil || tile.inputPreActivated != nil, "conv2d: \(tile.name) has no pre-activation")
    let positions = tile.positions
    let c = g.inChannels, o = g.outChannels, h = g.height, w = g.width
    let tilesPerRow = (w + 3) / 4, tileRows = (h + tile.tileHeight - 1) / tile.tileHeight
    let kernel = KernelSettings.int8WinogradKernel
    let (mr, nb) = kernel.panelShape
    let shape = tile.name
    let kernelID = kernel.id
    // The transformed weights straight into the GEMM's panel layout, once per call.
    let panels = (o + mr - 1) / mr
    let xiWords = glide_wi16_packed_words(Int32(o), Int32(c), Int32(mr))
    let scratch = ScratchFrame(); defer { scratch.release() }   // the call's buffers (released last)
    let uScales = scratch.allocate(Float.self, count: o)
    for i in 0..<o { uScales[i] = scales[i] }
    let weights = WinogradWeightPanels(cache: weightCache, q: q, rowStride: rowStride, outChannels: o, inChannels: c,
                                       positions: positions, mr: mr, xiWords: xiWords) { u in
        let weightProbe = KernelProfiler.begin("winograd weight transform", "int8 \(shape) \(c)->\(o)")
        defer { KernelProfiler.end(weightProbe) }
        let weightBlocks = max(1, min(panels, 4 * KernelSettings.threadCount))
        let weightScratch = ScratchFrame(); defer { weightScratch.release() }
        let weightFailed = weightScratch.allocate(Int32.self, count: weightBlocks)
        let weightMax = weightScratch.allocate(Int32.self, count: weightBlocks * positions)
        parallelFor(weightBlocks) { b in
            weightFailed[b] = tile.weights(q, rowStride, Int32(o), Int32(c), Int32(mr), Int32(panels * b / weightBlocks),
                                           Int32(panels * (b + 1) / weightBlocks), u, weightMax + b * positions)
        }
        var maxL1 = [Int32](repeating: 0, count: positions)
        for b in 0..<weightBlocks {
            if weightFailed[b] != 0 { return nil }
            for xi in 0..<positions { maxL1[xi] = max(maxL1[xi], weightMax[b * positions + xi]) }
        }
        return maxL1
    }
    let u = weights.u
    defer { weights.deallocate() }
    let qmax: [Int32] = weights.maxL1.map { bound in
        KernelSettings.int8WinogradF42ActivationMax.map { min(Int32($0), glide_wf42_qmax(bound)) } ?? glide_wf42_qmax(bound)
    }
    let actQmax = qmax.max() ?? 1
    let run = kernel.gemm
    // Chunks of tile rows of the whole batch (the images' tile rows one after the other: small images give the
    // GEMMs more columns), of equal size, each's products taking ~8 MB at most.
    let totalRows = g.batch * tileRows
    let chunkElements = KernelSettings.int8WinogradF42ChunkElements ?? KernelSettings.winogradChunkElements
    let targetTiles = max(tilesPerRow, chunkElements / (positions * max(c, o)))
    let maxRows = max(1, min(totalRows, targetTiles / tilesPerRow))
    let chunks = (totalRows + maxRows - 1) / maxRows
    let rowsPerChunk = (totalRows + chunks - 1) / chunks
    let ld = rowsPerChunk * tilesPerRow
    let isa = Int32(KernelSettings.int8WinogradF42PortableTransforms ? GLIDE_WF42_PORTABLE
                    : KernelSettings.has(.avx512f) ? GLIDE_WF42_AVX512
                    : KernelSettings.has(.avx2FMA) ? GLIDE_WF42_AVX2 : GLIDE_WF42_PORTABLE)
    let panelCap = (ld + nb - 1) / nb, kBlocks = (c + 255) / 256
    let bWordsCap = glide_wi16_packed_words(Int32(panelCap * nb), Int32(c), Int32(nb))
    // 64-byte aligned: the kernels load the panels with aligned vector loads.
    let bp = scratch.allocate(UInt32.self, count: positions * bWordsCap)
    let bs = scratch.allocate(Float.self, count: positions * kBlocks * panelCap * nb)
    let fusedOutput = KernelSettings.int8WinogradF42Fuses(kernel, inChannels: c, outChannels: o)
    // + 16 floats: the positions' planes do not all start at the same offset modulo 4 KB (L1 sets)
    let mStride = o * ld + 16
    // The product planes (unfused only: fused, the products stay in the kernel's L1 buffer).
    let m = scratch.allocate(Float.self, count: fusedOutput ? 1 : positions * mStride)
    let outputBlocks = min(o, 4 * KernelSettings.threadCount)
    let failed = scratch.allocate(Int32.self, count: positions)
    let x = input, y = output
    qmax.withUnsafeBufferPointer { qmaxBuffer in
        let qp = qmaxBuffer.baseAddress!
        var ty0 = 0
        while ty0 < totalRows {
            let ty1 = min(totalRows, ty0 + rowsPerChunk)
            let tiles = (ty1 - ty0) * tilesPerRow
            let panels = (tiles + nb - 1) / nb
            let bWords = glide_wi16_packed_words(Int32(tiles), Int32(c), Int32(nb))
            let inputProbe = KernelProfiler.begin("winograd input transform+pack", "int8 \(shape) \(c) ch \(h)x\(w)")
            withCPreActivation(preActivation) { pre in   // (nil: none; else applied to each input value loaded)
                forEachPanelBlock(panels, failure: "conv2d: out of memory for the Winograd input") { p0, p1 in
                    if let pre, let fused = tile.inputPreActivated {
                        return fused(x, Int32(h), Int32(w), Int32(c), Int32(ty0), tiles, Int32(nb), qp, p0, p1, bp, bs, pre, isa)
                    }
                    return tile.input(x, Int32(h), Int32(w), Int32(c), Int32(ty0), tiles, Int32(nb), qp, p0, p1, bp, bs, isa)
                }
            }
            KernelProfiler.end(inputProbe)
            if fusedOutput {
                let probe = KernelProfiler.begin("winograd gemm+output", "\(positions) x \(o)x\(c) . \(c)x\(tiles) int8 \(shape)",
                                                 flops: 2 * Double(positions) * Double(o) * Double(c) * Double(tiles))
                var d = glide_wi16_fused_desc()
                d.M = o; d.K = c; d.tiles = tiles
                d.w_packed = UnsafePointer(u); d.w_words = xiWords; d.w_scales = UnsafePointer(uScales)
                d.x_packed = UnsafePointer(bp); d.x_words = bWords; d.x_scales = UnsafePointer(bs)
                d.act_qmax = actQmax; d.OH = Int32(h); d.OW = Int32(w); d.ty0 = Int32(ty0); d.accumulate = accumulate ? 1 : 0
                d.bias = bias; d.y = y
                let desc = d
                if KernelSettings.int8WinogradF42FusedPanels > 0 {
                    glide_wf42_gemm_output_set_panels(Int32(KernelSettings.int8WinogradF42FusedPanels))
                }
                let streaming: Int32 = KernelSettings.int8WinogradFusedOutputStreaming ? 1 : 0
                glide_wf_gemm_output_set_prefetch(streaming)
                glide_wf44_gemm_output_set_streaming(streaming)
                forEachPanelBlock(panels, failure: "conv2d: out of memory for the Winograd buffers") { p0, p1 in
                    withUnsafePointer(to: desc) { tile.gemmOutput($0, p0, p1, kernelID, isa) }
                }
                KernelProfiler.end(probe)
                ty0 = ty1
                continue
            }
            let gemmProbe = KernelProfiler.begin("winograd gemm", "\(positions) x \(o)x\(c) . \(c)x\(tiles) int8 \(shape)",
                                                 flops: 2 * Double(positions) * Double(o) * Double(c) * Double(tiles))
            parallelFor(positions) { xi in
                var d = glide_wi16_gemm_desc()
                d.M = o; d.N = tiles; d.K = c
                d.w_packed = UnsafePointer(u + xi * xiWords); d.w_scales = UnsafePointer(uScales)
                d.x_packed = UnsafePointer(bp + xi * bWords)
                d.x_scales = UnsafePointer(bs + xi * kBlocks * panels * nb)
                d.x_panels = panels
                d.y = m + xi * mStride; d.y_rs = ld
                d.act_qmax = actQmax
                failed[xi] = withUnsafePointer(to: d) { run($0, 0, o, 0, tiles) }
            }
            KernelProfiler.end(gemmProbe)
            for xi in 0..<positions { precondition(failed[xi] == 0, "conv2d: out of memory for packing buffers") }
            let outputProbe = KernelProfiler.begin("winograd output transform", "\(shape) \(o) ch \(h)x\(w)")
            parallelFor(outputBlocks) { b in
                let o0 = o * b / outputBlocks, o1 = o * (b + 1) / outputBlocks
                tile.output(m, ld, mStride, Int32(o), Int32(o0), Int32(o1), Int32(h), Int32(w), Int32(ty0), Int32(ty1),
                            bias, y, accumulate ? 1 : 0, isa)
            }
            KernelProfiler.end(outputProbe)
            ty0 = ty1
        }
    }
}
