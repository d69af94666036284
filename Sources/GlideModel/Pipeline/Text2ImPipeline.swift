// Port of notebooks/text2im.ipynb as one library call: the base model samples 64x64 images from a prompt with
// classifier-free guidance, then optionally the upsampler takes them to 256x256.

/// Text conditioning of one stage given as token rows rather than a prompt (e.g. replayed from the reference).
public struct StageText: Equatable, Sendable {
    /// One row per image, or one row shared by the batch.
    public var prompts: [TextTokens]
    /// The empty prompt for guidance.
    public var unconditional: TextTokens?

    /// Rows and the guidance row as given.
    public init(prompts: [TextTokens], unconditional: TextTokens? = nil) {
        self.prompts = prompts
        self.unconditional = unconditional
    }

    /// Splits the rows the reference feeds a guided model (`batch` prompt rows, then `batch` equal empty-prompt
    /// rows) or an unguided one (`batch` prompt rows). Throws `GlideModelError.invalidInput` when the rows do
    /// not have that layout.
    public init(modelRows rows: [TextTokens], batch: Int, guided: Bool) throws {
        let expected = guided ? 2 * batch : batch
        guard rows.count == expected else {
            throw GlideModelError.invalidInput(name: "tokens", expected: "\(expected) rows" + (guided ? " (prompt rows then empty-prompt rows)" : ""),
                                               actual: "\(rows.count) rows")
        }
        guard guided else { self.init(prompts: rows); return }
        let empty = rows[batch]
        guard rows[batch...].allSatisfy({ $0 == empty }) else {
            throw GlideModelError.invalidInput(name: "tokens", expected: "equal empty-prompt rows \(batch)..<\(expected)",
                                               actual: "rows that differ")
        }
        self.init(prompts: Array(rows[..<batch]), unconditional: empty)
    }
}

/// What `Text2ImPipeline` should make.
public struct Text2ImRequest: Sendable {
    /// The prompt (tokenized with each stage's `text_ctx`; the base stage uses `baseText` instead when given).
    public var prompt: String
    /// Number of images.
    public var batch: Int
    /// Noise seed of the base stage; the upsampler uses `seed ^ UpsampleStage.seedOffset`.
    public var seed: UInt64
    /// Token rows replacing the tokenized prompt in the base stage.
    public var baseText: StageText?
    /// Replayed noise replacing the base stage's seeded noise.
    public var baseNoise: SamplingNoise?
    /// Replayed noise replacing the upsampler's seeded noise.
    public var upsampleNoise: SamplingNoise?

    /// A request for `batch` images of `prompt`.
    public init(prompt: String, batch: Int = 1, seed: UInt64, baseText: StageText? = nil,
                baseNoise: SamplingNoise? = nil, upsampleNoise: SamplingNoise? = nil) {
        self.prompt = prompt
        self.batch = batch
        self.seed = seed
        self.baseText = baseText
        self.baseNoise = baseNoise
        self.upsampleNoise = upsampleNoise
    }
}

/// notebooks/text2im.ipynb as a library call: a base (text-to-image) model, optionally followed by an upsampler.
///
/// Defaults are the notebook's (`StageSettings.notebook(for:)`): the base samples with 100 DDPM steps and
/// guidance 3.0 (the prompt paired with the empty prompt); the upsampler with `fast27` DDIM, no guidance, start
/// noise × 0.997 and the base samples snapped to 8-bit levels. Between the stages the base model's pages are
/// released, so the peak memory is the larger model, not both.
///
/// ```swift
/// import GlideModel
///
/// let pipeline = try Text2ImPipeline(basePath: "base.glw", upsamplerPath: "upsample.glw")
/// var run = try pipeline.start(Text2ImRequest(prompt: "an oil painting of a corgi", seed: 7))
/// while let event = try run.next() {                 // one sampling step per call; stop calling to cancel
///     if case .step(let p) = event { print("step \(p.completed)/\(p.total) (\(p.stage))") }
/// }
/// let image = run.finalOutput!                       // [1, 3, 256, 256] in [-1, 1]
/// ```
public struct Text2ImPipeline {
    /// The base model (`Text2ImUNet`).
    public let base: Text2ImUNet
    /// The upsampler (`SuperResText2ImUNet`), or nil to stop at the base resolution.
    public let upsampler: Text2ImUNet?
    /// Base stage settings (default: the notebook's).
    public var baseSettings: StageSettings
    /// Upsampler stage settings (default: the notebook's).
    public var upsampleSettings: StageSettings
    /// Thread count while sampling.
    public var compute = ComputeOptions()
    /// A folder with `encoder.json.gz` and `vocab.bpe.gz`; nil: the tokenizer embedded in the model files
    /// (the upsampler's own, else the base model's).
    public var tokenizerDirectory: String?
    /// CLIP guidance instead of classifier-free guidance for the base stage (notebooks/clip_guided.ipynb):
    /// one row per image, DDPM with `baseSettings.respacing`, each mean shifted by variance × `cond_fn`;
    /// `baseSettings.sampler` and `guidanceScale` are then not used. The upsampler is unchanged.
    public var clip: ClipGuidanceModels?

    /// Checks the models' kinds (`GlideModelError.wrongModelKind`): a text-conditioned base model and a plain
    /// upsampler.
    public init(base: Text2ImUNet, upsampler: Text2ImUNet? = nil) throws {
        let o = base.options
        guard !o.superRes, !o.inpaint, o.xfWidth > 0 else {
            throw GlideModelError.wrongModelKind(role: "base", expected: "Text2ImUNet with a text transformer",
                                                 actual: o.xfWidth > 0 ? o.referenceClassName : "\(o.referenceClassName) without a text transformer (xf_width 0)")
        }
        if let u = upsampler?.options, !(u.superRes && !u.inpaint) {
            throw GlideModelError.wrongModelKind(role: "upsampler", expected: "SuperResText2ImUNet", actual: u.referenceClassName)
        }
        self.base = base
        self.upsampler = upsampler
        baseSettings = .notebook(for: o)
        upsampleSettings = upsampler.map { .notebook(for: $0.options) }
            ?? StageSettings(respacing: .fast27, sampler: .ddim, guidanceScale: nil,
                             startNoiseScale: StageSettings.notebookUpsampleTemperature)
    }

    /// Loads the models from converted files (both before sampling, so a bad file fails fast).
    public init(basePath: String, upsamplerPath: String? = nil) throws {
        try self.init(base: try Text2ImUNet(path: basePath), upsampler: try upsamplerPath.map { try Text2ImUNet(path: $0) })
    }

    /// The tokenizer a stage uses: `tokenizerDirectory`, else the stage model's embedded one, else the base's.
    public func tokenizer(for stage: PipelineStage) throws -> GlideTokenizer {
        let files = stage == .upsample ? [upsampler?.file, base.file].compactMap { $0 } : [base.file]
        return try GlideTokenizer.load(directory: tokenizerDirectory, embeddedIn: files)
    }

    /// True when the upsampler's tokenizer is the base stage's (the same folder, or the base file's embedded one
    /// because the upsampler's file embeds none), so a run loads it once.
    func upsamplerSharesBaseTokenizer() -> Bool {
        guard let upsampler else { return false }
        return tokenizerDirectory != nil || !GlideTokenizer.isEmbedded(in: upsampler.file)
    }

    /// Steps of the base stage and of the upsampler (0 without one) with the current settings.
    public func stepCounts() throws -> (base: Int, upsample: Int) {
        (try baseSettings.stepCount(for: base.options), try upsampler.map { try upsampleSettings.stepCount(for: $0.options) } ?? 0)
    }

    /// Starts a run; iterate it (see `PipelineRun`). The request, the settings and the tokenizers are checked
    /// and the base stage's text encoded before this returns; the upsampler starts when the base stage is done.
    public func start(_ request: Text2ImRequest) throws -> PipelineRun {
        try compute.validate()
        try baseSettings.validate()
        try upsampleSettings.validate()
        guard request.batch >= 1 else {
            throw GlideModelError.invalidSetting(name: "batch", expected: "at least 1", actual: "\(request.batch)")
        }
        let ctx = base.options.textCtx
        let text: StageText
        var baseTokenizer: GlideTokenizer? = nil
        if let given = request.baseText {
            text = given
        } else {
            let tokenizer = try tokenizer(for: .base)
            baseTokenizer = tokenizer
            let guided = baseSettings.guidanceScale != nil && clip == nil
            text = StageText(prompts: [TextTokens(prompt: request.prompt, tokenizer: tokenizer, textCtx: ctx)],
                             unconditional: guided ? .empty(tokenizer: tokenizer, textCtx: ctx) : nil)
        }
        let inputs = StageInputs(prompts: text.prompts, unconditional: text.unconditional)
        let base = self.base, baseSettings = self.baseSettings
        let baseNoise = request.baseNoise ?? SamplingNoise(seed: request.seed)
        let clipGuidance = try clip.map { try $0.guidance(prompt: request.prompt) }
        // CLIP's encoders and gradients share the base stage's memory: fewer transformed Winograd weights kept.
        if clip != nil { base.limitWinogradCache(to: Text2ImUNet.clipGuidedWinogradCacheBudget(base.options)) }
        let baseLoop = try compute.perform {
            if let clipGuidance {
                return try ClipGuidedBaseStage(model: base, guidance: clipGuidance)
                    .makeLoop(batch: request.batch, prompts: text.prompts, respacing: baseSettings.respacing, noise: baseNoise)
            }
            return try DiffusionStage(model: base).makeLoop(batch: request.batch, inputs: inputs, settings: baseSettings,
                                                            noise: baseNoise)
        }
        var plan = [PipelineRun.Planned(stage: .base, steps: baseLoop.count, start: { _ in baseLoop })]
        if let upsampler {
            // Loaded once when both stages use the same one (parsing it costs ~40 ms).
            let tokenizer = try (upsamplerSharesBaseTokenizer() ? baseTokenizer : nil) ?? tokenizer(for: .upsample)
            let upCtx = upsampler.options.textCtx
            let prompts = [TextTokens(prompt: request.prompt, tokenizer: tokenizer, textCtx: upCtx)]
            let empty = TextTokens.empty(tokenizer: tokenizer, textCtx: upCtx)
            let settings = upsampleSettings
            let noise = request.upsampleNoise ?? SamplingNoise(seed: request.seed ^ UpsampleStage.seedOffset)
            plan.append(.init(stage: .upsample, steps: try settings.stepCount(for: upsampler.options), start: { outputs in
                base.releaseResidentMemory()   // the base weights are done: peak memory is the larger model
                let inputs = StageInputs(prompts: prompts, unconditional: empty, lowRes: outputs[.base])
                return try DiffusionStage(model: upsampler).makeLoop(batch: request.batch, inputs: inputs,
                                                                    settings: settings, noise: noise)
            }))
        }
        return PipelineRun(plan: plan, compute: compute)
    }

    /// What `generate` produced.
    public struct Result {
        /// The base stage's samples `[batch, 3, s, s]` in [-1, 1] (s = the base model's `image_size`).
        public var lowRes: FloatTensor
        /// The upsampled samples `[batch, 3, S, S]`, when there is an upsampler.
        public var upsampled: FloatTensor?
        /// The last stage's samples.
        public var final: FloatTensor { upsampled ?? lowRes }
    }

    /// `start(request)` run to the end, `progress` called after every step.
    public func generate(_ request: Text2ImRequest, progress: ((PipelineProgress) -> Void)? = nil) throws -> Result {
        var run = try start(request)
        let outputs = try run.finish(progress: progress)
        return Result(lowRes: outputs[.base]!, upsampled: outputs[.upsample])
    }
}
