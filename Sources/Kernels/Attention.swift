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

/// Arithmetic of the two attention products (scores `q'.k'^T` and `weights . v`); the softmax is f32 always.
public enum AttentionPrecision: Sendable, Equatable {
    /// f32 products (the reference's arithmetic; f32 models keep it).
    case f32
    /// Both products with `vdpbf16ps` when the CPU has AVX512_BF16 (and `KernelSettings.useBF16Dot`), fused
    /// with the softmax (`attention_bf16.c`): q', k', v and the unnormalised softmax weights rounded to bf16
    /// (nearest even), f32 accumulation, the exp a cubic exp2 (relative error 7.5e-5). Where the instruction is
    /// missing this is the same as `.f32`. For models whose weights are bf16 or int8 already.
    case bf16Products
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
                      qkScale: Float, output: AttentionOutput, precision: AttentionPrecision = .f32) {
    let probe = KernelProfiler.begin("attention", attentionProfileLabel(heads, headDim, queryCount, encoderCount, keyCount), flops: 4 * Double(heads * headDim) * Double(queryCount) * Double(encoderCount + keyCount)); defer { KernelProfiler.end(probe) }
    precondition(encoderCount == 0 || (encoderKey != nil && encoderValue != nil))
    if precision == .bf16Products && KernelSettings.useBF16Dot {
        attentionFusedBF16(heads: heads, headDim: headDim, queryCount: queryCount, keyCount: keyCount, query: query,
                           key: key, value: value, encoderCount: encoderCount, encoderKey: encoderKey,
                           encoderValue: encoderValue, bias: bias, biasHeadStride: biasHeadStride, qkScale: qkScale,
                           output: output, emulated: false)
        return
    }
    attentionImpl(heads: heads, headDim: headDim, queryCount: queryCount, keyCount: keyCount, query: query,
                  key: key, value: value, encoderCount: encoderCount, encoderKey: encoderKey,
                  encoderValue: encoderValue, bias: bias, biasHeadStride: biasHeadStride, qkScale: qkScale,
                  output: output, fast: KernelSettings.useAVX2)
}

/// `attention(..., precision: .bf16Products)` with portable C in place of the AVX512_BF16 kernel (scalar
/// emulations of `vdpbf16ps`, the exp and the bf16 rounding; the same packing and operation order): the twin
/// that pins the bf16 path's bits on every CPU.
public func attentionBF16Emulated(heads: Int, headDim: Int, queryCount: Int, keyCount: Int,
                                  query: AttentionOperand, key: AttentionOperand, value: AttentionOperand,
                                  encoderCount: Int = 0, encoderKey: AttentionOperand? = nil,
                                  encoderValue: AttentionOperand? = nil,
                                  bias: UnsafePointer<Float>? = nil, biasHeadStride: Int = 0,
                                  qkScale: Float, output: AttentionOutput) {
    precondition(encoderCount == 0 || (encoderKey != nil && encoderValue != nil))
    attentionFusedBF16(heads: heads, headDim: headDim, queryCount: queryCount, keyCount: keyCount, query: query,
                       key: key, value: value, encoderCount: encoderCount, encoderKey: encoderKey,
                       encoderValue: encoderValue, bias: bias, biasHeadStride: biasHeadStride, qkScale: qkScale,
                       output: output, emulated: true)
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

/// Query rows per block of the fast `attention`: the scores of one block (`attentionQueryBlock x keys`, 1.2 MB
/// at GLIDE's 32x32 attention) stay near the core between the two products and the softmax. Measured on the base
/// model's 32x32 attention (1 thread, CPU time): 64 -> 277 ms a step (keys/values re-packed per block), 256 ->
/// 250 ms, 1024 -> 250 ms. Again with the former GEMM-based bf16 products (base int8, 2026-12-01): 128 / 256 /
/// 512 / 1024 -> 114 / 104 / 99 / 101 ms, within the noise of a loaded machine, so 256 stays.
let attentionQueryBlock = 256

func attentionImpl(heads: Int, headDim: Int, queryCount: Int, keyCount: Int,
                   query: AttentionOperand, key: AttentionOperand, value: AttentionOperand,
                   encoderCount: Int, encoderKey: AttentionOperand?, encoderValue: AttentionOperand?,
                   bias: UnsafePointer<Float>?, biasHeadStride: Int, qkScale: Float, output: AttentionOutput,
                   fast: Bool) {
    if fast {
        attentionBlocked(heads: heads, headDim: headDim, queryCount: queryCount, keyCount: keyCount, query: query,
                         key: key, value: value, encoderCount: encoderCount, encoderKey: encoderKey,
                         encoderValue: encoderValue, bias: bias, biasHeadStride: biasHeadStride, qkScale: qkScale,
                         output: output)
        return
    }
    let s = encoderCount + keyCount, c = headDim
    // Per head: gather q' [T, C], k' [S, C], v [S, C] densely, then scores, softmax, and weights . v.
    for h in 0..<heads {
        let t = queryCount
        let scratch = ScratchFrame(); defer { scratch.release() }
        let q = scratch.allocate(Float.self, count: t * c)
        let k = scratch.allocate(Float.self, count: s * c)
        let v = scratch.allocate(Float.self, count: s * c)
        let w = scratch.allocate(Float.self, count: t * s)
        let o = scratch.allocate(Float.self, count: t * c)
        for i in 0..<t { for j in 0..<c { q[i * c + j] = query.at(h, i, j) * qkScale } }
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
        attentionProduct(m: t, n: s, k: c, a: q, b: MatrixOperand(k, rowStride: 1, colStride: c), c: w)
        if let bias {
            let bh = bias + h * biasHeadStride
            for i in 0..<(t * s) { w[i] += bh[i] }
        }
        for i in 0..<t { softmaxRowScalar(w + i * s, count: s) }
        attentionProduct(m: t, n: c, k: s, a: w, b: MatrixOperand(v, rowStride: c, colStride: 1), c: o)
        for i in 0..<t {
            for j in 0..<c {
                output.base[h * output.headStride + i * output.tokenStride + j * output.channelStride] = o[i * c + j]
            }
        }
    }
}

/// The fast path of `attention`: heads in parallel; per head the scaled keys are gathered once channel-major
/// `[C, S]` and the values token-major `[S, C]`, then per block of `attentionQueryBlock` queries:
/// scores `[Tb, S]` = q' . k'^T, bias, exp(scores - row max), `out[Tb, C]` = exp-weights . v written straight
/// into `output`, then each output row divided by its row's sum (softmax normalization on `Tb x C` values
/// instead of `Tb x S`). Single-threaded GEMMs, so every head's result is the same for any thread count.
func attentionBlocked(heads: Int, headDim c: Int, queryCount: Int, keyCount: Int,
                      query: AttentionOperand, key: AttentionOperand, value: AttentionOperand,
                      encoderCount: Int, encoderKey: AttentionOperand?, encoderValue: AttentionOperand?,
                      bias: UnsafePointer<Float>?, biasHeadStride: Int, qkScale: Float, output: AttentionOutput) {
    let s = encoderCount + keyCount
    if queryCount == 0 || c == 0 { return }
    let tb = min(queryCount, attentionQueryBlock)
    parallelFor(heads) { h in
        let scratch = ScratchFrame(); defer { scratch.release() }
        let kT = scratch.allocate(Float.self, count: c * s)
        let v = scratch.allocate(Float.self, count: s * c)
        let q = scratch.allocate(Float.self, count: tb * c)
        let w = scratch.allocate(Float.self, count: tb * s)
        let inverseSums = scratch.allocate(Float.self, count: tb)
        if let encoderKey, let encoderValue, encoderCount > 0 {
            gatherChannelMajor(encoderKey, head: h, tokens: 0, count: encoderCount, channels: c, scale: qkScale,
                               into: kT, rowStride: s)
            gatherTokenMajor(encoderValue, head: h, tokens: 0, count: encoderCount, channels: c, scale: 1, into: v)
        }
        gatherChannelMajor(key, head: h, tokens: 0, count: keyCount, channels: c, scale: qkScale,
                           into: kT + encoderCount, rowStride: s)
        gatherTokenMajor(value, head: h, tokens: 0, count: keyCount, channels: c, scale: 1, into: v + encoderCount * c)
        var t0 = 0
        while t0 < queryCount {
            let t = min(tb, queryCount - t0)
            gatherTokenMajor(query, head: h, tokens: t0, count: t, channels: c, scale: qkScale, into: q)
            // Sub-regions are recorded with one thread only (the profiler records on the calling thread).
            let scoresProbe = KernelProfiler.begin("attention scores gemm", "\(t)x\(c) . \(c)x\(s)",
                                                   flops: 2 * Double(t * c) * Double(s))
            if s > 0 {
                gemmAVX2(weight: WeightMatrix(rows: t, cols: c, f32: q), source: .matrix(MatrixOperand(kT, rowStride: s)),
                         columns: s, output: MutableMatrixOperand(w, rowStride: s), bias: nil, accumulate: false,
                         threads: 1)
            }
            KernelProfiler.end(scoresProbe)
            let softmaxProbe = KernelProfiler.begin("attention softmax", "\(t)x\(s)")
            if let bias {
                let bh = bias + h * biasHeadStride + t0 * s
                for i in 0..<(t * s) { w[i] += bh[i] }
            }
            if KernelSettings.cpuPath == .avx512 {
                // The AVX2 kernel's values and sums bit for bit, on zmm (256x1152 block 0.106 -> 0.051 ms).
                for i in 0..<t { inverseSums[i] = 1 / glide_softmax_exp_row_avx512(w + i * s, s) }
            } else {
                for i in 0..<t { inverseSums[i] = 1 / glide_softmax_exp_row_avx2(w + i * s, s) }
            }
            KernelProfiler.end(softmaxProbe)
            let sumProbe = KernelProfiler.begin("attention weighted sum gemm", "\(t)x\(s) . \(s)x\(c)",
                                                flops: 2 * Double(t * c) * Double(s))
            let outBase = output.base + h * output.headStride + t0 * output.tokenStride
            let sumOutput = MutableMatrixOperand(outBase, rowStride: output.tokenStride, colStride: output.channelStride)
            gemmAVX2(weight: WeightMatrix(rows: t, cols: s, f32: w), source: .matrix(MatrixOperand(v, rowStride: c)),
                     columns: c, output: sumOutput, bias: nil, accumulate: false, threads: 1)
            if output.tokenStride == 1 {
                for ch in 0..<c {
                    let row = outBase + ch * output.channelStride
                    for i in 0..<t { row[i] *= inverseSums[i] }
                }
            } else {
                for i in 0..<t {
                    let row = outBase + i * output.tokenStride
                    for ch in 0..<c { row[ch * output.channelStride] *= inverseSums[i] }
                }
            }
            KernelProfiler.end(sumProbe)
            t0 += t
        }
    }
}

/// Query rows per work item of the fused bf16 attention (a multiple of `GLIDE_ATTN_MR`): items are
/// (head, query block) pairs, enough of them to balance the threads at every resolution.
let attentionBF16QueryBlock = 48

/// The `.bf16Products` attention (`emulated`: its portable twin, same bits): per head, q', k' and v are packed
/// as bf16 pairs once (heads in parallel); then every (head, block of `attentionBF16QueryBlock` queries) runs `glide_attention_bf16_block` (scores, exp and weighted sum per 6 query rows, never the full score
/// matrix), in parallel. Each output element's arithmetic is fixed by the packing: any thread count, same bits.
func attentionFusedBF16(heads: Int, headDim c: Int, queryCount: Int, keyCount: Int,
                        query: AttentionOperand, key: AttentionOperand, value: AttentionOperand,
                        encoderCount: Int, encoderKey: AttentionOperand?, encoderValue: AttentionOperand?,
                        bias: UnsafePointer<Float>?, biasHeadStride: Int, qkScale: Float, output: AttentionOutput,
                        emulated: Bool) {
    let s = encoderCount + keyCount
    if queryCount == 0 || c == 0 || heads == 0 { return }
    if s == 0 {   // softmax over no keys: nothing to weigh
        for h in 0..<heads { for i in 0..<queryCount { for ch in 0..<c {
            output.base[h * output.headStride + i * output.tokenStride + ch * output.channelStride] = 0
        } } }
        return
    }
    let tileRows = Int(GLIDE_ATTN_MR), ch16 = (c + 15) / 16 * 16, pairs = (c + 1) / 2
    let blockRows = min(attentionBF16QueryBlock, (queryCount + tileRows - 1) / tileRows * tileRows)
    let blocks = (queryCount + blockRows - 1) / blockRows, queryRows = blocks * blockRows
    // Per head: packed keys, values, queries.
    let keyWords = glide_attn_bf16_key_words(Int32(s), Int32(c))
    let valueWords = glide_attn_bf16_value_words(Int32(s), Int32(c))
    let headWords = keyWords + valueWords + pairs * queryRows
    let vector: Int32 = emulated ? 0 : 1
    // k' and q': packed straight from a channel-major source, else gathered first.
    func packKeys(_ operand: AttentionOperand, head h: Int, key0: Int, count: Int, into dst: UnsafeMutablePointer<UInt32>) {
        if count == 0 { return }
        if operand.tokenStride == 1 {
            glide_attn_bf16_pack_keys(operand.base + h * operand.headStride, operand.channelStride, Int32(key0),
                                      Int32(count), Int32(s), Int32(c), qkScale, dst, vector)
        } else {
            let scratch = ScratchFrame(); defer { scratch.release() }
            let kT = scratch.allocate(Float.self, count: c * count)
            gatherChannelMajor(operand, head: h, tokens: 0, count: count, channels: c, scale: qkScale, into: kT,
                               rowStride: count)
            glide_attn_bf16_pack_keys(kT, count, Int32(key0), Int32(count), Int32(s), Int32(c), 1, dst, vector)
        }
    }
    // v: packed straight from channel-major sources when no pair of keys straddles the encoder/own boundary.
    let valuesDirect = value.tokenStride == 1 && (encoderCount == 0 || (encoderValue!.tokenStride == 1 && encoderCount % 2 == 0))
    func packHead(_ h: Int, into dst: UnsafeMutablePointer<UInt32>) {
        if let encoderKey, encoderCount > 0 { packKeys(encoderKey, head: h, key0: 0, count: encoderCount, into: dst) }
        packKeys(key, head: h, key0: encoderCount, count: keyCount, into: dst)
        if valuesDirect {
            if let encoderValue, encoderCount > 0 {
                glide_attn_bf16_pack_values_cm(encoderValue.base + h * encoderValue.headStride, encoderValue.channelStride,
                                               0, Int32(encoderCount), Int32(s), Int32(c), dst + keyWords, vector)
            }
            glide_attn_bf16_pack_values_cm(value.base + h * value.headStride, value.channelStride, Int32(encoderCount),
                                           Int32(keyCount), Int32(s), Int32(c), dst + keyWords, vector)
        } else {
            let scratch = ScratchFrame(); defer { scratch.release() }
            let v = scratch.allocate(Float.self, count: s * c)
            if let encoderValue, encoderCount > 0 {
                gatherTokenMajor(encoderValue, head: h, tokens: 0, count: encoderCount, channels: c, scale: 1, into: v)
            }
            gatherTokenMajor(value, head: h, tokens: 0, count: keyCount, channels: c, scale: 1, into: v + encoderCount * c)
            glide_attn_bf16_pack_values(v, c, Int32(s), Int32(c), dst + keyWords, vector)
        }
        let qDst = dst + keyWords + valueWords
        if query.tokenStride == 1 {
            glide_attn_bf16_pack_queries(query.base + h * query.headStride, query.channelStride, Int32(queryCount),
                                         Int32(queryRows), Int32(c), qkScale, qDst, vector)
        } else {
            let scratch = ScratchFrame(); defer { scratch.release() }
            let qT = scratch.allocate(Float.self, count: c * queryCount)
            gatherChannelMajor(query, head: h, tokens: 0, count: queryCount, channels: c, scale: qkScale, into: qT,
                               rowStride: queryCount)
            glide_attn_bf16_pack_queries(qT, queryCount, Int32(queryCount), Int32(queryRows), Int32(c), 1, qDst, vector)
        }
    }
    // One block of queries into out[0..<t, 0..<ch16].
    func runBlock(_ h: Int, _ block: Int, head: UnsafePointer<UInt32>, out: UnsafeMutablePointer<Float>,
                  scratch: UnsafeMutablePointer<Float>) {
        let t0 = block * blockRows
        let t = min(blockRows, queryCount - t0), rows = (t + tileRows - 1) / tileRows * tileRows
        glide_attention_bf16_block(head, head + keyWords, Int32(s), Int32(c), head + keyWords + valueWords + t0,
                                   queryRows, Int32(rows), bias.map { $0 + h * biasHeadStride + t0 * s }, s, Int32(t),
                                   scratch, out, ch16, emulated ? 1 : 0)
    }
    // Queries t0..<t0+t of head h from out[0..<t, 0..<ch16] into `output`.
    func store(_ h: Int, _ t0: Int, _ t: Int, from out: UnsafeMutablePointer<Float>) {
        let outBase = output.base + h * output.headStride + t0 * output.tokenStride
        if output.channelStride == 1 {
            for i in 0..<t { (outBase + i * output.tokenStride).update(from: out + i * ch16, count: c) }
        } else if output.tokenStride == 1 && KernelSettings.useAVX2 {
            // The UNet's channel-major output: 8 channel rows at a time written front to back (x 1: exact).
            for c0 in stride(from: 0, to: c, by: 8) {
                glide_transpose_scale_avx2(out + c0, ch16, Int32(t), Int32(min(8, c - c0)), 1,
                                           outBase + c0 * output.channelStride, output.channelStride)
            }
        } else {
            for ch in 0..<c {
                let row = outBase + ch * output.channelStride
                for i in 0..<t { row[i * output.tokenStride] = out[i * ch16 + ch] }
            }
        }
    }
    // Slice `block` of `blocks` of head h's channel-major sources: prefetched while the head before computes, so
    // its packing reads from cache.
    func prefetchSlice(_ h: Int, _ block: Int) {
        func rows(_ operand: AttentionOperand?, _ count: Int) {
            guard let operand, operand.tokenStride == 1, count > 0 else { return }
            glide_prefetch_rows(operand.base + h * operand.headStride, operand.channelStride, Int32(c),
                                count * block / blocks, count * (block + 1) / blocks)
        }
        rows(query, queryCount); rows(key, keyCount); rows(value, keyCount)
        if encoderCount > 0 { rows(encoderKey, encoderCount); rows(encoderValue, encoderCount) }
    }
    let scratchFloats = Int(glide_attn_bf16_scratch_floats(Int32(s)))
    let fusedProbe = KernelProfiler.begin("attention bf16 fused (with packing)", "\(queryCount)x\(c) . \(c)x\(s) . \(s)x\(c)",
                                          flops: 4 * Double(heads * c) * Double(queryCount) * Double(s))
    if heads >= 4 * KernelSettings.threadCount {
        // Enough heads for every thread: a head's packing, all its blocks and its output on one thread, through
        // buffers of one head that stay in that core's cache.
        parallelFor(heads) { h in
            let scratch = ScratchFrame(); defer { scratch.release() }
            let head = scratch.allocate(UInt32.self, count: headWords)
            let buffer = scratch.allocate(Float.self, count: queryRows * ch16 + scratchFloats)
            packHead(h, into: head)
            for block in 0..<blocks {
                if h + 1 < heads { prefetchSlice(h + 1, block) }
                runBlock(h, block, head: head, out: buffer + block * blockRows * ch16, scratch: buffer + queryRows * ch16)
            }
            store(h, 0, queryCount, from: buffer)
        }
    } else {
        // Few heads: pack them in parallel, then the (head, query block) items.
        let scratch = ScratchFrame(); defer { scratch.release() }
        let packed = scratch.allocate(UInt32.self, count: heads * headWords)
        parallelFor(heads) { h in packHead(h, into: packed + h * headWords) }
        parallelFor(heads * blocks) { item in
            let h = item / blocks, block = item % blocks, t0 = block * blockRows
            let scratch = ScratchFrame(); defer { scratch.release() }
            let buffer = scratch.allocate(Float.self, count: blockRows * ch16 + scratchFloats)
            runBlock(h, block, head: packed + h * headWords, out: buffer, scratch: buffer + blockRows * ch16)
            store(h, t0, min(blockRows, queryCount - t0), from: buffer)
        }
    }
    KernelProfiler.end(fusedProbe)
}

/// `dest[ch * rowStride + i] = src(head, tokens + i, ch) * scale` for `i < count`, `ch < channels`.
func gatherChannelMajor(_ src: AttentionOperand, head: Int, tokens: Int, count: Int, channels: Int, scale: Float,
                        into dest: UnsafeMutablePointer<Float>, rowStride: Int) {
    let base = src.base + head * src.headStride + tokens * src.tokenStride
    if src.tokenStride == 1 {
        for ch in 0..<channels {
            let x = base + ch * src.channelStride, y = dest + ch * rowStride
            for i in 0..<count { y[i] = x[i] * scale }
        }
    } else {
        for i in 0..<count {
            let x = base + i * src.tokenStride
            for ch in 0..<channels { dest[ch * rowStride + i] = x[ch * src.channelStride] * scale }
        }
    }
}

/// `dest[i * channels + ch] = src(head, tokens + i, ch) * scale` for `i < count`, `ch < channels`.
func gatherTokenMajor(_ src: AttentionOperand, head: Int, tokens: Int, count: Int, channels: Int, scale: Float,
                      into dest: UnsafeMutablePointer<Float>) {
    let base = src.base + head * src.headStride + tokens * src.tokenStride
    if src.channelStride == 1 {
        for i in 0..<count {
            let x = base + i * src.tokenStride, y = dest + i * channels
            for ch in 0..<channels { y[ch] = x[ch] * scale }
        }
    } else if src.tokenStride == 1 && KernelSettings.useAVX2 {
        // Channel-major source (the UNet's qkv): 8x8 register transposes, the same products.
        glide_transpose_scale_avx2(base, src.channelStride, Int32(channels), Int32(count), scale, dest, channels)
    } else {
        for ch in 0..<channels {
            let x = base + ch * src.channelStride
            for i in 0..<count { dest[i * channels + ch] = x[i * src.tokenStride] * scale }
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
