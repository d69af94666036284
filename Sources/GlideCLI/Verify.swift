import ArgumentParser

struct Verify: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Check a .glw file's CRCs and header (not yet implemented)")
    func run() throws { throw ValidationError("not yet implemented") }
}
