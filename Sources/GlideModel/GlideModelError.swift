// The one error enum of the GlideModel module: tokenizers, diffusion, networks and pipelines.

/// Everything that can go wrong in GlideModel: loading a tokenizer vocabulary, building a diffusion schedule
/// or sampling from it, loading a network from a weight file or running it, and feeding a pipeline stage.
/// Every case names the file, tensor, hyperparameter or input it is about, and where it applies says what
/// was expected and what was found.
public enum GlideModelError: Error, Equatable, Sendable, CustomStringConvertible {
    // MARK: Tokenizers (GPT-2 BPE and CLIP's simple tokenizer)

    /// A vocabulary file could not be read (path, reason).
    case cannotRead(path: String, reason: String)
    /// A required tokenizer file is missing from a folder or embedded file set (its name).
    case missingFile(name: String)
    /// gzip data could not be inflated (file name, zlib message).
    case badGzip(name: String, reason: String)
    /// `encoder.json` is not a flat JSON object of string -> integer (why, byte offset).
    case badEncoderJSON(reason: String, offset: Int)
    /// A merges line is not two space-separated symbols (file name, 1-based line number).
    case badMergeLine(name: String, line: Int)
    /// A merge result or special token is missing from the vocabulary (the token).
    case tokenNotInVocabulary(token: String)

    // MARK: Diffusion (schedules, respacing, sampling)

    /// A schedule name other than `squaredcos_cap_v2` or `linear`.
    case unknownSchedule(name: String)
    /// A respacing string that is not `""`, `"ddimN"`, `"fast27"` or a comma list of integers (the bad text, why).
    case badRespacing(spec: String, reason: String)
    /// The respaced process keeps fewer than two steps (the reference cannot build it either).
    case tooFewSteps(spec: String, steps: Int)
    /// A sample shape that is not `[batch, channels, height, width]` with positive sizes.
    case badSampleShape(shape: [Int])
    /// The model returned the wrong number of values (expected vs actual element counts).
    case modelOutputSize(expected: Int, actual: Int)
    /// Replayed noise (`start` or `step`) whose element count does not fit the sample (expected vs actual).
    case noiseShapeMismatch(name: String, expected: [Int], actualCount: Int)
    /// Replayed noise (`start` or `step`) holding fewer batch rows than the batch needs.
    case noiseBatchTooSmall(name: String, needed: Int, available: Int)

    // MARK: Generation records (the parameters stored in generated PNGs, `--replay`)

    /// A generation record lacks a value it needs (the `glide:*` key).
    case recordFieldMissing(key: String)
    /// A generation record's value does not parse, or its key appears twice (the key, what was expected, the value).
    case recordFieldInvalid(key: String, expected: String, actual: String)
    /// A record that `glide sample` cannot make again (made by another subcommand, or from outside inputs).
    case recordNotReplayable(reason: String)
    /// A model file given for a replay is not the recorded one (`role`: model or upsampler; `field`: what differs).
    case recordModelMismatch(role: String, field: String, recorded: String, actual: String)

    // MARK: Networks (loading from a weight file, forward inputs)

    /// The network needs a tensor the file does not have.
    case missingTensor(name: String, expectedShape: [Int])
    /// The file has a tensor with the right name but the wrong shape.
    case tensorShapeMismatch(name: String, expected: [Int], actual: [Int])
    /// The file has a tensor the network has no place for.
    case unexpectedTensor(name: String, shape: [Int])
    /// A tensor is stored in a dtype this layer cannot use (e.g. an int8 norm gain or an i64 weight).
    case unsupportedTensorDType(name: String, expected: String, actual: String)
    /// A hyperparameter is absent, has the wrong type, or holds an impossible value.
    case invalidHyperparameter(name: String, expected: String, actual: String)
    /// A forward input (named with the reference's keyword) is absent, misshapen or inconsistent.
    case invalidInput(name: String, expected: String, actual: String)

    // MARK: Pipelines (stage inputs that do not fit the stage's model)

    /// The model needs an input that was not given (`name`: the reference's keyword, e.g. `low_res`, or
    /// `unconditional tokens` for guidance; `model`: the reference class).
    case missingInput(name: String, model: String)
    /// A pipeline got a model of the wrong kind (`role`: the pipeline slot, e.g. `base`; `expected` and `actual`:
    /// the reference class names, e.g. `Text2ImUNet` vs `SuperResText2ImUNet`).
    case wrongModelKind(role: String, expected: String, actual: String)
    /// A prompt needs a tokenizer, but none was given and the model file embeds none (the model file's path,
    /// the tokenizer kind: `GPT-2` or `CLIP`).
    case missingTokenizer(model: String, kind: String)
    /// A pipeline setting out of its range (the setting's name, what is allowed, what was given).
    case invalidSetting(name: String, expected: String, actual: String)
    /// An input the model cannot take (e.g. `inpaint_image` for a plain upsampler).
    case unexpectedInput(name: String, model: String)
    /// A pipeline input of the wrong shape (expected vs actual; -1 marks a free dimension).
    case inputShapeMismatch(name: String, expected: [Int], actual: [Int])

    public var description: String {
        switch self {
        case let .cannotRead(path, reason): return "cannot read \(path): \(reason)"
        case let .missingFile(name): return "tokenizer file \(name) not found"
        case let .badGzip(name, reason): return "\(name): not valid gzip data (\(reason))"
        case let .badEncoderJSON(reason, offset): return "encoder.json: \(reason) at byte \(offset)"
        case let .badMergeLine(name, line): return "\(name): line \(line) is not a merge of two symbols"
        case let .tokenNotInVocabulary(token): return "token '\(token)' is not in the vocabulary"

        case let .recordFieldMissing(key): return "generation record has no \(key)"
        case let .recordFieldInvalid(key, expected, actual): return "generation record \(key) must be \(expected), got '\(actual)'"
        case let .recordNotReplayable(reason): return "cannot replay this image: \(reason)"
        case let .recordModelMismatch(role, field, recorded, actual):
            return "\(role) differs from the recorded one (\(field)): recorded \(recorded), given \(actual)"
        case let .unknownSchedule(name): return "unknown noise schedule '\(name)' (expected squaredcos_cap_v2 or linear)"
        case let .badRespacing(spec, reason): return "bad timestep respacing '\(spec)': \(reason)"
        case let .tooFewSteps(spec, steps): return "timestep respacing '\(spec)' keeps \(steps) step(s); at least 2 are needed"
        case let .badSampleShape(shape): return "sample shape \(shape) is not [batch, channels, height, width]"
        case let .modelOutputSize(expected, actual): return "model returned \(actual) values, expected \(expected)"
        case let .noiseShapeMismatch(name, expected, actualCount):
            return "\(name) noise has \(actualCount) values, which does not fit shape \(expected)"
        case let .noiseBatchTooSmall(name, needed, available):
            return "\(name) noise holds \(available) batch rows, \(needed) needed"

        case let .missingTensor(name, shape):
            return "missing tensor '\(name)' (expected shape \(shape))"
        case let .tensorShapeMismatch(name, expected, actual):
            return "tensor '\(name)' has shape \(actual), expected \(expected)"
        case let .unexpectedTensor(name, shape):
            return "unexpected tensor '\(name)' with shape \(shape): the model has no place for it"
        case let .unsupportedTensorDType(name, expected, actual):
            return "tensor '\(name)' is \(actual), expected \(expected)"
        case let .invalidHyperparameter(name, expected, actual):
            return "hyperparameter '\(name)': expected \(expected), got \(actual)"
        case let .invalidInput(name, expected, actual):
            return "input '\(name)': expected \(expected), got \(actual)"

        case let .wrongModelKind(role, expected, actual):
            return "the \(role) model must be a \(expected), not a \(actual)"
        case let .missingTokenizer(model, kind):
            return "\(model) has no embedded \(kind) tokenizer and no tokenizer folder was given"
        case let .invalidSetting(name, expected, actual): return "\(name) must be \(expected), got \(actual)"
        case let .missingInput(name, model): return "\(model) needs \(name), which was not given"
        case let .unexpectedInput(name, model): return "\(model) takes no \(name)"
        case let .inputShapeMismatch(name, expected, actual):
            let e = expected.map { $0 < 0 ? "*" : String($0) }.joined(separator: ", ")
            return "\(name) has shape \(actual), expected [\(e)]"
        }
    }
}
