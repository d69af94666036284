import ArgumentParser

/// The `glide` command: convert, inspect and run OpenAI's GLIDE models on the CPU.
@main
struct Glide: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "glide",
        abstract: "Convert, quantize and run OpenAI's GLIDE diffusion models on the CPU.",
        discussion: """
        Typical use:
          glide sample "a handwritten digit 7"                 (uses the bundled digits model)
          glide download base -o models/                       (the released checkpoints)
          glide convert models/base.pt -o base.glw --type int8
          glide sample "an oil painting of a corgi" --model base.glw
        """,
        subcommands: [
            Sample.self, Upsample.self, Inpaint.self,
            Convert.self, Quantize.self, Verify.self, Inspect.self,
            Tokenize.self, Forward.self, Download.self, Bench.self,
            ClipScore.self, ClipGrad.self,
        ]
    )

    static func main() {
        AllocatorTuning.apply()
        main(nil)
    }
}
