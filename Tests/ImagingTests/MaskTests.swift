import XCTest
@testable import Imaging

/// Mask helpers against Pillow (`convert('L')`, NEAREST resize) and torch (`F.interpolate(mode='nearest')`).
final class MaskTests: XCTestCase {
    func testGreyAndNearestResizeMatchPillow() throws {
        let entries = try fixtureManifest()["mask"] as! [[String: Any]]
        XCTAssertEqual(entries.count, 5)
        for e in entries {
            let name = e["name"] as! String
            let dst = e["dst"] as! [Int]
            let image = try decodeImage(bytes: fixtureBytes(name + "_src.png"))
            let grey = toGreyPIL(image)
            XCTAssertEqual(grey.pixels, try fixtureBytes(name + "_grey.raw"), name)
            let resized = try resizeNearestPIL(grey, width: dst[0], height: dst[1])
            XCTAssertEqual(resized.pixels, try fixtureBytes(name + "_nearest.raw"), name)
            let mask = try maskFromImage(image, width: dst[0], height: dst[1], keep: .white)
            XCTAssertEqual(mask, resized.pixels.map { $0 >= 128 ? 1 : 0 }, name)
            let inverse = try maskFromImage(image, width: dst[0], height: dst[1], keep: .black)
            XCTAssertEqual(zip(mask, inverse).map { $0 + $1 }, [Float](repeating: 1, count: mask.count), name)
        }
    }

    func testInterpolateNearestMatchesTorch() throws {
        let entries = try fixtureManifest()["interpolate"] as! [[String: Any]]
        for e in entries {
            let name = e["name"] as! String
            let src = e["src"] as! [Int], dst = e["dst"] as! [Int]
            let plane = (0..<(src[0] * src[1])).map { Float($0) }
            let out = try interpolateNearest(plane, inWidth: src[0], inHeight: src[1], outWidth: dst[0], outHeight: dst[1])
            let golden = try fixtureBytes(name + ".i32").withUnsafeBytes { Array($0.bindMemory(to: Int32.self)) }
            XCTAssertEqual(out.map { Int32($0) }, golden, name)
        }
    }

    func testKeepRectMaskIsTheNotebookMask() {
        // source_mask_64[:, :, 20:] = 0  ->  rows 0..<20 kept
        let m = keepRectMask(width: 64, height: 64, x: 0, y: 0, w: 64, h: 20)
        XCTAssertEqual(m.prefix(64 * 20).allSatisfy { $0 == 1 }, true)
        XCTAssertEqual(m.suffix(64 * 44).allSatisfy { $0 == 0 }, true)
        XCTAssertEqual(keepRectMask(width: 2, height: 2, x: -5, y: 1, w: 6, h: 9), [0, 0, 1, 0])   // clipped to x 0..<1, y 1..<2
    }
}
