// Checks both tokenizers against goldens from the genuine glide_text2im.
// Regenerate: /tmp/venv/bin/python tools/make_tokenizer_goldens.py  (writes Tests/Fixtures/tokenizer/)
// The GPT-2 vocabulary is the one embedded in the shipped digits model (Models/digits-int8.glw, the released
// files byte for byte); CLIP's comes from ../shared/vocab or $GLIDE_SHARED_DIR/vocab (skipped without it).
import XCTest
import Foundation
import TestSupport
import WeightFormat
@testable import GlideModel

final class TokenizerTests: XCTestCase {
    nonisolated(unsafe) static var gpt2: GPT2Tokenizer?
    nonisolated(unsafe) static var clip: CLIPTokenizer?

    private func gpt2() throws -> GPT2Tokenizer {
        if let t = Self.gpt2 { return t }
        let digits = try WeightFile(path: TestPaths.digitsModel.path)
        let t = try withExtendedLifetime(digits) { try GPT2Tokenizer(files: digits.tokenizerFiles) }   // the views live as long as the file
        Self.gpt2 = t
        return t
    }
    private func clip() throws -> CLIPTokenizer {
        if let t = Self.clip { return t }
        let t = try CLIPTokenizer(directory: try requireShared("vocab/bpe_simple_vocab_16e6.txt.gz").deletingLastPathComponent().path)
        Self.clip = t
        return t
    }
    private func golden(_ name: String) throws -> [String: Any] {
        try JSONSerialization.jsonObject(with: Data(contentsOf: TestPaths.fixture("tokenizer/" + name))) as! [String: Any]
    }

    func testGPT2MatchesReference() throws {
        let tok = try gpt2()
        let g = try golden("gpt2.json")
        XCTAssertEqual(tok.vocabularySize, g["n_vocab"] as? Int)
        XCTAssertEqual(tok.endToken, g["end_token"] as? Int)
        let ctx = g["text_ctx"] as! Int
        let cases = g["cases"] as! [[String: Any]]
        XCTAssertGreaterThan(cases.count, 30)
        for c in cases {
            let text = c["text"] as! String
            let ids = tok.encode(text)
            XCTAssertEqual(ids, c["tokens"] as! [Int], "tokens of \(text.debugDescription)")
            let (padded, mask) = tok.paddedTokensAndMask(ids, context: ctx)
            XCTAssertEqual(padded, c["padded"] as! [Int], "padded \(text.debugDescription)")
            XCTAssertEqual(mask, c["mask"] as! [Bool], "mask \(text.debugDescription)")
        }
        let fuzz = g["fuzz"] as! [[String: Any]]
        XCTAssertEqual(fuzz.count, 300)
        for c in fuzz {
            let text = c["text"] as! String
            XCTAssertEqual(tok.encode(text), c["tokens"] as! [Int], "fuzz tokens of \(text.debugDescription)")
        }
    }

    func testGPT2DecodeRoundTrips() throws {
        let tok = try gpt2()
        for text in ["an oil painting of a corgi", "café 🐶 日本語", "  spaces\tand\nlines "] {
            XCTAssertEqual(tok.decode(tok.encode(text)), text.lowercased())
        }
    }

    func testGPT2PreTokenizerPattern() {
        func split(_ s: String) -> [String] {
            let sc = Array(s.unicodeScalars)
            return GPT2Tokenizer.preTokenize(sc).map { String(String.UnicodeScalarView(sc[$0])) }
        }
        XCTAssertEqual(split("a  b"), ["a", " ", " b"])
        XCTAssertEqual(split("don't 42x !?"), ["don", "'t", " 42", "x", " !?"])
        XCTAssertEqual(split("end  "), ["end", "  "])
        XCTAssertEqual(split("a\nb"), ["a", "\n", "b"])
        XCTAssertEqual(split("'sea"), ["'s", "ea"])
    }

    func testCLIPMatchesReference() throws {
        let tok = try clip()
        let g = try golden("clip.json")
        XCTAssertEqual(tok.startToken, g["start_token"] as? Int)
        XCTAssertEqual(tok.endToken, g["end_token"] as? Int)
        let ctx = g["text_ctx"] as! Int
        for c in g["cases"] as! [[String: Any]] {
            let text = c["text"] as! String
            let ids = tok.encode(text)
            XCTAssertEqual(ids, c["tokens"] as! [Int], "tokens of \(text.debugDescription)")
            let (padded, length) = tok.paddedTokensAndLength(ids, context: ctx)
            XCTAssertEqual(padded, c["padded"] as! [Int], "padded \(text.debugDescription)")
            XCTAssertEqual(length, c["len"] as? Int, "len \(text.debugDescription)")
        }
        let fuzz = g["fuzz"] as! [[String: Any]]
        XCTAssertEqual(fuzz.count, 300)
        for c in fuzz {
            let text = c["text"] as! String
            XCTAssertEqual(tok.encode(text), c["tokens"] as! [Int], "fuzz tokens of \(text.debugDescription)")
        }
    }

    func testHTMLUnescapeLikePython() {
        func un(_ s: String) -> String { String(String.UnicodeScalarView(TextCleanup.htmlUnescape(Array(s.unicodeScalars)))) }
        XCTAssertEqual(un("&amp;&lt;&gt;&quot;"), "&<>\"")
        XCTAssertEqual(un("&copy 2024 &notit;"), "© 2024 ¬it;")
        XCTAssertEqual(un("&#233;&#xe9;&#X263A&#0;&#128;"), "éé☺\u{FFFD}€")
        XCTAssertEqual(un("&unknown; & &#;"), "&unknown; & &#;")
    }

    func testLoadsFromEmbeddedFilesAndFolder() throws {
        let digits = try WeightFile(path: TestPaths.digitsModel.path)
        let e = try XCTUnwrap(digits.tokenizerFiles["encoder.json.gz"]), b = try XCTUnwrap(digits.tokenizerFiles["vocab.bpe.gz"])
        let t = try GPT2Tokenizer(files: ["encoder.json.gz": e, "vocab.bpe.gz": b])
        XCTAssertEqual(t.vocabularySize, 50257)
        XCTAssertThrowsError(try GPT2Tokenizer(files: ["encoder.json.gz": e])) { err in
            XCTAssertEqual(err as? GlideModelError, .missingFile(name: "vocab.bpe.gz"))
        }
        // The same files in a folder.
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("glide-tokenizer-tests-\(getpid())")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        try Data(e).write(to: dir.appendingPathComponent("encoder.json.gz"))
        try Data(b).write(to: dir.appendingPathComponent("vocab.bpe.gz"))
        let fromFolder = try GPT2Tokenizer(directory: dir.path)
        XCTAssertEqual(fromFolder.encode("a corgi"), t.encode("a corgi"))
        // The library's choice: a folder first, else the first file embedding one, else a missingTokenizer error.
        XCTAssertEqual(try GPT2Tokenizer.load(directory: nil, embeddedIn: [digits]).encode("a corgi"), t.encode("a corgi"))
        XCTAssertEqual(try GPT2Tokenizer.load(directory: dir.path, embeddedIn: []).encode("a corgi"), t.encode("a corgi"))
        XCTAssertThrowsError(try GPT2Tokenizer.load(directory: nil, embeddedIn: [])) {
            XCTAssertEqual($0 as? GlideModelError, .missingTokenizer(model: "the model", kind: "GPT-2"))
        }
        XCTAssertThrowsError(try CLIPTokenizer.load(directory: nil, embeddedIn: [digits])) {
            XCTAssertEqual($0 as? GlideModelError, .missingTokenizer(model: digits.path, kind: "CLIP"))
        }
        withExtendedLifetime(digits) {}
    }

    // MARK: errors, each from the smallest bad input

    func testErrors() {
        XCTAssertThrowsError(try GPT2Tokenizer(directory: "/nonexistent")) { e in
            XCTAssertEqual(e as? GlideModelError, .missingFile(name: "/nonexistent/encoder.json.gz"))
        }
        XCTAssertThrowsError(try CLIPTokenizer(directory: "/nonexistent")) { e in
            XCTAssertEqual(e as? GlideModelError, .missingFile(name: "/nonexistent/bpe_simple_vocab_16e6.txt.gz"))
        }
        XCTAssertThrowsError(try GPT2Tokenizer(encoderJSON: [0x1F, 0x8B, 0x08, 0x00], vocabBPE: [])) { e in
            guard case GlideModelError.badGzip(let name, _) = e else { return XCTFail("\(e)") }
            XCTAssertEqual(name, "encoder.json")
        }
        XCTAssertThrowsError(try GPT2Tokenizer(encoderJSON: Array("{\"a\": x}".utf8), vocabBPE: [])) { e in
            XCTAssertEqual(e as? GlideModelError, .badEncoderJSON(reason: "expected an integer", offset: 6))
        }
        XCTAssertThrowsError(try GPT2Tokenizer(encoderJSON: Array("{\"a\": 0}".utf8), vocabBPE: Array("#v\na b c\n".utf8))) { e in
            XCTAssertEqual(e as? GlideModelError, .badMergeLine(name: "vocab.bpe", line: 2))
        }
        XCTAssertThrowsError(try TokenizerFiles.readFile("/nonexistent/x")) { e in
            guard case GlideModelError.cannotRead(let path, _) = e else { return XCTFail("\(e)") }
            XCTAssertEqual(path, "/nonexistent/x")
        }
    }

    // A vocabulary of the 256 byte symbols (ids 0...255), one merge "a b" -> "ab", and <|endoftext|>.
    private func tinyEncoderJSON(extra: [String] = ["ab"]) -> [UInt8] {
        var entries = ByteUnicodeMap.orderedSymbols + extra + ["<|endoftext|>"]
        entries = entries.map { s in
            s.unicodeScalars.map { $0.value < 0x80 && $0 != "\"" && $0 != "\\" ? String($0) : "\\u" + String(format: "%04x", $0.value) }.joined()
        }
        return Array(("{" + entries.enumerated().map { "\"\($0.element)\": \($0.offset)" }.joined(separator: ", ") + "}").utf8)
    }

    func testTinyVocabularyFromMemory() throws {
        let t = try GPT2Tokenizer(encoderJSON: tinyEncoderJSON(), vocabBPE: Array("#version: 0.2\na b\n".utf8))
        let a = ByteUnicodeMap.orderedSymbols.firstIndex(of: "a")!, b = ByteUnicodeMap.orderedSymbols.firstIndex(of: "b")!
        let space = ByteUnicodeMap.orderedSymbols.firstIndex(of: "\u{120}")!
        XCTAssertEqual(t.encode("AB ba"), [256, space, b, a])
        XCTAssertEqual(t.endToken, 257)
        XCTAssertEqual(t.paddedTokensAndMask([256, 3], context: 3).tokens, [256, 3, 257])
        XCTAssertEqual(t.paddedTokensAndMask([256, 3, 1, 0], context: 3).mask, [true, true, true])
        XCTAssertEqual(t.decode(t.encode("ab ba")), "ab ba")
    }

    func testMergeResultMissingFromVocabulary() {
        XCTAssertThrowsError(try GPT2Tokenizer(encoderJSON: tinyEncoderJSON(extra: []), vocabBPE: Array("#version: 0.2\na b\n".utf8))) { e in
            XCTAssertEqual(e as? GlideModelError, .tokenNotInVocabulary(token: "ab"))
        }
        XCTAssertThrowsError(try GPT2Tokenizer(encoderJSON: Array("{\"a\": 0}".utf8), vocabBPE: Array("#v\n".utf8))) { e in
            XCTAssertEqual(e as? GlideModelError, .tokenNotInVocabulary(token: "!"))
        }
    }
}
