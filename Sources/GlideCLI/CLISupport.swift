// Pieces shared by the `glide` subcommands: one-line errors, tokenizer loading and the sampling commands'
// common options. (Also shared: `printToStderr` and `failCommand` in Convert.swift, `JSONValue.appendQuoted`
// in Converter for JSON strings.)
import ArgumentParser
import Foundation
import Converter
import GlideModel
import Kernels
import WeightFormat

/// A one-line failure of a `glide` subcommand (ArgumentParser prints it as `Error: ...` and exits non-zero).
struct CLIError: Error, CustomStringConvertible {
    let description: String
    init(_ message: String) { description = message }
}

/// The GPT-2 tokenizer from the folder `vocab` if given, else the one embedded in `file`.
/// Adds the `--vocab` advice to the library's `missingTokenizer` error.
func loadGPT2Tokenizer(vocab: String?, model file: WeightFile?) throws -> GPT2Tokenizer {
    try withFlagAdvice { try GPT2Tokenizer.load(directory: vocab, embeddedIn: file.map { [$0] } ?? []) }
}

/// CLIP's tokenizer from the folder `vocab` if given, else the one embedded in `file`.
/// Adds the `--vocab` advice to the library's `missingTokenizer` error.
func loadCLIPTokenizer(vocab: String?, model file: WeightFile?) throws -> CLIPTokenizer {
    try withFlagAdvice { try CLIPTokenizer.load(directory: vocab, embeddedIn: file.map { [$0] } ?? []) }
}

/// Runs library work, turning the library errors that a command-line flag can fix into a `CLIError` that names
/// the flag (the library's messages speak of the library only).
func withFlagAdvice<T>(_ body: () throws -> T) throws -> T {
    do {
        return try body()
    } catch let error as GlideModelError {
        switch error {
        case .missingTokenizer(_, let kind):
            let files = kind == "CLIP" ? "bpe_simple_vocab_16e6.txt.gz" : "encoder.json.gz and vocab.bpe.gz"
            throw CLIError("\(error); pass --vocab DIR (the folder holding \(files), e.g. from `glide download --tokenizer`)")
        default:
            throw error
        }
    } catch let error as WeightFormatError {
        if case .destinationExists = error { throw CLIError("\(error) (use --force to overwrite)") }
        throw error
    }
}

// Typed options, parsed once by ArgumentParser.
extension TimestepRespacing: ExpressibleByArgument {
    /// The reference's respacing strings: 100, ddim50, fast27, 10,10,10.
    public init?(argument: String) {
        guard let value = try? TimestepRespacing(parsing: argument) else { return nil }
        self = value
    }
}

extension SamplerKind: ExpressibleByArgument {}
extension Converter.Int8ActivationChoice: ExpressibleByArgument {}
extension SolverSpacing: ExpressibleByArgument {}

extension GuidanceInterval: ExpressibleByArgument {
    /// `LO,HI`, e.g. `0.28,2.9`.
    public init?(argument: String) {
        guard let value = try? GuidanceInterval(parsing: argument) else { return nil }
        self = value
    }
}

/// The DPM-Solver++ and guidance-interval options of the sampling commands, applied to a stage's settings.
struct SolverOptions: ParsableArguments {
    static let samplerHelp = "ddpm (ancestral, the notebooks'), ddim (deterministic, eta 0), dpm++2m (DPM-Solver++ 2M, " +
        "deterministic) or dpm++2m-sde (its stochastic variant). With dpm++2m* --steps is a step count " +
        "(e.g. 20) placed on the model's 1000-step schedule by --solver-spacing. " +
        "Measured on the digits model (BENCHMARKS.md section 9): " + measuredSummary
    static let measuredSummary = "dpm++2m-sde --steps 10 matches the 100-step DDPM recipe (99.4 % of 500 prompted " +
        "digits read, as the recipe; distance within the noise floor) at a tenth of the CPU time, and with " +
        "--guidance-interval 0.28,2.9 still matches (98.0 %) at a twelfth. The deterministic samplers fall short on " +
        "that model: dpm++2m reads 87-89 % at 10-25 steps, ddim25 93 %; more steps do not close the gap, so the " +
        "model's probability-flow ODE, not the solver, is the limit (retraining it at small noise levels raised " +
        "dpm++2m from 72-76 % and ddim25 from 83 %). --solver-spacing time is the default because it measured " +
        "better for dpm++2m-sde (98.7 % vs 95.3 % at 10 steps, the earlier model)."

    @Option(help: ArgumentHelp("dpm++2m samplers: steps evenly spaced in time (default, measured better for dpm++2m-sde) or in log-SNR.",
                               valueName: "time|logsnr"))
    var solverSpacing: SolverSpacing = .time

    @Option(help: ArgumentHelp("Apply classifier-free guidance only at steps whose noise level sigma = sqrt((1-abar)/abar) is in (LO, HI] (Kynkaanniemi et al. 2024; the paper's 0.28,2.9); other steps run the conditional half alone, one row per image instead of two. Only for a guided stage (a base model); refused for the unguided upsamplers.",
                               valueName: "LO,HI"))
    var guidanceInterval: GuidanceInterval?

    /// The error for `--guidance-interval` given to a stage that runs without classifier-free guidance (the
    /// upsamplers, CLIP-guided sampling), where it would do nothing.
    static func unguidedIntervalMessage(_ what: String) -> String {
        "--guidance-interval limits classifier-free guidance, which \(what) does not use, so it would do nothing; "
            + "drop --guidance-interval"
    }

    /// Sets the solver spacing and the guidance interval of `settings`.
    func apply(to settings: inout StageSettings) {
        settings.solverSpacing = solverSpacing
        settings.guidanceInterval = guidanceInterval
    }
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

    /// The thread count handed to the library's pipelines (`--threads`, else the kernels' default).
    var compute: ComputeOptions { ComputeOptions(threadCount: threads) }

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
