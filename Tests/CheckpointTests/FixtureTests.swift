// Real torch.save files (tools/make_fixtures.py) read back and compared with what torch itself saw.
import Foundation
import XCTest
import TestSupport
@testable import Checkpoint

/// The expectation JSON written next to every fixture.
struct FixtureExpectation {
    struct Tensor {
        let name: String, dtype: String, shape: [Int], strides: [Int], storageOffset: Int, contiguous: Bool, hex: String
    }
    let format: String
    let stateDictKey: String?
    let tensors: [Tensor]
    let metadata: [String: Any]

    init(_ fixture: String) throws {
        let url = TestPaths.fixture("checkpoint/\(fixture).json")
        let object = try JSONSerialization.jsonObject(with: try Data(contentsOf: url)) as! [String: Any]
        format = object["format"] as! String
        stateDictKey = object["state_dict_key"] as? String
        metadata = object["metadata"] as? [String: Any] ?? [:]
        tensors = (object["tensors"] as! [[String: Any]]).map {
            Tensor(name: $0["name"] as! String, dtype: $0["dtype"] as! String, shape: $0["shape"] as! [Int],
                   strides: $0["strides"] as! [Int], storageOffset: $0["storage_offset"] as! Int,
                   contiguous: $0["contiguous"] as! Bool, hex: $0["hex"] as! String)
        }
    }
}

func hexString(_ bytes: UnsafeRawBufferPointer) -> String {
    let digits = Array("0123456789abcdef".utf8)
    var out = [UInt8]()
    out.reserveCapacity(bytes.count * 2)
    for b in bytes { out.append(digits[Int(b >> 4)]); out.append(digits[Int(b & 15)]) }
    return String(decoding: out, as: UTF8.self)
}

func openFixture(_ name: String, verify: Bool = true) throws -> TorchCheckpoint {
    try TorchCheckpoint(path: TestPaths.fixture("checkpoint/\(name).pt").path, verifyChecksums: verify)
}

final class FixtureTests: XCTestCase {
    /// Every tensor: name order, dtype, shape, strides, offset, contiguity and exact packed bytes.
    func check(_ fixture: String, file: StaticString = #filePath, line: UInt = #line) throws {
        let expected = try FixtureExpectation(fixture)
        let ckpt = try openFixture(fixture)
        XCTAssertEqual(ckpt.format.rawValue, expected.format, file: file, line: line)
        XCTAssertEqual(ckpt.stateDictKey, expected.stateDictKey, file: file, line: line)
        XCTAssertEqual(ckpt.tensors.map(\.name), expected.tensors.map(\.name), file: file, line: line)
        for (t, e) in zip(ckpt.tensors, expected.tensors) {
            XCTAssertEqual(t.dtype.rawValue, e.dtype, t.name, file: file, line: line)
            XCTAssertEqual(t.shape, e.shape, t.name, file: file, line: line)
            XCTAssertEqual(t.strides, e.strides, t.name, file: file, line: line)
            XCTAssertEqual(t.storageOffset, e.storageOffset, t.name, file: file, line: line)
            XCTAssertEqual(t.isContiguous, e.contiguous, t.name, file: file, line: line)
            XCTAssertEqual(t.withContiguousBytes { hexString($0) }, e.hex, t.name, file: file, line: line)
            let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: t.byteCount, alignment: 16)
            defer { buffer.deallocate() }
            try t.copyContiguous(into: buffer)
            XCTAssertEqual(hexString(UnsafeRawBufferPointer(buffer)), e.hex, t.name, file: file, line: line)
            XCTAssertEqual(ckpt.tensor(named: t.name)?.shape, t.shape, file: file, line: line)
        }
    }

    func testEveryDTypeZip() throws {
        try check("dtypes")
        let ckpt = try openFixture("dtypes")
        XCTAssertEqual(ckpt.archivePrefix, "dtypes")
        XCTAssertEqual(Set(ckpt.tensors.map(\.dtype)), Set(TorchDType.allCases))
        XCTAssertTrue(ckpt.globalsReferenced.contains("torch._utils._rebuild_tensor_v2"))
        XCTAssertTrue(ckpt.globalsReferenced.contains("torch.BFloat16Storage"))
        XCTAssertEqual(ckpt.archiveInfo.first { $0.key == "byteorder" }?.value, "little")
        // Stored entries are zero-copy slices of the mapped file.
        XCTAssertTrue(ckpt.zipEntries.allSatisfy { $0.method == 0 })
    }

    func testEveryDTypeLegacy() throws {
        try check("dtypes_legacy")
        let ckpt = try openFixture("dtypes_legacy")
        XCTAssertNil(ckpt.archivePrefix)
        XCTAssertEqual(ckpt.format, .legacy)
        XCTAssertEqual(ckpt.archiveInfo.first { $0.key == "little_endian" }?.value, "True")
    }

    func testDeflatedCopy() throws {
        try check("dtypes_deflated")
        let ckpt = try openFixture("dtypes_deflated")
        XCTAssertTrue(ckpt.zipEntries.contains { $0.method == 8 })
    }

    func testZip64Copy() throws { try check("dtypes_zip64") }

    func testViewsZip() throws { try checkViews("views") }
    func testViewsLegacy() throws { try checkViews("views_legacy") }

    func checkViews(_ fixture: String) throws {
        try check(fixture)
        let ckpt = try openFixture(fixture)
        let base = try XCTUnwrap(ckpt.tensor(named: "base")), row1 = try XCTUnwrap(ckpt.tensor(named: "row1"))
        XCTAssertEqual(base.storageKey, row1.storageKey)
        XCTAssertEqual(base.storageBytes.baseAddress, row1.storageBytes.baseAddress)
        XCTAssertEqual(row1.storageOffset, 6)
        XCTAssertFalse(try XCTUnwrap(ckpt.tensor(named: "transposed")).isContiguous)
        XCTAssertEqual(try XCTUnwrap(ckpt.tensor(named: "expanded")).strides, [0, 1])
        let scalar = try XCTUnwrap(ckpt.tensor(named: "scalar"))
        XCTAssertEqual(scalar.shape, [])
        XCTAssertEqual(scalar.elementCount, 1)
        XCTAssertEqual(scalar.withContiguousBytes { $0.loadUnaligned(as: Float.self) }, 3.25)
        XCTAssertEqual(try XCTUnwrap(ckpt.tensor(named: "empty")).elementCount, 0)
        // Shared storage is counted once.
        XCTAssertLessThan(ckpt.storageCount, ckpt.tensors.count)
    }

    func testNestedStateDictWithMetadata() throws { try checkNested("nested") }
    func testNestedLegacy() throws { try checkNested("nested_legacy") }

    func checkNested(_ fixture: String) throws {
        try check(fixture)
        let ckpt = try openFixture(fixture)
        let m = ckpt.metadata
        XCTAssertEqual(m["epoch"], .int(12))
        XCTAssertEqual(m["lr"], .float(0.00025))
        XCTAssertEqual(m["name"], .string("tiny ünet"))
        XCTAssertEqual(m["nothing"], PickleValue.none)
        XCTAssertEqual(m["flags"], .list([.bool(true), .bool(false)]))
        XCTAssertEqual(m["shape"], .tuple([.int(64), .int(64)]))
        XCTAssertEqual(m["config"]?["channels"], .list([.int(32), .int(64)]))
        XCTAssertEqual(m["config"]?["dropout"], .float(0.1))
        XCTAssertEqual(m["device"], .object(type: "torch.device", args: [.string("cpu")]))
        XCTAssertEqual(m["negative"], .int(-123456789012))
        // 2**70 + 5 as little-endian two's complement.
        XCTAssertEqual(m["big"], .bigInt([5, 0, 0, 0, 0, 0, 0, 0, 0x40]))
        XCTAssertEqual(ckpt.metadataKeys.first, "epoch")
        XCTAssertFalse(ckpt.metadataKeys.contains("state_dict"))
    }

    func testModuleStateDict() throws {
        try check("module")
        let ckpt = try openFixture("module")
        XCTAssertEqual(ckpt.tensors.map(\.name).prefix(2), ["steps", "conv.weight"])
        XCTAssertTrue(ckpt.globalsReferenced.contains("collections.OrderedDict"))
        XCTAssertEqual(ckpt.tensor(named: "steps")?.dtype, .int64)
    }

    func testParametersProtocol4() throws {
        try check("parameters")
        let ckpt = try openFixture("parameters")
        XCTAssertEqual(ckpt.pickleProtocol, 4)
        XCTAssertEqual(ckpt.metadata["blob"], .bytes([0, 1, 0xFE]))
        XCTAssertTrue(ckpt.globalsReferenced.contains("torch._utils._rebuild_parameter"))
    }

    func testCopyContiguousRejectsWrongSize() throws {
        let t = try XCTUnwrap(try openFixture("dtypes").tensor(named: "f32"))
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 3, alignment: 16)
        defer { buffer.deallocate() }
        XCTAssertThrowsError(try t.copyContiguous(into: buffer)) {
            XCTAssertEqual($0 as? CheckpointError, .bufferSizeMismatch(name: "f32", expected: 24, actual: 3))
        }
    }

    func testViewsOutliveCheckpoint() throws {
        var tensor: CheckpointTensor? = nil
        do { tensor = try openFixture("dtypes").tensor(named: "i16") }
        XCTAssertEqual(tensor?.withContiguousBytes { hexString($0) }, "0080feff0300ff7f")
    }
}
