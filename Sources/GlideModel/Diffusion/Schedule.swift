// Port of glide_text2im.gaussian_diffusion.get_named_beta_schedule / betas_for_alpha_bar and
// glide_text2im.respace.space_timesteps.
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The named beta schedules GLIDE uses (1000 steps when trained).
public enum NoiseSchedule: String, Sendable, CaseIterable {
    /// Cosine schedule (Nichol & Dhariwal), used by the base and inpaint models and CLIP.
    case squaredcosCapV2 = "squaredcos_cap_v2"
    /// Linear schedule from Ho et al., scaled to the step count; used by the upsamplers.
    case linear

    /// Parses a schedule name as the reference spells it.
    public init(name: String) throws {
        guard let s = NoiseSchedule(rawValue: name) else { throw GlideModelError.unknownSchedule(name: name) }
        self = s
    }

    /// The `steps` betas in float64, exactly as the reference computes them.
    public func betas(steps: Int = 1000) -> [Double] {
        switch self {
        case .linear:
            let scale = 1000.0 / Double(steps)
            let start = scale * 0.0001, end = scale * 0.02
            return numpyLinspace(start, end, steps)
        case .squaredcosCapV2:
            func alphaBar(_ t: Double) -> Double {
                let c = cos((t + 0.008) / 1.008 * Double.pi / 2)
                return c * c
            }
            return (0..<steps).map { i in
                let t1 = Double(i) / Double(steps), t2 = Double(i + 1) / Double(steps)
                return min(1 - alphaBar(t2) / alphaBar(t1), 0.999)
            }
        }
    }
}

// numpy.linspace(start, stop, num) for float64: i * step + start, last element exactly stop.
func numpyLinspace(_ start: Double, _ stop: Double, _ num: Int) -> [Double] {
    guard num > 1 else { return num == 1 ? [start] : [] }
    let step = (stop - start) / Double(num - 1)
    var out = (0..<num).map { Double($0) * step + start }
    out[num - 1] = stop
    return out
}

/// A timestep respacing parsed once from the reference's spelling (`""`, `"100"`, `"ddim50"`, `"fast27"`,
/// `"10,10,10"`): which of the original steps a shortened sampler visits.
public struct TimestepRespacing: Equatable, Hashable, Sendable, CustomStringConvertible {
    /// The forms `space_timesteps` accepts.
    public enum Form: Equatable, Hashable, Sendable {
        /// `""`: every original step.
        case all
        /// `"ddimN"`: the DDIM paper's integer stride giving exactly N steps.
        case ddim(Int)
        /// `"fast27"`: the upsampler notebook's 27 steps.
        case fast27
        /// `"10,10,10"` or `"100"`: this many evenly spaced steps in each equal section.
        case sections([Int])
    }

    /// What the respacing is.
    public let form: Form

    /// A respacing of the given form.
    public init(_ form: Form) { self.form = form }

    /// `count` evenly spaced steps (the reference's `"100"`).
    public static func steps(_ count: Int) -> TimestepRespacing { TimestepRespacing(.sections([count])) }
    /// Every original step (the reference's `""`).
    public static let all = TimestepRespacing(.all)
    /// The upsampler notebook's 27 steps.
    public static let fast27 = TimestepRespacing(.fast27)
    /// DDIM striding to `count` steps.
    public static func ddim(_ count: Int) -> TimestepRespacing { TimestepRespacing(.ddim(count)) }

    /// Parses the reference's spelling; throws `GlideModelError.badRespacing` for anything else.
    public init(parsing spec: String) throws {
        if spec.isEmpty { self.init(.all); return }
        if spec == "fast27" { self.init(.fast27); return }
        if spec.hasPrefix("ddim") {
            guard let n = Respacing.parseInt(String(spec.dropFirst(4))) else {
                throw GlideModelError.badRespacing(spec: spec, reason: "expected ddim followed by an integer")
            }
            self.init(.ddim(n))
            return
        }
        var counts: [Int] = []
        for part in spec.split(separator: ",", omittingEmptySubsequences: false) {
            guard let c = Respacing.parseInt(String(part)) else {
                throw GlideModelError.badRespacing(spec: spec, reason: "'\(part)' is not an integer")
            }
            counts.append(c)
        }
        self.init(.sections(counts))
    }

    /// The reference's spelling (`parsing` gives this value back).
    public var description: String {
        switch form {
        case .all: return ""
        case .fast27: return "fast27"
        case .ddim(let n): return "ddim\(n)"
        case .sections(let c): return c.map(String.init).joined(separator: ",")
        }
    }

    /// The original timesteps kept out of `originalSteps`, ascending, exactly as `space_timesteps` chooses them.
    public func timesteps(originalSteps: Int) throws -> [Int] {
        try Respacing.timesteps(description, originalSteps: originalSteps)
    }
}

/// Timestep respacing on the reference's strings (see `TimestepRespacing` for the typed value).
public enum Respacing {
    /// The original timesteps kept by `spec`, ascending, exactly as `space_timesteps` chooses them:
    /// `""` (all steps), `"ddimN"` (the DDIM paper's integer stride), `"fast27"`, or a comma list of
    /// per-section counts such as `"100"` or `"10,10,10"`.
    public static func timesteps(_ spec: String, originalSteps: Int) throws -> [Int] {
        try keptSteps(spec, originalSteps).sorted()
    }

    static func keptSteps(_ spec: String, _ n: Int) throws -> Set<Int> {
        if spec.isEmpty { return Set(0..<n) }
        if spec.hasPrefix("ddim") {
            guard let desired = parseInt(String(spec.dropFirst(4))) else {
                throw GlideModelError.badRespacing(spec: spec, reason: "expected ddim followed by an integer")
            }
            for stride in 1..<max(n, 1) where (n + stride - 1) / stride == desired {
                return Set(stride0(n, stride))
            }
            throw GlideModelError.badRespacing(spec: spec, reason: "cannot create exactly \(desired) steps with an integer stride")
        }
        if spec == "fast27" {
            var steps = try keptSteps("10,10,3,2,2", n)
            steps.remove(n - 1)
            steps.insert(n - 3)
            return steps
        }
        var counts: [Int] = []
        for part in spec.split(separator: ",", omittingEmptySubsequences: false) {
            guard let c = parseInt(String(part)) else {
                throw GlideModelError.badRespacing(spec: spec, reason: "'\(part)' is not an integer")
            }
            counts.append(c)
        }
        let sizePer = n / counts.count, extra = n % counts.count
        var start = 0
        var all: [Int] = []
        for (i, count) in counts.enumerated() {
            let size = sizePer + (i < extra ? 1 : 0)
            guard size >= count else {
                throw GlideModelError.badRespacing(spec: spec, reason: "cannot divide section of \(size) steps into \(count)")
            }
            let fracStride = count <= 1 ? 1.0 : Double(size - 1) / Double(count - 1)
            var cur = 0.0
            for _ in 0..<max(count, 0) {
                all.append(start + Int(cur.rounded(.toNearestOrEven)))   // Python round(): half to even
                cur += fracStride
            }
            start += size
        }
        return Set(all)
    }

    static func stride0(_ n: Int, _ s: Int) -> [Int] { Array(Swift.stride(from: 0, to: n, by: s)) }

    // Python int(): optional surrounding whitespace and sign, decimal digits (underscores between digits allowed).
    static func parseInt(_ text: String) -> Int? {
        var s = Substring(text)
        while let f = s.first, f == " " || f == "\t" { s.removeFirst() }
        while let l = s.last, l == " " || l == "\t" { s.removeLast() }
        var negative = false
        if let f = s.first, f == "+" || f == "-" { negative = f == "-"; s.removeFirst() }
        guard let f = s.first, f.isASCII, f.isNumber, let l = s.last, l.isASCII, l.isNumber,
              !s.contains("__") else { return nil }
        guard let v = Int(s.filter { $0 != "_" }) else { return nil }
        return negative ? -v : v
    }
}
