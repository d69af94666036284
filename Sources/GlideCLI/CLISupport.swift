// Pieces shared by the `glide` subcommands: one-line errors, tokenizer loading and the sampling commands'
// common options. (Also shared: `printToStderr` and `failCommand` in Convert.swift, `JSONValue.appendQuoted`
// in Converter for JSON strings.)
import ArgumentParser
import Foundation
import GlideModel
import Kernels
import WeightFormat

/// A one-line failure of a `glide` subcommand (ArgumentParser prints it as `Error: ...` and exits non-zero).
struct CLIError: Error, CustomStringConvertible {
    let description: String
    init(_ message: String) { description = message }
}

/// The GPT-2 tokenizer from the folder `vocab` if given, else the one embedded in `file`.
/// Throws a `CLIError` naming the model and `--vocab` when neither has one.
func loadGPT2Tokenizer(vocab: String?, model file: WeightFile?) throws -> GPT2Tokenizer {
    if let vocab { return try GPT2Tokenizer(directory: vocab) }
    let files = file?.tokenizerFiles ?? [:]
    guard files[GPT2Tokenizer.encoderFileName] != nil || files["encoder.json"] != nil else {
        throw CLIError("\(file?.path ?? "the model") has no embedded GPT-2 tokenizer; pass --vocab DIR (the folder "
                       + "holding encoder.json.gz and vocab.bpe.gz, e.g. from `glide download --tokenizer`)")
    }
    return try GPT2Tokenizer(files: files)
}

/// CLIP's tokenizer from the folder `vocab` if given, else the one embedded in `file`.
/// Throws a `CLIError` naming the model and `--vocab` when neither has one.
func loadCLIPTokenizer(vocab: String?, model file: WeightFile?) throws -> CLIPTokenizer {
    if let vocab { return try CLIPTokenizer(directory: vocab) }
    let files = file?.tokenizerFiles ?? [:]
    guard files[CLIPTokenizer.mergesFileName] != nil || files["bpe_simple_vocab_16e6.txt"] != nil else {
        throw CLIError("\(file?.path ?? "the model") has no embedded CLIP tokenizer; pass --vocab DIR (the folder "
                       + "holding bpe_simple_vocab_16e6.txt.gz, e.g. from `glide download --tokenizer`)")
    }
    return try CLIPTokenizer(files: files)
}

/// Options shared by the sampling commands (`glide upsample`, `glide inpaint`): seed, threads, tokenizer
/// folder and quiet.
struct SamplingRunOptions: ParsableArguments {
    @Option(help: "Seed of the Gaussian noise (default: random, printed).")
    var seed: UInt64?

    @Option(help: "Worker threads (default: GLIDE_THREADS or all cores).")
    var threads: Int?

    @Option(help: ArgumentHelp("Folder with the GPT-2 tokenizer files for a model without an embedded tokenizer.",
                               valueName: "dir"))
    var vocab: String?

    @Flag(help: "No progress bar or messages except errors.")
    var quiet = false

    func validate() throws {
        if let threads, threads < 1 { throw ValidationError("--threads must be at least 1") }
    }

    /// Sets the kernels' worker count when `--threads` was given.
    func applyThreads() {
        if let threads { KernelSettings.threadCount = threads }
    }

    /// `--seed`, or a random 32-bit seed (printed by the caller so the run can be repeated).
    func seedOrRandom() -> UInt64 { seed ?? UInt64.random(in: 0...UInt64(UInt32.max)) }

    /// A progress bar on stderr, shown only when stderr is a terminal and `--quiet` is off.
    func progressBar(total: Int) -> SampleProgressBar {
        SampleProgressBar(total: total, enabled: !quiet && isatty(STDERR_FILENO) != 0)
    }

    /// The closing "done in ..." line on stderr (the caller checks `quiet`).
    func reportDone(startedAt started: Double, steps: Int) {
        let elapsed = monotonicSeconds() - started
        printToStderr(String(format: "done in %.1f s (%.2f s/step)", elapsed, elapsed / Double(steps)))
    }
}
