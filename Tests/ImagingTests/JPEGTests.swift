import XCTest
@testable import Imaging

/// JPEG decoding (system libjpeg-turbo) against Pillow's decoder, and EXIF orientation against
/// `PIL.ImageOps.exif_transpose`.
final class JPEGTests: XCTestCase {
    func testJPEGsMatchPillow() throws {
        let entries = try fixtureManifest()["jpeg"] as! [[String: Any]]
        XCTAssertEqual(entries.count, 12)
        for e in entries {
            let name = e["name"] as! String
            let bytes = try fixtureBytes(name + ".jpg")
            let image = try decodeImage(bytes: bytes)
            XCTAssertEqual(image.width, e["width"] as? Int, name)
            XCTAssertEqual(image.height, e["height"] as? Int, name)
            let expected = try fixtureBytes(name + ".rgb")
            XCTAssertEqual(maxAbsDiff(image.pixels, expected), 0, name)
            if name.hasPrefix("jpeg_orient") {
                let raw = try decodeImage(bytes: bytes, applyEXIFOrientation: false)
                XCTAssertEqual(raw.width, e["raw_width"] as? Int, name)
                XCTAssertEqual(raw.pixels, try fixtureBytes(name + "_raw.rgb"), name)
            }
        }
    }

    func testOrientationTagParsing() throws {
        for o in 1...8 {
            XCTAssertEqual(jpegEXIFOrientation(try fixtureBytes("jpeg_orient\(o).jpg")), o)
        }
        XCTAssertNil(jpegEXIFOrientation(try fixtureBytes("jpeg_grey.jpg")))
        // big-endian TIFF, SHORT orientation 3
        let tiff: [UInt8] = [0x4D, 0x4D, 0, 42, 0, 0, 0, 8, 0, 1, 0x01, 0x12, 0, 3, 0, 0, 0, 1, 0, 3, 0, 0, 0, 0, 0, 0]
        XCTAssertEqual(exifOrientation(tiff: tiff[...]), 3)
        XCTAssertNil(exifOrientation(tiff: tiff.prefix(12)))   // malformed: entry cut off
    }
}
