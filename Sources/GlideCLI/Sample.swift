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

        \(ModelLocator.helpText)

        The released GLIDE models are not shipped (1.5 GB each). Get and convert them with:
          glide download base --tokenizer -o models
          glide convert models/base.pt -o base.glw --type int8 --tokenizer models/vocab
          glide sample "an oil painting of a corgi" --model base.glw
        The base model makes 64x64 images; `glide upsample` takes them to 256x256.

        For models smaller than 64x64 (the digits model is 16x16) a smoothly upscaled view is also \
        written next to the PNG (see --view-size), so a person can see it.

        --steps takes the reference's respacing strings: 100 (evenly spaced), ddim50 (DDIM striding), \
        fast27, or section counts such as 10,10,10. The same --seed gives the same image on any \
        thread count; without --seed a random seed is drawn and printed.

        Two stages, as the notebook: --upsampler upsample.glw takes the 64x64 samples to 256x256 (one \
        progress display across both; --save-low-res keeps the 64x64 ones).

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
          glide sample "a corgi" --model base.glw --upsampler upsample.glw -o corgi256.png
        """
    )

    @Argument(help: "The text prompt, e.g. \"a handwritten digit 7\".")
    var prompt: String

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
    var steps: String?

    @Option(help: ArgumentHelp("Sampler: ddpm (ancestral, the notebook's) or ddim (deterministic, eta 0). Default: the notebook's for the model kind.",
                               valueName: "ddpm|ddim"))
    var sampler: String?

    @Option(help: "Classifier-free guidance scale (default 3.0 for base models, 5.0 for inpainting; 1 = plain conditional model; upsamplers are not guided).")
    var guidance: Float?

    @Option(help: ArgumentHelp("Upsampler steps (respacing string) for --upsampler.", valueName: "spec"))
    var upsampleSteps: String = "fast27"

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

    @OptionGroup var common: SamplingRunOptions

    static let inputNames = ["tokens", "mask", "low_res", "inpaint_image", "inpaint_mask"]

    func validate() throws {
        guard batch >= 1 else { throw ValidationError("--batch must be at least 1") }
        if let sampler, SamplerKind(rawValue: sampler) == nil {
            throw ValidationError("--sampler must be ddpm or ddim, not '\(sampler)'")
        }
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
        common.applyThreads()
        let modelPath = try model ?? ModelLocator.defaultModel().path
        let isDefaultModel = model == nil
        let file = try WeightFile(path: modelPath)
        let unet = try Text2ImUNet(file: file)
        let opts = unet.options
        guard opts.xfWidth > 0 else { throw CLIError("\(modelPath) has no text transformer (xf_width 0)") }
        let given = try givenInputs()
        if opts.superRes && given["low_res"] == nil {
            throw CLIError("\(modelPath) is an upsampling model: give --input low_res=FILE.npy, or use `glide upsample IMAGE`")
        }
        if opts.inpaint && (given["inpaint_image"] == nil || given["inpaint_mask"] == nil) {
            throw CLIError("\(modelPath) is an inpainting model: give --input inpaint_image=... and --input inpaint_mask=..., or use `glide inpaint`")
        }

        var settings = StageSettings.notebook(for: opts)
        if let steps { settings.respacing = steps }
        if let sampler { settings.sampler = SamplerKind(rawValue: sampler)! }
        if let guidance, settings.guidanceScale != nil { settings.guidanceScale = guidance }
        let size = opts.imageSize

        // The second stage, if any, is loaded before sampling starts so a bad file fails fast.
        var upsampleModel: Text2ImUNet?
        var upsampleSettings: StageSettings?
        var upsampleFile: WeightFile?
        if let upsampler {
            guard !opts.superRes else { throw CLIError("--upsampler follows a base model; \(modelPath) is an upsampler itself") }
            let upFile = try WeightFile(path: upsampler)
            let upNet = try Text2ImUNet(file: upFile)
            upsampleFile = upFile
            guard upNet.options.superRes, !upNet.options.inpaint else {
                throw CLIError("\(upsampler) is not a plain upsampling model (for inpainting use `glide inpaint --upsampler`)")
            }
            var s = StageSettings.notebook(for: upNet.options)
            s.respacing = upsampleSteps
            upsampleModel = upNet
            upsampleSettings = s
        }

        // Conditioning: from --input tokens/mask, or the prompt and the empty prompt through the tokenizer.
        let (prompts, unconditional) = try textInputs(file: file, options: opts, given: given, guided: settings.guidanceScale != nil)

        let seedValue = common.seedOrRandom()
        var noise = SamplingNoise(seed: seedValue)
        if let startNoise { noise.start = try Npy.read(path: startNoise).floatValues() }
        if let stepNoise { noise.steps = try Npy.read(path: stepNoise).floatValues() }

        let firstSteps = try stepCount(options: opts, respacing: settings.respacing)
        let secondSteps = try upsampleModel.map { try stepCount(options: $0.options, respacing: upsampleSteps) } ?? 0
        let bar = common.progressBar(total: firstSteps + secondSteps)
        if !common.quiet {
            let name = isDefaultModel ? "default model \(modelPath)" : modelPath
            let guided = settings.guidanceScale.map { "guidance \($0)" } ?? "no guidance"
            printToStderr("sampling \(batch) image(s) of \(size)x\(size) with \(name): \(firstSteps) \(settings.sampler.rawValue) steps, "
                          + "\(guided), seed \(seedValue)")
        }
        let started = monotonicSeconds()
        let inputs = StageInputs(prompts: prompts, unconditional: unconditional,
                                 lowRes: try given["low_res"].map(readTensor),
                                 inpaintImage: try given["inpaint_image"].map(readTensor),
                                 inpaintMask: try given["inpaint_mask"].map(readTensor))
        var x0 = try DiffusionStage(model: unet).run(batch: batch, inputs: inputs, settings: settings, noise: noise,
                                                     progress: { p in bar.update(completed: p.completed) })
        var written: [String] = []
        var finalSize = size
        if let upNet = upsampleModel, let upSettings = upsampleSettings {
            if let saveLowRes {
                let low = try sampleGrid(try tensorToImages(x0.values, batch: batch, height: size, width: size))
                try writePNG(low, path: saveLowRes)
                written.append("\(saveLowRes) (\(low.width)x\(low.height) base samples)")
            }
            // The upsampler's own tokenizer (the released ones share GPT-2's), else the base model's.
            let hasOwn = upsampleFile.map { !$0.tokenizerFiles.isEmpty } ?? false
            let tokenizer = try loadGPT2Tokenizer(vocab: common.vocab, model: hasOwn ? upsampleFile : file)
            file.releaseResidentMemory()   // the base weights are done: peak memory is the larger model, not both
            x0 = try UpsampleStage.run(model: upNet, lowRes: x0, prompt: prompt, tokenizer: tokenizer, settings: upSettings,
                                       noise: SamplingNoise(seed: seedValue ^ UpsampleStage.seedOffset),
                                       progress: { p in bar.update(completed: firstSteps + p.completed) })
            finalSize = upNet.options.imageSize
        }
        bar.finish()

        // Outputs.
        let images = try tensorToImages(x0.values, batch: batch, height: finalSize, width: finalSize)
        let grid = try sampleGrid(images)
        try writePNG(grid, path: output)
        written.insert("\(output) (\(grid.width)x\(grid.height))", at: 0)
        if finalSize < 64, viewSize > 0 {
            let big = try images.map { try resizeBicubicPIL($0, width: viewSize, height: viewSize) }
            let viewPath = Sample.viewPath(for: output, size: viewSize)
            let viewGrid = try sampleGrid(big)
            try writePNG(viewGrid, path: viewPath)
            written.append("\(viewPath) (\(viewGrid.width)x\(viewGrid.height) upscaled view)")
        }
        if let npyOut {
            try Npy.write(try NpyArray(float32: x0.values, shape: [batch, 3, finalSize, finalSize]), path: npyOut)
            written.append("\(npyOut) (float32 [\(batch), 3, \(finalSize), \(finalSize)])")
        }
        if !common.quiet {
            common.reportDone(startedAt: started, steps: firstSteps + secondSteps)
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

    private func stepCount(options: ModelOptions, respacing: String) throws -> Int {
        try GaussianDiffusion(schedule: try NoiseSchedule(name: options.noiseSchedule), steps: options.diffusionSteps,
                              respacing: respacing).steps
    }

    /// Prompt rows (one per image) and the empty-prompt row for guidance: from `--input tokens/mask`
    /// ([rows, text_ctx]: the prompt rows, then with guidance the empty-prompt rows), or the prompt through the
    /// model's tokenizer, padded to `text_ctx` as `padded_tokens_and_mask` does.
    private func textInputs(file: WeightFile, options: ModelOptions, given: [String: String],
                            guided: Bool) throws -> ([TextTokens], TextTokens?) {
        let ctx = options.textCtx
        let rows = guided ? 2 * batch : batch
        if given["tokens"] != nil || given["mask"] != nil {
            guard let tokensPath = given["tokens"], let maskPath = given["mask"] else {
                throw CLIError("--input needs both tokens=FILE.npy and mask=FILE.npy")
            }
            let tokenArray = try Npy.read(path: tokensPath)
            let maskArray = try Npy.read(path: maskPath)
            let order = guided ? " (prompt rows then empty-prompt rows)" : ""
            guard tokenArray.shape == [rows, ctx] else {
                throw CLIError("--input tokens: shape \(tokenArray.shape), expected [\(rows), \(ctx)]\(order)")
            }
            guard maskArray.shape == [rows, ctx] else {
                throw CLIError("--input mask: shape \(maskArray.shape), expected [\(rows), \(ctx)]")
            }
            let tokens = try tokenArray.intValues()
            let mask: [Bool] = maskArray.dtype == .bool ? try maskArray.boolValues() : try maskArray.intValues().map { $0 != 0 }
            let all = (0..<rows).map { r in
                TextTokens(tokens: Array(tokens[(r * ctx)..<((r + 1) * ctx)]), mask: Array(mask[(r * ctx)..<((r + 1) * ctx)]))
            }
            guard guided else { return (all, nil) }
            let empty = all[batch]
            guard all[batch...].allSatisfy({ $0 == empty }) else {
                throw CLIError("--input tokens/mask: the empty-prompt rows (\(batch)..<\(rows)) must all be equal")
            }
            return (Array(all[..<batch]), empty)
        }
        let tokenizer = try loadGPT2Tokenizer(vocab: common.vocab, model: file)
        return ([TextTokens(prompt: prompt, tokenizer: tokenizer, textCtx: ctx)],
                guided ? TextTokens.empty(tokenizer: tokenizer, textCtx: ctx) : nil)
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
