import Foundation
import XCTest
@testable import Imaging

final class TensorAndPNGEncoderTests: XCTestCase {
    /// `tensorToImages` + `makeGrid` against the notebook's `show_images` (torch round half-to-even, clamp).
    func testTensorToGridMatchesShowImages() throws {
        let floats = try fixtureBytes("tensor_2x3x4x5.f32").withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
        let images = try tensorToImages(floats, batch: 2, height: 4, width: 5)
        let grid = try makeGrid(images)
        XCTAssertEqual(grid.width, 10); XCTAssertEqual(grid.height, 4)
        XCTAssertEqual(grid.pixels, try fixtureBytes("tensor_2x3x4x5_grid.rgb"))
    }

    func testQuantizeTo8BitLevelsMatchesTorch() throws {
        let floats = try fixtureBytes("tensor_2x3x4x5.f32").withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
        let golden = try fixtureBytes("tensor_2x3x4x5_quantized.f32").withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
        XCTAssertEqual(quantizeTo8BitLevels(floats), golden)
    }

    func testImageTensorRoundTrip() throws {
        let pixels = (0..<48).map { UInt8(($0 * 37) % 256) }
        let image = try Image(width: 4, height: 4, channels: 3, pixels: pixels)
        let t = imageToTensor(image)
        XCTAssertEqual(t.count, 48)
        XCTAssertEqual(t[0], Float(pixels[0]) / 127.5 - 1)        // planar: channel 0 first
        XCTAssertEqual(t[16], Float(pixels[1]) / 127.5 - 1)
        XCTAssertEqual(try tensorToImage(t, height: 4, width: 4), image)
        XCTAssertEqual(floatToByte(.nan), 0)
        XCTAssertEqual(floatToByte(5), 255)
        XCTAssertEqual(floatToByte(-5), 0)
    }

    func testPNGEncodeDecodeRoundTrip() throws {
        for channels in [1, 3, 4] {
            let w = 9, h = 7
            let pixels = (0..<(w * h * channels)).map { UInt8(truncatingIfNeeded: $0 * $0 + 3 * $0) }
            let image = try Image(width: w, height: h, channels: channels, pixels: pixels)
            let png = encodePNG(image)
            let back = try decodeImage(bytes: png)   // decoder yields RGB (grey replicated, alpha dropped)
            let expected: [UInt8] = (0..<(w * h)).flatMap { i -> [UInt8] in
                channels == 1 ? [pixels[i], pixels[i], pixels[i]] : Array(pixels[(i * channels)..<(i * channels + 3)])
            }
            XCTAssertEqual(back.pixels, expected, "channels \(channels)")
        }
    }

    func testWritePNGFile() throws {
        let image = try Image(width: 2, height: 2, channels: 3, pixels: [UInt8](repeating: 7, count: 12))
        let path = NSTemporaryDirectory() + "imaging-test-\(getpid()).png"
        defer { try? FileManager.default.removeItem(atPath: path) }
        try writePNG(image, path: path)
        XCTAssertEqual(try readImage(path: path), image)
    }

    func testMakeGridInRowsFillsWhite() throws {
        // three 1x1 grey images in rows of two: [a b] / [c white]
        let cells = try [10, 20, 30].map { try Image(width: 1, height: 1, channels: 1, pixels: [UInt8($0)]) }
        let grid = try makeGrid(cells, columns: 2)
        XCTAssertEqual(grid.width, 2); XCTAssertEqual(grid.height, 2)
        XCTAssertEqual(grid.pixels, [10, 20, 30, 255])
        XCTAssertEqual(try makeGrid(cells).pixels, [10, 20, 30])
        XCTAssertThrowsError(try makeGrid(cells, columns: 0))
    }

    func testMakeGridRejectsMixedSizes() throws {
        let a = try Image(width: 1, height: 1, channels: 3, pixels: [0, 0, 0])
        let b = try Image(width: 2, height: 1, channels: 3, pixels: [0, 0, 0, 0, 0, 0])
        XCTAssertThrowsError(try makeGrid([a, b]))
    }
}
