// `glide sample` on tiny fixture models: the two-stage path (--upsampler, --save-low-res) and the
// equivalence hooks for upsampling models (--input low_res=...). Sampling correctness against the reference
// is proven in GlideModelTests (DiffusionTests, PipelineTests); this checks the command's wiring.
import Foundation
import XCTest
import GlideModel
import Imaging
import NumpyIO
import TestSupport
@testable import GlideCLI

final class SampleCommandTests: XCTestCase {
    private func path(_ name: String) -> String { EditCommandsTests.directory.appendingPathComponent(name).path }

    /// `tiny_base` (16x16, n_vocab 40, no tokenizer) converted with its options.
    private func tinyBase() throws -> String {
        let out = path("tiny_base.glw")
        if FileManager.default.fileExists(atPath: out) { return out }
        let dir = TestPaths.fixture("model/tiny_base")
        var command = try Convert.parse([dir.appendingPathComponent("model.pt").path, "-o", out, "--config",
                                         dir.appendingPathComponent("options.json").path, "--force", "--quiet"])
        try command.run()
        return out
    }

    /// Guided token rows for tiny_base: a prompt row then the empty row (end token 39, mask false).
    private func writeTokens() throws -> (String, String) {
        let ctx = 8
        let tokens: [Int64] = [5, 7, 11] + [Int64](repeating: 39, count: ctx - 3) + [Int64](repeating: 39, count: ctx)
        let mask: [Bool] = [true, true, true] + [Bool](repeating: false, count: 2 * ctx - 3)
        let t = path("tokens.npy"), m = path("mask.npy")
        try Npy.write(try NpyArray(int64: tokens, shape: [2, ctx]), path: t)
        try Npy.write(try NpyArray(bool: mask, shape: [2, ctx]), path: m)
        return (t, m)
    }

    /// `--timings` only measures: the same samples, and its phases add up to one line per phase and per stage.
    func testTimingsMeasureWithoutChangingTheSample() throws {
        let base = try tinyBase(), up = try EditCommandsTests.converted("e2e_upsample")
        let (t, m) = try writeTokens()
        var npys: [[Float]] = []
        for timed in [false, true] {
            let npy = path("timed-\(timed).npy")
            var command = try Sample.parse(["ignored", "--model", base, "--input", "tokens=\(t)", "--input", "mask=\(m)",
                                            "--steps", "3", "--upsampler", up, "--upsample-steps", "2", "--npy-out", npy,
                                            "-o", path("timed-\(timed).png"), "--seed", "5", "--view-size", "0", "--quiet"]
                                           + (timed ? ["--timings"] : []))
            try command.run()
            npys.append(try Npy.read(path: npy).floatValues())
        }
        XCTAssertEqual(npys[0], npys[1])

        let clock = RunTimings()
        clock.mark("load")
        for _ in 0..<3 { clock.markCall("base: steps 2...") }
        clock.mark("load")
        XCTAssertEqual(clock.phases.map(\.name), ["load", "base: steps 2..."])
        XCTAssertEqual(clock.phases.map(\.count), [2, 3])
        XCTAssertEqual(clock.phases[1].calls.count, 3)
        XCTAssertTrue(clock.phases[0].calls.isEmpty)
        let report = clock.report(threads: 1)
        XCTAssertEqual(report.split(separator: "\n").count, 2 + 2 + 1, report)
        XCTAssertTrue(report.contains("whole run"), report)
        XCTAssertEqual(RunTimings.median([3, 1, 2]), 2)
        XCTAssertEqual(RunTimings.median([4, 1, 2, 3]), 2.5)
    }

    func testBaseThenUpsamplerWritesBothStages() throws {
        let base = try tinyBase(), up = try EditCommandsTests.converted("e2e_upsample")
        let (t, m) = try writeTokens()
        let out = path("two-stage.png"), low = path("two-stage-low.png"), npy = path("two-stage.npy")
        var command = try Sample.parse(["ignored", "--model", base, "--input", "tokens=\(t)", "--input", "mask=\(m)",
                                        "--steps", "3", "--upsampler", up, "--upsample-steps", "2",
                                        "--save-low-res", low, "--npy-out", npy, "-o", out, "--seed", "5",
                                        "--view-size", "0", "--quiet"])
        try command.run()
        let image = try readImage(path: out), lowImage = try readImage(path: low)
        XCTAssertEqual([image.width, image.height], [16, 16])
        XCTAssertEqual([lowImage.width, lowImage.height], [16, 16])
        XCTAssertEqual(try Npy.read(path: npy).shape, [1, 3, 16, 16])

        // An input the base model cannot take is refused, not ignored.
        let lowPath = path("low_for_base.npy")
        try Npy.write(try NpyArray(float32: [Float](repeating: 0, count: 48), shape: [1, 3, 4, 4]), path: lowPath)
        var wrong = try Sample.parse(["p", "--model", base, "--input", "tokens=\(t)", "--input", "mask=\(m)",
                                      "--input", "low_res=\(lowPath)", "--quiet"])
        XCTAssertThrowsError(try wrong.run()) { XCTAssertTrue("\($0)".contains("takes no low_res"), "\($0)") }

        // parse -> pipeline -> write: the command's output is the library's Text2ImPipeline result, bit for bit.
        var pipeline = try Text2ImPipeline(basePath: base, upsamplerPath: up)
        pipeline.baseSettings.respacing = .steps(3)
        pipeline.upsampleSettings.respacing = .steps(2)
        let ctx = 8, end = 39
        let prompt = TextTokens(tokens: [5, 7, 11] + [Int](repeating: end, count: ctx - 3), mask: [true, true, true] + [Bool](repeating: false, count: ctx - 3))
        let result = try pipeline.generate(Text2ImRequest(prompt: "ignored", seed: 5,
                                                          baseText: StageText(prompts: [prompt], unconditional: .empty(endToken: end, textCtx: ctx))))
        XCTAssertEqual(try Npy.read(path: npy).floatValues(), result.final.values)
    }

    /// README's "From Swift" example, on the tiny fixture models (tokens given: tiny_base has no tokenizer).
    func testReadmeLibraryExample() throws {
        var pipeline = try Text2ImPipeline(basePath: try tinyBase(), upsamplerPath: try EditCommandsTests.converted("e2e_upsample"))
        pipeline.compute = ComputeOptions(threadCount: 2)
        pipeline.baseSettings.respacing = try TimestepRespacing(parsing: "3")
        pipeline.upsampleSettings.respacing = try TimestepRespacing(parsing: "2")
        let prompt = TextTokens(tokens: [5] + [Int](repeating: 39, count: 7), mask: [true] + [Bool](repeating: false, count: 7))
        var run = try pipeline.start(Text2ImRequest(prompt: "green grass", seed: 7,
                                                    baseText: StageText(prompts: [prompt], unconditional: .empty(endToken: 39, textCtx: 8))))
        var lines: [String] = []
        while let event = try run.next() {
            if case .step(let p) = event { lines.append("\(p.stage) \(p.completed)/\(p.total)") }
        }
        XCTAssertEqual(lines, ["base 1/5", "base 2/5", "base 3/5", "upsample 4/5", "upsample 5/5"])
        let x = try XCTUnwrap(run.finalOutput)
        let side = x.shape[3]
        try writePNG(try tensorToImage(x.values, height: side, width: side), path: path("readme.png"))
        XCTAssertEqual(try readImage(path: path("readme.png")).width, side)
    }

    func testUpsamplingModelTakesLowResInput() throws {
        let up = try EditCommandsTests.converted("e2e_upsample")
        let lowPath = path("low_res.npy")
        let values: [Float] = (0..<48).map { (i: Int) -> Float in Float(i % 7) / 3 - 1 }
        try Npy.write(try NpyArray(float32: values, shape: [1, 3, 4, 4]), path: lowPath)
        let npy = path("up.npy")
        var command = try Sample.parse(["green grass", "--model", up, "--input", "low_res=\(lowPath)", "--steps", "2",
                                        "--npy-out", npy, "-o", path("up.png"), "--seed", "1", "--quiet"])
        try command.run()
        let result = try Npy.read(path: npy)
        XCTAssertEqual(result.shape, [1, 3, 16, 16])
        XCTAssertTrue(try result.floatValues().allSatisfy { $0 >= -1 && $0 <= 1 })

        // --timings on the one-stage path measures without changing the sample.
        let timedPath = path("up-timed.npy")
        var timed = try Sample.parse(["green grass", "--model", up, "--input", "low_res=\(lowPath)", "--steps", "2",
                                      "--npy-out", timedPath, "-o", path("up-timed.png"), "--seed", "1", "--quiet", "--timings"])
        try timed.run()
        XCTAssertEqual(try Npy.read(path: timedPath).floatValues(), try result.floatValues())

        // Without low_res the command says what it needs.
        command = try Sample.parse(["green grass", "--model", up, "--quiet"])
        XCTAssertThrowsError(try command.run()) { XCTAssertTrue("\($0)".contains("low_res")) }
    }

    func testArgumentErrors() {
        XCTAssertThrowsError(try Sample.parse(["p", "--save-low-res", "x.png"]))           // needs --upsampler
        XCTAssertThrowsError(try Sample.parse(["p", "--input", "x=y.npy"]))                // unknown input name
        XCTAssertThrowsError(try Sample.parse(["p", "--sampler", "euler"]))
        XCTAssertThrowsError(try Sample.parse(["p", "--batch", "0"]))
    }
}
