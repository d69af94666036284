import XCTest
@testable import Imaging

/// `resizeBicubicPIL` against Pillow's `Image.resize(size, Image.BICUBIC)` (shrink, enlarge, one axis only, 1x1).
final class ResizeTests: XCTestCase {
    func testResizeMatchesPillowExactly() throws {
        let entries = try fixtureManifest()["resize"] as! [[String: Any]]
        XCTAssertEqual(entries.count, 8)
        for e in entries {
            let name = e["name"] as! String
            let src = e["src"] as! [Int], dst = e["dst"] as! [Int]
            let image = try decodeImage(bytes: fixtureBytes(name + "_src.png"))
            XCTAssertEqual([image.width, image.height], src, name)
            let out = try resizeBicubicPIL(image, width: dst[0], height: dst[1])
            XCTAssertEqual([out.width, out.height], dst, name)
            let expected = try fixtureBytes(name + ".rgb")
            XCTAssertEqual(maxAbsDiff(out.pixels, expected), 0, name)
        }
    }

    func testSameSizeIsIdentity() throws {
        let image = try Image(width: 2, height: 1, channels: 3, pixels: [1, 2, 3, 4, 5, 6])
        XCTAssertEqual(try resizeBicubicPIL(image, width: 2, height: 1), image)
    }

    func testConstantImageStaysConstant() throws {
        let image = try Image(width: 7, height: 5, channels: 1, pixels: [UInt8](repeating: 200, count: 35))
        let out = try resizeBicubicPIL(image, width: 3, height: 11)
        XCTAssertEqual(out.pixels, [UInt8](repeating: 200, count: 33))
    }
}
