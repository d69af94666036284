// Fast GEMM / linear / conv paths against their scalar twins, per dtype, on odd shapes and strides.
import XCTest
@testable import Kernels

final class GEMMTests: XCTestCase {
    static let dtypes = ["f32", "f16", "bf16", "int8"]

    func tolerance(_ dtype: String) -> Float {
        switch dtype {
        case "int8": return Tolerance.int8
        case "f16", "bf16": return Tolerance.halfWeights
        default: return Tolerance.f32
        }
    }

    /// gemm on an NCHW-like input [K, N] (colStride 1) and on a transposed token-major input.
    func runGemm(m: Int, n: Int, k: Int, dtype: String, transposed: Bool, accumulate: Bool, seed: UInt64) -> (Float, Float) {
        var rng = TestRNG(seed: seed)
        let w = TypedWeights(rows: m, cols: k, rng: &rng)
        let x = rng.floats(k * n)
        let bias = rng.floats(m)
        let initial = rng.floats(m * n)
        var fast = initial, ref = initial
        w.with(dtype) { wm in
            x.withUnsafeBufferPointer { xp in
                bias.withUnsafeBufferPointer { bp in
                    let input = transposed ? MatrixOperand(xp.baseAddress!, rowStride: 1, colStride: k)
                                           : MatrixOperand(xp.baseAddress!, rowStride: n, colStride: 1)
                    fast.withUnsafeMutableBufferPointer { f in
                        let out = transposed ? MutableMatrixOperand(f.baseAddress!, rowStride: 1, colStride: m)
                                             : MutableMatrixOperand(f.baseAddress!, rowStride: n)
                        withSettings {
                            gemm(weight: wm, input: input, columns: n, output: out, bias: bp.baseAddress!, accumulate: accumulate)
                        }
                    }
                    ref.withUnsafeMutableBufferPointer { r in
                        let out = transposed ? MutableMatrixOperand(r.baseAddress!, rowStride: 1, colStride: m)
                                             : MutableMatrixOperand(r.baseAddress!, rowStride: n)
                        gemmScalar(weight: wm, input: input, columns: n, output: out, bias: bp.baseAddress!, accumulate: accumulate)
                    }
                }
            }
        }
        return (relativeError(fast, ref), tolerance(dtype))
    }

    func testGemmFastMatchesScalarOddShapes() throws {
        try XCTSkipUnless(KernelSettings.hasAVX2FMA, "no AVX2/FMA on this CPU")
        let shapes = [(1, 1, 1), (7, 13, 5), (6, 16, 256), (13, 37, 300), (50, 33, 513), (5, 100, 3), (64, 17, 7)]
        var seed: UInt64 = 1
        for (m, n, k) in shapes {
            for dtype in Self.dtypes {
                for transposed in [false, true] {
                    for accumulate in [false, true] {
                        seed += 1
                        let (err, tol) = runGemm(m: m, n: n, k: k, dtype: dtype, transposed: transposed,
                                                 accumulate: accumulate, seed: seed)
                        XCTAssertLessThanOrEqual(err, tol, "gemm \(dtype) m=\(m) n=\(n) k=\(k) T=\(transposed) acc=\(accumulate)")
                    }
                }
            }
        }
    }

    func testInt8WithInt16ActivationsIsPrecise() throws {
        try XCTSkipUnless(KernelSettings.hasAVX2FMA, "no AVX2/FMA on this CPU")
        try withSettings(actMax: 32767) {
            let (err, _) = runGemm(m: 37, n: 41, k: 600, dtype: "int8", transposed: false, accumulate: false, seed: 99)
            XCTAssertLessThanOrEqual(err, Tolerance.int8Act16)
        }
    }

    func testLinearMatchesScalar() throws {
        var rng = TestRNG(seed: 7)
        let (t, k, o) = (11, 70, 29)
        let w = TypedWeights(rows: o, cols: k, rng: &rng)
        let x = rng.floats(t * k), b = rng.floats(o)
        for dtype in Self.dtypes {
            var fast = [Float](repeating: 0, count: t * o), ref = fast
            w.with(dtype) { wm in
                withSettings { linear(input: x, rows: t, weight: wm, bias: b, output: &fast) }
                linearScalar(input: x, rows: t, weight: wm, bias: b, output: &ref)
            }
            XCTAssertLessThanOrEqual(relativeError(fast, ref), tolerance(dtype), dtype)
        }
        // and against the textbook formula on f32
        var y = [Float](repeating: 0, count: t * o)
        w.with("f32") { linearScalar(input: x, rows: t, weight: $0, bias: b, output: &y) }
        for ti in 0..<t {
            for oi in 0..<o {
                var s: Float = b[oi]
                for ki in 0..<k { s += x[ti * k + ki] * w.f32[oi * k + ki] }
                XCTAssertEqual(y[ti * o + oi], s, accuracy: 1e-4)
            }
        }
    }

    func testMatmulStridedA() {
        var rng = TestRNG(seed: 8)
        let (m, n, k) = (9, 10, 11)
        let a = rng.floats(k * m)           // stored transposed: a[i, j] at j*m + i
        let b = rng.floats(k * n)
        var c = [Float](repeating: 0, count: m * n)
        a.withUnsafeBufferPointer { ap in b.withUnsafeBufferPointer { bp in c.withUnsafeMutableBufferPointer { cp in
            matmul(m: m, n: n, k: k, a: MatrixOperand(ap.baseAddress!, rowStride: 1, colStride: m),
                   b: MatrixOperand(bp.baseAddress!, rowStride: n), c: MutableMatrixOperand(cp.baseAddress!, rowStride: n))
        } } }
        for i in 0..<m {
            for j in 0..<n {
                var s: Float = 0
                for p in 0..<k { s += a[p * m + i] * b[p * n + j] }
                XCTAssertEqual(c[i * n + j], s, accuracy: 1e-5)
            }
        }
    }

    func testGemmBitIdenticalAcrossThreadCounts() throws {
        try XCTSkipUnless(KernelSettings.hasAVX2FMA, "no AVX2/FMA on this CPU")
        var rng = TestRNG(seed: 11)
        for (m, n, k) in [(100, 300, 257), (300, 40, 520)] {
            let w = TypedWeights(rows: m, cols: k, rng: &rng)
            let x = rng.floats(k * n)
            for dtype in Self.dtypes {
                var outs: [[Float]] = []
                for threads in [1, 2, 3] {
                    var y = [Float](repeating: 0, count: m * n)
                    withSettings(threads: threads) {
                        w.with(dtype) { wm in
                            x.withUnsafeBufferPointer { xp in y.withUnsafeMutableBufferPointer { yp in
                                gemm(weight: wm, input: MatrixOperand(xp.baseAddress!, rowStride: n), columns: n,
                                     output: MutableMatrixOperand(yp.baseAddress!, rowStride: n))
                            } }
                        }
                    }
                    outs.append(y)
                }
                XCTAssertEqual(outs[0], outs[1], "\(dtype) 1 vs 2 threads")
                XCTAssertEqual(outs[0], outs[2], "\(dtype) 1 vs 3 threads")
            }
        }
    }
}

final class ConvTests: XCTestCase {
    func runConv(_ g: Conv2dGeometry, dtype: String, accumulate: Bool, seed: UInt64, threads: Int? = nil,
                 winograd: Bool? = nil, withBias: Bool = true) -> ([Float], [Float]) {
        var rng = TestRNG(seed: seed)
        let w = TypedWeights(rows: g.outChannels, cols: g.reductionLength, rng: &rng)
        let x = rng.floats(g.batch * g.inChannels * g.height * g.width)
        let b = rng.floats(g.outChannels)
        let initial = rng.floats(g.batch * g.outChannels * g.outHeight * g.outWidth)
        var fast = initial, ref = initial
        w.with(dtype) { wm in
            b.withUnsafeBufferPointer { bp in
                let bias = withBias ? bp.baseAddress : nil
                withSettings(threads: threads, winograd: winograd) {
                    conv2d(input: x, weight: wm, bias: bias, output: &fast, geometry: g, accumulate: accumulate)
                }
                conv2dScalar(input: x, weight: wm, bias: bias, output: &ref, geometry: g, accumulate: accumulate)
            }
        }
        return (fast, ref)
    }

    func testConvFastMatchesScalar() throws {
        try XCTSkipUnless(KernelSettings.hasAVX2FMA, "no AVX2/FMA on this CPU")
        let geometries = [
            Conv2dGeometry(batch: 2, inChannels: 5, height: 9, width: 7, outChannels: 13, kernelSize: 3, stride: 1, padding: 1),
            Conv2dGeometry(batch: 1, inChannels: 8, height: 16, width: 16, outChannels: 7, kernelSize: 3, stride: 1, padding: 1),
            Conv2dGeometry(batch: 1, inChannels: 3, height: 8, width: 24, outChannels: 6, kernelSize: 3, stride: 1, padding: 1),
            Conv2dGeometry(batch: 2, inChannels: 6, height: 11, width: 10, outChannels: 9, kernelSize: 3, stride: 2, padding: 1),
            Conv2dGeometry(batch: 1, inChannels: 4, height: 16, width: 16, outChannels: 8, kernelSize: 3, stride: 2, padding: 1),
            Conv2dGeometry(batch: 2, inChannels: 12, height: 5, width: 6, outChannels: 10, kernelSize: 1),
            Conv2dGeometry(batch: 1, inChannels: 30, height: 32, width: 32, outChannels: 20, kernelSize: 3, stride: 1, padding: 1),
        ]
        var seed: UInt64 = 100
        for g in geometries {
            for dtype in GEMMTests.dtypes {
                for accumulate in [false, true] {
                    seed += 1
                    let (fast, ref) = runConv(g, dtype: dtype, accumulate: accumulate, seed: seed)
                    let tol: Float = dtype == "int8" ? Tolerance.int8 : Tolerance.f32
                    XCTAssertLessThanOrEqual(relativeError(fast, ref), tol, "\(g) \(dtype) acc=\(accumulate)")
                }
            }
        }
    }

    func testWinogradMatchesScalar() throws {
        try XCTSkipUnless(KernelSettings.hasAVX2FMA, "no AVX2/FMA on this CPU")
        let geometries = [
            // odd height and width (partial tiles on both edges), more outputs than inputs and the reverse
            Conv2dGeometry(batch: 2, inChannels: 9, height: 17, width: 23, outChannels: 20, kernelSize: 3, stride: 1, padding: 1),
            Conv2dGeometry(batch: 1, inChannels: 40, height: 16, width: 16, outChannels: 8, kernelSize: 3, stride: 1, padding: 1),
            Conv2dGeometry(batch: 1, inChannels: 32, height: 33, width: 20, outChannels: 33, kernelSize: 3, stride: 1, padding: 1),
        ]
        let saved = KernelSettings.winogradChunkElements
        let (minTiles, minTilesInt8) = (KernelSettings.winogradMinimumTiles, KernelSettings.winogradMinimumTilesInt8)
        // int8 takes Winograd on the AVX2 vpmaddwd path only (a vpdpbusd path keeps its implicit GEMM)
        let savedInt8Path = KernelSettings.int8Path
        KernelSettings.int8Path = .avx2
        defer {
            KernelSettings.resetInt8Path()
            KernelSettings.winogradChunkElements = saved
            KernelSettings.winogradMinimumTiles = minTiles; KernelSettings.winogradMinimumTilesInt8 = minTilesInt8
        }
        // Small shapes keep the scalar reference fast in debug builds: lower the size thresholds.
        KernelSettings.winogradMinimumTiles = 1; KernelSettings.winogradMinimumTilesInt8 = 1
        var seed: UInt64 = 500
        for g in geometries {
            XCTAssertTrue(conv2dUsesWinograd(g, int8Weights: true), "\(g)")
            // one chunk for the whole image, then chunks of one or two tile rows
            for chunk in [saved, 16 * 20 * 12] {
                KernelSettings.winogradChunkElements = chunk
                for dtype in GEMMTests.dtypes {
                    for (accumulate, withBias) in [(false, true), (true, true), (false, false)] {
                        seed += 1
                        let (fast, ref) = runConv(g, dtype: dtype, accumulate: accumulate, seed: seed, winograd: true,
                                                  withBias: withBias)
                        // f32/f16/bf16: f32 on the widened weights; int8: in integers (GEMMInt8Tests).
                        XCTAssertLessThanOrEqual(relativeError(fast, ref), dtype == "int8" ? Tolerance.int8Winograd : Tolerance.f32,
                                                 "\(g) \(dtype) acc=\(accumulate) bias=\(withBias) chunk=\(chunk)")
                    }
                }
            }
        }
        // Below the size thresholds, with stride 2, or switched off: the implicit-im2col GEMM.
        KernelSettings.winogradMinimumTiles = minTiles; KernelSettings.winogradMinimumTilesInt8 = minTilesInt8
        XCTAssertFalse(conv2dUsesWinograd(Conv2dGeometry(batch: 2, inChannels: 32, height: 16, width: 16, outChannels: 32, kernelSize: 3, stride: 1, padding: 1)))
        XCTAssertTrue(conv2dUsesWinograd(Conv2dGeometry(batch: 2, inChannels: 32, height: 32, width: 32, outChannels: 32, kernelSize: 3, stride: 1, padding: 1)))
        XCTAssertFalse(conv2dUsesWinograd(Conv2dGeometry(batch: 1, inChannels: 32, height: 8, width: 8, outChannels: 32, kernelSize: 3, stride: 1, padding: 1), int8Weights: true))
        XCTAssertFalse(conv2dUsesWinograd(Conv2dGeometry(batch: 1, inChannels: 32, height: 32, width: 32, outChannels: 32, kernelSize: 3, stride: 2, padding: 1)))
        withSettings(winograd: false) {
            XCTAssertFalse(conv2dUsesWinograd(Conv2dGeometry(batch: 1, inChannels: 32, height: 32, width: 32, outChannels: 32, kernelSize: 3, stride: 1, padding: 1)))
        }
    }

    func testConvScalarPathMatchesDirectFormula() {
        // forceScalar routes conv2d through the scalar twin; check the twin against a naive formula.
        let g = Conv2dGeometry(batch: 1, inChannels: 2, height: 4, width: 5, outChannels: 3, kernelSize: 3, stride: 2, padding: 1)
        var rng = TestRNG(seed: 5)
        let w = rng.floats(g.outChannels * g.reductionLength), x = rng.floats(2 * 4 * 5), b = rng.floats(3)
        var y = [Float](repeating: 0, count: 3 * g.outHeight * g.outWidth)
        withSettings(scalar: true) {
            w.withUnsafeBufferPointer { wp in
                conv2d(input: x, weight: WeightMatrix(rows: 3, cols: 18, f32: wp.baseAddress!), bias: b, output: &y, geometry: g)
            }
        }
        XCTAssertEqual(g.outHeight, 2); XCTAssertEqual(g.outWidth, 3)
        for o in 0..<3 { for oy in 0..<2 { for ox in 0..<3 {
            var s = b[o]
            for c in 0..<2 { for ky in 0..<3 { for kx in 0..<3 {
                let iy = oy * 2 + ky - 1, ix = ox * 2 + kx - 1
                if iy >= 0 && iy < 4 && ix >= 0 && ix < 5 { s += w[o * 18 + c * 9 + ky * 3 + kx] * x[c * 20 + iy * 5 + ix] }
            } } }
            XCTAssertEqual(y[o * 6 + oy * 3 + ox], s, accuracy: 1e-5)
        } } }
    }

    func testConvBitIdenticalAcrossThreadCounts() throws {
        try XCTSkipUnless(KernelSettings.hasAVX2FMA, "no AVX2/FMA on this CPU")
        // implicit-im2col GEMM, then Winograd (576 tiles; int8 stays on the GEMM)
        for g in [Conv2dGeometry(batch: 1, inChannels: 16, height: 24, width: 24, outChannels: 40, kernelSize: 3, stride: 1, padding: 1),
                  Conv2dGeometry(batch: 1, inChannels: 16, height: 48, width: 48, outChannels: 24, kernelSize: 3, stride: 1, padding: 1)] {
            for dtype in GEMMTests.dtypes {
                let (one, _) = runConv(g, dtype: dtype, accumulate: false, seed: 3, threads: 1)
                let (two, _) = runConv(g, dtype: dtype, accumulate: false, seed: 3, threads: 2)
                let (three, _) = runConv(g, dtype: dtype, accumulate: false, seed: 3, threads: 3)
                XCTAssertEqual(one, two, "\(g) \(dtype)")
                XCTAssertEqual(one, three, "\(g) \(dtype)")
            }
        }
    }
}
