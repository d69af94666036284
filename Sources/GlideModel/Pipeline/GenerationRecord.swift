// How an image was made: the typed record `glide sample`, `upsample` and `inpaint` store in their PNGs (as
// text fields, one `glide:*` key per value) and `glide sample --replay` reads back to make the image again.
import WeightFormat

/// Everything that decides a generated image: the command, prompt, seed, batch, each stage's settings, and each
/// model file (name, SHA-256, weight type). Built from a pipeline's settings; stored as `textFields`.
///
/// With the same model files (same SHA-256), the same record gives the same pixels on any thread count:
/// `GenerationRecord(textFields:)` then `replay(on:)` rebuilds the `Text2ImRequest` and stage settings.
public struct GenerationRecord: Equatable, Sendable {
    /// The `glide` subcommand that made the image.
    public enum Command: String, Sendable, CaseIterable {
        case sample, upsample, inpaint
    }

    /// The settings of one diffusion stage that change its output.
    public struct Stage: Equatable, Sendable {
        /// Timestep respacing (`100`, `fast27`, `ddim50`, ...).
        public var respacing: TimestepRespacing
        /// DDPM or DDIM.
        public var sampler: SamplerKind
        /// Classifier-free guidance scale, or nil for an unguided stage.
        public var guidanceScale: Float?
        /// Start-noise multiplier (the notebooks' `upsample_temp`; 1 for base stages).
        public var startNoiseScale: Float

        /// The recorded part of `settings`.
        public init(_ settings: StageSettings) {
            respacing = settings.respacing
            sampler = settings.sampler
            guidanceScale = settings.guidanceScale
            startNoiseScale = settings.startNoiseScale
        }

        /// `base` with this stage's recorded values.
        public func applied(to base: StageSettings) -> StageSettings {
            var s = base
            s.respacing = respacing
            s.sampler = sampler
            s.guidanceScale = guidanceScale
            s.startNoiseScale = startNoiseScale
            return s
        }
    }

    /// One model file a run used.
    public struct ModelFile: Equatable, Sendable {
        /// The file's name without its folder (e.g. `base-int8.glw`).
        public var fileName: String
        /// SHA-256 of the whole `.glw` file, 64 lowercase hex digits.
        public var sha256: String
        /// The weight type the file was converted to (its `quantization.requested`: `f32`, `f16`, `bf16` or `int8`),
        /// or for files without one the dtype holding most of the weight bytes.
        public var weightType: String
        /// The file's `model` metadata (`base`, `upsample`, `base-inpaint`, ... or `unet`).
        public var kind: String
        /// SHA-256 of the checkpoint the file was converted from, as its provenance records it (if it does).
        public var sourceSHA256: String?

        /// Explicit values.
        public init(fileName: String, sha256: String, weightType: String, kind: String, sourceSHA256: String? = nil) {
            self.fileName = fileName
            self.sha256 = sha256
            self.weightType = weightType
            self.kind = kind
            self.sourceSHA256 = sourceSHA256
        }

        /// Describes the weight file at `path`; `sha256` is the digest of the whole file (the caller computes it).
        public init(path: String, file: WeightFile, sha256: String) {
            var byteCounts: [WeightDType: Int] = [:]
            for t in file.tensors where t.dtype != .i64 && t.dtype != .bool { byteCounts[t.dtype, default: 0] += t.data.count }
            let dominant = byteCounts.max { $0.value < $1.value || ($0.value == $1.value && $0.key.rawValue > $1.key.rawValue) }
            self.init(fileName: String(path.split(separator: "/").last ?? Substring(path)), sha256: sha256,
                      weightType: GenerationRecord.requestedType(inMetadata: file.metadataJSON) ?? dominant.map { "\($0.key)" } ?? "none",
                      kind: file.modelName ?? "unknown", sourceSHA256: GenerationRecord.sourceDigest(inMetadata: file.metadataJSON))
        }
    }

    /// The tool and its version, e.g. `glide-swift 0.1.0`.
    public var tool: String
    /// The subcommand.
    public var command: Command
    /// The text prompt.
    public var prompt: String
    /// The noise seed (the upsampler stage derives its own from it).
    public var seed: UInt64
    /// Number of images (one grid PNG).
    public var batch: Int
    /// The first stage (the base model, or the upsampler for `glide upsample`).
    public var base: Stage
    /// The upsampling stage after the base, if any.
    public var upsample: Stage?
    /// The first stage's model.
    public var model: ModelFile
    /// The upsampler of a two-stage run.
    public var upsampler: ModelFile?
    /// Inputs from outside the record, by name (`image`, `mask`, `keep-rect`, `tokens`, `start-noise`, `vocab`,
    /// ...): a file name with its SHA-256, or a value. Only `vocab` still allows a replay.
    public var inputs: [String: String]

    /// A record of explicit values.
    public init(tool: String, command: Command, prompt: String, seed: UInt64, batch: Int, base: Stage,
                upsample: Stage? = nil, model: ModelFile, upsampler: ModelFile? = nil, inputs: [String: String] = [:]) {
        self.tool = tool
        self.command = command
        self.prompt = prompt
        self.seed = seed
        self.batch = batch
        self.base = base
        self.upsample = upsample
        self.model = model
        self.upsampler = upsampler
        self.inputs = inputs
    }

    /// The record of a `Text2ImPipeline` run of `request` (its settings as they are now).
    public init(tool: String, pipeline: Text2ImPipeline, request: Text2ImRequest, model: ModelFile, upsampler: ModelFile?,
                inputs: [String: String] = [:]) {
        self.init(tool: tool, command: .sample, prompt: request.prompt, seed: request.seed, batch: request.batch,
                  base: Stage(pipeline.baseSettings), upsample: pipeline.upsampler == nil ? nil : Stage(pipeline.upsampleSettings),
                  model: model, upsampler: upsampler, inputs: inputs)
    }

    // MARK: Text form

    /// Prefix of every key.
    public static let keyPrefix = "glide:"

    /// One `(key, value)` per recorded value, keys `glide:*`, in a fixed order (the PNG's text chunks).
    public var textFields: [(key: String, value: String)] {
        var f: [(String, String)] = [("tool", tool), ("command", command.rawValue), ("prompt", prompt), ("seed", String(seed)),
                                     ("batch", String(batch))]
        func stage(_ s: Stage, _ prefix: String) {
            f += [(prefix + "steps", s.respacing.description), (prefix + "sampler", s.sampler.rawValue),
                  (prefix + "guidance", s.guidanceScale.map { "\($0)" } ?? "none"), (prefix + "temperature", "\(s.startNoiseScale)")]
        }
        func file(_ m: ModelFile, _ prefix: String) {
            f += [(prefix, m.fileName), (prefix + "-sha256", m.sha256), (prefix + "-type", m.weightType), (prefix + "-kind", m.kind)]
            if let s = m.sourceSHA256 { f.append((prefix + "-source-sha256", s)) }
        }
        stage(base, "")
        file(model, "model")
        if let upsample { stage(upsample, "upsample-") }
        if let upsampler { file(upsampler, "upsampler") }
        for (name, value) in inputs.sorted(by: { $0.key < $1.key }) { f.append(("input-" + name, value)) }
        return f.map { (GenerationRecord.keyPrefix + $0.0, $0.1) }
    }

    /// Reads a record back from text fields (other keys are ignored; a `glide:*` key given twice is an error).
    /// Throws `GlideModelError.recordFieldMissing` or `.recordFieldInvalid` naming the key.
    public init(textFields: [(key: String, value: String)]) throws {
        var values: [String: String] = [:]
        for (key, value) in textFields where key.hasPrefix(GenerationRecord.keyPrefix) {
            let k = String(key.dropFirst(GenerationRecord.keyPrefix.count))
            guard values[k] == nil else { throw GlideModelError.recordFieldInvalid(key: key, expected: "one value", actual: "given twice") }
            values[k] = value
        }
        func required(_ k: String) throws -> String {
            guard let v = values[k] else { throw GlideModelError.recordFieldMissing(key: GenerationRecord.keyPrefix + k) }
            return v
        }
        func invalid(_ k: String, _ expected: String) -> GlideModelError {
            .recordFieldInvalid(key: GenerationRecord.keyPrefix + k, expected: expected, actual: values[k] ?? "")
        }
        func float(_ k: String) throws -> Float {
            guard let v = Float(try required(k)), v.isFinite else { throw invalid(k, "a finite number") }
            return v
        }
        func stage(_ prefix: String) throws -> Stage {
            let respacing: TimestepRespacing
            let spec = try required(prefix + "steps")
            do { respacing = try TimestepRespacing(parsing: spec) } catch is GlideModelError {
                throw invalid(prefix + "steps", "a respacing string (100, fast27, ddim50, 10,10,10)")
            }
            guard let sampler = SamplerKind(rawValue: try required(prefix + "sampler")) else { throw invalid(prefix + "sampler", "ddpm or ddim") }
            let guidance: Float? = try required(prefix + "guidance") == "none" ? nil : try float(prefix + "guidance")
            let temperature = try float(prefix + "temperature")
            guard temperature > 0 else { throw invalid(prefix + "temperature", "a positive number") }
            var s = Stage(StageSettings(respacing: respacing, sampler: sampler, guidanceScale: guidance))
            s.startNoiseScale = temperature
            return s
        }
        func file(_ prefix: String) throws -> ModelFile {
            let sha = try required(prefix + "-sha256")
            guard sha.count == 64, sha.allSatisfy({ $0.isHexDigit && !$0.isUppercase }) else {
                throw invalid(prefix + "-sha256", "64 lowercase hex digits")
            }
            return ModelFile(fileName: try required(prefix), sha256: sha, weightType: try required(prefix + "-type"),
                             kind: try required(prefix + "-kind"), sourceSHA256: values[prefix + "-source-sha256"])
        }
        tool = try required("tool")
        guard let command = Command(rawValue: try required("command")) else { throw invalid("command", "sample, upsample or inpaint") }
        self.command = command
        prompt = try required("prompt")
        guard let seed = UInt64(try required("seed")) else { throw invalid("seed", "an integer 0...2^64-1") }
        self.seed = seed
        guard let batch = Int(try required("batch")), batch >= 1 else { throw invalid("batch", "a positive integer") }
        self.batch = batch
        base = try stage("")
        model = try file("model")
        let hasUpsample = values.keys.contains { $0.hasPrefix("upsample-") }
        upsample = hasUpsample ? try stage("upsample-") : nil
        upsampler = values["upsampler"] != nil || hasUpsample ? try file("upsampler") : nil
        if upsampler != nil && upsample == nil { throw GlideModelError.recordFieldMissing(key: GenerationRecord.keyPrefix + "upsample-steps") }
        var inputs: [String: String] = [:]
        for (k, v) in values where k.hasPrefix("input-") { inputs[String(k.dropFirst("input-".count))] = v }
        self.inputs = inputs
    }

    // MARK: Replay

    /// Inputs a replay cannot reproduce from the record alone (all but `vocab`), sorted.
    public var externalInputs: [String] { inputs.keys.filter { $0 != "vocab" }.sorted() }

    /// Checks that this record can be made again by `glide sample` (`GlideModelError.recordNotReplayable`):
    /// it was made by `sample` from a prompt, with no inputs from outside the record.
    public func checkReplayable() throws {
        guard command == .sample else {
            throw GlideModelError.recordNotReplayable(reason: "it was made by `glide \(command.rawValue)`; only `glide sample` images replay")
        }
        guard externalInputs.isEmpty else {
            throw GlideModelError.recordNotReplayable(reason: "it was made from outside inputs (\(externalInputs.joined(separator: ", ")))")
        }
    }

    /// Checks that `actual` is the recorded file of `role` (`model` or `upsampler`): same SHA-256 (contents and weight
    /// type follow from it). Throws `GlideModelError.recordModelMismatch` naming what differs.
    public func checkModel(role: String, actual: ModelFile) throws {
        guard let recorded = role == "upsampler" ? upsampler : model else {
            throw GlideModelError.recordModelMismatch(role: role, field: "presence", recorded: "no \(role)", actual: actual.fileName)
        }
        if recorded.sha256 != actual.sha256 {
            throw GlideModelError.recordModelMismatch(role: role, field: "sha256", recorded: "\(recorded.fileName) \(recorded.sha256)",
                                                      actual: "\(actual.fileName) \(actual.sha256)")
        }
    }

    /// Configures `pipeline` (made from the recorded model files) with the recorded stage settings and returns the
    /// request that makes the recorded image again. Throws `recordModelMismatch` when the pipeline has an upsampler
    /// and the record none, or the other way round.
    public func replay(on pipeline: inout Text2ImPipeline) throws -> Text2ImRequest {
        try checkReplayable()
        switch (upsample, pipeline.upsampler) {
        case (nil, .some): throw GlideModelError.recordModelMismatch(role: "upsampler", field: "presence", recorded: "none", actual: "an upsampler")
        case (.some, nil):
            throw GlideModelError.recordModelMismatch(role: "upsampler", field: "presence", recorded: upsampler?.fileName ?? "an upsampler", actual: "none")
        default: break
        }
        pipeline.baseSettings = base.applied(to: pipeline.baseSettings)
        if let upsample { pipeline.upsampleSettings = upsample.applied(to: pipeline.upsampleSettings) }
        return Text2ImRequest(prompt: prompt, batch: batch, seed: seed)
    }

    /// `provenance.source.sha256` of a `.glw` metadata JSON, if present: the checkpoint the file came from (for a
    /// requantized file, the original checkpoint in `derived_from`). A plain text scan: our converter writes the
    /// metadata with sorted keys and no whitespace.
    static func sourceDigest(inMetadata json: String) -> String? {
        let bytes = Array(json.utf8)
        let find = { (pattern: String, start: Int) -> Int? in GenerationRecord.find(pattern, in: bytes, from: start) }
        guard let provenance = find("\"provenance\":", 0), let source = find("\"source\":", provenance),
              let key = find("\"sha256\":\"", source), key + 64 <= bytes.count else { return nil }
        let digest = String(decoding: bytes[key..<(key + 64)], as: UTF8.self)
        return digest.allSatisfy({ $0.isHexDigit }) ? digest : nil
    }

    /// `quantization.requested` of a `.glw` metadata JSON (`f32`, `f16`, `bf16`, `int8`), if present.
    static func requestedType(inMetadata json: String) -> String? {
        let bytes = Array(json.utf8)
        guard let q = find("\"quantization\":", in: bytes, from: 0), let key = find("\"requested\":\"", in: bytes, from: q),
              let end = bytes[key...].firstIndex(of: UInt8(ascii: "\"")), end - key <= 8 else { return nil }
        return String(decoding: bytes[key..<end], as: UTF8.self)
    }

    /// The index just past the first `pattern` at or after `start` in `bytes`.
    static func find(_ pattern: String, in bytes: [UInt8], from start: Int) -> Int? {
        let p = Array(pattern.utf8)
        guard !p.isEmpty, bytes.count >= p.count, start <= bytes.count - p.count else { return nil }
        for i in start...(bytes.count - p.count) where bytes[i] == p[0] && bytes[i..<(i + p.count)].elementsEqual(p) {
            return i + p.count
        }
        return nil
    }
}
