// GenerationRecord: the text form round-trips, replay rebuilds the request and settings, and every way a
// record can be refused is thrown from its smallest bad input.
import XCTest
import WeightFormat
import TestSupport
@testable import GlideModel

final class GenerationRecordTests: XCTestCase {
    let digest = String(repeating: "ab", count: 32)
    lazy var model = GenerationRecord.ModelFile(fileName: "base-int8.glw", sha256: digest, weightType: "int8", kind: "base",
                                                sourceSHA256: String(repeating: "0", count: 64))
    lazy var record = GenerationRecord(
        tool: "glide-swift 1.2.3", command: .sample, prompt: "an oil painting of a corgi 🐶\nline two", seed: UInt64.max, batch: 3,
        base: .init(StageSettings(respacing: .ddim(50), sampler: .ddim, guidanceScale: 2.75)),
        upsample: .init(StageSettings(respacing: TimestepRespacing(.sections([10, 5])), sampler: .ddpm, guidanceScale: nil,
                                      startNoiseScale: 0.997)),
        model: model,
        upsampler: .init(fileName: "up.glw", sha256: String(repeating: "cd", count: 32), weightType: "bf16", kind: "upsample"))

    func fields(_ r: GenerationRecord) -> [(key: String, value: String)] { r.textFields }

    func assertInvalid(_ fields: [(key: String, value: String)], _ expected: GlideModelError,
                       file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertThrowsError(try GenerationRecord(textFields: fields), file: file, line: line) { e in
            XCTAssertEqual(e as? GlideModelError, expected, file: file, line: line)
        }
    }

    /// `fields` with `key`'s value replaced (or the field dropped for nil).
    func replacing(_ key: String, with value: String?, in r: GenerationRecord? = nil) -> [(key: String, value: String)] {
        fields(r ?? record).compactMap { $0.key == "glide:" + key ? value.map { v in (key: "glide:" + key, value: v) } : $0 }
    }

    func testTextFieldsRoundTripExactly() throws {
        XCTAssertEqual(try GenerationRecord(textFields: fields(record)), record)
        let keys = fields(record).map(\.key)
        XCTAssertEqual(Set(keys).count, keys.count, "one field per key")
        XCTAssertTrue(keys.allSatisfy { $0.hasPrefix("glide:") })
        XCTAssertEqual(fields(record).first { $0.key == "glide:seed" }?.value, "18446744073709551615")
        XCTAssertEqual(fields(record).first { $0.key == "glide:upsample-guidance" }?.value, "none")
        // Floats print in their shortest exact form, so they read back bit for bit.
        var odd = record
        odd.base.guidanceScale = Float(bitPattern: 0x4040_0001)
        XCTAssertEqual(try GenerationRecord(textFields: fields(odd)).base.guidanceScale, odd.base.guidanceScale)
        // One stage, inputs, other keys ignored.
        var single = record
        single.upsample = nil; single.upsampler = nil; single.command = .upsample; single.inputs = ["image": "a.png sha256:00"]
        XCTAssertEqual(try GenerationRecord(textFields: fields(single) + [(key: "Comment", value: "x")]), single)
    }

    func testReplayConfiguresPipelineAndRequest() throws {
        var r = record
        r.upsample = nil; r.upsampler = nil
        let base = try Text2ImUNet(path: TestPaths.digitsModel.path)
        var pipeline = try Text2ImPipeline(base: base)
        let request = try r.replay(on: &pipeline)
        XCTAssertEqual(request.prompt, r.prompt)
        XCTAssertEqual(request.seed, r.seed)
        XCTAssertEqual(request.batch, 3)
        XCTAssertEqual(pipeline.baseSettings.respacing, .ddim(50))
        XCTAssertEqual(pipeline.baseSettings.sampler, .ddim)
        XCTAssertEqual(pipeline.baseSettings.guidanceScale, 2.75)
        // The record has an upsampler, the pipeline none.
        XCTAssertThrowsError(try record.replay(on: &pipeline)) { e in
            XCTAssertEqual(e as? GlideModelError, .recordModelMismatch(role: "upsampler", field: "presence", recorded: "up.glw", actual: "none"))
        }
    }

    func testModelFileFromWeightFile() throws {
        let file = try WeightFile(path: TestPaths.digitsModel.path)
        let m = GenerationRecord.ModelFile(path: TestPaths.digitsModel.path, file: file, sha256: digest)
        XCTAssertEqual(m.fileName, "digits-int8.glw")
        XCTAssertEqual(m.weightType, "int8")
        XCTAssertEqual(m.kind, file.modelName)
        XCTAssertEqual(m.sourceSHA256?.count, 64)
        XCTAssertNil(GenerationRecord.sourceDigest(inMetadata: #"{"format":"glw"}"#))
        XCTAssertNil(GenerationRecord.requestedType(inMetadata: #"{"format":"glw"}"#))
        XCTAssertEqual(GenerationRecord.requestedType(inMetadata: #"{"quantization":{"policy":"p","requested":"bf16"}}"#), "bf16")
    }

    // MARK: - One test per failure

    func testFieldMissing() {
        assertInvalid(replacing("seed", with: nil), .recordFieldMissing(key: "glide:seed"))
        assertInvalid(replacing("model-sha256", with: nil), .recordFieldMissing(key: "glide:model-sha256"))
        assertInvalid(replacing("upsample-steps", with: nil), .recordFieldMissing(key: "glide:upsample-steps"))
        assertInvalid([], .recordFieldMissing(key: "glide:tool"))
    }

    func testFieldInvalid() {
        let cases: [(String, String, String)] = [
            ("seed", "-1", "an integer 0...2^64-1"), ("batch", "0", "a positive integer"), ("command", "paint", "sample, upsample or inpaint"),
            ("sampler", "euler", "ddpm or ddim"), ("guidance", "nan", "a finite number"), ("temperature", "0", "a positive number"),
            ("steps", "ddimx", "a respacing string (100, fast27, ddim50, 10,10,10)"), ("model-sha256", "ABC", "64 lowercase hex digits"),
        ]
        for (key, value, expected) in cases {
            assertInvalid(replacing(key, with: value), .recordFieldInvalid(key: "glide:" + key, expected: expected, actual: value))
        }
        assertInvalid(fields(record) + [(key: "glide:seed", value: "1")],
                      .recordFieldInvalid(key: "glide:seed", expected: "one value", actual: "given twice"))
    }

    func testNotReplayable() {
        var r = record
        r.command = .inpaint
        XCTAssertThrowsError(try r.checkReplayable()) { e in
            XCTAssertEqual(e as? GlideModelError, .recordNotReplayable(reason: "it was made by `glide inpaint`; only `glide sample` images replay"))
        }
        r = record
        r.inputs = ["tokens": "t.npy sha256:00", "vocab": "/v", "mask": "m.npy sha256:11"]
        XCTAssertEqual(r.externalInputs, ["mask", "tokens"])
        XCTAssertThrowsError(try r.checkReplayable()) { e in
            XCTAssertEqual(e as? GlideModelError, .recordNotReplayable(reason: "it was made from outside inputs (mask, tokens)"))
        }
        r.inputs = ["vocab": "/v"]
        XCTAssertNoThrow(try r.checkReplayable())
    }

    func testModelMismatch() {
        var other = model
        other.fileName = "base-f16.glw"; other.sha256 = String(repeating: "ef", count: 32)
        XCTAssertThrowsError(try record.checkModel(role: "model", actual: other)) { e in
            XCTAssertEqual(e as? GlideModelError, .recordModelMismatch(role: "model", field: "sha256", recorded: "base-int8.glw \(digest)",
                                                                       actual: "base-f16.glw \(other.sha256)"))
        }
        XCTAssertNoThrow(try record.checkModel(role: "model", actual: model))
        var r = record
        r.upsampler = nil
        XCTAssertThrowsError(try r.checkModel(role: "upsampler", actual: other)) { e in
            XCTAssertEqual(e as? GlideModelError, .recordModelMismatch(role: "upsampler", field: "presence", recorded: "no upsampler", actual: "base-f16.glw"))
        }
    }
}
