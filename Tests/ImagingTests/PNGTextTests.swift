import XCTest
import CZlib
@testable import Imaging

/// PNG text chunks: writing fields, reading them back, and one smallest bad input per way reading can fail.
final class PNGTextTests: XCTestCase {
    let pixel = try! Image(width: 1, height: 1, channels: 3, pixels: [10, 20, 30])
    let ihdr: (String, [UInt8]) = ("IHDR", [0, 0, 0, 1, 0, 0, 0, 1, 8, 2, 0, 0, 0])

    /// A 1x1 PNG whose only chunks besides IHDR/IEND are `chunks`.
    func png(_ chunks: [(String, [UInt8])], badCRC: String? = nil) -> [UInt8] {
        makePNG([ihdr] + chunks + [("IEND", [])], badCRC: badCRC)
    }

    func zlib(_ bytes: [UInt8]) -> [UInt8] { zlibCompress(bytes) }

    func assertThrows(_ bytes: [UInt8], maxTextBytes: Int = defaultMaxPNGTextBytes, _ expected: ImagingError,
                      file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertThrowsError(try readPNGText(bytes: bytes, maxTextBytes: maxTextBytes), file: file, line: line) { e in
            XCTAssertEqual(e as? ImagingError, expected, file: file, line: line)
        }
    }

    func testRoundTripASCIILatin1AndUnicode() throws {
        let fields = [PNGTextField(keyword: "glide:prompt", text: "an oil painting of a corgi"),
                      PNGTextField(keyword: "glide:seed", text: "42"),
                      PNGTextField(keyword: "Comment", text: "café"),
                      PNGTextField(keyword: "glide:prompt", text: "un corgi 🐶 à l'huile\nsecond line"),
                      PNGTextField(keyword: "empty", text: "")]
        let bytes = try encodePNG(pixel, text: fields)
        XCTAssertEqual(try readPNGText(bytes: bytes), fields)
        // The image is untouched and still decodes.
        XCTAssertEqual(try decodeImage(bytes: bytes), pixel)
        // ASCII goes to tEXt, the rest to iTXt.
        let text = String(decoding: bytes, as: UTF8.self)
        XCTAssertTrue(text.contains("tEXtglide:seed"))
        XCTAssertTrue(text.contains("iTXtComment"))
        // No text: identical to the plain encoder.
        XCTAssertEqual(try encodePNG(pixel, text: []), encodePNG(pixel))
    }

    func testReadsZTXtAndCompressedITXtWithLanguageTag() throws {
        let bytes = png([("zTXt", Array("Comment".utf8) + [0, 0] + zlib(Array("caf\u{E9}".unicodeScalars.map { UInt8($0.value) }))),
                         ("iTXt", Array("Title".utf8) + [0, 1, 0] + Array("es".utf8) + [0] + Array("Título".utf8) + [0]
                                  + zlib(Array("Título ✓".utf8)))])
        XCTAssertEqual(try readPNGText(bytes: bytes), [PNGTextField(keyword: "Comment", text: "café"),
                                                       PNGTextField(keyword: "Title", text: "Título ✓")])
    }

    func testStopsAtIENDAndToleratesMissingIEND() throws {
        var bytes = png([("tEXt", Array("a".utf8) + [0] + Array("1".utf8))])
        XCTAssertEqual(try readPNGText(bytes: bytes + [1, 2, 3]), [PNGTextField(keyword: "a", text: "1")])   // after IEND: ignored
        bytes = makePNG([ihdr, ("tEXt", Array("a".utf8) + [0] + Array("1".utf8))])
        XCTAssertEqual(try readPNGText(bytes: bytes), [PNGTextField(keyword: "a", text: "1")])
    }

    func testEncoderRejectsBadKeywordsAndNUL() {
        for keyword in ["", " lead", "trail ", "two  spaces", String(repeating: "k", count: 80), "tab\t", "emoji🐶"] {
            XCTAssertThrowsError(try encodePNG(pixel, text: [PNGTextField(keyword: keyword, text: "x")])) { e in
                guard case .invalidArgument? = e as? ImagingError else { return XCTFail("\(keyword): \(e)") }
            }
        }
        XCTAssertThrowsError(try encodePNG(pixel, text: [PNGTextField(keyword: "k", text: "a\u{0}b")])) { e in
            guard case .invalidArgument? = e as? ImagingError else { return XCTFail("\(e)") }
        }
        XCTAssertNoThrow(try encodePNG(pixel, text: [PNGTextField(keyword: String(repeating: "k", count: 79), text: "")]))
    }

    // MARK: - One test per failure

    func testNotPNG() {
        assertThrows([0xFF, 0xD8, 0xFF, 0xE0], .notPNG(signature: "ff d8 ff e0"))
        assertThrows([], .notPNG(signature: ""))
    }

    func testTruncatedChunk() {
        let bytes = png([("tEXt", Array("a".utf8) + [0, 0x41])])
        assertThrows(Array(bytes.prefix(8 + 25 + 10)), .truncated(format: "PNG", detail: "chunk tEXt needs 15 bytes at offset 33, file has 10"))
        assertThrows(Array(bytes.prefix(8 + 25 + 5)), .truncated(format: "PNG", detail: "chunk header at offset 33"))
    }

    func testChunkLengthOver2GiB() {
        let bytes = pngSignature + [0x80, 0, 0, 0] + Array("tEXt".utf8) + [0, 0, 0, 0]
        assertThrows(bytes, .corruptData(format: "PNG", detail: "chunk tEXt length 2147483648"))
    }

    func testCRCMismatch() {
        let bytes = png([("tEXt", Array("a".utf8) + [0])], badCRC: "tEXt")
        let body = Array("tEXta".utf8) + [0]
        let crc = crc32Of(body, 0..<body.count)
        assertThrows(bytes, .crcMismatch(chunk: "tEXt", expected: crc ^ 1, actual: crc))
    }

    func testInvalidKeyword() {
        assertThrows(png([("tEXt", Array("no-separator".utf8))]), .invalidTextKeyword(chunk: "tEXt", keyword: "no-separator"))
        assertThrows(png([("tEXt", [0] + Array("text".utf8))]), .invalidTextKeyword(chunk: "tEXt", keyword: ""))
        assertThrows(png([("iTXt", [0x20, 0x41, 0, 0, 0, 0, 0])]), .invalidTextKeyword(chunk: "iTXt", keyword: " A"))
        assertThrows(png([("zTXt", [0x41, 0x07, 0, 0])]), .invalidTextKeyword(chunk: "zTXt", keyword: "A\\x07"))
        assertThrows(png([("tEXt", [UInt8](repeating: 0x6B, count: 80) + [0])]),
                     .invalidTextKeyword(chunk: "tEXt", keyword: String(repeating: "k", count: 80)))
    }

    func testMalformedTextChunk() {
        assertThrows(png([("tEXt", Array("k".utf8) + [0, 0x41, 0, 0x42])]),
                     .malformedTextChunk(chunk: "tEXt", keyword: "k", detail: "NUL inside the text"))
        assertThrows(png([("zTXt", Array("k".utf8) + [0])]),
                     .malformedTextChunk(chunk: "zTXt", keyword: "k", detail: "no compression method"))
        assertThrows(png([("iTXt", Array("k".utf8) + [0, 0])]),
                     .malformedTextChunk(chunk: "iTXt", keyword: "k", detail: "no compression flag and method"))
        assertThrows(png([("iTXt", Array("k".utf8) + [0, 2, 0, 0, 0])]),
                     .malformedTextChunk(chunk: "iTXt", keyword: "k", detail: "compression flag 2"))
        assertThrows(png([("iTXt", Array("k".utf8) + [0, 0, 0] + Array("en".utf8))]),
                     .malformedTextChunk(chunk: "iTXt", keyword: "k", detail: "language tag not terminated"))
        assertThrows(png([("iTXt", Array("k".utf8) + [0, 0, 0, 0] + Array("K".utf8))]),
                     .malformedTextChunk(chunk: "iTXt", keyword: "k", detail: "translated keyword not terminated"))
    }

    func testUnsupportedTextCompression() {
        assertThrows(png([("zTXt", Array("k".utf8) + [0, 1])]), .unsupportedTextCompression(chunk: "zTXt", keyword: "k", method: 1))
        assertThrows(png([("iTXt", Array("k".utf8) + [0, 1, 7, 0, 0])]), .unsupportedTextCompression(chunk: "iTXt", keyword: "k", method: 7))
    }

    func testCorruptCompressedText() {
        assertThrows(png([("zTXt", Array("k".utf8) + [0, 0, 1, 2, 3])]),
                     .corruptData(format: "PNG", detail: "zTXt 'k': incorrect header check"))
        let cut = Array(zlib(Array("hello world".utf8)).dropLast(3))
        assertThrows(png([("zTXt", Array("k".utf8) + [0, 0] + cut)]),
                     .corruptData(format: "PNG", detail: "zTXt 'k': compressed text ends early"))
    }

    func testTextNotUTF8() {
        assertThrows(png([("iTXt", Array("k".utf8) + [0, 0, 0, 0, 0, 0xC3, 0x28])]), .textNotUTF8(keyword: "k"))
    }

    func testTextTooLarge() {
        assertThrows(png([("tEXt", Array("k".utf8) + [0] + [UInt8](repeating: 0x41, count: 9))]), maxTextBytes: 8,
                     .textTooLarge(keyword: "k", limit: 8))
        // The limit counts all chunks together.
        assertThrows(png([("tEXt", Array("a".utf8) + [0, 0x41, 0x41]), ("tEXt", Array("b".utf8) + [0, 0x41, 0x41])]),
                     maxTextBytes: 3, .textTooLarge(keyword: "b", limit: 1))
        // A zlib bomb stops at the limit, not at its expanded size.
        let bomb = zlib([UInt8](repeating: 0x41, count: 1 << 22))
        assertThrows(png([("zTXt", Array("k".utf8) + [0, 0] + bomb)]), .textTooLarge(keyword: "k", limit: defaultMaxPNGTextBytes))
        assertThrows(png([("iTXt", Array("k".utf8) + [0, 1, 0, 0, 0] + bomb)]), .textTooLarge(keyword: "k", limit: defaultMaxPNGTextBytes))
    }

    /// Every prefix and deterministic corruptions of a PNG with text end in fields or an `ImagingError`.
    func testHostileVariantsNeverCrash() throws {
        let bytes = try encodePNG(pixel, text: [PNGTextField(keyword: "glide:prompt", text: "a corgi ✓"),
                                                 PNGTextField(keyword: "glide:seed", text: "7")])
        for n in 0..<bytes.count {
            do { _ = try readPNGText(bytes: Array(bytes.prefix(n))) } catch is ImagingError {} catch { XCTFail("\(error)") }
        }
        var state: UInt64 = 0x2545_F491_4F6C_DD1D
        for _ in 0..<500 {
            var b = bytes
            state ^= state << 13; state ^= state >> 7; state ^= state << 17
            b[Int(state % UInt64(b.count))] = UInt8(truncatingIfNeeded: state >> 32)
            do { _ = try readPNGText(bytes: b) } catch is ImagingError {} catch { XCTFail("\(error)") }
        }
    }
}
