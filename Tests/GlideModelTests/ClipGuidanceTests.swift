// CLIP guidance: our backward pass through the image encoder against the reference's cond_fn
// (Tests/Fixtures/model/clip_guidance, made by tools/make_clip_goldens.py) and against finite differences.
import Foundation
import XCTest
import Converter
import NumpyIO
import TestSupport
import WeightFormat
@testable import GlideModel

/// Tolerances of the CLIP gradient, relative to the gradient's scale (max |reference|).
enum ClipGradientTolerance {
    /// f32 weights: same math as PyTorch's autograd up to summation order.
    static let f32: Float = 1e-4
    /// Central finite differences in f32 (step 1e-2 on the [-1, 1] image scale) against the analytic
    /// directional derivative, relative to the derivative's size.
    static let finiteDifference: Float = 2e-2
}

final class ClipGuidanceTests: XCTestCase {
    static let temporaryDirectory: URL = {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("glide-clip-guidance-tests-\(getpid())")
        try? FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }()

    override class func tearDown() {
        try? FileManager.default.removeItem(at: temporaryDirectory)
        super.tearDown()
    }

    func tensor(_ variant: String, _ name: String) throws -> FloatTensor {
        let a = try Npy.read(path: TestPaths.fixture("model/\(variant)/\(name).npy").path)
        return FloatTensor(shape: a.shape, values: try a.floatValues())
    }

    func ints(_ variant: String, _ name: String) throws -> [Int] {
        try Npy.read(path: TestPaths.fixture("model/\(variant)/\(name).npy").path).intValues()
    }

    func encoder(_ variant: String, dtype: WeightDType = .f32) throws -> ClipEncoder {
        let path = Self.temporaryDirectory.appendingPathComponent("\(variant)-\(dtype).glw").path
        var options = ConversionOptions()
        options.target = dtype
        options.configPath = TestPaths.fixture("model/\(variant)/options.json").path
        options.overwrite = true
        _ = try convertCheckpoint(source: TestPaths.fixture("model/\(variant)/model.pt").path, destination: path, options: options)
        return try ClipEncoder(path: path)
    }

    func relativeError(_ a: [Float], _ b: [Float]) -> Float {
        XCTAssertEqual(a.count, b.count)
        let scale = b.map { abs($0) }.max() ?? 0
        return zip(a, b).map { abs($0 - $1) }.max()! / max(scale, 1e-12)
    }

    func testCondFnMatchesReference() throws {
        let text = try encoder("clip_text"), image = try encoder("clip_image")
        let zText = ClipEncoder.normalized(try text.encodeText(tokens: try ints("clip_guidance", "tokens"),
                                                               lengths: try ints("clip_guidance", "lens")))
        XCTAssertLessThan(relativeError(zText.values, try tensor("clip_guidance", "z_text").values), ClipGradientTolerance.f32)
        let guidance = ClipGuidance(imageEncoder: image, textEmbeddings: zText, scale: 3)
        let x = try tensor("clip_guidance", "x"), t = try ints("clip_guidance", "timesteps")
        let result = try image.imageObjectiveGradient(x: x, timesteps: t, textEmbeddings: zText)
        XCTAssertLessThan(relativeError(result.embeddings.values, try tensor("clip_guidance", "z_image").values),
                          ClipGradientTolerance.f32)
        let grad = try guidance.gradient(x: x, timesteps: t)
        let error = relativeError(grad.values, try tensor("clip_guidance", "grad").values)
        print("clip cond_fn gradient f32: max error / scale = \(error)")
        XCTAssertLessThan(error, ClipGradientTolerance.f32)
    }

    func testGradientMatchesFiniteDifferences() throws {
        let image = try encoder("clip_image")
        let zText = try tensor("clip_guidance", "z_text")
        let x = try tensor("clip_guidance", "x"), t = try ints("clip_guidance", "timesteps")
        let analytic = try image.imageObjectiveGradient(x: x, timesteps: t, textEmbeddings: zText)
        func objective(_ v: [Float]) throws -> Double {
            let z = ClipEncoder.normalized(try image.encodeImage(FloatTensor(shape: x.shape, values: v.map { ($0 + 1) * 127.5 }),
                                                                timesteps: t))
            var total = 0.0
            for i in 0..<z.count { total += Double(z.values[i]) * Double(zText.values[i]) }
            return 100 * total
        }
        // Directional derivatives along a few pseudo-random directions, and along single pixels.
        let rng = GaussianRNG(seed: 5)
        var directions: [[Float]] = (0..<3).map { _ in rng.batch(rows: 1, perRow: x.count, stream: 0) }
        for pixel in [0, 77, x.count - 1] {
            var d = [Float](repeating: 0, count: x.count); d[pixel] = 1; directions.append(d)
        }
        for (index, d) in directions.enumerated() {
            // Single pixels move the f32 objective by little: a wider step keeps the difference above the
            // forward pass's rounding noise (central differences are exact to O(h^2) on this smooth function).
            let h: Float = index < 3 ? 1e-2 : 1e-1
            let plus = try objective(zip(x.values, d).map { $0 + h * $1 })
            let minus = try objective(zip(x.values, d).map { $0 - h * $1 })
            let numeric = (plus - minus) / Double(2 * h)
            let exact = zip(analytic.gradient.values, d).reduce(0.0) { $0 + Double($1.0) * Double($1.1) }
            let size = max(abs(exact), 1e-3 * Double(analytic.gradient.values.map { abs($0) }.max()!))
            XCTAssertLessThan(abs(numeric - exact) / size, Double(ClipGradientTolerance.finiteDifference),
                              "numeric \(numeric) vs analytic \(exact)")
        }
        // The objective the gradient reports is the reference's.
        let reported = analytic.objective.reduce(0) { $0 + Double($1) }
        XCTAssertEqual(reported, try objective(x.values), accuracy: 1e-3)
    }

    func testClipGuidedSamplingMatchesReference() throws {
        let dir = "clip_guided_sampling"
        let imagePath = Self.temporaryDirectory.appendingPathComponent("guided-clip-image.glw").path
        var options = ConversionOptions()
        options.configPath = TestPaths.fixture("model/\(dir)/options.json").path
        options.overwrite = true
        _ = try convertCheckpoint(source: TestPaths.fixture("model/\(dir)/clip_image.pt").path, destination: imagePath,
                                  options: options)
        let basePath = Self.temporaryDirectory.appendingPathComponent("guided-base.glw").path
        options.configPath = TestPaths.fixture("model/tiny_base/options.json").path
        _ = try convertCheckpoint(source: TestPaths.fixture("model/tiny_base/model.pt").path, destination: basePath,
                                  options: options)
        let clipTokens = try ints(dir, "clip_tokens"), clipLens = try ints(dir, "clip_lens")
        let ctx = clipTokens.count / clipLens.count
        let guidance = try ClipGuidance(
            imageEncoder: try ClipEncoder(path: imagePath), textEncoder: try encoder("clip_text"),
            prompts: clipLens.indices.map { ClipTextTokens(tokens: Array(clipTokens[($0 * ctx)..<(($0 + 1) * ctx)]), length: clipLens[$0]) },
            scale: 3)
        let tokens = try ints(dir, "tokens")
        let mask = try Npy.read(path: TestPaths.fixture("model/\(dir)/mask.npy").path).boolValues()
        let textCtx = tokens.count / 2
        let prompts = (0..<2).map { TextTokens(tokens: Array(tokens[($0 * textCtx)..<(($0 + 1) * textCtx)]),
                                               mask: Array(mask[($0 * textCtx)..<(($0 + 1) * textCtx)])) }
        let stage = ClipGuidedBaseStage(model: try Text2ImUNet(path: basePath), guidance: guidance)
        let noise = SamplingNoise(seed: 0, start: try tensor(dir, "start").values, steps: try tensor(dir, "noise").values)
        let reference = try tensor(dir, "samples")
        let perStep = reference.count / reference.shape[0]
        var worst: Float = 0
        let out = try stage.run(batch: 2, prompts: prompts, respacing: .steps(10), noise: noise) { p in
            let expected = Array(reference.values[((p.completed - 1) * perStep)..<(p.completed * perStep)])
            worst = max(worst, self.relativeError(p.sample, expected))
        }
        print("CLIP-guided tiny sampling, 10 DDPM steps: worst step max error / scale = \(worst)")
        XCTAssertLessThan(worst, 1e-3)
        // The guidance matters: the same noise without it ends elsewhere.
        let unguided = ClipGuidedBaseStage(model: stage.model, guidance: ClipGuidance(
            imageEncoder: guidance.imageEncoder, textEmbeddings: guidance.textEmbeddings, scale: 0))
        let plain = try unguided.run(batch: 2, prompts: prompts, respacing: .steps(10), noise: noise)
        XCTAssertGreaterThan(relativeError(plain.values, out.values), 1e-2)
    }

    func testGradientRejectsBadInputs() throws {
        let image = try encoder("clip_image"), text = try encoder("clip_text")
        let zText = try tensor("clip_guidance", "z_text"), x = try tensor("clip_guidance", "x")
        XCTAssertThrowsError(try image.imageObjectiveGradient(x: FloatTensor(zeros: [1, 3, 4, 4]), timesteps: [1],
                                                              textEmbeddings: zText)) {
            XCTAssertEqual($0 as? GlideModelError, .invalidInput(name: "x", expected: "[batch, 3, 8, 8]", actual: "[1, 3, 4, 4]"))
        }
        XCTAssertThrowsError(try image.imageObjectiveGradient(x: x, timesteps: [1, 1000], textEmbeddings: zText)) {
            XCTAssertEqual($0 as? GlideModelError, .invalidInput(name: "timesteps", expected: "integers in 0..<1000", actual: "1000"))
        }
        XCTAssertThrowsError(try image.imageObjectiveGradient(x: x, timesteps: [1, 2], textEmbeddings: FloatTensor(zeros: [2, 3]))) {
            XCTAssertEqual($0 as? GlideModelError, .invalidInput(name: "text embeddings", expected: "[2, 16]", actual: "[2, 3]"))
        }
        XCTAssertThrowsError(try text.imageObjectiveGradient(x: x, timesteps: [1, 2], textEmbeddings: zText))
        // cond_fn shifts the DDPM mean (condition_mean); DDIM would need condition_score.
        let diffusion = try GaussianDiffusion(schedule: .squaredcosCapV2, respacing: "4")
        XCTAssertThrowsError(try diffusion.sample(shape: [1, 3, 8, 8], options: SamplingOptions(sampler: .ddim),
                                                  noise: SamplingNoise(seed: 1), model: { x, _ in x + x },
                                                  condition: { x, _ in x })) {
            XCTAssertEqual($0 as? GlideModelError, .invalidInput(name: "sampler", expected: "ddpm (cond_fn shifts the DDPM mean)",
                                                                 actual: "ddim"))
        }
    }
}
