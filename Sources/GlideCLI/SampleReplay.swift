// `glide sample --replay IMAGE.png`: the same image again from the generation record in a PNG, and the record
// every `glide sample` writes (GenerationRecord, Sources/GlideModel/Pipeline/GenerationRecord.swift).
import ArgumentParser
import Foundation
import GlideModel
import Imaging

extension Sample {
    /// Options that would change the image cannot be combined with --replay (the record decides them).
    func validateReplay() throws {
        var conflicting: [String] = []
        if prompt != nil { conflicting.append("PROMPT") }
        if steps != nil { conflicting.append("--steps") }
        if sampler != nil { conflicting.append("--sampler") }
        if guidance != nil { conflicting.append("--guidance") }
        if batch != 1 { conflicting.append("--batch") }
        if common.seed != nil { conflicting.append("--seed") }
        if !input.isEmpty { conflicting.append("--input") }
        if startNoise != nil { conflicting.append("--start-noise") }
        if stepNoise != nil { conflicting.append("--step-noise") }
        if !conflicting.isEmpty {
            throw ValidationError("--replay takes the prompt and settings from the image; drop \(conflicting.joined(separator: ", "))")
        }
    }

    /// Reads the record in `path`, checks that it can be replayed, and samples with its values.
    func replaying(_ path: String) throws {
        let (_, found) = try RecordIO.read(png: path)
        guard let record = found else {
            throw CLIError("\(path) has no glide generation record (glide:* text chunks); only images written by glide sample replay")
        }
        try record.checkReplayable()
        var copy = self
        copy.replay = nil
        copy.prompt = record.prompt
        copy.common.seed = record.seed
        copy.batch = record.batch
        copy.steps = record.base.respacing
        copy.sampler = record.base.sampler
        copy.guidance = record.base.guidanceScale
        if let up = record.upsample { copy.upsampleSteps = up.respacing }
        if model == nil && record.model.fileName != ModelLocator.defaultModelName {
            throw CLIError("\(path) was made with \(record.model.fileName) (sha256 \(record.model.sha256)); give it with --model PATH")
        }
        if let recorded = record.upsampler, upsampler == nil {
            throw CLIError("\(path) was upsampled with \(recorded.fileName) (sha256 \(recorded.sha256)); give it with --upsampler PATH")
        }
        if record.upsampler == nil, let upsampler {
            throw CLIError("\(path) was made without an upsampler; drop --upsampler \(upsampler)")
        }
        let original = try? readImage(path: path, applyEXIFOrientation: false)
        try copy.generate(replaying: record)
        guard !common.quiet, let original else { return }
        let again = try readImage(path: output, applyEXIFOrientation: false)
        print(again == original ? "replay: \(output) has the same pixels as \(path)"
                                : "replay: \(output) differs from \(path)")
    }

    /// The generation record of a two-stage run; with `recorded`, checks the model files against it first.
    func makeRecord(modelPath: String, upsamplerPath: String?, base: Text2ImUNet, pipeline: Text2ImPipeline,
                    request: Text2ImRequest, given: [String: String], checking recorded: GenerationRecord?) throws -> GenerationRecord {
        let modelFile = try RecordIO.modelFile(path: modelPath, model: base)
        let upsamplerFile = try pipeline.upsampler.map { u -> GenerationRecord.ModelFile in
            guard let upsamplerPath else { throw CLIError("internal: an upsampler without its path") }
            return try RecordIO.modelFile(path: upsamplerPath, model: u)
        }
        if let recorded {
            do {
                try recorded.checkModel(role: "model", actual: modelFile)
                if let upsamplerFile { try recorded.checkModel(role: "upsampler", actual: upsamplerFile) }
            } catch let error as GlideModelError {
                throw CLIError("cannot replay: \(error)")
            }
        }
        var inputs = try recordedInputs(given: given)
        // CLIP guidance is recorded as an outside input (its encoders and scale), so such an image is inspected
        // but not replayed without it.
        if let scale = clip.scale {
            inputs["clip-guidance"] = "scale \(scale), image encoder \(clip.imageEncoder ?? "clip/image-enc"), text encoder \(clip.textEncoder ?? "clip/text-enc")"
        }
        return GenerationRecord(tool: RecordIO.tool, pipeline: pipeline, request: request, model: modelFile,
                                upsampler: upsamplerFile, inputs: inputs)
    }

    /// Inputs from outside the record: `--input` files, replayed noise and the tokenizer folder.
    func recordedInputs(given: [String: String]) throws -> [String: String] {
        var inputs: [String: String] = [:]
        for (name, path) in given { inputs[name] = try RecordIO.inputFile(path) }
        if let startNoise { inputs["start-noise"] = try RecordIO.inputFile(startNoise) }
        if let stepNoise { inputs["step-noise"] = try RecordIO.inputFile(stepNoise) }
        if let vocab = common.vocab { inputs["vocab"] = vocab }
        return inputs
    }
}
