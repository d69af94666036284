import ArgumentParser

struct Download: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Download the released GLIDE checkpoints (not yet implemented)")
    func run() throws { throw ValidationError("not yet implemented") }
}
