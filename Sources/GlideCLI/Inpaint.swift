// `glide inpaint`: repaint part of a photo from a prompt, as notebooks/inpaint.ipynb does it
// (the library call is InpaintPipeline.run).
import ArgumentParser
import Foundation
import GlideModel
import Imaging
import Kernels
import NumpyIO
import WeightFormat

/// `glide inpaint "PROMPT" --image PHOTO (--mask MASK | --keep-rect x,y,w,h) --model base_inpaint.glw`.
struct Inpaint: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Repaint part of an image from a text prompt with the GLIDE inpainting models.",
        discussion: """
        The mask says what to keep: in a mask image, WHITE (light, grey >= 128) pixels keep the photo and \
        BLACK (dark) pixels are repainted (--invert-mask swaps this). The mask image is converted to grey and \
        resized to 64x64 with nearest-neighbour, like the photo (which is resized with Pillow's bicubic filter, \
        EXIF orientation applied). Instead of a mask image, --keep-rect x,y,w,h keeps one rectangle given in \
        the 64x64 grid and repaints the rest: --keep-rect 0,0,64,20 is the notebook's mask (top 20 rows kept).

        Recipe (notebooks/inpaint.ipynb): the base inpainting model samples 64x64 with 100 DDPM steps and \
        classifier-free guidance 5.0; after every step's x0 prediction the kept region is forced back to the \
        photo. With --upsampler, the inpainting upsampler then makes 256x256 (fast27 respacing, DDPM, start \
        noise x0.997), with the mask upsampled by nearest-neighbour and the same forcing. The kept region of \
        the output is exactly the resized photo.

        Without --model, the models set up by `glide setup base-inpaint upsample-inpaint` are used (the \
        upsampler only if it is set up). \(ModelLocator.cacheHelpText)

        Example (after `glide setup base-inpaint upsample-inpaint`):
          glide inpaint "a corgi in a field" --image grass.png --keep-rect 0,0,64,20 -o corgi.png
        """
    )

    @Argument(help: "The text prompt for the repainted region, e.g. \"a corgi in a field\".")
    var prompt: String

    @Option(help: ArgumentHelp("The photo (PNG or JPEG, any size).", valueName: "photo"))
    var image: String

    @Option(help: ArgumentHelp("Mask image: white keeps the photo, black is repainted.", valueName: "mask.png"))
    var mask: String?

    @Option(help: ArgumentHelp("Keep only this rectangle of the 64x64 grid (x,y,w,h); instead of --mask.",
                               valueName: "x,y,w,h"))
    var keepRect: KeepRect?

    @Flag(help: "Mask image: black keeps the photo and white is repainted.")
    var invertMask = false

    @Option(help: ArgumentHelp("The converted base inpainting model (.glw, from base_inpaint.pt), or a cached model's name (default: base-inpaint, from `glide setup`).", valueName: "file.glw"))
    var model: String?

    @Option(help: ArgumentHelp("The converted inpainting upsampler (.glw, from upsample_inpaint.pt) for a 256x256 result.",
                               valueName: "file.glw"))
    var upsampler: String?

    @Option(name: [.short, .customLong("output")], help: ArgumentHelp("PNG to write (256x256 with --upsampler, else 64x64).",
                                                                      valueName: "out.png"))
    var output: String = "inpainted.png"

    @Option(help: ArgumentHelp("Also write the 64x64 stage's image when upsampling.", valueName: "file.png"))
    var saveLowRes: String?

    @Option(help: "Classifier-free guidance scale of the base stage.")
    var guidance: Float = 5.0

    @Option(help: ArgumentHelp("Base stage steps as a respacing string (100, ddim50, fast27, 10,10,10).", valueName: "spec"))
    var steps: TimestepRespacing = .steps(100)

    @Option(help: ArgumentHelp("Base stage sampler (default ddpm, the notebook's): " + SolverOptions.samplerHelp,
                               valueName: "ddpm|ddim|dpm++2m|dpm++2m-sde"))
    var sampler: SamplerKind = .ddpm

    @OptionGroup var solver: SolverOptions

    @Option(help: ArgumentHelp("Upsampler steps as a respacing string.", valueName: "spec"))
    var upsampleSteps: TimestepRespacing = .fast27

    @Option(help: "Start-noise scale of the upsampler (the notebook's upsample_temp).")
    var temperature: Float = StageSettings.notebookUpsampleTemperature

    @OptionGroup var common: SamplingRunOptions

    func validate() throws {
        switch (mask, keepRect) {
        case (nil, nil): throw ValidationError("give --mask MASK.png (white keeps) or --keep-rect x,y,w,h")
        case (.some, .some): throw ValidationError("give either --mask or --keep-rect, not both")
        default: break
        }
        if invertMask && mask == nil { throw ValidationError("--invert-mask applies to --mask only") }
        guard guidance.isFinite else { throw ValidationError("--guidance must be a finite number") }
        guard temperature.isFinite, temperature > 0 else { throw ValidationError("--temperature must be a positive number") }
    }

    /// `--keep-rect x,y,w,h`: four integers, w and h positive.
    struct KeepRect: ExpressibleByArgument {
        var x: Int, y: Int, w: Int, h: Int

        init?(argument: String) {
            let parts = argument.split(separator: ",").compactMap { Int($0.trimmingCharacters(in: .whitespaces)) }
            guard parts.count == 4, parts[2] > 0, parts[3] > 0, argument.split(separator: ",").count == 4 else { return nil }
            (x, y, w, h) = (parts[0], parts[1], parts[2], parts[3])
        }
    }

    func run() throws {
        // Parse: the models (checked by the pipeline), the photo at both sizes and the 64x64 mask (1 = keep).
        let model = try ModelLocator.resolve(self.model ?? "base-inpaint")
        let upsampler = try self.upsampler.map { try ModelLocator.resolve($0) }
            ?? (self.model == nil ? ModelLocator.cached("upsample-inpaint") : nil)
        var pipeline: InpaintPipeline
        do {
            pipeline = try InpaintPipeline(basePath: model, upsamplerPath: upsampler)
        } catch GlideModelError.wrongModelKind(let role, let expected, let actual) {
            let (path, source) = role == "base inpainting" ? (model, "base_inpaint.pt for --model")
                                                           : (upsampler ?? "", "upsample_inpaint.pt for --upsampler")
            throw CLIError("\(path) is not an \(role == "base inpainting" ? "base inpainting model" : "inpainting upsampler") "
                           + "(\(actual), expected \(expected)); convert \(source)")
        }
        pipeline.baseSettings.respacing = steps
        pipeline.baseSettings.guidanceScale = guidance
        pipeline.baseSettings.sampler = sampler
        solver.apply(to: &pipeline.baseSettings)
        pipeline.upsampleSettings.respacing = upsampleSteps
        pipeline.upsampleSettings.startNoiseScale = temperature
        pipeline.compute = common.compute
        let tokenizer = try withFlagAdvice { try pipeline.tokenizer(directory: common.vocab) }

        let lowSize = pipeline.base.options.imageSize, highSize = pipeline.upsampler?.options.imageSize ?? 0
        let photo = try readImage(path: image)
        let sourceLow = FloatTensor(shape: [1, 3, lowSize, lowSize], values: try referenceImageTensor(photo, size: lowSize))
        let sourceHigh = pipeline.upsampler == nil ? nil
            : FloatTensor(shape: [1, 3, highSize, highSize], values: try referenceImageTensor(photo, size: highSize))
        let maskValues: [Float]
        if let mask {
            maskValues = try maskFromImage(try readImage(path: mask), width: lowSize, height: lowSize,
                                           keep: invertMask ? .black : .white)
        } else {
            let r = keepRect!
            maskValues = keepRectMask(width: lowSize, height: lowSize, x: r.x, y: r.y, w: r.w, h: r.h)
        }
        let kept = maskValues.reduce(0, +)
        if kept == 0 && !common.quiet { printToStderr("warning: the mask keeps nothing; the whole image is repainted") }
        if kept == Float(maskValues.count) && !common.quiet { printToStderr("warning: the mask keeps everything; nothing is repainted") }
        let maskTensor = FloatTensor(shape: [1, 1, lowSize, lowSize], values: maskValues)

        // -> pipeline.
        let seedValue = common.seedOrRandom()
        var run = try pipeline.start(prompt: prompt, tokenizer: tokenizer, sourceLow: sourceLow, sourceHigh: sourceHigh,
                                     mask: maskTensor, seed: seedValue)
        let bar = common.progressBar(total: run.totalSteps)
        if !common.quiet {
            let stages = pipeline.upsampler == nil ? "\(lowSize)x\(lowSize)" : "\(lowSize)x\(lowSize) then \(highSize)x\(highSize)"
            printToStderr("inpainting \(image) (\(Int(kept)) of \(maskValues.count) pixels kept) at \(stages): "
                        + "\(run.totalSteps) steps, guidance \(guidance), seed \(seedValue)")
        }
        let started = monotonicSeconds()
        let outputs = try run.finish(progress: { bar.update(completed: $0.completed) })
        bar.finish()

        // -> write (with the generation record: Sources/GlideCLI/GenerationRecordIO.swift).
        let record = try generationRecord(pipeline: pipeline, seed: seedValue)
        var written: [String] = []
        let lowImage = try tensorToImage(outputs[.base]!.values, height: lowSize, width: lowSize)
        if let high = outputs[.upsample] {
            try RecordIO.writePNG(try tensorToImage(high.values, height: highSize, width: highSize), path: output, record: record)
            written.append("\(output) (\(highSize)x\(highSize))")
            if let saveLowRes {
                try writePNG(lowImage, path: saveLowRes)
                written.append("\(saveLowRes) (\(lowSize)x\(lowSize))")
            }
        } else {
            try RecordIO.writePNG(lowImage, path: output, record: record)
            written.append("\(output) (\(lowSize)x\(lowSize))")
            if let saveLowRes, saveLowRes != output {
                try writePNG(lowImage, path: saveLowRes)
                written.append("\(saveLowRes) (\(lowSize)x\(lowSize))")
            }
        }
        if !common.quiet {
            common.reportDone(startedAt: started, steps: run.totalSteps)
            for w in written { print("wrote \(w)") }
        }
    }

    /// How this run's image was made (inputs: the photo and the mask or kept rectangle).
    private func generationRecord(pipeline: InpaintPipeline, seed: UInt64) throws -> GenerationRecord {
        var inputs = ["image": try RecordIO.inputFile(image)]
        if let mask { inputs["mask"] = try RecordIO.inputFile(mask) + (invertMask ? " inverted" : "") }
        if let r = keepRect { inputs["keep-rect"] = "\(r.x),\(r.y),\(r.w),\(r.h)" }
        if let vocab = common.vocab { inputs["vocab"] = vocab }
        return GenerationRecord(tool: RecordIO.tool, command: .inpaint, prompt: prompt, seed: seed, batch: 1,
                                base: .init(pipeline.baseSettings), upsample: pipeline.upsampler.map { _ in .init(pipeline.upsampleSettings) },
                                model: try RecordIO.modelFile(path: model!, model: pipeline.base),
                                upsampler: try pipeline.upsampler.map { try RecordIO.modelFile(path: upsampler!, model: $0) }, inputs: inputs)
    }
}
