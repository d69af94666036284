import ArgumentParser

struct Sample: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Generate images from a text prompt (not yet implemented)")
    func run() throws { throw ValidationError("not yet implemented") }
}
