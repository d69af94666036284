import Foundation
import XCTest
import TestSupport
@testable import WeightFormat
@testable import Converter

/// A conversion killed with SIGKILL leaves `.<name>.tmp-<pid>` beside its destination; the next conversion into
/// the same folder removes such files of processes that are gone (and says so), and keeps those of running ones.
/// Also `convertAndVerify`: the set-up recipe's model check.
final class StaleTemporaryTests: XCTestCase {
    var dir = ""
    override func setUp() {
        dir = NSTemporaryDirectory() + "glw-stale-\(getpid())-\(UUID().uuidString.prefix(8))"
        try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    }
    override func tearDown() { try? FileManager.default.removeItem(atPath: dir) }

    /// A child process (`sleep`), and whether to kill it with SIGKILL (its pid then names a process that is gone).
    private func child(killed: Bool) throws -> Process {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/bin/sleep")
        p.arguments = ["30"]
        try p.run()
        if killed {
            kill(p.processIdentifier, SIGKILL)
            p.waitUntilExit()
        }
        return p
    }

    func testNextConversionRemovesTemporariesOfDeadProcesses() throws {
        let dead = try child(killed: true), alive = try child(killed: false)
        defer { alive.terminate(); alive.waitUntilExit() }
        let stale = dir + "/.base.glw.tmp-\(dead.processIdentifier)"
        let running = dir + "/.other.glw.tmp-\(alive.processIdentifier)"
        let unrelated = dir + "/.notes.tmp-abc"
        try Data(count: 4096).write(to: URL(fileURLWithPath: stale))
        try Data(count: 10).write(to: URL(fileURLWithPath: running))
        try Data(count: 10).write(to: URL(fileURLWithPath: unrelated))

        var warnings: [String] = []
        var o = ConversionOptions()
        o.configPath = TestPaths.fixture("weightformat/tiny_unet_options.json").path
        o.warn = { warnings.append($0) }
        let summary = try convertCheckpoint(source: TestPaths.fixture("weightformat/tiny_unet.pt").path,
                                            destination: dir + "/tiny.glw", options: o)
        XCTAssertFalse(FileManager.default.fileExists(atPath: stale), "the dead process's temporary is removed")
        XCTAssertTrue(FileManager.default.fileExists(atPath: running), "a running process's temporary is kept")
        XCTAssertTrue(FileManager.default.fileExists(atPath: unrelated), "names not ending in .tmp-<pid> are not ours")
        let note = try XCTUnwrap(warnings.first { $0.contains(".base.glw.tmp-\(dead.processIdentifier)") })
        XCTAssertTrue(note.contains("process \(dead.processIdentifier)") && note.contains("4 KB"), note)
        XCTAssertTrue(summary.warnings.contains(note))
    }

    func testTemporaryOwnerParsing() {
        XCTAssertEqual(WeightFileWriter.temporaryOwner(".base.glw.tmp-1234"), 1234)
        XCTAssertEqual(WeightFileWriter.temporaryOwner(".a.tmp-7"), 7)
        XCTAssertNil(WeightFileWriter.temporaryOwner("base.glw.tmp-1234"), "not hidden")
        XCTAssertNil(WeightFileWriter.temporaryOwner(".base.glw.tmp-"))
        XCTAssertNil(WeightFileWriter.temporaryOwner(".base.glw.tmp-12x"))
        XCTAssertNil(WeightFileWriter.temporaryOwner(".tmp-12"))
        XCTAssertEqual(WeightFileWriter.temporaryPath(for: "/x/y.glw"), "/x/.y.glw.tmp-\(getpid())")
    }

    func testConvertAndVerifyRefusesAnotherModel() throws {
        // tiny_clip_text.pt without its options is converted as plain tensors: not the `base` model.
        let out = dir + "/base.glw"
        XCTAssertThrowsError(try convertAndVerify(source: TestPaths.fixture("weightformat/tiny_clip_text.pt").path,
                                                  destination: out, options: ConversionOptions(), expectedModel: "base")) { error in
            guard case ConverterError.unexpectedModel(_, "base", "tensors")? = error as? ConverterError else { return XCTFail("\(error)") }
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: out), "nothing left behind")
    }

    func testConvertAndVerifyProducesVerifiedFile() throws {
        var o = ConversionOptions()
        o.target = .int8
        o.configPath = TestPaths.fixture("weightformat/tiny_unet_options.json").path
        let prepared = try convertAndVerify(source: TestPaths.fixture("weightformat/tiny_unet.pt").path,
                                            destination: dir + "/base.glw", options: o, expectedModel: "base")
        XCTAssertTrue(prepared.verification.isSound)
        XCTAssertEqual(prepared.verification.tensorCount, prepared.summary.tensorCount)
    }
}
