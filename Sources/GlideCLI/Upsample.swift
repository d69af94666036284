import ArgumentParser

struct Upsample: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Upsample an image 64 to 256 with the upsampler model (not yet implemented)")
    func run() throws { throw ValidationError("not yet implemented") }
}
