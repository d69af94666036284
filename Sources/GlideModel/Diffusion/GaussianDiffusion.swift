// Port of glide_text2im.gaussian_diffusion.GaussianDiffusion and glide_text2im.respace.SpacedDiffusion:
// the (respaced) process coefficients and one reverse step (p_mean_variance, p_sample, ddim_sample).
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A Gaussian diffusion process, possibly respaced to fewer steps.
///
/// Indices `0..<steps` are *spaced* timesteps (what the sampler walks, from `steps-1` down to 0);
/// `timestepMap[i]` is the *original* timestep the network receives, as the reference's `_WrappedModel` does.
/// Coefficients are kept in float64 like the reference and rounded to float32 when used, because the
/// reference extracts them with `.float()` and does all per-pixel arithmetic in float32.
public struct GaussianDiffusion: Sendable {
    /// Betas of the (respaced) process.
    public let betas: [Double]
    /// Cumulative products of `1 - betas`.
    public let alphasCumprod: [Double]
    /// `alphasCumprod` shifted right by one, starting with 1.
    public let alphasCumprodPrev: [Double]
    /// Spaced index -> original timestep (ascending).
    public let timestepMap: [Int]
    /// Step count of the process before respacing (1000 for GLIDE).
    public let originalSteps: Int

    let sqrtRecipAlphasCumprod: [Double]
    let sqrtRecipm1AlphasCumprod: [Double]
    let posteriorLogVarianceClipped: [Double]
    let posteriorMeanCoef1: [Double]
    let posteriorMeanCoef2: [Double]
    let logBetas: [Double]

    /// Number of sampling steps (after respacing).
    public var steps: Int { betas.count }

    /// Builds the process the way `create_gaussian_diffusion` does: the named schedule over
    /// `steps` original steps, respaced by `respacing` (`""` keeps all steps; `"100"`, `"fast27"`, `"ddim50"`,
    /// `"10,10,10"` as in `space_timesteps`).
    public init(schedule: NoiseSchedule, steps: Int = 1000, respacing: String = "") throws {
        let base = schedule.betas(steps: steps)
        let kept = try Respacing.timesteps(respacing, originalSteps: steps)
        guard kept.count >= 2 else { throw GlideModelError.tooFewSteps(spec: respacing, steps: kept.count) }
        try self.init(betas: base, keeping: kept)
    }

    /// `init(schedule:steps:respacing:)` with a parsed respacing.
    public init(schedule: NoiseSchedule, steps: Int = 1000, respacing: TimestepRespacing) throws {
        try self.init(schedule: schedule, steps: steps, respacing: respacing.description)
    }

    /// Respaces an explicit float64 beta array, keeping the original timesteps `keeping` (ascending).
    public init(betas base: [Double], keeping: [Int]) throws {
        guard keeping.count >= 2 else { throw GlideModelError.tooFewSteps(spec: "\(keeping)", steps: keeping.count) }
        let baseCumprod = GaussianDiffusion.cumprod(base.map { 1.0 - $0 })
        let keep = Set(keeping)
        var last = 1.0
        var newBetas: [Double] = []
        var map: [Int] = []
        for (i, ac) in baseCumprod.enumerated() where keep.contains(i) {
            newBetas.append(1 - ac / last)
            last = ac
            map.append(i)
        }
        self.init(rawBetas: newBetas, timestepMap: map, originalSteps: base.count)
    }

    init(rawBetas betas: [Double], timestepMap: [Int], originalSteps: Int) {
        let n = betas.count
        self.betas = betas
        self.timestepMap = timestepMap
        self.originalSteps = originalSteps
        let ac = GaussianDiffusion.cumprod(betas.map { 1.0 - $0 })
        let acPrev = [1.0] + ac.dropLast()
        alphasCumprod = ac
        alphasCumprodPrev = acPrev
        sqrtRecipAlphasCumprod = ac.map { (1.0 / $0).squareRoot() }
        sqrtRecipm1AlphasCumprod = ac.map { (1.0 / $0 - 1).squareRoot() }
        let posteriorVariance = (0..<n).map { betas[$0] * (1.0 - acPrev[$0]) / (1.0 - ac[$0]) }
        posteriorLogVarianceClipped = ([posteriorVariance[1]] + posteriorVariance.dropFirst()).map { log($0) }
        posteriorMeanCoef1 = (0..<n).map { betas[$0] * acPrev[$0].squareRoot() / (1.0 - ac[$0]) }
        posteriorMeanCoef2 = (0..<n).map { i -> Double in
            let sqrtAlpha: Double = (1.0 - betas[i]).squareRoot()
            return (1.0 - acPrev[i]) * sqrtAlpha / (1.0 - ac[i])
        }
        logBetas = betas.map { log($0) }
    }

    static func cumprod(_ xs: [Double]) -> [Double] {
        var p = 1.0
        return xs.map { p *= $0; return p }
    }

    /// Log of the posterior variance (first entry replaced by the second), per spaced step.
    public var posteriorLogVariance: [Double] { posteriorLogVarianceClipped }

    /// Result of one reverse step.
    public struct Step {
        /// x_{t-1}, shape [B, C, H, W].
        public var sample: [Float]
        /// The (denoised_fn-processed, clipped) prediction of x_0.
        public var predXstart: [Float]
    }

    /// `p_mean_variance` followed by `p_sample` (DDPM) or `ddim_sample`, for one spaced step `t` shared by
    /// the whole batch.
    /// - Parameters:
    ///   - x: x_t, [B, C, H, W] (B*C*H*W values; `channels*plane` per row).
    ///   - eps: the model's ε for each row, same layout as `x`.
    ///   - varValues: the model's variance-interpolation channels in [-1, 1], same layout as `x`.
    ///   - noise: standard normal noise like `x` (ignored when t == 0 or for DDIM with eta 0; may be empty then).
    ///   - denoisedFn: applied to the x_0 prediction before clipping (inpainting forces known pixels here).
    ///   - meanGradient: DDPM only: `cond_fn`'s output; the mean becomes mean + variance × gradient
    ///     (`condition_mean`, variance = exp of the learned log variance), also at t == 0.
    public func reverseStep(x: [Float], t: Int, eps: [Float], varValues: [Float], noise: [Float],
                            sampler: SamplerKind, eta: Float = 0, clipDenoised: Bool = true,
                            denoisedFn: ((inout [Float]) -> Void)? = nil, meanGradient: [Float]? = nil) -> Step {
        let n = x.count
        let recip = Float(sqrtRecipAlphasCumprod[t]), recipm1 = Float(sqrtRecipm1AlphasCumprod[t])
        var pred = [Float](repeating: 0, count: n)
        for i in 0..<n { pred[i] = recip * x[i] - recipm1 * eps[i] }
        denoisedFn?(&pred)
        if clipDenoised { for i in 0..<n { pred[i] = min(max(pred[i], -1), 1) } }
        var out = [Float](repeating: 0, count: n)
        switch sampler {
        case .ddpm:
            let c1 = Float(posteriorMeanCoef1[t]), c2 = Float(posteriorMeanCoef2[t])
            let minLog = Float(posteriorLogVarianceClipped[t]), maxLog = Float(logBetas[t])
            let addNoise = t != 0
            for i in 0..<n {
                var mean = c1 * pred[i] + c2 * x[i]
                if let meanGradient {
                    let frac = (varValues[i] + 1) / 2
                    mean += expf(frac * maxLog + (1 - frac) * minLog) * meanGradient[i]
                }
                if addNoise {
                    let frac = (varValues[i] + 1) / 2
                    let logVar = frac * maxLog + (1 - frac) * minLog
                    out[i] = mean + expf(0.5 * logVar) * noise[i]
                } else {
                    out[i] = mean
                }
            }
        case .ddim, .dpmSolver2M, .dpmSolver2MSDE:   // the solvers' first-order step is DDIM's; SamplingLoop runs them multistep
            let alphaBar = Float(alphasCumprod[t]), alphaBarPrev = Float(alphasCumprodPrev[t])
            let sigma = eta * ((1 - alphaBarPrev) / (1 - alphaBar)).squareRoot() * (1 - alphaBar / alphaBarPrev).squareRoot()
            let sqrtPrev = alphaBarPrev.squareRoot()
            let epsCoef = (1 - alphaBarPrev - sigma * sigma).squareRoot()
            let addNoise = t != 0 && sigma != 0
            for i in 0..<n {
                let e = (recip * x[i] - pred[i]) / recipm1
                let meanPred = pred[i] * sqrtPrev + epsCoef * e
                out[i] = addNoise ? meanPred + sigma * noise[i] : meanPred
            }
        }
        return Step(sample: out, predXstart: pred)
    }
}

/// Which reverse process to run.
public enum SamplerKind: String, Sendable, CaseIterable {
    /// Ancestral sampling (`p_sample`): posterior mean plus learned-variance noise, no noise at t == 0.
    case ddpm
    /// DDIM (`ddim_sample`), deterministic with eta 0.
    case ddim
    /// DPM-Solver++(2M): multistep second order, data prediction, deterministic (`DPMSolver`).
    case dpmSolver2M = "dpm++2m"
    /// SDE-DPM-Solver++(2M): its stochastic variant, noise from the seeded generator (`DPMSolver`).
    case dpmSolver2MSDE = "dpm++2m-sde"
}
