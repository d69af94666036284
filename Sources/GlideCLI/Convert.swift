// `glide convert SRC -o DST`: a PyTorch checkpoint to a .glw weight file (plus helpers shared by quantize and verify).
import ArgumentParser
import Converter
import Foundation
import WeightFormat

struct Convert: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Convert a PyTorch checkpoint (.pt) to a .glw weight file, optionally quantized.",
        discussion: """
        Reads the checkpoint with our own zip/pickle reader (nothing in it is executed), recognises the six \
        released GLIDE models (base, upsample, base-inpaint, upsample-inpaint, clip/image-enc, clip/text-enc) \
        from their tensors and records their hyperparameters. Other GLIDE-architecture checkpoints need \
        --config with their options (the names of the reference's model_and_diffusion_defaults(), or of \
        clip/config.yaml); anything else is converted as plain named tensors, with a warning.

        --type picks the storage type of the weight matrices; biases, norms and tiny tensors stay f32 and, \
        for int8, embeddings and the first 4 text transformer blocks become f16, and each int8 matrix records \
        the precision of its activations (--int8-activations; policy glw-policy-2, see Formats/glw.md). \
        Tensor names are kept.

        The output is written to a temporary file beside DST and renamed into place only when complete; on \
        any error nothing is left behind. An existing DST is never replaced without --force.

        Examples:
          glide convert models/base.pt -o base.glw
          glide convert models/base.pt -o base-int8.glw --type int8 --tokenizer ../shared/vocab
          glide convert my-unet.pt -o my-unet.glw --config my-unet-options.json
        """)

    @Argument(help: "The torch.save checkpoint (zip or legacy format).")
    var source: String

    @Option(name: .shortAndLong, help: "The .glw file to write.")
    var output: String

    @Option(help: "Storage type of the weight matrices: f32, f16, bf16 or int8.")
    var type: String = "f32"

    @Option(help: "JSON file with the model's options, for GLIDE models other than the released ones.")
    var config: String?

    @Option(help: "Folder with the tokenizer files to embed (encoder.json.gz + vocab.bpe.gz, or bpe_simple_vocab_16e6.txt.gz for CLIP).")
    var tokenizer: String?

    @Option(help: "int8: activation precision recorded per int8 tensor: role (8-bit for the UNet's convolutions and attention projections, 16-bit elsewhere), 16 or 8.")
    var int8Activations: Int8ActivationChoice = .role

    @Flag(help: "Replace OUTPUT if it exists.")
    var force = false

    @Flag(help: "No progress output.")
    var quiet = false

    func run() throws {
        let target = try parseTargetType(type, command: "convert")
        let progress = ProgressReporter(quiet: quiet)
        var options = ConversionOptions()
        options.target = target
        options.configPath = config
        options.tokenizerDirectory = tokenizer
        options.overwrite = force
        options.int8Activations = int8Activations
        options.progress = { progress.update($0, $1, $2) }
        options.warn = { progress.finish(); printToStderr("glide convert: warning: \($0)") }
        installCleanup(for: output)
        let start = Date()
        let summary: ConversionSummary
        do {
            summary = try convertCheckpoint(source: source, destination: output, options: options)
        } catch {
            progress.finish()
            failCommand("convert", error)
        }
        progress.finish()
        if !quiet {
            let types = summary.storedTypes.keys.sorted().map { "\(summary.storedTypes[$0]!) \($0)" }.joined(separator: ", ")
            printToStderr("glide convert: \(output): \(summary.model), \(summary.tensorCount) tensors (\(types)), "
                + "\(formatBytes(summary.sourceBytes)) -> \(formatBytes(summary.outputBytes)) in \(String(format: "%.1f", Date().timeIntervalSince(start))) s")
        }
    }
}

/// Parses --type.
func parseTargetType(_ s: String, command: String) throws -> WeightDType {
    guard let t = WeightDType(name: s.lowercased()), [.f32, .f16, .bf16, .int8].contains(t) else {
        throw ValidationError("--type must be f32, f16, bf16 or int8 (got '\(s)')")
    }
    return t
}

func printToStderr(_ s: String) {
    FileHandle.standardError.write(Data((s + "\n").utf8))
}

/// Prints `glide <command>: <error>` on one line and exits with status 1.
func failCommand(_ command: String, _ error: Error) -> Never {
    var note = ""
    if case WeightFormatError.io(_, let op, _) = error, op == "write" || op == "fsync" || op == "close" {
        note = " (nothing was written: the partial output was removed)"
    }
    // The library's errors speak of the library; the flag that fixes them is named here.
    switch error {
    case WeightFormatError.destinationExists: note = "; use --force to overwrite"
    case ConverterError.invalidConfig, ConverterError.configMismatch: note = " (--config)"
    case ConverterError.tokenizerFileMissing: note = " (--tokenizer DIR)"
    default: break
    }
    printToStderr("glide \(command): \(error)\(note)")
    Foundation.exit(1)
}

/// The temporary file of the current write, removed if the process is interrupted.
nonisolated(unsafe) private var cleanupPath: UnsafeMutablePointer<CChar>? = nil

/// On SIGINT/SIGTERM/SIGHUP, removes the writer's temporary file for `destination` and exits 130.
/// SIGXFSZ (file size limit) is ignored so that a full disk or `ulimit -f` becomes an ordinary write error.
func installCleanup(for destination: String) {
    cleanupPath = strdup(WeightFileWriter.temporaryPath(for: destination))
    signal(SIGXFSZ, SIG_IGN)
    let handler: @convention(c) (Int32) -> Void = { sig in
        if let p = cleanupPath { unlink(p) }
        _exit(128 + sig)
    }
    signal(SIGINT, handler)
    signal(SIGTERM, handler)
    signal(SIGHUP, handler)
}
