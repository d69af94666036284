// Images that remember: `glide sample`, `upsample` and `inpaint` write their generation record into the PNG;
// `glide sample --replay` makes the same file again from the shipped digits model; mismatching models and
// records that cannot be replayed are refused with a message naming what differs.
import Foundation
import XCTest
import GlideModel
import Imaging
import TestSupport
@testable import GlideCLI

final class ReplayTests: XCTestCase {
    private func path(_ name: String) -> String { EditCommandsTests.directory.appendingPathComponent(name).path }
    private var digits: String { TestPaths.digitsModel.path }

    private func record(_ png: String) throws -> GenerationRecord {
        let found = try RecordIO.read(png: png).record
        return try XCTUnwrap(found, "\(png) has a record")
    }

    func testSampleRecordsAndReplayIsBitIdentical() throws {
        let first = path("digits-first.png"), again = path("digits-again.png")
        var command = try Sample.parse(["a handwritten digit 4", "--model", digits, "--steps", "6", "--sampler", "ddim",
                                        "--guidance", "2.5", "--batch", "2", "--seed", "11", "-o", first,
                                        "--view-size", "0", "--threads", "1", "--quiet"])
        try command.run()
        let r = try record(first)
        XCTAssertEqual(r.command, .sample)
        XCTAssertEqual(r.prompt, "a handwritten digit 4")
        XCTAssertEqual(r.seed, 11)
        XCTAssertEqual(r.batch, 2)
        XCTAssertEqual(r.base.respacing, .steps(6))
        XCTAssertEqual(r.base.sampler, .ddim)
        XCTAssertEqual(r.base.guidanceScale, 2.5)
        XCTAssertEqual(r.model.fileName, "digits-int8.glw")
        XCTAssertEqual(r.model.weightType, "int8")
        XCTAssertEqual(r.model.sha256, try RecordIO.sha256(path: digits))
        XCTAssertTrue(r.tool.hasPrefix("glide-swift "))
        XCTAssertNil(r.upsampler)
        XCTAssertEqual(r.inputs, [:])

        // Same model file (found as the default model, by its recorded name), another thread count: same bytes.
        command = try Sample.parse(["--replay", first, "-o", again, "--view-size", "0", "--threads", "2", "--quiet"])
        try command.run()
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: again)), try Data(contentsOf: URL(fileURLWithPath: first)))
        command = try Sample.parse(["--replay", first, "--model", digits, "-o", again, "--view-size", "0", "--quiet"])
        try command.run()
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: again)), try Data(contentsOf: URL(fileURLWithPath: first)))
    }

    func testReplayWithAnotherModelFileNamesTheDifference() throws {
        let first = path("digits-mismatch.png")
        var command = try Sample.parse(["7", "--model", digits, "--steps", "3", "--seed", "1", "-o", first, "--view-size", "0", "--quiet"])
        try command.run()
        let f16 = TestPaths.packageRoot.appendingPathComponent("Models/digits-f16.glw").path
        command = try Sample.parse(["--replay", first, "--model", f16, "-o", path("x.png"), "--quiet"])
        XCTAssertThrowsError(try command.run()) { e in
            let text = "\(e)"
            for part in ["model", "sha256", "digits-int8.glw", "digits-f16.glw", try! RecordIO.sha256(path: digits)] {
                XCTAssertTrue(text.contains(part), "'\(text)' should name \(part)")
            }
        }
        // A model the record did not use: an upsampler.
        command = try Sample.parse(["--replay", first, "--upsampler", f16, "--quiet"])
        XCTAssertThrowsError(try command.run()) { XCTAssertTrue("\($0)".contains("without an upsampler"), "\($0)") }
    }

    func testReplayRefusals() throws {
        // No record.
        let plain = path("plain.png")
        try writePNG(try Image(width: 1, height: 1, channels: 3, pixels: [0, 0, 0]), path: plain)
        var command = try Sample.parse(["--replay", plain, "--quiet"])
        XCTAssertThrowsError(try command.run()) { XCTAssertTrue("\($0)".contains("no glide generation record"), "\($0)") }
        // Not a PNG.
        command = try Sample.parse(["--replay", TestPaths.digitsModel.path, "--quiet"])
        XCTAssertThrowsError(try command.run()) { XCTAssertTrue("\($0)".contains("not a PNG"), "\($0)") }
        // Made from outside inputs (the upsample command's photo).
        let up = path("replay-up.png")
        command = try Sample.parse(["--replay", try upsampled(up), "--quiet"])
        XCTAssertThrowsError(try command.run()) { XCTAssertTrue("\($0)".contains("glide upsample"), "\($0)") }
        // Options the record decides.
        XCTAssertThrowsError(try Sample.parse(["prompt", "--replay", plain]))
        XCTAssertThrowsError(try Sample.parse(["--replay", plain, "--seed", "3"]))
        XCTAssertThrowsError(try Sample.parse(["--steps", "3"]), "a prompt or --replay is needed")
    }

    private func upsampled(_ out: String) throws -> String {
        if FileManager.default.fileExists(atPath: out) { return out }
        var command = try Upsample.parse([try EditCommandsTests.grassPNG(), "green grass", "--upsampler",
                                          try EditCommandsTests.converted("e2e_upsample"), "-o", out, "--steps", "2",
                                          "--seed", "4", "--quiet"])
        try command.run()
        return out
    }

    func testUpsampleAndInpaintRecordTheirInputs() throws {
        let up = try record(try upsampled(path("record-up.png")))
        XCTAssertEqual(up.command, .upsample)
        XCTAssertEqual(up.prompt, "green grass")
        XCTAssertEqual(up.seed, 4)
        XCTAssertEqual(up.base.respacing, .steps(2))
        XCTAssertEqual(up.model.fileName, "e2e_upsample.glw")
        XCTAssertEqual(up.inputs["image"], "grass.png sha256:" + (try RecordIO.sha256(path: try EditCommandsTests.grassPNG())))

        let out = path("record-inpaint.png")
        let command = try Inpaint.parse(["a corgi", "--image", try EditCommandsTests.grassPNG(), "--keep-rect", "0,0,64,20",
                                         "--model", try EditCommandsTests.converted("e2e_base_inpaint"), "-o", out,
                                         "--steps", "2", "--seed", "8", "--guidance", "4", "--quiet"])
        try command.run()
        let r = try record(out)
        XCTAssertEqual(r.command, .inpaint)
        XCTAssertEqual(r.base.guidanceScale, 4)
        XCTAssertEqual(r.inputs["keep-rect"], "0,0,64,20")
        XCTAssertNotNil(r.inputs["image"])
        XCTAssertNil(r.upsampler)
        XCTAssertThrowsError(try r.checkReplayable())
        // glide inspect prints it (and as JSON).
        var inspect = try Inspect.parse([out])
        try inspect.run()
        inspect = try Inspect.parse([out, "--json"])
        try inspect.run()
    }
}
