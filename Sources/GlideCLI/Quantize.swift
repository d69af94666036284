import ArgumentParser

struct Quantize: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Re-quantize a .glw file (not yet implemented)")
    func run() throws { throw ValidationError("not yet implemented") }
}
