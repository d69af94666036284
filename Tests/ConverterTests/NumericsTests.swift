import XCTest
@testable import Converter

final class NumericsTests: XCTestCase {
    func testF16DecodeThenEncodeIsIdentityForEveryPattern() {
        for h in 0...0xFFFF {
            let b = UInt16(h)
            let f = float(fromF16: b)
            if f.isNaN { XCTAssertTrue(float(fromF16: f16Bits(from: f)).isNaN); continue }
            XCTAssertEqual(f16Bits(from: f), b, "pattern \(String(b, radix: 16))")
        }
    }

    #if arch(x86_64) || arch(arm64)
    /// Our encoder against the compiler's Float16 conversion (IEEE round-to-nearest-even).
    func testF16EncodeMatchesNativeRounding() {
        var special: [Float] = [0, -0, 1, -1, 65504, 65519.99, 65520, -65520, 1e-8, 5.9604645e-8, 2.9802322e-8, 2.9802326e-8,
                                8.940697e-8, 6.1035156e-5, 6.1035152e-5, .infinity, -.infinity, 1 + 1.0 / 2048, 1 + 3.0 / 2048,
                                .leastNonzeroMagnitude, .greatestFiniteMagnitude, 1e10]
        var g = SystemRandomNumberGenerator()
        for _ in 0..<200_000 { special.append(Float(bitPattern: UInt32.random(in: 0...UInt32.max, using: &g))) }
        for x in special where !x.isNaN {
            XCTAssertEqual(f16Bits(from: x), Float16(x).bitPattern, "x = \(x) bits \(String(x.bitPattern, radix: 16))")
        }
    }
    #endif

    func testBF16RoundsToNearestEven() {
        XCTAssertEqual(bf16Bits(from: 1), 0x3F80)
        XCTAssertEqual(bf16Bits(from: Float(bitPattern: 0x3F80_8000)), 0x3F80)   // tie, even stays
        XCTAssertEqual(bf16Bits(from: Float(bitPattern: 0x3F81_8000)), 0x3F82)   // tie, odd rounds up
        XCTAssertEqual(bf16Bits(from: Float(bitPattern: 0x3F80_8001)), 0x3F81)
        XCTAssertEqual(bf16Bits(from: -.infinity), 0xFF80)
        XCTAssertTrue(float(fromBF16: bf16Bits(from: .nan)).isNaN)
        for h in stride(from: 0, through: 0xFFFF, by: 7) where !float(fromBF16: UInt16(h)).isNaN {
            XCTAssertEqual(bf16Bits(from: float(fromBF16: UInt16(h))), UInt16(h))
        }
    }

    func testInt8RowQuantization() {
        let row: [Float] = [0.5, -1.27, 0.01, 0, 1.0]
        var q = [Int8](repeating: 9, count: row.count)
        let scale = row.withUnsafeBufferPointer { r in q.withUnsafeMutableBufferPointer { quantizeRowInt8(r, into: $0.baseAddress!) } }
        XCTAssertEqual(scale, Float(1.27) / 127)
        XCTAssertEqual(q, [50, -127, 1, 0, 100])
        for (w, qi) in zip(row, q) { XCTAssertLessThanOrEqual(abs(w - Float(qi) * scale), scale / 2 * 1.00001) }
        var z = [Int8](repeating: 9, count: 3)
        let zs = [Float](repeating: 0, count: 3).withUnsafeBufferPointer { r in z.withUnsafeMutableBufferPointer { quantizeRowInt8(r, into: $0.baseAddress!) } }
        XCTAssertEqual(zs, 0); XCTAssertEqual(z, [0, 0, 0])
    }

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
