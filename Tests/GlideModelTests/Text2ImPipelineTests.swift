// Text2ImPipeline (Sources/GlideModel/Pipeline/Text2ImPipeline.swift) on the tiny fixtures: the base stage
// reproduces the reference golden Tests/Fixtures/diffusion/tiny_base_guided_10 (made by
// tools/make_diffusion_goldens.py; regenerate with `/tmp/venv/bin/python tools/make_diffusion_goldens.py`) and is
// bit for bit the sampler run DiffusionTests checks; the two-stage run is bit for bit the stages composed by hand
// (each checked against the reference in PipelineTests); events, cancelling, threads and errors.
import Foundation
import XCTest
import Converter
import Kernels
import NumpyIO
import TestSupport
import WeightFormat
@testable import GlideModel

final class Text2ImPipelineTests: XCTestCase {
    static let directory: URL = {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("glide-text2im-tests-\(getpid())")
        try? FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }()

    /// A fixture model converted to f32 (once per run), with the tiny tokenizer embedded when asked.
    static func model(_ fixtureDir: String, tokenizer: Bool = false) throws -> Text2ImUNet {
        let dir = TestPaths.fixture(fixtureDir)
        let path = directory.appendingPathComponent(fixtureDir.replacingOccurrences(of: "/", with: "_") + ".glw").path
        if !FileManager.default.fileExists(atPath: path) {
            var options = ConversionOptions()
            options.target = .f32
            options.configPath = dir.appendingPathComponent("options.json").path
            options.overwrite = true
            if tokenizer { options.tokenizerDirectory = try TestPaths.tinyTokenizerDirectory().path }
            _ = try convertCheckpoint(source: dir.appendingPathComponent("model.pt").path, destination: path, options: options)
        }
        return try Text2ImUNet(path: path)
    }

    func npy(_ name: String) throws -> NpyArray {
        try Npy.read(path: TestPaths.fixture("diffusion/tiny_base_guided_10/\(name).npy").path)
    }

    /// The golden's two token rows (prompt, empty prompt) as the base stage's text.
    func goldenText() throws -> StageText {
        let t = try npy("tokens"), m = try npy("mask")
        let ids = try t.intValues(), flags = try m.boolValues(), ctx = t.shape[1]
        let rows = (0..<t.shape[0]).map {
            TextTokens(tokens: Array(ids[($0 * ctx)..<(($0 + 1) * ctx)]), mask: Array(flags[($0 * ctx)..<(($0 + 1) * ctx)]))
        }
        return try StageText(modelRows: rows, batch: 1, guided: true)
    }

    func testBaseStageMatchesReferenceGoldenAndTheSamplerBitForBit() throws {
        let base = try Self.model("model/tiny_base")
        var pipeline = try Text2ImPipeline(base: base)
        XCTAssertEqual(pipeline.baseSettings, StageSettings(respacing: .steps(100), sampler: .ddpm, guidanceScale: 3.0))
        pipeline.baseSettings.respacing = try TimestepRespacing(parsing: "10")    // the golden's case.json
        let noise = SamplingNoise(seed: 0, start: try npy("start").float32Values(), steps: try npy("noise").float32Values())
        let text = try goldenText()
        var run = try pipeline.start(Text2ImRequest(prompt: "unused: tokens given", seed: 0, baseText: text, baseNoise: noise))
        XCTAssertEqual(run.totalSteps, 10)

        // Every step against the reference's x_{t-1}.
        let ref = try npy("samples").float32Values()
        let size = base.options.imageSize, per = 3 * size * size
        var worst: Float = 0, steps = 0, finished: [PipelineStage] = []
        while let event = try run.next() {
            switch event {
            case .step(let p):
                steps += 1
                XCTAssertEqual(p.stage, .base)
                XCTAssertEqual(p.completed, steps)
                XCTAssertEqual(p.total, 10)
                let r = Array(ref[((p.completed - 1) * per)..<(p.completed * per)])
                let scale = max(1, r.map { abs($0) }.max()!)
                for i in 0..<per { worst = max(worst, abs(p.step.sample[i] - r[i]) / scale) }
            case .stageFinished(let stage, let out):
                finished.append(stage)
                XCTAssertEqual(out.shape, [1, 3, size, size])
            }
        }
        print("Text2ImPipeline tiny_base golden: worst relative difference \(worst)")
        XCTAssertLessThanOrEqual(worst, tinyBaseSamplingTolerance)
        XCTAssertEqual(steps, 10)
        XCTAssertEqual(finished, [.base])
        XCTAssertTrue(run.isFinished)
        XCTAssertNil(try run.next())

        // Bit for bit the sampler call DiffusionTests.testTinyBaseGuidedSamplingMatchesReference makes.
        let textRows = text.prompts + [text.unconditional!]
        let conditioning = try base.encodeText(tokens: textRows.flatMap(\.tokens), mask: textRows.flatMap(\.mask), batch: 2)
        let diffusion = try GaussianDiffusion(schedule: .squaredcosCapV2, steps: 1000, respacing: "10")
        let direct = try diffusion.sample(shape: [1, 3, size, size], options: SamplingOptions(sampler: .ddpm, guidanceScale: 3),
                                          noise: noise, model: { x, t in
            try base.forward(x: FloatTensor(shape: [t.count, 3, size, size], values: x), timesteps: t.map(Float.init),
                             text: conditioning).values
        })
        XCTAssertEqual(run.finalOutput?.values, direct)
    }

    /// Base then upsampler: the run is the two stages composed by hand (the previous `glide sample --upsampler`
    /// code): seeded base stage, the upsampler seeded with `seed ^ UpsampleStage.seedOffset` on the base output,
    /// its prompt through the upsampler's embedded tokenizer. Equal bit for bit, on any thread count.
    func testTwoStagesAreTheStagesComposedBitForBit() throws {
        let base = try Self.model("model/tiny_base")
        let up = try Self.model("pipeline/e2e_upsample", tokenizer: true)
        var pipeline = try Text2ImPipeline(base: base, upsampler: up)
        XCTAssertEqual(pipeline.upsampleSettings, StageSettings(respacing: .fast27, sampler: .ddim, guidanceScale: nil,
                                                                startNoiseScale: 0.997))
        pipeline.baseSettings.respacing = .steps(3)
        pipeline.upsampleSettings.respacing = .ddim(2)
        let text = try goldenText()
        let request = Text2ImRequest(prompt: "green grass", batch: 2, seed: 11,
                                     baseText: StageText(prompts: text.prompts, unconditional: text.unconditional))
        let counts = try pipeline.stepCounts()
        XCTAssertEqual(counts.base, 3)
        XCTAssertEqual(counts.upsample, 2)

        var seen: [String] = []
        let result = try pipeline.generate(request, progress: { seen.append("\($0.stage.rawValue) \($0.completed)/\($0.total)") })
        XCTAssertEqual(seen, ["base 1/5", "base 2/5", "base 3/5", "upsample 4/5", "upsample 5/5"])

        let low = try DiffusionStage(model: base).run(
            batch: 2, inputs: StageInputs(prompts: text.prompts, unconditional: text.unconditional),
            settings: pipeline.baseSettings, noise: SamplingNoise(seed: 11))
        let tokenizer = try GlideTokenizer(files: up.file.tokenizerFiles)
        let high = try UpsampleStage.run(model: up, lowRes: low, prompt: "green grass", tokenizer: tokenizer,
                                         settings: pipeline.upsampleSettings,
                                         noise: SamplingNoise(seed: 11 ^ UpsampleStage.seedOffset))
        XCTAssertEqual(result.lowRes, low)
        XCTAssertEqual(result.upsampled, high)
        XCTAssertEqual(result.final.shape, [2, 3, up.options.imageSize, up.options.imageSize])

        // The thread count is the pipeline's, restored afterwards; the result does not depend on it.
        let saved = KernelSettings.threadCount
        pipeline.compute = ComputeOptions(threadCount: saved == 1 ? 2 : 1)
        XCTAssertEqual(try pipeline.generate(request).upsampled, high)
        XCTAssertEqual(KernelSettings.threadCount, saved)
    }

    /// The upsampler reuses the base stage's tokenizer exactly when it would load the same one: a tokenizer folder,
    /// or the base file's embedded tokenizer because the upsampler's file embeds none. With a folder and the base
    /// text given as token rows (so the base stage loads no tokenizer), the upsampler still loads it itself:
    /// the result is the run with the upsampler's embedded tokenizer (the same tiny vocabulary), bit for bit.
    func testUpsamplerLoadsTheTokenizerOnlyWhenItIsNotTheBaseStagesOwn() throws {
        let base = try Self.model("model/tiny_base")
        let embedding = try Self.model("pipeline/e2e_upsample", tokenizer: true)
        let plain = try Self.model("model/tiny_super_res")
        var pipeline = try Text2ImPipeline(base: base, upsampler: embedding)
        XCTAssertFalse(pipeline.upsamplerSharesBaseTokenizer())
        pipeline.tokenizerDirectory = try TestPaths.tinyTokenizerDirectory().path
        XCTAssertTrue(pipeline.upsamplerSharesBaseTokenizer())
        XCTAssertTrue(try Text2ImPipeline(base: base, upsampler: plain).upsamplerSharesBaseTokenizer())
        XCTAssertFalse(try Text2ImPipeline(base: base).upsamplerSharesBaseTokenizer())

        pipeline.baseSettings.respacing = .steps(2)
        pipeline.upsampleSettings.respacing = .ddim(2)
        let request = Text2ImRequest(prompt: "green grass", seed: 3, baseText: try goldenText())
        let fromFolder = try pipeline.generate(request)
        pipeline.tokenizerDirectory = nil
        XCTAssertEqual(fromFolder.upsampled, try pipeline.generate(request).upsampled)
    }

    /// A caller cancels by no longer calling `next()`; a later stage is never started.
    func testStoppingEarlyNeverStartsTheUpsampler() throws {
        let base = try Self.model("model/tiny_base")
        let up = try Self.model("pipeline/e2e_upsample", tokenizer: true)
        var pipeline = try Text2ImPipeline(base: base, upsampler: up)
        pipeline.baseSettings.respacing = .steps(4)
        var run = try pipeline.start(Text2ImRequest(prompt: "x", seed: 1, baseText: try goldenText()))
        guard case .step(let first)? = try run.next() else { return XCTFail("expected a step") }
        XCTAssertEqual(first.completed, 1)
        XCTAssertEqual(run.completed, 1)
        XCTAssertFalse(run.isFinished)
        XCTAssertNil(run.finalOutput)
        XCTAssertTrue(run.outputs.isEmpty)
    }

    func testWrongModelKindsAndBadRequestsAreNamed() throws {
        let base = try Self.model("model/tiny_base")
        let up = try Self.model("model/tiny_super_res")
        XCTAssertThrowsError(try Text2ImPipeline(base: up)) {
            XCTAssertEqual($0 as? GlideModelError, .wrongModelKind(role: "base", expected: "Text2ImUNet with a text transformer",
                                                                  actual: "SuperResText2ImUNet"))
        }
        XCTAssertThrowsError(try Text2ImPipeline(base: base, upsampler: base)) {
            XCTAssertEqual($0 as? GlideModelError, .wrongModelKind(role: "upsampler", expected: "SuperResText2ImUNet",
                                                                  actual: "Text2ImUNet"))
        }
        XCTAssertThrowsError(try InpaintPipeline(base: base)) {
            XCTAssertEqual($0 as? GlideModelError, .wrongModelKind(role: "base inpainting", expected: "InpaintText2ImUNet",
                                                                  actual: "Text2ImUNet"))
        }
        var pipeline = try Text2ImPipeline(base: base, upsampler: up)
        // tiny_base embeds no tokenizer: a prompt needs one.
        XCTAssertThrowsError(try pipeline.start(Text2ImRequest(prompt: "a corgi", seed: 1))) {
            XCTAssertEqual($0 as? GlideModelError, .missingTokenizer(model: base.file.path, kind: "GPT-2"))
        }
        XCTAssertThrowsError(try pipeline.start(Text2ImRequest(prompt: "x", batch: 0, seed: 1, baseText: try goldenText()))) {
            XCTAssertEqual($0 as? GlideModelError, .invalidSetting(name: "batch", expected: "at least 1", actual: "0"))
        }
        pipeline.compute = ComputeOptions(threadCount: 0)
        XCTAssertThrowsError(try pipeline.start(Text2ImRequest(prompt: "x", seed: 1, baseText: try goldenText()))) {
            XCTAssertEqual($0 as? GlideModelError, .invalidSetting(name: "thread count", expected: "at least 1", actual: "0"))
        }
        pipeline.compute = ComputeOptions()
        pipeline.baseSettings.guidanceScale = .nan
        XCTAssertThrowsError(try pipeline.start(Text2ImRequest(prompt: "x", seed: 1, baseText: try goldenText()))) {
            guard case .invalidSetting(name: "guidance scale", _, _)? = $0 as? GlideModelError else { return XCTFail("\($0)") }
        }
        // Token rows that are not prompt rows then equal empty-prompt rows.
        let rows = try goldenText()
        XCTAssertThrowsError(try StageText(modelRows: rows.prompts, batch: 1, guided: true)) {
            XCTAssertEqual($0 as? GlideModelError, .invalidInput(name: "tokens", expected: "2 rows (prompt rows then empty-prompt rows)",
                                                                actual: "1 rows"))
        }
        XCTAssertThrowsError(try StageText(modelRows: rows.prompts + rows.prompts + [rows.unconditional!], batch: 1, guided: false))
        XCTAssertThrowsError(try StageText(modelRows: [rows.prompts[0], rows.prompts[0], rows.unconditional!, rows.prompts[0]],
                                           batch: 2, guided: true))
    }

    func testRespacingParsesOnceAndSpellsBack() throws {
        for spec in ["", "100", "ddim50", "fast27", "10,10,10"] {
            XCTAssertEqual(try TimestepRespacing(parsing: spec).description, spec)
        }
        XCTAssertEqual(try TimestepRespacing(parsing: "100"), .steps(100))
        XCTAssertEqual(try TimestepRespacing(parsing: "ddim25"), .ddim(25))
        XCTAssertEqual(try TimestepRespacing(parsing: "fast27").timesteps(originalSteps: 1000),
                       try Respacing.timesteps("fast27", originalSteps: 1000))
        XCTAssertThrowsError(try TimestepRespacing(parsing: "ddimx")) {
            XCTAssertEqual($0 as? GlideModelError, .badRespacing(spec: "ddimx", reason: "expected ddim followed by an integer"))
        }
        XCTAssertThrowsError(try TimestepRespacing(parsing: "10,a")) {
            XCTAssertEqual($0 as? GlideModelError, .badRespacing(spec: "10,a", reason: "'a' is not an integer"))
        }
        // Model options carry the typed schedule and respacing.
        XCTAssertThrowsError(try ModelOptions(hyperparameters: ["noise_schedule": .string("cosine")])) {
            guard case .invalidHyperparameter(name: "noise_schedule", _, _)? = $0 as? GlideModelError else { return XCTFail("\($0)") }
        }
        let o = try ModelOptions(hyperparameters: ["super_res": .bool(true), "timestep_respacing": .string("ddim25")])
        XCTAssertEqual(o.noiseSchedule, .linear)
        XCTAssertEqual(o.timestepRespacing, .ddim(25))
    }
}
