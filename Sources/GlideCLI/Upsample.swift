// `glide upsample`: a user's image to 256x256 with the GLIDE upsampler, as the second half of
// notebooks/text2im.ipynb does it (the library call is UpsampleStage.start).
import ArgumentParser
import Foundation
import GlideModel
import Imaging
import Kernels
import NumpyIO
import WeightFormat

/// `glide upsample IMAGE "PROMPT" --upsampler upsample.glw`.
struct Upsample: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Upsample an image (64x64 -> 256x256) with a GLIDE upsampler model and a text prompt.",
        discussion: """
        The image (PNG or JPEG, any size; EXIF orientation applied) is first resized to the upsampler's \
        low resolution (image_size / 4: 64x64 for the released model) with Pillow's bicubic filter, as \
        the reference's read_image does, then upsampled with the notebook's recipe (notebooks/text2im.ipynb): \
        low-res snapped to 8-bit levels, fast27 respacing with DDIM, no classifier-free guidance, start noise \
        scaled by --temperature 0.997. The prompt should describe the image.

        \(ModelLocator.cacheHelpText)

        Example (after `glide setup upsample`):
          glide upsample corgi64.png "an oil painting of a corgi" -o corgi256.png
        """
    )

    @Argument(help: "The image to upsample (PNG or JPEG).")
    var image: String

    @Argument(help: "A text prompt describing the image.")
    var prompt: String

    @Option(help: ArgumentHelp("A converted upsampler model (.glw), e.g. from upsample.pt, or a cached model's name (default: upsample, from `glide setup`).",
                               valueName: "file.glw"))
    var upsampler: String?

    @Option(name: [.short, .customLong("output")], help: ArgumentHelp("PNG to write.", valueName: "out.png"))
    var output: String = "upsampled.png"

    @Option(help: ArgumentHelp("Sampling steps as a respacing string (fast27, 50, ddim25, ...).", valueName: "spec"))
    var steps: TimestepRespacing = .fast27

    @Option(help: ArgumentHelp("Sampler (default ddim, the notebook's): " + SolverOptions.samplerHelp,
                               valueName: "ddim|ddpm|dpm++2m|dpm++2m-sde"))
    var sampler: SamplerKind = .ddim

    @OptionGroup var solver: SolverOptions

    @Option(help: "Start-noise scale (the notebook's upsample_temp; 1.0 is sharper but can be grainy).")
    var temperature: Float = StageSettings.notebookUpsampleTemperature

    @Option(help: ArgumentHelp("Also write the result as float32 .npy [1, 3, S, S] in [-1, 1].", valueName: "file.npy"))
    var npyOut: String?

    @OptionGroup var common: SamplingRunOptions

    func validate() throws {
        guard temperature.isFinite, temperature > 0 else { throw ValidationError("--temperature must be a positive number") }
        if solver.guidanceInterval != nil { throw ValidationError(SolverOptions.unguidedIntervalMessage("glide upsample (the notebook's upsampler recipe, unguided)")) }
    }

    func run() throws {
        // Parse: the upsampler and the image at its low resolution, as the reference's read_image.
        let upsampler = try ModelLocator.resolve(self.upsampler ?? "upsample")
        let model = try Text2ImUNet(path: upsampler)
        let o = model.options
        let lowSize = max(1, o.imageSize / 4)
        let picture = try readImage(path: image)
        let lowRes = FloatTensor(shape: [1, 3, lowSize, lowSize], values: try referenceImageTensor(picture, size: lowSize))

        // -> pipeline: the notebook's upsampling stage.
        var settings = StageSettings.notebook(for: o)
        settings.respacing = steps
        settings.sampler = sampler
        solver.apply(to: &settings)
        settings.startNoiseScale = temperature
        let tokenizer = try loadGPT2Tokenizer(vocab: common.vocab, model: model.file)
        let seedValue = common.seedOrRandom()
        var run: PipelineRun
        do {
            run = try UpsampleStage.start(model: model, lowRes: lowRes, prompt: prompt, tokenizer: tokenizer,
                                          settings: settings, noise: SamplingNoise(seed: seedValue), compute: common.compute)
        } catch GlideModelError.wrongModelKind(_, _, let actual) {
            throw CLIError("\(upsampler) is a \(actual), not an upsampler"
                           + (o.inpaint ? "; use `glide inpaint --upsampler`" : " (convert upsample.pt)"))
        }
        let bar = common.progressBar(total: run.totalSteps)
        if !common.quiet {
            printToStderr("upsampling \(image) (\(picture.width)x\(picture.height) -> \(lowSize)x\(lowSize) -> "
                        + "\(o.imageSize)x\(o.imageSize)) with \(upsampler): \(run.totalSteps) \(sampler.rawValue) steps, seed \(seedValue)")
        }
        let started = monotonicSeconds()
        try run.finish(progress: { bar.update(completed: $0.completed) })
        bar.finish()

        // -> write.
        let out = run.finalOutput!
        let size = o.imageSize
        let record = GenerationRecord(tool: RecordIO.tool, command: .upsample, prompt: prompt, seed: seedValue, batch: 1,
                                      base: .init(settings), model: try RecordIO.modelFile(path: upsampler, model: model),
                                      inputs: ["image": try RecordIO.inputFile(image)].merging(common.vocab.map { ["vocab": $0] } ?? [:]) { a, _ in a })
        try RecordIO.writePNG(try tensorToImage(out.values, height: size, width: size), path: output, record: record)
        if let npyOut { try Npy.write(try NpyArray(float32: out.values, shape: out.shape), path: npyOut) }
        if !common.quiet {
            common.reportDone(startedAt: started, steps: run.totalSteps)
            print("wrote \(output) (\(size)x\(size))")
            if let npyOut { print("wrote \(npyOut) (float32 [1, 3, \(size), \(size)])") }
        }
    }
}
