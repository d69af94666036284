// Errors of the multi-stage pipeline part of GlideModel (stage inputs that do not fit the model).

/// Inputs that do not fit a pipeline stage's model. Network and sampler failures are passed through as
/// `NetworkError` / `DiffusionError`.
public enum PipelineError: Error, Equatable, CustomStringConvertible {
    /// The model needs an input that was not given (`name`: the reference's keyword, e.g. `low_res`, or
    /// `unconditional tokens` for guidance; `model`: the reference class).
    case missingInput(name: String, model: String)
    /// An input the model cannot take (e.g. `inpaint_image` for a plain upsampler).
    case unexpectedInput(name: String, model: String)
    /// An input of the wrong shape (expected vs actual; -1 marks a free dimension).
    case shapeMismatch(name: String, expected: [Int], actual: [Int])

    public var description: String {
        switch self {
        case let .missingInput(name, model): return "\(model) needs \(name), which was not given"
        case let .unexpectedInput(name, model): return "\(model) takes no \(name)"
        case let .shapeMismatch(name, expected, actual):
            let e = expected.map { $0 < 0 ? "*" : String($0) }.joined(separator: ", ")
            return "\(name) has shape \(actual), expected [\(e)]"
        }
    }
}
