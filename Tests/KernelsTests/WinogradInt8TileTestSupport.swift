// Shared by WinogradF42Tests and WinogradF44Tests: the integer int8 Winograd of one tile (F(4x2) or F(4x4)) run
// through conv2d, its comparison with the scalar int8 convolution, and the int32 bound's worst case.
import XCTest
import CKernelsX86
@testable import Kernels

/// conv2d through the integer Winograd of `tile` on `kernel` (nil: the scalar twin), on random weights, bias, input
/// and (for `accumulate`) output from `seed`.
func runInt8WinogradTile(_ tile: Int8WinogradTile, _ g: Conv2dGeometry, kernel: Int8GEMMPath?, accumulate: Bool,
                         threads: Int, seed: UInt64, chunk: Int?, cap: CPUPath?, fused: Bool?) -> [Float] {
    var rng = TestRNG(seed: seed)
    let w = TypedWeights(rows: g.outChannels, cols: g.reductionLength, rng: &rng)
    let bias = rng.floats(g.outChannels)
    let x = rng.floats(g.batch * g.inChannels * g.height * g.width, scale: 2)
    var y = rng.floats(g.batch * g.outChannels * g.outHeight * g.outWidth)
    let saved = (KernelSettings.winogradChunkElements, KernelSettings.int8WinogradMinimumTilesOverride,
                 KernelSettings.int8WinogradTile, KernelSettings.cpuCap)
    let savedFused = KernelSettings.int8WinogradF42FusedOutput
    KernelSettings.int8WinogradF42FusedOutput = fused
    defer {
        KernelSettings.int8WinogradF42FusedOutput = savedFused
        KernelSettings.resetInt8Path()
        (KernelSettings.winogradChunkElements, KernelSettings.int8WinogradMinimumTilesOverride,
         KernelSettings.int8WinogradTile, KernelSettings.cpuCap) = saved
    }
    w.with("int8") { wm in
        withSettings(threads: threads, winograd: true) {
            if let kernel {
                if let cap { KernelSettings.cpuCap = cap }
                KernelSettings.int8Path = kernel
                KernelSettings.int8WinogradTile = tile
                KernelSettings.int8WinogradMinimumTilesOverride = 1
                if let chunk { KernelSettings.winogradChunkElements = chunk }
                XCTAssertTrue(conv2dUsesWinograd(g, int8Weights: true), "\(g)")
                XCTAssertEqual(KernelSettings.int8WinogradTile(for: g), tile)
                XCTAssertFalse(int8ConvolutionRunsInF32(wm, g), "\(g) runs on widened weights")
                conv2d(input: x, weight: wm, bias: bias, output: &y, geometry: g, accumulate: accumulate)
            } else {
                conv2dScalar(input: x, weight: wm, bias: bias, output: &y, geometry: g, accumulate: accumulate)
            }
        }
    }
    return y
}

/// `tile` on the zmm-emulating kernel against the scalar convolution, whole and in chunks of `chunk` elements.
func assertInt8WinogradTileMatchesScalar(_ tile: Int8WinogradTile, geometries: [Conv2dGeometry], seed firstSeed: UInt64,
                                         chunk: Int, tolerance: Float) {
    var seed = firstSeed
    for g in geometries {
        for accumulate in [false, true] {
            seed += 1
            let run = { (kernel: Int8GEMMPath?, chunk: Int?) in
                runInt8WinogradTile(tile, g, kernel: kernel, accumulate: accumulate, threads: 1, seed: seed,
                                    chunk: chunk, cap: nil, fused: false)
            }
            let ref = run(nil, nil)
            for chunk in [nil, chunk] as [Int?] {
                let y = run(.emulatedZMM, chunk)
                XCTAssertLessThanOrEqual(relativeError(y, ref), tolerance, "\(g) acc=\(accumulate) chunk=\(String(describing: chunk))")
            }
        }
    }
}

/// Every kernel +127 and every input channel the same image (each transformed value is its column's max): `tile`'s
/// accumulators reach their int32 bound on every hardware kernel and must not wrap.
func assertInt8WinogradTileWorstCase(_ tile: Int8WinogradTile, tolerance: Float) {
    let g = Conv2dGeometry(batch: 1, inChannels: 256, height: 12, width: 12, outChannels: 16, kernelSize: 3, stride: 1, padding: 1)
    let q = [Int8](repeating: 127, count: g.outChannels * g.reductionLength)
    let scales = [Float](repeating: 1.0 / 127, count: g.outChannels)
    var rng = TestRNG(seed: 3)
    let plane = rng.floats(g.height * g.width).map { abs($0) + 0.5 }
    let x = (0..<g.inChannels).flatMap { _ in plane }
    var hardware: [Int8GEMMPath] = [.emulatedZMM, .avx2]
    if KernelSettings.hasAVX512VNNI { hardware.append(.avx512vnni) }
    let saved = (KernelSettings.int8WinogradTile, KernelSettings.int8WinogradMinimumTilesOverride)
    defer { (KernelSettings.int8WinogradTile, KernelSettings.int8WinogradMinimumTilesOverride) = saved; KernelSettings.resetInt8Path() }
    q.withUnsafeBufferPointer { qp in
        scales.withUnsafeBufferPointer { sp in
            let wm = WeightMatrix(rows: g.outChannels, cols: g.reductionLength, elements: .int8(qp.baseAddress!, scales: sp.baseAddress!))
            var ref = [Float](repeating: 0, count: g.outChannels * g.outHeight * g.outWidth)
            conv2dScalar(input: x, weight: wm, bias: nil, output: &ref, geometry: g, accumulate: false)
            for kernel in hardware {
                withSettings(threads: 1, winograd: true) {
                    KernelSettings.int8Path = kernel
                    KernelSettings.int8WinogradTile = tile
                    KernelSettings.int8WinogradMinimumTilesOverride = 1
                    var y = [Float](repeating: 0, count: ref.count)
                    conv2d(input: x, weight: wm, bias: nil, output: &y, geometry: g, accumulate: false)
                    XCTAssertLessThanOrEqual(relativeError(y, ref), tolerance, "\(kernel)")
                }
            }
        }
    }
}

/// A tile's input transform + quantization + packing (glide_wf42_input_i16_packed's signature).
typealias WF4InputTransform = (UnsafePointer<Float>?, Int32, Int32, Int32, Int32, Int, Int32, UnsafePointer<Int32>?, Int, Int,
                               UnsafeMutablePointer<UInt32>?, UnsafeMutablePointer<Float>?, Int32) -> Int32
/// A tile's output transform (glide_wf42_output's signature).
typealias WF4OutputTransform = (UnsafePointer<Float>?, Int, Int, Int32, Int32, Int32, Int32, Int32, Int32, Int32,
                                UnsafePointer<Float>?, UnsafeMutablePointer<Float>?, Int32, Int32) -> Void

/// The zmm and ymm input and output transforms of a tile `tileHeight` outputs tall with `positions` positions give the
/// portable bits, on images of (channels, height, width, panel width) `cases`, two images, chunks within the first and
/// one spanning both.
func assertWF4TransformsMatchPortable(positions: Int, tileHeight: Int, cases: [(Int, Int, Int, Int)], bounds: [Int32],
                                      rng: inout TestRNG, input: WF4InputTransform, output: WF4OutputTransform) {
    var isas = [Int32(GLIDE_WF42_AVX2)]
    if KernelSettings.has(.avx512f) { isas.append(Int32(GLIDE_WF42_AVX512)) }
    for (c, h, w, nb) in cases {
        let tw = (w + 3) / 4, th = (h + tileHeight - 1) / tileHeight
        for (ty0, rows) in [(0, th), (th / 2, th - th / 2), (th / 2, th + 1)] where rows > 0 {
            let tiles = rows * tw, panels = (tiles + nb - 1) / nb
            let x = rng.floats(2 * c * h * w, scale: 3)
            let words = glide_wi16_packed_words(Int32(tiles), Int32(c), Int32(nb))
            let nScales = positions * ((c + 255) / 256) * panels * nb
            func transformed(_ isa: Int32) -> ([UInt32], [UInt32]) {
                var d = [UInt32](repeating: 1, count: positions * words), s = [Float](repeating: 2, count: nScales)
                XCTAssertEqual(input(x, Int32(h), Int32(w), Int32(c), Int32(ty0), tiles, Int32(nb), bounds, 0, panels, &d, &s, isa), 0)
                return (d, s.map(\.bitPattern))
            }
            let ref = transformed(Int32(GLIDE_WF42_PORTABLE))
            for isa in isas {
                let got = transformed(isa)
                XCTAssertEqual(ref.0, got.0, "input isa=\(isa) c=\(c) \(h)x\(w) nb=\(nb) ty0=\(ty0)")
                XCTAssertEqual(ref.1, got.1, "scales isa=\(isa) c=\(c) \(h)x\(w) ty0=\(ty0)")
            }
            let o = 5
            let m = rng.floats(positions * o * tiles, scale: 10)
            let bias = rng.floats(o)
            for accumulate: Int32 in [0, 1] {
                let y = rng.floats(2 * o * h * w)
                func outputs(_ isa: Int32) -> [UInt32] {
                    var out = y
                    output(m, tiles, o * tiles, Int32(o), 1, Int32(o), Int32(h), Int32(w), Int32(ty0), Int32(ty0 + rows),
                           bias, &out, accumulate, isa)
                    return out.map(\.bitPattern)
                }
                let ref = outputs(Int32(GLIDE_WF42_PORTABLE))
                for isa in isas { XCTAssertEqual(ref, outputs(isa), "output isa=\(isa) \(h)x\(w) acc=\(accumulate)") }
            }
        }
    }
}
