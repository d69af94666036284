// DPM-Solver++(2M) and its SDE variant (Lu et al. 2022, "DPM-Solver++: Fast Solver for Guided Sampling of
// Diffusion Probabilistic Models", Algorithm 2 and the SDE-DPM-Solver++(2M) of the same authors), stepping over
// timesteps of the model's own discrete schedule, plus the guidance interval of Kynkäänniemi et al. 2024.
// Our own code: the reference has DDPM and DDIM only. See README.md ("DPM-Solver++").
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// How a DPM-Solver++ run spreads its `N` model evaluations over the model's `T`-step schedule (T = 1000).
///
/// Both place `N + 1` points from t = T-1 (the noisiest step) to t = 0, drop the last one and round to integer
/// timesteps (half to even); the model is evaluated at the remaining `N`, and the last step goes from the
/// smallest of them to the clean image (ᾱ = 1), as the reference's samplers end on x_0.
public enum SolverSpacing: String, Sendable, CaseIterable {
    /// Evenly spaced in t (the `diffusers` scheduler's `timestep_spacing="linspace"`).
    case time
    /// Evenly spaced in log-SNR λ = log(α/σ) = ½ log(ᾱ / (1 - ᾱ)); fractional timesteps are found by linear
    /// interpolation of λ between integer steps. Where λ changes faster than one point per step (the cosine
    /// schedule's capped last step) points that round to a taken timestep move to the next free one below.
    case logSNR = "logsnr"

    /// The `count` original timesteps (descending, distinct) at which the model is evaluated, for a schedule
    /// with these cumulative alphas (`alphasCumprod.count` = T).
    public func timesteps(count: Int, alphasCumprod: [Double]) throws -> [Int] {
        let total = alphasCumprod.count
        guard count >= 2, count <= total else {
            throw GlideModelError.invalidSetting(name: "solver steps", expected: "2...\(total)", actual: "\(count)")
        }
        var points: [Double]
        switch self {
        case .time:
            points = numpyLinspace(Double(total - 1), 0, count + 1)
        case .logSNR:
            let lambda = alphasCumprod.map { 0.5 * log($0 / (1 - $0)) }   // decreasing in t
            let grid = numpyLinspace(lambda[total - 1], lambda[0], count + 1)
            points = grid.map { target -> Double in
                if target <= lambda[total - 1] { return Double(total - 1) }
                if target >= lambda[0] { return 0 }
                var lo = 0, hi = total - 1          // lambda[lo] >= target > lambda[hi]
                while hi - lo > 1 {
                    let mid = (lo + hi) / 2
                    if lambda[mid] >= target { lo = mid } else { hi = mid }
                }
                return Double(lo) + (lambda[lo] - target) / (lambda[lo] - lambda[hi])
            }
        }
        points.removeLast()
        var steps: [Int] = []
        for (k, p) in points.enumerated() {
            var t = Int(p.rounded(.toNearestOrEven))
            if let last = steps.last { t = min(t, last - 1) }
            steps.append(max(t, count - 1 - k))
        }
        return steps
    }
}

/// Where classifier-free guidance applies (Kynkäänniemi et al. 2024): only at steps whose noise level
/// σ = sqrt((1 - ᾱ_t) / ᾱ_t) — the model input's noise standard deviation relative to the signal, EDM's σ for
/// x_t / sqrt(ᾱ_t) — lies in the half-open interval (low, high]. Outside it a step evaluates the conditional
/// rows alone (a batch of `batch` rows instead of `2 * batch`).
///
/// For reference: σ is about 0.006 at t = 0 and 20,000 at t = 999 of the cosine schedule; the paper's interval
/// for EDM2-XXL (images scaled to [-1, 1] like GLIDE's) is (0.28, 2.9].
public struct GuidanceInterval: Equatable, Hashable, Sendable, CustomStringConvertible {
    /// Lower end (exclusive).
    public var low: Double
    /// Upper end (inclusive).
    public var high: Double

    /// The interval (low, high]; throws `GlideModelError.invalidSetting` unless 0 <= low < high.
    public init(low: Double, high: Double) throws {
        guard low >= 0, high > low, !low.isNaN, !high.isNaN else {
            throw GlideModelError.invalidSetting(name: "guidance interval", expected: "0 <= LO < HI",
                                                 actual: "\(low),\(high)")
        }
        self.low = low
        self.high = high
    }

    /// Parses `LO,HI` (e.g. `0.28,2.9`; `inf` allowed for HI).
    public init(parsing text: String) throws {
        let parts = text.split(separator: ",", omittingEmptySubsequences: false)
        guard parts.count == 2, let low = Double(parts[0].trimmingSpaces), let high = Double(parts[1].trimmingSpaces) else {
            throw GlideModelError.invalidSetting(name: "guidance interval", expected: "LO,HI (two numbers)", actual: text)
        }
        try self.init(low: low, high: high)
    }

    init(uncheckedLow low: Double, high: Double) { self.low = low; self.high = high }

    /// The paper's interval for EDM2-XXL, (0.28, 2.9].
    public static let paper = GuidanceInterval(uncheckedLow: 0.28, high: 2.9)

    /// True when guidance applies at noise level `sigma`.
    public func contains(sigma: Double) -> Bool { sigma > low && sigma <= high }

    /// True when guidance applies at a step with cumulative alpha `alphaCumprod`.
    public func contains(alphaCumprod: Double) -> Bool { contains(sigma: GuidanceInterval.sigma(alphaCumprod: alphaCumprod)) }

    /// σ = sqrt((1 - ᾱ) / ᾱ).
    public static func sigma(alphaCumprod: Double) -> Double { ((1 - alphaCumprod) / alphaCumprod).squareRoot() }

    /// `LO,HI`.
    public var description: String { "\(low),\(high)" }
}

extension Substring {
    var trimmingSpaces: Substring {
        var s = self
        while let f = s.first, f == " " { s.removeFirst() }
        while let l = s.last, l == " " { s.removeLast() }
        return s
    }
}

extension SamplerKind {
    /// True for the DPM-Solver++ samplers (they step with `DPMSolver`, not `reverseStep`).
    public var isDPMSolver: Bool { self == .dpmSolver2M || self == .dpmSolver2MSDE }

    /// True when a step of this sampler (other than the last) draws Gaussian noise.
    public func drawsStepNoise(eta: Float) -> Bool {
        switch self {
        case .ddpm, .dpmSolver2MSDE: return true
        case .ddim: return eta != 0
        case .dpmSolver2M: return false
        }
    }
}

extension GaussianDiffusion {
    /// The model's `steps`-step schedule kept at the `solverSteps` timesteps a DPM-Solver++ run evaluates
    /// (`spacing.timesteps`); `timestepMap` lists them ascending and `alphasCumprod` are the schedule's own values.
    public init(schedule: NoiseSchedule, steps: Int = 1000, solverSteps: Int, spacing: SolverSpacing) throws {
        let base = schedule.betas(steps: steps)
        let cumprod = GaussianDiffusion.cumprod(base.map { 1.0 - $0 })
        let kept = try spacing.timesteps(count: solverSteps, alphasCumprod: cumprod)
        try self.init(betas: base, keeping: kept.reversed())
    }
}

/// DPM-Solver++ in data prediction over a (respaced) process: evaluation k = 0..<N is at spaced index
/// N-1-k (cumulative alpha ᾱ_k, α_k = sqrt(ᾱ_k), σ_k = sqrt(1 - ᾱ_k), λ_k = log(α_k / σ_k)) and step k goes to
/// evaluation k+1, the last step to the clean image (α = 1, σ = 0, λ = +∞). With h = λ_{k+1} - λ_k and the data
/// prediction D_k (the clipped x_0 prediction):
///
/// - `dpm++2m`: x_{k+1} = (σ_{k+1}/σ_k) x_k - α_{k+1} (e^{-h} - 1) D, first order (D = D_k) at the first and
///   last step, else D = D_k + (D_k - D_{k-1}) / (2r) with r = h_{k-1} / h (the multistep "midpoint" form);
/// - `dpm++2m-sde`: x_{k+1} = (σ_{k+1}/σ_k) e^{-h} x_k + α_{k+1} (1 - e^{-2h}) D + σ_{k+1} sqrt(1 - e^{-2h}) z,
///   same D, z standard normal (none at the last step, where σ_{k+1} = 0).
///
/// The last step therefore returns D of the smallest timestep: the x_0 prediction, as the reference's samplers.
public struct DPMSolver: Sendable {
    /// Stochastic (`dpm++2m-sde`) or deterministic (`dpm++2m`).
    public let stochastic: Bool
    let alphas: [Double], sigmas: [Double], lambdas: [Double]
    var previous: [Float]?
    var previousH: Double = 0

    /// Evaluations in the order taken (noisiest first) from the process's `alphasCumprod` (ascending t).
    public init(alphasCumprod: [Double], stochastic: Bool) {
        let descending = Array(alphasCumprod.reversed())
        alphas = descending.map { $0.squareRoot() } + [1]
        sigmas = descending.map { (1 - $0).squareRoot() } + [0]
        lambdas = descending.map { 0.5 * log($0 / (1 - $0)) } + [Double.infinity]
        self.stochastic = stochastic
    }

    /// Number of evaluations (steps).
    public var count: Int { alphas.count - 1 }

    /// Takes step `k` (0 = the noisiest) from `x` given the data prediction `data` (already forced and clipped);
    /// `noise` is read only by the stochastic variant before the last step. Call in order k = 0, 1, ...
    public mutating func step(k: Int, x: [Float], data: [Float], noise: [Float]) -> [Float] {
        let n = x.count
        var out = [Float](repeating: 0, count: n)
        let last = k == count - 1
        if last {
            // σ_{k+1} = 0, h = ∞: both variants return D_k (first order).
            for i in 0..<n { out[i] = data[i] }
            previous = data
            return out
        }
        let h = lambdas[k + 1] - lambdas[k]
        let ratio = sigmas[k + 1] / sigmas[k]
        let xCoef: Double, dataCoef: Double, noiseCoef: Double
        if stochastic {
            xCoef = ratio * exp(-h)
            dataCoef = -alphas[k + 1] * expm1(-2 * h)
            noiseCoef = sigmas[k + 1] * (-expm1(-2 * h)).squareRoot()
        } else {
            xCoef = ratio
            dataCoef = -alphas[k + 1] * expm1(-h)
            noiseCoef = 0
        }
        let a = Float(xCoef), c = Float(noiseCoef)
        if let prev = previous, k > 0 {
            let r = previousH / h
            let b0 = Float(dataCoef * (1 + 1 / (2 * r))), b1 = Float(-dataCoef / (2 * r))
            for i in 0..<n { out[i] = a * x[i] + b0 * data[i] + b1 * prev[i] }
        } else {
            let b = Float(dataCoef)
            for i in 0..<n { out[i] = a * x[i] + b * data[i] }
        }
        if stochastic { for i in 0..<n { out[i] += c * noise[i] } }
        previous = data
        previousH = h
        return out
    }
}

extension SamplingLoop {
    /// The model's ε (guided where guidance applies) and variance channels for the current sample at spaced
    /// index `t`: `2 * batch` rows when guided and `t` inside the guidance interval (or no interval), else the
    /// conditional `batch` rows alone.
    func modelOutput(t: Int) throws -> (eps: [Float], varValues: [Float]) {
        let batch = shape[0], perRow = shape[1] * shape[2] * shape[3]
        var scale = options.guidanceScale
        if scale != nil, let interval = options.guidanceInterval,
           !interval.contains(alphaCumprod: diffusion.alphasCumprod[t]) {
            scale = nil
        }
        let modelRows = scale == nil ? batch : 2 * batch
        let modelInput = scale == nil ? sample : sample + sample
        let out = try model(modelInput, [Int](repeating: diffusion.timestepMap[t], count: modelRows))
        guard out.count == modelRows * 2 * perRow else {
            throw GlideModelError.modelOutputSize(expected: modelRows * 2 * perRow, actual: out.count)
        }
        return GaussianDiffusion.splitModelOutput(out, batch: batch, perRow: perRow, guidanceScale: scale)
    }

    /// One DPM-Solver++ step at spaced index `t` (iteration `k`).
    mutating func solverStep(k: Int, t: Int, eps: [Float], noise: [Float]) -> GaussianDiffusion.Step {
        let n = sample.count
        let recip = Float(diffusion.sqrtRecipAlphasCumprod[t]), recipm1 = Float(diffusion.sqrtRecipm1AlphasCumprod[t])
        var pred = [Float](repeating: 0, count: n)
        for i in 0..<n { pred[i] = recip * sample[i] - recipm1 * eps[i] }
        denoisedFn?(&pred)
        if options.clipDenoised { for i in 0..<n { pred[i] = min(max(pred[i], -1), 1) } }
        let next = solver!.step(k: k, x: sample, data: pred, noise: noise)
        return GaussianDiffusion.Step(sample: next, predXstart: pred)
    }
}
