// The dispatch levels, the AVX-512 f32 GEMM and the bf16 `vdpbf16ps` GEMM against their twins:
// the bf16 path's scalar twin is a portable emulation of the instruction through the same packing code
// (`gemmBF16Emulated`), run everywhere; the intrinsic path is compared bit for bit with it where the CPU
// has AVX512_BF16. Both are compared with the f32 scalar reference at named tolerances.
import XCTest
import CKernelsX86
@testable import Kernels

extension Tolerance {
    /// bf16 weights x bf16-rounded activations (8-bit significands) vs the f32 scalar reference on the
    /// same bf16 weights and unrounded activations, relative to the output's max magnitude.
    static let bf16Activations: Float = 1e-2
    /// The bf16 emulation vs the f32 scalar reference fed the same bf16-rounded activations: only the
    /// summation order differs.
    static let bf16SameInputs: Float = 1e-5
    /// bf16 Winograd (transformed weights and inputs rounded to bf16) vs the f32 scalar reference: the
    /// transforms widen the range of the rounded values, so looser than `bf16Activations`.
    static let bf16Winograd: Float = 3e-2
}

/// Runs `body` with `cpuCap` and `bf16DotProducts` set, restoring them afterwards.
func withCPU<R>(_ cap: CPUPath, bf16Dot: Bool = true, _ body: () throws -> R) rethrows -> R {
    let (c, b) = (KernelSettings.cpuCap, KernelSettings.bf16DotProducts)
    defer { KernelSettings.cpuCap = c; KernelSettings.bf16DotProducts = b }
    KernelSettings.cpuCap = cap
    KernelSettings.bf16DotProducts = bf16Dot
    return try body()
}

final class DispatchTests: XCTestCase {
    func testInt8PathFollowsTheCap() {
        XCTAssertEqual(CPUPath(name: "avxvnni"), .avxvnni)
        KernelSettings.resetInt8Path()
        withCPU(.avx2) {
            XCTAssertEqual(KernelSettings.int8Path, .avx2, "the Zen 3 level uses no VNNI")
            XCTAssertEqual(KernelSettings.gemmPath(for: .int8), "avx2 int8 vpmaddwd 6x16")
        }
        withCPU(.avxvnni) {
            XCTAssertEqual(KernelSettings.int8Path, KernelSettings.hasAVXVNNI ? .avxvnni : .avx2)
        }
        withCPU(.avx512) {
            let best: Int8GEMMPath = KernelSettings.has(.avx512vnni) ? .avx512vnni : KernelSettings.has(.avxVNNI) ? .avxvnni : .avx2
            XCTAssertEqual(KernelSettings.int8Path, best)
            if best == .avx512vnni { XCTAssertEqual(KernelSettings.gemmPath(for: .int8), "avx512_vnni vpdpbusd 8x32") }
        }
    }

    func testCapLimitsPathAndFeatures() {
        XCTAssertEqual(CPUPath(name: "AVX512"), .avx512)
        XCTAssertEqual(CPUPath(name: "avx2"), .avx2)
        XCTAssertEqual(CPUPath(name: "scalar"), .scalar)
        XCTAssertNil(CPUPath(name: "sse"))
        withCPU(.scalar) {
            XCTAssertEqual(KernelSettings.cpuPath, .scalar)
            XCTAssertFalse(KernelSettings.useAVX2)
            for f in CPUFeature.allCases { XCTAssertFalse(KernelSettings.has(f), f.rawValue) }
            XCTAssertEqual(KernelSettings.gemmPath(for: .bf16), "scalar")
        }
        withCPU(.avx2) {
            XCTAssertEqual(KernelSettings.cpuPath, min(.avx2, KernelSettings.supportedPath))
            XCTAssertFalse(KernelSettings.has(.avx512f))
            XCTAssertFalse(KernelSettings.has(.avx512bf16))
            XCTAssertEqual(KernelSettings.has(.avx2FMA), KernelSettings.detectedFeatures.contains(.avx2FMA))
            if KernelSettings.supportedPath >= .avx2 {
                for kind in WeightElementKind.allCases where kind != .int8 {
                    XCTAssertEqual(KernelSettings.gemmPath(for: kind), "avx2 f32 6x16", kind.rawValue)
                }
            }
        }
        if KernelSettings.supportedPath == .avx512 {
            withCPU(.avx512, bf16Dot: false) {
                XCTAssertEqual(KernelSettings.gemmPath(for: .bf16), "avx512 f32 14x32")
                XCTAssertEqual(KernelSettings.gemmPath(for: .f32, columns: 2), "avx2 f32 6x16")   // timestep MLPs
            }
        }
        withCPU(.avx512) {
            XCTAssertEqual(KernelSettings.cpuPath, KernelSettings.supportedPath)
            withSettings(scalar: true) { XCTAssertEqual(KernelSettings.cpuPath, .scalar) }
            for f in CPUFeature.allCases where KernelSettings.supportedPath >= f.level {
                XCTAssertEqual(KernelSettings.has(f), KernelSettings.detectedFeatures.contains(f), f.rawValue)
            }
        }
        if KernelSettings.detectedFeatures.contains(.avx512f) {
            XCTAssertTrue(KernelSettings.detectedFeatures.contains(.avx2FMA))
        }
    }
}

final class BF16DotTests: XCTestCase {
    /// gemm through `run` (fast path under the current settings) and through the emulation, plus the
    /// f32 scalar reference on unrounded and on bf16-rounded activations.
    struct Outputs { var fast: [Float]; var emulated: [Float]; var reference: [Float]; var referenceRounded: [Float] }

    func gemmCase(m: Int, n: Int, k: Int, transposed: Bool, accumulate: Bool, bias: Bool, seed: UInt64,
                  threads: Int = 1) -> Outputs {
        var rng = TestRNG(seed: seed)
        let w = TypedWeights(rows: m, cols: k, rng: &rng)
        let x = rng.floats(k * n)
        let xr = x.map { bf16ToF32(f32ToBF16($0)) }
        let b = rng.floats(m)
        let initial = rng.floats(m * n)
        var outs = [initial, initial, initial, initial]
        let input = { (p: UnsafePointer<Float>) in
            transposed ? MatrixOperand(p, rowStride: 1, colStride: k) : MatrixOperand(p, rowStride: n)
        }
        w.with("bf16") { wm in
            b.withUnsafeBufferPointer { bp in
                let bias = bias ? bp.baseAddress : nil
                for (i, src) in [x, x, x, xr].enumerated() {
                    src.withUnsafeBufferPointer { xp in
                        outs[i].withUnsafeMutableBufferPointer { yp in
                            let out = MutableMatrixOperand(yp.baseAddress!, rowStride: n)
                            switch i {
                            case 0: withSettings(threads: threads, bf16Dot: true) {
                                gemm(weight: wm, input: input(xp.baseAddress!), columns: n, output: out, bias: bias, accumulate: accumulate)
                            }
                            case 1: withSettings(threads: threads) {
                                gemmBF16Emulated(weight: wm, input: input(xp.baseAddress!), columns: n, output: out, bias: bias, accumulate: accumulate)
                            }
                            default:
                                gemmScalar(weight: wm, input: input(xp.baseAddress!), columns: n, output: out, bias: bias, accumulate: accumulate)
                            }
                        }
                    }
                }
            }
        }
        return Outputs(fast: outs[0], emulated: outs[1], reference: outs[2], referenceRounded: outs[3])
    }

    static let shapes: [(Int, Int, Int)] = [(1, 1, 1), (14, 32, 2), (15, 33, 3), (29, 70, 257), (3, 5, 513), (40, 100, 31)]

    /// Runs everywhere: the emulation (same packing/blocking as the vdpbf16ps path) against the f32 reference.
    func testEmulationMatchesF32Reference() {
        var seed: UInt64 = 500
        for (m, n, k) in Self.shapes {
            for transposed in [false, true] {
                for accumulate in [false, true] {
                    seed += 1
                    let o = gemmCase(m: m, n: n, k: k, transposed: transposed, accumulate: accumulate, bias: accumulate, seed: seed)
                    let tag = "\(m)x\(n)x\(k) transposed=\(transposed) acc=\(accumulate)"
                    XCTAssertLessThanOrEqual(relativeError(o.emulated, o.referenceRounded), Tolerance.bf16SameInputs, tag)
                    XCTAssertLessThanOrEqual(relativeError(o.emulated, o.reference), Tolerance.bf16Activations, tag)
                }
            }
        }
    }

    /// DAZ on bf16 inputs and FTZ on results, as the instruction (Intel SDM: "DAZ in, FTZ out, RNE").
    func testEmulationFlushesDenormals() {
        func one(weight: UInt16, input: Float) -> Float {
            var y: [Float] = [7]
            let w: [UInt16] = [weight]
            w.withUnsafeBufferPointer { wp in
                [input].withUnsafeBufferPointer { xp in
                    y.withUnsafeMutableBufferPointer { yp in
                        gemmBF16Emulated(weight: WeightMatrix(rows: 1, cols: 1, elements: .bf16(wp.baseAddress!)),
                                         input: MatrixOperand(xp.baseAddress!, rowStride: 1), columns: 1,
                                         output: MutableMatrixOperand(yp.baseAddress!, rowStride: 1))
                    }
                }
            }
            return y[0]
        }
        XCTAssertEqual(one(weight: 0x0001, input: 1e30), 0)                   // denormal weight read as zero
        XCTAssertEqual(one(weight: f32ToBF16(0x1p-100), input: 0x1p-30), 0)    // denormal product flushed
        XCTAssertEqual(one(weight: f32ToBF16(0x1p-60), input: 0x1p-60), 0x1p-120)
        XCTAssertEqual(one(weight: f32ToBF16(1.5), input: 3), 4.5)
    }

    /// The vdpbf16ps path against its emulation: bit-identical, any thread count.
    func testIntrinsicMatchesEmulation() throws {
        try XCTSkipUnless(KernelSettings.detectedFeatures.contains(.avx512bf16), "no avx512_bf16 on this CPU")
        try withCPU(.avx512) {
            try XCTSkipUnless(KernelSettings.useBF16Dot, "no avx512f/bw/vl on this CPU")
            XCTAssertEqual(KernelSettings.gemmPath(for: .bf16), "avx512_bf16 vdpbf16ps 14x32")
            var seed: UInt64 = 600
            for (m, n, k) in Self.shapes + [(300, 40, 520), (100, 300, 257)] {
                for transposed in [false, true] {
                    for threads in [1, 2, 3] {
                        seed += 1
                        let o = gemmCase(m: m, n: n, k: k, transposed: transposed, accumulate: true, bias: true,
                                         seed: seed, threads: threads)
                        XCTAssertEqual(o.fast, o.emulated, "\(m)x\(n)x\(k) transposed=\(transposed) threads=\(threads)")
                    }
                }
            }
        }
    }

    /// The vdpbf16ps path and its emulation give the same bits for every thread count.
    func testThreadCountIndependence() throws {
        let intrinsic = KernelSettings.detectedFeatures.contains(.avx512bf16) && KernelSettings.supportedPath == .avx512
        for (m, n, k) in [(300, 40, 520), (100, 300, 257)] {
            let runs = [1, 2, 3].map { t in
                withCPU(.avx512) { gemmCase(m: m, n: n, k: k, transposed: false, accumulate: true, bias: true, seed: 42, threads: t) }
            }
            XCTAssertEqual(runs[0].emulated, runs[1].emulated, "emulated 1 vs 2 threads")
            XCTAssertEqual(runs[0].emulated, runs[2].emulated, "emulated 1 vs 3 threads")
            if intrinsic {
                XCTAssertEqual(runs[0].fast, runs[1].fast, "vdpbf16ps 1 vs 2 threads")
                XCTAssertEqual(runs[0].fast, runs[2].fast, "vdpbf16ps 1 vs 3 threads")
            }
        }
    }

    func testConvIntrinsicMatchesEmulation() throws {
        try XCTSkipUnless(KernelSettings.detectedFeatures.contains(.avx512bf16), "no avx512_bf16 on this CPU")
        let geometries = [
            Conv2dGeometry(batch: 2, inChannels: 5, height: 9, width: 7, outChannels: 13, kernelSize: 3, stride: 1, padding: 1),
            Conv2dGeometry(batch: 1, inChannels: 8, height: 20, width: 37, outChannels: 15, kernelSize: 3, stride: 1, padding: 1),
            Conv2dGeometry(batch: 2, inChannels: 6, height: 11, width: 10, outChannels: 9, kernelSize: 3, stride: 2, padding: 1),
            Conv2dGeometry(batch: 1, inChannels: 12, height: 5, width: 6, outChannels: 10, kernelSize: 1),
        ]
        var seed: UInt64 = 700
        for g in geometries {
            for accumulate in [false, true] {
                seed += 1
                var rng = TestRNG(seed: seed)
                let w = TypedWeights(rows: g.outChannels, cols: g.reductionLength, rng: &rng)
                let x = rng.floats(g.batch * g.inChannels * g.height * g.width)
                let b = rng.floats(g.outChannels)
                let initial = rng.floats(g.batch * g.outChannels * g.outHeight * g.outWidth)
                var fast = initial, emulated = initial, reference = initial
                w.with("bf16") { wm in
                    withCPU(.avx512) {
                        withSettings(threads: 2, winograd: false, bf16Dot: true) {
                            conv2d(input: x, weight: wm, bias: b, output: &fast, geometry: g, accumulate: accumulate)
                        }
                    }
                    conv2dBF16Emulated(input: x, weight: wm, bias: b, output: &emulated, geometry: g, accumulate: accumulate)
                    conv2dScalar(input: x, weight: wm, bias: b, output: &reference, geometry: g, accumulate: accumulate)
                }
                XCTAssertEqual(fast, emulated, "\(g) acc=\(accumulate)")
                XCTAssertLessThanOrEqual(relativeError(emulated, reference), Tolerance.bf16Activations, "\(g)")
            }
        }
    }
}

final class AVX512F32Tests: XCTestCase {
    /// The 14x32 f32 kernel (f32, f16 and widened bf16 weights) against the scalar twin, gemm and conv.
    func testGemmMatchesScalar() throws {
        try XCTSkipUnless(KernelSettings.supportedPath == .avx512, "no avx512f/bw/vl on this CPU")
        try withCPU(.avx512, bf16Dot: false) {
            for kind in [WeightElementKind.f16, .bf16] {
                XCTAssertEqual(KernelSettings.gemmPath(for: kind), "avx512 f32 14x32")
            }
            var rng = TestRNG(seed: 800)
            for (m, n, k) in [(1, 129, 1), (15, 161, 3), (29, 200, 257), (3, 130, 513), (300, 140, 520)] {
                let w = TypedWeights(rows: m, cols: k, rng: &rng)
                let x = rng.floats(k * n), b = rng.floats(m), initial = rng.floats(m * n)
                for dtype in ["f32", "f16", "bf16"] {
                    for transposed in [false, true] {
                        var outs: [[Float]] = []
                        for threads in [0, 1, 2, 3] {
                            var y = initial
                            w.with(dtype) { wm in
                                x.withUnsafeBufferPointer { xp in y.withUnsafeMutableBufferPointer { yp in
                                    let input = transposed ? MatrixOperand(xp.baseAddress!, rowStride: 1, colStride: k)
                                        : MatrixOperand(xp.baseAddress!, rowStride: n)
                                    let out = MutableMatrixOperand(yp.baseAddress!, rowStride: n)
                                    if threads == 0 {
                                        gemmScalar(weight: wm, input: input, columns: n, output: out, bias: b, accumulate: true)
                                    } else {
                                        withSettings(threads: threads) {
                                            gemm(weight: wm, input: input, columns: n, output: out, bias: b, accumulate: true)
                                        }
                                    }
                                } }
                            }
                            outs.append(y)
                        }
                        let tag = "\(m)x\(n)x\(k) \(dtype) transposed=\(transposed)"
                        XCTAssertLessThanOrEqual(relativeError(outs[1], outs[0]), Tolerance.f32, tag)
                        XCTAssertEqual(outs[1], outs[2], tag + " 1 vs 2 threads")
                        XCTAssertEqual(outs[1], outs[3], tag + " 1 vs 3 threads")
                    }
                }
            }
        }
    }

    func testConvAndWinogradMatchScalar() throws {
        try XCTSkipUnless(KernelSettings.supportedPath == .avx512, "no avx512f/bw/vl on this CPU")
        let geometries = [
            Conv2dGeometry(batch: 2, inChannels: 9, height: 17, width: 23, outChannels: 20, kernelSize: 3, stride: 1, padding: 1),
            Conv2dGeometry(batch: 1, inChannels: 8, height: 20, width: 37, outChannels: 15, kernelSize: 3, stride: 1, padding: 1),
            Conv2dGeometry(batch: 2, inChannels: 6, height: 31, width: 10, outChannels: 9, kernelSize: 3, stride: 2, padding: 1),
            Conv2dGeometry(batch: 1, inChannels: 30, height: 32, width: 32, outChannels: 20, kernelSize: 3, stride: 1, padding: 1),
        ]
        var seed: UInt64 = 900
        for g in geometries {
            for dtype in ["f32", "f16", "bf16"] {
                for winograd in [false, true] {
                    seed += 1
                    let (fast, ref) = withCPU(.avx512, bf16Dot: false) {
                        convFastAndScalar(g, dtype: dtype, seed: seed, winograd: winograd)
                    }
                    XCTAssertLessThanOrEqual(relativeError(fast, ref), Tolerance.f32, "\(g) \(dtype) winograd=\(winograd)")
                }
            }
        }
    }
}

final class WinogradAVX512Tests: XCTestCase {
    /// The AVX-512 weight transform is bit-identical to the AVX2 one (same operations, 16 channels per step).
    func testWeightTransformMatchesAVX2() throws {
        try XCTSkipUnless(KernelSettings.supportedPath == .avx512, "no avx512f/bw/vl on this CPU")
        var rng = TestRNG(seed: 1000)
        for c in [1, 16, 37] {
            let g = rng.floats(c * 9)
            var a = [Float](repeating: 0, count: 16 * c), b = a
            glide_winograd_weights_avx2(g, Int32(c), &a, c)
            glide_winograd_weights_avx512(g, Int32(c), &b, c)
            XCTAssertEqual(a, b, "C=\(c)")
        }
    }

    /// The zmm output transform is bit-identical to the AVX2 loops on odd and even planes, partial
    /// channel and tile-row ranges, with and without bias and accumulation (edge shapes: W = 1, tails of 16 tiles).
    func testOutputTransformMatchesAVX2() throws {
        try XCTSkipUnless(KernelSettings.supportedPath == .avx512, "no avx512f/bw/vl on this CPU")
        var rng = TestRNG(seed: 1001)
        for (c, h, w) in [(3, 1, 1), (2, 5, 7), (5, 9, 33), (4, 16, 64), (3, 13, 31), (2, 6, 66), (1, 3, 97)] {
            let tw = (w + 1) / 2, th = (h + 1) / 2
            for (ty0, ty1) in [(0, th), (th / 2, th)] where ty1 > ty0 {
                let ld = (ty1 - ty0) * tw + 3
                let o = c + 1
                let mStride = o * ld
                let m = rng.floats(16 * mStride), bias = rng.floats(o)
                for accumulate in [0, 1] {
                    for withBias in [false, true] {
                        let y0 = rng.floats(o * h * w)
                        var ya = y0, yb = y0
                        bias.withUnsafeBufferPointer { bp in
                            let bb = withBias ? bp.baseAddress : nil
                            glide_winograd_output_avx2(m, ld, mStride, 1, Int32(o), Int32(h), Int32(w), Int32(ty0),
                                                       Int32(ty1), bb, &ya, Int32(accumulate))
                            glide_winograd_output_avx512(m, ld, mStride, 1, Int32(o), Int32(h), Int32(w), Int32(ty0),
                                                         Int32(ty1), bb, &yb, Int32(accumulate))
                        }
                        XCTAssertEqual(ya.map(\.bitPattern), yb.map(\.bitPattern),
                                       "output o=\(o) \(h)x\(w) rows \(ty0)..<\(ty1) acc=\(accumulate) bias=\(withBias)")
                    }
                }
            }
        }
    }

    /// Opt-in bf16 Winograd (transformed weights and inputs rounded to bf16, vdpbf16ps GEMMs) vs the f32 scalar
    /// reference on the same bf16 weights.
    func testBF16WinogradMatchesScalar() throws {
        try XCTSkipUnless(KernelSettings.detectedFeatures.contains(.avx512bf16), "no avx512_bf16 on this CPU")
        let saved = KernelSettings.winogradBF16
        defer { KernelSettings.winogradBF16 = saved }
        KernelSettings.winogradBF16 = true
        for (i, g) in [
            Conv2dGeometry(batch: 2, inChannels: 9, height: 17, width: 23, outChannels: 20, kernelSize: 3, stride: 1, padding: 1),
            Conv2dGeometry(batch: 1, inChannels: 64, height: 32, width: 32, outChannels: 40, kernelSize: 3, stride: 1, padding: 1),
        ].enumerated() {
            let (fast, ref) = withCPU(.avx512) {
                convFastAndScalar(g, dtype: "bf16", seed: 1100 + UInt64(i), winograd: true, bf16Dot: true)
            }
            XCTAssertLessThanOrEqual(relativeError(fast, ref), Tolerance.bf16Winograd, "\(g)")
        }
    }
}

/// conv2d (2 threads, accumulate, bias) and conv2dScalar on the same random data.
func convFastAndScalar(_ g: Conv2dGeometry, dtype: String, seed: UInt64, winograd: Bool,
                       bf16Dot: Bool = false) -> ([Float], [Float]) {
    var rng = TestRNG(seed: seed)
    let w = TypedWeights(rows: g.outChannels, cols: g.reductionLength, rng: &rng)
    let x = rng.floats(g.batch * g.inChannels * g.height * g.width)
    let b = rng.floats(g.outChannels)
    let initial = rng.floats(g.batch * g.outChannels * g.outHeight * g.outWidth)
    var fast = initial, ref = initial
    let saved = KernelSettings.winogradMinimumTiles
    defer { KernelSettings.winogradMinimumTiles = saved }
    KernelSettings.winogradMinimumTiles = 1
    w.with(dtype) { wm in
        withSettings(threads: 2, winograd: winograd, bf16Dot: bf16Dot) {
            conv2d(input: x, weight: wm, bias: b, output: &fast, geometry: g, accumulate: true)
        }
        conv2dScalar(input: x, weight: wm, bias: b, output: &ref, geometry: g, accumulate: true)
    }
    return (fast, ref)
}
