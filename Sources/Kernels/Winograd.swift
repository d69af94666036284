// Winograd F(2x2, 3x3) for 3x3 stride-1 padding-1 convolutions (Lavin & Gray, "Fast Algorithms for
// Convolutional Neural Networks", 2015): 16 GEMMs over 4x4 tiles do the work of 36 multiply-adds per
// 2x2 outputs with 16, i.e. 2.25x fewer. Used by `conv2d` on the AVX2 path; `conv2dScalar` is its twin.
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import CKernelsX86

extension KernelSettings {
    nonisolated(unsafe) private static var _winograd: Bool = getenv("GLIDE_NO_WINOGRAD") == nil

    /// When true (default; env `GLIDE_NO_WINOGRAD` turns it off), `conv2d` computes 3x3 stride-1 padding-1
    /// convolutions of at least `winogradMinimumTiles` 2x2 tiles with Winograd F(2x2, 3x3): in f32 for f32/f16/bf16
    /// weights (widened when transformed), in integers for int8 (`WinogradInt8.swift`, own thresholds).
    /// Otherwise it uses the implicit-im2col GEMM.
    public static var winograd: Bool {
        get { _winograd }
        set { _winograd = newValue }
    }

    /// Fewest 2x2 output tiles per call (batch x tiles per image) for which Winograd is used with f32/f16/bf16
    /// weights: below it the weight transform and the small GEMMs cost more than they save (measured with
    /// `glide bench kernels --cpu-time`: 32x32 batch 2 gains 1.5x, 32x32 batch 1 ties).
    nonisolated(unsafe) public internal(set) static var winogradMinimumTiles = 512
    /// The same for int8 weights on the ymm paths (AVX2 vpmaddwd, AVX-VNNI), where the int8 Winograd runs in
    /// integers: 16x16x576 batch 1 (64 tiles) gains 1.4x over the int8 GEMM, 8x8x768 batch 2 (32) 1.1x, 8x8 batch 1
    /// loses. (AVX512-VNNI: `winogradMinimumTilesInt8VNNI`.)
    nonisolated(unsafe) public internal(set) static var winogradMinimumTilesInt8 = 32
    /// The same for bf16 weights while `useBF16Dot`: the `vdpbf16ps` implicit GEMM runs at ~1.15x f32 Winograd
    /// on 32x32 batch 2 (512 tiles) and ties it on 64x64 (1024+ tiles, where f32 Winograd keeps the lower error).
    nonisolated(unsafe) public internal(set) static var winogradMinimumTilesBF16Dot = 1024

    nonisolated(unsafe) private static var _winogradBF16: Bool = getenv("GLIDE_WINOGRAD_BF16") != nil

    /// When true (default false; env `GLIDE_WINOGRAD_BF16` turns it on) and `useBF16Dot`, Winograd convolutions
    /// with bf16 weights round the transformed weights (`G g G^T`, computed in f32) to bf16 and run the 16 GEMMs
    /// with `vdpbf16ps` (transformed inputs rounded to bf16 while packing). Otherwise the 16 GEMMs run in f32.
    /// Off by default: 1.4x faster on the 64x64 convolutions (~10 % of a bf16 base step) but the full base
    /// forward's error grows from 4.2 % to 5.3 % of the output's std, over the 5 % limit (README "Numerics").
    public static var winogradBF16: Bool {
        get { _winogradBF16 }
        set { _winogradBF16 = newValue }
    }

    /// Elements of the transformed-input scratch per chunk of tile rows (tests lower it to force chunking).
    nonisolated(unsafe) static var winogradChunkElements = 1 << 21
}

/// True when `conv2d` takes the Winograd path for this geometry, weight type and the current settings.
public func conv2dUsesWinograd(_ g: Conv2dGeometry, int8Weights: Bool = false) -> Bool {
    conv2dUsesWinograd(g, kind: int8Weights ? .int8 : .f32)
}

/// True when `conv2d` takes the Winograd path for this geometry, weights of `kind` and the current settings.
public func conv2dUsesWinograd(_ g: Conv2dGeometry, kind: WeightElementKind) -> Bool {
    guard KernelSettings.useAVX2 && KernelSettings.winograd && g.kernelSize == 3 && g.stride == 1
            && g.padding == 1 && g.inChannels >= 8 else { return false }
    let tiles = g.batch * ((g.outHeight + 1) / 2) * ((g.outWidth + 1) / 2)
    let minimum: Int
    switch kind {
    case .int8: minimum = KernelSettings.int8WinogradMinimumTiles
    case .bf16 where KernelSettings.useBF16Dot:
        minimum = KernelSettings.winogradMinimumTilesBF16Dot
    default: minimum = KernelSettings.winogradMinimumTiles
    }
    return tiles >= minimum
}

/// The element type of the transformed weights the 16 Winograd GEMMs use for weights of `kind`: f32, or bf16
/// when `winogradBF16` applies.
func winogradGemmKind(_ kind: WeightElementKind) -> WeightElementKind {
    kind == .bf16 && KernelSettings.winogradBF16 && KernelSettings.useBF16Dot ? .bf16 : .f32
}

typealias WinogradOutputTransform = @convention(c) (UnsafePointer<Float>?, Int, Int, Int32, Int32, Int32, Int32, Int32,
                                                    Int32, UnsafePointer<Float>?, UnsafeMutablePointer<Float>?, Int32) -> Void

/// The output transform for the active path: zmm with AVX-512 (bit-identical to the AVX2 loops). (A zmm input
/// transform written the same way measured slower than the AVX2 loops, 13 vs 10 ms on 192 x 256x256: store-bound.)
func winogradOutputTransform() -> WinogradOutputTransform {
    KernelSettings.has(.avx512f) ? glide_winograd_output_avx512 : glide_winograd_output_avx2
}

/// The 16 transformed 4x4 kernels `U = G g G^T` of a 3x3 convolution weight `[O, C*9]`, laid out
/// `[16][O][C]` (f32) into `u` (`16 * O * C` floats), so that U[xi] is an ordinary `[O, C]` weight matrix.
func winogradTransformWeights(_ weight: WeightMatrix, outChannels o: Int, inChannels c: Int,
                              into u: UnsafeMutablePointer<Float>) {
    let probe = KernelProfiler.begin("winograd weight transform", "\(weight.dtypeName) \(c)->\(o)"); defer { KernelProfiler.end(probe) }
    let blocks = min(o, 4 * KernelSettings.threadCount)
    let transform = KernelSettings.has(.avx512f) ? glide_winograd_weights_avx512 : glide_winograd_weights_avx2
    parallelFor(blocks) { b in
        let scratch = ScratchFrame(); defer { scratch.release() }
        let row = scratch.allocate(Float.self, count: c * 9)
        for oc in (o * b / blocks)..<(o * (b + 1) / blocks) {
            if case .f32(let p) = weight.elements {
                transform(p + oc * weight.rowStride, Int32(c), u + oc * c, o * c)
            } else {
                widenRow(weight, oc, into: row)
                transform(row, Int32(c), u + oc * c, o * c)
            }
        }
    }
}

/// Row `r` of `weight` as f32 (int8 dequantized with its row scale), with the module's converters.
func widenRow(_ weight: WeightMatrix, _ r: Int, into out: UnsafeMutablePointer<Float>) {
    let n = weight.cols, start = r * weight.rowStride
    switch weight.elements {
    case .f32(let p): out.update(from: p + start, count: n)
    case .f16(let p): convertF16ToF32(p + start, out, count: n)
    case .bf16(let p): convertBF16ToF32(p + start, out, count: n)
    case .int8(let q, let s): dequantizeRowsInt8(q + start, scales: s + r, rows: 1, cols: n, output: out)
    }
}

/// `conv2d` for a geometry with `conv2dUsesWinograd`: all images of the batch.
func conv2dWinograd(input: UnsafePointer<Float>, weight: WeightMatrix, bias: UnsafePointer<Float>?,
                    output: UnsafeMutablePointer<Float>, geometry g: Conv2dGeometry, accumulate: Bool) {
    if case .int8(let q, let scales) = weight.elements, KernelSettings.int8WinogradInIntegers {
        conv2dWinogradInt8(input: input, q: q, scales: scales, rowStride: weight.rowStride, bias: bias,
                           output: output, geometry: g, accumulate: accumulate, weightCache: weight.winogradPanels)
        return
    }
    let c = g.inChannels, o = g.outChannels, h = g.height, w = g.width
    let tilesPerRow = (w + 1) / 2, tileRows = (h + 1) / 2
    let scratch = ScratchFrame(); defer { scratch.release() }
    let u = scratch.allocate(Float.self, count: 16 * o * c)
    winogradTransformWeights(weight, outChannels: o, inChannels: c, into: u)
    // bf16 Winograd: the transformed weights rounded to bf16 (RNE) for the vdpbf16ps GEMMs.
    var ubf: UnsafeMutablePointer<UInt16>? = nil
    if winogradGemmKind(weight.elements.kind) == .bf16 {
        let p = scratch.allocate(UInt16.self, count: 16 * o * c)
        let total = 16 * o * c, blocks = max(1, min(16, KernelSettings.threadCount * 4))
        parallelFor(blocks) { b in
            let lo = total * b / blocks, hi = total * (b + 1) / blocks
            convertF32ToBF16(u + lo, p + lo, count: hi - lo)
        }
        ubf = p
    }
    let ubfConst = ubf.map { UnsafePointer($0) }
    // Tile rows per chunk: the transformed input and the products of a chunk take ~8 MB each at most.
    let targetTiles = max(tilesPerRow, KernelSettings.winogradChunkElements / (16 * max(c, o)))
    let rowsPerChunk = max(1, min(tileRows, targetTiles / tilesPerRow))
    let ld = rowsPerChunk * tilesPerRow
    let v = scratch.allocate(Float.self, count: 16 * c * ld)
    let m = scratch.allocate(Float.self, count: 16 * o * ld)
    let vStride = c * ld, mStride = o * ld
    let channelBlocks = min(c, 4 * KernelSettings.threadCount)
    let outputBlocks = min(o, 4 * KernelSettings.threadCount)
    let outputTransform = winogradOutputTransform()
    for n in 0..<g.batch {
        let x = input + n * c * h * w
        let y = output + n * o * h * w
        var ty0 = 0
        while ty0 < tileRows {
            let ty1 = min(tileRows, ty0 + rowsPerChunk)
            let tiles = (ty1 - ty0) * tilesPerRow
            let inputProbe = KernelProfiler.begin("winograd input transform", "\(c) ch \(h)x\(w)")
            parallelFor(channelBlocks) { b in
                let c0 = c * b / channelBlocks, c1 = c * (b + 1) / channelBlocks
                glide_winograd_input_avx2(x, Int32(h), Int32(w), Int32(c0), Int32(c1), Int32(ty0), Int32(ty1),
                                          v, ld, vStride)
            }
            KernelProfiler.end(inputProbe)
            let gemmProbe = KernelProfiler.begin("winograd gemm", "16 x \(o)x\(c) . \(c)x\(tiles)", flops: 32 * Double(o) * Double(c) * Double(tiles))
            parallelFor(16) { xi in
                let uxi = ubfConst.map { WeightMatrix(rows: o, cols: c, elements: .bf16($0 + xi * o * c)) }
                    ?? WeightMatrix(rows: o, cols: c, f32: u + xi * o * c)
                gemmAVX2(weight: uxi,
                         source: .matrix(MatrixOperand(v + xi * vStride, rowStride: ld)), columns: tiles,
                         output: MutableMatrixOperand(m + xi * mStride, rowStride: ld), bias: nil,
                         accumulate: false, threads: 1)
            }
            KernelProfiler.end(gemmProbe)
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
