// Port of the sampling cells of notebooks/text2im.ipynb and notebooks/inpaint.ipynb: one diffusion stage
// (base, upsampler, inpainting base, inpainting upsampler) with the notebook's conditioning, guidance wrapper,
// low-res quantization, upsample temperature and denoised_fn forcing, for any Text2ImUNet variant.

/// One row of text conditioning as the reference's `padded_tokens_and_mask` returns it.
public struct TextTokens: Equatable, Sendable {
    /// `text_ctx` token ids, padded with the end token.
    public var tokens: [Int]
    /// `text_ctx` flags, true for real tokens.
    public var mask: [Bool]

    /// Tokens and mask as given (both `text_ctx` long).
    public init(tokens: [Int], mask: [Bool]) {
        self.tokens = tokens
        self.mask = mask
    }

    /// `tokenizer.padded_tokens_and_mask(tokenizer.encode(prompt), textCtx)`.
    public init(prompt: String, tokenizer: GlideTokenizer, textCtx: Int) {
        let (t, m) = tokenizer.paddedTokensAndMask(tokenizer.encode(prompt), textCtx: textCtx)
        self.init(tokens: t, mask: m)
    }

    /// The empty prompt the notebooks pair with the prompt for classifier-free guidance:
    /// `padded_tokens_and_mask([], textCtx)` (all end tokens, mask all false).
    public static func empty(tokenizer: GlideTokenizer, textCtx: Int) -> TextTokens {
        empty(endToken: tokenizer.endToken, textCtx: textCtx)
    }

    /// The empty prompt for a vocabulary whose end token (`n_vocab - 1`) is `endToken`.
    public static func empty(endToken: Int, textCtx: Int) -> TextTokens {
        TextTokens(tokens: [Int](repeating: endToken, count: textCtx), mask: [Bool](repeating: false, count: textCtx))
    }
}

/// How one stage samples. `notebook(for:)` gives the reference notebooks' recipe for each model kind.
public struct StageSettings: Equatable, Sendable {
    /// Timestep respacing (the reference's `"100"`, `"fast27"`, `"ddim50"`, `"10,10,10"`).
    public var respacing: TimestepRespacing
    /// DDPM (`p_sample_loop`), DDIM (`ddim_sample_loop`, eta 0), or a DPM-Solver++ sampler, which takes the
    /// respacing's step count and places its steps on the model's own schedule by `solverSpacing`.
    public var sampler: SamplerKind
    /// Classifier-free guidance scale (the prompt paired with the empty prompt), or nil: one row per image.
    public var guidanceScale: Float?
    /// Multiplies the start noise: the notebooks' `upsample_temp` (0.997) for upsamplers, 1 otherwise.
    public var startNoiseScale: Float
    /// Snap `low_res` to 8-bit levels first, as the notebooks' `((samples + 1) * 127.5).round() / 127.5 - 1`.
    public var quantizeLowRes: Bool
    /// For inpainting models given an image and mask: the notebook's `denoised_fn`, forcing every x_0
    /// prediction to the source where the mask is 1.
    public var forceKnownRegion: Bool
    /// DPM-Solver++ samplers: how their steps are spaced over the model's schedule.
    public var solverSpacing: SolverSpacing = .time
    /// With a guidance scale: guide only where the noise level is inside (nil: every step).
    public var guidanceInterval: GuidanceInterval? = nil

    /// Explicit settings.
    public init(respacing: TimestepRespacing, sampler: SamplerKind, guidanceScale: Float?, startNoiseScale: Float = 1,
                quantizeLowRes: Bool = true, forceKnownRegion: Bool = true) {
        self.respacing = respacing
        self.sampler = sampler
        self.guidanceScale = guidanceScale
        self.startNoiseScale = startNoiseScale
        self.quantizeLowRes = quantizeLowRes
        self.forceKnownRegion = forceKnownRegion
    }

    /// The notebooks' recipe for a model of these options:
    /// - base (text2im.ipynb): `"100"` DDPM steps, guidance 3.0;
    /// - base inpainting (inpaint.ipynb): `"100"` DDPM steps, guidance 5.0, forcing;
    /// - upsampler (text2im.ipynb): `"fast27"` DDIM, no guidance, start noise × 0.997, low_res quantized;
    /// - inpainting upsampler (inpaint.ipynb): `"fast27"` DDPM, no guidance, × 0.997, quantized, forcing.
    public static func notebook(for options: ModelOptions) -> StageSettings {
        switch (options.superRes, options.inpaint) {
        case (false, false):
            return StageSettings(respacing: .steps(100), sampler: .ddpm, guidanceScale: notebookBaseGuidance)
        case (false, true):
            return StageSettings(respacing: .steps(100), sampler: .ddpm, guidanceScale: notebookInpaintGuidance)
        case (true, false):
            return StageSettings(respacing: .fast27, sampler: .ddim, guidanceScale: nil,
                                 startNoiseScale: notebookUpsampleTemperature)
        case (true, true):
            return StageSettings(respacing: .fast27, sampler: .ddpm, guidanceScale: nil,
                                 startNoiseScale: notebookUpsampleTemperature)
        }
    }

    /// The notebooks' `upsample_temp`.
    public static let notebookUpsampleTemperature: Float = 0.997
    /// text2im.ipynb's `guidance_scale`.
    public static let notebookBaseGuidance: Float = 3.0
    /// inpaint.ipynb's `guidance_scale`.
    public static let notebookInpaintGuidance: Float = 5.0

    /// Sampling steps this respacing gives for `options`' schedule.
    public func stepCount(for options: ModelOptions) throws -> Int {
        try GaussianDiffusion(schedule: options.noiseSchedule, steps: options.diffusionSteps, respacing: respacing).steps
    }

    /// Checks the values a caller may set: a finite guidance scale, a finite positive start-noise scale.
    public func validate() throws {
        if let g = guidanceScale, !g.isFinite {
            throw GlideModelError.invalidSetting(name: "guidance scale", expected: "a finite number", actual: "\(g)")
        }
        guard startNoiseScale.isFinite, startNoiseScale > 0 else {
            throw GlideModelError.invalidSetting(name: "start noise scale", expected: "a positive number",
                                                 actual: "\(startNoiseScale)")
        }
    }
}

/// What a stage is conditioned on, in the reference's terms.
public struct StageInputs: Sendable {
    /// One `TextTokens` per image, or a single one shared by the whole batch (`[tokens] * batch_size`).
    public var prompts: [TextTokens]
    /// The empty prompt for guidance (`TextTokens.empty`); required when the settings have a guidance scale.
    public var unconditional: TextTokens?
    /// Super-resolution models: the low-resolution images `[batch or 1, 3, h, w]` in [-1, 1] (any h, w; the
    /// model resizes them bilinearly). Quantized to 8-bit levels first when `quantizeLowRes` is set (idempotent:
    /// an already quantized low_res is unchanged).
    public var lowRes: FloatTensor?
    /// Inpainting models: the source image `[batch or 1, 3, H, W]` in [-1, 1] at the stage's output size.
    /// The stage multiplies it by the mask as the notebook does, so an already masked image (the notebook's
    /// `inpaint_image`) gives the same result for a 0/1 mask.
    public var inpaintImage: FloatTensor?
    /// Inpainting models: the mask `[batch or 1, 1, h, w]`, 1 = keep the source, 0 = generate. A mask smaller
    /// than the output is upsampled with `F.interpolate(mode='nearest')` (the notebook's 64 -> 256 mask).
    public var inpaintMask: FloatTensor?

    /// Bundles the inputs.
    public init(prompts: [TextTokens], unconditional: TextTokens? = nil, lowRes: FloatTensor? = nil,
                inpaintImage: FloatTensor? = nil, inpaintMask: FloatTensor? = nil) {
        self.prompts = prompts
        self.unconditional = unconditional
        self.lowRes = lowRes
        self.inpaintImage = inpaintImage
        self.inpaintMask = inpaintMask
    }
}

/// One diffusion stage: a loaded model sampled the way the reference notebooks do.
///
/// ```swift
/// let stage = DiffusionStage(model: try Text2ImUNet(path: "upsample.glw"))
/// let up = try stage.run(batch: 1, inputs: StageInputs(prompts: [tokens], lowRes: sample64),
///                        settings: .notebook(for: stage.model.options), noise: SamplingNoise(seed: 7))
/// ```
public struct DiffusionStage: Sendable {
    /// The network (any variant: base, super-res, inpaint, super-res + inpaint).
    public let model: Text2ImUNet

    /// Wraps a loaded model.
    public init(model: Text2ImUNet) { self.model = model }

    /// Samples `batch` images of `size` x `size` (default: the model's `image_size`) and returns them as
    /// `[batch, 3, size, size]` in [-1, 1].
    ///
    /// Guidance doubles the rows the model sees (prompt rows, then empty-prompt rows, the same x, low_res and
    /// inpaint inputs for both halves) exactly as the notebooks' `model_fn`; without it there is one row per image.
    /// `noise` is the sampler's (seeded, or replayed arrays); `progress` is called after every step.
    public func run(batch: Int, size: Int? = nil, inputs: StageInputs, settings: StageSettings,
                    noise: SamplingNoise, progress: ((SamplingProgress) -> Void)? = nil) throws -> FloatTensor {
        var loop = try makeLoop(batch: batch, size: size, inputs: inputs, settings: settings, noise: noise)
        while let p = try loop.next() { progress?(p) }
        return FloatTensor(shape: loop.shape, values: loop.sample)
    }

    /// The stage as a loop the caller steps (see `run` for the parameters): inputs are checked and the text
    /// encoded now; each `next()` runs one network evaluation. `PipelineRun` drives these.
    /// `condition` is a `cond_fn` (DDPM only, e.g. `ClipGuidance.conditioning`; see `SamplingLoop`).
    public func makeLoop(batch: Int, size: Int? = nil, inputs: StageInputs, settings: StageSettings,
                         noise: SamplingNoise, condition: ConditioningFunction? = nil) throws -> SamplingLoop {
        try settings.validate()
        let o = model.options
        let cls = o.referenceClassName
        let side = size ?? o.imageSize
        guard batch > 0, side > 0 else {
            throw GlideModelError.inputShapeMismatch(name: "x", expected: [-1, 3, -1, -1], actual: [batch, 3, side, side])
        }
        let rows = settings.guidanceScale == nil ? batch : 2 * batch
        let plane = side * side

        // Text conditioning, computed once for every row the model will see.
        var text: TextConditioning? = nil
        if o.xfWidth > 0 {
            guard inputs.prompts.count == batch || inputs.prompts.count == 1 else {
                throw GlideModelError.inputShapeMismatch(name: "prompts", expected: [batch], actual: [inputs.prompts.count])
            }
            var rowsTokens = (0..<batch).map { inputs.prompts.count == 1 ? inputs.prompts[0] : inputs.prompts[$0] }
            if settings.guidanceScale != nil {
                guard let empty = inputs.unconditional else {
                    throw GlideModelError.missingInput(name: "unconditional tokens (for guidance)", model: cls)
                }
                rowsTokens += [TextTokens](repeating: empty, count: batch)
            }
            for t in rowsTokens where t.tokens.count != o.textCtx || t.mask.count != o.textCtx {
                throw GlideModelError.inputShapeMismatch(name: "tokens", expected: [o.textCtx], actual: [t.tokens.count])
            }
            text = try model.encodeText(tokens: rowsTokens.flatMap(\.tokens), mask: rowsTokens.flatMap(\.mask),
                                        batch: rows)
        }

        // low_res: quantized as the notebook, repeated to the model's rows.
        var lowRes: FloatTensor? = nil
        if o.superRes {
            guard let given = inputs.lowRes else { throw GlideModelError.missingInput(name: "low_res", model: cls) }
            guard given.shape.count == 4, given.shape[0] == batch || given.shape[0] == 1, given.shape[1] == 3 else {
                throw GlideModelError.inputShapeMismatch(name: "low_res", expected: [batch, 3, -1, -1], actual: given.shape)
            }
            let values = settings.quantizeLowRes ? PipelineMath.quantizeTo8BitLevels(given.values) : given.values
            lowRes = PipelineMath.repeatRows(FloatTensor(shape: given.shape, values: values), to: rows)
        } else if inputs.lowRes != nil {
            throw GlideModelError.unexpectedInput(name: "low_res", model: cls)
        }

        // Inpainting: the masked source and the mask at the output size.
        var maskedImage: FloatTensor? = nil, mask: FloatTensor? = nil
        if o.inpaint {
            switch (inputs.inpaintImage, inputs.inpaintMask) {
            case (nil, nil): break   // the reference's zeros: nothing known
            case (nil, _): throw GlideModelError.missingInput(name: "inpaint_image", model: cls)
            case (_, nil): throw GlideModelError.missingInput(name: "inpaint_mask", model: cls)
            case let (image?, m?):
                guard image.shape.count == 4, image.shape[0] == batch || image.shape[0] == 1,
                      image.shape[1] == 3, image.shape[2] == side, image.shape[3] == side else {
                    throw GlideModelError.inputShapeMismatch(name: "inpaint_image", expected: [batch, 3, side, side], actual: image.shape)
                }
                guard m.shape.count == 4, m.shape[0] == image.shape[0], m.shape[1] == 1, m.shape[2] > 0, m.shape[3] > 0,
                      m.shape[2] <= side, m.shape[3] <= side else {
                    throw GlideModelError.inputShapeMismatch(name: "inpaint_mask", expected: [image.shape[0], 1, -1, -1], actual: m.shape)
                }
                let fullMask = PipelineMath.interpolateNearest(m, height: side, width: side)
                let masked = PipelineMath.multiplyByMask(image, fullMask)
                maskedImage = PipelineMath.repeatRows(masked, to: batch)
                mask = PipelineMath.repeatRows(fullMask, to: batch)
            }
        } else if inputs.inpaintImage != nil || inputs.inpaintMask != nil {
            throw GlideModelError.unexpectedInput(name: inputs.inpaintImage != nil ? "inpaint_image" : "inpaint_mask", model: cls)
        }
        let modelImage = maskedImage.map { PipelineMath.repeatRows($0, to: rows) }
        let modelMask = mask.map { PipelineMath.repeatRows($0, to: rows) }

        let diffusion = settings.sampler.isDPMSolver
            ? try GaussianDiffusion(schedule: o.noiseSchedule, steps: o.diffusionSteps,
                                    solverSteps: try settings.respacing.timesteps(originalSteps: o.diffusionSteps).count,
                                    spacing: settings.solverSpacing)
            : try GaussianDiffusion(schedule: o.noiseSchedule, steps: o.diffusionSteps, respacing: settings.respacing)
        let model = self.model
        // Steps outside a guidance interval pass only the conditional rows: the first `batch` of every input.
        let conditionalOnly = settings.guidanceScale != nil && settings.guidanceInterval != nil
        let conditionalText = conditionalOnly ? text?.selecting(rows: Array(0..<batch)) : nil
        let conditionalLowRes = conditionalOnly ? lowRes.map { PipelineMath.repeatRows($0, to: batch) } : nil
        let network: DiffusionModel = { x, timesteps in
            let n = timesteps.count
            let half = conditionalOnly && n == batch
            let out = try model.forward(x: FloatTensor(shape: [n, 3, side, side], values: x),
                                        timesteps: timesteps.map(Float.init), text: half ? conditionalText : text,
                                        lowRes: half ? conditionalLowRes : lowRes,
                                        inpaintImage: half ? maskedImage : modelImage, inpaintMask: half ? mask : modelMask)
            return out.values
        }

        // The notebook's denoised_fn: x_start * (1 - mask) + inpaint_image * mask, with inpaint_image already
        // the masked source (so known pixels become exactly the source).
        var forcing: ((inout [Float]) -> Void)? = nil
        if settings.forceKnownRegion, let maskedImage, let mask {
            let image = maskedImage.values, m = mask.values
            forcing = { x in
                for b in 0..<batch {
                    for c in 0..<3 {
                        let base = (b * 3 + c) * plane, mbase = b * plane
                        for i in 0..<plane {
                            let k = m[mbase + i]
                            x[base + i] = x[base + i] * (1 - k) + image[base + i] * k
                        }
                    }
                }
            }
        }

        let options = SamplingOptions(sampler: settings.sampler, clipDenoised: true,
                                      guidanceScale: settings.guidanceScale, startNoiseScale: settings.startNoiseScale,
                                      guidanceInterval: settings.guidanceInterval)
        return try SamplingLoop(diffusion: diffusion, shape: [batch, 3, side, side], options: options, noise: noise,
                                model: network, denoisedFn: forcing, condition: condition)
    }
}

/// The small tensor helpers the notebooks use between stages.
public enum PipelineMath {
    /// `((x + 1) * 127.5).round() / 127.5 - 1` in float32 with round-half-even (torch's `round`): a sample
    /// snapped to the 8-bit levels a saved image would have.
    public static func quantizeTo8BitLevels(_ values: [Float]) -> [Float] {
        values.map { (($0 + 1) * 127.5).rounded(.toNearestOrEven) / 127.5 - 1 }
    }

    /// `F.interpolate(t, (height, width), mode='nearest')` for `[N, C, h, w]`: source index
    /// `min(floor(dst * Float(in) / Float(out)), in - 1)` in float32, as torch computes it.
    public static func interpolateNearest(_ t: FloatTensor, height: Int, width: Int) -> FloatTensor {
        let n = t.shape[0], c = t.shape[1], h = t.shape[2], w = t.shape[3]
        if h == height && w == width { return t }
        func indices(_ src: Int, _ dst: Int) -> [Int] {
            let scale = Float(src) / Float(dst)
            return (0..<dst).map { min(Int((Float($0) * scale).rounded(.down)), src - 1) }
        }
        let ys = indices(h, height), xs = indices(w, width)
        var out = [Float](repeating: 0, count: n * c * height * width)
        for p in 0..<(n * c) {
            for y in 0..<height {
                for x in 0..<width { out[(p * height + y) * width + x] = t.values[(p * h + ys[y]) * w + xs[x]] }
            }
        }
        return FloatTensor(shape: [n, c, height, width], values: out)
    }

    /// `image * mask` with the mask `[N, 1, H, W]` broadcast over the image's channels.
    public static func multiplyByMask(_ image: FloatTensor, _ mask: FloatTensor) -> FloatTensor {
        let n = image.shape[0], c = image.shape[1], plane = image.shape[2] * image.shape[3]
        var out = image.values
        for b in 0..<n {
            for ch in 0..<c {
                let base = (b * c + ch) * plane, mbase = b * plane
                for i in 0..<plane { out[base + i] = image.values[base + i] * mask.values[mbase + i] }
            }
        }
        return FloatTensor(shape: image.shape, values: out)
    }

    /// Rows `0..<rows` of `t` (first dimension), cycling through its rows: a single row is repeated
    /// (`.repeat(rows, 1, 1, 1)`), and `batch` rows become `2 * batch` (the guided batch's two halves).
    public static func repeatRows(_ t: FloatTensor, to rows: Int) -> FloatTensor {
        let have = t.shape[0]
        if have == rows { return t }
        let per = t.values.count / have
        var out: [Float] = []
        out.reserveCapacity(rows * per)
        for r in 0..<rows {
            let s = (r % have) * per
            out += t.values[s..<(s + per)]
        }
        return FloatTensor(shape: [rows] + t.shape.dropFirst(), values: out)
    }
}
