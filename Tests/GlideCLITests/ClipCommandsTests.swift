// `glide clip-grad`, `glide forward` on CLIP encoders and `glide clip-score` on the tiny CLIP fixtures: the
// commands' wiring (the gradient itself is proven against the reference in GlideModelTests/ClipGuidanceTests).
import Foundation
import XCTest
import Imaging
import NumpyIO
import TestSupport
@testable import GlideCLI

final class ClipCommandsTests: XCTestCase {
    private func path(_ name: String) -> String { EditCommandsTests.directory.appendingPathComponent(name).path }

    private func converted(_ variant: String) throws -> String {
        let out = path("\(variant).glw")
        if FileManager.default.fileExists(atPath: out) { return out }
        let dir = TestPaths.fixture("model/\(variant)")
        var command = try Convert.parse([dir.appendingPathComponent("model.pt").path, "-o", out, "--config",
                                         dir.appendingPathComponent("options.json").path, "--force", "--quiet"])
        try command.run()
        return out
    }

    private func fixture(_ name: String) -> String { TestPaths.fixture("model/clip_guidance/\(name).npy").path }

    private func maxRelativeError(_ a: [Float], _ b: [Float]) -> Float {
        let scale = b.map { abs($0) }.max() ?? 1
        return zip(a, b).map { abs($0 - $1) }.max()! / scale
    }

    func testClipGradWritesCondFn() throws {
        let image = try converted("clip_image"), text = try converted("clip_text")
        let out = path("clip-grad.npy")
        var command = try ClipGrad.parse(["--clip-image", image, "--clip-text", text, "--input", "x=\(fixture("x"))",
                                          "--input", "timesteps=\(fixture("timesteps"))", "--input", "tokens=\(fixture("tokens"))",
                                          "--input", "lens=\(fixture("lens"))", "--scale", "3", "-o", out, "--quiet"])
        try command.run()
        let grad = try Npy.read(path: out), reference = try Npy.read(path: fixture("grad"))
        XCTAssertEqual(grad.shape, reference.shape)
        XCTAssertLessThan(maxRelativeError(try grad.floatValues(), try reference.floatValues()), 1e-4)
        XCTAssertThrowsError(try ClipGrad.parse(["--clip-image", image, "--clip-text", text, "--input", "x=\(fixture("x"))", "-o", out]))
    }

    func testForwardAcceptsClipEncoders() throws {
        let image = try converted("clip_image"), text = try converted("clip_text")
        let imageOut = path("clip-image-forward.npy"), textOut = path("clip-text-forward.npy")
        var command = try Forward.parse([image, "--input", "x=\(fixture("x"))", "--input", "timesteps=\(fixture("timesteps"))",
                                         "-o", imageOut, "--quiet"])
        try command.run()
        XCTAssertLessThan(maxRelativeError(try Npy.read(path: imageOut).floatValues(),
                                           try Npy.read(path: fixture("z_image")).floatValues()), 1e-4)
        command = try Forward.parse([text, "--input", "tokens=\(fixture("tokens"))", "--input", "lens=\(fixture("lens"))",
                                     "-o", textOut, "--quiet"])
        try command.run()
        // The fixture's z_text is normalised; the command writes the embedding before normalisation.
        let z = try Npy.read(path: textOut).floatValues(), width = 16
        var normalised = z
        for r in 0..<(z.count / width) {
            let norm = (0..<width).reduce(Float(0)) { $0 + z[r * width + $1] * z[r * width + $1] }.squareRoot()
            for c in 0..<width { normalised[r * width + c] = z[r * width + c] / norm }
        }
        XCTAssertLessThan(maxRelativeError(normalised, try Npy.read(path: fixture("z_text")).floatValues()), 1e-4)
        command = try Forward.parse([text, "--input", "x=\(fixture("x"))", "--input", "timesteps=\(fixture("timesteps"))",
                                     "-o", textOut, "--quiet"])
        XCTAssertThrowsError(try command.run())
    }

    func testClipGuidanceArgumentsNeedBothEncoders() throws {
        // Without paths, --clip-guidance takes the set-up clip/image-enc and clip/text-enc (checked when run).
        XCTAssertNoThrow(try ClipGuidanceArguments.parse(["--clip-guidance", "3"]))
        XCTAssertThrowsError(try ClipGuidanceArguments.parse(["--clip-image", "i.glw", "--clip-text", "t.glw"]))
        XCTAssertThrowsError(try ClipGuidanceArguments.parse(["--clip-guidance", "nan", "--clip-image", "i.glw", "--clip-text", "t.glw"]))
        let ok = try ClipGuidanceArguments.parse(["--clip-guidance", "3", "--clip-image", "i.glw", "--clip-text", "t.glw"])
        XCTAssertEqual(ok.scale, 3)
        XCTAssertNil(try ClipGuidanceArguments.parse([]).models())
    }

    func testSampleRefusesClipGuidanceMisuse() throws {
        let base = try converted("tiny_base"), image = try converted("clip_image"), text = try converted("clip_text")
        let common = ["a corgi", "--model", base, "--clip-guidance", "3", "--clip-image", image, "--clip-text", text,
                      "-o", path("clip-misuse.png"), "--quiet"]
        var command = try Sample.parse(common + ["--guidance", "2"])
        XCTAssertThrowsError(try command.run()) { XCTAssertTrue("\($0)".contains("drop --guidance"), "\($0)") }
        command = try Sample.parse(common + ["--sampler", "ddim"])
        XCTAssertThrowsError(try command.run()) { XCTAssertTrue("\($0)".contains("DDPM"), "\($0)") }
        command = try Sample.parse(["a corgi", "--model", base, "--clip-guidance", "3", "--clip-image", text, "--clip-text", image,
                                    "-o", path("clip-misuse.png"), "--quiet"])
        XCTAssertThrowsError(try command.run())   // the encoders swapped: wrong model kinds
    }
}
