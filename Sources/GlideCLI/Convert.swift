import ArgumentParser

struct Convert: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Convert a PyTorch checkpoint to a .glw weight file (not yet implemented)")
    func run() throws { throw ValidationError("not yet implemented") }
}
