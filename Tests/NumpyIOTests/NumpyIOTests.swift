import XCTest
import Foundation
@testable import NumpyIO

/// Byte images below mirror what `numpy.save` (numpy 2.x) writes: the header dict exactly as numpy formats
/// it, padded with spaces to 128 bytes (v1.0) and ended by a newline.
final class NumpyIOTests: XCTestCase {
    private func numpyImage(_ dict: String, _ payload: [UInt8], version: UInt8 = 1) -> [UInt8] {
        let prefix = version == 1 ? 10 : 12
        let headerLen = 128 - prefix
        let header = dict + String(repeating: " ", count: headerLen - dict.utf8.count - 1) + "\n"
        var out: [UInt8] = [0x93, 0x4E, 0x55, 0x4D, 0x50, 0x59, version, 0]
        out += version == 1 ? [UInt8(headerLen), 0] : [UInt8(headerLen), 0, 0, 0]
        return out + Array(header.utf8) + payload
    }
    private func le<T>(_ values: [T]) -> [UInt8] { values.withUnsafeBytes { Array($0) } }

    func testReadsNumpyFloat32Matrix() throws {
        let vals: [Float] = [0, 0.25, 0.5, 0.75, 1, 1.25]
        let a = try Npy.decode(numpyImage("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }", le(vals)))
        XCTAssertEqual(a.dtype, .float32)
        XCTAssertEqual(a.shape, [2, 3])
        XCTAssertEqual(try a.float32Values(), vals)
        XCTAssertEqual(try a.floatValues(), vals)
    }

    func testReadsScalarFloat64() throws {
        let a = try Npy.decode(numpyImage("{'descr': '<f8', 'fortran_order': False, 'shape': (), }", le([3.25])))
        XCTAssertEqual(a.shape, [])
        XCTAssertEqual(a.count, 1)
        XCTAssertEqual(try a.float64Values(), [3.25])
        XCTAssertEqual(try a.floatValues(), [3.25])
    }

    func testReadsIntegerAndBoolTypes() throws {
        let i64 = try Npy.decode(numpyImage("{'descr': '<i8', 'fortran_order': False, 'shape': (3,), }", le([Int64(-1), 1 << 40, 7])))
        XCTAssertEqual(try i64.int64Values(), [-1, 1 << 40, 7])
        XCTAssertEqual(try i64.intValues(), [-1, 1 << 40, 7])
        let i32 = try Npy.decode(numpyImage("{'descr': '<i4', 'fortran_order': False, 'shape': (2, 1), }", le([Int32(-5), 6])))
        XCTAssertEqual(i32.shape, [2, 1])
        XCTAssertEqual(try i32.int32Values(), [-5, 6])
        let b = try Npy.decode(numpyImage("{'descr': '|b1', 'fortran_order': False, 'shape': (3,), }", [1, 0, 1]))
        XCTAssertEqual(try b.boolValues(), [true, false, true])
        XCTAssertEqual(try b.intValues(), [1, 0, 1])
        let u = try Npy.decode(numpyImage("{'descr': '|u1', 'fortran_order': False, 'shape': (3,), }", [0, 255, 7]))
        XCTAssertEqual(try u.uint8Values(), [0, 255, 7])
    }

    func testReadsVersion2Header() throws {
        let a = try Npy.decode(numpyImage("{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }", le([Float(1.5), -2]), version: 2))
        XCTAssertEqual(try a.float32Values(), [1.5, -2])
    }

    func testRoundTripAllTypesThroughFile() throws {
        let arrays: [NpyArray] = [
            try NpyArray(float32: [1, -2, 3.5, .infinity, -0.0, 6], shape: [1, 2, 3]),
            try NpyArray(float64: [Double.pi], shape: []),
            try NpyArray(int64: [Int64.min, 0, Int64.max]),
            try NpyArray(int: [1, 2, 3, 4], shape: [2, 2]),
            try NpyArray(int32: [Int32.min, 5]),
            try NpyArray(bool: [true, false]),
            try NpyArray(uint8: [], shape: [0, 4]),
        ]
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("npytest-\(getpid())")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        for (i, a) in arrays.enumerated() {
            let image = Npy.encode(a)
            let headerEnd = Int(image[8]) | Int(image[9]) << 8
            XCTAssertEqual((10 + headerEnd) % 64, 0, "data must start 64-byte aligned")
            XCTAssertEqual(image[10 + headerEnd - 1], 0x0A)
            let path = dir.appendingPathComponent("a\(i).npy").path
            try Npy.write(a, path: path)
            XCTAssertEqual(try Npy.read(path: path), a)
        }
    }

    func testLargeHeaderUsesVersion2() throws {
        let shape = [Int](repeating: 1, count: 30000)
        let a = try NpyArray(float32: [7], shape: shape)
        let image = Npy.encode(a)
        XCTAssertEqual(image[6], 2)
        XCTAssertEqual(try Npy.decode(image), a)
    }

    // MARK: errors, each from the smallest bad input

    func testBadMagic() {
        XCTAssertThrowsError(try Npy.decode(Array("PK\u{3}\u{4}xxxxxxxx".utf8))) { e in
            guard case NpyError.badMagic = e else { return XCTFail("\(e)") }
        }
    }

    func testUnsupportedVersion() {
        var image = numpyImage("{'descr': '<f4', 'fortran_order': False, 'shape': (0,), }", [])
        image[6] = 4
        XCTAssertThrowsError(try Npy.decode(image)) { e in
            XCTAssertEqual(e as? NpyError, .unsupportedVersion(major: 4, minor: 0))
        }
    }

    func testMalformedHeader() {
        XCTAssertThrowsError(try Npy.decode(numpyImage("{'descr': '<f4', 'shape': (1,), }", [0, 0, 0, 0]))) { e in
            guard case NpyError.malformedHeader(let why, _) = e else { return XCTFail("\(e)") }
            XCTAssertTrue(why.contains("fortran_order"))
        }
        XCTAssertThrowsError(try Npy.decode(numpyImage("{'descr': '<f4', 'fortran_order': False, 'shape': (x,), }", []))) { e in
            guard case NpyError.malformedHeader = e else { return XCTFail("\(e)") }
        }
    }

    func testUnsupportedDType() {
        XCTAssertThrowsError(try Npy.decode(numpyImage("{'descr': '>f4', 'fortran_order': False, 'shape': (1,), }", [0, 0, 0, 0]))) { e in
            XCTAssertEqual(e as? NpyError, .unsupportedDType(descr: ">f4"))
        }
        XCTAssertThrowsError(try Npy.decode(numpyImage("{'descr': '<f2', 'fortran_order': False, 'shape': (1,), }", [0, 0]))) { e in
            XCTAssertEqual(e as? NpyError, .unsupportedDType(descr: "<f2"))
        }
    }

    func testFortranOrderRejected() {
        XCTAssertThrowsError(try Npy.decode(numpyImage("{'descr': '|u1', 'fortran_order': True, 'shape': (2, 2), }", [1, 2, 3, 4]))) { e in
            XCTAssertEqual(e as? NpyError, .fortranOrder)
        }
    }

    func testTruncatedData() {
        XCTAssertThrowsError(try Npy.decode(numpyImage("{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }", [0, 0, 0, 0]))) { e in
            XCTAssertEqual(e as? NpyError, .truncatedData(expected: 8, actual: 4))
        }
    }

    func testTypeMismatch() throws {
        let a = try NpyArray(int: [1])
        XCTAssertThrowsError(try a.float32Values()) { e in
            XCTAssertEqual(e as? NpyError, .typeMismatch(expected: .float32, actual: .int64))
        }
        XCTAssertThrowsError(try NpyArray(float32: [1]).intValues()) { e in
            XCTAssertEqual(e as? NpyError, .typeMismatch(expected: .int64, actual: .float32))
        }
    }

    func testShapeMismatch() {
        XCTAssertThrowsError(try NpyArray(float32: [1, 2, 3], shape: [2, 2])) { e in
            XCTAssertEqual(e as? NpyError, .shapeMismatch(shape: [2, 2], expectedCount: 4, actualCount: 3))
        }
    }

    /// Found by Fuzz/NumpyFuzzer: a header whose shape product overflows `Int` trapped in `reduce(1, *)`.
    func testShapeTooLarge() {
        let header = "{'descr': '<i8', 'fortran_order': False, 'shape': (4000000000077777, 8000000000000003), }"
        XCTAssertThrowsError(try Npy.decode(numpyImage(header, []))) { e in
            XCTAssertEqual(e as? NpyError, .shapeTooLarge(shape: [4000000000077777, 8000000000000003]))
        }
        // Elements fit, bytes do not.
        XCTAssertThrowsError(try Npy.decode(numpyImage("{'descr': '<f8', 'fortran_order': False, 'shape': (\(Int.max / 4),), }", []))) { e in
            XCTAssertEqual(e as? NpyError, .shapeTooLarge(shape: [Int.max / 4]))
        }
        XCTAssertThrowsError(try NpyArray(dtype: .float32, shape: [Int.max, 2], bytes: [])) { e in
            XCTAssertEqual(e as? NpyError, .shapeTooLarge(shape: [Int.max, 2]))
        }
    }

    /// The fuzzer's crashing input itself (Fuzz/NumpyFuzzer, 2026-12-01) throws instead of trapping.
    func testFuzzerCrashInput() {
        let bytes: [UInt8] = [
            0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 0x01, 0x00, 0x76, 0x00, 0x7b, 0x27, 0x64, 0x65, 0x73, 0x63, 0x72,
            0x27, 0x3a, 0x20, 0x27, 0x3c, 0x69, 0x38, 0x27, 0x2c, 0x20, 0x27, 0x66, 0x6f, 0x72, 0x74, 0x72, 0x61,
            0x6e, 0x5f, 0x6f, 0x72, 0x64, 0x65, 0x72, 0x27, 0x3a, 0x20, 0x46, 0x61, 0x6c, 0x73, 0x65, 0x2c, 0x20,
            0x27, 0x73, 0x68, 0x61, 0x70, 0x65, 0x27, 0x3a, 0x20, 0x28, 0x34, 0x30, 0x30, 0x30, 0x30, 0x30, 0x30,
            0x30, 0x30, 0x37, 0x37, 0x37, 0x37, 0x37, 0x20, 0x38, 0x30, 0x30, 0x30, 0x30, 0x30, 0x30, 0x30, 0x30,
            0x30, 0x30, 0x33, 0x2c, 0x30, 0x20, 0x20, 0x30, 0x20, 0x20, 0x20, 0x20, 0x30, 0x2c, 0x30, 0x20, 0x33,
            0x2c, 0x20, 0x33, 0x2c, 0x33, 0x2c, 0x20, 0x33, 0x2c, 0x20, 0x33, 0x29, 0x2c, 0x20, 0x7d, 0x20, 0x20,
            0x00, 0x00, 0x00, 0x00, 0x00, 0x04, 0x20, 0x20, 0x35
        ]
        XCTAssertThrowsError(try Npy.decode(bytes)) { e in
            guard case .shapeTooLarge? = e as? NpyError else { return XCTFail("\(e)") }
        }
    }

    func testCannotOpenAndIOFailure() {
        XCTAssertThrowsError(try Npy.read(path: "/nonexistent/dir/x.npy")) { e in
            guard case NpyError.cannotOpen(let path, _) = e else { return XCTFail("\(e)") }
            XCTAssertEqual(path, "/nonexistent/dir/x.npy")
        }
        // Writing to a full device fails at flush time.
        if FileManager.default.fileExists(atPath: "/dev/full") {
            XCTAssertThrowsError(try Npy.write(try NpyArray(float32: [Float](repeating: 0, count: 4096)), path: "/dev/full")) { e in
                guard case NpyError.ioFailed = e else { return XCTFail("\(e)") }
            }
        }
    }
}
