// GlideModelError messages: one line each, naming what they are about. (Each case is thrown from its
// smallest bad input in TokenizerTests, DiffusionTests, NetworkTests and PipelineTests.)
import XCTest
import GlideModel

final class GlideModelErrorTests: XCTestCase {
    func testEveryCaseDescribesItselfOnOneLineWithItsSubject() {
        let cases: [(GlideModelError, [String])] = [
            (.cannotRead(path: "/x/encoder.json.gz", reason: "No such file"), ["/x/encoder.json.gz", "No such file"]),
            (.missingFile(name: "vocab.bpe.gz"), ["vocab.bpe.gz"]),
            (.badGzip(name: "encoder.json", reason: "incorrect header check"), ["encoder.json", "incorrect header check"]),
            (.badEncoderJSON(reason: "expected an integer", offset: 6), ["expected an integer", "6"]),
            (.badMergeLine(name: "vocab.bpe", line: 2), ["vocab.bpe", "line 2"]),
            (.tokenNotInVocabulary(token: "ab"), ["'ab'"]),
            (.unknownSchedule(name: "cosine"), ["'cosine'", "squaredcos_cap_v2"]),
            (.badRespacing(spec: "ddimx", reason: "not a number"), ["'ddimx'", "not a number"]),
            (.tooFewSteps(spec: "1", steps: 1), ["'1'", "1 step"]),
            (.badSampleShape(shape: [1, 3, 2]), ["[1, 3, 2]"]),
            (.modelOutputSize(expected: 8, actual: 4), ["8", "4"]),
            (.noiseShapeMismatch(name: "start", expected: [1, 1, 2, 2], actualCount: 3), ["start", "[1, 1, 2, 2]", "3"]),
            (.noiseBatchTooSmall(name: "step", needed: 2, available: 1), ["step", "2", "1"]),
            (.missingTensor(name: "out.2.bias", expectedShape: [6]), ["'out.2.bias'", "[6]"]),
            (.tensorShapeMismatch(name: "out.2.bias", expected: [6], actual: [3]), ["'out.2.bias'", "[6]", "[3]"]),
            (.unexpectedTensor(name: "label_emb.weight", shape: [2]), ["'label_emb.weight'", "[2]"]),
            (.unsupportedTensorDType(name: "w", expected: "f32", actual: "i64"), ["'w'", "f32", "i64"]),
            (.invalidHyperparameter(name: "num_heads", expected: "a positive integer", actual: "0"),
             ["'num_heads'", "a positive integer", "0"]),
            (.invalidInput(name: "timesteps", expected: "[2]", actual: "[1]"), ["'timesteps'", "[2]", "[1]"]),
            (.missingInput(name: "low_res", model: "SuperResText2ImUNet"), ["low_res", "SuperResText2ImUNet"]),
            (.unexpectedInput(name: "inpaint_image", model: "SuperResText2ImUNet"), ["inpaint_image", "SuperResText2ImUNet"]),
            (.inputShapeMismatch(name: "x", expected: [-1, 3], actual: [2, 4]), ["x", "[*, 3]", "[2, 4]"]),
            (.recordFieldMissing(key: "glide:seed"), ["glide:seed"]),
            (.recordFieldInvalid(key: "glide:seed", expected: "an integer", actual: "x"), ["glide:seed", "an integer", "'x'"]),
            (.recordNotReplayable(reason: "made by glide upsample"), ["replay", "made by glide upsample"]),
            (.recordModelMismatch(role: "model", field: "sha256", recorded: "a.glw 00", actual: "b.glw 11"),
             ["model", "sha256", "a.glw 00", "b.glw 11"]),
        ]
        for (error, parts) in cases {
            let text = error.description
            XCTAssertFalse(text.isEmpty)
            XCTAssertFalse(text.contains("\n"), text)
            for part in parts { XCTAssertTrue(text.contains(part), "'\(text)' should mention \(part)") }
        }
    }
}
