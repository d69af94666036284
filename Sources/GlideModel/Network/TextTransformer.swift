// The text encoder of glide_text2im.text2im_model.Text2ImUNet.get_text_emb and glide_text2im.xf.Transformer.
#if canImport(Glibc)
import Glibc
#endif
import Kernels

// Port of glide_text2im.xf.ResidualAttentionBlock (MultiheadAttention + MLP, pre-LayerNorm, not causal).
struct ResidualAttentionBlock: @unchecked Sendable {
    let ln1: LayerNorm               // ln_1
    let qkv: Linear                  // attn.c_qkv: [3*width, width]
    let attnProj: Linear             // attn.c_proj: [width, width]
    let ln2: LayerNorm               // ln_2
    let fc: Linear                   // mlp.c_fc: [4*width, width]
    let mlpProj: Linear              // mlp.c_proj: [width, 4*width]
    let heads: Int

    /// In place on `x` `[batch, length, width]`.
    func callAsFunction(_ x: Activation) {
        let batch = x.shape[0], length = x.shape[1], width = x.shape[2], rows = batch * length
        let normed = Activation(shape: x.shape)
        ln1(x.pointer, rows: rows, into: normed.pointer)
        let qkvOut = Activation(shape: [batch, length, 3 * width])
        qkv(normed.pointer, rows: rows, into: qkvOut.pointer)
        // QKVMultiheadAttention: qkv viewed [batch, length, heads, 3*ch], split into q, k, v on the last axis.
        let ch = width / heads
        let scale = Float(1 / (Double(ch).squareRoot()).squareRoot())
        let attended = Activation(shape: x.shape)
        for n in 0..<batch {
            let base = UnsafePointer(qkvOut.pointer + n * length * 3 * width)
            let q = AttentionOperand(base, headStride: 3 * ch, tokenStride: 3 * width, channelStride: 1)
            let k = AttentionOperand(base + ch, headStride: 3 * ch, tokenStride: 3 * width, channelStride: 1)
            let v = AttentionOperand(base + 2 * ch, headStride: 3 * ch, tokenStride: 3 * width, channelStride: 1)
            let out = AttentionOutput(attended.pointer + n * length * width, headStride: ch, tokenStride: width,
                                      channelStride: 1)
            attention(heads: heads, headDim: ch, queryCount: length, keyCount: length, query: q, key: k, value: v,
                      qkScale: scale, output: out)
        }
        attnProj(attended.pointer, rows: rows, into: x.pointer, accumulate: true)

        ln2(x.pointer, rows: rows, into: normed.pointer)
        let hidden = Activation(shape: [batch, length, fc.outFeatures])
        fc(normed.pointer, rows: rows, into: hidden.pointer)
        gelu(hidden.pointer, hidden.pointer, count: hidden.count)
        mlpProj(hidden.pointer, rows: rows, into: x.pointer, accumulate: true)
    }
}

/// What the UNet needs from the text for one batch of prompts; computed once per sample, reused at every
/// diffusion step (the reference recomputes it unless `cache_text_emb`).
public struct TextConditioning: @unchecked Sendable {
    /// Rows (prompts) this conditioning was computed for.
    public let batch: Int
    /// `transformer_proj(xf_out[:, -1])`: `[batch, 4 * num_channels]`, added to the timestep embedding.
    public let xfProj: [Float]
    /// The transformer output, token-major `[batch, text_ctx, xf_width]` (the reference permutes it to NCL).
    let xfOut: Activation
    /// Every attention block's `encoder_kv(xf_out)`, `[batch, 2*ch, text_ctx]`, in block order.
    let encoderKV: [Activation?]

    /// `xf_out` as the reference returns it: `[batch, xf_width, text_ctx]` (NCL).
    public var xfOutNCL: FloatTensor {
        let b = xfOut.shape[0], l = xfOut.shape[1], w = xfOut.shape[2]
        var values = [Float](repeating: 0, count: b * l * w)
        for n in 0..<b { for t in 0..<l { for c in 0..<w { values[(n * w + c) * l + t] = xfOut.pointer[(n * l + t) * w + c] } } }
        return FloatTensor(shape: [b, w, l], values: values)
    }

    /// Rows `rows` of this conditioning (e.g. to drop the unconditional half).
    public func selecting(rows: [Int]) -> TextConditioning {
        func pick(_ a: Activation) -> Activation {
            let per = a.count / a.shape[0]
            var shape = a.shape
            shape[0] = rows.count
            let y = Activation(shape: shape)
            for (i, r) in rows.enumerated() { (y.pointer + i * per).update(from: a.pointer + r * per, count: per) }
            return y
        }
        let width = xfProj.count / batch
        var proj: [Float] = []
        for r in rows { proj += xfProj[(r * width)..<((r + 1) * width)] }
        return TextConditioning(batch: rows.count, xfProj: proj, xfOut: pick(xfOut),
                                encoderKV: encoderKV.map { $0.map(pick) })
    }
}

// Port of the text half of glide_text2im.text2im_model.Text2ImUNet: token/positional/padding embeddings,
// xf.Transformer, final_ln, transformer_proj of the last position.
struct TextEncoder: @unchecked Sendable {
    let tokenEmbedding: WeightMatrix         // token_embedding.weight: [n_vocab, width]
    let positionalEmbedding: UnsafePointer<Float>   // positional_embedding: [text_ctx, width]
    let paddingEmbedding: UnsafePointer<Float>?     // padding_embedding: [text_ctx, width] (xf_padding)
    let blocks: [ResidualAttentionBlock]     // transformer.resblocks.*
    let finalLN: LayerNorm?                  // final_ln (xf_final_ln)
    let projection: Linear                   // transformer_proj: [4*mc, width]
    let textCtx: Int
    let width: Int

    var vocabularySize: Int { tokenEmbedding.rows }

    /// Returns `xf_out` token-major `[batch, text_ctx, width]` and `xf_proj` `[batch, 4*mc]`.
    /// `tokens`/`mask` are `[batch, text_ctx]` row-major; tokens must be in `0..<n_vocab`.
    func callAsFunction(tokens: [Int], mask: [Bool]?, batch: Int) -> (Activation, [Float]) {
        let x = Activation(shape: [batch, textCtx, width])
        for n in 0..<batch {
            for t in 0..<textCtx {
                let row = x.pointer + (n * textCtx + t) * width
                if let paddingEmbedding, let mask, !mask[n * textCtx + t] {
                    row.update(from: paddingEmbedding + t * width, count: width)
                } else {
                    let token = tokens[n * textCtx + t]
                    let pos = positionalEmbedding + t * width
                    tokenRow(token, into: row)
                    for c in 0..<width { row[c] += pos[c] }
                }
            }
        }
        for block in blocks { block(x) }
        if let finalLN { finalLN(x.pointer, rows: batch * textCtx, into: x.pointer) }
        let last = UnsafeMutablePointer<Float>.allocate(capacity: batch * width)
        defer { last.deallocate() }
        for n in 0..<batch { (last + n * width).update(from: x.pointer + (n * textCtx + textCtx - 1) * width, count: width) }
        var proj = [Float](repeating: 0, count: batch * projection.outFeatures)
        proj.withUnsafeMutableBufferPointer { projection(last, rows: batch, into: $0.baseAddress!) }
        return (x, proj)
    }

    private func tokenRow(_ token: Int, into row: UnsafeMutablePointer<Float>) {
        switch tokenEmbedding.elements {
        case .f32(let p): row.update(from: p + token * tokenEmbedding.rowStride, count: width)
        case .f16(let p): convertF16ToF32(p + token * tokenEmbedding.rowStride, row, count: width)
        default: for c in 0..<width { row[c] = tokenEmbedding.value(token, c) }
        }
    }
}
