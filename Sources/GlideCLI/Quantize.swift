// `glide quantize SRC.glw -o DST.glw --type T`: re-store a .glw file's tensors in another type.
import ArgumentParser
import Converter
import Foundation

struct Quantize: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Re-quantize a .glw file to another type, without the original checkpoint.",
        discussion: """
        Applies the same per-tensor policy as `glide convert --type` (glw-policy-2) to the tensors of an \
        existing .glw file. Hyperparameters and embedded tokenizer files are carried over; the provenance \
        records the source file and keeps the original provenance under "derived_from". Going to a wider \
        type (int8 -> f16/f32, f16 -> f32) works but is lossy: the values are the dequantized ones, the \
        original precision is not restored. A warning says so.

        Examples:
          glide quantize base.glw -o base-int8.glw --type int8
          glide quantize base-f16.glw -o base-bf16.glw --type bf16
        """)

    @Argument(help: "The .glw file to read.")
    var source: String

    @Option(name: .shortAndLong, help: "The .glw file to write.")
    var output: String

    @Option(help: "Storage type of the weight matrices: f32, f16, bf16 or int8.")
    var type: String

    @Option(help: "int8: activation precision recorded per int8 tensor: role (8-bit for the UNet's convolutions and attention projections, 16-bit elsewhere), 16 or 8.")
    var int8Activations: Int8ActivationChoice = .role

    @Flag(help: "Replace OUTPUT if it exists.")
    var force = false

    @Flag(help: "No progress output.")
    var quiet = false

    func run() throws {
        let target = try parseTargetType(type, command: "quantize")
        let progress = ProgressReporter(quiet: quiet)
        var options = ConversionOptions()
        options.target = target
        options.overwrite = force
        options.int8Activations = int8Activations
        options.progress = { progress.update($0, $1, $2) }
        options.warn = { progress.finish(); printToStderr("glide quantize: warning: \($0)") }
        installCleanup(for: output)
        let summary: ConversionSummary
        do {
            summary = try requantize(source: source, destination: output, options: options)
        } catch {
            progress.finish()
            failCommand("quantize", error)
        }
        progress.finish()
        if !quiet {
            let types = summary.storedTypes.keys.sorted().map { "\(summary.storedTypes[$0]!) \($0)" }.joined(separator: ", ")
            printToStderr("glide quantize: \(output): \(summary.model), \(summary.tensorCount) tensors (\(types)), "
                + "\(formatBytes(summary.sourceBytes)) -> \(formatBytes(summary.outputBytes))")
        }
    }
}
