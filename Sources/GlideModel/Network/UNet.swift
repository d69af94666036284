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

    /// The result's shape for input `x`.
    func outputShape(for x: Activation) -> [Int] {
        switch resample {
        case .none: return [x.batch, outChannels, x.height, x.width]
        case .up: return [x.batch, outChannels, x.height * 2, x.width * 2]
        case .down: return [x.batch, outChannels, x.height / 2, x.width / 2]
        }
    }

    /// `embSilu` is `SiLU(emb)` `[batch, emb]`, shared by every block (emb_layers.0 is that SiLU).
    /// `consumesInput`: no one reads `x` afterwards, so the block may overwrite it (same result).
    /// `output`: where to write the result (shape `outputShape(for: x)`), or nil for a new buffer.
    func callAsFunction(_ x: Activation, embSilu: UnsafePointer<Float>, consumesInput: Bool = false,
                        output: Activation? = nil) -> Activation {
        let batch = x.batch
        // The skip convolution into `output` or a new buffer.
        func skipped(_ skip: Conv2d, _ input: Activation) -> Activation {
            guard let output else { return skip(input) }
            skip(input, into: output)
            return output
        }
        // A consumed input with a skip convolution: the skip first, then the norm in place (no second buffer of
        // x's size; the same values).
        let earlySkip = consumesInput && resample == .none ? skip.map { skipped($0, x) } : nil
        // The identity skip path when `x` must stay intact: x copied into the result buffer by the norm's
        // statistics pass (no separate pass over x).
        let copiedInput = skip == nil && resample == .none && (!consumesInput || output != nil)
            ? output ?? Activation(shape: x.shape) : nil
        // Without resampling the norm can fold into the convolution's input where it applies it natively
        // (statistics only; x stays intact): no normalized tensor is written.
        var h: Activation
        var xs = x
        if resample == .none && inConv.fusesPreActivation(for: x) {
            let folded = inNorm.folded(x, inputCopy: copiedInput)
            h = inConv(x, preActivation: folded.preActivation)
            folded.deallocate()
        } else {
            h = earlySkip != nil ? inNorm.inPlace(x) : inNorm(x, inputCopy: copiedInput)
            // The resampled input, needed only by the skip path (a skip convolution or the identity).
            switch resample {
            case .none: break
            case .up:
                h = upsampled(h)
                if skip != nil || output == nil { xs = upsampled(x) }
            case .down:
                h = downsampled(h)
                if skip != nil || output == nil { xs = downsampled(x) }
            }
            h = inConv(h)
        }

        // out_layers' norm folded into outConv's input (where it applies it natively), else applied in place.
        var outFolded: FoldedGroupNorm? = nil
        defer { outFolded?.deallocate() }
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
            if outConv.fusesPreActivation(for: h) {
                outFolded = outNorm.folded(h, scale: scale, shift: shift)
            } else {
                h = outNorm.inPlace(h, scale: scale, shift: shift)
            }
        } else {
            addChannelBias(h.pointer, bias: embOut, biasBatchStride: embWidth, h.pointer,
                           batch: batch, channels: outChannels, spatial: h.spatial)
            h = outNorm.inPlace(h)
        }
        let result: Activation
        if let earlySkip {
            result = earlySkip
        } else if let skip {
            result = skipped(skip, xs)
        } else if let copiedInput {
            result = copiedInput
        } else if let output {
            // The identity skip, resampled straight into `output`.
            switch resample {
            case .none: preconditionFailure("copied by the norm")
            case .up: upsampleNearest2x(x.pointer, output.pointer, planes: x.batch * x.channels, height: x.height,
                                        width: x.width)
            case .down: avgPool2x2(x.pointer, output.pointer, planes: x.batch * x.channels, height: x.height,
                                   width: x.width)
            }
            result = output
        } else {
            result = xs   // resampled here, or consumed: no one else reads it
        }
        outConv.accumulate(h, into: result, preActivation: outFolded?.preActivation)
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
    func callAsFunction(_ x: Activation, output: Activation? = nil) -> Activation {
        let y = upsampled(x)
        guard let output else { return conv(y) }
        conv(y, into: output)
        return output
    }
}

// Port of glide_text2im.unet.Downsample with use_conv (3x3 conv, stride 2).
struct Downsample: @unchecked Sendable {
    let conv: Conv2d                 // op: [ch, ch, 3, 3], stride 2
    func callAsFunction(_ x: Activation, output: Activation? = nil) -> Activation {
        guard let output else { return conv(x) }
        conv(x, into: output)
        return output
    }
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
    /// `output`: where to write the result (x's shape), or nil.
    func callAsFunction(_ x: Activation, encoderKV kv: Activation?, consumesInput: Bool = false,
                        output: Activation? = nil) -> Activation {
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
        if let output {
            result = output
            copyElements(x.pointer, result.pointer, count: x.count)
        } else if consumesInput {
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
    /// `output`: given the stage's output shape, a buffer to write it into (or nil for a new one).
    func callAsFunction(_ x: Activation, embSilu: UnsafePointer<Float>, encoderKV: [Activation?],
                        consumesInput: Bool = false, output: (([Int]) -> Activation?)? = nil) -> Activation {
        var h = x
        for (i, layer) in layers.enumerated() {
            let consumes = i > 0 || consumesInput
            let last = i == layers.count - 1
            switch layer {
            case .conv(let conv):
                if last, let into = output?(conv.outputShape(for: h)) {
                    conv(h, into: into)
                    h = into
                } else {
                    h = conv(h)
                }
            case .res(let block):
                let into = last ? output?(block.outputShape(for: h)) : nil
                h = block(h, embSilu: embSilu, consumesInput: consumes, output: into)
            case .attention(let block, let index):
                let into = last ? output?(h.shape) : nil
                h = block(h, encoderKV: encoderKV.isEmpty ? nil : encoderKV[index], consumesInput: consumes,
                          output: into)
            case .up(let up):
                h = up(h, output: last ? output?([h.batch, h.channels, h.height * 2, h.width * 2]) : nil)
            case .down(let down):
                h = down(h, output: last ? output?(down.conv.outputShape(for: h)) : nil)
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

    /// Batch-1 output blocks read their input concatenation in place (`ConcatBuffers`); false: copied (tests).
    nonisolated(unsafe) static var joinsInPlace = true

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
            // Batch 1: output block j's input th.cat([h, skip]) is one buffer whose planes are written in place,
            // the skip by input block count-1-j and h by the stage before output block j (no concatenation copy).
            let buffers = ConcatBuffers(batch: UNetBody.joinsInPlace ? x.batch : 0, outputBlocks: outputBlocks,
                                        inputBlockCount: inputBlocks.count)
            var skips: [Activation] = []
            var h = x
            for (i, stage) in inputBlocks.enumerated() {
                h = stage(h, embSilu: e, encoderKV: encoderKV, output: { buffers.skip(ofInputBlock: i, shape: $0) })
                observe?("input_block\(i)", h)
                skips.append(h)
            }
            h = middleBlock(h, embSilu: e, encoderKV: encoderKV, output: { buffers.head(ofOutputBlock: 0, shape: $0) })
            observe?("middle_block", h)
            for (i, stage) in outputBlocks.enumerated() {
                let skip = skips.removeLast()
                let input = buffers.joined(ofOutputBlock: i, head: h, skip: skip) ?? concatChannels(h, skip)
                h = stage(input, embSilu: e, encoderKV: encoderKV, consumesInput: true,
                          output: { buffers.head(ofOutputBlock: i + 1, shape: $0) })
                observe?("output_block\(i)", h)
            }
            if outConv.fusesPreActivation(for: h) {
                let folded = outNorm.folded(h)
                defer { folded.deallocate() }
                return outConv(h, preActivation: folded.preActivation)
            }
            return outConv(outNorm.inPlace(h))
        }
    }
}

/// The concatenated inputs of the output blocks for batch 1, allocated when their skip part is produced: output
/// block j reads `[head (channels of the stage before it), skip (input block count-1-j's output)]`, both written
/// in place through views. Each buffer lives from its skip's production to its output block (the head part's
/// size longer than before: peak RSS of the int8 upsampler step 0.87 -> 0.93 GiB), and no copy is made.
final class ConcatBuffers {
    private let totalChannels: [Int?]     // per output block: its input width when its first layer is a ResBlock
    private let inputBlockCount: Int
    private var buffers: [Activation?]
    private var skipChannels: [Int]

    init(batch: Int, outputBlocks: [UNetStage], inputBlockCount: Int) {
        self.inputBlockCount = inputBlockCount
        totalChannels = outputBlocks.map { stage in
            guard batch == 1, outputBlocks.count == inputBlockCount, case .res(let block)? = stage.layers.first
            else { return nil }
            return block.inNorm.channels
        }
        buffers = Array(repeating: nil, count: outputBlocks.count)
        skipChannels = Array(repeating: 0, count: outputBlocks.count)
    }

    /// Input block `i`'s output `shape` as the tail planes of output block count-1-i's input, or nil.
    func skip(ofInputBlock i: Int, shape: [Int]) -> Activation? {
        let j = inputBlockCount - 1 - i
        guard j >= 0, j < buffers.count, let total = totalChannels[j], shape.count == 4, shape[0] == 1,
              shape[1] < total else { return nil }
        let joined = Activation(shape: [1, total, shape[2], shape[3]])
        buffers[j] = joined
        skipChannels[j] = shape[1]
        return Activation(viewing: joined, offset: (total - shape[1]) * shape[2] * shape[3], shape: shape)
    }

    /// The head planes (`shape`) of output block `j`'s input, when its skip part was placed there.
    func head(ofOutputBlock j: Int, shape: [Int]) -> Activation? {
        guard j < buffers.count, let joined = buffers[j], shape.count == 4, shape[0] == 1,
              shape[2] == joined.height, shape[3] == joined.width,
              shape[1] == joined.channels - skipChannels[j] else { return nil }
        return Activation(viewing: joined, offset: 0, shape: shape)
    }

    /// Output block `j`'s whole input when `head` and `skip` were written into its buffer, else nil. Releases
    /// the buffer (the block consumes it).
    func joined(ofOutputBlock j: Int, head: Activation, skip: Activation) -> Activation? {
        guard let joined = buffers[j] else { return nil }
        buffers[j] = nil
        let spatial = joined.height * joined.width
        guard head.pointer == joined.pointer, head.channels + skip.channels == joined.channels,
              skip.pointer == joined.pointer + head.channels * spatial else { return nil }
        return joined
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
