// CLISupport.swift: tokenizer loading from --vocab or the model file, the sampling commands' shared options,
// and `glide tokenize` on both tokenizer sources.
import XCTest
import WeightFormat
import TestSupport
@testable import GlideCLI

final class CLISupportTests: XCTestCase {
    func testAllocatorTuningIsAcceptedByGlibc() {
        #if canImport(Glibc)
        XCTAssertTrue(AllocatorTuning.apply(), "mallopt missing or refused the thresholds")
        #endif
    }

    /// The released GPT-2 tokenizer files, copied out of the shipped digits model into a folder.
    static func gpt2VocabFolder() throws -> String {
        let dir = EditCommandsTests.directory.appendingPathComponent("gpt2-vocab")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let digits = try WeightFile(path: TestPaths.digitsModel.path)
        for name in ["encoder.json.gz", "vocab.bpe.gz"] {
            try Data(try XCTUnwrap(digits.tokenizerFiles[name])).write(to: dir.appendingPathComponent(name))
        }
        withExtendedLifetime(digits) {}
        return dir.path
    }

    func testGPT2TokenizerFromVocabFolderOrEmbeddedFiles() throws {
        let fromFolder = try loadGPT2Tokenizer(vocab: try Self.gpt2VocabFolder(), model: nil)
        let digits = try WeightFile(path: TestPaths.digitsModel.path)
        let embedded = try loadGPT2Tokenizer(vocab: nil, model: digits)
        withExtendedLifetime(digits) {}
        XCTAssertFalse(fromFolder.encode("a corgi").isEmpty)
        XCTAssertEqual(fromFolder.encode("a corgi"), embedded.encode("a corgi"))
        // The pipeline fixture models embed a small GPT-2 vocabulary, but no CLIP one.
        let file = try WeightFile(path: try EditCommandsTests.converted("e2e_upsample"))
        XCTAssertFalse(try loadGPT2Tokenizer(vocab: nil, model: file).encode("green grass").isEmpty)
        XCTAssertThrowsError(try loadCLIPTokenizer(vocab: nil, model: file)) {
            XCTAssertTrue("\($0)".contains("\(file.path) has no embedded CLIP tokenizer and no tokenizer folder was given; pass --vocab DIR"), "\($0)")
        }
        XCTAssertThrowsError(try loadGPT2Tokenizer(vocab: nil, model: nil)) {
            XCTAssertTrue("\($0)".contains("has no embedded GPT-2 tokenizer and no tokenizer folder was given; pass --vocab DIR"), "\($0)")
        }
    }

    func testCLIPTokenizerFromVocabFolder() throws {
        let clip = try loadCLIPTokenizer(vocab: try requireShared("vocab/bpe_simple_vocab_16e6.txt.gz").deletingLastPathComponent().path,
                                         model: nil)
        XCTAssertFalse(clip.encode("a corgi").isEmpty)
    }

    func testTokenizeRunsOnFolderAndModel() throws {
        var command = try Tokenize.parse(["a corgi", "--vocab", try Self.gpt2VocabFolder(), "--json"])
        try command.run()
        command = try Tokenize.parse(["green grass", "--model", try EditCommandsTests.converted("e2e_upsample")])
        try command.run()
        command = try Tokenize.parse(["green grass", "--model", try EditCommandsTests.converted("e2e_upsample"), "--clip"])
        XCTAssertThrowsError(try command.run()) { XCTAssertTrue("\($0)".contains("no embedded CLIP tokenizer"), "\($0)") }
    }

    func testTokenizeCLIPFromFolder() throws {
        let vocab = try requireShared("vocab/bpe_simple_vocab_16e6.txt.gz").deletingLastPathComponent().path
        var command = try Tokenize.parse(["a corgi", "--vocab", vocab, "--clip"])
        try command.run()
    }

    func testSharedSamplingOptionsParseAndValidate() throws {
        let grass = "grass.png"   // parsed only
        let up = try Upsample.parse([grass, "p", "--upsampler", "u.glw", "--seed", "7", "--threads", "2",
                                     "--vocab", "v", "--quiet"])
        XCTAssertEqual(up.common.seed, 7)
        XCTAssertEqual(up.common.threads, 2)
        XCTAssertEqual(up.common.vocab, "v")
        XCTAssertTrue(up.common.quiet)
        XCTAssertEqual(up.common.seedOrRandom(), 7)
        XCTAssertThrowsError(try Upsample.parse([grass, "p", "--upsampler", "u.glw", "--threads", "0"]))
        XCTAssertThrowsError(try Inpaint.parse(["p", "--image", grass, "--model", "m.glw", "--keep-rect", "0,0,1,1",
                                                "--threads", "0"]))
        let inpaint = try Inpaint.parse(["p", "--image", grass, "--model", "m.glw", "--keep-rect", "0,0,1,1"])
        XCTAssertNil(inpaint.common.seed)
        XCTAssertFalse(inpaint.common.quiet)
    }
}
