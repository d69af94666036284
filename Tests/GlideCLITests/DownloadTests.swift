import ArgumentParser
import Foundation
import XCTest
import ModelStore
@testable import GlideCLI

/// `glide download` against a file:// mirror (the HTTP cases are ModelStoreTests' loopback server): the file
/// arrives whole with a manifest entry, a second run fetches nothing, a changed file is reported and fetched
/// again with --force, and a missing file leaves nothing behind.
final class DownloadTests: XCTestCase {
    private func temporaryDirectory() throws -> URL {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("glide-dl-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        return dir
    }

    func testFetchesFromMirrorAtomically() throws {
        let mirror = try temporaryDirectory(), out = try temporaryDirectory()
        let payload = Data((0..<300_000).map { UInt8(truncatingIfNeeded: $0 &* 31) })
        try payload.write(to: mirror.appendingPathComponent("base.pt"))

        var command = try Download.parse(["base", "-o", out.path, "--mirror", mirror.absoluteString, "--quiet"])
        try command.run()
        XCTAssertEqual(try Data(contentsOf: out.appendingPathComponent("base.pt")), payload)
        XCTAssertEqual(try Manifest.load(directory: out)["base.pt"]?.bytes, Int64(payload.count))

        // A second run fetches nothing: the mirror's file may even be gone.
        try FileManager.default.removeItem(at: mirror.appendingPathComponent("base.pt"))
        command = try Download.parse(["base", "-o", out.path, "--mirror", mirror.absoluteString, "--quiet"])
        try command.run()

        // A changed file is reported (with the flag that fixes it) and fetched again with --force.
        try payload.write(to: mirror.appendingPathComponent("base.pt"))
        try Data("changed".utf8).write(to: out.appendingPathComponent("base.pt"))
        XCTAssertThrowsError(try command.run()) { XCTAssertTrue("\($0)".contains("--force"), "\($0)") }
        command = try Download.parse(["base", "-o", out.path, "--mirror", mirror.absoluteString, "--quiet", "--force"])
        try command.run()
        XCTAssertEqual(try Data(contentsOf: out.appendingPathComponent("base.pt")), payload)

        command = try Download.parse(["upsample", "-o", out.path, "--mirror", mirror.absoluteString, "--quiet"])
        XCTAssertThrowsError(try command.run())
        let left = try FileManager.default.contentsOfDirectory(atPath: out.path).sorted()
        XCTAssertEqual(left, ["base.pt", "manifest.json"])
    }

    func testRejectsUnknownModel() {
        XCTAssertThrowsError(try Download.parse(["huge"]))
        XCTAssertThrowsError(try Setup.parse(["huge"]))
        XCTAssertThrowsError(try Setup.parse(["base", "--type", "q4"]))
        XCTAssertThrowsError(try Setup.parse(["base", "--list"]))
    }

    func testProgressLine() {
        let line = ByteProgress.line(TransferProgress(file: "base.pt", bytesDone: 500_000_000, bytesTotal: 1_500_000_000,
                                                      resumedFrom: 0, elapsed: 10))
        XCTAssertEqual(line, "\rbase.pt: 500.0 MB / 1.50 GB (33%), 50.0 MB/s, ETA 20 s   ")
    }
}

/// Models named instead of paths: found in the model cache, or an error printing the exact `glide setup` command;
/// the digits model stays the default when nothing is set up.
final class ModelCacheLookupTests: XCTestCase {
    func testResolveNamesPathsAndMissingModels() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("glide-home-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let cache = ModelCache(directory: dir)

        XCTAssertThrowsError(try ModelLocator.resolve("base-inpaint", cache: cache)) { error in
            XCTAssertEqual("\(error)", "model base-inpaint is not set up in the model cache \(dir.path); run: glide setup base-inpaint")
        }
        XCTAssertThrowsError(try ModelLocator.resolve("clip/image-enc-f16", cache: cache)) { error in
            XCTAssertTrue("\(error)".hasSuffix("run: glide setup clip/image-enc --type f16"), "\(error)")
        }
        XCTAssertEqual(try ModelLocator.resolve("some/file.glw", cache: cache), "some/file.glw", "paths pass through")
        let (digits, none) = try ModelLocator.sampleModels(model: nil, upsampler: nil, cache: cache)
        XCTAssertEqual(URL(fileURLWithPath: digits).lastPathComponent, ModelLocator.defaultModelName)
        XCTAssertNil(none)

        let base = dir.appendingPathComponent("base-int8.glw"), up = dir.appendingPathComponent("upsample-int8.glw")
        try Data().write(to: base)
        XCTAssertEqual(try ModelLocator.resolve("base", cache: cache), base.path)
        XCTAssertEqual(try ModelLocator.sampleModels(model: nil, upsampler: nil, cache: cache).model, base.path)
        XCTAssertNil(try ModelLocator.sampleModels(model: nil, upsampler: nil, cache: cache).upsampler)
        try Data().write(to: up)
        let both = try ModelLocator.sampleModels(model: nil, upsampler: nil, cache: cache)
        XCTAssertEqual(both.upsampler, up.path, "the cached upsampler joins the cached base model")
        XCTAssertNil(try ModelLocator.sampleModels(model: "base", upsampler: nil, cache: cache).upsampler,
                     "a named model runs alone")
        XCTAssertEqual(try ModelLocator.sampleModels(model: "x.glw", upsampler: "upsample", cache: cache).upsampler, up.path)
    }
}

/// `glide --version`, the documented exit statuses, and an example at the end of every command's help text.
final class CommandLineContractTests: XCTestCase {
    func testVersionAndExitStatuses() {
        XCTAssertThrowsError(try Glide.parseAsRoot(["--version"])) { error in
            XCTAssertEqual(Glide.exitStatus(for: error), 0)
            XCTAssertEqual(Glide.fullMessage(for: error), "glide \(Glide.version)")
        }
        XCTAssertThrowsError(try Glide.parseAsRoot(["sample", "--no-such-option"])) { XCTAssertEqual(Glide.exitStatus(for: $0), 2) }
        XCTAssertThrowsError(try Glide.parseAsRoot(["setup", "--type", "q4"])) { XCTAssertEqual(Glide.exitStatus(for: $0), 2) }
        XCTAssertEqual(Glide.exitStatus(for: CleanExit.helpRequest()), 0)
        XCTAssertEqual(Glide.exitStatus(for: CLIError("failed")), 1)
        XCTAssertTrue(Glide.configuration.discussion.contains("Exit status: 0 done, 1 failure"))
    }

    func testEveryCommandsHelpEndsWithAnExample() {
        func all(_ command: ParsableCommand.Type) -> [ParsableCommand.Type] {
            [command] + command.configuration.subcommands.flatMap(all)
        }
        for command in all(Glide.self) {
            let name = command.configuration.commandName ?? "\(command)"
            let text = command.configuration.discussion.trimmingCharacters(in: .whitespacesAndNewlines)
            XCTAssertTrue(text.contains("Example"), "\(name): no example")
            let lastParagraph = text.components(separatedBy: "\n\n").last ?? ""
            let lines = lastParagraph.components(separatedBy: "\n").map { $0.trimmingCharacters(in: .whitespaces) }
            XCTAssertTrue(lines.first?.hasPrefix("Example") == true && lines.count > 1 && lines[1].hasPrefix("glide "),
                          "\(name): help text does not end with an example: '\(lastParagraph)'")
        }
    }
}
