// Errors of the diffusion part of GlideModel (schedules, respacing, sampling).

/// Everything that can go wrong building a diffusion schedule or sampling from it.
public enum DiffusionError: Error, Equatable, CustomStringConvertible {
    /// A schedule name other than `squaredcos_cap_v2` or `linear`.
    case unknownSchedule(name: String)
    /// A respacing string that is not `""`, `"ddimN"`, `"fast27"` or a comma list of integers (the bad text).
    case badRespacing(spec: String, reason: String)
    /// The respaced process keeps fewer than two steps (the reference cannot build it either).
    case tooFewSteps(spec: String, steps: Int)
    /// A sample shape that is not `[batch, channels, height, width]` with positive sizes.
    case badShape(shape: [Int])
    /// The model returned the wrong number of values (expected vs actual element counts).
    case modelOutputSize(expected: Int, actual: Int)
    /// Replayed noise (`start` or `step`) whose element count does not fit the sample (expected vs actual).
    case noiseShapeMismatch(name: String, expected: [Int], actualCount: Int)
    /// Replayed noise holding fewer rows than the batch needs.
    case noiseBatchTooSmall(name: String, needed: Int, available: Int)

    public var description: String {
        switch self {
        case let .unknownSchedule(name): return "unknown noise schedule '\(name)' (expected squaredcos_cap_v2 or linear)"
        case let .badRespacing(spec, reason): return "bad timestep respacing '\(spec)': \(reason)"
        case let .tooFewSteps(spec, steps): return "timestep respacing '\(spec)' keeps \(steps) step(s); at least 2 are needed"
        case let .badShape(shape): return "sample shape \(shape) is not [batch, channels, height, width]"
        case let .modelOutputSize(expected, actual): return "model returned \(actual) values, expected \(expected)"
        case let .noiseShapeMismatch(name, expected, actualCount):
            return "\(name) noise has \(actualCount) values, which does not fit shape \(expected)"
        case let .noiseBatchTooSmall(name, needed, available):
            return "\(name) noise holds \(available) batch rows, \(needed) needed"
        }
    }
}
