// Port of glide_text2im.clip.model_creation.CLIPModel (text_embeddings, image_embeddings, cond_fn) and of the
// base-model cell of notebooks/clip_guided.ipynb: DDPM sampling without classifier-free guidance, the mean
// shifted by cond_fn at every step (gaussian_diffusion.condition_mean).

/// One prompt for the CLIP text encoder, as `padded_tokens_and_len` returns it.
public struct ClipTextTokens: Equatable, Sendable {
    /// `max_text_len` token ids: start token, BPE tokens, end token, zeros.
    public var tokens: [Int]
    /// Tokens up to and including the end token (the text encoder reads its state at `length - 1`).
    public var length: Int

    /// Tokens and length as given.
    public init(tokens: [Int], length: Int) {
        self.tokens = tokens
        self.length = length
    }

    /// `tokenizer.padded_tokens_and_len(tokenizer.encode(prompt), context)` (CLIPModel.encode_prompts).
    public init(prompt: String, tokenizer: CLIPTokenizer, context: Int = 77) {
        let (t, n) = tokenizer.paddedTokensAndLength(tokenizer.encode(prompt), context: context)
        self.init(tokens: t, length: n)
    }
}

/// CLIP guidance as the reference's `CLIPModel.cond_fn(prompts, grad_scale)`: the gradient of
/// `exp(logit_scale) * <z_text, z_image(x_t, t)>` (both L2-normalised) with respect to x_t, times `scale`.
///
/// ```swift
/// let guidance = try ClipGuidance(imageEncoder: image, textEncoder: text,
///                                 prompts: [ClipTextTokens(prompt: "a corgi", tokenizer: clipTokenizer)], scale: 3)
/// let grad = try guidance.gradient(x: xt, timesteps: [640])      // cond_fn(x, t)
/// ```
public struct ClipGuidance: Sendable {
    /// The noise-aware image encoder (`clip/image-enc`).
    public let imageEncoder: ClipEncoder
    /// `[batch or 1, n_embd]`, L2-normalised (`text_embeddings(prompts)`).
    public let textEmbeddings: FloatTensor
    /// `grad_scale` (the notebook's `guidance_scale`, 3.0).
    public var scale: Float

    /// Guidance towards given (normalised) text embeddings.
    public init(imageEncoder: ClipEncoder, textEmbeddings: FloatTensor, scale: Float = 3) {
        self.imageEncoder = imageEncoder
        self.textEmbeddings = textEmbeddings
        self.scale = scale
    }

    /// Guidance towards prompts, encoded once by the text encoder (`clip/text-enc`) and normalised, as
    /// `cond_fn` does under `no_grad` before sampling.
    public init(imageEncoder: ClipEncoder, textEncoder: ClipEncoder, prompts: [ClipTextTokens], scale: Float = 3) throws {
        guard textEncoder.kind == .text else {
            throw GlideModelError.invalidInput(name: "text encoder", expected: "a clip/text-enc file", actual: "an image encoder")
        }
        guard imageEncoder.kind == .image else {
            throw GlideModelError.invalidInput(name: "image encoder", expected: "a clip/image-enc file", actual: "a text encoder")
        }
        let z = try textEncoder.encodeText(tokens: prompts.flatMap(\.tokens), lengths: prompts.map(\.length))
        self.init(imageEncoder: imageEncoder, textEmbeddings: ClipEncoder.normalized(z), scale: scale)
    }

    /// `cond_fn(x, t)`: `scale` × d/dx of the objective, `[batch, 3, S, S]`. `x` is in [-1, 1];
    /// `timesteps` are original (0..999) timesteps, one per row.
    public func gradient(x: FloatTensor, timesteps: [Int]) throws -> FloatTensor {
        var g = try imageEncoder.imageObjectiveGradient(x: x, timesteps: timesteps, textEmbeddings: textEmbeddings).gradient
        for i in 0..<g.values.count { g.values[i] *= scale }
        return g
    }

    /// `gradient` as a sampler conditioning function (`GaussianDiffusion.sample(condition:)`).
    public var conditioning: ConditioningFunction {
        let side = imageEncoder.options.imageSize
        return { x, timesteps in
            try gradient(x: FloatTensor(shape: [timesteps.count, 3, side, side], values: x), timesteps: timesteps).values
        }
    }

    /// The cosine similarity of each image with the text embedding row (its own row, or the only one):
    /// `<z_text, z_image / |z_image|>` at the given timesteps (0 for clean images). `images` `[N, 3, S, S]` in [-1, 1].
    public func cosineSimilarity(images: FloatTensor, timesteps: [Int]? = nil) throws -> [Float] {
        let n = images.shape.first ?? 0
        let pixels = FloatTensor(shape: images.shape, values: images.values.map { ($0 + 1) * 127.5 })
        let z = ClipEncoder.normalized(try imageEncoder.encodeImage(pixels, timesteps: timesteps ?? [Int](repeating: 0, count: n)))
        let e = z.shape[1]
        return (0..<n).map { b in
            let row = textEmbeddings.shape[0] == 1 ? 0 : b
            var dot: Float = 0
            for c in 0..<e { dot += z.values[b * e + c] * textEmbeddings.values[row * e + c] }
            return dot
        }
    }
}

/// The CLIP encoders that steer `Text2ImPipeline`'s base stage instead of classifier-free guidance
/// (notebooks/clip_guided.ipynb): `clip/image-enc`, `clip/text-enc` and the guidance scale.
public struct ClipGuidanceModels: Sendable {
    /// The noise-aware image encoder.
    public let imageEncoder: ClipEncoder
    /// The text encoder (its file may embed CLIP's tokenizer).
    public let textEncoder: ClipEncoder
    /// `grad_scale` (the notebook's `guidance_scale`, 3.0).
    public var scale: Float
    /// A folder with `bpe_simple_vocab_16e6.txt.gz`; nil: the tokenizer embedded in the text encoder's file.
    public var tokenizerDirectory: String?

    /// Checks the encoders' kinds (`GlideModelError.wrongModelKind`).
    public init(imageEncoder: ClipEncoder, textEncoder: ClipEncoder, scale: Float = 3) throws {
        guard imageEncoder.kind == .image else {
            throw GlideModelError.wrongModelKind(role: "CLIP image encoder", expected: "clip/image-enc", actual: "clip/text-enc")
        }
        guard textEncoder.kind == .text else {
            throw GlideModelError.wrongModelKind(role: "CLIP text encoder", expected: "clip/text-enc", actual: "clip/image-enc")
        }
        self.imageEncoder = imageEncoder
        self.textEncoder = textEncoder
        self.scale = scale
    }

    /// Loads both encoders from converted files.
    public init(imagePath: String, textPath: String, scale: Float = 3) throws {
        try self.init(imageEncoder: try ClipEncoder(path: imagePath), textEncoder: try ClipEncoder(path: textPath), scale: scale)
    }

    /// `clip_model.cond_fn([prompt] * batch, scale)`: the prompt tokenized with CLIP's tokenizer and embedded once
    /// (shared by the batch). The text encoder's pages are released afterwards.
    public func guidance(prompt: String) throws -> ClipGuidance {
        let files = tokenizerDirectory == nil ? textEncoder.file.tokenizerFiles : [:]
        guard tokenizerDirectory != nil || files[CLIPTokenizer.mergesFileName] != nil else {
            throw GlideModelError.missingFile(name: "\(CLIPTokenizer.mergesFileName) (embedded in the CLIP text encoder, or a tokenizer directory)")
        }
        let tokenizer = try tokenizerDirectory.map { try CLIPTokenizer(directory: $0) } ?? CLIPTokenizer(files: files)
        let g = try ClipGuidance(imageEncoder: imageEncoder, textEncoder: textEncoder,
                                 prompts: [ClipTextTokens(prompt: prompt, tokenizer: tokenizer, context: textEncoder.options.maxTextLen)],
                                 scale: scale)
        textEncoder.releaseResidentMemory()
        return g
    }
}

/// The base-model stage of notebooks/clip_guided.ipynb: one row per image (no classifier-free guidance), DDPM
/// over `respacing` (100 steps), each step's mean shifted by `variance × cond_fn(x_t, t)` with `t` the
/// original timestep. Upsample the result as usual (`Text2ImPipeline` with `clip` set does both).
public struct ClipGuidedBaseStage: Sendable {
    /// The base text-conditional model (`base`).
    public let model: Text2ImUNet
    /// The CLIP guidance (`cond_fn`), one text embedding per image or one shared.
    public let guidance: ClipGuidance

    /// Pairs a base model with CLIP guidance.
    public init(model: Text2ImUNet, guidance: ClipGuidance) {
        self.model = model
        self.guidance = guidance
    }

    /// The stage as a loop the caller steps: `batch` images for `prompts` (one or one per image: the base
    /// model's GLIDE tokens, as the notebook's `model_kwargs`).
    public func makeLoop(batch: Int, prompts: [TextTokens], respacing: TimestepRespacing = .steps(100),
                         noise: SamplingNoise) throws -> SamplingLoop {
        let o = model.options
        guard !o.superRes, !o.inpaint, o.xfWidth > 0 else {
            throw GlideModelError.wrongModelKind(role: "base", expected: "Text2ImUNet with a text transformer", actual: o.referenceClassName)
        }
        guard guidance.imageEncoder.options.imageSize == o.imageSize else {
            throw GlideModelError.invalidInput(name: "CLIP image encoder", expected: "image_size \(o.imageSize)",
                                               actual: "\(guidance.imageEncoder.options.imageSize)")
        }
        let settings = StageSettings(respacing: respacing, sampler: .ddpm, guidanceScale: nil)
        return try DiffusionStage(model: model).makeLoop(batch: batch, inputs: StageInputs(prompts: prompts),
                                                         settings: settings, noise: noise, condition: guidance.conditioning)
    }

    /// `makeLoop` run to the end: `[batch, 3, S, S]` in [-1, 1].
    public func run(batch: Int, prompts: [TextTokens], respacing: TimestepRespacing = .steps(100), noise: SamplingNoise,
                    progress: ((SamplingProgress) -> Void)? = nil) throws -> FloatTensor {
        var loop = try makeLoop(batch: batch, prompts: prompts, respacing: respacing, noise: noise)
        while let p = try loop.next() { progress?(p) }
        return FloatTensor(shape: loop.shape, values: loop.sample)
    }
}
