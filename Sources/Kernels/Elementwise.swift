// Element-wise activations and helpers: SiLU, exact GELU, softmax, add.
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import CKernelsX86

/// SiLU `x * sigmoid(x)` over `count` floats. In place allowed.
public func silu(_ input: UnsafePointer<Float>, _ output: UnsafeMutablePointer<Float>, count: Int) {
    let probe = KernelProfiler.begin("silu", "\(count)"); defer { KernelProfiler.end(probe) }
    if KernelSettings.useAVX2 {
        parallelFor(chunks(count)) { ch in
            let (lo, hi) = chunkRange(ch, count)
            glide_silu_avx2(input + lo, output + lo, hi - lo)
        }
        return
    }
    siluScalar(input, output, count: count)
}

/// Scalar twin of `silu`.
public func siluScalar(_ input: UnsafePointer<Float>, _ output: UnsafeMutablePointer<Float>, count: Int) {
    for i in 0..<count { let v = input[i]; output[i] = v / (1 + expf(-v)) }
}

/// Exact GELU `0.5 * x * (1 + erf(x / sqrt(2)))` (PyTorch's default `nn.GELU()`). In place allowed.
public func gelu(_ input: UnsafePointer<Float>, _ output: UnsafeMutablePointer<Float>, count: Int) {
    let probe = KernelProfiler.begin("gelu", "\(count)"); defer { KernelProfiler.end(probe) }
    if KernelSettings.useAVX2 {
        parallelFor(chunks(count)) { ch in
            let (lo, hi) = chunkRange(ch, count)
            glide_gelu_avx2(input + lo, output + lo, hi - lo)
        }
        return
    }
    geluScalar(input, output, count: count)
}

/// Scalar twin of `gelu` (libm `erff`).
public func geluScalar(_ input: UnsafePointer<Float>, _ output: UnsafeMutablePointer<Float>, count: Int) {
    let invSqrt2: Float = 0.70710678118654752440
    parallelFor(chunks(count)) { ch in
        let (lo, hi) = chunkRange(ch, count)
        for i in lo..<hi { let v = input[i]; output[i] = 0.5 * v * (1 + erff(v * invSqrt2)) }
    }
}

/// Softmax over each row of a `[rows, cols]` f32 matrix in place (max-subtracted, f32 sums).
public func softmaxRows(_ data: UnsafeMutablePointer<Float>, rows: Int, cols: Int) {
    let probe = KernelProfiler.begin("softmax", "\(rows)x\(cols)"); defer { KernelProfiler.end(probe) }
    parallelFor(rows) { r in softmaxRow(data + r * cols, count: cols) }
}

/// Scalar twin of `softmaxRows`.
public func softmaxRowsScalar(_ data: UnsafeMutablePointer<Float>, rows: Int, cols: Int) {
    for r in 0..<rows { softmaxRowScalar(data + r * cols, count: cols) }
}

/// Softmax of one contiguous row in place (vectorized when available).
@inline(__always)
func softmaxRow(_ x: UnsafeMutablePointer<Float>, count: Int) {
    if KernelSettings.useAVX2 { glide_softmax_row_avx2(x, count); return }
    softmaxRowScalar(x, count: count)
}

/// Scalar softmax of one contiguous row in place.
func softmaxRowScalar(_ x: UnsafeMutablePointer<Float>, count: Int) {
    if count == 0 { return }
    var m = -Float.infinity
    for i in 0..<count { m = max(m, x[i]) }
    if m == -Float.infinity { m = 0 }      // fully masked row: exp(-inf) = 0 -> NaN, as PyTorch
    var sum: Float = 0
    for i in 0..<count { let e = expf(x[i] - m); x[i] = e; sum += e }
    let inv = 1 / sum
    for i in 0..<count { x[i] *= inv }
}

/// `output[i] = a[i] + b[i]` (in place allowed).
public func add(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ output: UnsafeMutablePointer<Float>,
                count: Int) {
    let probe = KernelProfiler.begin("add", "\(count)"); defer { KernelProfiler.end(probe) }
    for i in 0..<count { output[i] = a[i] + b[i] }
}

/// `output[n, c, s] = input[n, c, s] + bias[n * channelsBiasStride + c]` over `[batch, channels, spatial]`
/// (e.g. adding a per-channel embedding to a feature map; `biasBatchStride` 0 shares one bias across the batch).
public func addChannelBias(_ input: UnsafePointer<Float>, bias: UnsafePointer<Float>, biasBatchStride: Int,
                           _ output: UnsafeMutablePointer<Float>, batch: Int, channels: Int, spatial: Int) {
    let probe = KernelProfiler.begin("channel bias", "\(batch)x\(channels)x\(spatial)"); defer { KernelProfiler.end(probe) }
    for n in 0..<batch {
        for c in 0..<channels {
            let b = bias[n * biasBatchStride + c]
            let off = (n * channels + c) * spatial
            for i in 0..<spatial { output[off + i] = input[off + i] + b }
        }
    }
}

/// `output[i] = input[i]` for `i < count` (no overlap), in parallel chunks.
public func copyElements(_ input: UnsafePointer<Float>, _ output: UnsafeMutablePointer<Float>, count: Int) {
    let probe = KernelProfiler.begin("copy", "\(count)"); defer { KernelProfiler.end(probe) }
    let pieces = min(chunks(count), 4 * KernelSettings.threadCount)
    let streaming = count * 4 >= streamingCopyMinimumBytes
    parallelFor(pieces) { p in
        let lo = count * p / pieces, hi = count * (p + 1) / pieces
        copyFloats(input + lo, output + lo, count: hi - lo, streaming: streaming)
    }
}

/// Copies at least this many bytes in one call with non-temporal stores (`glide_copy_stream`): far more than the
/// last-level cache holds, so the destination's lines would be evicted before use anyway and their
/// read-for-ownership is pure cost (384 planes of 256 KB: 4.4 -> 3.8 ms, Zen 5, 1 thread).
nonisolated(unsafe) var streamingCopyMinimumBytes = 48 << 20

/// `output[i] = input[i]`, `i < count`, with non-temporal stores when `streaming` (and AVX2).
@inline(__always)
func copyFloats(_ input: UnsafePointer<Float>, _ output: UnsafeMutablePointer<Float>, count: Int, streaming: Bool) {
    if streaming && KernelSettings.useAVX2 {
        glide_copy_stream(input, output, count)
    } else {
        output.update(from: input, count: count)
    }
}

/// `th.cat([a, b], dim=1)` over NCHW-like `[batch, channels, spatial]` buffers:
/// `output[n] = [a[n] (aChannels planes), b[n] (bChannels planes)]`. No overlap.
public func concatChannels(_ a: UnsafePointer<Float>, channels aChannels: Int, _ b: UnsafePointer<Float>,
                           channels bChannels: Int, into output: UnsafeMutablePointer<Float>, batch: Int, spatial: Int) {
    let probe = KernelProfiler.begin("concat", "\(batch)x(\(aChannels)+\(bChannels))x\(spatial)"); defer { KernelProfiler.end(probe) }
    let per = aChannels + bChannels
    let streaming = batch * per * spatial * 4 >= streamingCopyMinimumBytes
    parallelFor(batch * per) { i in
        let n = i / per, c = i % per
        let src = c < aChannels ? a + (n * aChannels + c) * spatial : b + (n * bChannels + c - aChannels) * spatial
        copyFloats(src, output + i * spatial, count: spatial, streaming: streaming)
    }
}
