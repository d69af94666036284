// Proof for the shipped default model (issue 7): the small digits GLIDE in Models/ draws the digit the
// prompt asks for, read by a plain-Swift port of the logistic-regression classifier trained by
// tools/train_digit_classifier.py (weights: Tests/Fixtures/digits/classifier.json).
//
// Regenerate the fixture: /tmp/venv/bin/python tools/train_digit_classifier.py
// Regenerate the models: tools/train_digits.py, then `glide convert` (see Models/README.md).
import Foundation
import GlideModel
import TestSupport
import WeightFormat
import XCTest

/// The digit classifier of tools/train_digit_classifier.py: a 16x16 image in [-1, 1] (channels averaged)
/// -> ink (1 - x) / 2 * 16 -> 2x2 average -> 64 features -> standardise -> linear -> argmax.
struct DigitReader {
    let mean: [Double]
    let scale: [Double]
    let weights: [[Double]]   // [10][64]
    let bias: [Double]        // [10]
    let examples: [(label: Int, image: [Float], logits: [Double])]

    init(url: URL) throws {
        let object = try JSONSerialization.jsonObject(with: Data(contentsOf: url))
        guard let json = object as? [String: Any],
              let mean = json["mean"] as? [Double], let scale = json["scale"] as? [Double],
              let weights = json["weights"] as? [[Double]], let bias = json["bias"] as? [Double],
              mean.count == 64, scale.count == 64, weights.count == 10, weights.allSatisfy({ $0.count == 64 }),
              bias.count == 10
        else { throw NSError(domain: "DigitReader", code: 1, userInfo: [NSLocalizedDescriptionKey: "bad \(url.path)"]) }
        self.mean = mean; self.scale = scale; self.weights = weights; self.bias = bias
        examples = (json["examples"] as? [[String: Any]] ?? []).compactMap { e in
            guard let label = e["label"] as? Int, let image = e["image16"] as? [Double],
                  let logits = e["logits"] as? [Double] else { return nil }
            return (label, image.map(Float.init), logits)
        }
    }

    /// Logits for one image: `[C, 16, 16]` values (any channel count) in [-1, 1].
    func logits(_ image: [Float]) -> [Double] {
        let plane = 256
        let channels = image.count / plane
        precondition(channels >= 1 && image.count == channels * plane, "expected [C, 16, 16], got \(image.count) values")
        var features = [Double](repeating: 0, count: 64)
        for y in 0..<16 {
            for x in 0..<16 {
                var grey = 0.0
                for c in 0..<channels { grey += Double(image[c * plane + y * 16 + x]) }
                grey = min(max(grey / Double(channels), -1), 1)
                features[(y / 2) * 8 + x / 2] += (1 - grey) / 2 * 16 / 4
            }
        }
        return (0..<10).map { k in
            var z = bias[k]
            for i in 0..<64 { z += weights[k][i] * (features[i] - mean[i]) / scale[i] }
            return z
        }
    }

    func predict(_ image: [Float]) -> Int {
        let l = logits(image)
        return l.indices.max(by: { l[$0] < l[$1] })!
    }
}

final class DigitsTests: XCTestCase {
    static let words = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
    /// The prompt forms the model was trained with (tools/train_digits.py), cycled over the digits.
    static func prompt(_ digit: Int, variant: Int = 0) -> String {
        switch (digit + variant) % 3 {
        case 0: return "a handwritten digit \(words[digit])"
        case 1: return "the number \(digit)"
        default: return "a handwritten digit \(digit)"
        }
    }

    /// Minimum share of samples the classifier must read as the prompted digit.
    static let requiredAccuracy = 0.9
    /// The CI setting: the training check's sampler (50 DDPM steps), guidance as the notebook, 2 samples per digit.
    static let respacing = "50"
    static let perDigit = 2
    static let guidance: Float = 3
    static let seed: UInt64 = 7

    func reader() throws -> DigitReader {
        try DigitReader(url: TestPaths.fixture("digits/classifier.json"))
    }

    func modelPath(_ name: String) throws -> String {
        let url = TestPaths.packageRoot.appendingPathComponent("Models").appendingPathComponent(name)
        guard FileManager.default.fileExists(atPath: url.path) else {
            throw NSError(domain: "DigitsTests", code: 2,
                          userInfo: [NSLocalizedDescriptionKey: "shipped model \(url.path) is missing"])
        }
        return url.path
    }

    /// Samples `perDigit` images per digit (row i asks for digit i % 10, guided) and returns the classifier's readings.
    func sampleDigits(model path: String, respacing: String = respacing, sampler: SamplerKind = .ddpm,
                      seed: UInt64 = seed) throws -> (images: [[Float]], predictions: [Int]) {
        let file = try WeightFile(path: path)
        let unet = try Text2ImUNet(file: file)
        let tokenizer = try GPT2Tokenizer(files: file.tokenizerFiles)
        let ctx = unet.options.textCtx, size = unet.options.imageSize
        XCTAssertEqual(size, 16)
        let batch = 10 * DigitsTests.perDigit
        var tokens: [Int] = [], mask: [Bool] = []
        for i in 0..<batch {
            let p = tokenizer.paddedTokensAndMask(tokenizer.encode(DigitsTests.prompt(i % 10, variant: i / 10)), context: ctx)
            tokens += p.tokens; mask += p.mask
        }
        let empty = tokenizer.paddedTokensAndMask([], context: ctx)
        for _ in 0..<batch { tokens += empty.tokens; mask += empty.mask }
        let text = try unet.encodeText(tokens: tokens, mask: mask, batch: 2 * batch)
        let diffusion = try GaussianDiffusion(schedule: unet.options.noiseSchedule,
                                              steps: unet.options.diffusionSteps, respacing: respacing)
        let x0 = try diffusion.sample(
            shape: [batch, 3, size, size],
            options: SamplingOptions(sampler: sampler, clipDenoised: true, guidanceScale: DigitsTests.guidance),
            noise: SamplingNoise(seed: seed),
            model: { x, t in
                try unet.forward(x: FloatTensor(shape: [t.count, 3, size, size], values: x),
                                 timesteps: t.map(Float.init), text: text).values
            })
        let perImage = 3 * size * size
        let images = (0..<batch).map { Array(x0[($0 * perImage)..<(($0 + 1) * perImage)]) }
        let r = try reader()
        return (images, images.map(r.predict))
    }

    func assertReadsPromptedDigits(_ name: String, file: StaticString = #filePath, line: UInt = #line) throws {
        let started = Date()
        let (_, predictions) = try sampleDigits(model: try modelPath(name))
        let correct = predictions.enumerated().filter { $0.offset % 10 == $0.element }.count
        let accuracy = Double(correct) / Double(predictions.count)
        print("DigitsTests \(name): \(DigitsTests.respacing) guidance \(DigitsTests.guidance): read \(predictions) "
              + "for 0...9 (x\(DigitsTests.perDigit)), accuracy \(accuracy), \(String(format: "%.1f", Date().timeIntervalSince(started))) s")
        XCTAssertGreaterThanOrEqual(accuracy, DigitsTests.requiredAccuracy,
                                    "\(name): classifier read \(predictions) for prompts 0...9 (x\(DigitsTests.perDigit))", file: file, line: line)
    }

    /// The Swift classifier port reproduces the Python classifier's logits and readings on real digits
    /// (one example per class; the classifier itself is right on 9 of these 10).
    func testDigitReaderMatchesPythonClassifier() throws {
        let r = try reader()
        XCTAssertEqual(r.examples.count, 10)
        for e in r.examples {
            let logits = r.logits(e.image)
            for (a, b) in zip(logits, e.logits) { XCTAssertEqual(a, b, accuracy: 1e-3, "digit \(e.label)") }
            let pythonPrediction = e.logits.indices.max(by: { e.logits[$0] < e.logits[$1] })!
            XCTAssertEqual(r.predict(e.image), pythonPrediction, "digit \(e.label)")
        }
    }

    /// The default model (int8 matrices) draws the prompted digit.
    func testShippedInt8ModelDrawsPromptedDigits() throws {
        try assertReadsPromptedDigits("digits-int8.glw")
    }

    /// The higher-precision shipped model (f16) draws the prompted digit.
    func testShippedF16ModelDrawsPromptedDigits() throws {
        try assertReadsPromptedDigits("digits-f16.glw")
    }

    /// The shipped files are the small 16x16 GLIDE with the GPT-2 tokenizer embedded.
    func testShippedModelsAreSmallAndSelfContained() throws {
        for name in ["digits-int8.glw", "digits-f16.glw"] {
            let file = try WeightFile(path: try modelPath(name))
            XCTAssertEqual(file.hyperparameters["image_size"], .int(16), name)
            XCTAssertNotNil(file.tokenizerFiles["encoder.json.gz"], name)
            XCTAssertNotNil(file.tokenizerFiles["vocab.bpe.gz"], name)
        }
        let total = try ["digits-int8.glw", "digits-f16.glw"].reduce(0) { sum, name in
            sum + ((try FileManager.default.attributesOfItem(atPath: try modelPath(name))[.size] as? Int) ?? 0)
        }
        XCTAssertLessThanOrEqual(total, 25_000_000, "shipped models must stay within 25 MB together")
    }
}
