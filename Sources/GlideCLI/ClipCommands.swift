// `glide clip-score` and `glide clip-grad`, and the CLIP encoders' `glide forward`: the noised CLIP models
// (clip/image-enc, clip/text-enc) as the reference's CLIPModel uses them.
import ArgumentParser
import Foundation
import GlideModel
import Imaging
import Kernels
import NumpyIO
import WeightFormat

/// `glide clip-score IMAGE... "PROMPT"`: cosine similarity of images and a prompt under the noised CLIP at t = 0.
struct ClipScore: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "clip-score",
        abstract: "Cosine similarity of images and a prompt under GLIDE's noised CLIP (t = 0).",
        discussion: """
        Each image is read (PNG or JPEG), resized to the encoder's 64x64 with Pillow's bicubic as the reference \
        notebooks' read_image does, scaled to [-1, 1], and embedded by clip/image-enc at timestep 0; the prompt is \
        tokenized by CLIP's tokenizer and embedded by clip/text-enc. Prints <z_image, z_text> of the L2-normalised \
        embeddings, one line per image (or one JSON object per line with --json).

        Example:
          glide clip-score out.png "an oil painting of a corgi" --clip-image clip_image_enc.glw --clip-text clip_text_enc.glw
        """
    )

    @Argument(help: ArgumentHelp("Images, then the prompt.", valueName: "image... prompt"))
    var items: [String]

    @Option(name: .customLong("clip-image"), help: ArgumentHelp("The converted clip/image-enc.", valueName: "file.glw"))
    var clipImage: String

    @Option(name: .customLong("clip-text"), help: ArgumentHelp("The converted clip/text-enc.", valueName: "file.glw"))
    var clipText: String

    @Option(help: ArgumentHelp("Folder with bpe_simple_vocab_16e6.txt.gz when the text encoder has no embedded tokenizer.",
                               valueName: "dir"))
    var vocab: String?

    @Flag(help: "One JSON object {\"image\", \"score\"} per line.")
    var json = false

    @Option(help: "Worker threads (default: GLIDE_THREADS or all cores).")
    var threads: Int?

    func validate() throws {
        guard items.count >= 2 else { throw ValidationError("give at least one image and then the prompt") }
        if let threads, threads < 1 { throw ValidationError("--threads must be at least 1") }
    }

    func run() throws { try ComputeOptions(threadCount: threads).perform { try score() } }

    private func score() throws {
        let prompt = items.last!, paths = Array(items.dropLast())
        let text = try ClipEncoder(path: ModelLocator.resolve(clipText)), image = try ClipEncoder(path: ModelLocator.resolve(clipImage))
        let tokenizer = try loadCLIPTokenizer(vocab: vocab, model: text.file)
        let guidance = try ClipGuidance(imageEncoder: image, textEncoder: text,
                                        prompts: [ClipTextTokens(prompt: prompt, tokenizer: tokenizer,
                                                                 context: text.options.maxTextLen)])
        let side = image.options.imageSize
        for path in paths {
            let pixels = try referenceImageTensor(try readImage(path: path), size: side)
            let score = try guidance.cosineSimilarity(images: FloatTensor(shape: [1, 3, side, side], values: pixels))[0]
            if json {
                print("{\"image\": \(clipJSONString(path)), \"score\": \(score)}")
            } else {
                print(String(format: "%.6f  %@", score, path))
            }
        }
    }
}

/// `glide clip-grad`: what the reference's `cond_fn(x, t)` returns, for checks against PyTorch.
struct ClipGrad: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "clip-grad",
        abstract: "Write CLIP guidance's gradient, as the reference's CLIPModel.cond_fn(x, t) returns it.",
        discussion: """
        grad_scale x d/dx [exp(logit_scale) * <z_text, z_image((x + 1) * 127.5, t)>], both embeddings \
        L2-normalised, through the whole image encoder (our own backward pass).

        Inputs, --input NAME=FILE.npy:
          x          float [N, 3, 64, 64] in [-1, 1]     the noised images
          timesteps  int [N] in 0..999                   original timesteps, as respaced sampling passes them
          tokens     int [N or 1, 77]                    CLIP tokens (padded_tokens_and_len)
          lens       int [N or 1]                        their lengths

        Example:
          glide clip-grad --clip-image clip_image_enc.glw --clip-text clip_text_enc.glw --input x=x.npy \\
              --input timesteps=t.npy --input tokens=tok.npy --input lens=lens.npy --scale 3 -o grad.npy
        """
    )

    @Option(name: .customLong("clip-image"), help: ArgumentHelp("The converted clip/image-enc.", valueName: "file.glw"))
    var clipImage: String

    @Option(name: .customLong("clip-text"), help: ArgumentHelp("The converted clip/text-enc.", valueName: "file.glw"))
    var clipText: String

    @Option(name: .customLong("input"), help: ArgumentHelp("x, timesteps, tokens, lens: NAME=FILE.npy.", valueName: "name=file.npy"))
    var inputs: [String] = []

    @Option(help: "grad_scale (the notebook's guidance_scale).")
    var scale: Float = 3

    @Option(name: [.short, .customLong("output")], help: ArgumentHelp("Where to write the gradient .npy.", valueName: "grad.npy"))
    var output: String

    @Option(help: "Worker threads (default: GLIDE_THREADS or all cores).")
    var threads: Int?

    @Option(name: .customLong("repeat"), help: "Run this many times and print the median seconds per call (forward + gradient).")
    var repeats: Int = 1

    @Flag(help: "Print nothing but errors.")
    var quiet = false

    func validate() throws {
        let names = try parseNamedInputs(inputs, allowed: ["x", "timesteps", "tokens", "lens"])
        for required in ["x", "timesteps", "tokens", "lens"] where names[required] == nil {
            throw ValidationError("missing --input \(required)=FILE.npy")
        }
        if let threads, threads < 1 { throw ValidationError("--threads must be at least 1") }
        if repeats < 1 { throw ValidationError("--repeat must be at least 1") }
    }

    func run() throws { try ComputeOptions(threadCount: threads).perform { try gradient() } }

    private func gradient() throws {
        let files = try parseNamedInputs(inputs, allowed: ["x", "timesteps", "tokens", "lens"])
        let text = try ClipEncoder(path: ModelLocator.resolve(clipText)), image = try ClipEncoder(path: ModelLocator.resolve(clipImage))
        let x = try readFloatTensor(files["x"]!, name: "x")
        let timesteps = try Npy.read(path: files["timesteps"]!).intValues()
        let zText = try clipTextEmbeddings(text, tokensPath: files["tokens"]!, lensPath: files["lens"]!)
        let guidance = ClipGuidance(imageEncoder: image, textEmbeddings: ClipEncoder.normalized(zText), scale: scale)
        var times: [Double] = [], cpuTimes: [Double] = []
        var grad = FloatTensor(zeros: [0])
        for _ in 0..<repeats {
            let started = monotonicSeconds(), startedCPU = processCPUSeconds()
            grad = try guidance.gradient(x: x, timesteps: timesteps)
            times.append(monotonicSeconds() - started)
            cpuTimes.append(processCPUSeconds() - startedCPU)
        }
        try Npy.write(try NpyArray(float32: grad.values, shape: grad.shape), path: output)
        if !quiet {
            let median = times.sorted()[times.count / 2], medianCPU = cpuTimes.sorted()[cpuTimes.count / 2]
            printToStderr(String(format: "cond_fn (forward + gradient, batch %d): median over %d: %.3f s wall, %.3f s process CPU; activations kept %.0f MB",
                                 x.shape[0], times.count, median, medianCPU,
                                 Double(image.gradientActivationBytes(batch: x.shape[0])) / 1e6))
            print("wrote \(output) (float32 \(grad.shape))")
        }
    }
}

/// CPU seconds used by the whole process so far (all threads).
func processCPUSeconds() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) * 1e-9
}

/// `NAME=FILE` items into a dictionary, rejecting unknown or repeated names.
func parseNamedInputs(_ items: [String], allowed: [String]) throws -> [String: String] {
    var out: [String: String] = [:]
    for item in items {
        let parts = item.split(separator: "=", maxSplits: 1).map(String.init)
        guard parts.count == 2, !parts[1].isEmpty else { throw ValidationError("--input expects NAME=FILE.npy, got '\(item)'") }
        guard allowed.contains(parts[0]) else {
            throw ValidationError("--input: unknown name '\(parts[0])' (expected one of \(allowed.joined(separator: ", ")))")
        }
        guard out[parts[0]] == nil else { throw ValidationError("--input \(parts[0]) given twice") }
        out[parts[0]] = parts[1]
    }
    return out
}

/// A float32/float64 `.npy` as a tensor.
func readFloatTensor(_ path: String, name: String) throws -> FloatTensor {
    let a: NpyArray
    do { a = try Npy.read(path: path) } catch { throw CLIError("--input \(name)=\(path): \(error)") }
    guard [.float32, .float64].contains(a.dtype) else {
        throw CLIError("--input \(name): expected float32 or float64, got \(a.dtype.rawValue)")
    }
    return FloatTensor(shape: a.shape, values: try a.floatValues())
}

/// The text encoder's output (before normalisation) on `tokens` `[N, max_text_len]` and `lens` `[N]` files.
func clipTextEmbeddings(_ text: ClipEncoder, tokensPath: String, lensPath: String) throws -> FloatTensor {
    let tokens = try Npy.read(path: tokensPath), lens = try Npy.read(path: lensPath)
    let t = text.options.maxTextLen
    guard tokens.shape.count == 2, tokens.shape[1] == t else {
        throw CLIError("--input tokens: shape \(tokens.shape), expected [N, \(t)]")
    }
    guard lens.shape == [tokens.shape[0]] else {
        throw CLIError("--input lens: shape \(lens.shape), expected [\(tokens.shape[0])]")
    }
    return try text.encodeText(tokens: try tokens.intValues(), lengths: try lens.intValues())
}

/// `glide forward` on a CLIP encoder: the image encoder takes x ([-1, 1]) and timesteps, the text encoder
/// tokens and lens; both write the embedding before L2 normalisation.
func clipForward(path: String, files: [String: String], output: String, quiet: Bool) throws {
    let started = monotonicSeconds()
    let encoder = try ClipEncoder(path: path)
    let allowed = encoder.kind == .image ? ["x", "timesteps"] : ["tokens", "lens"]
    for name in files.keys where !allowed.contains(name) {
        throw CLIError("--input \(name): the CLIP \(encoder.kind.rawValue) encoder takes \(allowed.joined(separator: " and "))")
    }
    for name in allowed where files[name] == nil { throw CLIError("missing --input \(name)=FILE.npy") }
    let out: FloatTensor
    if encoder.kind == .image {
        let x = try readFloatTensor(files["x"]!, name: "x")
        let pixels = FloatTensor(shape: x.shape, values: x.values.map { ($0 + 1) * 127.5 })
        out = try encoder.encodeImage(pixels, timesteps: try Npy.read(path: files["timesteps"]!).intValues())
    } else {
        out = try clipTextEmbeddings(encoder, tokensPath: files["tokens"]!, lensPath: files["lens"]!)
    }
    try Npy.write(try NpyArray(float32: out.values, shape: out.shape), path: output)
    if !quiet {
        printToStderr(String(format: "CLIP %@ encoder forward in %.2f s", encoder.kind.rawValue, monotonicSeconds() - started))
        print("wrote \(output) (float32 \(out.shape))")
    }
}

/// Whether a `.glw` holds a CLIP encoder.
func isClipEncoderFile(_ path: String) throws -> Bool {
    let file = try WeightFile(path: path)
    return file.tensor("blocks.output.f.w") != nil
}

/// A JSON string literal.
func clipJSONString(_ s: String) -> String {
    var out = "\""
    for scalar in s.unicodeScalars {
        switch scalar {
        case "\"": out += "\\\""
        case "\\": out += "\\\\"
        case "\n": out += "\\n"
        case "\t": out += "\\t"
        default:
            if scalar.value < 0x20 { out += String(format: "\\u%04x", scalar.value) } else { out.unicodeScalars.append(scalar) }
        }
    }
    return out + "\""
}

/// `glide sample`'s CLIP guidance options (notebooks/clip_guided.ipynb).
struct ClipGuidanceArguments: ParsableArguments {
    @Option(name: .customLong("clip-guidance"),
            help: ArgumentHelp("Steer the base model with CLIP instead of classifier-free guidance, at this grad_scale (the notebook: 3.0); needs --clip-image and --clip-text. DDPM, one row per image.",
                               valueName: "scale"))
    var scale: Float?

    @Option(name: .customLong("clip-image"), help: ArgumentHelp("The converted clip/image-enc (a path, or a set-up model name), for --clip-guidance (default: the set-up clip/image-enc).", valueName: "file.glw"))
    var imageEncoder: String?

    @Option(name: .customLong("clip-text"), help: ArgumentHelp("The converted clip/text-enc (with its tokenizer embedded, or --clip-vocab), for --clip-guidance (default: the set-up clip/text-enc).",
                                                              valueName: "file.glw"))
    var textEncoder: String?

    @Option(name: .customLong("clip-vocab"), help: ArgumentHelp("Folder with bpe_simple_vocab_16e6.txt.gz when the text encoder has no embedded tokenizer.",
                                                               valueName: "dir"))
    var vocab: String?

    func validate() throws {
        if let scale, !scale.isFinite { throw ValidationError("--clip-guidance must be a finite number") }
        if scale == nil && (imageEncoder != nil || textEncoder != nil) {
            throw ValidationError("--clip-image and --clip-text go with --clip-guidance SCALE")
        }
    }

    /// The encoders for `Text2ImPipeline.clip`, or nil without --clip-guidance.
    func models() throws -> ClipGuidanceModels? {
        guard let scale else { return nil }
        // Without a path, the encoders installed by `glide setup clip/image-enc clip/text-enc`.
        var models = try ClipGuidanceModels(imagePath: try ModelLocator.resolve(imageEncoder ?? "clip/image-enc"),
                                            textPath: try ModelLocator.resolve(textEncoder ?? "clip/text-enc"),
                                            scale: scale)
        models.tokenizerDirectory = vocab
        return models
    }
}
