import ElementConversion
import Foundation
import XCTest
import Checkpoint
import TestSupport
import WeightFormat
@testable import Converter

/// Conversion of small real torch.save fixtures (tools/make_weightformat_fixtures.py and tools/make_fixtures.py).
final class ConversionTests: XCTestCase {
    var dir = ""
    override func setUp() {
        dir = NSTemporaryDirectory() + "glw-conv-\(getpid())-\(UUID().uuidString.prefix(8))"
        try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    }
    override func tearDown() { try? FileManager.default.removeItem(atPath: dir) }

    func fixture(_ name: String) -> String { TestPaths.fixture(name).path }

    @discardableResult
    func convert(_ src: String, _ target: WeightDType, config: String? = nil, tokenizer: String? = nil,
                 to name: String? = nil, overwrite: Bool = false) throws -> (String, ConversionSummary) {
        var o = ConversionOptions()
        o.target = target
        o.configPath = config
        o.tokenizerDirectory = tokenizer
        o.overwrite = overwrite
        let out = dir + "/" + (name ?? "\((src as NSString).lastPathComponent)-\(target).glw")
        return (out, try convertCheckpoint(source: src, destination: out, options: o))
    }

    func assertSound(_ glw: String, against src: String, file: StaticString = #filePath, line: UInt = #line) throws -> VerificationReport {
        let r = try verifyGLW(path: glw, against: src)
        XCTAssertTrue(r.isSound, "\(r.comparisons.filter(\.isMismatch).map { "\($0.name): \($0.outcome)" }) \(r.checksumFailures) \(r.missingFromFile) \(r.missingFromSource)", file: file, line: line)
        return r
    }

    // MARK: - Round trips per dtype

    func testTinyUNetEveryTargetIsSound() throws {
        let src = fixture("weightformat/tiny_unet.pt")
        for target in [WeightDType.f32, .f16, .bf16, .int8] {
            let (out, summary) = try convert(src, target, config: fixture("weightformat/tiny_unet_options.json"))
            XCTAssertEqual(summary.model, "unet")
            let r = try assertSound(out, against: src)
            let f = try WeightFile(path: out, verifyChecksums: true)
            XCTAssertEqual(f.tensorNames, try TorchCheckpoint(path: src).tensors.map(\.name), "names unchanged, file order")
            XCTAssertEqual(f.tensor("out.0.bias")?.dtype, .f32, "vectors stay f32")
            XCTAssertEqual(f.tensor("input_blocks.0.0.weight")?.dtype, .f32, "tiny tensors stay f32")
            XCTAssertEqual(f.tensor("output_blocks.0.0.in_layers.2.weight")?.dtype, target, "matrices take the requested type")
            XCTAssertEqual(f.tensor("token_embedding.weight")?.dtype, target == .int8 ? .f16 : target, "embeddings")
            if target == .f32 { XCTAssertTrue(r.comparisons.allSatisfy { $0.outcome == .exact }) }
            if target == .int8 {
                let q = try XCTUnwrap(f.tensor("output_blocks.0.0.in_layers.2.weight"))
                XCTAssertEqual(q.scales?.count, 32)
                let e = try XCTUnwrap(r.int8RelativeError)
                XCTAssertLessThan(e, 0.02, "per-row int8 relative error on Gaussian weights is about 1%")
                XCTAssertGreaterThan(e, 0.001)
            }
        }
    }

    func testDTypesFixtureMatchesTorchBytes() throws {
        // Every source dtype: f32 f16 bf16 f64 i64 i32 i16 i8 u8 bool (all tiny, so stored f32 / int64 / bool).
        let src = fixture("checkpoint/dtypes.pt")
        let (out, summary) = try convert(src, .int8)
        XCTAssertEqual(summary.model, "tensors")
        _ = try assertSound(out, against: src)
        let f = try WeightFile(path: out)
        let json = try JSONSerialization.jsonObject(with: Data(contentsOf: TestPaths.fixture("checkpoint/dtypes.json"))) as! [String: Any]
        let tensors = json["tensors"] as! [[String: Any]]
        func bytes(_ name: String) -> [UInt8] {
            let hex = tensors.first { $0["name"] as! String == name }!["hex"] as! String
            var out: [UInt8] = []
            var i = hex.startIndex
            while i < hex.endIndex { let j = hex.index(i, offsetBy: 2); out.append(UInt8(hex[i..<j], radix: 16)!); i = j }
            return out
        }
        XCTAssertEqual(Array(f.tensor("f32")!.data), bytes("f32"))
        XCTAssertEqual(f.tensor("f16")!.dtype, .f32)
        let halves = bytes("f16").withUnsafeBytes { Array($0.bindMemory(to: UInt16.self)) }
        XCTAssertEqual(Array(f.tensor("f16")!.data.bindMemory(to: Float.self)), halves.map { f16ToF32($0) })
        XCTAssertEqual(Array(f.tensor("i64")!.data), bytes("i64"))
        XCTAssertEqual(f.tensor("i8")!.dtype, .i64)
        XCTAssertEqual(Array(f.tensor("i8")!.data.bindMemory(to: Int64.self)), bytes("i8").map { Int64(Int8(bitPattern: $0)) })
        XCTAssertEqual(f.tensor("bool")!.dtype, .bool)
        XCTAssertEqual(Array(f.tensor("bool")!.data), bytes("bool"))
    }

    func testViewsLegacyAndDeflatedSources() throws {
        for name in ["checkpoint/views.pt", "checkpoint/views_legacy.pt", "checkpoint/dtypes_legacy.pt", "checkpoint/dtypes_deflated.pt"] {
            let src = fixture(name)
            let (out, _) = try convert(src, .f16)
            _ = try assertSound(out, against: src)
        }
        let f = try WeightFile(path: dir + "/views.pt-f16.glw")
        XCTAssertEqual(f.tensor("scalar")?.shape, [])
        XCTAssertEqual(f.tensor("empty")?.shape, [0, 3])
    }

    func testHalfPrecisionSources() throws {
        let f16 = fixture("weightformat/tiny_unet_f16.pt")
        for target in [WeightDType.f32, .f16, .bf16, .int8] {
            let (out, summary) = try convert(f16, target, config: fixture("weightformat/tiny_unet_options.json"))
            XCTAssertEqual(summary.model, "unet")
            _ = try assertSound(out, against: f16)
        }
        let bf16 = fixture("weightformat/tiny_clip_image_bf16.pt")
        for target in [WeightDType.bf16, .f16, .int8] {
            let (out, summary) = try convert(bf16, target, config: fixture("weightformat/tiny_clip_image_config.json"))
            XCTAssertEqual(summary.model, "clip-image-encoder")
            _ = try assertSound(out, against: bf16)
        }
        // f16 -> f16 copies the bits.
        let same = try WeightFile(path: dir + "/tiny_unet_f16.pt-f16.glw")
        let ck = try TorchCheckpoint(path: f16)
        let w = try XCTUnwrap(ck.tensor(named: "output_blocks.0.0.in_layers.2.weight"))
        XCTAssertEqual(same.tensor(w.name)?.dtype, .f16)
        w.withContiguousBytes { XCTAssertEqual(Array($0), Array(same.tensor(w.name)!.data)) }
    }

    func testSameInputGivesSameBytes() throws {
        let src = fixture("weightformat/tiny_clip_text.pt")
        let cfg = fixture("weightformat/tiny_clip_text_config.json")
        let (a, _) = try convert(src, .int8, config: cfg, to: "a.glw")
        let (b, _) = try convert(src, .int8, config: cfg, to: "b.glw")
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: a)), try Data(contentsOf: URL(fileURLWithPath: b)))
    }

    func testMetadataRecordsHyperparametersProvenanceAndPolicy() throws {
        let src = fixture("weightformat/tiny_clip_text.pt")
        let (out, summary) = try convert(src, .int8, config: fixture("weightformat/tiny_clip_text_config.json"))
        let f = try WeightFile(path: out)
        XCTAssertEqual(f.modelName, "clip-text-encoder")
        XCTAssertEqual(f.hyperparameters["n_vocab"], .int(100))
        XCTAssertEqual(f.hyperparameters["logit_scale"], .double(100))
        XCTAssertEqual(f.hyperparameters["n_head_text"], .int(2))
        let meta = try JSONValue.parse(f.metadataJSON)
        let data = try Data(contentsOf: URL(fileURLWithPath: src))
        var sha = SHA256(); data.withUnsafeBytes { sha.update($0) }
        XCTAssertEqual(meta["provenance"]?["source"]?["sha256"]?.stringValue, sha.finalizeHex())
        XCTAssertEqual(summary.sourceSHA256, meta["provenance"]?["source"]?["sha256"]?.stringValue)
        XCTAssertEqual(meta["provenance"]?["source"]?["size"], .int(data.count))
        XCTAssertEqual(meta["provenance"]?["source"]?["name"]?.stringValue, "tiny_clip_text.pt")
        XCTAssertEqual(meta["quantization"]?["policy"]?.stringValue, "glw-policy-2")
        XCTAssertEqual(meta["quantization"]?["tensors"]?["blocks.input.w_voc"]?["rule"]?.stringValue, "tiny")
        XCTAssertEqual(meta["quantization"]?["tensors"]?["blocks.block_0.f_attn.f_q.b"]?["rule"]?.stringValue, "vector")
    }

    func testEmbedsTheCLIPVocabulary() throws {
        let vocabFile = try requireShared("vocab/bpe_simple_vocab_16e6.txt.gz")
        let (out, _) = try convert(fixture("weightformat/tiny_clip_text.pt"), .int8,
                                   config: fixture("weightformat/tiny_clip_text_config.json"),
                                   tokenizer: vocabFile.deletingLastPathComponent().path)
        let f = try WeightFile(path: out)
        XCTAssertEqual(try JSONValue.parse(f.metadataJSON)["tokenizer"]?["kind"]?.stringValue, "clip-bpe")
        XCTAssertEqual(f.tokenizerFiles["bpe_simple_vocab_16e6.txt.gz"].map { Data($0) }, try Data(contentsOf: vocabFile))
    }

    // MARK: - Requantization

    func testRequantizeWithoutTheOriginal() throws {
        let src = fixture("weightformat/tiny_unet.pt")
        let cfg = fixture("weightformat/tiny_unet_options.json")
        let (f32, _) = try convert(src, .f32, config: cfg)
        let (direct, _) = try convert(src, .int8, config: cfg)
        var o = ConversionOptions()
        o.target = .int8
        var warnings: [String] = []
        let requant = dir + "/requant.glw"
        _ = try requantize(source: f32, destination: requant, options: o)
        let a = try WeightFile(path: direct), b = try WeightFile(path: requant, verifyChecksums: true)
        for t in a.tensors {
            XCTAssertEqual(Array(t.data), Array(b.tensor(t.name)!.data), t.name)
            XCTAssertEqual(t.scales.map(Array.init), b.tensor(t.name)!.scales.map(Array.init), t.name)
        }
        XCTAssertEqual(b.hyperparameters, a.hyperparameters)
        let meta = try JSONValue.parse(b.metadataJSON)
        XCTAssertEqual(meta["provenance"]?["derived_from"]?["source"]?["name"]?.stringValue, "tiny_unet.pt")
        _ = try assertSound(requant, against: src)

        // int8 back to f32: allowed, says it is lossy, and equals the dequantized values.
        o.target = .f32
        o.warn = { warnings.append($0) }
        let back = dir + "/back.glw"
        _ = try requantize(source: requant, destination: back, options: o)
        XCTAssertTrue(warnings.contains { $0.contains("lossy") }, "\(warnings)")
        let r = try verifyGLW(path: back, against: requant)
        XCTAssertTrue(r.isSound)
        XCTAssertTrue(r.comparisons.allSatisfy { $0.outcome == .exact })
    }

    // MARK: - Safety

    func testNeverOverwritesWithoutForce() throws {
        let src = fixture("weightformat/tiny_clip_text.pt")
        let out = dir + "/exists.glw"
        try Data("keep".utf8).write(to: URL(fileURLWithPath: out))
        XCTAssertThrowsError(try convert(src, .f32, to: "exists.glw")) {
            XCTAssertEqual($0 as? WeightFormatError, .destinationExists(path: out))
        }
        XCTAssertEqual(try String(contentsOfFile: out, encoding: .utf8), "keep")
        XCTAssertNoThrow(try convert(src, .f32, to: "exists.glw", overwrite: true))
        XCTAssertNoThrow(try WeightFile(path: out))
    }

    func testFailureMidwayLeavesNothing() throws {
        let src = fixture("weightformat/bad_values.pt")
        XCTAssertThrowsError(try convert(src, .int8, to: "bad.glw")) {
            guard case let .valueOutOfRange(tensor, target, value) = $0 as? ConverterError else { return XCTFail("\($0)") }
            XCTAssertEqual(tensor, "nan_matrix"); XCTAssertEqual(target, "int8"); XCTAssertTrue(value.isNaN)
        }
        XCTAssertThrowsError(try convert(src, .f16, to: "bad.glw")) {
            XCTAssertEqual($0 as? ConverterError, .valueOutOfRange(tensor: "huge_matrix", target: "f16", value: 1e6))
        }
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir), [], "no destination and no temporary file")
        XCTAssertNoThrow(try convert(src, .bf16, to: "bad.glw"), "bf16 holds 1e6 and NaN")
    }

    func testDamagedSourceIsRefused() throws {
        var bytes = [UInt8](try Data(contentsOf: TestPaths.fixture("weightformat/tiny_clip_text.pt")))
        let ck = try TorchCheckpoint(path: fixture("weightformat/tiny_clip_text.pt"))
        let entry = try XCTUnwrap(ck.zipEntries.first { $0.name.hasSuffix("data/0") })
        bytes[entry.dataOffset + 3] ^= 0x10
        let bad = dir + "/damaged.pt"
        try Data(bytes).write(to: URL(fileURLWithPath: bad))
        XCTAssertThrowsError(try convert(bad, .f32, to: "d.glw")) {
            guard case let .sourceChecksumMismatch(name, _, _) = $0 as? ConverterError else { return XCTFail("\($0)") }
            XCTAssertEqual(name, entry.name)
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir + "/d.glw"))
    }

    func testVerifyFindsADifferentSource() throws {
        let (out, _) = try convert(fixture("weightformat/tiny_unet.pt"), .f16, config: fixture("weightformat/tiny_unet_options.json"))
        // Against torch's own .half() of the same weights: our f16 rounding must give torch's bits for every
        // f16-stored tensor, while the tensors kept f32 differ from their f16 copies.
        let r = try verifyGLW(path: out, against: fixture("weightformat/tiny_unet_f16.pt"))
        XCTAssertFalse(r.isSound)
        for c in r.comparisons {
            if c.storedType == .f16 { XCTAssertEqual(c.outcome, .exact, c.name) }
            if c.storedType == .f32, c.rmse > 0 { XCTAssertTrue(c.isMismatch, c.name) }
        }
        XCTAssertGreaterThanOrEqual(r.comparisons.filter { $0.storedType == .f16 }.count, 5)
        let other = try verifyGLW(path: out, against: fixture("weightformat/tiny_clip_text.pt"))
        XCTAssertFalse(other.isSound)
        XCTAssertFalse(other.missingFromFile.isEmpty)
    }

    func testConverterErrorsFromTheSmallestBadInput() throws {
        let src = fixture("weightformat/tiny_clip_text.pt")
        XCTAssertThrowsError(try convert(src, .i64, to: "x.glw")) { XCTAssertEqual($0 as? ConverterError, .unsupportedTargetType("i64")) }
        XCTAssertThrowsError(try convert(src, .f32, config: dir + "/none.json", to: "x.glw")) {
            XCTAssertEqual($0 as? ConverterError, .io(path: dir + "/none.json", operation: "open", errno: ENOENT))
        }
        let badJSON = dir + "/bad.json"
        try Data("{nope".utf8).write(to: URL(fileURLWithPath: badJSON))
        XCTAssertThrowsError(try convert(src, .f32, config: badJSON, to: "x.glw")) {
            guard case .invalidConfig = $0 as? ConverterError else { return XCTFail("\($0)") }
        }
        let nested = dir + "/nested.json"
        try Data(#"{"n_vocab": [1]}"#.utf8).write(to: URL(fileURLWithPath: nested))
        XCTAssertThrowsError(try convert(src, .f32, config: nested, to: "x.glw")) {
            guard case .invalidConfig = $0 as? ConverterError else { return XCTFail("\($0)") }
        }
        XCTAssertThrowsError(try convert(src, .f32, config: fixture("weightformat/tiny_clip_text_config.json"), tokenizer: dir, to: "x.glw")) {
            XCTAssertEqual($0 as? ConverterError, .tokenizerFileMissing(path: dir + "/bpe_simple_vocab_16e6.txt.gz"))
        }
        let (out, _) = try convert(src, .f32, to: "same.glw")
        var o = ConversionOptions(); o.overwrite = true
        XCTAssertThrowsError(try requantize(source: out, destination: out, options: o)) {
            XCTAssertEqual($0 as? ConverterError, .sameSourceAndDestination(path: out))
        }
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir).filter { !$0.hasSuffix(".json") }, ["same.glw"])
    }
}

extension TensorComparison {
    var isMismatch: Bool { if case .mismatch = outcome { return true }; return false }
}
