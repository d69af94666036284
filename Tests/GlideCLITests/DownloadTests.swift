import Foundation
import XCTest
@testable import GlideCLI

/// `glide download` against a file:// mirror (CI has no network): the file arrives whole,
/// existing files are kept, and a missing file leaves no partial download behind.
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

        // A second run keeps the existing file; a missing model fails and leaves nothing behind.
        try Data("keep".utf8).write(to: out.appendingPathComponent("base.pt"))
        command = try Download.parse(["base", "-o", out.path, "--mirror", mirror.absoluteString, "--quiet"])
        try command.run()
        XCTAssertEqual(try Data(contentsOf: out.appendingPathComponent("base.pt")), Data("keep".utf8))

        command = try Download.parse(["upsample", "-o", out.path, "--mirror", mirror.absoluteString, "--quiet"])
        XCTAssertThrowsError(try command.run())
        let left = try FileManager.default.contentsOfDirectory(atPath: out.path).sorted()
        XCTAssertEqual(left, ["base.pt"])
    }

    func testRejectsUnknownModel() {
        XCTAssertThrowsError(try Download.parse(["huge"]))
    }
}
