// Converter helpers: SHA-256 (provenance) and JSON output.
import XCTest
@testable import Converter

final class ConverterSupportTests: XCTestCase {
    func testSHA256KnownAnswers() {
        func hex(_ s: String) -> String { var h = SHA256(); Array(s.utf8).withUnsafeBytes { h.update($0) }; return h.finalizeHex() }
        XCTAssertEqual(hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        XCTAssertEqual(hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        XCTAssertEqual(hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
                       "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1")
        // Fed in odd-sized pieces.
        var h = SHA256()
        let million = [UInt8](repeating: UInt8(ascii: "a"), count: 1_000_000)
        million.withUnsafeBytes { b in
            var i = 0
            while i < b.count { let n = min(777, b.count - i); h.update(UnsafeRawBufferPointer(rebasing: b[i..<(i + n)])); i += n }
        }
        XCTAssertEqual(h.finalizeHex(), "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0")
    }

    func testLibraryAndSwiftSHA256Agree() {
        let data = (0..<100_003).map { UInt8(truncatingIfNeeded: $0 &* 2654435761 >> 7) }
        let fast = FastSHA256(), slow = FastSHA256(allowLibrary: false)
        XCTAssertEqual(slow.backend, "swift")
        data.withUnsafeBytes { b in
            for piece in stride(from: 0, to: b.count, by: 9_999) {
                let chunk = UnsafeRawBufferPointer(rebasing: b[piece..<min(piece + 9_999, b.count)])
                fast.update(chunk); slow.update(chunk)
            }
        }
        XCTAssertEqual(fast.finalizeHex(), slow.finalizeHex(), "backend \(fast.backend)")
    }

    func testJSONOutputIsSortedAndEscaped() {
        let v: JSONValue = .object(["b": .int(1), "a": .array([.string("x\"\n"), .double(0.1), .bool(true), .null])])
        XCTAssertEqual(v.encoded, #"{"a":["x\"\n",0.1,true,null],"b":1}"#)
        XCTAssertEqual(try JSONValue.parse(v.encoded), v)
        var quoted = ""
        JSONValue.appendQuoted("a\\b\t\u{1}", to: &quoted)
        XCTAssertEqual(quoted, #""a\\b\t\u0001""#)
    }
}
