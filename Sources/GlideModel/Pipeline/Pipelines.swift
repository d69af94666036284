// The notebooks' multi-stage recipes as library calls: 64x64 -> 256x256 upsampling (text2im.ipynb's second
// half) and two-stage inpainting (inpaint.ipynb), so the CLI commands stay thin.

/// Progress across the stages of a pipeline run.
public struct PipelineProgress {
    /// Name of the running stage (`"base"`, `"upsample"`).
    public var stage: String
    /// Steps done across all stages.
    public var completed: Int
    /// Steps of all stages together.
    public var total: Int
    /// The sampler's report for the step just taken.
    public var step: SamplingProgress
}

/// The upsampling stage of notebooks/text2im.ipynb: a 64x64 sample (or any low-resolution image) to the
/// upsampler's `image_size` (256 for the released model).
public enum UpsampleStage {
    /// Seed offset so the upsampler's noise differs from a base stage sampled with the same seed.
    public static let seedOffset: UInt64 = 0x5550_5341_4D50_4C45

    /// Upsamples `lowRes` (`[batch, 3, h, w]` in [-1, 1], e.g. the base model's output) with the notebook's
    /// recipe: low_res quantized to 8-bit levels, no guidance (one row per image), `fast27` DDIM, start noise
    /// scaled by 0.997 (`settings` overrides any of these). The prompt is tokenized with the upsampler's
    /// `text_ctx`. Returns `[batch, 3, S, S]` in [-1, 1] with S = `outputSize` or the model's `image_size`.
    ///
    /// This is the call `glide sample --upsampler` and `glide upsample` make.
    public static func run(model: Text2ImUNet, lowRes: FloatTensor, prompt: String, tokenizer: GlideTokenizer,
                           settings: StageSettings? = nil, outputSize: Int? = nil, noise: SamplingNoise,
                           progress: ((SamplingProgress) -> Void)? = nil) throws -> FloatTensor {
        let tokens = TextTokens(prompt: prompt, tokenizer: tokenizer, textCtx: model.options.textCtx)
        return try run(model: model, lowRes: lowRes, prompts: [tokens],
                       unconditional: TextTokens.empty(tokenizer: tokenizer, textCtx: model.options.textCtx),
                       settings: settings, outputSize: outputSize, noise: noise, progress: progress)
    }

    /// As `run(model:lowRes:prompt:...)` with tokens given (one row per image or one shared row);
    /// `unconditional` is only needed if `settings` asks for guidance.
    public static func run(model: Text2ImUNet, lowRes: FloatTensor, prompts: [TextTokens],
                           unconditional: TextTokens? = nil, settings: StageSettings? = nil, outputSize: Int? = nil,
                           noise: SamplingNoise, progress: ((SamplingProgress) -> Void)? = nil) throws -> FloatTensor {
        guard model.options.superRes else {
            throw GlideModelError.missingInput(name: "super_res (an upsampling model)", model: model.options.referenceClassName)
        }
        guard lowRes.shape.count == 4 else {
            throw GlideModelError.inputShapeMismatch(name: "low_res", expected: [-1, 3, -1, -1], actual: lowRes.shape)
        }
        let stage = DiffusionStage(model: model)
        return try stage.run(batch: lowRes.shape[0], size: outputSize,
                             inputs: StageInputs(prompts: prompts, unconditional: unconditional, lowRes: lowRes),
                             settings: settings ?? .notebook(for: model.options), noise: noise, progress: progress)
    }
}

/// Two-stage inpainting as notebooks/inpaint.ipynb: the base inpainting model at 64x64 (guidance 5.0, the
/// known region forced after every x_0 prediction), then optionally the inpainting upsampler to 256x256
/// (`fast27` DDPM, start noise × 0.997, the 64x64 mask upsampled with nearest, forcing again).
public struct InpaintPipeline {
    /// The base inpainting model (`InpaintText2ImUNet`).
    public let base: Text2ImUNet
    /// The inpainting upsampler (`SuperResInpaintText2ImUnet`), or nil to stop at the base resolution.
    public let upsampler: Text2ImUNet?
    /// Base stage settings (default: the notebook's).
    public var baseSettings: StageSettings
    /// Upsampler stage settings (default: the notebook's).
    public var upsampleSettings: StageSettings

    /// Checks the models are inpainting models of the right kinds.
    public init(base: Text2ImUNet, upsampler: Text2ImUNet? = nil) throws {
        guard base.options.inpaint, !base.options.superRes else {
            throw GlideModelError.missingInput(name: "inpaint_image/inpaint_mask inputs (a base inpainting model)",
                                             model: base.options.referenceClassName)
        }
        if let upsampler, !(upsampler.options.inpaint && upsampler.options.superRes) {
            throw GlideModelError.missingInput(name: "inpaint and low_res inputs (an inpainting upsampler)",
                                             model: upsampler.options.referenceClassName)
        }
        self.base = base
        self.upsampler = upsampler
        baseSettings = .notebook(for: base.options)
        upsampleSettings = upsampler.map { .notebook(for: $0.options) }
            ?? StageSettings(respacing: "fast27", sampler: .ddpm, guidanceScale: nil, startNoiseScale: 0.997)
    }

    /// What a run produced.
    public struct Result {
        /// The base stage's samples `[batch, 3, s, s]` (s = the base model's `image_size`), in [-1, 1].
        public var lowRes: FloatTensor
        /// The upsampled samples `[batch, 3, S, S]`, when there is an upsampler.
        public var upsampled: FloatTensor?
    }

    /// Total sampling steps of both stages with the current settings.
    public func totalSteps() throws -> Int {
        var n = try GaussianDiffusion(schedule: NoiseSchedule(name: base.options.noiseSchedule),
                                      steps: base.options.diffusionSteps, respacing: baseSettings.respacing).steps
        if let up = upsampler {
            n += try GaussianDiffusion(schedule: NoiseSchedule(name: up.options.noiseSchedule),
                                       steps: up.options.diffusionSteps, respacing: upsampleSettings.respacing).steps
        }
        return n
    }

    /// Inpaints `batch` images.
    /// - Parameters:
    ///   - prompt: the text; tokenized per stage with each model's `text_ctx`.
    ///   - sourceLow: the source image at the base size, `[1, 3, s, s]` in [-1, 1] (the notebook's
    ///     `read_image(path, 64)`).
    ///   - sourceHigh: the source at the upsampler's size `[1, 3, S, S]` (`read_image(path, 256)`); needed with
    ///     an upsampler.
    ///   - mask: `[1, 1, s, s]`, 1 = keep the source, 0 = generate (upsampled with nearest for the upsampler).
    ///   - seed: noise seed; the upsampler uses `seed ^ UpsampleStage.seedOffset`. `baseNoise` /
    ///     `upsampleNoise` replace the seeded noise (replayed arrays).
    public func run(prompt: String, tokenizer: GlideTokenizer, batch: Int = 1, sourceLow: FloatTensor,
                    sourceHigh: FloatTensor?, mask: FloatTensor, seed: UInt64,
                    baseNoise: SamplingNoise? = nil, upsampleNoise: SamplingNoise? = nil,
                    progress: ((PipelineProgress) -> Void)? = nil) throws -> Result {
        let total = try totalSteps()
        var done = 0
        let baseCtx = base.options.textCtx
        let baseInputs = StageInputs(prompts: [TextTokens(prompt: prompt, tokenizer: tokenizer, textCtx: baseCtx)],
                                     unconditional: .empty(tokenizer: tokenizer, textCtx: baseCtx),
                                     inpaintImage: sourceLow, inpaintMask: mask)
        let low = try DiffusionStage(model: base).run(
            batch: batch, inputs: baseInputs, settings: baseSettings, noise: baseNoise ?? SamplingNoise(seed: seed),
            progress: { p in progress?(PipelineProgress(stage: "base", completed: done + p.completed, total: total, step: p)) })
        done += try GaussianDiffusion(schedule: NoiseSchedule(name: base.options.noiseSchedule),
                                      steps: base.options.diffusionSteps, respacing: baseSettings.respacing).steps
        guard let upsampler else { return Result(lowRes: low, upsampled: nil) }
        base.file.releaseResidentMemory()   // peak memory: the larger model, not both
        guard let sourceHigh else { throw GlideModelError.missingInput(name: "inpaint_image at the upsampler's size", model: upsampler.options.referenceClassName) }
        let upCtx = upsampler.options.textCtx
        let upInputs = StageInputs(prompts: [TextTokens(prompt: prompt, tokenizer: tokenizer, textCtx: upCtx)],
                                   unconditional: .empty(tokenizer: tokenizer, textCtx: upCtx),
                                   lowRes: low, inpaintImage: sourceHigh, inpaintMask: mask)
        let size = sourceHigh.shape.count == 4 ? sourceHigh.shape[3] : upsampler.options.imageSize
        let high = try DiffusionStage(model: upsampler).run(
            batch: batch, size: size, inputs: upInputs, settings: upsampleSettings,
            noise: upsampleNoise ?? SamplingNoise(seed: seed ^ UpsampleStage.seedOffset),
            progress: { p in progress?(PipelineProgress(stage: "upsample", completed: done + p.completed, total: total, step: p)) })
        return Result(lowRes: low, upsampled: high)
    }
}
