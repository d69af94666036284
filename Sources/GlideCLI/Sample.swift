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

        Equivalence hooks (replay the reference's inputs and noise exactly):
          --input tokens=T.npy --input mask=M.npy
              int64 and bool [rows, text_ctx]; rows = 2 * batch: the prompt rows, then the empty-prompt rows
              (the PROMPT argument is then ignored)
          --start-noise X.npy     x_T, [rows >= batch, 3, H, W] (the first batch rows are used)
          --step-noise N.npy      [steps, rows >= batch, 3, H, W], one slice per iteration
          --npy-out OUT.npy       the final sample, float32 [batch, 3, H, W] in [-1, 1]

        Examples:
          glide sample "a handwritten digit 7"
          glide sample "the number 3" --batch 8 --seed 1 --steps ddim25 --sampler ddim -o threes.png
        """
    )

    @Argument(help: "The text prompt, e.g. \"a handwritten digit 7\".")
    var prompt: String

    @Option(help: ArgumentHelp("A converted base model (.glw). Default: the shipped digits model (see below).",
                               valueName: "file.glw"))
    var model: String?

    @Option(name: [.short, .customLong("output")], help: ArgumentHelp("PNG to write (a grid for --batch > 1).",
                                                                      valueName: "out.png"))
    var output: String = "sample.png"

    @Option(help: ArgumentHelp("Sampling steps as a respacing string: 100, ddim50, fast27, 10,10,10.",
                               valueName: "spec"))
    var steps: String = "100"

    @Option(help: ArgumentHelp("Sampler: ddpm (ancestral, the notebook's) or ddim (deterministic, eta 0).",
                               valueName: "ddpm|ddim"))
    var sampler: String = "ddpm"

    @Option(help: "Classifier-free guidance scale (1 = plain conditional model).")
    var guidance: Float = 3.0

    @Option(help: "Seed of the Gaussian noise (default: random, printed).")
    var seed: UInt64?

    @Option(help: "Number of images (one grid PNG).")
    var batch: Int = 1

    @Option(help: "Worker threads (default: GLIDE_THREADS or all cores).")
    var threads: Int?

    @Flag(help: "No progress bar or messages except errors.")
    var quiet = false

    @Option(help: ArgumentHelp("Model input from a .npy file instead of the prompt: tokens=FILE.npy, mask=FILE.npy (repeatable).",
                               valueName: "name=file.npy"))
    var input: [String] = []

    @Option(help: ArgumentHelp("Replay the start noise x_T from a .npy file.", valueName: "file.npy"))
    var startNoise: String?

    @Option(help: ArgumentHelp("Replay the per-step noise from a .npy file [steps, batch, 3, H, W].", valueName: "file.npy"))
    var stepNoise: String?

    @Option(help: ArgumentHelp("Also write the final sample as float32 .npy in [-1, 1] (before 8-bit rounding).",
                               valueName: "file.npy"))
    var npyOut: String?

    @Option(help: "Side of the smoothly (bicubic) upscaled view written for models smaller than 64x64; 0 for none.")
    var viewSize: Int = 128

    @Option(help: ArgumentHelp("Folder with the GPT-2 tokenizer files (encoder.json.gz, vocab.bpe.gz) for a model without an embedded tokenizer.",
                               valueName: "dir"))
    var vocab: String?

    func validate() throws {
        guard batch >= 1 else { throw ValidationError("--batch must be at least 1") }
        guard SamplerKind(rawValue: sampler) != nil else {
            throw ValidationError("--sampler must be ddpm or ddim, not '\(sampler)'")
        }
        if let threads, threads < 1 { throw ValidationError("--threads must be at least 1") }
        guard viewSize >= 0 else { throw ValidationError("--view-size must be 0 or positive") }
        guard guidance.isFinite else { throw ValidationError("--guidance must be a finite number") }
        for item in input {
            let parts = item.split(separator: "=", maxSplits: 1).map(String.init)
            guard parts.count == 2, ["tokens", "mask"].contains(parts[0]), !parts[1].isEmpty else {
                throw ValidationError("--input expects tokens=FILE.npy or mask=FILE.npy, got '\(item)'")
            }
        }
    }

    func run() throws {
        if let threads { KernelSettings.threadCount = threads }
        let modelPath = try model ?? ModelLocator.defaultModel().path
        let isDefaultModel = model == nil
        let file = try WeightFile(path: modelPath)
        let unet = try Text2ImUNet(file: file)
        let opts = unet.options
        if opts.superRes { throw SampleError("\(modelPath) is an upsampling model; use `glide upsample`") }
        if opts.inpaint { throw SampleError("\(modelPath) is an inpainting model; use `glide inpaint`") }
        guard opts.xfWidth > 0 else { throw SampleError("\(modelPath) has no text transformer (xf_width 0)") }

        let schedule = try NoiseSchedule(name: opts.noiseSchedule)
        let diffusion = try GaussianDiffusion(schedule: schedule, steps: opts.diffusionSteps, respacing: steps)
        let samplerKind = SamplerKind(rawValue: sampler)!
        let size = opts.imageSize
        let rows = 2 * batch

        // Text conditioning, computed once: prompt rows, then empty-prompt rows.
        let (tokens, mask) = try textInputs(file: file, options: opts, rows: rows)
        let text = try unet.encodeText(tokens: tokens, mask: mask, batch: rows)

        let seedValue = seed ?? UInt64.random(in: 0...UInt64(UInt32.max))
        var noise = SamplingNoise(seed: seedValue)
        if let startNoise { noise.start = try Npy.read(path: startNoise).floatValues() }
        if let stepNoise { noise.steps = try Npy.read(path: stepNoise).floatValues() }

        let model: DiffusionModel = { x, timesteps in
            let n = timesteps.count
            let out = try unet.forward(x: FloatTensor(shape: [n, 3, size, size], values: x),
                                       timesteps: timesteps.map(Float.init), text: text)
            return out.values
        }

        let showProgress = !quiet && isatty(STDERR_FILENO) != 0
        let bar = SampleProgressBar(total: diffusion.steps, enabled: showProgress)
        if !quiet {
            let name = isDefaultModel ? "default model \(modelPath)" : modelPath
            printStderr("sampling \(batch) image(s) of \(size)x\(size) with \(name): \(diffusion.steps) \(sampler) steps, "
                        + "guidance \(guidance), seed \(seedValue)")
        }
        let started = monotonicSeconds()
        let x0 = try diffusion.sample(
            shape: [batch, 3, size, size],
            options: SamplingOptions(sampler: samplerKind, clipDenoised: true, guidanceScale: guidance),
            noise: noise, model: model,
            progress: { p in bar.update(completed: p.completed) })
        bar.finish()
        let elapsed = monotonicSeconds() - started

        // Outputs.
        let images = try tensorToImages(x0, batch: batch, height: size, width: size)
        let grid = try sampleGrid(images)
        try writePNG(grid, path: output)
        var written = ["\(output) (\(grid.width)x\(grid.height))"]
        if size < 64, viewSize > 0 {
            let big = try images.map { try resizeBicubicPIL($0, width: viewSize, height: viewSize) }
            let viewPath = Sample.viewPath(for: output, size: viewSize)
            let viewGrid = try sampleGrid(big)
            try writePNG(viewGrid, path: viewPath)
            written.append("\(viewPath) (\(viewGrid.width)x\(viewGrid.height) upscaled view)")
        }
        if let npyOut {
            try Npy.write(try NpyArray(float32: x0, shape: [batch, 3, size, size]), path: npyOut)
            written.append("\(npyOut) (float32 [\(batch), 3, \(size), \(size)])")
        }
        if !quiet {
            printStderr(String(format: "done in %.1f s (%.2f s/step)", elapsed, elapsed / Double(diffusion.steps)))
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

    /// Tokens and mask for `rows` rows: from `--input` files, or the prompt (first half) and the empty prompt
    /// (second half) through the model's tokenizer, padded to `text_ctx` as `padded_tokens_and_mask` does.
    private func textInputs(file: WeightFile, options: ModelOptions, rows: Int) throws -> ([Int], [Bool]) {
        let ctx = options.textCtx
        var given: [String: String] = [:]
        for item in input {
            let parts = item.split(separator: "=", maxSplits: 1).map(String.init)
            given[parts[0]] = parts[1]
        }
        if !given.isEmpty {
            guard let tokensPath = given["tokens"], let maskPath = given["mask"] else {
                throw SampleError("--input needs both tokens=FILE.npy and mask=FILE.npy")
            }
            let tokenArray = try Npy.read(path: tokensPath)
            let maskArray = try Npy.read(path: maskPath)
            guard tokenArray.shape == [rows, ctx] else {
                throw SampleError("--input tokens: shape \(tokenArray.shape), expected [\(rows), \(ctx)] (prompt rows then empty-prompt rows)")
            }
            guard maskArray.shape == [rows, ctx] else {
                throw SampleError("--input mask: shape \(maskArray.shape), expected [\(rows), \(ctx)]")
            }
            let mask: [Bool] = maskArray.dtype == .bool ? try maskArray.boolValues() : try maskArray.intValues().map { $0 != 0 }
            return (try tokenArray.intValues(), mask)
        }
        let tokenizer = try loadTokenizer(file: file)
        let (promptTokens, promptMask) = tokenizer.paddedTokensAndMask(tokenizer.encode(prompt), textCtx: ctx)
        let (emptyTokens, emptyMask) = tokenizer.paddedTokensAndMask([], textCtx: ctx)
        var tokens: [Int] = [], mask: [Bool] = []
        for _ in 0..<(rows / 2) { tokens += promptTokens; mask += promptMask }
        for _ in 0..<(rows / 2) { tokens += emptyTokens; mask += emptyMask }
        return (tokens, mask)
    }

    /// The GPT-2 tokenizer embedded in the model file, or read from `--vocab`.
    private func loadTokenizer(file: WeightFile) throws -> GlideTokenizer {
        if let vocab { return try GlideTokenizer(directory: vocab) }
        guard !file.tokenizerFiles.isEmpty else {
            throw SampleError("\(file.path) has no embedded GPT-2 tokenizer; pass --vocab DIR (the folder holding "
                              + "encoder.json.gz and vocab.bpe.gz, e.g. from `glide download --tokenizer`)")
        }
        return try GlideTokenizer(files: file.tokenizerFiles)
    }
}

/// A one-line failure of `glide sample`.
private struct SampleError: Error, CustomStringConvertible {
    let description: String
    init(_ message: String) { description = message }
}

/// Lays images out in a grid: one row for up to 10 images, else ceil(sqrt(n)) columns; white fill.
func sampleGrid(_ images: [Image]) throws -> Image {
    guard let first = images.first else { throw ImagingError.invalidArgument("no images") }
    let n = images.count
    let columns = n <= 10 ? n : Int(Double(n).squareRoot().rounded(.up))
    let gridRows = (n + columns - 1) / columns
    let w = first.width, h = first.height, ch = first.channels
    var pixels = [UInt8](repeating: 255, count: columns * w * gridRows * h * ch)
    for (k, im) in images.enumerated() {
        let gx = (k % columns) * w, gy = (k / columns) * h
        for y in 0..<h {
            let dst = ((gy + y) * columns * w + gx) * ch
            let src = y * w * ch
            for i in 0..<(w * ch) { pixels[dst + i] = im.pixels[src + i] }
        }
    }
    return try Image(width: columns * w, height: gridRows * h, channels: ch, pixels: pixels)
}

private func printStderr(_ line: String) {
    FileHandle.standardError.write((line + "\n").data(using: .utf8)!)
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
