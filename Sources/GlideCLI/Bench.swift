import ArgumentParser

struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Benchmarks (not yet implemented)")
    func run() throws { throw ValidationError("not yet implemented") }
}
