import XCTest
@testable import Imaging

/// Damaged inputs must end in an `ImagingError` or a valid image, never a crash or a huge allocation.
final class RobustnessTests: XCTestCase {
    /// Every prefix of a small PNG and a small JPEG.
    func testEveryTruncationThrowsCleanly() throws {
        for name in ["png_c3_d4_i.png", "png_c6_d16.png", "jpeg_grey.jpg"] {
            let bytes = try fixtureBytes(name)
            for n in stride(from: 0, to: bytes.count, by: max(1, bytes.count / 150)) {
                do {
                    let image = try decodeImage(bytes: Array(bytes.prefix(n)))
                    XCTAssertEqual(image.pixels.count, image.width * image.height * 3)
                } catch is ImagingError {
                } catch { XCTFail("\(name) prefix \(n): \(error)") }
            }
        }
    }

    /// Deterministic single-byte corruptions (xorshift positions and values).
    func testRandomByteCorruption() throws {
        var state: UInt64 = 0x9E37_79B9_7F4A_7C15
        func next() -> UInt64 { state ^= state << 13; state ^= state >> 7; state ^= state << 17; return state }
        for name in ["png_c2_d8_i.png", "png_c0_d2.png", "jpeg_progressive.jpg", "jpeg_420.jpg"] {
            let original = try fixtureBytes(name)
            for _ in 0..<120 {
                var bytes = original
                let count = 1 + Int(next() % 3)
                for _ in 0..<count { bytes[Int(next() % UInt64(bytes.count))] = UInt8(truncatingIfNeeded: next()) }
                do {
                    let image = try decodeImage(bytes: bytes, maxPixels: 1 << 20)
                    XCTAssertEqual(image.pixels.count, image.width * image.height * 3)
                } catch is ImagingError {
                } catch { XCTFail("\(name): \(error)") }
            }
        }
    }

    /// A zlib stream that inflates far beyond the declared size is cut at the expected size.
    func testDecompressionIsCappedAtExpectedSize() throws {
        let raw = [UInt8](repeating: 0, count: 1 << 20)   // 1 MiB of zeros for a 1x1 image (4 bytes expected)
        let png = makePNG([("IHDR", ihdr(width: 1, height: 1)), ("IDAT", zlibCompress(raw)), ("IEND", [])])
        let image = try decodeImage(bytes: png)
        XCTAssertEqual(image.pixels, [0, 0, 0])
    }
}
