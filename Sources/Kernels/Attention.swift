// Multi-head scaled dot-product attention with optional encoder keys/values in front and an additive bias.
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import CKernelsX86

/// Where one operand of `attention` lives: element (head h, token t, channel c) of one batch item is at
/// `base[h * headStride + t * tokenStride + c * channelStride]`.
///
/// - GLIDE UNet `QKVAttention` (qkv `[N, H*3*C, T]`): q at `base = qkv + n*H*3*C*T`, `headStride: 3*C*T`,
///   `tokenStride: 1`, `channelStride: T`; k at `base + C*T`, v at `base + 2*C*T`.
/// - GLIDE text transformer (qkv `[N, T, H*3*C]`): q at `qkv + n*T*H*3*C`, `headStride: 3*C`,
///   `tokenStride: H*3*C`, `channelStride: 1`; k at `+ C`, v at `+ 2*C`.
public struct AttentionOperand: @unchecked Sendable {
    public var base: UnsafePointer<Float>
    public var headStride: Int
    public var tokenStride: Int
    public var channelStride: Int
    public init(_ base: UnsafePointer<Float>, headStride: Int, tokenStride: Int, channelStride: Int) {
        self.base = base; self.headStride = headStride; self.tokenStride = tokenStride
        self.channelStride = channelStride
    }
    @inline(__always) func at(_ h: Int, _ t: Int, _ c: Int) -> Float {
        base[h * headStride + t * tokenStride + c * channelStride]
    }
}

/// Writable counterpart of `AttentionOperand` for the attention output.
public struct AttentionOutput: @unchecked Sendable {
    public var base: UnsafeMutablePointer<Float>
    public var headStride: Int
    public var tokenStride: Int
    public var channelStride: Int
    public init(_ base: UnsafeMutablePointer<Float>, headStride: Int, tokenStride: Int, channelStride: Int) {
        self.base = base; self.headStride = headStride; self.tokenStride = tokenStride
        self.channelStride = channelStride
    }
}

/// Attention for one batch item and `heads` heads of width `headDim`:
/// `out[h, t, :] = sum_s softmax_s(q'[h,t,:] . k'[h,s,:] + bias[h, t, s]) * v[h, s, :]` with
/// `q' = q * qkScale`, `k' = k * qkScale` (GLIDE scales both by `1/sqrt(sqrt(headDim))`; CLIP by
/// `sqrt(qk_scale)`), softmax in f32.
///
/// Keys/values: the `encoderCount` encoder keys/values (if any) come FIRST, then the `keyCount` own keys
/// (as `th.cat([ek, k], dim=-1)` in GLIDE). `bias` (optional, additive, e.g. a causal/padding mask with
/// -inf) is `[queryCount, encoderCount + keyCount]` row-major per head at `bias + h * biasHeadStride`
/// (stride 0 shares one bias across heads).
public func attention(heads: Int, headDim: Int, queryCount: Int, keyCount: Int,
                      query: AttentionOperand, key: AttentionOperand, value: AttentionOperand,
                      encoderCount: Int = 0, encoderKey: AttentionOperand? = nil, encoderValue: AttentionOperand? = nil,
                      bias: UnsafePointer<Float>? = nil, biasHeadStride: Int = 0,
                      qkScale: Float, output: AttentionOutput) {
    let probe = KernelProfiler.begin("attention", attentionProfileLabel(heads, headDim, queryCount, encoderCount, keyCount), flops: 4 * Double(heads * headDim) * Double(queryCount) * Double(encoderCount + keyCount)); defer { KernelProfiler.end(probe) }
    precondition(encoderCount == 0 || (encoderKey != nil && encoderValue != nil))
    attentionImpl(heads: heads, headDim: headDim, queryCount: queryCount, keyCount: keyCount, query: query,
                  key: key, value: value, encoderCount: encoderCount, encoderKey: encoderKey,
                  encoderValue: encoderValue, bias: bias, biasHeadStride: biasHeadStride, qkScale: qkScale,
                  output: output, fast: KernelSettings.useAVX2)
}

/// Scalar twin of `attention`.
public func attentionScalar(heads: Int, headDim: Int, queryCount: Int, keyCount: Int,
                            query: AttentionOperand, key: AttentionOperand, value: AttentionOperand,
                            encoderCount: Int = 0, encoderKey: AttentionOperand? = nil,
                            encoderValue: AttentionOperand? = nil,
                            bias: UnsafePointer<Float>? = nil, biasHeadStride: Int = 0,
                            qkScale: Float, output: AttentionOutput) {
    precondition(encoderCount == 0 || (encoderKey != nil && encoderValue != nil))
    attentionImpl(heads: heads, headDim: headDim, queryCount: queryCount, keyCount: keyCount, query: query,
                  key: key, value: value, encoderCount: encoderCount, encoderKey: encoderKey,
                  encoderValue: encoderValue, bias: bias, biasHeadStride: biasHeadStride, qkScale: qkScale,
                  output: output, fast: false)
}

/// Query rows per work item of `attention` (items = heads x query blocks run in parallel).
let attentionQueryBlock = 128

func attentionImpl(heads: Int, headDim: Int, queryCount: Int, keyCount: Int,
                   query: AttentionOperand, key: AttentionOperand, value: AttentionOperand,
                   encoderCount: Int, encoderKey: AttentionOperand?, encoderValue: AttentionOperand?,
                   bias: UnsafePointer<Float>?, biasHeadStride: Int, qkScale: Float, output: AttentionOutput,
                   fast: Bool) {
    let s = encoderCount + keyCount, c = headDim
    let blocks = fast ? max(1, (queryCount + attentionQueryBlock - 1) / attentionQueryBlock) : 1
    // Per item: gather q' [Tb, C], k' [S, C], v [S, C] densely, then scores, softmax, and weights . v.
    parallelFor(heads * blocks) { item in
        let h = item / blocks, blk = item % blocks
        let t0 = fast ? blk * attentionQueryBlock : 0
        let t = fast ? min(queryCount, t0 + attentionQueryBlock) - t0 : queryCount
        let q = UnsafeMutablePointer<Float>.allocate(capacity: max(t * c, 1))
        let k = UnsafeMutablePointer<Float>.allocate(capacity: max(s * c, 1))
        let v = UnsafeMutablePointer<Float>.allocate(capacity: max(s * c, 1))
        let w = UnsafeMutablePointer<Float>.allocate(capacity: max(t * s, 1))
        let o = UnsafeMutablePointer<Float>.allocate(capacity: max(t * c, 1))
        defer { q.deallocate(); k.deallocate(); v.deallocate(); w.deallocate(); o.deallocate() }
        for i in 0..<t { for j in 0..<c { q[i * c + j] = query.at(h, t0 + i, j) * qkScale } }
        for i in 0..<encoderCount {
            for j in 0..<c {
                k[i * c + j] = encoderKey!.at(h, i, j) * qkScale
                v[i * c + j] = encoderValue!.at(h, i, j)
            }
        }
        for i in 0..<keyCount {
            for j in 0..<c {
                k[(encoderCount + i) * c + j] = key.at(h, i, j) * qkScale
                v[(encoderCount + i) * c + j] = value.at(h, i, j)
            }
        }
        if fast {
            // scores [Tb, S] = q' [Tb, C] . k'^T ; out [Tb, C] = w [Tb, S] . v [S, C]  (single-threaded GEMMs)
            gemmAVX2(weight: WeightMatrix(rows: t, cols: c, f32: q), source: .matrix(MatrixOperand(k, rowStride: 1, colStride: c)),
                     columns: s, output: MutableMatrixOperand(w, rowStride: s), bias: nil, accumulate: false, threads: 1)
        } else {
            attentionProduct(m: t, n: s, k: c, a: q, b: MatrixOperand(k, rowStride: 1, colStride: c), c: w)
        }
        if let bias {
            let bh = bias + h * biasHeadStride + t0 * s
            for i in 0..<(t * s) { w[i] += bh[i] }
        }
        for i in 0..<t {
            if fast { glide_softmax_row_avx2(w + i * s, s) } else { softmaxRowScalar(w + i * s, count: s) }
        }
        if fast {
            gemmAVX2(weight: WeightMatrix(rows: t, cols: s, f32: w), source: .matrix(MatrixOperand(v, rowStride: c)),
                     columns: c, output: MutableMatrixOperand(o, rowStride: c), bias: nil, accumulate: false, threads: 1)
        } else {
            attentionProduct(m: t, n: c, k: s, a: w, b: MatrixOperand(v, rowStride: c, colStride: 1), c: o)
        }
        for i in 0..<t {
            for j in 0..<c {
                output.base[h * output.headStride + (t0 + i) * output.tokenStride + j * output.channelStride] = o[i * c + j]
            }
        }
    }
}

/// Dense `c[m, n] = a[m, k] . b[k, n]` on the calling thread (attention runs heads in parallel).
func attentionProduct(m: Int, n: Int, k: Int, a: UnsafePointer<Float>, b: MatrixOperand,
                      c: UnsafeMutablePointer<Float>) {
    for i in 0..<m {
        let row = c + i * n
        for j in 0..<n { row[j] = 0 }
        for p in 0..<k {
            let av = a[i * k + p]
            let br = b.base + p * b.rowStride
            if b.colStride == 1 {
                for j in 0..<n { row[j] += av * br[j] }
            } else {
                for j in 0..<n { row[j] += av * br[j * b.colStride] }
            }
        }
    }
}
