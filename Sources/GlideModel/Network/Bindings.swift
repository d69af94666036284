// The binding table: binds checkpoint tensors by the names GlideSpec spells (UNetTensorNames). It walks the architecture in the
// order glide_text2im.unet.UNetModel.__init__ and Text2ImUNet.__init__ build it, binds every tensor by name
// (checking presence, shape and dtype), and finally rejects any tensor the architecture has no place for.
import Kernels
import GlideSpec
import WeightFormat

/// Checkpoint names (shared with the converter).
private typealias N = UNetTensorNames

/// Hands out typed views of a weight file's tensors by checkpoint name and remembers which were used.
struct WeightBinder {
    let file: WeightFile
    let arena: VectorArena
    /// The caches of the int8 matrices' packed GEMM panels (released with the model, or by its
    /// `releaseResidentMemory`).
    let packedWeights: PackedWeightGroup
    /// The cache of the int8 matrices' transformed Winograd panels (nil: none; released like `packedWeights`).
    let winogradWeights: WinogradWeightCache?
    private(set) var bound: Set<String> = []

    init(file: WeightFile, arena: VectorArena, packedWeights: PackedWeightGroup = PackedWeightGroup(),
         winogradWeights: WinogradWeightCache? = nil) {
        self.file = file
        self.arena = arena
        self.packedWeights = packedWeights
        self.winogradWeights = winogradWeights
    }

    mutating func tensor(_ name: String, shape: [Int]) throws -> WeightTensor {
        guard let t = file.tensor(name) else { throw GlideModelError.missingTensor(name: name, expectedShape: shape) }
        guard t.shape == shape else {
            throw GlideModelError.tensorShapeMismatch(name: name, expected: shape, actual: t.shape)
        }
        bound.insert(name)
        return t
    }

    /// A weight matrix `[shape[0], product(rest)]` in any float dtype (f32, f16, bf16, int8 + scales).
    mutating func matrix(_ name: String, shape: [Int]) throws -> WeightMatrix {
        let t = try tensor(name, shape: shape)
        let rows = shape[0], cols = shape.dropFirst().reduce(1, *)
        switch t.dtype {
        case .f32: return WeightMatrix(rows: rows, cols: cols, elements: .f32(t.data.baseAddress!.assumingMemoryBound(to: Float.self)))
        case .f16: return WeightMatrix(rows: rows, cols: cols, elements: .f16(t.data.baseAddress!.assumingMemoryBound(to: UInt16.self)))
        case .bf16: return WeightMatrix(rows: rows, cols: cols, elements: .bf16(t.data.baseAddress!.assumingMemoryBound(to: UInt16.self)))
        case .int8:
            guard let scales = t.scales?.baseAddress else {
                throw GlideModelError.unsupportedTensorDType(name: name, expected: "int8 with per-row scales", actual: "int8 without scales")
            }
            var m = WeightMatrix(rows: rows, cols: cols,
                                 elements: .int8(t.data.baseAddress!.assumingMemoryBound(to: Int8.self), scales: scales))
            // The file's per-tensor activation precision (glw-policy-2); files without one keep the kernels' default.
            m.int8ActivationMax = file.int8ActivationBits[name].map { $0 == 8 ? 127 : 32767 }
            // Packed once at first use; the file's pages of the tensor are released then (read-only mapping).
            m.packed = packedWeights.makeCache(releasesSource: true)
            m.winogradPanels = winogradWeights
            return m
        case .i64, .bool:
            throw GlideModelError.unsupportedTensorDType(name: name, expected: "f32, f16, bf16 or int8", actual: t.dtype.description)
        }
    }

    /// A float tensor of any float dtype copied to f32 (vectors, small embeddings), kept in the arena.
    mutating func floats(_ name: String, shape: [Int]) throws -> UnsafePointer<Float> {
        let t = try tensor(name, shape: shape)
        let count = shape.reduce(1, *)
        let raw = t.data.baseAddress!
        switch t.dtype {
        case .f32:
            return arena.store(count: count) { $0.update(from: raw.assumingMemoryBound(to: Float.self), count: count) }
        case .f16:
            return arena.store(count: count) { convertF16ToF32(raw.assumingMemoryBound(to: UInt16.self), $0, count: count) }
        case .bf16:
            let bits = raw.assumingMemoryBound(to: UInt16.self)
            return arena.store(count: count) { out in for i in 0..<count { out[i] = bf16ToF32(bits[i]) } }
        case .int8:
            guard let scales = t.scales?.baseAddress, let rows = shape.first, rows > 0 else {
                throw GlideModelError.unsupportedTensorDType(name: name, expected: "int8 with per-row scales", actual: "int8 without scales")
            }
            let q = raw.assumingMemoryBound(to: Int8.self), perRow = count / rows
            return arena.store(count: count) { out in for i in 0..<count { out[i] = Float(q[i]) * scales[i / perRow] } }
        case .i64, .bool:
            throw GlideModelError.unsupportedTensorDType(name: name, expected: "f32, f16, bf16 or int8", actual: t.dtype.description)
        }
    }

    /// Every tensor of the file must have been bound (embedded files are not tensors).
    func rejectUnbound() throws {
        for name in file.tensorNames where !bound.contains(name) && !name.hasPrefix("tokenizer/") {
            throw GlideModelError.unexpectedTensor(name: name, shape: file.tensor(name)?.shape ?? [])
        }
    }

    // MARK: layers by prefix

    mutating func linear(_ prefix: String, out: Int, in inFeatures: Int, conv1d: Bool = false) throws -> Linear {
        Linear(weight: try matrix("\(prefix).weight", shape: conv1d ? [out, inFeatures, 1] : [out, inFeatures]),
               bias: try floats("\(prefix).bias", shape: [out]))
    }

    mutating func conv(_ prefix: String, out: Int, in inChannels: Int, kernel: Int, stride: Int = 1) throws -> Conv2d {
        Conv2d(weight: try matrix("\(prefix).weight", shape: [out, inChannels, kernel, kernel]),
               bias: try floats("\(prefix).bias", shape: [out]),
               inChannels: inChannels, outChannels: out, kernelSize: kernel, stride: stride, padding: kernel / 2)
    }

    mutating func groupNorm(_ prefix: String, channels: Int, swish: Bool) throws -> GroupNorm32 {
        GroupNorm32(gamma: try floats("\(prefix).weight", shape: [channels]),
                    beta: try floats("\(prefix).bias", shape: [channels]), channels: channels, swish: swish)
    }

    mutating func layerNorm(_ prefix: String, width: Int) throws -> LayerNorm {
        LayerNorm(gamma: try floats("\(prefix).weight", shape: [width]),
                  beta: try floats("\(prefix).bias", shape: [width]), width: width)
    }
}

/// Builds the layers of a Text2ImUNet (any variant) from a weight file, by the reference's names.
struct NetworkBindings {
    var binder: WeightBinder
    let options: ModelOptions
    private var attentionBlocks: [AttentionBlock] = []

    init(file: WeightFile, arena: VectorArena, options: ModelOptions, packedWeights: PackedWeightGroup,
         winogradWeights: WinogradWeightCache? = nil) {
        binder = WeightBinder(file: file, arena: arena, packedWeights: packedWeights, winogradWeights: winogradWeights)
        self.options = options
    }

    /// Binds everything, then rejects unbound tensors.
    mutating func build() throws -> (TextEncoder?, UNetBody) {
        let text = options.xfWidth > 0 ? try textEncoder() : nil
        let unet = try unetBody()
        try binder.rejectUnbound()
        return (text, unet)
    }

    // MARK: text transformer (Text2ImUNet.__init__, xf.Transformer)

    private mutating func textEncoder() throws -> TextEncoder {
        let w = options.xfWidth, ctx = options.textCtx
        let tokenName = N.weight(N.tokenEmbedding)
        guard let vocab = binder.file.tensor(tokenName)?.shape.first else {
            throw GlideModelError.missingTensor(name: tokenName, expectedShape: [-1, w])
        }
        if case .int(let stated)? = binder.file.hyperparameters["n_vocab"], stated != vocab {
            throw GlideModelError.tensorShapeMismatch(name: tokenName, expected: [stated, w],
                                                   actual: binder.file.tensor(tokenName)!.shape)
        }
        var blocks: [ResidualAttentionBlock] = []
        for i in 0..<options.xfLayers {
            let p = N.transformerBlock(i)
            blocks.append(ResidualAttentionBlock(
                ln1: try binder.layerNorm("\(p).ln_1", width: w),
                qkv: try binder.linear("\(p).attn.c_qkv", out: 3 * w, in: w),
                attnProj: try binder.linear("\(p).attn.c_proj", out: w, in: w),
                ln2: try binder.layerNorm("\(p).ln_2", width: w),
                fc: try binder.linear("\(p).mlp.c_fc", out: 4 * w, in: w),
                mlpProj: try binder.linear("\(p).mlp.c_proj", out: w, in: 4 * w),
                heads: options.xfHeads))
        }
        let finalLN = options.xfFinalLN ? try binder.layerNorm(N.finalLN, width: w) : nil
        let tokenEmbedding = try binder.matrix(tokenName, shape: [vocab, w])
        let positional = try binder.floats(N.positionalEmbedding, shape: [ctx, w])
        let padding = options.xfPadding ? try binder.floats(N.paddingEmbedding, shape: [ctx, w]) : nil
        let projection = try binder.linear(N.transformerProj, out: options.timeEmbedDim, in: w)
        return TextEncoder(tokenEmbedding: tokenEmbedding, positionalEmbedding: positional, paddingEmbedding: padding,
                           blocks: blocks, finalLN: finalLN, projection: projection, textCtx: ctx, width: w)
    }

    // MARK: UNet (UNetModel.__init__)

    private mutating func resBlock(_ p: String, in ch: Int, out: Int, resample: ResBlock.Resample = .none) throws -> ResBlock {
        let o = options
        let embOut = o.useScaleShiftNorm ? 2 * out : out
        return ResBlock(
            inNorm: try binder.groupNorm("\(p).\(N.ResBlock.inNorm)", channels: ch, swish: true),
            inConv: try binder.conv("\(p).\(N.ResBlock.inConv)", out: out, in: ch, kernel: 3),
            embLinear: try binder.linear("\(p).\(N.ResBlock.embLinear)", out: embOut, in: o.timeEmbedDim),
            outNorm: try binder.groupNorm("\(p).\(N.ResBlock.outNorm)", channels: out, swish: true),
            outConv: try binder.conv("\(p).\(N.ResBlock.outConv)", out: out, in: out, kernel: 3),
            skip: out == ch ? nil : try binder.conv("\(p).\(N.ResBlock.skip)", out: out, in: ch, kernel: 1),
            resample: resample, useScaleShiftNorm: o.useScaleShiftNorm, outChannels: out)
    }

    private mutating func attentionBlock(_ p: String, channels ch: Int, numHeads: Int) throws -> UNetStage.Layer {
        let heads = options.numHeadChannels == -1 ? numHeads : ch / options.numHeadChannels
        guard heads > 0, ch % heads == 0, options.numHeadChannels == -1 || ch % options.numHeadChannels == 0 else {
            throw GlideModelError.invalidHyperparameter(
                name: options.numHeadChannels == -1 ? "num_heads" : "num_head_channels",
                expected: "a divisor of the attention width \(ch)",
                actual: "\(options.numHeadChannels == -1 ? numHeads : options.numHeadChannels)")
        }
        let block = AttentionBlock(
            norm: try binder.groupNorm("\(p).\(N.Attention.norm)", channels: ch, swish: false),
            qkv: try binder.linear("\(p).\(N.Attention.qkv)", out: 3 * ch, in: ch, conv1d: true),
            encoderKV: options.xfWidth > 0 ? try binder.linear("\(p).\(N.Attention.encoderKV)", out: 2 * ch, in: options.xfWidth, conv1d: true) : nil,
            projOut: try binder.linear("\(p).\(N.Attention.projOut)", out: ch, in: ch, conv1d: true),
            channels: ch, heads: heads)
        attentionBlocks.append(block)
        return .attention(block, index: attentionBlocks.count - 1)
    }

    private mutating func unetBody() throws -> UNetBody {
        let o = options
        let mc = o.numChannels
        let attentionRates = o.attentionDownsampleRates
        let numHeadsUpsample = o.numHeadsUpsample == -1 ? o.numHeads : o.numHeadsUpsample

        let timeEmbed0 = try binder.linear(N.timeEmbed(0), out: o.timeEmbedDim, in: mc)
        let timeEmbed2 = try binder.linear(N.timeEmbed(2), out: o.timeEmbedDim, in: o.timeEmbedDim)

        var ch = o.channelMult[0] * mc
        let inputCh = ch
        var inputBlocks = [UNetStage(layers: [.conv(try binder.conv(N.firstConv, out: ch, in: o.modelInChannels, kernel: 3))])]
        var skipChannels = [ch]
        var ds = 1
        for (level, mult) in o.channelMult.enumerated() {
            for _ in 0..<o.numResBlocks {
                let p = N.inputBlock(inputBlocks.count)
                var layers: [UNetStage.Layer] = [.res(try resBlock("\(p).0", in: ch, out: mult * mc))]
                ch = mult * mc
                if attentionRates.contains(ds) { layers.append(try attentionBlock("\(p).1", channels: ch, numHeads: o.numHeads)) }
                inputBlocks.append(UNetStage(layers: layers))
                skipChannels.append(ch)
            }
            if level != o.channelMult.count - 1 {
                let p = "\(N.inputBlock(inputBlocks.count)).0"
                let layer: UNetStage.Layer = o.resblockUpdown
                    ? .res(try resBlock(p, in: ch, out: ch, resample: .down))
                    : .down(Downsample(conv: try binder.conv("\(p).\(N.downsampleConv)", out: ch, in: ch, kernel: 3, stride: 2)))
                inputBlocks.append(UNetStage(layers: [layer]))
                skipChannels.append(ch)
                ds *= 2
            }
        }

        let middle = UNetStage(layers: [
            .res(try resBlock(N.middleBlock(0), in: ch, out: ch)),
            try attentionBlock(N.middleBlock(1), channels: ch, numHeads: o.numHeads),
            .res(try resBlock(N.middleBlock(2), in: ch, out: ch)),
        ])

        var outputBlocks: [UNetStage] = []
        for (level, mult) in o.channelMult.enumerated().reversed() {
            for i in 0...o.numResBlocks {
                let p = N.outputBlock(outputBlocks.count)
                let skip = skipChannels.removeLast()
                var layers: [UNetStage.Layer] = [.res(try resBlock("\(p).0", in: ch + skip, out: mc * mult))]
                ch = mc * mult
                if attentionRates.contains(ds) {
                    layers.append(try attentionBlock("\(p).\(layers.count)", channels: ch, numHeads: numHeadsUpsample))
                }
                if level > 0 && i == o.numResBlocks {
                    let q = "\(p).\(layers.count)"
                    layers.append(o.resblockUpdown
                        ? .res(try resBlock(q, in: ch, out: ch, resample: .up))
                        : .up(Upsample(conv: try binder.conv("\(q).\(N.upsampleConv)", out: ch, in: ch, kernel: 3))))
                    ds /= 2
                }
                outputBlocks.append(UNetStage(layers: layers))
            }
        }

        let outNorm = try binder.groupNorm(N.outNorm, channels: ch, swish: true)
        let outConv = try binder.conv(N.outConv, out: o.outChannels, in: inputCh, kernel: 3)
        return UNetBody(modelChannels: mc, timeEmbed0: timeEmbed0, timeEmbed2: timeEmbed2, inputBlocks: inputBlocks,
                        middleBlock: middle, outputBlocks: outputBlocks, outNorm: outNorm, outConv: outConv,
                        attentionBlocks: attentionBlocks)
    }
}
