import ArgumentParser

struct Inspect: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "List the tensors of a checkpoint or .glw file (not yet implemented)")
    func run() throws { throw ValidationError("not yet implemented") }
}
