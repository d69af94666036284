import ArgumentParser
import Foundation

/// The `glide` command: convert, inspect and run OpenAI's GLIDE models on the CPU.
@main
struct Glide: ParsableCommand {
    /// The tool's version (`glide --version`).
    static let version = "0.1.0"

    /// Exit statuses of every `glide` command.
    enum ExitStatus {
        /// The command did what it was asked.
        static let done: Int32 = 0
        /// It failed (bad input file, model not set up, failed download or check, ...); one `glide <command>:` or
        /// `Error:` line on stderr says why.
        static let failure: Int32 = 1
        /// The command line is wrong (unknown option, bad value, missing argument); the usage is printed.
        static let usage: Int32 = 2
        // 128 + N: stopped by signal N (130 for Ctrl-C); a conversion's temporary file is removed first.
    }

    static let configuration = CommandConfiguration(
        commandName: "glide",
        abstract: "Convert, quantize and run OpenAI's GLIDE diffusion models on the CPU.",
        discussion: """
        Typical use:
          glide sample "a handwritten digit 7"                 (uses the bundled digits model)
          glide setup                                          (downloads, converts and installs base + upsample)
          glide sample "an oil painting of a corgi"            (then uses them)

        Exit status: 0 done, 1 failure (one line on stderr says why), 2 usage error (bad command line), \
        128+N stopped by signal N (130: Ctrl-C).

        Example:
          glide sample "the number 3" --batch 8 --seed 1 --steps 25 -o threes.png
        """,
        version: "glide \(version)",
        subcommands: [
            Sample.self, Upsample.self, Inpaint.self,
            Setup.self, Models.self, Download.self,
            Convert.self, Quantize.self, Verify.self, Inspect.self,
            Tokenize.self, Forward.self, Bench.self,
            ClipScore.self, ClipGrad.self,
        ]
    )

    static func main() {
        AllocatorTuning.apply()
        do {
            var command = try parseAsRoot()
            try command.run()
        } catch {
            let status = exitStatus(for: error)
            if status == ExitStatus.usage {
                FileHandle.standardError.write(Data((fullMessage(for: error) + "\n").utf8))
                Foundation.exit(status)
            }
            exit(withError: error)
        }
    }

    /// The documented exit status for an error thrown by parsing or running: 2 for command-line errors
    /// (ArgumentParser's own code for them is 64), 0 for --help and --version, else ArgumentParser's (1).
    static func exitStatus(for error: Error) -> Int32 {
        let code = exitCode(for: error)
        if code == .validationFailure { return ExitStatus.usage }
        return code.rawValue
    }
}
