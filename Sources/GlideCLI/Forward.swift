import ArgumentParser

struct Forward: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Run one model forward pass on .npy inputs (not yet implemented)")
    func run() throws { throw ValidationError("not yet implemented") }
}
