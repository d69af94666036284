// The UNet of glide_text2im.unet: ResBlock, AttentionBlock (with text keys/values), resampling, UNetModel.
#if canImport(Glibc)
import Glibc
#endif
import Kernels

// Port of glide_text2im.unet.ResBlock (dims 2, use_conv false, dropout inactive at inference).
struct ResBlock: @unchecked Sendable {
    enum Resample { case none, up, down }
    let inNorm: GroupNorm32          // in_layers.0, swish
    let inConv: Conv2d               // in_layers.2: [out, in, 3, 3]
    let embLinear: Linear            // emb_layers.1: [2*out or out, emb]
    let outNorm: GroupNorm32         // out_layers.0 (swish folded: SiLU is out_layers.1 or the norm's own)
    let outConv: Conv2d              // out_layers.3: [out, out, 3, 3]
    let skip: Conv2d?                // skip_connection: [out, in, 1, 1] when the width changes
    let resample: Resample
    let useScaleShiftNorm: Bool
    let outChannels: Int

    /// `embSilu` is `SiLU(emb)` `[batch, emb]`, shared by every block (emb_layers.0 is that SiLU).
    /// `consumesInput`: no one reads `x` afterwards, so the block may overwrite it (same result).
    func callAsFunction(_ x: Activation, embSilu: UnsafePointer<Float>, consumesInput: Bool = false) -> Activation {
        let batch = x.batch
        // A consumed input with a skip convolution: the skip first, then the norm in place (no second buffer of
        // x's size; the same values).
        let earlySkip = consumesInput && resample == .none ? skip.map { $0(x) } : nil
        var h = earlySkip != nil ? inNorm.inPlace(x) : inNorm(x)
        var xs = x
        switch resample {
        case .none: break
        case .up:
            h = upsampled(h)
            xs = upsampled(x)
        case .down:
            h = downsampled(h)
            xs = downsampled(x)
        }
        h = inConv(h)

        let embWidth = embLinear.outFeatures
        let embOut = UnsafeMutablePointer<Float>.allocate(capacity: batch * embWidth)
        defer { embOut.deallocate() }
        embLinear(embSilu, rows: batch, into: embOut)
        if useScaleShiftNorm {
            let scale = UnsafeMutablePointer<Float>.allocate(capacity: batch * outChannels)
            let shift = UnsafeMutablePointer<Float>.allocate(capacity: batch * outChannels)
            defer { scale.deallocate(); shift.deallocate() }
            for n in 0..<batch {
                (scale + n * outChannels).update(from: embOut + n * embWidth, count: outChannels)
                (shift + n * outChannels).update(from: embOut + n * embWidth + outChannels, count: outChannels)
            }
            h = outNorm.inPlace(h, scale: scale, shift: shift)
        } else {
            addChannelBias(h.pointer, bias: embOut, biasBatchStride: embWidth, h.pointer,
                           batch: batch, channels: outChannels, spatial: h.spatial)
            h = outNorm.inPlace(h)
        }
        let result: Activation
        if let earlySkip {
            result = earlySkip
        } else if let skip {
            result = skip(xs)
        } else if resample != .none || consumesInput {
            result = xs   // resampled here, or consumed: no one else reads it
        } else {
            result = Activation(shape: xs.shape)
            copyElements(xs.pointer, result.pointer, count: xs.count)
        }
        outConv.accumulate(h, into: result)
        return result
    }
}

func upsampled(_ x: Activation) -> Activation {
    let y = Activation(shape: [x.batch, x.channels, x.height * 2, x.width * 2])
    upsampleNearest2x(x.pointer, y.pointer, planes: x.batch * x.channels, height: x.height, width: x.width)
    return y
}

func downsampled(_ x: Activation) -> Activation {
    let y = Activation(shape: [x.batch, x.channels, x.height / 2, x.width / 2])
    avgPool2x2(x.pointer, y.pointer, planes: x.batch * x.channels, height: x.height, width: x.width)
    return y
}

// Port of glide_text2im.unet.Upsample with use_conv (nearest 2x, then a 3x3 conv).
struct Upsample: @unchecked Sendable {
    let conv: Conv2d                 // conv: [ch, ch, 3, 3]
    func callAsFunction(_ x: Activation) -> Activation { conv(upsampled(x)) }
}

// Port of glide_text2im.unet.Downsample with use_conv (3x3 conv, stride 2).
struct Downsample: @unchecked Sendable {
    let conv: Conv2d                 // op: [ch, ch, 3, 3], stride 2
    func callAsFunction(_ x: Activation) -> Activation { conv(x) }
}

// Port of glide_text2im.unet.AttentionBlock + QKVAttention: self-attention over positions with the text
// sequence prepended as extra keys/values (encoder_kv).
struct AttentionBlock: @unchecked Sendable {
    let norm: GroupNorm32            // norm (no swish)
    let qkv: Linear                  // qkv: [3*ch, ch, 1]
    let encoderKV: Linear?           // encoder_kv: [2*ch, xf_width, 1]
    let projOut: Linear              // proj_out: [ch, ch, 1]
    let channels: Int
    let heads: Int
    /// bf16 products for models stored in a narrower type than f32 (their weights already carry more error
    /// than bf16 rounding of the attention operands adds); f32 models keep f32 attention.
    var attentionPrecision: AttentionPrecision { qkv.weight.elements.kind == .f32 ? .f32 : .bf16Products }

    /// The encoder keys/values of this block for a text sequence `xfOut` `[batch, length, xf_width]`
    /// (token-major): `[batch, 2*ch, length]`. Depends only on the text, so computed once per sample.
    func encoderKeysValues(_ xfOut: Activation) -> Activation? {
        guard let encoderKV else { return nil }
        let batch = xfOut.shape[0], length = xfOut.shape[1], width = xfOut.shape[2]
        let kv = Activation(shape: [batch, 2 * channels, length])
        for n in 0..<batch {
            encoderKV.channels(MatrixOperand(xfOut.pointer + n * length * width, rowStride: 1, colStride: width),
                               length: length, into: kv.pointer + n * 2 * channels * length)
        }
        return kv
    }

    /// `consumesInput`: no one reads `x` afterwards, so the residual sum may be written into it (same result).
    func callAsFunction(_ x: Activation, encoderKV kv: Activation?, consumesInput: Bool = false) -> Activation {
        let batch = x.batch, t = x.spatial, c = channels
        let normed = norm(x)
        let qkvOut = Activation(shape: [batch, 3 * c, t])
        for n in 0..<batch {
            qkv.channels(MatrixOperand(normed.pointer + n * c * t, rowStride: t), length: t,
                         into: qkvOut.pointer + n * 3 * c * t)
        }
        let ch = c / heads
        let scale = Float(1 / (Double(ch).squareRoot()).squareRoot())
        let attended = Activation(shape: [batch, c, t])
        let length = kv?.shape[2] ?? 0
        // QKVAttention: qkv reshaped [heads, 3*ch, T] and split into q, k, v; encoder_kv reshaped
        // [heads, 2*ch, L] and split into ek, ev, which come first along the key axis. The batch items are laid
        // out like further heads (item n, head h is head n*heads + h), so one call runs them all in parallel.
        let base = UnsafePointer(qkvOut.pointer)
        let q = AttentionOperand(base, headStride: 3 * ch * t, tokenStride: 1, channelStride: t)
        let k = AttentionOperand(base + ch * t, headStride: 3 * ch * t, tokenStride: 1, channelStride: t)
        let v = AttentionOperand(base + 2 * ch * t, headStride: 3 * ch * t, tokenStride: 1, channelStride: t)
        let encoder = kv.map { UnsafePointer($0.pointer) }
        let ek = encoder.map { AttentionOperand($0, headStride: 2 * ch * length, tokenStride: 1, channelStride: length) }
        let ev = encoder.map { AttentionOperand($0 + ch * length, headStride: 2 * ch * length, tokenStride: 1,
                                                channelStride: length) }
        attention(heads: batch * heads, headDim: ch, queryCount: t, keyCount: t, query: q, key: k, value: v,
                  encoderCount: length, encoderKey: ek, encoderValue: ev, qkScale: scale,
                  output: AttentionOutput(attended.pointer, headStride: ch * t, tokenStride: 1, channelStride: t),
                  precision: attentionPrecision)
        let result: Activation
        if consumesInput {
            result = x
        } else {
            result = Activation(shape: x.shape)
            copyElements(x.pointer, result.pointer, count: x.count)
        }
        for n in 0..<batch {
            projOut.channels(MatrixOperand(attended.pointer + n * c * t, rowStride: t), length: t,
                             into: result.pointer + n * c * t, accumulate: true)
        }
        return result
    }
}

// Port of glide_text2im.unet.TimestepEmbedSequential: one entry of input_blocks / middle_block / output_blocks.
struct UNetStage: @unchecked Sendable {
    enum Layer {
        case conv(Conv2d)
        case res(ResBlock)
        case attention(AttentionBlock, index: Int)   // index into the per-sample encoder keys/values
        case up(Upsample)
        case down(Downsample)
    }
    let layers: [Layer]

    /// `consumesInput`: no one reads `x` afterwards (a concatenation made for this stage). Every later layer's input
    /// is the previous layer's output, which only this stage holds.
    func callAsFunction(_ x: Activation, embSilu: UnsafePointer<Float>, encoderKV: [Activation?],
                        consumesInput: Bool = false) -> Activation {
        var h = x
        for (i, layer) in layers.enumerated() {
            let consumes = i > 0 || consumesInput
            switch layer {
            case .conv(let conv): h = conv(h)
            case .res(let block): h = block(h, embSilu: embSilu, consumesInput: consumes)
            case .attention(let block, let index):
                h = block(h, encoderKV: encoderKV.isEmpty ? nil : encoderKV[index], consumesInput: consumes)
            case .up(let up): h = up(h)
            case .down(let down): h = down(h)
            }
        }
        return h
    }
}

// Port of glide_text2im.unet.UNetModel's body: time_embed, input_blocks, middle_block, output_blocks, out.
struct UNetBody: @unchecked Sendable {
    let modelChannels: Int
    let timeEmbed0: Linear           // time_embed.0: [4*mc, mc]
    let timeEmbed2: Linear           // time_embed.2: [4*mc, 4*mc]
    let inputBlocks: [UNetStage]
    let middleBlock: UNetStage
    let outputBlocks: [UNetStage]
    let outNorm: GroupNorm32         // out.0, swish
    let outConv: Conv2d              // out.2: [6, input_ch, 3, 3]
    let attentionBlocks: [AttentionBlock]  // every attention block, in `index` order

    /// `time_embed(timestep_embedding(t))`: `[batch, 4*mc]`.
    func timeEmbedding(_ timesteps: [Float]) -> [Float] {
        let batch = timesteps.count, mc = modelChannels, e = timeEmbed0.outFeatures
        var sinusoid = [Float](repeating: 0, count: batch * mc)
        var hidden = [Float](repeating: 0, count: batch * e)
        var emb = [Float](repeating: 0, count: batch * e)
        timesteps.withUnsafeBufferPointer { t in
            sinusoid.withUnsafeMutableBufferPointer {
                timestepEmbedding(t.baseAddress!, count: batch, dim: mc, output: $0.baseAddress!)
            }
        }
        sinusoid.withUnsafeBufferPointer { s in
            hidden.withUnsafeMutableBufferPointer { timeEmbed0(s.baseAddress!, rows: batch, into: $0.baseAddress!) }
        }
        hidden.withUnsafeMutableBufferPointer { silu($0.baseAddress!, $0.baseAddress!, count: batch * e) }
        hidden.withUnsafeBufferPointer { hb in
            emb.withUnsafeMutableBufferPointer { timeEmbed2(hb.baseAddress!, rows: batch, into: $0.baseAddress!) }
        }
        return emb
    }

    /// The UNet from the (already concatenated) input, given `emb` `[batch, 4*mc]` and the per-sample
    /// encoder keys/values (empty without text). `observe` sees every stage's output (for tests).
    func callAsFunction(_ x: Activation, emb: [Float], encoderKV: [Activation?],
                        observe: ((String, Activation) -> Void)? = nil) -> Activation {
        var embSilu = emb
        embSilu.withUnsafeMutableBufferPointer { silu($0.baseAddress!, $0.baseAddress!, count: $0.count) }
        return embSilu.withUnsafeBufferPointer { es -> Activation in
            let e = es.baseAddress!
            var skips: [Activation] = []
            var h = x
            for (i, stage) in inputBlocks.enumerated() {
                h = stage(h, embSilu: e, encoderKV: encoderKV)
                observe?("input_block\(i)", h)
                skips.append(h)
            }
            h = middleBlock(h, embSilu: e, encoderKV: encoderKV)
            observe?("middle_block", h)
            for (i, stage) in outputBlocks.enumerated() {
                h = stage(concatChannels(h, skips.removeLast()), embSilu: e, encoderKV: encoderKV, consumesInput: true)
                observe?("output_block\(i)", h)
            }
            return outConv(outNorm.inPlace(h))
        }
    }
}

/// `th.cat([a, b], dim=1)` for NCHW activations with equal batch and spatial size.
func concatChannels(_ a: Activation, _ b: Activation) -> Activation {
    precondition(a.batch == b.batch && a.spatial == b.spatial)
    var shape = a.shape
    shape[1] = a.channels + b.channels
    let y = Activation(shape: shape)
    Kernels.concatChannels(a.pointer, channels: a.channels, b.pointer, channels: b.channels, into: y.pointer,
                           batch: a.batch, spatial: a.spatial)
    return y
}
