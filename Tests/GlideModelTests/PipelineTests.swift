// The multi-stage pipeline (Sources/GlideModel/Pipeline) against goldens from the genuine reference
// (Tests/Fixtures/pipeline/, made by tools/make_pipeline_goldens.py; regenerate with
// `/tmp/venv/bin/python tools/make_pipeline_goldens.py`), plus the grass.png end-to-end inpainting check
// and the pipeline's input errors.
import Foundation
import XCTest
import Converter
import NumpyIO
import TestSupport
import WeightFormat
@testable import GlideModel

/// Tolerances for whole sampling runs (max |ours - reference| over the final sample, which lies in [-1, 1]).
enum PipelineTolerance {
    /// One step from the same x_T: forward within 1e-4 of scale plus the step's float32 math
    /// (measured 5e-7 to 1e-5).
    static let firstStep: Float = 1e-4
    /// A whole run with replayed noise: per-step differences compound through 3-27 steps of a random-weight
    /// network (measured 4e-6 to 1e-4; the tests print their values).
    static let wholeRun: Float = 5e-4
}

final class PipelineTests: XCTestCase {
    static let temporaryDirectory: URL = {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("glide-pipeline-tests-\(getpid())")
        try? FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }()

    struct Case: Decodable {
        var name: String
        var model: String
        var model_sha256: String
        var respacing: String
        var sampler: String
        var guidance: Float?
        var upsample_temp: Float
        var batch: Int
        var size: Int
        var steps: Int
        var prompt: String?
    }

    static let cases: [String: Case] = {
        let data = try! Data(contentsOf: TestPaths.fixture("pipeline/cases.json"))
        let list = try! JSONDecoder().decode([Case].self, from: data)
        return Dictionary(uniqueKeysWithValues: list.map { ($0.name, $0) })
    }()

    func npy(_ dir: String, _ name: String) throws -> NpyArray {
        try Npy.read(path: TestPaths.fixture("pipeline/\(dir)/\(name).npy").path)
    }

    func tensor(_ dir: String, _ name: String) throws -> FloatTensor {
        let a = try npy(dir, name)
        return FloatTensor(shape: a.shape, values: try a.floatValues())
    }

    /// Token rows of a case's tokens.npy / mask.npy.
    func tokenRows(_ dir: String) throws -> [TextTokens] {
        let t = try npy(dir, "tokens"), m = try npy(dir, "mask")
        let ids = try t.intValues(), flags = try m.boolValues()
        let ctx = t.shape[1]
        return (0..<t.shape[0]).map {
            TextTokens(tokens: Array(ids[($0 * ctx)..<(($0 + 1) * ctx)]), mask: Array(flags[($0 * ctx)..<(($0 + 1) * ctx)]))
        }
    }

    /// Converts a fixture model (`model/<name>` or `pipeline/<name>`) with the Converter, after checking it is
    /// the file the goldens were made with.
    func loadModel(_ fixtureDir: String, expectedSHA256: String? = nil, tokenizer: Bool = false) throws -> Text2ImUNet {
        let dir = TestPaths.fixture(fixtureDir)
        let source = dir.appendingPathComponent("model.pt").path
        if let expectedSHA256 {
            let data = try Data(contentsOf: URL(fileURLWithPath: source))
            var sha = SHA256()
            data.withUnsafeBytes { sha.update($0) }
            let actual = sha.finalizeHex()
            XCTAssertEqual(actual, expectedSHA256,
                           "\(fixtureDir)/model.pt changed since the pipeline goldens were made: rerun tools/make_pipeline_goldens.py")
        }
        let name = fixtureDir.replacingOccurrences(of: "/", with: "_")
        let path = Self.temporaryDirectory.appendingPathComponent("\(name).glw").path
        var options = ConversionOptions()
        options.target = .f32
        options.configPath = dir.appendingPathComponent("options.json").path
        options.overwrite = true
        if tokenizer { options.tokenizerDirectory = try TestPaths.tinyTokenizerDirectory().path }
        _ = try convertCheckpoint(source: source, destination: path, options: options)
        return try Text2ImUNet(path: path)
    }

    func maxAbsDiff(_ a: [Float], _ b: [Float]) -> Float {
        XCTAssertEqual(a.count, b.count)
        var m: Float = 0
        for i in 0..<min(a.count, b.count) { m = max(m, abs(a[i] - b[i])) }
        return m
    }

    /// Runs a case twice: the first step alone (compared with first_sample) and the whole run (out).
    func checkCase(_ name: String, stage: DiffusionStage, inputs: StageInputs, settings: StageSettings,
                   file: StaticString = #filePath, line: UInt = #line) throws {
        let c = Self.cases[name]!
        var noise = SamplingNoise(seed: 0, start: try tensor(name, "start").values)
        if settings.sampler == .ddpm { noise.steps = try tensor(name, "noise").values }
        var first: [Float]? = nil
        let out = try stage.run(batch: c.batch, size: c.size, inputs: inputs, settings: settings, noise: noise,
                                progress: { p in if p.completed == 1 { first = p.sample } })
        let firstErr = maxAbsDiff(first ?? [], try tensor(name, "first_sample").values)
        let outErr = maxAbsDiff(out.values, try tensor(name, "out").values)
        print("pipeline golden \(name): first step max |diff| \(firstErr), final (\(c.steps) steps) max |diff| \(outErr)")
        XCTAssertLessThanOrEqual(firstErr, PipelineTolerance.firstStep, "\(name) first step", file: file, line: line)
        XCTAssertLessThanOrEqual(outErr, PipelineTolerance.wholeRun, "\(name) final sample", file: file, line: line)
    }

    // MARK: goldens

    func testUpsamplerFast27DDIMMatchesReference() throws {
        let c = Self.cases["upsample_fast27"]!
        let model = try loadModel("model/tiny_super_res", expectedSHA256: c.model_sha256)
        let settings = StageSettings.notebook(for: model.options)
        XCTAssertEqual(settings, StageSettings(respacing: .fast27, sampler: .ddim, guidanceScale: nil,
                                               startNoiseScale: 0.997, quantizeLowRes: true, forceKnownRegion: true))
        let prompts = try tokenRows("upsample_fast27")
        XCTAssertEqual(prompts.count, 2)   // one row per image, no guidance
        try checkCase("upsample_fast27", stage: DiffusionStage(model: model),
                      inputs: StageInputs(prompts: prompts, lowRes: try tensor("upsample_fast27", "low_res")),
                      settings: settings)
        // The library entry point `glide sample --upsampler` uses gives the same result.
        let noise = SamplingNoise(seed: 0, start: try tensor("upsample_fast27", "start").values)
        let out = try UpsampleStage.run(model: model, lowRes: try tensor("upsample_fast27", "low_res"), prompts: prompts,
                                        outputSize: c.size, noise: noise)
        XCTAssertLessThanOrEqual(maxAbsDiff(out.values, try tensor("upsample_fast27", "out").values), PipelineTolerance.wholeRun)
    }

    func testBaseInpaintingGuidedWithForcingMatchesReference() throws {
        let c = Self.cases["inpaint_base"]!
        let model = try loadModel("model/tiny_inpaint", expectedSHA256: c.model_sha256)
        var settings = StageSettings.notebook(for: model.options)
        XCTAssertEqual(settings.guidanceScale, 5.0)
        XCTAssertEqual(settings.sampler, .ddpm)
        settings.respacing = try TimestepRespacing(parsing: c.respacing)
        let rows = try tokenRows("inpaint_base")   // prompt row, then the empty-prompt row
        let source = try tensor("inpaint_base", "inpaint_image")
        try checkCase("inpaint_base", stage: DiffusionStage(model: model),
                      inputs: StageInputs(prompts: [rows[0]], unconditional: rows[1], inpaintImage: source,
                                          inpaintMask: try tensor("inpaint_base", "inpaint_mask")),
                      settings: settings)
    }

    func testInpaintingUpsamplerFast27DDPMMatchesReference() throws {
        let c = Self.cases["inpaint_upsample_fast27"]!
        let model = try loadModel("model/tiny_super_res_inpaint", expectedSHA256: c.model_sha256)
        let settings = StageSettings.notebook(for: model.options)
        XCTAssertEqual(settings, StageSettings(respacing: .fast27, sampler: .ddpm, guidanceScale: nil,
                                               startNoiseScale: 0.997))
        let name = "inpaint_upsample_fast27"
        // The 8x8 mask is upsampled to 32x32 with nearest inside the stage.
        try checkCase(name, stage: DiffusionStage(model: model),
                      inputs: StageInputs(prompts: try tokenRows(name), lowRes: try tensor(name, "low_res"),
                                          inpaintImage: try tensor(name, "inpaint_image"),
                                          inpaintMask: try tensor(name, "inpaint_mask")),
                      settings: settings)
    }

    /// The prompt path: our tokenizer on the fixture's small BPE vocabulary gives the reference's tokens, and the
    /// guided inpainting run matches.
    func testPromptPathTokenizesAndSamplesLikeReference() throws {
        let name = "e2e_base_inpaint_case"
        let c = Self.cases[name]!
        let model = try loadModel("pipeline/e2e_base_inpaint", expectedSHA256: c.model_sha256, tokenizer: true)
        let tokenizer = try GlideTokenizer(files: model.file.tokenizerFiles)
        let ctx = model.options.textCtx
        let rows = try tokenRows(name)
        XCTAssertEqual(TextTokens(prompt: c.prompt!, tokenizer: tokenizer, textCtx: ctx), rows[0])
        XCTAssertEqual(TextTokens.empty(tokenizer: tokenizer, textCtx: ctx), rows[1])
        var settings = StageSettings.notebook(for: model.options)
        settings.respacing = try TimestepRespacing(parsing: c.respacing)
        try checkCase(name, stage: DiffusionStage(model: model),
                      inputs: StageInputs(prompts: [rows[0]], unconditional: rows[1],
                                          inpaintImage: try tensor("inpaint_base", "inpaint_image"),
                                          inpaintMask: try tensor("inpaint_base", "inpaint_mask")),
                      settings: settings)
    }

    // MARK: end to end

    /// `read_image(grass.png, size)` pixels from the imaging goldens (Pillow's bicubic resize).
    func grass(_ size: Int) throws -> (pixels: [UInt8], tensor: FloatTensor) {
        let bytes = [UInt8](try Data(contentsOf: TestPaths.fixture("imaging/grass_\(size).rgb")))
        XCTAssertEqual(bytes.count, size * size * 3)
        var values = [Float](repeating: 0, count: 3 * size * size)
        for i in 0..<(size * size) { for c in 0..<3 { values[c * size * size + i] = Float(bytes[i * 3 + c]) / 127.5 - 1 } }
        return (bytes, FloatTensor(shape: [1, 3, size, size], values: values))
    }

    /// grass.png inpainted with the notebook's mask (top 20 of 64 rows kept) through both tiny inpainting models
    /// at the real sizes (64, then 256): the known region of the 8-bit output is exactly the source's pixels.
    func testGrassInpaintedEndToEndKeepsKnownRegionExactly() throws {
        let base = try loadModel("pipeline/e2e_base_inpaint", tokenizer: true)
        let up = try loadModel("pipeline/e2e_upsample_inpaint", tokenizer: true)
        var pipeline = try InpaintPipeline(base: base, upsampler: up)
        XCTAssertEqual(pipeline.baseSettings.guidanceScale, 5.0)
        XCTAssertEqual(pipeline.upsampleSettings.respacing, .fast27)
        XCTAssertEqual(pipeline.upsampleSettings.sampler, .ddpm)
        // Fewer steps than the notebook to keep the debug-build test fast; the forcing is the same at any count.
        pipeline.baseSettings.respacing = .steps(4)
        pipeline.upsampleSettings.respacing = .steps(3)
        let (pixels64, source64) = try grass(64)
        let (pixels256, source256) = try grass(256)
        let mask = FloatTensor(shape: [1, 1, 64, 64], values: (0..<(64 * 64)).map { $0 / 64 < 20 ? 1 : 0 })
        let tokenizer = try GlideTokenizer(files: base.file.tokenizerFiles)
        var last = 0
        let started = Date()
        let result = try pipeline.run(prompt: "a corgi in a field", tokenizer: tokenizer, sourceLow: source64,
                                      sourceHigh: source256, mask: mask, seed: 7,
                                      progress: { p in XCTAssertEqual(p.completed, last + 1); last = p.completed; XCTAssertEqual(p.total, 7) })
        print("grass end to end (64: 4 steps, 256: 3 steps): \(String(format: "%.1f", Date().timeIntervalSince(started))) s")
        XCTAssertEqual(last, 7)
        let low = result.lowRes, high = try XCTUnwrap(result.upsampled)
        XCTAssertEqual(low.shape, [1, 3, 64, 64])
        XCTAssertEqual(high.shape, [1, 3, 256, 256])
        func bytes(_ t: FloatTensor, _ size: Int) -> [UInt8] {   // HWC, the notebook's 8-bit conversion
            var out = [UInt8](repeating: 0, count: size * size * 3)
            for i in 0..<(size * size) {
                for c in 0..<3 {
                    let v = ((t.values[c * size * size + i] + 1) * 127.5).rounded(.toNearestOrEven)
                    out[i * 3 + c] = UInt8(max(0, min(255, v)))
                }
            }
            return out
        }
        let b64 = bytes(low, 64), b256 = bytes(high, 256)
        XCTAssertEqual(Array(b64[0..<(20 * 64 * 3)]), Array(pixels64[0..<(20 * 64 * 3)]), "kept rows of the 64x64 stage")
        XCTAssertEqual(Array(b256[0..<(80 * 256 * 3)]), Array(pixels256[0..<(80 * 256 * 3)]), "kept rows of the 256x256 stage")
        // Even the float values are the source's in the known region (the forced x_0 is the last step's output).
        XCTAssertEqual(Array(high.values[0..<(80 * 256)]), Array(source256.values[0..<(80 * 256)]))
        // The rest was generated.
        XCTAssertNotEqual(Array(b256[(80 * 256 * 3)...]), Array(pixels256[(80 * 256 * 3)...]))
    }

    // MARK: helpers and errors

    func testNearestMaskUpsamplingAndQuantization() {
        let m = FloatTensor(shape: [1, 1, 2, 3], values: [1, 0, 1, 0, 1, 0])
        let up = PipelineMath.interpolateNearest(m, height: 4, width: 6)
        XCTAssertEqual(up.values, [1, 1, 0, 0, 1, 1,  1, 1, 0, 0, 1, 1,  0, 0, 1, 1, 0, 0,  0, 0, 1, 1, 0, 0])
        // torch: F.interpolate(ones-and-zeros 3 -> 7): floor(i * 3/7)
        let odd = PipelineMath.interpolateNearest(FloatTensor(shape: [1, 1, 1, 3], values: [0, 1, 2]), height: 1, width: 7)
        XCTAssertEqual(odd.values, [0, 0, 0, 1, 1, 2, 2])
        XCTAssertEqual(PipelineMath.quantizeTo8BitLevels([-1, 1, 0, 0.5, -2]),
                       [-1, 1, Float(128) / 127.5 - 1, Float(191) / 127.5 - 1, Float(-128) / 127.5 - 1])   // 127.5 -> 128 (half to even)
        XCTAssertEqual(PipelineMath.repeatRows(FloatTensor(shape: [2, 1], values: [3, 4]), to: 4).values, [3, 4, 3, 4])
    }

    func testErrorsNameTheBadInput() throws {
        let up = try loadModel("model/tiny_super_res")
        let rows = try tokenRows("upsample_fast27")
        let stage = DiffusionStage(model: up)
        let settings = StageSettings.notebook(for: up.options)
        let noise = SamplingNoise(seed: 1)
        // Missing low_res.
        XCTAssertThrowsError(try stage.run(batch: 1, size: 16, inputs: StageInputs(prompts: [rows[0]]), settings: settings, noise: noise)) {
            XCTAssertEqual($0 as? GlideModelError, .missingInput(name: "low_res", model: "SuperResText2ImUNet"))
        }
        // Inpaint inputs on a plain upsampler.
        let low = FloatTensor(zeros: [1, 3, 4, 4])
        XCTAssertThrowsError(try stage.run(batch: 1, size: 16, inputs: StageInputs(prompts: [rows[0]], lowRes: low,
                                                                                   inpaintImage: FloatTensor(zeros: [1, 3, 16, 16]),
                                                                                   inpaintMask: FloatTensor(zeros: [1, 1, 16, 16])),
                                           settings: settings, noise: noise)) {
            XCTAssertEqual($0 as? GlideModelError, .unexpectedInput(name: "inpaint_image", model: "SuperResText2ImUNet"))
        }
        // Wrong low_res shape.
        XCTAssertThrowsError(try stage.run(batch: 1, size: 16, inputs: StageInputs(prompts: [rows[0]], lowRes: FloatTensor(zeros: [1, 4, 4, 4])),
                                           settings: settings, noise: noise)) {
            XCTAssertEqual($0 as? GlideModelError, .inputShapeMismatch(name: "low_res", expected: [1, 3, -1, -1], actual: [1, 4, 4, 4]))
        }
        // Guidance without the empty prompt.
        var guided = settings
        guided.guidanceScale = 3
        XCTAssertThrowsError(try stage.run(batch: 1, size: 16, inputs: StageInputs(prompts: [rows[0]], lowRes: low),
                                           settings: guided, noise: noise)) {
            XCTAssertEqual($0 as? GlideModelError, .missingInput(name: "unconditional tokens (for guidance)", model: "SuperResText2ImUNet"))
        }
        // An inpainting pipeline needs inpainting models.
        XCTAssertThrowsError(try InpaintPipeline(base: up)) { XCTAssertTrue($0 is GlideModelError) }
        XCTAssertEqual(GlideModelError.inputShapeMismatch(name: "x", expected: [-1, 3], actual: [2, 4]).description,
                       "x has shape [2, 4], expected [*, 3]")
    }
}
