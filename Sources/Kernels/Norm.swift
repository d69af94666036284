// Normalizations: group norm (GLIDE's GroupNorm32, with optional scale-shift and SiLU) and layer norm.
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import CKernelsX86

/// `GroupNorm32` over NCHW f32 (statistics in f64, biased variance, as `nn.GroupNorm` in f32), then optionally
/// GLIDE's scale-shift `y = y * (1 + scale[n, c]) + shift[n, c]`, then optionally SiLU. In place is allowed
/// (`output == input`).
///
/// - `input`/`output`: `[batch, channels, spatial]` (spatial = H*W).
/// - `gamma`/`beta`: `[channels]` affine parameters (nil = 1 / 0).
/// - `scale`/`shift`: `[batch, channels]` (the two halves of ResBlock's `emb_out`), or nil.
/// - `inputCopy`: if given, also receives a copy of `input` (`[batch, channels, spatial]`, no overlap with
///   either), made group by group right after the statistics pass has read it (one pass over `input` fewer than
///   a separate copy).
public func groupNorm(input: UnsafePointer<Float>, output: UnsafeMutablePointer<Float>,
                      batch: Int, channels: Int, spatial: Int, groups: Int = 32, eps: Float = 1e-5,
                      gamma: UnsafePointer<Float>?, beta: UnsafePointer<Float>?,
                      scale: UnsafePointer<Float>? = nil, shift: UnsafePointer<Float>? = nil, silu: Bool = false,
                      inputCopy: UnsafeMutablePointer<Float>? = nil) {
    let probe = KernelProfiler.begin("group norm", "\(batch)x\(channels)x\(spatial)\(scale != nil ? " +scale-shift" : "")\(silu ? " +silu" : "")\(inputCopy != nil ? " +copy" : "")"); defer { KernelProfiler.end(probe) }
    groupNormImpl(input: input, output: output, batch: batch, channels: channels, spatial: spatial, groups: groups,
                  eps: eps, gamma: gamma, beta: beta, scale: scale, shift: shift, silu: silu, inputCopy: inputCopy,
                  vector: KernelSettings.cpuPath == .avx512 ? .avx512 : KernelSettings.useAVX2 ? .avx2 : nil)
}

/// Scalar twin of `groupNorm`.
public func groupNormScalar(input: UnsafePointer<Float>, output: UnsafeMutablePointer<Float>,
                            batch: Int, channels: Int, spatial: Int, groups: Int = 32, eps: Float = 1e-5,
                            gamma: UnsafePointer<Float>?, beta: UnsafePointer<Float>?,
                            scale: UnsafePointer<Float>? = nil, shift: UnsafePointer<Float>? = nil, silu: Bool = false,
                            inputCopy: UnsafeMutablePointer<Float>? = nil) {
    groupNormImpl(input: input, output: output, batch: batch, channels: channels, spatial: spatial, groups: groups,
                  eps: eps, gamma: gamma, beta: beta, scale: scale, shift: shift, silu: silu, inputCopy: inputCopy,
                  vector: nil)
}

/// Vector width of `groupNorm`'s fast path. Measured (Zen 5, 1 thread, CPU time, 384x65536 + SiLU in place):
/// ymm statistics 3.6 ms + normalize/SiLU 11.0 ms; zmm 2.8 + 4.6 ms (four f64 accumulator pairs, a SiLU exp
/// with 3 operations fewer).
enum NormVectorPath { case avx2, avx512 }

/// The statistics of one group (`count` floats at `x`): mean and biased variance, as `groupNorm` computes them.
@inline(__always)
func groupStatistics(_ x: UnsafePointer<Float>, count: Int, vector: NormVectorPath?) -> (mean: Double, variance: Double) {
    var sum = 0.0, sq = 0.0
    if let vector {
        // One pass over the group (it rarely fits in L2): sums of x - x[0] in f64, shifted so the variance
        // E[(x-x0)^2] - E[x-x0]^2 does not cancel even when |mean| >> std.
        let pivot = count > 0 ? Double(x[0]) : 0
        if vector == .avx512 {
            glide_sum_sq_avx512(x, count, pivot, &sum, &sq)
        } else {
            glide_sum_sq_avx2(x, count, pivot, &sum, &sq)
        }
        let shiftedMean = sum / Double(count)
        return (pivot + shiftedMean, max(0, sq / Double(count) - shiftedMean * shiftedMean))
    }
    for i in 0..<count { sum += Double(x[i]) }
    let mean = sum / Double(count)
    for i in 0..<count { let d = Double(x[i]) - mean; sq += d * d }
    return (mean, sq / Double(count))
}

/// `groupNorm`'s per-channel affine `y = a x + b` (before SiLU) of channel `c` of image `n`, from its group's
/// statistics, gamma/beta and the scale-shift.
@inline(__always)
func groupNormAffine(mean: Double, variance: Double, eps: Float, n: Int, c: Int, channels: Int,
                     gamma: UnsafePointer<Float>?, beta: UnsafePointer<Float>?,
                     scale: UnsafePointer<Float>?, shift: UnsafePointer<Float>?) -> (a: Float, b: Float) {
    let rstd = 1.0 / (variance + Double(eps)).squareRoot()
    var a = Float(rstd) * (gamma?[c] ?? 1)
    var b = (beta?[c] ?? 0) - Float(mean) * a
    if let scale { let s = 1 + scale[n * channels + c]; a *= s; b *= s }
    if let shift { b += shift[n * channels + c] }
    return (a, b)
}

func groupNormImpl(input: UnsafePointer<Float>, output: UnsafeMutablePointer<Float>,
                   batch: Int, channels: Int, spatial: Int, groups: Int, eps: Float,
                   gamma: UnsafePointer<Float>?, beta: UnsafePointer<Float>?,
                   scale: UnsafePointer<Float>?, shift: UnsafePointer<Float>?, silu: Bool,
                   inputCopy: UnsafeMutablePointer<Float>?, vector: NormVectorPath?) {
    precondition(groups > 0 && channels % groups == 0, "groupNorm: \(channels) channels not divisible by \(groups)")
    let cpg = channels / groups
    let count = cpg * spatial
    let work = batch * groups
    let streamingCopy = vector != nil && batch * channels * spatial * 4 >= streamingCopyMinimumBytes
    parallelFor(work) { item in
        let n = item / groups, g = item % groups
        let base = (n * channels + g * cpg) * spatial
        let x = input + base
        let (mean, variance) = groupStatistics(x, count: count, vector: vector)
        if let inputCopy { copyFloats(x, inputCopy + base, count: count, streaming: streamingCopy) }
        for cc in 0..<cpg {
            let c = g * cpg + cc
            let (a, b) = groupNormAffine(mean: mean, variance: variance, eps: eps, n: n, c: c, channels: channels,
                                         gamma: gamma, beta: beta, scale: scale, shift: shift)
            let xi = x + cc * spatial, yo = output + base + cc * spatial
            if vector == .avx512 {
                glide_affine_silu_avx512(xi, yo, spatial, a, b, silu ? 1 : 0)
            } else if vector == .avx2 {
                glide_affine_silu_avx2(xi, yo, spatial, a, b, silu ? 1 : 0)
            } else if silu {
                for i in 0..<spatial { let v = xi[i] * a + b; yo[i] = v / (1 + expf(-v)) }
            } else {
                for i in 0..<spatial { yo[i] = xi[i] * a + b }
            }
        }
    }
}

/// `groupNorm`'s statistics pass alone, folded with gamma/beta and the scale-shift into the per-(image, channel)
/// affine `groupNorm` applies before its SiLU: `multiplier[n, c] * x + offset[n, c]` (`[batch, channels]` each, the
/// same values `groupNorm` uses). With `silu`, `ConvPreActivation(multiplier:offset:silu:)` then gives `conv2d` the
/// whole normalization as a pre-activation, so the normalized tensor is never written (`conv2dFusesPreActivation`).
/// Arguments as `groupNorm`'s; `inputCopy` as there.
public func groupNormStatistics(input: UnsafePointer<Float>, batch: Int, channels: Int, spatial: Int,
                                groups: Int = 32, eps: Float = 1e-5,
                                gamma: UnsafePointer<Float>?, beta: UnsafePointer<Float>?,
                                scale: UnsafePointer<Float>? = nil, shift: UnsafePointer<Float>? = nil,
                                multiplier: UnsafeMutablePointer<Float>, offset: UnsafeMutablePointer<Float>,
                                inputCopy: UnsafeMutablePointer<Float>? = nil) {
    let probe = KernelProfiler.begin("group norm statistics", "\(batch)x\(channels)x\(spatial)\(inputCopy != nil ? " +copy" : "")"); defer { KernelProfiler.end(probe) }
    groupNormStatisticsImpl(input: input, batch: batch, channels: channels, spatial: spatial, groups: groups, eps: eps,
                            gamma: gamma, beta: beta, scale: scale, shift: shift, multiplier: multiplier,
                            offset: offset, inputCopy: inputCopy,
                            vector: KernelSettings.cpuPath == .avx512 ? .avx512 : KernelSettings.useAVX2 ? .avx2 : nil)
}

/// Scalar twin of `groupNormStatistics` (the statistics of `groupNormScalar`).
public func groupNormStatisticsScalar(input: UnsafePointer<Float>, batch: Int, channels: Int, spatial: Int,
                                      groups: Int = 32, eps: Float = 1e-5,
                                      gamma: UnsafePointer<Float>?, beta: UnsafePointer<Float>?,
                                      scale: UnsafePointer<Float>? = nil, shift: UnsafePointer<Float>? = nil,
                                      multiplier: UnsafeMutablePointer<Float>, offset: UnsafeMutablePointer<Float>,
                                      inputCopy: UnsafeMutablePointer<Float>? = nil) {
    groupNormStatisticsImpl(input: input, batch: batch, channels: channels, spatial: spatial, groups: groups, eps: eps,
                            gamma: gamma, beta: beta, scale: scale, shift: shift, multiplier: multiplier,
                            offset: offset, inputCopy: inputCopy, vector: nil)
}

func groupNormStatisticsImpl(input: UnsafePointer<Float>, batch: Int, channels: Int, spatial: Int, groups: Int,
                             eps: Float, gamma: UnsafePointer<Float>?, beta: UnsafePointer<Float>?,
                             scale: UnsafePointer<Float>?, shift: UnsafePointer<Float>?,
                             multiplier: UnsafeMutablePointer<Float>, offset: UnsafeMutablePointer<Float>,
                             inputCopy: UnsafeMutablePointer<Float>?, vector: NormVectorPath?) {
    precondition(groups > 0 && channels % groups == 0, "groupNorm: \(channels) channels not divisible by \(groups)")
    let cpg = channels / groups
    let count = cpg * spatial
    let streamingCopy = vector != nil && batch * channels * spatial * 4 >= streamingCopyMinimumBytes
    parallelFor(batch * groups) { item in
        let n = item / groups, g = item % groups
        let base = (n * channels + g * cpg) * spatial
        let (mean, variance) = groupStatistics(input + base, count: count, vector: vector)
        if let inputCopy { copyFloats(input + base, inputCopy + base, count: count, streaming: streamingCopy) }
        for c in (g * cpg)..<((g + 1) * cpg) {
            let (a, b) = groupNormAffine(mean: mean, variance: variance, eps: eps, n: n, c: c, channels: channels,
                                         gamma: gamma, beta: beta, scale: scale, shift: shift)
            multiplier[n * channels + c] = a
            offset[n * channels + c] = b
        }
    }
}

/// `nn.LayerNorm` over the last dimension of a `[rows, width]` f32 matrix (statistics in f64, biased
/// variance). In place is allowed. `gamma`/`beta`: `[width]` or nil.
public func layerNorm(input: UnsafePointer<Float>, output: UnsafeMutablePointer<Float>, rows: Int, width: Int,
                      gamma: UnsafePointer<Float>?, beta: UnsafePointer<Float>?, eps: Float = 1e-5) {
    let probe = KernelProfiler.begin("layer norm", "\(rows)x\(width)"); defer { KernelProfiler.end(probe) }
    guard KernelSettings.useAVX2 else {
        layerNormScalar(input: input, output: output, rows: rows, width: width, gamma: gamma, beta: beta, eps: eps)
        return
    }
    parallelFor(rows) { r in
        let x = input + r * width, y = output + r * width
        var sum = 0.0, sq = 0.0, unused = 0.0
        glide_sum_sq_avx2(x, width, 0, &sum, &unused)
        let mean = sum / Double(width)
        glide_sum_sq_avx2(x, width, mean, &unused, &sq)
        let rstd = 1.0 / (sq / Double(width) + Double(eps)).squareRoot()
        glide_normalize_affine_avx2(x, y, width, Float(mean), Float(rstd), gamma, beta)
    }
}

/// Scalar twin of `layerNorm` (normalization in f64, then the affine in f32).
public func layerNormScalar(input: UnsafePointer<Float>, output: UnsafeMutablePointer<Float>, rows: Int, width: Int,
                            gamma: UnsafePointer<Float>?, beta: UnsafePointer<Float>?, eps: Float = 1e-5) {
    for r in 0..<rows {
        let x = input + r * width, y = output + r * width
        var sum = 0.0
        for i in 0..<width { sum += Double(x[i]) }
        let mean = sum / Double(width)
        var sq = 0.0
        for i in 0..<width { let d = Double(x[i]) - mean; sq += d * d }
        let rstd = 1.0 / (sq / Double(width) + Double(eps)).squareRoot()
        for i in 0..<width {
            let v = Float((Double(x[i]) - mean) * rstd)
            y[i] = v * (gamma?[i] ?? 1) + (beta?[i] ?? 0)
        }
    }
}
