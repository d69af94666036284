// The convolution pre-activation (ConvPreActivation: GroupNorm + scale-shift + SiLU folded into the F(4x2) int8
// input transform, materialised elsewhere): bodies bit for bit, fused against materialised, padding edges, batch
// 1 and 2, channels across a 256-long K block, thread counts; groupNormStatistics against groupNorm.
import XCTest
import CKernelsX86
@testable import Kernels

enum PreActivationTolerance {
    /// The pre-activation's SiLU (IEEE division) vs groupNorm's (reciprocal estimate + Newton step), relative to
    /// the largest output: a few ulp.
    static let siluVsGroupNorm: Float = 2e-6
    /// groupNormStatisticsScalar (two-pass f64) vs groupNormStatistics (shifted one-pass f64): the folded
    /// multiplier and offset, relative to the largest.
    static let statistics: Float = 1e-5
}

final class PreActivationTests: XCTestCase {
    private var savedFusion = KernelSettings.fusedPreActivation
    override func setUp() { savedFusion = KernelSettings.fusedPreActivation; KernelSettings.fusedPreActivation = true }
    override func tearDown() { KernelSettings.fusedPreActivation = savedFusion }

    var isas: [Int32] {
        var isas = [Int32(GLIDE_WF42_PORTABLE)]
        if KernelSettings.has(.avx2FMA) { isas.append(Int32(GLIDE_WF42_AVX2)) }
        if KernelSettings.has(.avx512f) { isas.append(Int32(GLIDE_WF42_AVX512)) }
        return isas
    }

    /// Random affine parameters with a spread that drives SiLU over its whole range (and past exp's clamps).
    /// `extremes`: the first planes far past exp's clamps, zero and tiny (not in convolutions: one such channel
    /// sets the quantization scale of every other).
    func parameters(_ planes: Int, rng: inout TestRNG, extremes: Bool = true) -> ([Float], [Float]) {
        var a = rng.floats(planes, scale: 3), b = rng.floats(planes, scale: 2)
        if extremes && planes > 3 { a[0] = 60; b[0] = 0; a[1] = -60; a[2] = 0; b[2] = 0; a[3] = 1e-3 }
        return (a, b)
    }

    /// glide_preact_apply: the AVX2 and AVX-512 bodies give the portable body's bits; SiLU is close to libm's.
    func testPreActivationBodiesBitExact() throws {
        var rng = TestRNG(seed: 71)
        for spatial in [1, 7, 16, 37, 64, 100] {
            let planes = 9
            var x = rng.floats(planes * spatial, scale: 4)
            x[0] = 0; x[min(1, x.count - 1)] = -1e30
            let (a, b) = parameters(planes, rng: &rng)
            for silu in [false, true] {
                func apply(_ isa: Int32) -> [Float] {
                    var y = [Float](repeating: .nan, count: x.count)
                    a.withUnsafeBufferPointer { ap in b.withUnsafeBufferPointer { bp in
                        var pre = glide_preact(a: ap.baseAddress, b: bp.baseAddress, silu: silu ? 1 : 0)
                        glide_preact_apply(x, &y, spatial, 0, planes, &pre, isa)
                    } }
                    return y
                }
                let ref = apply(Int32(GLIDE_WF42_PORTABLE))
                for isa in isas.dropFirst() {
                    XCTAssertEqual(ref.map(\.bitPattern), apply(isa).map(\.bitPattern), "isa=\(isa) spatial=\(spatial) silu=\(silu)")
                }
                for i in 0..<x.count {
                    let c = i / spatial
                    let v = x[i] * a[c] + b[c]
                    let expected = silu ? Float(Double(v) / (1 + exp(-Double(v)))) : v
                    XCTAssertEqual(ref[i], expected, accuracy: 4e-7 * max(1, abs(expected)), "i=\(i) v=\(v)")
                }
            }
        }
        try XCTSkipUnless(KernelSettings.has(.avx512f), "CPU lacks avx512f (zmm body not compared)")
    }

    /// The F(4x2) input transform + quantization + packing with the pre-activation: every body the same bits, and
    /// those of the plain transform on the materialised activation (padding edges: odd sizes, 1-wide images; two
    /// images in a chunk; 300 channels: two K blocks).
    func testFusedInputTransformMatchesMaterialised() throws {
        var rng = TestRNG(seed: 72)
        let bounds: [Int32] = (0..<24).map { 300 + 137 * Int32($0) }   // a bound of its own per position
        // (256 and 128 wide: the AVX-512 body's row cache visits the panels one tile row apart in turn)
        defer { glide_wf42_preact_row_cache(1) }
        for (c, h, w, nb) in [(3, 5, 70, 32), (300, 7, 9, 16), (17, 4, 64, 32), (40, 33, 1, 32), (5, 6, 37, 32), (8, 1, 3, 16),
                              (4, 9, 256, 32), (3, 7, 128, 16), (2, 8, 32, 32)] {
            let tw = (w + 3) / 4, th = (h + 1) / 2
            let x = rng.floats(2 * c * h * w, scale: 3)
            let (a, b) = parameters(2 * c, rng: &rng)
            for silu in [false, true] {
                var activated = [Float](repeating: 0, count: x.count)
                a.withUnsafeBufferPointer { ap in b.withUnsafeBufferPointer { bp in
                    var pre = glide_preact(a: ap.baseAddress, b: bp.baseAddress, silu: silu ? 1 : 0)
                    glide_preact_apply(x, &activated, h * w, 0, 2 * c, &pre, Int32(GLIDE_WF42_PORTABLE))
                } }
                for (ty0, rows) in [(0, th), (th / 2, th + 1)] where rows > 0 {
                    let tiles = rows * tw, panels = (tiles + nb - 1) / nb
                    let words = glide_wi16_packed_words(Int32(tiles), Int32(c), Int32(nb))
                    let nScales = 24 * ((c + 255) / 256) * panels * nb
                    func input(_ isa: Int32, fused: Bool) -> ([UInt32], [UInt32]) {
                        var d = [UInt32](repeating: 1, count: 24 * words), s = [Float](repeating: 2, count: nScales)
                        a.withUnsafeBufferPointer { ap in b.withUnsafeBufferPointer { bp in
                            var pre = glide_preact(a: ap.baseAddress, b: bp.baseAddress, silu: silu ? 1 : 0)
                            // (fused: in two panel blocks, as threads split them)
                            let rc = fused
                                ? glide_wf42_input_i16_packed_preact(x, Int32(h), Int32(w), Int32(c), Int32(ty0), tiles,
                                                                     Int32(nb), bounds, 0, panels / 2, &d, &s, &pre, isa)
                                  | glide_wf42_input_i16_packed_preact(x, Int32(h), Int32(w), Int32(c), Int32(ty0), tiles,
                                                                       Int32(nb), bounds, panels / 2, panels, &d, &s, &pre, isa)
                                : glide_wf42_input_i16_packed(activated, Int32(h), Int32(w), Int32(c), Int32(ty0), tiles,
                                                              Int32(nb), bounds, 0, panels, &d, &s, isa)
                            XCTAssertEqual(rc, 0)
                        } }
                        return (d, s.map(\.bitPattern))
                    }
                    let ref = input(Int32(GLIDE_WF42_PORTABLE), fused: false)
                    for isa in isas {
                        for rowCache: Int32 in isa == Int32(GLIDE_WF42_AVX512) ? [1, 0] : [1] {
                            glide_wf42_preact_row_cache(rowCache)
                            let got = input(isa, fused: true)
                            XCTAssertEqual(ref.0, got.0, "words isa=\(isa) cache=\(rowCache) c=\(c) \(h)x\(w) ty0=\(ty0) silu=\(silu)")
                            XCTAssertEqual(ref.1, got.1, "scales isa=\(isa) cache=\(rowCache) c=\(c) \(h)x\(w) ty0=\(ty0) silu=\(silu)")
                        }
                        glide_wf42_preact_row_cache(1)
                    }
                }
            }
        }
        try XCTSkipUnless(KernelSettings.has(.avx512f), "CPU lacks avx512f (zmm body not compared)")
    }

    /// One convolution with a pre-activation, as `conv2d` runs it (or the scalar twin), on `dtype` weights.
    func convolve(_ g: Conv2dGeometry, dtype: String, seed: UInt64, silu: Bool, threads: Int = 1,
                  cap: CPUPath? = nil, materialise: Bool = false, scalar: Bool = false, expectFused: Bool? = nil,
                  setup: () -> Void = {}) -> [Float] {
        var rng = TestRNG(seed: seed)
        let w = TypedWeights(rows: g.outChannels, cols: g.reductionLength, rng: &rng)
        let bias = rng.floats(g.outChannels)
        let x = rng.floats(g.batch * g.inChannels * g.height * g.width, scale: 2)
        let (a, b) = parameters(g.batch * g.inChannels, rng: &rng, extremes: false)
        var y = rng.floats(g.batch * g.outChannels * g.outHeight * g.outWidth)
        let saved = (KernelSettings.int8WinogradMinimumTilesOverride, KernelSettings.int8WinogradTile, KernelSettings.cpuCap)
        defer {
            KernelSettings.resetInt8Path()
            (KernelSettings.int8WinogradMinimumTilesOverride, KernelSettings.int8WinogradTile, KernelSettings.cpuCap) = saved
        }
        w.with(dtype) { wm in
            a.withUnsafeBufferPointer { ap in b.withUnsafeBufferPointer { bp in
                let pre = ConvPreActivation(multiplier: ap.baseAddress!, offset: bp.baseAddress!, silu: silu)
                withSettings(threads: threads, winograd: true) {
                    if let cap { KernelSettings.cpuCap = cap; KernelSettings.resetInt8Path() }
                    KernelSettings.int8WinogradMinimumTilesOverride = 1
                    setup()
                    if scalar {
                        conv2dScalar(input: x, weight: wm, bias: bias, output: &y, geometry: g, accumulate: true,
                                     preActivation: pre)
                    } else if materialise {
                        let scratch = ScratchFrame(); defer { scratch.release() }
                        let xa = preActivated(x, pre, geometry: g, portable: true, in: scratch)
                        conv2d(input: xa, weight: wm, bias: bias, output: &y, geometry: g, accumulate: true)
                    } else {
                        if let expectFused { XCTAssertEqual(conv2dFusesPreActivation(weight: wm, geometry: g), expectFused, "\(g)") }
                        conv2d(input: x, weight: wm, bias: bias, output: &y, geometry: g, accumulate: true,
                               preActivation: pre)
                    }
                }
            } }
        }
        return y
    }

    static let geometries = [
        Conv2dGeometry(batch: 2, inChannels: 9, height: 17, width: 23, outChannels: 20, kernelSize: 3, stride: 1, padding: 1),
        Conv2dGeometry(batch: 1, inChannels: 300, height: 10, width: 9, outChannels: 33, kernelSize: 3, stride: 1, padding: 1),
        Conv2dGeometry(batch: 2, inChannels: 11, height: 5, width: 70, outChannels: 17, kernelSize: 3, stride: 1, padding: 1),
        Conv2dGeometry(batch: 1, inChannels: 263, height: 7, width: 1, outChannels: 19, kernelSize: 3, stride: 1, padding: 1),
    ]

    /// The int8 F(4x2) with the pre-activation fused into its input transform: the bits of the same convolution on
    /// the materialised activation, for the AVX-512, AVX2 and portable transforms, 1-3 threads, batch 1 and 2.
    func testFusedConvolutionBitIdenticalToMaterialised() throws {
        try XCTSkipUnless(KernelSettings.hasAVX2FMA, "CPU lacks avx2")
        var seed: UInt64 = 7300
        let f42 = { KernelSettings.int8WinogradTile = .f4x2 }
        for g in Self.geometries {
            for silu in [false, true] {
                seed += 1
                let ref = convolve(g, dtype: "int8", seed: seed, silu: silu, materialise: true, setup: f42)
                var runs: [(String, [Float])] = []
                for threads in [1, 2, 3] {
                    runs.append(("threads=\(threads)", convolve(g, dtype: "int8", seed: seed, silu: silu, threads: threads,
                                                                 expectFused: true, setup: f42)))
                }
                runs.append(("avx2", convolve(g, dtype: "int8", seed: seed, silu: silu, cap: .avx2, expectFused: true, setup: f42)))
                runs.append(("portable", convolve(g, dtype: "int8", seed: seed, silu: silu, expectFused: true, setup: {
                    f42(); KernelSettings.int8WinogradF42PortableTransforms = true
                })))
                KernelSettings.int8WinogradF42PortableTransforms = false
                for (name, y) in runs {
                    XCTAssertTrue(ref.map(\.bitPattern) == y.map(\.bitPattern), "\(g) silu=\(silu) \(name)")
                }
                let scalar = convolve(g, dtype: "int8", seed: seed, silu: silu, scalar: true)
                XCTAssertLessThanOrEqual(relativeError(ref, scalar), Tolerance.int8WinogradF42, "\(g) silu=\(silu) vs scalar")
            }
        }
    }

    /// Where the pre-activation is not native (f32 / bf16 / f16 weights, int8 F(2x2), im2col GEMMs, 1x1, stride 2,
    /// the switch off) conv2d materialises it: against the scalar twin at the path's tolerance.
    func testFallbackPathsMatchScalar() throws {
        let shapes = [
            Conv2dGeometry(batch: 2, inChannels: 9, height: 17, width: 23, outChannels: 20, kernelSize: 3, stride: 1, padding: 1),
            Conv2dGeometry(batch: 1, inChannels: 20, height: 9, width: 8, outChannels: 16, kernelSize: 3, stride: 2, padding: 1),
            Conv2dGeometry(batch: 2, inChannels: 24, height: 6, width: 5, outChannels: 18, kernelSize: 1, stride: 1, padding: 0),
        ]
        var seed: UInt64 = 7400
        for g in shapes {
            for silu in [false, true] {
                seed += 1
                for dtype in ["f32", "bf16", "f16"] {
                    let ref = convolve(g, dtype: dtype, seed: seed, silu: silu, scalar: true)
                    let y = convolve(g, dtype: dtype, seed: seed, silu: silu, threads: 2, expectFused: false)
                    XCTAssertLessThanOrEqual(relativeError(y, ref), Tolerance.f32 * 10, "\(g) \(dtype) silu=\(silu)")
                }
                let int8Ref = convolve(g, dtype: "int8", seed: seed, silu: silu, scalar: true)
                for tile in [Int8WinogradTile.f2x2, .f4x2] {
                    let y = convolve(g, dtype: "int8", seed: seed, silu: silu, threads: 2, setup: {
                        KernelSettings.int8WinogradTile = tile
                        KernelSettings.fusedPreActivation = false
                    })
                    KernelSettings.fusedPreActivation = true
                    XCTAssertLessThanOrEqual(relativeError(y, int8Ref), Tolerance.int8, "\(g) int8 \(tile) silu=\(silu)")
                }
            }
        }
    }

    /// Which convolutions fuse: the int8 F(4x2) only, and none with the switch off.
    func testFusesOnlyTheInt8F42() throws {
        try XCTSkipUnless(KernelSettings.hasAVX2FMA, "CPU lacks avx2")
        let big = Conv2dGeometry(batch: 1, inChannels: 64, height: 32, width: 32, outChannels: 64, kernelSize: 3, stride: 1, padding: 1)
        let small = Conv2dGeometry(batch: 1, inChannels: 64, height: 16, width: 16, outChannels: 64, kernelSize: 3, stride: 1, padding: 1)
        let strided = Conv2dGeometry(batch: 1, inChannels: 64, height: 32, width: 32, outChannels: 64, kernelSize: 3, stride: 2, padding: 1)
        var rng = TestRNG(seed: 5)
        let w = TypedWeights(rows: 64, cols: 64 * 9, rng: &rng)
        let saved = KernelSettings.int8WinogradTile
        defer { KernelSettings.int8WinogradTile = saved; KernelSettings.fusedPreActivation = true }
        KernelSettings.int8WinogradTile = .auto
        withSettings(winograd: true) {
            w.with("int8") { wm in
                XCTAssertTrue(conv2dFusesPreActivation(weight: wm, geometry: big))
                XCTAssertFalse(conv2dFusesPreActivation(weight: wm, geometry: small))
                XCTAssertFalse(conv2dFusesPreActivation(weight: wm, geometry: strided))
                KernelSettings.fusedPreActivation = false
                XCTAssertFalse(conv2dFusesPreActivation(weight: wm, geometry: big))
                KernelSettings.fusedPreActivation = true
            }
            for dtype in ["f32", "bf16"] { w.with(dtype) { XCTAssertFalse(conv2dFusesPreActivation(weight: $0, geometry: big)) } }
        }
    }

    /// groupNormStatistics folds the same multiplier and offset groupNorm applies: without SiLU the pre-activation
    /// gives groupNorm's bits (one FMA each), with SiLU within a few ulp; the scalar twins agree at the statistics
    /// tolerance; 1-3 threads the same bits; the input copy is exact.
    func testGroupNormStatisticsMatchesGroupNorm() {
        var rng = TestRNG(seed: 73)
        for (batch, channels, spatial) in [(2, 64, 37), (1, 320, 16), (2, 96, 1)] {
            let x = rng.floats(batch * channels * spatial, scale: 3).map { $0 + 0.5 }
            let gamma = rng.floats(channels), beta = rng.floats(channels)
            let scale = rng.floats(batch * channels), shift = rng.floats(batch * channels)
            for useScaleShift in [false, true] {
                var stats: [([Float], [Float])] = []
                for threads in [1, 2, 3] {
                    var a = [Float](repeating: 0, count: batch * channels), b = a
                    var copy = [Float](repeating: 0, count: x.count)
                    withSettings(threads: threads) {
                        scale.withUnsafeBufferPointer { sc in shift.withUnsafeBufferPointer { sh in
                            groupNormStatistics(input: x, batch: batch, channels: channels, spatial: spatial,
                                                gamma: gamma, beta: beta, scale: useScaleShift ? sc.baseAddress : nil,
                                                shift: useScaleShift ? sh.baseAddress : nil, multiplier: &a, offset: &b,
                                                inputCopy: &copy)
                        } }
                    }
                    XCTAssertEqual(copy, x)
                    stats.append((a, b))
                }
                for s in stats.dropFirst() {
                    XCTAssertEqual(s.0.map(\.bitPattern), stats[0].0.map(\.bitPattern))
                    XCTAssertEqual(s.1.map(\.bitPattern), stats[0].1.map(\.bitPattern))
                }
                let (a, b) = stats[0]
                var sa = [Float](repeating: 0, count: a.count), sb = sa
                scale.withUnsafeBufferPointer { sc in shift.withUnsafeBufferPointer { sh in
                    groupNormStatisticsScalar(input: x, batch: batch, channels: channels, spatial: spatial,
                                              gamma: gamma, beta: beta, scale: useScaleShift ? sc.baseAddress : nil,
                                              shift: useScaleShift ? sh.baseAddress : nil, multiplier: &sa, offset: &sb)
                } }
                XCTAssertLessThanOrEqual(relativeError(a, sa), PreActivationTolerance.statistics)
                XCTAssertLessThanOrEqual(relativeError(b, sb), PreActivationTolerance.statistics)
                for silu in [false, true] {
                    var normed = [Float](repeating: 0, count: x.count)
                    scale.withUnsafeBufferPointer { sc in shift.withUnsafeBufferPointer { sh in
                        groupNorm(input: x, output: &normed, batch: batch, channels: channels, spatial: spatial,
                                  gamma: gamma, beta: beta, scale: useScaleShift ? sc.baseAddress : nil,
                                  shift: useScaleShift ? sh.baseAddress : nil, silu: silu)
                    } }
                    for isa in isas {
                        var y = [Float](repeating: 0, count: x.count)
                        a.withUnsafeBufferPointer { ap in b.withUnsafeBufferPointer { bp in
                            var pre = glide_preact(a: ap.baseAddress, b: bp.baseAddress, silu: silu ? 1 : 0)
                            glide_preact_apply(x, &y, spatial, 0, batch * channels, &pre, isa)
                        } }
                        if !silu && KernelSettings.useAVX2 {
                            XCTAssertEqual(y.map(\.bitPattern), normed.map(\.bitPattern), "\(channels) ss=\(useScaleShift) isa=\(isa)")
                        } else {
                            XCTAssertLessThanOrEqual(relativeError(y, normed), PreActivationTolerance.siluVsGroupNorm,
                                                     "\(channels) ss=\(useScaleShift) silu=\(silu) isa=\(isa)")
                        }
                    }
                }
            }
        }
    }
}
