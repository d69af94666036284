// Port of the sampling loops (p_sample_loop, ddim_sample_loop) with the text2im notebook's
// classifier-free guidance wrapper, driven by a model closure so any network plugs in.

/// The denoising network as the sampler sees it.
///
/// Receives x_t as NCHW float32 `[rows, C, H, W]` and one ORIGINAL timestep per row (already mapped through
/// `timestepMap`, as the reference's `_WrappedModel` does); returns `[rows, 2*C, H, W]`: ε in the first C
/// channels, the variance interpolation values in [-1, 1] in the last C. With guidance, `rows` is twice the
/// batch: the first half are the conditional rows, the second half the unconditional ones (same x); steps outside
/// a guidance interval pass the conditional rows alone (`rows` == batch).
public typealias DiffusionModel = (_ x: [Float], _ timesteps: [Int]) throws -> [Float]

/// A conditioning function as the reference's `cond_fn(x, t)`: receives x_t `[batch, C, H, W]` and one
/// ORIGINAL timestep per row (mapped as `_WrappedModel` maps it) and returns the gradient (already scaled) that
/// `condition_mean` adds to the DDPM mean, multiplied by the step's variance. See `ClipGuidance`.
public typealias ConditioningFunction = (_ x: [Float], _ timesteps: [Int]) throws -> [Float]

/// Sampling settings.
public struct SamplingOptions: Sendable {
    /// DDPM (`p_sample_loop`), DDIM (`ddim_sample_loop`) or DPM-Solver++ (`DPMSolver`, over the process's
    /// timesteps: build it with `GaussianDiffusion(schedule:steps:solverSteps:spacing:)`).
    public var sampler: SamplerKind
    /// DDIM eta (0 is deterministic); ignored for DDPM.
    public var eta: Float
    /// Clip x_0 predictions to [-1, 1] (the notebooks always do).
    public var clipDenoised: Bool
    /// Classifier-free guidance scale, or nil for a plain conditional model (e.g. the upsamplers).
    /// With a scale the model is called on `[x; x]` and
    /// ε = ε_uncond + scale * (ε_cond - ε_uncond); the variance channels come from the conditional rows.
    public var guidanceScale: Float?
    /// Multiplies the start noise (the upsample notebook uses 0.997); applies to replayed start noise too.
    public var startNoiseScale: Float
    /// With a guidance scale: guide only the steps whose noise level is inside (nil: every step).
    public var guidanceInterval: GuidanceInterval?

    public init(sampler: SamplerKind = .ddpm, eta: Float = 0, clipDenoised: Bool = true,
                guidanceScale: Float? = nil, startNoiseScale: Float = 1, guidanceInterval: GuidanceInterval? = nil) {
        self.sampler = sampler; self.eta = eta; self.clipDenoised = clipDenoised
        self.guidanceScale = guidanceScale; self.startNoiseScale = startNoiseScale
        self.guidanceInterval = guidanceInterval
    }
}

/// Where the sampler's Gaussian noise comes from: our seeded generator, optionally overridden by
/// replayed arrays (e.g. `.npy` files dumped from the reference).
public struct SamplingNoise: Sendable {
    /// Generator for anything not replayed.
    public var rng: GaussianRNG
    /// Replayed x_T: `[rows, C, H, W]` with rows >= batch; the first `batch` rows are used (the reference draws
    /// noise for the doubled guidance batch, whose first half is what the notebook keeps).
    public var start: [Float]?
    /// Replayed per-iteration noise: `[steps, rows, C, H, W]`, iteration k (k = 0 is the noisiest step)
    /// uses slice k; first `batch` rows of each slice.
    public var steps: [Float]?

    public init(seed: UInt64, start: [Float]? = nil, steps: [Float]? = nil) {
        self.rng = GaussianRNG(seed: seed); self.start = start; self.steps = steps
    }
}

/// Progress report after each sampling iteration.
public struct SamplingProgress {
    /// Iterations done (1...count).
    public var completed: Int
    /// Total iterations.
    public var count: Int
    /// The spaced timestep just taken (count-1 down to 0).
    public var timestep: Int
    /// x_{t-1}, `[batch, C, H, W]`.
    public var sample: [Float]
    /// The x_0 prediction of this step.
    public var predXstart: [Float]
}

/// The reverse process one iteration at a time: `next()` takes one step and reports it, so a caller can
/// show progress, stop early (simply stop calling) or interleave other work. `GaussianDiffusion.sample` drains it.
public struct SamplingLoop {
    /// The process being sampled.
    public let diffusion: GaussianDiffusion
    /// Sampler, guidance and start-noise settings.
    public let options: SamplingOptions
    /// `[batch, C, H, W]` of `sample`.
    public let shape: [Int]
    let noise: SamplingNoise
    let model: DiffusionModel
    let denoisedFn: ((inout [Float]) -> Void)?
    let condition: ConditioningFunction?
    let replaySteps: [Float]?
    var solver: DPMSolver?
    /// The current sample: x_T before the first step, x_0 after the last.
    public private(set) var sample: [Float]
    /// Iterations taken so far.
    public private(set) var completed = 0
    /// Total iterations (`diffusion.steps`).
    public var count: Int { diffusion.steps }
    /// True when every iteration has been taken (`sample` is x_0).
    public var isFinished: Bool { completed == diffusion.steps }

    /// Prepares the loop: x_T drawn (or replayed) and scaled, replayed step noise checked.
    /// See `GaussianDiffusion.sample` for the parameters.
    public init(diffusion: GaussianDiffusion, shape: [Int], options: SamplingOptions = SamplingOptions(),
                noise: SamplingNoise, model: @escaping DiffusionModel, denoisedFn: ((inout [Float]) -> Void)? = nil,
                condition: ConditioningFunction? = nil) throws {
        guard shape.count == 4, shape.allSatisfy({ $0 > 0 }) else { throw GlideModelError.badSampleShape(shape: shape) }
        if condition != nil && options.sampler != .ddpm {
            throw GlideModelError.invalidInput(name: "sampler", expected: "ddpm (cond_fn shifts the DDPM mean)",
                                               actual: options.sampler.rawValue)
        }
        let batch = shape[0], perRow = shape[1] * shape[2] * shape[3]
        let count = batch * perRow
        var x: [Float]
        if let start = noise.start {
            x = try GaussianDiffusion.firstRows(start, name: "start", outer: 1, batch: batch, perRow: perRow, shape: shape)
        } else {
            x = noise.rng.batch(rows: batch, perRow: perRow, stream: 0)
        }
        if options.startNoiseScale != 1 { for i in 0..<count { x[i] *= options.startNoiseScale } }
        self.replaySteps = try noise.steps.map {
            try GaussianDiffusion.firstRows($0, name: "step", outer: diffusion.steps, batch: batch, perRow: perRow, shape: shape)
        }
        self.diffusion = diffusion
        self.options = options
        self.shape = shape
        self.noise = noise
        self.model = model
        self.denoisedFn = denoisedFn
        self.condition = condition
        self.sample = x
        if options.sampler.isDPMSolver {
            solver = DPMSolver(alphasCumprod: diffusion.alphasCumprod, stochastic: options.sampler == .dpmSolver2MSDE)
        }
    }

    /// Takes the next iteration and returns its report, or nil when the loop is finished.
    public mutating func next() throws -> SamplingProgress? {
        guard completed < diffusion.steps else { return nil }
        let batch = shape[0], perRow = shape[1] * shape[2] * shape[3]
        let count = batch * perRow
        let k = completed, t = diffusion.steps - 1 - k
        let (eps, varValues) = try modelOutput(t: t)
        let needNoise = t != 0 && options.sampler.drawsStepNoise(eta: options.eta)
        var stepNoise: [Float] = []
        if needNoise {
            if let r = replaySteps {
                stepNoise = Array(r[(k * count)..<((k + 1) * count)])
            } else {
                stepNoise = noise.rng.batch(rows: batch, perRow: perRow, stream: UInt64(k + 1))
            }
        }
        var gradient: [Float]? = nil
        if let condition {
            let g = try condition(sample, [Int](repeating: diffusion.timestepMap[t], count: batch))
            guard g.count == count else { throw GlideModelError.modelOutputSize(expected: count, actual: g.count) }
            gradient = g
        }
        let step = solver != nil ? solverStep(k: k, t: t, eps: eps, noise: stepNoise)
            : diffusion.reverseStep(x: sample, t: t, eps: eps, varValues: varValues, noise: stepNoise,
                                    sampler: options.sampler, eta: options.eta,
                                    clipDenoised: options.clipDenoised, denoisedFn: denoisedFn,
                                    meanGradient: gradient)
        sample = step.sample
        completed = k + 1
        return SamplingProgress(completed: k + 1, count: diffusion.steps, timestep: t, sample: sample,
                                predXstart: step.predXstart)
    }
}

extension GaussianDiffusion {
    /// Runs the whole reverse process and returns x_0 as `[batch, C, H, W]` in [-1, 1] (with clipping).
    /// - Parameters:
    ///   - shape: `[batch, C, H, W]` of the result (batch without the guidance doubling).
    ///   - model: the network (see `DiffusionModel`).
    ///   - denoisedFn: hook on the x_0 prediction `[batch, C, H, W]` before clipping (inpainting).
    ///   - condition: the reference's `cond_fn` (DDPM only): each step's mean is shifted by variance × its
    ///     gradient, as `condition_mean` does (e.g. `ClipGuidance.conditioning`).
    ///   - progress: called after every iteration (`SamplingLoop` hands the iterations to the caller instead).
    public func sample(shape: [Int], options: SamplingOptions = SamplingOptions(), noise: SamplingNoise,
                       model: DiffusionModel, denoisedFn: ((inout [Float]) -> Void)? = nil,
                       condition: ConditioningFunction? = nil,
                       progress: ((SamplingProgress) -> Void)? = nil) throws -> [Float] {
        try withoutActuallyEscaping(model) { model in
            var loop = try SamplingLoop(diffusion: self, shape: shape, options: options, noise: noise,
                                        model: model, denoisedFn: denoisedFn, condition: condition)
            while let p = try loop.next() { progress?(p) }
            return loop.sample
        }
    }

    /// Splits a model output `[rows, 2C, H, W]` into ε and variance values `[batch, C, H, W]`. With a guidance
    /// scale (rows = 2*batch: conditional rows, then unconditional), ε = uncond + scale * (cond - uncond) and
    /// the variance values come from the conditional rows, as the notebook's `model_fn`.
    public static func splitModelOutput(_ out: [Float], batch: Int, perRow: Int,
                                        guidanceScale: Float?) -> (eps: [Float], varValues: [Float]) {
        let count = batch * perRow
        var eps = [Float](repeating: 0, count: count)
        var varValues = [Float](repeating: 0, count: count)
        for b in 0..<batch {
            let src = b * 2 * perRow, dst = b * perRow
            if let s = guidanceScale {
                let usrc = (batch + b) * 2 * perRow
                for i in 0..<perRow {
                    let cond = out[src + i], uncond = out[usrc + i]
                    eps[dst + i] = uncond + s * (cond - uncond)
                }
            } else {
                for i in 0..<perRow { eps[dst + i] = out[src + i] }
            }
            for i in 0..<perRow { varValues[dst + i] = out[src + perRow + i] }
        }
        return (eps, varValues)
    }

    // Takes the first `batch` rows of each of `outer` slices of a replay array shaped [outer, rows, C, H, W].
    static func firstRows(_ values: [Float], name: String, outer: Int, batch: Int, perRow: Int, shape: [Int]) throws -> [Float] {
        let expected = (outer == 1 ? [] : [outer]) + [batch] + Array(shape.dropFirst())
        guard values.count % (outer * perRow) == 0, !values.isEmpty else {
            throw GlideModelError.noiseShapeMismatch(name: name, expected: expected, actualCount: values.count)
        }
        let rows = values.count / (outer * perRow)
        guard rows >= batch else { throw GlideModelError.noiseBatchTooSmall(name: name, needed: batch, available: rows) }
        if rows == batch { return values }
        var out: [Float] = []
        out.reserveCapacity(outer * batch * perRow)
        for o in 0..<outer {
            let base = o * rows * perRow
            out += values[base..<(base + batch * perRow)]
        }
        return out
    }
}
