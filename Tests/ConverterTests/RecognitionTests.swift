import Foundation
import XCTest
import TestSupport
import WeightFormat
@testable import Converter

/// Recognition of the six released models from their exact tensor names and shapes
/// (Tests/Fixtures/weightformat/released_shapes.json, made by tools/make_weightformat_fixtures.py from the reference code).
final class RecognitionTests: XCTestCase {
    func released() throws -> [String: [(name: String, shape: [Int])]] {
        let json = try JSONSerialization.jsonObject(with: Data(contentsOf: TestPaths.fixture("weightformat/released_shapes.json"))) as! [String: [[Any]]]
        return json.mapValues { $0.map { ($0[0] as! String, $0[1] as! [Int]) } }
    }

    func testRecognisesEachReleasedModel() throws {
        let models = try released()
        XCTAssertEqual(Set(models.keys), ["base", "upsample", "base-inpaint", "upsample-inpaint", "clip/image-enc", "clip/text-enc"])
        for (name, tensors) in models {
            let d = try ModelRecognizer.describe(tensors: tensors, config: nil)
            XCTAssertEqual(d.model, name)
            XCTAssertTrue(d.warnings.isEmpty, "\(name): \(d.warnings)")
        }
        let base = try ModelRecognizer.describe(tensors: models["base"]!, config: nil).hyperparameters
        XCTAssertEqual(base["image_size"], .int(64)); XCTAssertEqual(base["num_res_blocks"], .int(3))
        XCTAssertEqual(base["noise_schedule"], .string("squaredcos_cap_v2")); XCTAssertEqual(base["n_vocab"], .int(50257))
        XCTAssertEqual(Set(base.keys), Set(ModelRecognizer.unetDefaults.keys).union(["n_vocab"]))
        let up = try ModelRecognizer.describe(tensors: models["upsample-inpaint"]!, config: nil).hyperparameters
        XCTAssertEqual(up["image_size"], .int(256)); XCTAssertEqual(up["num_res_blocks"], .int(2))
        XCTAssertEqual(up["noise_schedule"], .string("linear")); XCTAssertEqual(up["inpaint"], .bool(true)); XCTAssertEqual(up["super_res"], .bool(true))
        let clip = try ModelRecognizer.describe(tensors: models["clip/image-enc"]!, config: nil)
        XCTAssertEqual(clip.hyperparameters, ModelRecognizer.clipDefaults)
        XCTAssertEqual(clip.tokenizerFiles, ["bpe_simple_vocab_16e6.txt.gz"])
    }

    func testInferredStructureMatchesTheReferenceOptions() throws {
        // Every option visible in the tensors must be inferred as the reference built it.
        for (name, tensors) in try released() where !name.hasPrefix("clip") {
            var shapes: [String: [Int]] = [:]
            for t in tensors { shapes[t.name] = t.shape }
            let (inferred, _) = try XCTUnwrap(ModelRecognizer.inferUNet(shapes))
            let expected = name.hasPrefix("upsample") ? ModelRecognizer.upsamplerDefaults : ModelRecognizer.unetDefaults
            for (k, v) in inferred where k != "n_vocab" && k != "inpaint" { XCTAssertEqual(v, expected[k], "\(name) \(k)") }
        }
    }

    func testAlteredReleasedModelIsNotMistakenForIt() throws {
        var base = try released()["base"]!
        base.removeLast()   // one tensor short
        let d = try ModelRecognizer.describe(tensors: base, config: nil)
        XCTAssertEqual(d.model, "tensors")
        XCTAssertTrue(d.warnings.first?.contains("options file") ?? false)
        XCTAssertFalse(d.warnings.joined().contains("--"), "library warnings name no CLI flags")
    }

    func testConfigGivesOtherGLIDEModels() throws {
        let opts = try loadConfig(TestPaths.fixture("weightformat/tiny_unet_options.json").path)
        let ck = try Checkpoint.TorchCheckpoint(path: TestPaths.fixture("weightformat/tiny_unet.pt").path)
        let tensors = ck.tensors.map { ($0.name, $0.shape) }
        let plain = try ModelRecognizer.describe(tensors: tensors, config: nil)
        XCTAssertEqual(plain.family, .plain)
        let d = try ModelRecognizer.describe(tensors: tensors, config: opts)
        XCTAssertEqual(d.model, "unet")
        for (k, v) in opts { XCTAssertTrue(d.hyperparameters[k] == v || k == "channel_mult", "\(k): \(String(describing: d.hyperparameters[k])) vs \(v)") }
        XCTAssertEqual(d.hyperparameters["channel_mult"], .string("1,1"))
        XCTAssertEqual(d.hyperparameters["n_vocab"], .int(50257))
    }

    func testConfigThatContradictsTheTensorsIsRefused() throws {
        var opts = try loadConfig(TestPaths.fixture("weightformat/tiny_unet_options.json").path)
        opts["num_res_blocks"] = .int(2)
        let ck = try Checkpoint.TorchCheckpoint(path: TestPaths.fixture("weightformat/tiny_unet.pt").path)
        XCTAssertThrowsError(try ModelRecognizer.describe(tensors: ck.tensors.map { ($0.name, $0.shape) }, config: opts)) {
            guard case let .configMismatch(option, config, checkpoint, _) = $0 as? ConverterError else { return XCTFail("\($0)") }
            XCTAssertEqual(option, "num_res_blocks"); XCTAssertEqual(config, "2"); XCTAssertEqual(checkpoint, "1")
        }
        var clip = try loadConfig(TestPaths.fixture("weightformat/tiny_clip_text_config.json").path)
        clip["n_head_text"] = .int(3)
        let text = try Checkpoint.TorchCheckpoint(path: TestPaths.fixture("weightformat/tiny_clip_text.pt").path)
        XCTAssertThrowsError(try ModelRecognizer.describe(tensors: text.tensors.map { ($0.name, $0.shape) }, config: clip)) {
            guard case .configMismatch = $0 as? ConverterError else { return XCTFail("\($0)") }
        }
    }
}

import Checkpoint
