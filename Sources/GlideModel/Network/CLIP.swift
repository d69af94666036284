// Port of glide_text2im.clip: the noise-aware CLIP text and image encoders (clip/encoders.py) and the
// embedding normalisation of clip/model_creation.py's CLIPModel. Forward only.
#if canImport(Glibc)
import Glibc
#endif
import Kernels
import GlideSpec
import WeightFormat

/// The options of a GLIDE CLIP encoder, named as the reference's `clip/config.yaml` names them.
/// Keys absent from the file take the config's values.
public struct ClipOptions: Equatable, Sendable {
    /// `logit_scale` (the config stores the scale; the model uses its log).
    public var logitScale: Double
    /// `image_size`: side of the (noised) images the image encoder takes.
    public var imageSize: Int
    /// `patch_size`: side of one image patch.
    public var patchSize: Int
    /// `n_vocab`: rows of the text embedding.
    public var nVocab: Int
    /// `max_text_len`: text context.
    public var maxTextLen: Int
    /// `n_embd`: width of the joint embedding.
    public var nEmbd: Int
    /// `n_head_state_text`, `n_head_text`, `n_xf_blocks_text`: text transformer geometry.
    public var nHeadStateText: Int, nHeadText: Int, nXfBlocksText: Int
    /// `n_head_state_image`, `n_head_image`, `n_xf_blocks_image`: image transformer geometry.
    public var nHeadStateImage: Int, nHeadImage: Int, nXfBlocksImage: Int
    /// `n_timesteps`: rows of the image encoder's timestep embedding.
    public var nTimesteps: Int

    /// Reads the options from a weight file's hyperparameters (reference names), with config.yaml defaults
    /// (`ReferenceOptions.clip`).
    public init(hyperparameters given: [String: HyperValue]) throws {
        let h = ReferenceOptions.clip.merging(given) { $1 }
        func int(_ key: String) throws -> Int {
            guard let v = h[key] else {
                throw GlideModelError.invalidHyperparameter(name: key, expected: "a positive integer", actual: "absent")
            }
            if case .int(let i) = v, i > 0 { return i }
            if case .double(let d) = v, d == d.rounded(), d > 0, d < 1e15 { return Int(d) }
            throw GlideModelError.invalidHyperparameter(name: key, expected: "a positive integer", actual: "\(v)")
        }
        switch h["logit_scale"] {
        case .double(let d)?: logitScale = d
        case .int(let i)?: logitScale = Double(i)
        case let v?: throw GlideModelError.invalidHyperparameter(name: "logit_scale", expected: "a number", actual: "\(v)")
        case nil: throw GlideModelError.invalidHyperparameter(name: "logit_scale", expected: "a number", actual: "absent")
        }
        imageSize = try int("image_size")
        patchSize = try int("patch_size")
        nVocab = try int("n_vocab")
        maxTextLen = try int("max_text_len")
        nEmbd = try int("n_embd")
        nHeadStateText = try int("n_head_state_text")
        nHeadText = try int("n_head_text")
        nXfBlocksText = try int("n_xf_blocks_text")
        nHeadStateImage = try int("n_head_state_image")
        nHeadImage = try int("n_head_image")
        nXfBlocksImage = try int("n_xf_blocks_image")
        nTimesteps = try int("n_timesteps")
        guard imageSize % patchSize == 0 else {
            throw GlideModelError.invalidHyperparameter(name: "patch_size", expected: "a divisor of image_size \(imageSize)",
                                                     actual: "\(patchSize)")
        }
    }
}

// Port of glide_text2im.clip.encoders.TransformerBlock (AttentionResblock + FullyConnectedResblock).
struct ClipTransformerBlock: @unchecked Sendable {
    let attnLN: LayerNorm            // f_attn.ln (g, b)
    let query: Linear                // f_attn.f_q: [n, n]
    let key: Linear                  // f_attn.f_k: [n, n], no bias
    let value: Linear                // f_attn.f_v: [n, n]
    let attnOut: Linear              // f_attn.f_c: [n, n]
    let mlpLN: LayerNorm             // f_mlp.ln
    let fc1: Linear                  // f_mlp.f_1: [4n, n]
    let fc2: Linear                  // f_mlp.f_2: [n, 4n]
    let heads: Int

    /// In place on `x` `[batch, length, n]`; `bias` is the additive `[length, length]` mask (causal text) or nil.
    func callAsFunction(_ x: Activation, bias: UnsafePointer<Float>?) {
        let batch = x.shape[0], length = x.shape[1], width = x.shape[2], rows = batch * length
        let normed = Activation(shape: x.shape)
        attnLN(x.pointer, rows: rows, into: normed.pointer)
        let q = Activation(shape: x.shape), k = Activation(shape: x.shape), v = Activation(shape: x.shape)
        query(normed.pointer, rows: rows, into: q.pointer)
        key(normed.pointer, rows: rows, into: k.pointer)
        value(normed.pointer, rows: rows, into: v.pointer)
        let ch = width / heads
        // q and k are each scaled by sqrt(qk_scale) = 1 / ch^(1/4).
        let scale = Float((1 / Double(ch).squareRoot()).squareRoot())
        let attended = Activation(shape: x.shape)
        for n in 0..<batch {
            let off = n * length * width
            func operand(_ a: Activation) -> AttentionOperand {
                AttentionOperand(a.pointer + off, headStride: ch, tokenStride: width, channelStride: 1)
            }
            attention(heads: heads, headDim: ch, queryCount: length, keyCount: length, query: operand(q), key: operand(k),
                      value: operand(v), bias: bias, biasHeadStride: 0, qkScale: scale,
                      output: AttentionOutput(attended.pointer + off, headStride: ch, tokenStride: width, channelStride: 1))
        }
        attnOut(attended.pointer, rows: rows, into: x.pointer, accumulate: true)

        mlpLN(x.pointer, rows: rows, into: normed.pointer)
        let hidden = Activation(shape: [batch, length, fc1.outFeatures])
        fc1(normed.pointer, rows: rows, into: hidden.pointer)
        gelu(hidden.pointer, hidden.pointer, count: hidden.count)
        fc2(hidden.pointer, rows: rows, into: x.pointer, accumulate: true)
    }
}

/// Which CLIP encoder a file holds.
public enum ClipEncoderKind: String, Sendable {
    /// `clip/text-enc`: glide_text2im.clip.encoders.TextEncoder.
    case text
    /// `clip/image-enc`: glide_text2im.clip.encoders.ImageEncoder (noise-aware, with timestep embedding).
    case image
}

/// A GLIDE CLIP encoder (text or image, from the tensors in the file) loaded from a `.glw` file.
public final class ClipEncoder: @unchecked Sendable {
    /// The options read from the file.
    public let options: ClipOptions
    /// Text or image encoder.
    public let kind: ClipEncoderKind
    /// The weight file the layers view into.
    public let file: WeightFile
    private let arena = VectorArena()
    /// The packed GEMM panels of the int8 matrices (filled at first use).
    let packedWeights = PackedWeightGroup()
    let blocks: [ClipTransformerBlock]
    let outputLN: LayerNorm          // blocks.output.ln
    let outputProjection: Linear     // blocks.output.f: [n_embd, n_state], no bias
    let width: Int
    // text
    var tokenEmbedding: WeightMatrix?          // blocks.input.w_voc: [n_vocab, n_state]
    var textPositions: UnsafePointer<Float>?   // blocks.input.w_pos: [max_text_len, n_state]
    private var causalBias: [Float] = []
    // image
    var patchProjection: Conv2d?               // blocks.input.patch_proj: [n_state, 3, p, p]
    var imagePositions: UnsafePointer<Float>?  // blocks.input.w_pos: [1 + patches, n_state]
    var timestepEmbedding: WeightMatrix?       // blocks.input.w_t: [n_timesteps, n_state]
    var predState: UnsafePointer<Float>?       // blocks.input.pred_state: [n_state] (n_timesteps 0)
    var inputLN: LayerNorm?                    // blocks.input.ln

    /// Drops the encoder's weights from resident memory while it is kept for later: the file's pages and the
    /// packed GEMM panels. Both come back at the next use.
    public func releaseResidentMemory() {
        packedWeights.release()
        file.releaseResidentMemory()
    }

    /// Binds a CLIP encoder file; rejects missing, misshapen, wrongly typed or unexpected tensors by name.
    public init(file: WeightFile) throws {
        self.file = file
        let o = try ClipOptions(hyperparameters: file.hyperparameters)
        options = o
        var binder = WeightBinder(file: file, arena: arena, packedWeights: packedWeights)
        kind = file.tensor(CLIPTensorNames.tokenEmbedding) != nil ? .text : .image
        let heads = kind == .text ? o.nHeadText : o.nHeadImage
        let n = heads * (kind == .text ? o.nHeadStateText : o.nHeadStateImage)
        width = n
        func ln(_ p: String) throws -> LayerNorm {
            LayerNorm(gamma: try binder.floats("\(p).g", shape: [n]), beta: try binder.floats("\(p).b", shape: [n]), width: n)
        }
        func affine(_ p: String, out: Int, in k: Int, bias: Bool = true) throws -> Linear {
            Linear(weight: try binder.matrix("\(p).w", shape: [out, k]), bias: bias ? try binder.floats("\(p).b", shape: [out]) : nil)
        }
        if kind == .text {
            tokenEmbedding = try binder.matrix(CLIPTensorNames.tokenEmbedding, shape: [o.nVocab, n])
            textPositions = try binder.floats(CLIPTensorNames.positions, shape: [o.maxTextLen, n])
        } else {
            let patches = (o.imageSize / o.patchSize) * (o.imageSize / o.patchSize)
            patchProjection = Conv2d(weight: try binder.matrix(CLIPTensorNames.patchProjection, shape: [n, 3, o.patchSize, o.patchSize]),
                                     bias: nil, inChannels: 3, outChannels: n, kernelSize: o.patchSize, stride: o.patchSize,
                                     padding: 0)
            imagePositions = try binder.floats(CLIPTensorNames.positions, shape: [1 + patches, n])
            if file.tensor(CLIPTensorNames.predState) != nil {
                predState = try binder.floats(CLIPTensorNames.predState, shape: [n])
            } else {
                timestepEmbedding = try binder.matrix(CLIPTensorNames.timestepEmbedding, shape: [o.nTimesteps, n])
            }
            inputLN = try ln(CLIPTensorNames.inputLN)
        }
        var blocks: [ClipTransformerBlock] = []
        for i in 0..<(kind == .text ? o.nXfBlocksText : o.nXfBlocksImage) {
            let p = CLIPTensorNames.block(i)
            blocks.append(ClipTransformerBlock(
                attnLN: try ln("\(p).f_attn.ln"),
                query: try affine("\(p).\(CLIPTensorNames.blockQuery)", out: n, in: n),
                key: try affine("\(p).f_attn.f_k", out: n, in: n, bias: false),
                value: try affine("\(p).f_attn.f_v", out: n, in: n),
                attnOut: try affine("\(p).f_attn.f_c", out: n, in: n),
                mlpLN: try ln("\(p).f_mlp.ln"),
                fc1: try affine("\(p).f_mlp.f_1", out: 4 * n, in: n),
                fc2: try affine("\(p).f_mlp.f_2", out: n, in: 4 * n),
                heads: heads))
        }
        self.blocks = blocks
        outputLN = try ln(CLIPTensorNames.outputLN)
        outputProjection = try affine(CLIPTensorNames.outputProjection, out: o.nEmbd, in: n, bias: false)
        try binder.rejectUnbound()
        if kind == .text {
            // DenseCausalAttentionMask: key j visible from query i iff j <= i (the block padding only hides
            // positions past max_text_len, which never exist here); masked scores get -1e10 as in the reference.
            let t = o.maxTextLen
            causalBias = [Float](repeating: 0, count: t * t)
            for i in 0..<t { for j in (i + 1)..<max(t, i + 1) { causalBias[i * t + j] = -1e10 } }
        }
    }

    /// Opens and binds a `.glw` file.
    public convenience init(path: String) throws { try self.init(file: try WeightFile(path: path)) }

    /// `TextEncoder.forward(text, text_len)`: `tokens` `[batch, max_text_len]` row-major and `lengths`
    /// `[batch]` (1...max_text_len); returns `[batch, n_embd]` (not normalised).
    public func encodeText(tokens: [Int], lengths: [Int]) throws -> FloatTensor {
        guard kind == .text, let tokenEmbedding, let textPositions else {
            throw GlideModelError.invalidInput(name: "tokens", expected: "an image encoder input (this is the text encoder)", actual: "tokens")
        }
        let t = options.maxTextLen, n = width, batch = lengths.count
        guard batch > 0, tokens.count == batch * t else {
            throw GlideModelError.invalidInput(name: "tokens", expected: "[\(lengths.count), \(t)]", actual: "\(tokens.count) values")
        }
        if let bad = tokens.first(where: { $0 < 0 || $0 >= tokenEmbedding.rows }) {
            throw GlideModelError.invalidInput(name: "tokens", expected: "ids in 0..<\(tokenEmbedding.rows)", actual: "\(bad)")
        }
        if let bad = lengths.first(where: { $0 < 1 || $0 > t }) {
            throw GlideModelError.invalidInput(name: "text_len", expected: "lengths in 1...\(t)", actual: "\(bad)")
        }
        let x = Activation(shape: [batch, t, n])
        for b in 0..<batch {
            for i in 0..<t {
                let row = x.pointer + (b * t + i) * n, token = tokens[b * t + i]
                for c in 0..<n { row[c] = tokenEmbedding.value(token, c) + textPositions[i * n + c] }
            }
        }
        causalBias.withUnsafeBufferPointer { bias in for block in blocks { block(x, bias: bias.baseAddress) } }
        // TextFeatureExtractor: the state at position text_len - 1, layer-normed, projected.
        let picked = Activation(shape: [batch, 1, n])
        for b in 0..<batch { (picked.pointer + b * n).update(from: x.pointer + (b * t + lengths[b] - 1) * n, count: n) }
        return project(picked, batch: batch)
    }

    /// `ImageEncoder.forward(image, timesteps)`: `image` `[batch, 3, S, S]` in 0...255 pixel scale (the
    /// reference's `image_embeddings` passes `(x + 1) * 127.5`) and one timestep per row (ignored by an
    /// encoder without timestep embedding); returns `[batch, n_embd]` (not normalised).
    public func encodeImage(_ image: FloatTensor, timesteps: [Int]) throws -> FloatTensor {
        guard kind == .image, let patchProjection, let imagePositions, let inputLN else {
            throw GlideModelError.invalidInput(name: "image", expected: "text tokens (this is the text encoder)", actual: "an image")
        }
        let s = options.imageSize, n = width
        guard image.shape.count == 4, image.shape[1] == 3, image.shape[2] == s, image.shape[3] == s, image.shape[0] > 0 else {
            throw GlideModelError.invalidInput(name: "image", expected: "[batch, 3, \(s), \(s)]", actual: "\(image.shape)")
        }
        let batch = image.shape[0]
        if let timestepEmbedding {
            guard timesteps.count == batch else {
                throw GlideModelError.invalidInput(name: "timesteps", expected: "[\(batch)]", actual: "[\(timesteps.count)]")
            }
            if let bad = timesteps.first(where: { $0 < 0 || $0 >= timestepEmbedding.rows }) {
                throw GlideModelError.invalidInput(name: "timesteps", expected: "integers in 0..<\(timestepEmbedding.rows)", actual: "\(bad)")
            }
        }
        let means: [Float] = [122.77093945, 116.74601272, 104.09373519]
        let stds: [Float] = [68.50053285, 66.63215831, 70.32316309]
        let normalized = Activation(image)
        let plane = s * s
        for b in 0..<batch {
            for c in 0..<3 {
                let p = normalized.pointer + (b * 3 + c) * plane
                for i in 0..<plane { p[i] = (p[i] - means[c]) / stds[c] }
            }
        }
        let patches = patchProjection(normalized)              // [batch, n, g, g]
        let count = patches.spatial, length = 1 + count
        let x = Activation(shape: [batch, length, n])
        for b in 0..<batch {
            let first = x.pointer + b * length * n
            for c in 0..<n { first[c] = timestepEmbedding?.value(timesteps[b], c) ?? predState![c] }
            for i in 0..<count {
                let row = first + (1 + i) * n
                for c in 0..<n { row[c] = patches.pointer[(b * n + c) * count + i] }
            }
            for i in 0..<(length * n) { first[i] += imagePositions[i] }
        }
        inputLN(x.pointer, rows: batch * length, into: x.pointer)
        for block in blocks { block(x, bias: nil) }
        // ImageFeatureExtractor: the first (timestep) position, layer-normed, projected.
        let picked = Activation(shape: [batch, 1, n])
        for b in 0..<batch { (picked.pointer + b * n).update(from: x.pointer + b * length * n, count: n) }
        return project(picked, batch: batch)
    }

    private func project(_ picked: Activation, batch: Int) -> FloatTensor {
        outputLN(picked.pointer, rows: batch, into: picked.pointer)
        var out = [Float](repeating: 0, count: batch * options.nEmbd)
        out.withUnsafeMutableBufferPointer { outputProjection(picked.pointer, rows: batch, into: $0.baseAddress!) }
        return FloatTensor(shape: [batch, options.nEmbd], values: out)
    }

    /// `z / (|z| + 1e-12)` per row, as `CLIPModel.text_embeddings` / `image_embeddings` normalise.
    public static func normalized(_ z: FloatTensor) -> FloatTensor {
        let width = z.shape.last ?? 1
        var values = z.values
        for r in 0..<(values.count / max(width, 1)) {
            var sq: Float = 0
            for c in 0..<width { sq += values[r * width + c] * values[r * width + c] }
            let inv = 1 / (sq.squareRoot() + 1e-12)
            for c in 0..<width { values[r * width + c] *= inv }
        }
        return FloatTensor(shape: z.shape, values: values)
    }
}
