// One test per corruption class: each builds the smallest damaged file and expects the typed error.
import Foundation
import XCTest
@testable import WeightFormat

final class WeightFormatCorruptionTests: XCTestCase {
    var dir = ""
    var good = GLWImage(bytes: [])
    override func setUpWithError() throws {
        dir = GLWTestFile.tempDir()
        good = GLWImage(bytes: try GLWTestFile.write(to: dir + "/good.glw"))
    }
    override func tearDown() { try? FileManager.default.removeItem(atPath: dir) }

    /// Saves `image` and returns the error opening it (fails the test if it opens).
    func openError(_ image: GLWImage, verify: Bool = false, file: StaticString = #filePath, line: UInt = #line) -> WeightFormatError? {
        let path = dir + "/bad-\(UUID().uuidString.prefix(6)).glw"
        XCTAssertNoThrow(try image.save(path))
        do {
            _ = try WeightFile(path: path, verifyChecksums: verify)
            XCTFail("damaged file opened", file: file, line: line)
            return nil
        } catch let e as WeightFormatError {
            return e
        } catch {
            XCTFail("unexpected \(error)", file: file, line: line); return nil
        }
    }

    // Entry field offsets (Formats/glw.md, glw_entry).
    let nameLen = 8, dtype = 12, rank = 13, flags = 14, shape = 16, dataOffset = 80, dataLength = 88
    let scalesOffset = 96, reserved = 120, quantBlock = 116

    func testFlippedHeaderByte() {
        var b = good
        b.bytes[70] ^= 0x20   // inside the metadata
        guard case .headerChecksumMismatch = openError(b) else { return XCTFail() }
        var t = good
        t.bytes[t.entry(0) + shape] ^= 1   // inside the tensor table
        guard case .headerChecksumMismatch = openError(t) else { return XCTFail() }
    }

    func testFlippedDataByte() throws {
        var b = good
        let f = try WeightFile(path: dir + "/good.glw")
        let q = f.tensor("d.quant")!
        b.bytes[q.offset + 5] ^= 0x01
        let path = dir + "/flip.glw"
        try b.save(path)
        let opened = try WeightFile(path: path)   // open does not read tensor data
        XCTAssertThrowsError(try opened.verifyChecksums()) {
            guard case let .checksumMismatch(tensor, _, _) = $0 as? WeightFormatError else { return XCTFail("\($0)") }
            XCTAssertEqual(tensor, "d.quant")
        }
        guard case .checksumMismatch(let t, _, _) = openError(b, verify: true) else { return XCTFail() }
        XCTAssertEqual(t, "d.quant")
        // a flipped scale byte is caught too
        var s = good
        s.bytes[Int(bitPattern: q.scales!.baseAddress) - Int(bitPattern: f.tensor("a.weight")!.data.baseAddress) + f.tensor("a.weight")!.offset] ^= 0x80
        guard case .checksumMismatch("d.quant", _, _) = openError(s, verify: true) else { return XCTFail() }
    }

    func testNonZeroPaddingBetweenTensors() throws {
        var b = good
        let f = try WeightFile(path: dir + "/good.glw")
        let a = f.tensor("a.weight")!
        b.bytes[a.offset + a.data.count + 1] = 7   // between a.weight and b.half
        guard case .nonZeroPadding(let after, _) = openError(b, verify: true) else { return XCTFail() }
        XCTAssertEqual(after, "a.weight")
    }

    func testTruncatedFile() {
        var b = good
        b.bytes.removeLast(3)
        guard case .truncated(let t, _, _) = openError(b) else { return XCTFail() }
        XCTAssertEqual(t, "tokenizer/vocab.txt")
        var h = good
        h.bytes.removeLast(h.bytes.count - 40)
        XCTAssertEqual(openError(h), .tooSmall(size: 40))
    }

    func testTrailingBytes() {
        var b = good
        b.bytes += [0, 0]
        guard case .trailingBytes = openError(b) else { return XCTFail() }
    }

    func testMisalignedOffset() {
        var b = good
        b.set64(b.entry(1) + dataOffset, b.u64(b.entry(1) + dataOffset) + 8)
        b.reseal()
        XCTAssertEqual(openError(b), .misaligned(tensor: "b.half", offset: b.u64(b.entry(1) + dataOffset), alignment: 64))
    }

    func testOverlappingTensors() {
        var b = good
        b.set64(b.entry(1) + dataOffset, b.u64(b.entry(0) + dataOffset))
        b.reseal()
        guard case let .overlap(t, previous, _, _) = openError(b) else { return XCTFail() }
        XCTAssertEqual(t, "b.half"); XCTAssertEqual(previous, "a.weight")
    }

    func testAbsurdShapes() {
        var huge = good
        huge.set64(huge.entry(0) + shape, 1 << 41)
        huge.reseal()
        guard case .badShape("a.weight", _, _) = openError(huge) else { return XCTFail() }

        var overflow = good   // each dimension allowed, product overflows
        for i in 0..<2 { overflow.set64(overflow.entry(0) + shape + 8 * i, 1 << 40) }
        overflow.reseal()
        guard case .badShape("a.weight", _, _) = openError(overflow) else { return XCTFail() }

        var bigger = good    // plausible product, but more bytes than the file
        bigger.set64(bigger.entry(0) + shape, 1 << 30)
        bigger.reseal()
        guard case .badShape("a.weight", _, _) = openError(bigger) else { return XCTFail() }

        var deep = good
        deep.bytes[deep.entry(0) + rank] = 9
        deep.reseal()
        guard case .badShape("a.weight", _, _) = openError(deep) else { return XCTFail() }

        var slot = good      // a dimension beyond the rank
        slot.set64(slot.entry(0) + shape + 8 * 5, 3)
        slot.reseal()
        guard case .badShape("a.weight", _, _) = openError(slot) else { return XCTFail() }
    }

    func testLengthDisagreesWithShape() {
        var b = good
        b.set64(b.entry(0) + dataLength, 44)
        b.reseal()
        XCTAssertEqual(openError(b), .badLength(tensor: "a.weight", expected: 48, actual: 44))
    }

    func testHeaderOverTheCap() {
        var b = good
        b.set64(24, GLWLayout.maxMetadataLength + 1)   // refused before CRC or parsing
        XCTAssertEqual(openError(b), .metadataTooLarge(length: GLWLayout.maxMetadataLength + 1, limit: GLWLayout.maxMetadataLength))
    }

    func testUnknownDType() {
        var b = good
        b.bytes[b.entry(2) + dtype] = 17   // reserved block type
        b.reseal()
        XCTAssertEqual(openError(b), .unknownDType(tensor: "c.brain", code: 17))
    }

    func testWrongMagic() {
        var b = good
        b.bytes[0] = UInt8(ascii: "P")
        XCTAssertEqual(openError(b), .badMagic(found: [0x50, 0x4C, 0x57, 0x46]))
    }

    func testWrongVersion() {
        var b = good
        b.set32(4, 2)
        XCTAssertEqual(openError(b), .unsupportedVersion(found: 2, supported: 1))
    }

    func testBadAlignmentField() {
        var b = good
        b.set32(8, 96)
        XCTAssertEqual(openError(b), .badAlignment(found: 96))
    }

    func testBadHeaderField() {
        var b = good
        b.set64(32, b.u64(32) + 8)
        guard case .badHeaderField("table_offset", _, _) = openError(b) else { return XCTFail() }
        var n = good
        n.set64(56, 1 << 40)
        guard case .badHeaderField("names_length", _, _) = openError(n) else { return XCTFail() }
    }

    func testBadMetadata() {
        var b = good
        let at = b.bytes.firstRange(of: Array("\"glw\"".utf8))!.lowerBound
        b.bytes[at + 3] = UInt8(ascii: "x")
        b.reseal()
        guard case .badMetadata = openError(b) else { return XCTFail() }
        var j = good
        j.bytes[64] = UInt8(ascii: "[")   // not an object / not JSON
        j.reseal()
        guard case .badMetadata = openError(j) else { return XCTFail() }
    }

    func testBadName() {
        var b = good
        b.set32(b.entry(3) + nameLen, 0)
        b.reseal()
        guard case .badName(3, _) = openError(b) else { return XCTFail() }
        var o = good
        o.set64(o.entry(3), 1 << 33)   // name offset outside the name table
        o.reseal()
        guard case .badName(3, _) = openError(o) else { return XCTFail() }
    }

    func testDuplicateName() {
        var b = good   // make entry 1's name point at entry 0's
        b.set64(b.entry(1), b.u64(b.entry(0)))
        b.set32(b.entry(1) + nameLen, b.u32(b.entry(0) + nameLen))
        b.reseal()
        XCTAssertEqual(openError(b), .duplicateName(name: "a.weight"))
    }

    func testMisplacedScales() {
        var b = good
        b.set64(b.entry(3) + scalesOffset, b.u64(b.entry(3) + scalesOffset) + 64)
        b.reseal()
        guard case .badScales("d.quant", _, _, _, _) = openError(b) else { return XCTFail() }
    }

    func testReservedFieldsMustBeZero() {
        var b = good
        b.set64(b.entry(0) + reserved, 1)
        b.reseal()
        XCTAssertEqual(openError(b), .badReservedField(tensor: "a.weight", field: "reserved", value: 1))
        var q = good
        q.set32(q.entry(3) + quantBlock, 32)
        q.reseal()
        XCTAssertEqual(openError(q), .badReservedField(tensor: "d.quant", field: "quant_block", value: 32))
        var f = good
        f.bytes[f.entry(0) + flags] = 2
        f.reseal()
        XCTAssertEqual(openError(f), .badReservedField(tensor: "a.weight", field: "flags", value: 2))
    }
}
