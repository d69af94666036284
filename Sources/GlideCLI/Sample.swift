// `glide sample`: text -> image with a GLIDE base (text2im) model, as notebooks/text2im.ipynb does it.
import ArgumentParser
import Foundation
import GlideModel
import Imaging
import Kernels
import NumpyIO
import WeightFormat

/// `glide sample "PROMPT"`: classifier-free-guided sampling with a converted base model.
struct Sample: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Generate images from a text prompt with a GLIDE base (text-to-image) model.",
        discussion: """
        Defaults follow the reference notebook (notebooks/text2im.ipynb): 100 DDPM steps, guidance 3.0, \
        the prompt paired with the empty prompt for classifier-free guidance.

        \(ModelLocator.helpText) When `glide setup` has installed the base model, it (with the upsampler, if \
        installed) is the default instead. \(ModelLocator.cacheHelpText)

        The released GLIDE models are not shipped (1.5 GB each). Get, convert and install them with:
          glide setup                                   (base + upsample, int8)
          glide sample "an oil painting of a corgi"     (then uses them: 64x64 -> 256x256)
        The base model makes 64x64 images; `glide upsample` takes them to 256x256.

        For models smaller than 64x64 (the digits model is 16x16) a smoothly upscaled view is also \
        written next to the PNG (see --view-size), so a person can see it.

        --steps takes the reference's respacing strings: 100 (evenly spaced), ddim50 (DDIM striding), \
        fast27, or section counts such as 10,10,10. The same --seed gives the same image on any \
        thread count; without --seed a random seed is drawn and printed.

        Fewer steps: --sampler dpm++2m-sde --steps 10 matched the notebook's 100 DDPM steps on the digits \
        model, also with --guidance-interval 0.28,2.9 (BENCHMARKS.md section 9; details under --sampler). \
        The notebook's recipe stays the default.

        Two stages, as the notebook: --upsampler upsample.glw takes the 64x64 samples to 256x256 (one \
        progress display across both; --save-low-res keeps the 64x64 ones).

        CLIP guidance (notebooks/clip_guided.ipynb): --clip-guidance 3.0 --clip-image clip_image_enc.glw \
        --clip-text clip_text_enc.glw steers the base model with the noised CLIP instead of classifier-free \
        guidance: one row per image, DDPM, each step's mean shifted by variance x grad_scale x the gradient of \
        CLIP's similarity to the prompt (CLIP's tokenizer, embedded in the text encoder's file or --clip-vocab).

        Every PNG written records how it was made (prompt, seed, steps, sampler, guidance, each model's file \
        name, SHA-256 and weight type) in glide:* text chunks; `glide inspect IMAGE.png` prints them and \
        --replay IMAGE.png makes the same pixels again from the same model files.

        Equivalence hooks (replay the reference's inputs and noise exactly):
          --input tokens=T.npy --input mask=M.npy
              int64 and bool [rows, text_ctx]; rows = 2 * batch when guided: the prompt rows, then the
              empty-prompt rows (the PROMPT argument is then ignored)
          --input low_res=L.npy                            upsampling models ([batch, 3, 64, 64] in [-1, 1])
          --input inpaint_image=I.npy --input inpaint_mask=M.npy   inpainting models (forcing as the notebook)
          --start-noise X.npy     x_T, [rows >= batch, 3, H, W] (the first batch rows are used)
          --step-noise N.npy      [steps, rows >= batch, 3, H, W], one slice per iteration
          --npy-out OUT.npy       the final sample, float32 [batch, 3, H, W] in [-1, 1]

        Examples:
          glide sample "a handwritten digit 7"
          glide sample "the number 3" --batch 8 --seed 1 --steps 25 -o threes.png   (25 steps, not 100)
          glide sample "the number 3" --sampler dpm++2m-sde --steps 10              (10 steps)
          glide sample "a corgi" --model base.glw --upsampler upsample.glw -o corgi256.png
          glide sample "an oil painting of a corgi" --model base.glw --clip-guidance 3 \\
              --clip-image clip_image_enc.glw --clip-text clip_text_enc.glw --upsampler upsample.glw
          glide sample --replay corgi256.png --model base.glw --upsampler upsample.glw -o again.png

        """
    )

    @Argument(help: "The text prompt, e.g. \"a handwritten digit 7\" (not with --replay).")
    var prompt: String?

    @Option(help: ArgumentHelp("Make the image recorded in a PNG written by glide sample again: its prompt, seed, batch, steps, sampler and guidance, with the same model files (checked by SHA-256; give --model/--upsampler when they are not the default model).",
                               valueName: "image.png"))
    var replay: String?

    @Option(help: ArgumentHelp("A converted model (.glw): a base model, or with --input an upsampling or inpainting model. Default: the shipped digits model (see below).",
                               valueName: "file.glw"))
    var model: String?

    @Option(help: ArgumentHelp("An upsampling model (.glw): upsample the base model's samples (64 -> 256) with the notebook's recipe (fast27 DDIM, temperature 0.997, no guidance).",
                               valueName: "file.glw"))
    var upsampler: String?

    @Option(name: [.short, .customLong("output")], help: ArgumentHelp("PNG to write (a grid for --batch > 1).",
                                                                      valueName: "out.png"))
    var output: String = "sample.png"

    @Option(help: ArgumentHelp("With --upsampler: also write the 64x64 samples to this PNG.", valueName: "low.png"))
    var saveLowRes: String?

    @Option(help: ArgumentHelp("Sampling steps as a respacing string: 100, ddim50, fast27, 10,10,10 (default: the notebook's for the model kind: 100 for base models, fast27 for upsamplers).",
                               valueName: "spec"))
    var steps: TimestepRespacing?

    @Option(help: ArgumentHelp("Sampler: " + SolverOptions.samplerHelp + " Default: the notebook's for the model kind.",
                               valueName: "ddpm|ddim|dpm++2m|dpm++2m-sde"))
    var sampler: SamplerKind?

    @OptionGroup var solver: SolverOptions

    @Option(help: "Classifier-free guidance scale (default 3.0 for base models, 5.0 for inpainting; 1 = plain conditional model; upsamplers are not guided).")
    var guidance: Float?

    @Option(help: ArgumentHelp("Upsampler steps (respacing string) for --upsampler.", valueName: "spec"))
    var upsampleSteps: TimestepRespacing = .fast27

    @Option(help: "Number of images (one grid PNG).")
    var batch: Int = 1

    @Option(help: ArgumentHelp("Model input from a .npy file (repeatable): tokens=, mask= (rows: the prompt rows, then the empty-prompt rows; the PROMPT argument is then ignored), low_res= (upsamplers), inpaint_image=, inpaint_mask= (inpainting models).",
                               valueName: "name=file.npy"))
    var input: [String] = []

    @Option(help: ArgumentHelp("Replay the start noise x_T from a .npy file.", valueName: "file.npy"))
    var startNoise: String?

    @Option(help: ArgumentHelp("Replay the per-step noise from a .npy file [steps, rows, 3, H, W].", valueName: "file.npy"))
    var stepNoise: String?

    @Option(help: ArgumentHelp("Also write the final sample as float32 .npy in [-1, 1] (before 8-bit rounding).",
                               valueName: "file.npy"))
    var npyOut: String?

    @Option(help: "Side of the smoothly (bicubic) upscaled view written for models smaller than 64x64; 0 for none.")
    var viewSize: Int = 128

    @Flag(help: "Print where the run's wall and CPU time went (loading, hashing, text, each stage's steps, writing) on stderr.")
    var timings = false

    @OptionGroup var common: SamplingRunOptions

    @OptionGroup(title: "CLIP guidance (notebooks/clip_guided.ipynb)") var clip: ClipGuidanceArguments

    static let inputNames = ["tokens", "mask", "low_res", "inpaint_image", "inpaint_mask"]

    func validate() throws {
        if replay != nil {
            try validateReplay()
        } else if prompt == nil {
            throw ValidationError("give a PROMPT, or --replay IMAGE.png")
        }
        guard batch >= 1 else { throw ValidationError("--batch must be at least 1") }
        guard viewSize >= 0 else { throw ValidationError("--view-size must be 0 or positive") }
        if let guidance, !guidance.isFinite { throw ValidationError("--guidance must be a finite number") }
        if saveLowRes != nil && upsampler == nil { throw ValidationError("--save-low-res goes with --upsampler") }
        for item in input {
            let parts = item.split(separator: "=", maxSplits: 1).map(String.init)
            guard parts.count == 2, Sample.inputNames.contains(parts[0]), !parts[1].isEmpty else {
                throw ValidationError("--input expects NAME=FILE.npy with NAME one of \(Sample.inputNames.joined(separator: ", ")), got '\(item)'")
            }
        }
    }

    func run() throws {
        if let replay { return try replaying(replay) }   // Sources/GlideCLI/SampleReplay.swift
        try generate(replaying: nil)
    }

    /// Samples and writes; with `recorded`, the model files must be the recorded ones and its settings are used.
    func generate(replaying recorded: GenerationRecord?) throws {
        let prompt = self.prompt ?? ""
        let clock = timings ? RunTimings() : nil
        let (modelPath, upsampler) = try ModelLocator.sampleModels(model: model, upsampler: self.upsampler)
        let given = try givenInputs()
        let base = try Text2ImUNet(path: modelPath)
        clock?.mark("open and bind the model files")
        let o = base.options
        let seedValue = common.seedOrRandom()
        var noise = SamplingNoise(seed: seedValue)
        if let startNoise { noise.start = try Npy.read(path: startNoise).floatValues() }
        if let stepNoise { noise.steps = try Npy.read(path: stepNoise).floatValues() }

        // Parse -> pipeline: the text2im recipe for a base model; one stage with the given inputs otherwise
        // (upsampling and inpainting models with --input, the equivalence hooks).
        var run: PipelineRun
        var record: GenerationRecord
        var settings = StageSettings.notebook(for: o)
        if let steps { settings.respacing = steps }
        if let sampler { settings.sampler = sampler }
        solver.apply(to: &settings)
        if let guidance, settings.guidanceScale != nil { settings.guidanceScale = guidance }
        if clip.scale != nil {
            guard !o.superRes && !o.inpaint else { throw CLIError("--clip-guidance steers a base model; \(modelPath) is a \(o.referenceClassName)") }
            if guidance != nil { throw CLIError("--clip-guidance replaces classifier-free guidance; drop --guidance") }
            if let sampler, sampler != .ddpm { throw CLIError("--clip-guidance samples with DDPM (condition_mean); drop --sampler \(sampler.rawValue)") }
            settings.guidanceScale = nil
            settings.sampler = .ddpm
        }
        if solver.guidanceInterval != nil && settings.guidanceScale == nil {
            throw CLIError(SolverOptions.unguidedIntervalMessage(clip.scale != nil ? "CLIP-guided sampling" : "\(modelPath) (a \(o.referenceClassName), sampled unguided)"))
        }
        if !o.superRes && !o.inpaint {
            if let extra = ["low_res", "inpaint_image", "inpaint_mask"].first(where: { given[$0] != nil }) {
                throw CLIError("--input \(extra): \(modelPath) is a \(o.referenceClassName), which takes no \(extra)")
            }
            var pipeline = try Text2ImPipeline(base: base, upsampler: try upsampler.map { try Text2ImUNet(path: $0) })
            clock?.mark("open and bind the model files")
            pipeline.baseSettings = settings
            pipeline.upsampleSettings.respacing = upsampleSteps
            pipeline.compute = common.compute
            pipeline.tokenizerDirectory = common.vocab
            pipeline.clip = try clip.models()
            var request = Text2ImRequest(prompt: prompt, batch: batch, seed: seedValue, baseNoise: noise)
            if let recorded { request = try recorded.replay(on: &pipeline); request.baseNoise = noise }
            record = try makeRecord(modelPath: modelPath, upsamplerPath: upsampler, base: base, pipeline: pipeline, request: request, given: given, checking: recorded)
            clock?.mark("record (SHA-256 of the model files)")
            request.baseText = try tokenRows(given: given, guided: pipeline.baseSettings.guidanceScale != nil)
            let started = request
            run = try withFlagAdvice { try pipeline.start(started) }
            clock?.mark("start (tokenizer, base text transformer)")
        } else {
            if upsampler != nil { throw CLIError("--upsampler follows a base model; \(modelPath) is a \(o.referenceClassName)") }
            let guided = settings.guidanceScale != nil
            let text = try tokenRows(given: given, guided: guided) ?? withFlagAdvice {
                let tokenizer = try GlideTokenizer.load(directory: common.vocab, embeddedIn: [base.file])
                return StageText(prompts: [TextTokens(prompt: prompt, tokenizer: tokenizer, textCtx: o.textCtx)],
                                 unconditional: guided ? .empty(tokenizer: tokenizer, textCtx: o.textCtx) : nil)
            }
            let inputs = StageInputs(prompts: text.prompts, unconditional: text.unconditional,
                                     lowRes: try given["low_res"].map(readTensor),
                                     inpaintImage: try given["inpaint_image"].map(readTensor),
                                     inpaintMask: try given["inpaint_mask"].map(readTensor))
            record = GenerationRecord(tool: RecordIO.tool, command: .sample, prompt: prompt, seed: seedValue, batch: batch,
                                      base: .init(settings), model: try RecordIO.modelFile(path: modelPath, model: base),
                                      inputs: try recordedInputs(given: given))
            clock?.mark("record (SHA-256 of the model files)")
            do {
                run = try DiffusionStage(model: base).start(batch: batch, inputs: inputs, settings: settings, noise: noise,
                                                            compute: common.compute)
                clock?.mark("start (tokenizer, text transformer, inputs)")
            } catch GlideModelError.missingInput(let name, let cls) {
                let advice = o.superRes && !o.inpaint ? "give --input low_res=FILE.npy, or use `glide upsample IMAGE`"
                                                      : "give --input inpaint_image=... and --input inpaint_mask=..., or use `glide inpaint`"
                throw CLIError("\(modelPath) is a \(cls), which needs \(name): \(advice)")
            }
        }

        let bar = common.progressBar(total: run.totalSteps)
        if !common.quiet {
            let name = model == nil ? "default model \(modelPath)" : modelPath
            let guided = clip.scale.map { "CLIP guidance \($0)" } ?? settings.guidanceScale.map { "guidance \($0)" } ?? "no guidance"
            let stages = run.stageSteps.map { "\($0.steps) \($0.stage.rawValue)" }.joined(separator: " + ")
            printToStderr("sampling \(batch) image(s) of \(o.imageSize)x\(o.imageSize) with \(name): \(stages) steps "
                          + "(\(settings.sampler.rawValue)), \(guided), seed \(seedValue)")
        }
        let started = monotonicSeconds()
        clock?.mark("other set-up")
        var written: [String] = []
        while let event = try run.next() {
            switch event {
            case .step(let p):
                if p.step.completed == 1 {
                    clock?.mark("\(p.stage.rawValue): stage start + first step")
                } else {
                    clock?.markCall("\(p.stage.rawValue): steps 2...")
                }
                bar.update(completed: p.completed)
            case .stageFinished(.base, let low):
                guard let saveLowRes, upsampler != nil else { break }
                let grid = try sampleGrid(try tensorToImages(low.values, batch: batch, height: low.shape[2], width: low.shape[3]))
                try writePNG(grid, path: saveLowRes)
                written.append("\(saveLowRes) (\(grid.width)x\(grid.height) base samples)")
            case .stageFinished: break
            }
        }
        bar.finish()
        clock?.mark("stage ends")

        // -> write.
        let x0 = run.finalOutput!
        let finalSize = x0.shape[3]
        let images = try tensorToImages(x0.values, batch: batch, height: finalSize, width: finalSize)
        let grid = try sampleGrid(images)
        try RecordIO.writePNG(grid, path: output, record: record)
        written.insert("\(output) (\(grid.width)x\(grid.height))", at: 0)
        if finalSize < 64, viewSize > 0 {
            let big = try images.map { try resizeBicubicPIL($0, width: viewSize, height: viewSize) }
            let viewPath = Sample.viewPath(for: output, size: viewSize)
            let viewGrid = try sampleGrid(big)
            try writePNG(viewGrid, path: viewPath)
            written.append("\(viewPath) (\(viewGrid.width)x\(viewGrid.height) upscaled view)")
        }
        if let npyOut {
            try Npy.write(try NpyArray(float32: x0.values, shape: x0.shape), path: npyOut)
            written.append("\(npyOut) (float32 \(x0.shape))")
        }
        clock?.mark("encode and write the outputs")
        if let clock { printToStderr(clock.report(threads: common.threads ?? KernelSettings.threadCount)) }
        if !common.quiet {
            common.reportDone(startedAt: started, steps: run.totalSteps)
            for w in written { print("wrote \(w)") }
        }
    }

    /// `out.png` -> `out-128x128.png` (the upscaled view's path).
    static func viewPath(for output: String, size: Int) -> String {
        let url = URL(fileURLWithPath: output)
        let ext = url.pathExtension.isEmpty ? "png" : url.pathExtension
        let stem = url.deletingPathExtension().lastPathComponent
        let dir = (output as NSString).deletingLastPathComponent
        let name = "\(stem)-\(size)x\(size).\(ext)"
        return dir.isEmpty ? name : (dir as NSString).appendingPathComponent(name)
    }

    /// `--input NAME=FILE` pairs.
    private func givenInputs() throws -> [String: String] {
        var given: [String: String] = [:]
        for item in input {
            let parts = item.split(separator: "=", maxSplits: 1).map(String.init)
            if given[parts[0]] != nil { throw CLIError("--input \(parts[0]) given twice") }
            given[parts[0]] = parts[1]
        }
        return given
    }

    private func readTensor(_ path: String) throws -> FloatTensor {
        let array = try Npy.read(path: path)
        return FloatTensor(shape: array.shape, values: try array.floatValues())
    }

    /// `--input tokens=T.npy --input mask=M.npy` as token rows ([rows, text_ctx]: the prompt rows, then with
    /// guidance the empty-prompt rows), or nil when not given. The pipeline checks the rows against the model.
    private func tokenRows(given: [String: String], guided: Bool) throws -> StageText? {
        guard given["tokens"] != nil || given["mask"] != nil else { return nil }
        guard let tokensPath = given["tokens"], let maskPath = given["mask"] else {
            throw CLIError("--input needs both tokens=FILE.npy and mask=FILE.npy")
        }
        let tokenArray = try Npy.read(path: tokensPath)
        let maskArray = try Npy.read(path: maskPath)
        guard tokenArray.shape.count == 2, maskArray.shape == tokenArray.shape else {
            throw CLIError("--input tokens/mask: shapes \(tokenArray.shape) and \(maskArray.shape), expected both [rows, text_ctx]")
        }
        let rows = tokenArray.shape[0], ctx = tokenArray.shape[1]
        let tokens = try tokenArray.intValues()
        let mask: [Bool] = maskArray.dtype == .bool ? try maskArray.boolValues() : try maskArray.intValues().map { $0 != 0 }
        let all = (0..<rows).map { r in
            TextTokens(tokens: Array(tokens[(r * ctx)..<((r + 1) * ctx)]), mask: Array(mask[(r * ctx)..<((r + 1) * ctx)]))
        }
        return try StageText(modelRows: all, batch: batch, guided: guided)
    }
}

/// Lays images out in a grid: one row for up to 10 images, else ceil(sqrt(n)) columns; white fill.
func sampleGrid(_ images: [Image]) throws -> Image {
    let n = images.count
    return try makeGrid(images, columns: n <= 10 ? n : Int(Double(n).squareRoot().rounded(.up)))
}

/// A one-line progress bar on stderr: step, steps/s and ETA.
final class SampleProgressBar {
    private let total: Int
    private let enabled: Bool
    private let start = monotonicSeconds()
    private var lastDraw = -1.0

    init(total: Int, enabled: Bool) {
        self.total = total
        self.enabled = enabled
    }

    func update(completed: Int) {
        guard enabled else { return }
        let now = monotonicSeconds()
        if completed < total && now - lastDraw < 0.1 { return }
        lastDraw = now
        let elapsed = now - start
        let rate = elapsed > 0 ? Double(completed) / elapsed : 0
        let eta = rate > 0 ? Double(total - completed) / rate : 0
        let width = 30
        let filled = total > 0 ? width * completed / total : width
        let bar = String(repeating: "#", count: filled) + String(repeating: ".", count: width - filled)
        let line = "\r[\(bar)] step \(completed)/\(total)  " + String(format: "%.2f", rate) + " steps/s  ETA \(formatDuration(eta)) "
        FileHandle.standardError.write(line.data(using: .utf8)!)
    }

    func finish() {
        guard enabled else { return }
        FileHandle.standardError.write("\n".data(using: .utf8)!)
    }

    private func formatDuration(_ seconds: Double) -> String {
        let s = Int(seconds.rounded())
        return s >= 60 ? "\(s / 60)m\(String(format: "%02d", s % 60))s" : "\(s)s"
    }
}
