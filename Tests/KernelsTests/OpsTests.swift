// Element-wise, norm, attention, resampling, embedding and conversion kernels: fast vs scalar twins and
// values from PyTorch.
//
// The PyTorch reference values below were printed by (regenerate with the same script):
//   /tmp/venv/bin/python -c "import torch, torch.nn.functional as F; from glide_text2im.nn import timestep_embedding
//   x=torch.arange(15,dtype=torch.float32).reshape(1,1,3,5)*0.37-1.2
//   print(F.interpolate(x,(7,4),mode='bilinear',align_corners=False).flatten().tolist())
//   print(timestep_embedding(torch.tensor([0.,1.5,999.]),7).flatten().tolist())
//   print(F.gelu(torch.tensor([1.0,-3.0,0.5,-0.7])).tolist())"
import XCTest
@testable import Kernels
import CKernelsX86

/// Tolerances of the element-wise kernels.
enum OpTolerance {
    /// Vectorized exp/erf polynomials vs libm (absolute, on values of order 1).
    static let transcendental: Float = 2e-6
    /// Norms: vectorized sums vs scalar (relative to max output).
    static let norm: Float = 1e-5
    /// Against PyTorch printed values (absolute).
    static let torch: Float = 2e-6
}

final class ActivationTests: XCTestCase {
    func testGeluMatchesTorchAndScalar() {
        let x: [Float] = [1.0, -3.0, 0.5, -0.7]
        let expected: [Float] = [0.8413447141647339, -0.004049867391586304, 0.3457311987876892, -0.1693745106458664]
        var y = [Float](repeating: 0, count: 4), ys = y
        gelu(x, &y, count: 4)
        geluScalar(x, &ys, count: 4)
        for i in 0..<4 {
            XCTAssertEqual(y[i], expected[i], accuracy: OpTolerance.torch)
            XCTAssertEqual(ys[i], expected[i], accuracy: OpTolerance.torch)
        }
        var rng = TestRNG(seed: 1)
        let big = rng.floats(1003, scale: 8)
        var f = [Float](repeating: 0, count: big.count), s = f
        gelu(big, &f, count: big.count); geluScalar(big, &s, count: big.count)
        for i in 0..<big.count { XCTAssertEqual(f[i], s[i], accuracy: OpTolerance.transcendental * max(1, abs(s[i]))) }
    }

    /// The non-temporal copy (`glide_copy_stream`, used for copies beyond `streamingCopyMinimumBytes`) gives the
    /// plain copy's bytes: odd lengths, unaligned destinations, `copyElements` and `concatChannels`.
    func testStreamingCopiesEqualPlainCopies() throws {
        try XCTSkipUnless(KernelSettings.hasAVX2FMA, "CPU lacks avx2")
        var rng = TestRNG(seed: 77)
        let x = rng.floats(1000)
        for (offset, count) in [(0, 0), (1, 1), (3, 17), (5, 999), (0, 1000), (2, 64)] where offset + count <= 1000 {
            var y = [Float](repeating: -1, count: 1001)
            x.withUnsafeBufferPointer { xp in
                y.withUnsafeMutableBufferPointer { glide_copy_stream(xp.baseAddress! + offset, $0.baseAddress! + 1, count) }
            }
            XCTAssertEqual(Array(y[1..<(1 + count)]), Array(x[offset..<(offset + count)]))
            XCTAssertEqual(y[0], -1); if count + 1 < 1001 { XCTAssertEqual(y[count + 1], -1) }
        }
        let saved = streamingCopyMinimumBytes
        defer { streamingCopyMinimumBytes = saved }
        let a = rng.floats(2 * 3 * 37), b = rng.floats(2 * 5 * 37)
        var results: [[Float]] = []
        for threshold in [Int.max, 0] {
            streamingCopyMinimumBytes = threshold
            var copied = [Float](repeating: 0, count: a.count), joined = [Float](repeating: 0, count: a.count + b.count)
            a.withUnsafeBufferPointer { ap in
                b.withUnsafeBufferPointer { bp in
                    copied.withUnsafeMutableBufferPointer { copyElements(ap.baseAddress!, $0.baseAddress!, count: a.count) }
                    joined.withUnsafeMutableBufferPointer {
                        concatChannels(ap.baseAddress!, channels: 3, bp.baseAddress!, channels: 5, into: $0.baseAddress!,
                                       batch: 2, spatial: 37)
                    }
                }
            }
            XCTAssertEqual(copied, a)
            results.append(joined)
        }
        XCTAssertEqual(results[0], results[1])
        XCTAssertEqual(Array(results[0][0..<(3 * 37)]), Array(a[0..<(3 * 37)]))
        XCTAssertEqual(Array(results[0][(8 * 37)..<(11 * 37)]), Array(a[(3 * 37)...]))
    }

    func testSiluFastMatchesScalar() {
        var rng = TestRNG(seed: 2)
        var x = rng.floats(1001, scale: 20)
        x[0] = -100; x[1] = 100; x[2] = 0
        var f = [Float](repeating: 0, count: x.count), s = f
        silu(x, &f, count: x.count); siluScalar(x, &s, count: x.count)
        for i in 0..<x.count { XCTAssertEqual(f[i], s[i], accuracy: OpTolerance.transcendental * max(1, abs(s[i])), "\(x[i])") }
        // in place
        var inPlace = x
        inPlace.withUnsafeMutableBufferPointer { silu($0.baseAddress!, $0.baseAddress!, count: $0.count) }
        XCTAssertEqual(inPlace, f)
    }

    func testSoftmaxFastMatchesScalarAndMasks() {
        var rng = TestRNG(seed: 3)
        for cols in [1, 7, 8, 33, 1152] {
            let x = rng.floats(3 * cols, scale: 10)
            var f = x, s = x
            softmaxRows(&f, rows: 3, cols: cols)
            softmaxRowsScalar(&s, rows: 3, cols: cols)
            XCTAssertLessThanOrEqual(relativeError(f, s), OpTolerance.transcendental, "cols \(cols)")
            for r in 0..<3 { XCTAssertEqual(f[(r * cols)..<((r + 1) * cols)].reduce(0, +), 1, accuracy: 1e-5) }
        }
        var masked: [Float] = [1, -.infinity, 2, -.infinity, 0.5, 3, -.infinity, -.infinity, 1]
        softmaxRows(&masked, rows: 1, cols: 9)
        XCTAssertEqual(masked[1], 0); XCTAssertEqual(masked[3], 0)
        XCTAssertEqual(masked.reduce(0, +), 1, accuracy: 1e-6)
    }
}

final class NormTests: XCTestCase {
    func naiveGroupNorm(_ x: [Float], batch: Int, channels: Int, spatial: Int, gamma: [Float], beta: [Float]) -> [Float] {
        var y = x
        let cpg = channels / 32
        for n in 0..<batch {
            for g in 0..<32 {
                let base = (n * channels + g * cpg) * spatial
                let vals = x[base..<(base + cpg * spatial)].map(Double.init)
                let mean = vals.reduce(0, +) / Double(vals.count)
                let variance = vals.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(vals.count)
                for i in 0..<(cpg * spatial) {
                    let c = g * cpg + i / spatial
                    y[base + i] = Float((Double(x[base + i]) - mean) / (variance + 1e-5).squareRoot()) * gamma[c] + beta[c]
                }
            }
        }
        return y
    }

    func testGroupNormVariants() {
        var rng = TestRNG(seed: 4)
        let (batch, channels, spatial) = (2, 64, 37)
        let x = rng.floats(batch * channels * spatial, scale: 3).map { $0 + 0.5 }
        let gamma = rng.floats(channels), beta = rng.floats(channels)
        let scale = rng.floats(batch * channels), shift = rng.floats(batch * channels)
        let naive = naiveGroupNorm(x, batch: batch, channels: channels, spatial: spatial, gamma: gamma, beta: beta)
        for useScaleShift in [false, true] {
            for useSilu in [false, true] {
                var f = [Float](repeating: 0, count: x.count), s = f
                scale.withUnsafeBufferPointer { sc in shift.withUnsafeBufferPointer { sh in
                    let scp = useScaleShift ? sc.baseAddress : nil, shp = useScaleShift ? sh.baseAddress : nil
                    groupNorm(input: x, output: &f, batch: batch, channels: channels, spatial: spatial,
                              gamma: gamma, beta: beta, scale: scp, shift: shp, silu: useSilu)
                    groupNormScalar(input: x, output: &s, batch: batch, channels: channels, spatial: spatial,
                                    gamma: gamma, beta: beta, scale: scp, shift: shp, silu: useSilu)
                } }
                XCTAssertLessThanOrEqual(relativeError(f, s), OpTolerance.norm, "ss=\(useScaleShift) silu=\(useSilu)")
                var expected = naive
                for i in 0..<expected.count {
                    let n = i / (channels * spatial), c = (i / spatial) % channels
                    if useScaleShift { expected[i] = expected[i] * (1 + scale[n * channels + c]) + shift[n * channels + c] }
                    if useSilu { expected[i] = expected[i] / (1 + expf(-expected[i])) }
                }
                XCTAssertLessThanOrEqual(relativeError(s, expected), OpTolerance.norm, "naive ss=\(useScaleShift) silu=\(useSilu)")
            }
        }
        // in place equals out of place
        var inPlace = x
        inPlace.withUnsafeMutableBufferPointer { p in
            groupNorm(input: p.baseAddress!, output: p.baseAddress!, batch: batch, channels: channels, spatial: spatial,
                      gamma: gamma, beta: beta)
        }
        var outOfPlace = [Float](repeating: 0, count: x.count)
        groupNorm(input: x, output: &outOfPlace, batch: batch, channels: channels, spatial: spatial, gamma: gamma, beta: beta)
        XCTAssertEqual(inPlace, outOfPlace)
        // inputCopy: the same output plus an exact copy of the input, fast path and scalar twin
        for fast in [true, false] {
            var withCopy = [Float](repeating: 0, count: x.count), copy = withCopy, plain = withCopy
            copy.withUnsafeMutableBufferPointer { c in
                if fast {
                    groupNorm(input: x, output: &withCopy, batch: batch, channels: channels, spatial: spatial,
                              gamma: gamma, beta: beta, silu: true, inputCopy: c.baseAddress!)
                } else {
                    groupNormScalar(input: x, output: &withCopy, batch: batch, channels: channels, spatial: spatial,
                                    gamma: gamma, beta: beta, silu: true, inputCopy: c.baseAddress!)
                }
            }
            if fast {
                groupNorm(input: x, output: &plain, batch: batch, channels: channels, spatial: spatial,
                          gamma: gamma, beta: beta, silu: true)
            } else {
                groupNormScalar(input: x, output: &plain, batch: batch, channels: channels, spatial: spatial,
                                gamma: gamma, beta: beta, silu: true)
            }
            XCTAssertEqual(copy, x, "fast=\(fast)")
            XCTAssertEqual(withCopy, plain, "fast=\(fast)")
        }
    }

    func testGroupNormOnePassStatisticsWithLargeMean() {
        // The fast path's single shifted pass must match the two-pass scalar twin when |mean| >> std.
        var rng = TestRNG(seed: 5)
        let (batch, channels, spatial) = (1, 32, 301)
        for offset: Float in [100, -300] {
            let x = rng.floats(batch * channels * spatial, scale: 0.5).map { $0 + offset }
            var f = [Float](repeating: 0, count: x.count), s = f
            groupNorm(input: x, output: &f, batch: batch, channels: channels, spatial: spatial, gamma: nil, beta: nil)
            groupNormScalar(input: x, output: &s, batch: batch, channels: channels, spatial: spatial, gamma: nil, beta: nil)
            XCTAssertLessThanOrEqual(relativeError(f, s), 2e-3, "offset \(offset)")
        }
    }

    /// Runs `groupNorm` with the dispatch capped at `cap` (restored afterwards).
    func groupNormCapped(_ cap: CPUPath, _ x: [Float], batch: Int, channels: Int, spatial: Int, groups: Int = 32,
                         gamma: [Float]?, beta: [Float]?, scale: [Float]?, shift: [Float]?, silu: Bool) -> [Float] {
        let saved = KernelSettings.cpuCap
        defer { KernelSettings.cpuCap = saved }
        KernelSettings.cpuCap = cap
        var y = [Float](repeating: 0, count: x.count)
        groupNorm(input: x, output: &y, batch: batch, channels: channels, spatial: spatial, groups: groups,
                  gamma: gamma, beta: beta, scale: scale, shift: shift, silu: silu)
        return y
    }

    func testGroupNormAVX512MatchesScalarOnEdgeShapes() throws {
        try XCTSkipUnless(KernelSettings.supportedPath == .avx512, "no avx512f/bw/vl on this CPU")
        var rng = TestRNG(seed: 31)
        // Spatial sizes below, at and across the 16/32-float steps of the zmm loops; batch 1 and 2; odd groups.
        // (Not one value per group: zero variance scales the f32 rounding of x*a + b by 1/sqrt(eps) on every path.)
        for (batch, channels, spatial, groups) in [(1, 64, 1, 32), (2, 32, 15, 32), (1, 64, 16, 32), (2, 64, 33, 32),
                                                   (1, 96, 47, 32), (2, 12, 301, 4), (1, 32, 1024, 32)] {
            let x = rng.floats(batch * channels * spatial, scale: 3).map { $0 + 0.25 }
            let gamma = rng.floats(channels), beta = rng.floats(channels)
            let scale = rng.floats(batch * channels), shift = rng.floats(batch * channels)
            for (useScaleShift, useSilu) in [(false, false), (false, true), (true, true)] {
                let sc = useScaleShift ? scale : nil, sh = useScaleShift ? shift : nil
                var s = [Float](repeating: 0, count: x.count)
                groupNormScalar(input: x, output: &s, batch: batch, channels: channels, spatial: spatial,
                                groups: groups, gamma: gamma, beta: beta, scale: sc, shift: sh, silu: useSilu)
                let wide = groupNormCapped(.avx512, x, batch: batch, channels: channels, spatial: spatial,
                                           groups: groups, gamma: gamma, beta: beta, scale: sc, shift: sh, silu: useSilu)
                let narrow = groupNormCapped(.avx2, x, batch: batch, channels: channels, spatial: spatial,
                                             groups: groups, gamma: gamma, beta: beta, scale: sc, shift: sh, silu: useSilu)
                let label = "\(batch)x\(channels)x\(spatial) g\(groups) ss=\(useScaleShift) silu=\(useSilu)"
                XCTAssertLessThanOrEqual(relativeError(wide, s), OpTolerance.norm, label)
                XCTAssertLessThanOrEqual(relativeError(wide, narrow), OpTolerance.norm, label)
            }
        }
        // Large |mean| against std: the zmm statistics keep the shifted single pass.
        for offset: Float in [100, -300] {
            let x = rng.floats(32 * 301, scale: 0.5).map { $0 + offset }
            var s = [Float](repeating: 0, count: x.count)
            groupNormScalar(input: x, output: &s, batch: 1, channels: 32, spatial: 301, gamma: nil, beta: nil)
            let wide = groupNormCapped(.avx512, x, batch: 1, channels: 32, spatial: 301, gamma: nil, beta: nil,
                                       scale: nil, shift: nil, silu: false)
            XCTAssertLessThanOrEqual(relativeError(wide, s), 2e-3, "offset \(offset)")
        }
    }

    func testGroupNormSiLUOfExtremeValuesIsFinite() throws {
        // SiLU of huge negative inputs is ~0 (not NaN) and of huge positive ones the input, on every path.
        let values: [Float] = [-1e30, -1000, -100, -89, -88.5, -87.5, -20, -1, 0, 1, 20, 88.5, 100, 1000, 1e30, 3]
        var paths: [CPUPath] = [.scalar]
        if KernelSettings.supportedPath >= .avx2 { paths.append(.avx2) }
        if KernelSettings.supportedPath == .avx512 { paths.append(.avx512) }
        for path in paths {
            // gamma = 0, beta = the value: the affine output is exactly the value whatever the statistics.
            let x = [Float](repeating: 1, count: 32 * values.count)
            let beta = [Float](repeating: 0, count: 32)
            var shift = [Float](repeating: 0, count: 32)
            for (i, v) in values.prefix(16).enumerated() { shift[i] = v }
            let y = groupNormCapped(path, x, batch: 1, channels: 32, spatial: values.count, gamma: [Float](repeating: 0, count: 32),
                                    beta: beta, scale: nil, shift: shift, silu: true)
            for c in 0..<16 {
                let v = values[c], got = y[c * values.count + 5]
                XCTAssertFalse(got.isNaN, "\(path) silu(\(v))")
                let expected = v / (1 + expf(-v))
                XCTAssertEqual(got, expected, accuracy: v < 0 ? 1e-6 : 1e-6 * max(1, v), "\(path) silu(\(v))")
            }
        }
    }

    func testGroupNormIsIndependentOfThreadCount() {
        let saved = KernelSettings.threadCount
        defer { KernelSettings.threadCount = saved }
        var rng = TestRNG(seed: 32)
        let (batch, channels, spatial) = (2, 64, 301)
        let x = rng.floats(batch * channels * spatial, scale: 2), gamma = rng.floats(channels), beta = rng.floats(channels)
        let scale = rng.floats(batch * channels), shift = rng.floats(batch * channels)
        func run() -> [Float] {
            var y = [Float](repeating: 0, count: x.count)
            groupNorm(input: x, output: &y, batch: batch, channels: channels, spatial: spatial, gamma: gamma, beta: beta,
                      scale: scale, shift: shift, silu: true)
            return y
        }
        KernelSettings.threadCount = 1
        let one = run()
        for threads in [2, 3] {
            KernelSettings.threadCount = threads
            XCTAssertEqual(run(), one, "threads \(threads)")
        }
    }

    func testLayerNorm() {
        var rng = TestRNG(seed: 5)
        let (rows, width) = (5, 19)
        let x = rng.floats(rows * width, scale: 4), g = rng.floats(width), b = rng.floats(width)
        var y = [Float](repeating: 0, count: x.count)
        layerNorm(input: x, output: &y, rows: rows, width: width, gamma: g, beta: b)
        for r in 0..<rows {
            let row = x[(r * width)..<((r + 1) * width)]
            let mean = row.reduce(0, +) / Float(width)
            let variance = row.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Float(width)
            for i in 0..<width {
                let e = (x[r * width + i] - mean) / (variance + 1e-5).squareRoot() * g[i] + b[i]
                XCTAssertEqual(y[r * width + i], e, accuracy: 1e-5)
            }
        }
    }

    func testLayerNormFastMatchesScalar() {
        var rng = TestRNG(seed: 6)
        for (rows, width, withAffine) in [(5, 19, true), (77, 512, true), (3, 8, false), (2, 1, true)] {
            let x = rng.floats(rows * width, scale: 4).map { $0 + 2 }
            let g = rng.floats(width), b = rng.floats(width)
            var f = [Float](repeating: 0, count: x.count), s = f
            g.withUnsafeBufferPointer { gp in b.withUnsafeBufferPointer { bp in
                let gamma = withAffine ? gp.baseAddress : nil, beta = withAffine ? bp.baseAddress : nil
                layerNorm(input: x, output: &f, rows: rows, width: width, gamma: gamma, beta: beta)
                layerNormScalar(input: x, output: &s, rows: rows, width: width, gamma: gamma, beta: beta)
            } }
            XCTAssertLessThanOrEqual(relativeError(f, s), OpTolerance.norm, "\(rows)x\(width)")
        }
        // in place equals out of place
        var inPlace = rng.floats(4 * 33)
        let copy = inPlace
        var outOfPlace = [Float](repeating: 0, count: copy.count)
        layerNorm(input: copy, output: &outOfPlace, rows: 4, width: 33, gamma: nil, beta: nil)
        inPlace.withUnsafeMutableBufferPointer { p in
            layerNorm(input: p.baseAddress!, output: p.baseAddress!, rows: 4, width: 33, gamma: nil, beta: nil)
        }
        XCTAssertEqual(inPlace, outOfPlace)
    }
}

final class AttentionTests: XCTestCase {
    /// UNet layout: qkv [H*3*C, T], encoder kv [H*2*C, S]; output [H*C, T].
    enum Mode { case scalar, fast, bf16Products, bf16Emulated }

    func runUNetLayout(heads: Int, c: Int, t: Int, s: Int, fast: Bool, withBias: Bool, seed: UInt64) -> [Float] {
        runUNetLayout(heads: heads, c: c, t: t, s: s, mode: fast ? .fast : .scalar, withBias: withBias, seed: seed)
    }

    /// Token-major layout (text transformer, CLIP): qkv [T, H*3*C], encoder kv [S, H*2*C] (none when s == 0),
    /// output [T, H*C]; inputs uniform in +-dataScale from `seed`, qkScale 0.5.
    func runTokenMajorLayout(heads: Int, c: Int, t: Int, s: Int, mode: Mode, dataScale: Float, seed: UInt64) -> [Float] {
        var rng = TestRNG(seed: seed)
        let qkv = rng.floats(t * heads * 3 * c, scale: dataScale), ekv = rng.floats(max(s, 1) * heads * 2 * c, scale: dataScale)
        var out = [Float](repeating: 0, count: t * heads * c)
        qkv.withUnsafeBufferPointer { qp in ekv.withUnsafeBufferPointer { ep in out.withUnsafeMutableBufferPointer { op in
            let b = qp.baseAddress!, e = ep.baseAddress!
            let q = AttentionOperand(b, headStride: 3 * c, tokenStride: heads * 3 * c, channelStride: 1)
            let k = AttentionOperand(b + c, headStride: 3 * c, tokenStride: heads * 3 * c, channelStride: 1)
            let v = AttentionOperand(b + 2 * c, headStride: 3 * c, tokenStride: heads * 3 * c, channelStride: 1)
            let ek = s > 0 ? AttentionOperand(e, headStride: 2 * c, tokenStride: heads * 2 * c, channelStride: 1) : nil
            let ev = s > 0 ? AttentionOperand(e + c, headStride: 2 * c, tokenStride: heads * 2 * c, channelStride: 1) : nil
            let o = AttentionOutput(op.baseAddress!, headStride: c, tokenStride: heads * c, channelStride: 1)
            switch mode {
            case .bf16Emulated:
                attentionBF16Emulated(heads: heads, headDim: c, queryCount: t, keyCount: t, query: q, key: k,
                                      value: v, encoderCount: s, encoderKey: ek, encoderValue: ev, qkScale: 0.5,
                                      output: o)
            case .fast, .bf16Products:
                attention(heads: heads, headDim: c, queryCount: t, keyCount: t, query: q, key: k, value: v,
                          encoderCount: s, encoderKey: ek, encoderValue: ev, qkScale: 0.5, output: o,
                          precision: mode == .fast ? .f32 : .bf16Products)
            case .scalar:
                attentionScalar(heads: heads, headDim: c, queryCount: t, keyCount: t, query: q, key: k, value: v,
                                encoderCount: s, encoderKey: ek, encoderValue: ev, qkScale: 0.5, output: o)
            }
        } } }
        return out
    }

    func runUNetLayout(heads: Int, c: Int, t: Int, s: Int, mode: Mode, withBias: Bool, seed: UInt64) -> [Float] {
        var rng = TestRNG(seed: seed)
        let qkv = rng.floats(heads * 3 * c * t, scale: 2)
        let ekv = rng.floats(heads * 2 * c * max(s, 1), scale: 2)
        let bias = rng.floats(heads * t * (s + t))
        var out = [Float](repeating: 0, count: heads * c * t)
        qkv.withUnsafeBufferPointer { qp in ekv.withUnsafeBufferPointer { ep in bias.withUnsafeBufferPointer { bp in
            out.withUnsafeMutableBufferPointer { op in
                let base = qp.baseAddress!
                let q = AttentionOperand(base, headStride: 3 * c * t, tokenStride: 1, channelStride: t)
                let k = AttentionOperand(base + c * t, headStride: 3 * c * t, tokenStride: 1, channelStride: t)
                let v = AttentionOperand(base + 2 * c * t, headStride: 3 * c * t, tokenStride: 1, channelStride: t)
                let ek = AttentionOperand(ep.baseAddress!, headStride: 2 * c * s, tokenStride: 1, channelStride: s)
                let ev = AttentionOperand(ep.baseAddress! + c * s, headStride: 2 * c * s, tokenStride: 1, channelStride: s)
                let o = AttentionOutput(op.baseAddress!, headStride: c * t, tokenStride: 1, channelStride: t)
                let scale = 1 / Float(c).squareRoot().squareRoot()
                let b = withBias ? bp.baseAddress : nil
                switch mode {
                case .fast, .bf16Products:
                    attention(heads: heads, headDim: c, queryCount: t, keyCount: t, query: q, key: k, value: v,
                              encoderCount: s, encoderKey: s > 0 ? ek : nil, encoderValue: s > 0 ? ev : nil,
                              bias: b, biasHeadStride: t * (s + t), qkScale: scale, output: o,
                              precision: mode == .fast ? .f32 : .bf16Products)
                case .bf16Emulated:
                    attentionBF16Emulated(heads: heads, headDim: c, queryCount: t, keyCount: t, query: q, key: k,
                                          value: v, encoderCount: s, encoderKey: s > 0 ? ek : nil,
                                          encoderValue: s > 0 ? ev : nil, bias: b, biasHeadStride: t * (s + t),
                                          qkScale: scale, output: o)
                case .scalar:
                    attentionScalar(heads: heads, headDim: c, queryCount: t, keyCount: t, query: q, key: k, value: v,
                                    encoderCount: s, encoderKey: s > 0 ? ek : nil, encoderValue: s > 0 ? ev : nil,
                                    bias: b, biasHeadStride: t * (s + t), qkScale: scale, output: o)
                }
            }
        } } }
        return out
    }

    func testAttentionFastMatchesScalar() {
        // Query counts below and across the query block, heads below/above the thread count.
        for (heads, c, t, s, bias) in [(2, 8, 5, 0, false), (3, 16, 150, 7, true), (1, 64, 130, 0, false),
                                       (2, 5, 9, 3, true), (3, 17, 64, 128, false), (5, 9, 65, 1, true), (2, 8, 300, 5, true)] {
            let f = runUNetLayout(heads: heads, c: c, t: t, s: s, fast: true, withBias: bias, seed: 9)
            let r = runUNetLayout(heads: heads, c: c, t: t, s: s, fast: false, withBias: bias, seed: 9)
            XCTAssertLessThanOrEqual(relativeError(f, r), 1e-5, "h=\(heads) c=\(c) t=\(t) s=\(s)")
        }
    }

    /// (heads, head dim, queries = own keys, encoder keys, bias): key counts below, at and across the 16/32/64-key
    /// vectors and groups (odd ones too), query counts off the 6-row tiles and 48-row blocks, encoder keys absent
    /// and present, 1 head, head dim 64 (every UNet) and others (odd, beyond 64, several 64-channel chunks).
    static let bf16Shapes = [(2, 8, 5, 0, false), (3, 16, 150, 7, true), (1, 64, 130, 0, false), (2, 5, 9, 3, true),
                             (3, 17, 64, 128, false), (2, 64, 300, 77, true), (1, 64, 97, 31, false),
                             (2, 64, 33, 0, true), (1, 80, 50, 14, false), (1, 130, 20, 3, true), (2, 3, 7, 1, true),
                             (1, 64, 1, 0, false)]

    /// The bf16 products against the f32 scalar attention: relative error (max |diff| / max |ref|) at most this.
    /// q', k', v and the exp-weights are rounded to bf16 (8 significant bits), measured up to ~6e-3.
    static let bf16Tolerance: Float = 2e-2

    func testAttentionBF16EmulatedIsWithinBF16OfScalar() {
        // The bf16 products round q', k', v and the exp-weights to bf16 (8 significant bits): a few 1e-3.
        for (heads, c, t, s, bias) in Self.bf16Shapes {
            let e = runUNetLayout(heads: heads, c: c, t: t, s: s, mode: .bf16Emulated, withBias: bias, seed: 9)
            let r = runUNetLayout(heads: heads, c: c, t: t, s: s, mode: .scalar, withBias: bias, seed: 9)
            XCTAssertLessThanOrEqual(relativeError(e, r), Self.bf16Tolerance, "h=\(heads) c=\(c) t=\(t) s=\(s)")
            XCTAssertGreaterThan(relativeError(e, r), 0, "bf16 rounding must show")
        }
    }

    func testAttentionBF16ProductsMatchEmulationBitForBit() throws {
        try XCTSkipUnless(KernelSettings.detectedFeatures.contains(.avx512bf16), "no avx512_bf16 on this CPU")
        try XCTSkipUnless(KernelSettings.useBF16Dot, "no avx512f/bw/vl on this CPU")
        for (heads, c, t, s, bias) in Self.bf16Shapes {
            let f = runUNetLayout(heads: heads, c: c, t: t, s: s, mode: .bf16Products, withBias: bias, seed: 3)
            let e = runUNetLayout(heads: heads, c: c, t: t, s: s, mode: .bf16Emulated, withBias: bias, seed: 3)
            XCTAssertEqual(f, e, "h=\(heads) c=\(c) t=\(t) s=\(s)")
        }
    }

    func testAttentionBF16IsIndependentOfThreadCount() {
        let saved = KernelSettings.threadCount
        defer { KernelSettings.threadCount = saved }
        let modes: [Mode] = KernelSettings.useBF16Dot ? [.bf16Emulated, .bf16Products] : [.bf16Emulated]
        // 8 heads: 1 and 2 threads take a head per work item, 3 and 7 threads (head, query block) items.
        for mode in modes {
            KernelSettings.threadCount = 1
            let one = runUNetLayout(heads: 8, c: 64, t: 100, s: 9, mode: mode, withBias: true, seed: 13)
            for threads in [2, 3, 7] {
                KernelSettings.threadCount = threads
                XCTAssertEqual(runUNetLayout(heads: 8, c: 64, t: 100, s: 9, mode: mode, withBias: true, seed: 13), one,
                               "\(mode) threads=\(threads)")
            }
        }
    }

    func testAttentionBF16TokenMajorLayout() throws {
        // Text-transformer/CLIP layout (token-major q, k, v and output), encoder keys present and absent.
        for (heads, c, t, s) in [(4, 12, 77, 5), (2, 64, 40, 0)] {
            func run(_ mode: Mode) -> [Float] {
                runTokenMajorLayout(heads: heads, c: c, t: t, s: s, mode: mode, dataScale: 2, seed: 14)
            }
            let e = run(.bf16Emulated)
            XCTAssertLessThanOrEqual(relativeError(e, run(.scalar)), Self.bf16Tolerance, "h=\(heads) c=\(c) s=\(s)")
            if KernelSettings.useBF16Dot { XCTAssertEqual(run(.bf16Products), e, "h=\(heads) c=\(c) s=\(s)") }
        }
    }

    func testAttentionBF16ValuePackingsAgree() {
        // v packed straight from a channel-major source (in two segments, scalar and AVX-512) = gathered token-major
        // and packed; NaN, ties and infinities included.
        var rng = TestRNG(seed: 15)
        for (c, s, split) in [(5, 1, 0), (64, 33, 16), (80, 130, 128), (17, 64, 2), (64, 1152, 128)] {
            var src = rng.floats(c * s, scale: 3)
            if c * s > 40 { src[3] = .nan; src[7] = .infinity; src[11] = Float(bitPattern: 0x3F80_8000) }
            let words = Int(glide_attn_bf16_value_words(Int32(s), Int32(c)))
            var reference = [UInt32](repeating: 7, count: words)
            var tokenMajor = [Float](repeating: 0, count: s * c)
            for j in 0..<s { for ch in 0..<c { tokenMajor[j * c + ch] = src[ch * s + j] } }
            glide_attn_bf16_pack_values(tokenMajor, c, Int32(s), Int32(c), &reference, 0)
            for vector in KernelSettings.supportedPath == .avx512 ? [Int32(0), 1] : [0] {
                var direct = [UInt32](repeating: 9, count: words)
                src.withUnsafeBufferPointer { sp in
                    let b = sp.baseAddress!
                    if split > 0 {
                        glide_attn_bf16_pack_values_cm(b, s, 0, Int32(split), Int32(s), Int32(c), &direct, vector)
                    }
                    glide_attn_bf16_pack_values_cm(b + split, s, Int32(split), Int32(s - split), Int32(s), Int32(c),
                                                   &direct, vector)
                }
                XCTAssertEqual(direct, reference, "c=\(c) s=\(s) split=\(split) vector=\(vector)")
            }
        }
    }

    func testAttentionBF16ProductsFallBackToF32WithoutTheInstruction() {
        let saved = KernelSettings.cpuCap
        defer { KernelSettings.cpuCap = saved }
        KernelSettings.cpuCap = .avx2
        let b = runUNetLayout(heads: 3, c: 16, t: 150, s: 7, mode: .bf16Products, withBias: true, seed: 4)
        let f = runUNetLayout(heads: 3, c: 16, t: 150, s: 7, mode: .fast, withBias: true, seed: 4)
        XCTAssertEqual(b, f)
    }

    func testTransposeGatherMatchesPlainLoop() throws {
        // gatherTokenMajor's AVX2 transposes (channel-major source) against the plain loop, edge sizes.
        try XCTSkipUnless(KernelSettings.useAVX2, "no avx2 on this CPU")
        var rng = TestRNG(seed: 23)
        for (channels, count) in [(1, 1), (7, 9), (8, 8), (9, 17), (64, 130), (17, 64), (64, 1152)] {
            let stride = count + 3
            let src = rng.floats(channels * stride + 5, scale: 3)
            let scale: Float = 0.35355339
            var expected = [Float](repeating: 0, count: count * channels), fast = expected
            for ch in 0..<channels { for i in 0..<count { expected[i * channels + ch] = src[2 + ch * stride + i] * scale } }
            src.withUnsafeBufferPointer { sp in
                let operand = AttentionOperand(sp.baseAddress! + 1, headStride: 0, tokenStride: 1, channelStride: stride)
                fast.withUnsafeMutableBufferPointer {
                    gatherTokenMajor(operand, head: 0, tokens: 1, count: count, channels: channels, scale: scale,
                                     into: $0.baseAddress!)
                }
            }
            XCTAssertEqual(fast, expected, "\(channels)x\(count)")
        }
    }

    func testSoftmaxExpRowAVX512MatchesAVX2BitForBit() throws {
        try XCTSkipUnless(KernelSettings.supportedPath == .avx512, "no avx512f/bw/vl on this CPU")
        var rng = TestRNG(seed: 24)
        for n in [1, 7, 8, 9, 15, 16, 17, 24, 25, 31, 32, 33, 100, 1152] {
            var x = rng.floats(n, scale: 12)
            if n > 3 { x[2] = -.infinity }   // a masked key
            var wide = x, narrow = x
            let wideSum = wide.withUnsafeMutableBufferPointer { glide_softmax_exp_row_avx512($0.baseAddress!, n) }
            let narrowSum = narrow.withUnsafeMutableBufferPointer { glide_softmax_exp_row_avx2($0.baseAddress!, n) }
            XCTAssertEqual(wide.map(\.bitPattern), narrow.map(\.bitPattern), "n=\(n)")
            XCTAssertEqual(wideSum.bitPattern, narrowSum.bitPattern, "n=\(n)")
        }
        var masked = [Float](repeating: -.infinity, count: 21)   // a fully masked row: exp(-inf - 0) = 0
        XCTAssertEqual(masked.withUnsafeMutableBufferPointer { glide_softmax_exp_row_avx512($0.baseAddress!, 21) }, 0)
    }

    func testAttentionF32MatchesScalarOnAVX512AndAVX2() throws {
        try XCTSkipUnless(KernelSettings.supportedPath == .avx512, "no avx512f/bw/vl on this CPU")
        let saved = KernelSettings.cpuCap
        defer { KernelSettings.cpuCap = saved }
        for (heads, c, t, s, bias) in [(3, 16, 150, 7, true), (2, 64, 300, 77, false), (1, 8, 5, 0, false)] {
            KernelSettings.cpuCap = .avx2
            let narrow = runUNetLayout(heads: heads, c: c, t: t, s: s, mode: .fast, withBias: bias, seed: 13)
            KernelSettings.cpuCap = .avx512
            let wide = runUNetLayout(heads: heads, c: c, t: t, s: s, mode: .fast, withBias: bias, seed: 13)
            let r = runUNetLayout(heads: heads, c: c, t: t, s: s, mode: .scalar, withBias: bias, seed: 13)
            // The GEMM differs per level (ymm / zmm tiles), so the levels agree to f32 tolerance, both with the twin.
            XCTAssertLessThanOrEqual(relativeError(wide, r), 1e-5, "h=\(heads) c=\(c) t=\(t) s=\(s)")
            XCTAssertLessThanOrEqual(relativeError(narrow, r), 1e-5, "h=\(heads) c=\(c) t=\(t) s=\(s)")
        }
    }

    func testAttentionFastIsIndependentOfThreadCount() {
        let saved = KernelSettings.threadCount
        defer { KernelSettings.threadCount = saved }
        KernelSettings.threadCount = 1
        let one = runUNetLayout(heads: 3, c: 16, t: 300, s: 7, fast: true, withBias: true, seed: 11)
        for threads in [2, 3, 5] {
            KernelSettings.threadCount = threads
            XCTAssertEqual(runUNetLayout(heads: 3, c: 16, t: 300, s: 7, fast: true, withBias: true, seed: 11), one)
        }
    }

    func testAttentionFastMatchesScalarTokenMajor() {
        // Text-transformer layout: qkv [T, H*3*C], output [T, H*C]; encoder kv [S, H*2*C].
        let (heads, c, t, s) = (4, 12, 77, 5)
        func run(_ mode: Mode) -> [Float] {
            runTokenMajorLayout(heads: heads, c: c, t: t, s: s, mode: mode, dataScale: 1, seed: 12)
        }
        XCTAssertLessThanOrEqual(relativeError(run(.fast), run(.scalar)), 1e-5)
    }

    func testAttentionScalarMatchesFormula() {
        // Token-major layout (text transformer), 1 head, encoder keys first.
        let (t, c, s) = (3, 2, 2)
        var rng = TestRNG(seed: 10)
        let qkv = rng.floats(t * 3 * c), ekv = rng.floats(s * 2 * c)
        var out = [Float](repeating: 0, count: t * c)
        let scale: Float = 0.7
        qkv.withUnsafeBufferPointer { qp in ekv.withUnsafeBufferPointer { ep in out.withUnsafeMutableBufferPointer { op in
            let b = qp.baseAddress!
            attentionScalar(heads: 1, headDim: c, queryCount: t, keyCount: t,
                            query: AttentionOperand(b, headStride: 0, tokenStride: 3 * c, channelStride: 1),
                            key: AttentionOperand(b + c, headStride: 0, tokenStride: 3 * c, channelStride: 1),
                            value: AttentionOperand(b + 2 * c, headStride: 0, tokenStride: 3 * c, channelStride: 1),
                            encoderCount: s,
                            encoderKey: AttentionOperand(ep.baseAddress!, headStride: 0, tokenStride: 2 * c, channelStride: 1),
                            encoderValue: AttentionOperand(ep.baseAddress! + c, headStride: 0, tokenStride: 2 * c, channelStride: 1),
                            qkScale: scale, output: AttentionOutput(op.baseAddress!, headStride: 0, tokenStride: c, channelStride: 1))
        } } }
        // keys: encoder first
        var keys: [[Float]] = [], values: [[Float]] = []
        for i in 0..<s { keys.append(Array(ekv[(i * 2 * c)..<(i * 2 * c + c)])); values.append(Array(ekv[(i * 2 * c + c)..<(i * 2 * c + 2 * c)])) }
        for i in 0..<t { keys.append(Array(qkv[(i * 3 * c + c)..<(i * 3 * c + 2 * c)])); values.append(Array(qkv[(i * 3 * c + 2 * c)..<(i * 3 * c + 3 * c)])) }
        for i in 0..<t {
            let q = Array(qkv[(i * 3 * c)..<(i * 3 * c + c)])
            let logits = keys.map { k in zip(q, k).map { $0 * scale * $1 * scale }.reduce(0, +) }
            let m = logits.max()!
            let e = logits.map { expf($0 - m) }
            let z = e.reduce(0, +)
            for j in 0..<c {
                let expected = zip(e, values).map { $0 / z * $1[j] }.reduce(0, +)
                XCTAssertEqual(out[i * c + j], expected, accuracy: 1e-5)
            }
        }
    }
}

final class ResampleTests: XCTestCase {
    func testBilinearMatchesTorch() {
        let x = (0..<15).map { Float($0) * 0.37 - 1.2 }
        let expected: [Float] = [-1.1537501, -0.69125, -0.22875, 0.23375, -0.8894643, -0.4269643, 0.0355357, 0.4980357,
                                 -0.0966071, 0.3658929, 0.8283929, 1.2908928, 0.69625, 1.1587501, 1.62125, 2.0837498,
                                 1.4891073, 1.9516072, 2.4141071, 2.8766072, 2.2819645, 2.7444644, 3.2069645, 3.6694646,
                                 2.5462499, 3.0087502, 3.4712498, 3.9337502]
        var y = [Float](repeating: 0, count: 28)
        resizeBilinear(x, &y, planes: 1, inHeight: 3, inWidth: 5, outHeight: 7, outWidth: 4)
        for i in 0..<28 { XCTAssertEqual(y[i], expected[i], accuracy: 1e-6) }
    }

    func testPoolAndNearestUpsample() {
        let x: [Float] = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20]   // 2 planes 2x5 -> pool 1x2
        var p = [Float](repeating: 0, count: 4)
        avgPool2x2(x, &p, planes: 2, height: 2, width: 5)
        XCTAssertEqual(p, [4, 6, 14, 16])
        var u = [Float](repeating: 0, count: 16)
        upsampleNearest2x([1, 2, 3, 4], &u, planes: 1, height: 2, width: 2)
        XCTAssertEqual(u, [1, 1, 2, 2, 1, 1, 2, 2, 3, 3, 4, 4, 3, 3, 4, 4])
    }

    func testPoolAndUpsampleMatchScalarTwins() {
        // The AVX2 rows (8 outputs / 8 inputs per step) against the scalar loops, bit for bit: widths below,
        // at and across the vector width, odd heights and widths (pooling floors), one and several planes.
        var rng = TestRNG(seed: 41)
        for (planes, height, width) in [(1, 2, 2), (3, 3, 15), (2, 4, 16), (1, 5, 17), (2, 6, 33), (3, 8, 64), (1, 1, 9)] {
            let x = rng.floats(planes * height * width, scale: 5)
            let pooled = planes * (height / 2) * (width / 2)
            var pf = [Float](repeating: .nan, count: max(pooled, 1)), ps = pf
            avgPool2x2(x, &pf, planes: planes, height: height, width: width)
            avgPool2x2Scalar(x, &ps, planes: planes, height: height, width: width)
            XCTAssertEqual(pf.map(\.bitPattern), ps.map(\.bitPattern), "pool \(planes)x\(height)x\(width)")
            var uf = [Float](repeating: .nan, count: planes * 4 * height * width), us = uf
            upsampleNearest2x(x, &uf, planes: planes, height: height, width: width)
            upsampleNearest2xScalar(x, &us, planes: planes, height: height, width: width)
            XCTAssertEqual(uf.map(\.bitPattern), us.map(\.bitPattern), "upsample \(planes)x\(height)x\(width)")
        }
    }

    func testTimestepEmbeddingMatchesTorch() {
        let expected: [Float] = [1.0, 1.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.07073719799518585, 0.9975772500038147,
                                 0.9999947547912598, 0.9974949955940247, 0.06956759840250015, 0.003231646493077278, 0.0,
                                 0.9996498227119446, -0.7286733388900757, -0.549264669418335, -0.02646075189113617,
                                 0.684861421585083, 0.8356484770774841, 0.0]
        var y = [Float](repeating: 0, count: 21)
        timestepEmbedding([0, 1.5, 999], count: 3, dim: 7, output: &y)
        for i in 0..<21 { XCTAssertEqual(y[i], expected[i], accuracy: 2e-5, "index \(i)") }
    }
}

final class ConversionTests: XCTestCase {
    func testHalfRoundingCases() {
        XCTAssertEqual(f32ToF16(1.0), 0x3C00)
        XCTAssertEqual(f32ToF16(65504), 0x7BFF)
        XCTAssertEqual(f32ToF16(65520), 0x7C00)                       // rounds to infinity
        XCTAssertEqual(f32ToF16(1 + 1.0 / 2048), 0x3C00)               // tie -> even
        XCTAssertEqual(f32ToF16(1 + 3.0 / 2048), 0x3C02)               // tie -> even (up)
        XCTAssertEqual(f32ToF16(Float(bitPattern: 0x3380_0000)), 0x0001)   // 2^-24 smallest subnormal
        XCTAssertEqual(f32ToF16(Float(bitPattern: 0x3300_0000)), 0x0000)   // 2^-25 tie -> 0
        XCTAssertEqual(f32ToF16(-0.0), 0x8000)
        XCTAssertTrue(f16ToF32(f32ToF16(.nan)).isNaN)
        XCTAssertEqual(f32ToBF16(1.0), 0x3F80)
        XCTAssertEqual(f32ToBF16(Float(bitPattern: 0x3F80_8000)), 0x3F80)  // tie -> even
        XCTAssertEqual(f32ToBF16(Float(bitPattern: 0x3F81_8000)), 0x3F82)  // tie -> even (up)
        XCTAssertTrue(bf16ToF32(f32ToBF16(.nan)).isNaN)
    }

    func testF16CMatchesScalarOnAllHalfsAndRandomFloats() throws {
        try XCTSkipUnless(KernelSettings.hasAVX2FMA, "no F16C on this CPU")
        let halfs = (0...0xFFFF).map { UInt16($0) }
        var a = [Float](repeating: 0, count: halfs.count), b = a
        convertF16ToF32(halfs, &a, count: halfs.count)
        convertF16ToF32Scalar(halfs, &b, count: halfs.count)
        for i in 0..<halfs.count where !(a[i].isNaN && b[i].isNaN) {
            XCTAssertEqual(a[i].bitPattern, b[i].bitPattern, "half \(i)")
        }
        var rng = TestRNG(seed: 12)
        let floats: [Float] = (0..<200_003).map { i in
            let bits = UInt32(truncatingIfNeeded: rng.next())
            // mostly in and around the half range, incl. subnormals and overflow
            return Float(bitPattern: (bits & 0x8FFF_FFFF) | (i % 3 == 0 ? 0x3000_0000 : 0x3800_0000))
        }
        var h1 = [UInt16](repeating: 0, count: floats.count), h2 = h1
        convertF32ToF16(floats, &h1, count: floats.count)
        convertF32ToF16Scalar(floats, &h2, count: floats.count)
        XCTAssertEqual(h1, h2)
    }

    func testInt8RoundTrip() {
        var rng = TestRNG(seed: 13)
        let (rows, cols) = (7, 33)
        var x = rng.floats(rows * cols, scale: 3)
        for c in 0..<cols { x[2 * cols + c] = 0 }                      // an all-zero row
        var q = [Int8](repeating: 0, count: x.count), s = [Float](repeating: 0, count: rows)
        quantizeRowsInt8(x, rows: rows, cols: cols, quantized: &q, scales: &s)
        var back = [Float](repeating: 0, count: x.count)
        dequantizeRowsInt8(q, scales: s, rows: rows, cols: cols, output: &back)
        XCTAssertEqual(s[2], 0)
        for r in 0..<rows {
            XCTAssertEqual(q[(r * cols)..<((r + 1) * cols)].map { abs(Int($0)) }.max()!, r == 2 ? 0 : 127)
            for c in 0..<cols { XCTAssertLessThanOrEqual(abs(back[r * cols + c] - x[r * cols + c]), s[r] / 2 * 1.0001) }
        }
    }
}
