// Shared by WinogradF42Tests and WinogradF44Tests: the integer int8 Winograd of one tile (F(4x2) or F(4x4)) run
// through conv2d, its comparison with the scalar int8 convolution, and the int32 bound's worst case.
import XCTest
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
