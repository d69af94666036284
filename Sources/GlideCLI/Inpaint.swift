import ArgumentParser

struct Inpaint: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Repaint part of an image from a text prompt (not yet implemented)")
    func run() throws { throw ValidationError("not yet implemented") }
}
