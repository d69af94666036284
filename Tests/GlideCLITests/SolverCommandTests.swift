// `--sampler dpm++2m|dpm++2m-sde`, `--solver-spacing` and `--guidance-interval` through every sampling
// command and model kind on the tiny fixture models (the solvers' numbers are checked in GlideModelTests'
// DPMSolverTests): the runs finish with images in range, inpainting keeps the source pixels, and the command's
// output is the library's.
import Foundation
import XCTest
import GlideModel
import Imaging
import NumpyIO
import TestSupport
@testable import GlideCLI

final class SolverCommandTests: XCTestCase {
    private func path(_ name: String) -> String { EditCommandsTests.directory.appendingPathComponent(name).path }

    private func tinyBase() throws -> String {
        let out = path("solver_tiny_base.glw")
        if FileManager.default.fileExists(atPath: out) { return out }
        let dir = TestPaths.fixture("model/tiny_base")
        let command = try Convert.parse([dir.appendingPathComponent("model.pt").path, "-o", out, "--config",
                                         dir.appendingPathComponent("options.json").path, "--force", "--quiet"])
        try command.run()
        return out
    }

    func testBaseModelWithEachSolverSpacingAndInterval() throws {
        let base = try tinyBase()
        let ctx = 8
        let tokens: [Int64] = [5, 7, 11] + [Int64](repeating: 39, count: ctx - 3) + [Int64](repeating: 39, count: ctx)
        let mask: [Bool] = [true, true, true] + [Bool](repeating: false, count: 2 * ctx - 3)
        let t = path("solver_tokens.npy"), m = path("solver_mask.npy")
        try Npy.write(try NpyArray(int64: tokens, shape: [2, ctx]), path: t)
        try Npy.write(try NpyArray(bool: mask, shape: [2, ctx]), path: m)
        var outputs: [[Float]] = []
        for extra in [["--sampler", "dpm++2m"], ["--sampler", "dpm++2m", "--solver-spacing", "logsnr"],
                      ["--sampler", "dpm++2m-sde", "--guidance-interval", "0.28,2.9"]] {
            let npy = path("solver_base.npy")
            let command = try Sample.parse(["ignored", "--model", base, "--input", "tokens=\(t)", "--input", "mask=\(m)",
                                            "--steps", "4", "--seed", "5", "--npy-out", npy, "-o", path("solver_base.png"),
                                            "--view-size", "0", "--quiet"] + extra)
            try command.run()
            let x = try Npy.read(path: npy).floatValues()
            XCTAssertEqual(x.count, 3 * 16 * 16)
            XCTAssertTrue(x.allSatisfy { $0 >= -1 && $0 <= 1 }, "\(extra)")
            outputs.append(x)
        }
        XCTAssertNotEqual(outputs[0], outputs[1])
        XCTAssertNotEqual(outputs[0], outputs[2])

        // The command's output is the library's.
        var pipeline = try Text2ImPipeline(basePath: base)
        pipeline.baseSettings.respacing = .steps(4)
        pipeline.baseSettings.sampler = .dpmSolver2MSDE
        pipeline.baseSettings.guidanceInterval = .paper
        let prompt = TextTokens(tokens: [5, 7, 11] + [Int](repeating: 39, count: ctx - 3),
                                mask: [true, true, true] + [Bool](repeating: false, count: ctx - 3))
        let result = try pipeline.generate(Text2ImRequest(prompt: "ignored", seed: 5,
                                                          baseText: StageText(prompts: [prompt], unconditional: .empty(endToken: 39, textCtx: ctx))))
        XCTAssertEqual(outputs[2], result.final.values)
    }

    func testUpsamplerAndInpaintingModelsTakeTheSolvers() throws {
        let up = try EditCommandsTests.converted("e2e_upsample")
        let out = path("solver-up.png")
        let upsample = try Upsample.parse([try EditCommandsTests.grassPNG(), "green grass", "--upsampler", up, "-o", out,
                                           "--steps", "3", "--sampler", "dpm++2m", "--seed", "1", "--quiet"])
        try upsample.run()
        XCTAssertEqual(try readImage(path: out).width, 16)

        let base = try EditCommandsTests.converted("e2e_base_inpaint"), upInpaint = try EditCommandsTests.converted("e2e_upsample_inpaint")
        let low = path("solver-inpaint-64.png")
        let inpaint = try Inpaint.parse(["a corgi", "--image", try EditCommandsTests.grassPNG(), "--keep-rect", "0,0,64,20",
                                         "--model", base, "--upsampler", upInpaint, "-o", path("solver-inpaint.png"),
                                         "--save-low-res", low, "--steps", "4", "--sampler", "dpm++2m-sde",
                                         "--guidance-interval", "0.28,2.9", "--upsample-steps", "2", "--seed", "3", "--quiet"])
        try inpaint.run()
        let small = try readImage(path: low)
        let grass64 = [UInt8](try Data(contentsOf: TestPaths.fixture("imaging/grass_64.rgb")))
        XCTAssertEqual(Array(small.pixels[0..<(20 * 64 * 3)]), Array(grass64[0..<(20 * 64 * 3)]), "forced rows are the source's")
    }

    func testSolverArgumentErrors() {
        XCTAssertThrowsError(try Sample.parse(["p", "--guidance-interval", "2,1"]))
        XCTAssertThrowsError(try Sample.parse(["p", "--guidance-interval", "1"]))
        XCTAssertThrowsError(try Sample.parse(["p", "--solver-spacing", "karras"]))
        XCTAssertNoThrow(try Sample.parse(["p", "--sampler", "dpm++2m-sde", "--steps", "20", "--guidance-interval", "0.28,2.9"]))
    }

    /// The upsamplers run without classifier-free guidance, so a guidance interval there would do nothing: refused.
    func testGuidanceIntervalIsRefusedWhereThereIsNoGuidance() throws {
        XCTAssertThrowsError(try Upsample.parse(["in.png", "p", "--guidance-interval", "0.28,2.9"])) { error in
            let message = Upsample.message(for: error)
            XCTAssertTrue(message.contains("--guidance-interval") && message.contains("glide upsample"), message)
        }
        XCTAssertNoThrow(try Upsample.parse(["in.png", "p", "--sampler", "dpm++2m", "--solver-spacing", "logsnr"]))

        // `glide sample` with an upsampler model (unguided) or with CLIP guidance (no classifier-free guidance).
        let up = try EditCommandsTests.converted("e2e_upsample")
        try? FileManager.default.removeItem(atPath: path("solver-up-interval.png"))
        let command = try Sample.parse(["p", "--model", up, "--guidance-interval", "0.28,2.9", "--steps", "2",
                                        "-o", path("solver-up-interval.png"), "--quiet"])
        XCTAssertThrowsError(try command.run()) { error in
            let message = String(describing: error)
            XCTAssertTrue(message.contains("--guidance-interval") && message.contains("SuperResText2ImUNet"), message)
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: path("solver-up-interval.png")))
    }
}
