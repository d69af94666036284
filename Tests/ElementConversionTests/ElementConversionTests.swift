// ElementConversion: the one f16/bf16 codec and int8 reference quantizer of the converter and the kernels.
import XCTest
import ElementConversion

final class ElementConversionTests: XCTestCase {
    func testF16DecodeThenEncodeIsIdentityForEveryPattern() {
        for h in 0...0xFFFF {
            let b = UInt16(h)
            let f = f16ToF32(b)
            if f.isNaN { XCTAssertTrue(f16ToF32(f32ToF16(f)).isNaN); continue }
            XCTAssertEqual(f32ToF16(f), b, "pattern \(String(b, radix: 16))")
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
            XCTAssertEqual(f32ToF16(x), Float16(x).bitPattern, "x = \(x) bits \(String(x.bitPattern, radix: 16))")
        }
    }
    #endif

    func testBF16RoundsToNearestEven() {
        XCTAssertEqual(f32ToBF16(1), 0x3F80)
        XCTAssertEqual(f32ToBF16(Float(bitPattern: 0x3F80_8000)), 0x3F80)   // tie, even stays
        XCTAssertEqual(f32ToBF16(Float(bitPattern: 0x3F81_8000)), 0x3F82)   // tie, odd rounds up
        XCTAssertEqual(f32ToBF16(Float(bitPattern: 0x3F80_8001)), 0x3F81)
        XCTAssertEqual(f32ToBF16(-.infinity), 0xFF80)
        XCTAssertTrue(bf16ToF32(f32ToBF16(.nan)).isNaN)
        for h in stride(from: 0, through: 0xFFFF, by: 7) where !bf16ToF32(UInt16(h)).isNaN {
            XCTAssertEqual(f32ToBF16(bf16ToF32(UInt16(h))), UInt16(h))
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
}
