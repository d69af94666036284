// CLIP tokenizer on mojibake (UTF-8 decoded as Latin-1 / Windows-1252) against the reference's ftfy-based
// cleanup: Tests/Fixtures/tokenizer/clip_mojibake.json (tools/make_tokenizer_goldens.py --mojibake-only).
import XCTest
import Foundation
import TestSupport
@testable import GlideModel

final class ClipMojibakeTests: XCTestCase {
    func testMojibakeRepairsMatchReference() throws {
        let tok = try CLIPTokenizer(directory: requireShared("vocab").path)
        let g = try JSONSerialization.jsonObject(with: Data(contentsOf: TestPaths.fixture("tokenizer/clip_mojibake.json"))) as! [String: Any]
        var agreeing = 0
        let cases = g["cases"] as! [[String: Any]]
        for c in cases {
            let text = c["text"] as! String
            if tok.encode(text) == c["tokens"] as! [Int] { agreeing += 1 } else { print("differs: \(text.debugDescription)") }
        }
        var fuzzAgreeing = 0
        let fuzz = g["fuzz"] as! [[String: Any]]
        for c in fuzz {
            let text = c["text"] as! String
            if tok.encode(text) == c["tokens"] as! [Int] { fuzzAgreeing += 1 } else { print("fuzz differs: \(text.debugDescription)") }
        }
        print("CLIP tokenizer vs reference: \(agreeing)/\(cases.count) mojibake prompts, \(fuzzAgreeing)/\(fuzz.count) Latin-1-rich random strings")
        XCTAssertEqual(agreeing, cases.count, "\(agreeing)/\(cases.count) mojibake prompts, \(fuzzAgreeing)/\(fuzz.count) random strings")
    }

    func testStrictUTF8AndCharmaps() {
        XCTAssertEqual(TextCleanup.strictUTF8([0xC3, 0xA9]), ["\u{E9}"])
        XCTAssertNil(TextCleanup.strictUTF8([0xC3]))                  // truncated
        XCTAssertNil(TextCleanup.strictUTF8([0xE0, 0x80, 0x80]))      // overlong
        XCTAssertNil(TextCleanup.strictUTF8([0xED, 0xA0, 0x80]))      // surrogate
        XCTAssertEqual(TextCleanup.sloppyWindows1252Byte(0x2019), 0x92)
        XCTAssertEqual(TextCleanup.sloppyWindows1252Byte(0x81), 0x81)
        XCTAssertNil(TextCleanup.sloppyWindows1252Byte(0x100))
        XCTAssertEqual(String(String.UnicodeScalarView(TextCleanup.fixEncoding(Array("cafÃ©".unicodeScalars)))), "café")
        XCTAssertEqual(String(String.UnicodeScalarView(TextCleanup.fixEncoding(Array("naïve".unicodeScalars)))), "naïve")
    }
}
