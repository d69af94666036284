import Foundation
import XCTest
import TestSupport
@testable import Imaging

/// PNG decoding against Pillow's `Image.open(f).convert('RGB')` (goldens from tools/make_image_goldens.py).
final class PNGDecoderTests: XCTestCase {
    /// Every colour type x bit depth, plain and Adam7, random filter types, 3 IDAT chunks, tRNS/gAMA/tEXt present.
    func testEveryColourTypeAndBitDepthMatchesPillow() throws {
        let entries = try fixtureManifest()["png"] as! [[String: Any]]
        XCTAssertEqual(entries.count, 30)
        for e in entries {
            let name = e["name"] as! String
            let image = try decodeImage(bytes: fixtureBytes(name + ".png"))
            XCTAssertEqual(image.width, e["width"] as? Int, name)
            XCTAssertEqual(image.height, e["height"] as? Int, name)
            XCTAssertEqual(image.channels, 3, name)
            XCTAssertEqual(image.pixels, try fixtureBytes(name + ".rgb"), name)
        }
    }

    /// The notebook's example image (RGBA): alpha discarded, and resized to 64/256 exactly as Pillow does.
    func testGrassPNG() throws {
        let image = try readImage(path: try requireShared("images/grass.png").path)
        XCTAssertEqual(image.width, 256); XCTAssertEqual(image.height, 256); XCTAssertEqual(image.channels, 3)
        XCTAssertEqual(try resizeBicubicPIL(image, width: 256, height: 256).pixels, try fixtureBytes("grass_256.rgb"))
        XCTAssertEqual(try resizeBicubicPIL(image, width: 64, height: 64).pixels, try fixtureBytes("grass_64.rgb"))
        // read_image('grass.png', 64): [1, 3, 64, 64] float32 in [-1, 1]
        let tensor = try referenceImageTensor(image, size: 64)
        let golden = try fixtureBytes("grass_64_tensor.f32").withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
        XCTAssertEqual(tensor, golden)
    }

    func testPNGEXIFOrientationChunk() throws {
        let m = try fixtureManifest()["png_exif"] as! [String: Any]
        let image = try decodeImage(bytes: fixtureBytes("png_exif_orient6.png"))
        XCTAssertEqual(image.width, m["width"] as? Int)
        XCTAssertEqual(image.height, m["height"] as? Int)
        XCTAssertEqual(image.pixels, try fixtureBytes("png_exif_orient6.rgb"))
        let unrotated = try decodeImage(bytes: fixtureBytes("png_exif_orient6.png"), applyEXIFOrientation: false)
        XCTAssertEqual(unrotated.width, m["height"] as? Int)
    }

    /// Data after the image is complete (missing IEND, extra bytes in the zlib stream) is tolerated.
    func testMissingIENDIsTolerated() throws {
        let raw: [UInt8] = [0, 1, 2, 3]
        let png = makePNG([("IHDR", ihdr(width: 1, height: 1)), ("IDAT", zlibCompress(raw))])
        let image = try decodeImage(bytes: png)
        XCTAssertEqual(image.pixels, [1, 2, 3])
    }
}

/// One test per `ImagingError` case, each from the smallest input that triggers it.
final class ImagingErrorTests: XCTestCase {
    func assertThrows(_ expected: ImagingError, _ body: () throws -> Any, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertThrowsError(try body(), file: file, line: line) { error in
            XCTAssertEqual(error as? ImagingError, expected, file: file, line: line)
            XCTAssertFalse("\(error)".isEmpty)
        }
    }
    let onePixelIDAT = zlibCompress([0, 9, 9, 9])

    func testNotAnImage() {
        assertThrows(.notAnImage(signature: "<empty>")) { try decodeImage(bytes: []) }
        assertThrows(.notAnImage(signature: "47 49 46")) { try decodeImage(bytes: Array("GIF".utf8)) }
    }

    func testTruncatedPNG() throws {
        let png = makePNG([("IHDR", ihdr(width: 1, height: 1)), ("IDAT", onePixelIDAT), ("IEND", [])])
        XCTAssertThrowsError(try decodeImage(bytes: Array(png.prefix(40)))) { e in
            guard case .truncated(format: "PNG", _)? = e as? ImagingError else { return XCTFail("\(e)") }
        }
        // complete chunks but too little image data
        let short = makePNG([("IHDR", ihdr(width: 2, height: 1)), ("IDAT", onePixelIDAT), ("IEND", [])])
        assertThrows(.truncated(format: "PNG", detail: "image data has 4 of 7 bytes")) { try decodeImage(bytes: short) }
    }

    func testTruncatedJPEG() throws {
        let jpeg = try fixtureBytes("jpeg_orient1.jpg")
        XCTAssertThrowsError(try decodeImage(bytes: Array(jpeg.prefix(jpeg.count - 200)))) { e in
            guard case .truncated(format: "JPEG", _)? = e as? ImagingError else { return XCTFail("\(e)") }
        }
    }

    func testCRCMismatch() {
        let png = makePNG([("IHDR", ihdr(width: 1, height: 1))], badCRC: "IHDR")
        XCTAssertThrowsError(try decodeImage(bytes: png)) { e in
            guard case .crcMismatch(chunk: "IHDR", let stored, let computed)? = e as? ImagingError else { return XCTFail("\(e)") }
            XCTAssertEqual(stored ^ 1, computed)
        }
    }

    func testInvalidHeader() {
        assertThrows(.invalidHeader(format: "PNG", detail: "size 0x1")) {
            try decodeImage(bytes: makePNG([("IHDR", ihdr(width: 0, height: 1))]))
        }
        assertThrows(.invalidHeader(format: "PNG", detail: "IHDR length 0, expected 13")) {
            try decodeImage(bytes: makePNG([("IHDR", [])]))
        }
    }

    func testUnsupported() {
        assertThrows(.unsupported(format: "PNG", detail: "bit depth 3 with colour type 2")) {
            try decodeImage(bytes: makePNG([("IHDR", ihdr(width: 1, height: 1, depth: 3))]))
        }
        assertThrows(.unsupported(format: "PNG", detail: "interlace method 2")) {
            try decodeImage(bytes: makePNG([("IHDR", ihdr(width: 1, height: 1, interlace: 2))]))
        }
    }

    func testUnsupportedJPEG() {
        // SOI, baseline SOF declaring 9-bit samples, SOS (the precision is checked when the scan starts)
        let bytes: [UInt8] = [0xFF, 0xD8, 0xFF, 0xC0, 0, 11, 9, 0, 1, 0, 1, 1, 1, 0x11, 0,
                              0xFF, 0xDA, 0, 8, 1, 1, 0, 0, 0x3F, 0]
        assertThrows(.unsupported(format: "JPEG", detail: "Unsupported JPEG data precision 9")) { try decodeImage(bytes: bytes) }
    }

    func testTooLargeRejectedBeforeAllocation() {
        // 2^31-1 squared would need exabytes; the header alone is rejected.
        assertThrows(.tooLarge(width: 0x7FFF_FFFF, height: 0x7FFF_FFFF, maxPixels: defaultMaxPixels)) {
            try decodeImage(bytes: makePNG([("IHDR", ihdr(width: 0x7FFF_FFFF, height: 0x7FFF_FFFF))]))
        }
        assertThrows(.tooLarge(width: 2, height: 2, maxPixels: 3)) {
            try decodeImage(bytes: makePNG([("IHDR", ihdr(width: 2, height: 2))]), maxPixels: 3)
        }
    }

    func testTooLargeJPEG() throws {
        let jpeg = try fixtureBytes("jpeg_orient1.jpg")
        assertThrows(.tooLarge(width: 24, height: 16, maxPixels: 100)) { try decodeImage(bytes: jpeg, maxPixels: 100) }
    }

    func testCorruptZlibData() {
        let png = makePNG([("IHDR", ihdr(width: 1, height: 1)), ("IDAT", [0x78, 0x9C, 0xFF, 0xFF]), ("IEND", [])])
        XCTAssertThrowsError(try decodeImage(bytes: png)) { e in
            guard case .corruptData(format: "PNG", _)? = e as? ImagingError else { return XCTFail("\(e)") }
        }
    }

    func testCorruptFilterType() {
        let png = makePNG([("IHDR", ihdr(width: 1, height: 1)), ("IDAT", zlibCompress([5, 0, 0, 0])), ("IEND", [])])
        assertThrows(.corruptData(format: "PNG", detail: "filter type 5 in row 0")) { try decodeImage(bytes: png) }
    }

    func testCorruptJPEG() {
        // SOI then a baseline SOF declaring a 0x0 image: libjpeg's "Empty JPEG image"
        let bytes: [UInt8] = [0xFF, 0xD8, 0xFF, 0xC0, 0, 11, 8, 0, 0, 0, 0, 1, 1, 0x11, 0]
        XCTAssertThrowsError(try decodeImage(bytes: bytes)) { e in
            guard case .corruptData(format: "JPEG", let msg)? = e as? ImagingError else { return XCTFail("\(e)") }
            XCTAssertFalse(msg.isEmpty)
        }
    }

    func testMissingChunk() {
        assertThrows(.missingChunk("IDAT")) {
            try decodeImage(bytes: makePNG([("IHDR", ihdr(width: 1, height: 1)), ("IEND", [])]))
        }
        assertThrows(.missingChunk("IHDR")) { try decodeImage(bytes: makePNG([("IEND", [])])) }
        assertThrows(.missingChunk("PLTE")) {
            try decodeImage(bytes: makePNG([("IHDR", ihdr(width: 1, height: 1, colorType: 3)),
                                            ("IDAT", zlibCompress([0, 0])), ("IEND", [])]))
        }
    }

    func testFileError() {
        XCTAssertThrowsError(try readImage(path: "/nonexistent/x.png")) { e in
            guard case .fileError(path: "/nonexistent/x.png", _)? = e as? ImagingError else { return XCTFail("\(e)") }
        }
    }

    func testInvalidArgument() throws {
        let image = try Image(width: 1, height: 1, channels: 3, pixels: [1, 2, 3])
        assertThrows(.invalidArgument("resize target 0x1 must be positive")) { try resizeBicubicPIL(image, width: 0, height: 1) }
        assertThrows(.invalidArgument("pixel count 2 != 1x1x3")) { try Image(width: 1, height: 1, channels: 3, pixels: [1, 2]) }
        assertThrows(.invalidArgument("tensor has 2 values, expected 1x3x1x1")) { try tensorToImage([0, 0], height: 1, width: 1) }
        assertThrows(.invalidArgument("makeGrid needs at least one image")) { try makeGrid([]) }
    }
}
