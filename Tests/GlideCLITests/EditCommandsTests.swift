// `glide inpaint` and `glide upsample` end to end on tiny models (Tests/Fixtures/pipeline/, made by
// tools/make_pipeline_goldens.py) with the real tokenizer code on a small BPE vocabulary:
// grass.png (the notebook's example, written here from its committed pixels Tests/Fixtures/imaging/grass_256.rgb,
// which decode identically) inpainted with the notebook's mask keeps the source's pixels exactly.
import Foundation
import XCTest
import Imaging
import TestSupport
@testable import GlideCLI

final class EditCommandsTests: XCTestCase {
    static let directory: URL = {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("glide-edit-tests-\(getpid())")
        try? FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }()

    /// `glide convert` of a pipeline fixture model with the fixture tokenizer embedded (once per test run).
    static func converted(_ name: String) throws -> String {
        let out = directory.appendingPathComponent("\(name).glw").path
        if FileManager.default.fileExists(atPath: out) { return out }
        let dir = TestPaths.fixture("pipeline/\(name)")
        var command = try Convert.parse([dir.appendingPathComponent("model.pt").path, "-o", out,
                                         "--config", dir.appendingPathComponent("options.json").path,
                                         "--tokenizer", try TestPaths.tinyTokenizerDirectory().path,
                                         "--force", "--quiet"])
        try command.run()
        return out
    }

    func path(_ name: String) -> String { Self.directory.appendingPathComponent(name).path }

    /// The reference's grass.png (256x256; its alpha channel is discarded when read) as an RGB PNG made from
    /// the committed pixels, so the tests need nothing outside the repository.
    static func grassPNG() throws -> String {
        let out = directory.appendingPathComponent("grass.png").path
        if FileManager.default.fileExists(atPath: out) { return out }
        let pixels = [UInt8](try Data(contentsOf: TestPaths.fixture("imaging/grass_256.rgb")))
        try writePNG(try Image(width: 256, height: 256, channels: 3, pixels: pixels), path: out)
        return out
    }

    func grassPixels(_ size: Int) throws -> [UInt8] {
        [UInt8](try Data(contentsOf: TestPaths.fixture("imaging/grass_\(size).rgb")))
    }

    func rows(_ image: Image, _ count: Int) -> [UInt8] {
        XCTAssertEqual(image.channels, 3)
        return Array(image.pixels[0..<(count * image.width * 3)])
    }

    func testInpaintGrassWithNotebookMaskKeepsSourcePixels() throws {
        let base = try Self.converted("e2e_base_inpaint"), up = try Self.converted("e2e_upsample_inpaint")
        let out = path("grass-inpainted.png"), low = path("grass-inpainted-64.png")
        var command = try Inpaint.parse([
            "a corgi in a field", "--image", try Self.grassPNG(), "--keep-rect", "0,0,64,20",
            "--model", base, "--upsampler", up, "-o", out, "--save-low-res", low,
            "--steps", "3", "--upsample-steps", "2", "--seed", "3", "--quiet",
        ])
        try command.run()
        let result = try readImage(path: out)
        XCTAssertEqual([result.width, result.height], [256, 256])
        XCTAssertEqual(rows(result, 80), Array(try grassPixels(256)[0..<(80 * 256 * 3)]), "top 80 of 256 rows are the source's")
        XCTAssertNotEqual(Array(result.pixels[(80 * 256 * 3)...]), Array(try grassPixels(256)[(80 * 256 * 3)...]))
        let small = try readImage(path: low)
        XCTAssertEqual([small.width, small.height], [64, 64])
        XCTAssertEqual(rows(small, 20), Array(try grassPixels(64)[0..<(20 * 64 * 3)]), "top 20 of 64 rows are the source's")
    }

    /// A mask image: white keeps, black is repainted; --invert-mask swaps them. Without --upsampler the result is 64x64.
    func testMaskImageWhiteKeepsAndInvertSwaps() throws {
        let base = try Self.converted("e2e_base_inpaint")
        // 128x128 mask: white left half (kept), black right half.
        var px = [UInt8](repeating: 0, count: 128 * 128)
        for y in 0..<128 { for x in 0..<64 { px[y * 128 + x] = 255 } }
        let maskPath = path("left-white.png")
        try writePNG(try Image(width: 128, height: 128, channels: 1, pixels: px), path: maskPath)
        let grass = try grassPixels(64)
        for invert in [false, true] {
            let out = path("mask-\(invert).png")
            var args = ["a corgi", "--image", try Self.grassPNG(), "--mask", maskPath,
                        "--model", base, "-o", out, "--steps", "2", "--seed", "5", "--quiet"]
            if invert { args.append("--invert-mask") }
            var command = try Inpaint.parse(args)
            try command.run()
            let image = try readImage(path: out)
            XCTAssertEqual([image.width, image.height], [64, 64])
            var keptSame = true, otherSame = true
            for y in 0..<64 {
                for x in 0..<64 {
                    let same = (0..<3).allSatisfy { image.pixels[(y * 64 + x) * 3 + $0] == grass[(y * 64 + x) * 3 + $0] }
                    if (x < 32) != invert { keptSame = keptSame && same } else { otherSame = otherSame && same }
                }
            }
            XCTAssertTrue(keptSame, "kept half (invert \(invert)) equals the photo")
            XCTAssertFalse(otherSame, "repainted half (invert \(invert)) differs")
        }
    }

    /// The fixture upsampler is a small 4 -> 16 one (image_size 16): the photo is resized to 4x4 first.
    func testUpsampleCommandWritesModelSize() throws {
        let model = try Self.converted("e2e_upsample")
        let out = path("grass-up.png")
        var command = try Upsample.parse([try Self.grassPNG(), "green grass",
                                          "--upsampler", model, "-o", out, "--steps", "2", "--seed", "1", "--quiet"])
        try command.run()
        let image = try readImage(path: out)
        XCTAssertEqual([image.width, image.height], [16, 16])
        // An inpainting upsampler is refused with a pointer to `glide inpaint`.
        let wrong = try Self.converted("e2e_upsample_inpaint")
        command = try Upsample.parse([try Self.grassPNG(), "x", "--upsampler", wrong, "--quiet"])
        XCTAssertThrowsError(try command.run()) { XCTAssertTrue("\($0)".contains("glide inpaint")) }
    }

    func testInpaintArgumentErrors() throws {
        let grass = try Self.grassPNG()
        XCTAssertThrowsError(try Inpaint.parse(["p", "--image", grass, "--model", "m.glw"]))                       // no mask
        XCTAssertThrowsError(try Inpaint.parse(["p", "--image", grass, "--model", "m.glw", "--mask", "a.png",
                                                "--keep-rect", "0,0,1,1"]))                                     // both
        XCTAssertThrowsError(try Inpaint.parse(["p", "--image", grass, "--model", "m.glw", "--keep-rect", "0,0,64"]))
        // No model: the cached base-inpaint; not set up, the error prints the command that sets it up.
        let home = FileManager.default.temporaryDirectory.appendingPathComponent("glide-home-\(UUID().uuidString)").path
        setenv("GLIDE_HOME", home, 1)
        defer { unsetenv("GLIDE_HOME") }
        let noModel = try Inpaint.parse(["p", "--image", grass, "--keep-rect", "0,0,64,20", "--quiet"])
        XCTAssertThrowsError(try noModel.run()) { XCTAssertTrue("\($0)".hasSuffix("run: glide setup base-inpaint"), "\($0)") }
        // A model of the wrong kind is named.
        let base = try Self.converted("e2e_base_inpaint")
        var command = try Inpaint.parse(["p", "--image", grass, "--keep-rect", "0,0,64,20", "--model", base,
                                         "--upsampler", base, "--quiet"])
        XCTAssertThrowsError(try command.run()) { XCTAssertTrue("\($0)".contains("not an inpainting upsampler")) }
    }
}
