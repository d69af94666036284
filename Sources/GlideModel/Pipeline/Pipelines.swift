// The notebooks' multi-stage recipes as library calls: 64x64 -> 256x256 upsampling (text2im.ipynb's second
// half) and two-stage inpainting (inpaint.ipynb), so the CLI commands stay thin; Text2ImPipeline.swift holds
// text -> 64 -> 256. Every run is a PipelineRun the caller iterates.
import Kernels

/// The stages of the notebooks' recipes.
public enum PipelineStage: String, Sendable, CaseIterable {
    /// The 64x64 stage (text2im base or inpainting base).
    case base
    /// The 256x256 stage (upsampler or inpainting upsampler).
    case upsample
}

/// Progress across the stages of a pipeline run.
public struct PipelineProgress {
    /// The running stage.
    public var stage: PipelineStage
    /// Steps done across all stages.
    public var completed: Int
    /// Steps of all stages together.
    public var total: Int
    /// The sampler's report for the step just taken.
    public var step: SamplingProgress
}

/// What a `PipelineRun` reports, one value per `next()`.
public enum PipelineEvent {
    /// One sampling step was taken.
    case step(PipelineProgress)
    /// A stage finished with this output `[batch, 3, S, S]` in [-1, 1].
    case stageFinished(PipelineStage, FloatTensor)
}

/// How many threads the kernels use while a pipeline works. `nil` keeps `KernelSettings.threadCount`
/// (all online CPUs, or `GLIDE_THREADS`); a count is set for the duration of each step and restored after,
/// so a caller never writes the global itself. Results are bit-identical for every count.
public struct ComputeOptions: Equatable, Sendable {
    /// Worker threads, or nil for the kernels' default.
    public var threadCount: Int?

    /// Options with `threadCount` threads (nil: the default).
    public init(threadCount: Int? = nil) { self.threadCount = threadCount }

    /// Runs `body` with the kernels' thread count set to `threadCount` (when given), restoring it after.
    public func perform<T>(_ body: () throws -> T) rethrows -> T {
        guard let threadCount else { return try body() }
        let saved = KernelSettings.threadCount
        KernelSettings.threadCount = threadCount
        defer { KernelSettings.threadCount = saved }
        return try body()
    }

    /// Checks the thread count is at least 1.
    public func validate() throws {
        if let threadCount, threadCount < 1 {
            throw GlideModelError.invalidSetting(name: "thread count", expected: "at least 1", actual: "\(threadCount)")
        }
    }
}

/// A pipeline run as a value the caller iterates: each `next()` takes one sampling step (or finishes a stage)
/// and returns what happened, so a command line, a GUI or a server drives the run, shows progress and cancels
/// it by no longer calling `next()`. Stages are prepared lazily: a stage's inputs (e.g. the base stage's
/// output) are only needed when it starts.
///
/// ```swift
/// var run = try pipeline.start(Text2ImRequest(prompt: "a corgi", seed: 7))
/// while let event = try run.next() {
///     if case .step(let p) = event { print("\(p.completed)/\(p.total)") }
/// }
/// let image = run.finalOutput!          // [1, 3, 256, 256] in [-1, 1]
/// ```
public struct PipelineRun {
    /// One stage of the plan: its name, its step count and how to start it from the outputs so far.
    struct Planned {
        let stage: PipelineStage
        let steps: Int
        let start: ([PipelineStage: FloatTensor]) throws -> SamplingLoop
    }

    let plan: [Planned]
    /// Thread count applied while stepping.
    public let compute: ComputeOptions
    /// Steps of all stages together.
    public let totalSteps: Int
    /// Step count of each planned stage, in order.
    public var stageSteps: [(stage: PipelineStage, steps: Int)] { plan.map { ($0.stage, $0.steps) } }
    /// Outputs of the finished stages.
    public private(set) var outputs: [PipelineStage: FloatTensor] = [:]
    /// Steps done across all stages.
    public private(set) var completed = 0
    private var index = 0
    private var current: SamplingLoop?

    init(plan: [Planned], compute: ComputeOptions) {
        self.plan = plan
        self.compute = compute
        totalSteps = plan.reduce(0) { $0 + $1.steps }
    }

    /// True when every stage has finished.
    public var isFinished: Bool { index == plan.count }

    /// The last stage's output once the run is finished.
    public var finalOutput: FloatTensor? { isFinished ? plan.last.flatMap { outputs[$0.stage] } : nil }

    /// Takes the next step (starting the next stage when needed) and reports it; nil when finished.
    public mutating func next() throws -> PipelineEvent? {
        guard index < plan.count else { return nil }
        let planned = plan[index]
        if current == nil {
            let done = outputs
            current = try compute.perform { try planned.start(done) }
        }
        if let step = try compute.perform({ try current!.next() }) {
            completed += 1
            return .step(PipelineProgress(stage: planned.stage, completed: completed, total: totalSteps, step: step))
        }
        let loop = current!
        let output = FloatTensor(shape: loop.shape, values: loop.sample)
        outputs[planned.stage] = output
        current = nil
        index += 1
        return .stageFinished(planned.stage, output)
    }

    /// Runs to the end, calling `progress` after every step; returns the outputs of all stages.
    @discardableResult
    public mutating func finish(progress: ((PipelineProgress) -> Void)? = nil) throws -> [PipelineStage: FloatTensor] {
        while let event = try next() {
            if case .step(let p) = event { progress?(p) }
        }
        return outputs
    }
}

extension DiffusionStage {
    /// This stage alone as a `PipelineRun` (named `stage`, default by the model's kind), e.g. for replaying
    /// the reference's inputs into any model variant.
    public func start(batch: Int, size: Int? = nil, inputs: StageInputs, settings: StageSettings, noise: SamplingNoise,
                      stage: PipelineStage? = nil, compute: ComputeOptions = ComputeOptions()) throws -> PipelineRun {
        try compute.validate()
        // Inputs are checked now, not when the first step is taken.
        let loop = try compute.perform { try makeLoop(batch: batch, size: size, inputs: inputs, settings: settings, noise: noise) }
        let name = stage ?? (model.options.superRes ? .upsample : .base)
        return PipelineRun(plan: [.init(stage: name, steps: loop.count, start: { _ in loop })], compute: compute)
    }
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

    /// `run(model:lowRes:prompt:...)` as a run the caller iterates (see `PipelineRun`); inputs and the model's
    /// kind (`GlideModelError.wrongModelKind` unless a plain upsampler) are checked before this returns.
    /// This is the call `glide upsample` makes.
    public static func start(model: Text2ImUNet, lowRes: FloatTensor, prompt: String, tokenizer: GlideTokenizer,
                             settings: StageSettings? = nil, noise: SamplingNoise,
                             compute: ComputeOptions = ComputeOptions()) throws -> PipelineRun {
        guard model.options.superRes, !model.options.inpaint else {
            throw GlideModelError.wrongModelKind(role: "upsampler", expected: "SuperResText2ImUNet",
                                                 actual: model.options.referenceClassName)
        }
        let ctx = model.options.textCtx
        let inputs = StageInputs(prompts: [TextTokens(prompt: prompt, tokenizer: tokenizer, textCtx: ctx)],
                                 unconditional: .empty(tokenizer: tokenizer, textCtx: ctx), lowRes: lowRes)
        return try DiffusionStage(model: model).start(batch: max(1, lowRes.shape.first ?? 1), inputs: inputs,
                                                      settings: settings ?? .notebook(for: model.options), noise: noise,
                                                      stage: .upsample, compute: compute)
    }

    /// As `run(model:lowRes:prompt:...)` with tokens given (one row per image or one shared row);
    /// `unconditional` is only needed if `settings` asks for guidance.
    public static func run(model: Text2ImUNet, lowRes: FloatTensor, prompts: [TextTokens],
                           unconditional: TextTokens? = nil, settings: StageSettings? = nil, outputSize: Int? = nil,
                           noise: SamplingNoise, progress: ((SamplingProgress) -> Void)? = nil) throws -> FloatTensor {
        guard model.options.superRes else {
            throw GlideModelError.wrongModelKind(role: "upsampler", expected: "SuperResText2ImUNet",
                                                 actual: model.options.referenceClassName)
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
    /// Thread count while sampling.
    public var compute = ComputeOptions()

    /// Checks the models are inpainting models of the right kinds (`GlideModelError.wrongModelKind`).
    public init(base: Text2ImUNet, upsampler: Text2ImUNet? = nil) throws {
        guard base.options.inpaint, !base.options.superRes else {
            throw GlideModelError.wrongModelKind(role: "base inpainting", expected: "InpaintText2ImUNet",
                                                 actual: base.options.referenceClassName)
        }
        if let upsampler, !(upsampler.options.inpaint && upsampler.options.superRes) {
            throw GlideModelError.wrongModelKind(role: "inpainting upsampler", expected: "SuperResInpaintText2ImUnet",
                                                 actual: upsampler.options.referenceClassName)
        }
        self.base = base
        self.upsampler = upsampler
        baseSettings = .notebook(for: base.options)
        upsampleSettings = upsampler.map { .notebook(for: $0.options) }
            ?? StageSettings(respacing: .fast27, sampler: .ddpm, guidanceScale: nil,
                             startNoiseScale: StageSettings.notebookUpsampleTemperature)
    }

    /// Loads the models from converted files (both before sampling, so a bad file fails fast).
    public init(basePath: String, upsamplerPath: String? = nil) throws {
        try self.init(base: try Text2ImUNet(path: basePath), upsampler: try upsamplerPath.map { try Text2ImUNet(path: $0) })
    }

    /// The GPT-2 tokenizer: from `directory` when given, else the one embedded in the base model's file.
    public func tokenizer(directory: String? = nil) throws -> GlideTokenizer {
        try GlideTokenizer.load(directory: directory, embeddedIn: [base.file])
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
        try baseSettings.stepCount(for: base.options) + (try upsampler.map { try upsampleSettings.stepCount(for: $0.options) } ?? 0)
    }

    /// Starts inpainting `batch` images; iterate the returned run (see `PipelineRun`). Inputs and settings are
    /// checked here, before any sampling.
    /// - Parameters:
    ///   - prompt: the text; tokenized per stage with each model's `text_ctx`.
    ///   - sourceLow: the source image at the base size, `[1, 3, s, s]` in [-1, 1] (the notebook's
    ///     `read_image(path, 64)`).
    ///   - sourceHigh: the source at the upsampler's size `[1, 3, S, S]` (`read_image(path, 256)`); needed with
    ///     an upsampler.
    ///   - mask: `[1, 1, s, s]`, 1 = keep the source, 0 = generate (upsampled with nearest for the upsampler).
    ///   - seed: noise seed; the upsampler uses `seed ^ UpsampleStage.seedOffset`. `baseNoise` /
    ///     `upsampleNoise` replace the seeded noise (replayed arrays).
    public func start(prompt: String, tokenizer: GlideTokenizer, batch: Int = 1, sourceLow: FloatTensor,
                      sourceHigh: FloatTensor?, mask: FloatTensor, seed: UInt64,
                      baseNoise: SamplingNoise? = nil, upsampleNoise: SamplingNoise? = nil) throws -> PipelineRun {
        try compute.validate()
        try baseSettings.validate()
        try upsampleSettings.validate()
        let baseCtx = base.options.textCtx
        let baseInputs = StageInputs(prompts: [TextTokens(prompt: prompt, tokenizer: tokenizer, textCtx: baseCtx)],
                                     unconditional: .empty(tokenizer: tokenizer, textCtx: baseCtx),
                                     inpaintImage: sourceLow, inpaintMask: mask)
        let base = self.base, baseSettings = self.baseSettings
        // The base stage's inputs are checked now.
        let baseLoop = try compute.perform {
            try DiffusionStage(model: base).makeLoop(batch: batch, inputs: baseInputs, settings: baseSettings,
                                                     noise: baseNoise ?? SamplingNoise(seed: seed))
        }
        var plan = [PipelineRun.Planned(stage: .base, steps: baseLoop.count, start: { _ in baseLoop })]
        if let upsampler {
            guard let sourceHigh else {
                throw GlideModelError.missingInput(name: "inpaint_image at the upsampler's size", model: upsampler.options.referenceClassName)
            }
            let upCtx = upsampler.options.textCtx
            let prompts = [TextTokens(prompt: prompt, tokenizer: tokenizer, textCtx: upCtx)]
            let empty = TextTokens.empty(tokenizer: tokenizer, textCtx: upCtx)
            let size = sourceHigh.shape.count == 4 ? sourceHigh.shape[3] : upsampler.options.imageSize
            let settings = upsampleSettings
            plan.append(.init(stage: .upsample, steps: try settings.stepCount(for: upsampler.options), start: { outputs in
                base.releaseResidentMemory()   // peak memory: the larger model, not both
                let inputs = StageInputs(prompts: prompts, unconditional: empty, lowRes: outputs[.base],
                                         inpaintImage: sourceHigh, inpaintMask: mask)
                return try DiffusionStage(model: upsampler).makeLoop(
                    batch: batch, size: size, inputs: inputs, settings: settings,
                    noise: upsampleNoise ?? SamplingNoise(seed: seed ^ UpsampleStage.seedOffset))
            }))
        }
        return PipelineRun(plan: plan, compute: compute)
    }

    /// `start(...)` run to the end, `progress` called after every step.
    public func run(prompt: String, tokenizer: GlideTokenizer, batch: Int = 1, sourceLow: FloatTensor,
                    sourceHigh: FloatTensor?, mask: FloatTensor, seed: UInt64,
                    baseNoise: SamplingNoise? = nil, upsampleNoise: SamplingNoise? = nil,
                    progress: ((PipelineProgress) -> Void)? = nil) throws -> Result {
        var run = try start(prompt: prompt, tokenizer: tokenizer, batch: batch, sourceLow: sourceLow,
                            sourceHigh: sourceHigh, mask: mask, seed: seed, baseNoise: baseNoise,
                            upsampleNoise: upsampleNoise)
        let outputs = try run.finish(progress: progress)
        return Result(lowRes: outputs[.base]!, upsampled: outputs[.upsample])
    }
}
