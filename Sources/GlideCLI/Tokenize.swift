import ArgumentParser

struct Tokenize: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Show the token ids of a prompt (not yet implemented)")
    func run() throws { throw ValidationError("not yet implemented") }
}
