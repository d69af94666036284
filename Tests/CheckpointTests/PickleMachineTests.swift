// The pickle subset on its own: every protocol, the text opcodes, memo semantics, integers of any size.
import Foundation
import XCTest
import TestSupport
@testable import Checkpoint

private func bytes(hex: String) -> [UInt8] {
    var out: [UInt8] = []
    var it = hex.makeIterator()
    while let hi = it.next(), let lo = it.next() { out.append(UInt8(String([hi, lo]), radix: 16)!) }
    return out
}

private func decode(_ b: [UInt8]) throws -> PickleValue {
    try b.withUnsafeBytes { try PickleDecoder.decode($0) }
}

private func decode(_ s: String) throws -> PickleValue { try decode(Array(s.utf8)) }

final class PickleMachineTests: XCTestCase {
    /// pickle.dumps({'a': [1, -2, 2.5, 'xé', None, True, False, (1, 2)], 'b': 10**30, 'c': -10**20,
    ///               'd': {'k': (7,), 3: -(2**40)}}, protocol=P) for P = 0...5 (CPython 3).
    static let sameValueEveryProtocol = [
        "286470300a56610a70310a286c70320a49310a61492d320a6146322e350a615678e90a70330a614e614930310a614930300a612849310a49320a7470340a617356620a70350a4c313030303030303030303030303030303030303030303030303030303030304c0a7356630a70360a4c2d3130303030303030303030303030303030303030304c0a7356640a70370a286470380a566b0a70390a2849370a747031300a7349330a4c2d313039393531313632373737364c0a73732e",
        "7d71002858010000006171015d7102284b014afeffffff474004000000000000580300000078c3a971034e4930310a4930300a284b014b027471046558010000006271054c313030303030303030303030303030303030303030303030303030303030304c0a58010000006371064c2d3130303030303030303030303030303030303030304c0a58010000006471077d71082858010000006b7109284b0774710a4b034c2d313039393531313632373737364c0a75752e",
        "80027d71002858010000006171015d7102284b014afeffffff474004000000000000580300000078c3a971034e88894b014b028671046558010000006271058a0d00000040eaed7446d09c2c9f0c58010000006371068a090000f09cd2a13894fa58010000006471077d71082858010000006b71094b0785710a4b038a060000000000ff75752e",
        "80037d71002858010000006171015d7102284b014afeffffff474004000000000000580300000078c3a971034e88894b014b028671046558010000006271058a0d00000040eaed7446d09c2c9f0c58010000006371068a090000f09cd2a13894fa58010000006471077d71082858010000006b71094b0785710a4b038a060000000000ff75752e",
        "80049568000000000000007d94288c0161945d94284b014afeffffff4740040000000000008c0378c3a9944e88894b014b028694658c0162948a0d00000040eaed7446d09c2c9f0c8c0163948a090000f09cd2a13894fa8c0164947d94288c016b944b0785944b038a060000000000ff75752e",
        "80059568000000000000007d94288c0161945d94284b014afeffffff4740040000000000008c0378c3a9944e88894b014b028694658c0162948a0d00000040eaed7446d09c2c9f0c8c0163948a090000f09cd2a13894fa8c0164947d94288c016b944b0785944b038a060000000000ff75752e",
    ]

    func testEveryProtocolDecodesTheSameValue() throws {
        let expected = PickleValue.dict([
            PickleDictEntry(key: .string("a"), value: .list([.int(1), .int(-2), .float(2.5), .string("xé"), .none,
                                                             .bool(true), .bool(false), .tuple([.int(1), .int(2)])])),
            PickleDictEntry(key: .string("b"), value: .bigInt([0, 0, 0, 0x40, 0xEA, 0xED, 0x74, 0x46, 0xD0, 0x9C, 0x2C, 0x9F, 0x0C])),
            PickleDictEntry(key: .string("c"), value: .bigInt([0, 0, 0xF0, 0x9C, 0xD2, 0xA1, 0x38, 0x94, 0xFA])),
            PickleDictEntry(key: .string("d"), value: .dict([
                PickleDictEntry(key: .string("k"), value: .tuple([.int(7)])),
                PickleDictEntry(key: .int(3), value: .int(-(1 << 40))),
            ])),
        ])
        for (p, hex) in Self.sameValueEveryProtocol.enumerated() {
            XCTAssertEqual(try decode(bytes(hex: hex)), expected, "protocol \(p)")
        }
    }

    /// pickle.dumps({'s': frozenset([3]), 'e': b'\x00\xff', 'set': {1}, 'ba': bytearray(b'\x01')}, protocol=5)
    func testSetsBytesAndByteArrays() throws {
        let v = try decode(bytes(hex: "80059533000000000000007d94288c017394284b0391948c016594430200ff948c03736574948f94284b01908c026261949601000000000000000194752e"))
        XCTAssertEqual(v["s"], .list([.int(3)]))
        XCTAssertEqual(v["e"], .bytes([0, 0xFF]))
        XCTAssertEqual(v["set"], .list([.int(1)]))
        XCTAssertEqual(v["ba"], .bytes([1]))
    }

    func testPython2StringOpcodes() throws {
        XCTAssertEqual(try decode("S'a\\x41\\n\\'q'\n."), .string("aA\n'q"))
        XCTAssertEqual(try decode("S\"oct\\101\"\n."), .string("octA"))
        XCTAssertEqual(try decode([0x54, 2, 0, 0, 0, 0x68, 0x69, 0x2E]), .string("hi"))        // BINSTRING
        XCTAssertEqual(try decode([0x55, 2, 0xFF, 0x00, 0x2E]), .bytes([0xFF, 0]))             // SHORT_BINSTRING, not UTF-8
        XCTAssertEqual(try decode("V\\u00e9t\\U0001F600\n."), .string("ét😀"))
        XCTAssertThrowsError(try decode("Sunquoted\n.")) {
            guard case .invalidLiteral("STRING", _, 0)? = $0 as? CheckpointError else { return XCTFail("\($0)") }
        }
    }

    func testTextNumbers() throws {
        XCTAssertEqual(try decode("I01\n."), .bool(true))
        XCTAssertEqual(try decode("I-42\n."), .int(-42))
        XCTAssertEqual(try decode("L-9223372036854775808L\n."), .int(Int.min))
        XCTAssertEqual(try decode("F-1.5e-3\n."), .float(-0.0015))
        XCTAssertThrowsError(try decode("F1.5x\n.")) {
            guard case .invalidLiteral("FLOAT", _, _)? = $0 as? CheckpointError else { return XCTFail("\($0)") }
        }
        XCTAssertThrowsError(try decode("I12a\n.")) {
            guard case .invalidLiteral("INT", _, _)? = $0 as? CheckpointError else { return XCTFail("\($0)") }
        }
    }

    func testBinaryIntegers() throws {
        XCTAssertEqual(try decode([0x8A, 1, 0xFF, 0x2E]), .int(-1))                         // LONG1
        XCTAssertEqual(try decode([0x8A, 0, 0x2E]), .int(0))
        XCTAssertEqual(try decode([0x8B, 2, 0, 0, 0, 0x00, 0x80, 0x2E]), .int(-32768))     // LONG4
        XCTAssertEqual(try decode([0x8A, 9, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x2E]), .int(-1))  // non-minimal
        XCTAssertEqual(try decode([0x4A, 0xFE, 0xFF, 0xFF, 0xFF, 0x2E]), .int(-2))         // BININT
        XCTAssertEqual(try decode([0x4D, 0xFF, 0xFF, 0x2E]), .int(65535))                   // BININT2
        XCTAssertEqual(try decode([0x47, 0x3F, 0xF8, 0, 0, 0, 0, 0, 0, 0x2E]), .float(1.5))  // BINFLOAT (big-endian)
    }

    /// Memo entries are references: appending to a list reached through GET changes every use of it.
    func testMemoSharesContainers() throws {
        // ] q0 0(POP) ( h0 N a 0 h0 t .   -> ([None],) built from the memoised list after mutation
        let v = try decode([0x5D, 0x71, 0, 0x30, 0x68, 0, 0x4E, 0x61, 0x30, 0x68, 0, 0x85, 0x2E])
        XCTAssertEqual(v, .tuple([.list([.none])]))
    }

    func testMemoVariantsAndStackOps() throws {
        XCTAssertEqual(try decode("Vx\np7\n0g7\n."), .string("x"))                                           // PUT/GET
        XCTAssertEqual(try decode([0x4B, 5, 0x72, 1, 0, 1, 0, 0x30, 0x6A, 1, 0, 1, 0, 0x2E]), .int(5))      // LONG_BINPUT/GET
        XCTAssertEqual(try decode([0x80, 4, 0x4B, 9, 0x94, 0x30, 0x68, 0, 0x2E]), .int(9))                  // MEMOIZE
        XCTAssertEqual(try decode([0x4B, 1, 0x32, 0x86, 0x2E]), .tuple([.int(1), .int(1)]))                 // DUP
        XCTAssertEqual(try decode([0x4B, 1, 0x28, 0x4B, 2, 0x4B, 3, 0x31, 0x2E]), .int(1))                  // POP_MARK
        XCTAssertEqual(try decode([0x28, 0x4B, 1, 0x4B, 2, 0x6C, 0x2E]), .list([.int(1), .int(2)]))         // LIST
        XCTAssertEqual(try decode([0x28, 0x56, 0x6B, 0x0A, 0x4E, 0x64, 0x2E]), .dict([PickleDictEntry(key: .string("k"), value: .none)]))
    }

    func testDuplicateDictKeysKeepTheLastValue() throws {
        // { ( 'a' 1 'a' 2 u .
        let v = try decode([0x7D, 0x28, 0x8C, 1, 0x61, 0x4B, 1, 0x8C, 1, 0x61, 0x4B, 2, 0x75, 0x2E])
        XCTAssertEqual(v, .dict([PickleDictEntry(key: .string("a"), value: .int(2))]))
    }

    func testAllowlistedObjects() throws {
        // torch.Size((2, 3)) and torch.device('cpu', 0)
        let size = try decode("ctorch\nSize\n((I2\nI3\nttR.")
        XCTAssertEqual(size, .tuple([.int(2), .int(3)]))
        let device = try decode("ctorch\ndevice\n(Vcuda\nI0\ntR.")
        XCTAssertEqual(device, .object(type: "torch.device", args: [.string("cuda"), .int(0)]))
        XCTAssertEqual(try decode("ctorch\nFloatStorage\n."), .global("torch.FloatStorage"))
    }

    func testFrameMustFitTheInput() throws {
        XCTAssertEqual(try decode([0x80, 4, 0x95, 2, 0, 0, 0, 0, 0, 0, 0, 0x4E, 0x2E]), PickleValue.none)
    }

    /// A list appended to itself through DUP (no memo) is a cycle: refused, and freed without recursion.
    func testCycleThroughDupIsRefused() {
        XCTAssertThrowsError(try decode([0x5D, 0x32, 0x61, 0x2E])) {
            guard case .limitExceeded("levels of nesting (or a reference cycle)", _, _)? = $0 as? CheckpointError else { return XCTFail("\($0)") }
        }
    }

    /// 200,000 nested 1-tuples: refused by the depth bound, and torn down iteratively (no stack overflow).
    func testDeepTuplesAreRefusedAndFreed() {
        let pickle: [UInt8] = [0x4E] + [UInt8](repeating: 0x85, count: 200_000) + [0x2E]
        XCTAssertThrowsError(try decode(pickle)) {
            guard case .limitExceeded("levels of nesting (or a reference cycle)", _, _)? = $0 as? CheckpointError else { return XCTFail("\($0)") }
        }
    }

    func testBigIntegersRenderInDecimal() throws {
        XCTAssertEqual(PickleValue.bigInt([0, 0, 0, 0x40, 0xEA, 0xED, 0x74, 0x46, 0xD0, 0x9C, 0x2C, 0x9F, 0x0C]).description,
                       "1000000000000000000000000000000")
        XCTAssertEqual(PickleValue.bigInt([0, 0, 0xF0, 0x9C, 0xD2, 0xA1, 0x38, 0x94, 0xFA]).description, "-100000000000000000000")
        XCTAssertEqual(try decode("L-123456789012345678901234567890L\n.").description, "-123456789012345678901234567890")
    }

    func testCannotOpen() {
        XCTAssertThrowsError(try TorchCheckpoint(path: "/nonexistent/x.pt")) {
            guard case .cannotOpen(path: "/nonexistent/x.pt", _)? = $0 as? CheckpointError else { return XCTFail("\($0)") }
        }
        XCTAssertThrowsError(try TorchCheckpoint(path: "/tmp")) {
            XCTAssertEqual($0 as? CheckpointError, .cannotOpen(path: "/tmp", reason: "not a regular file"))
        }
    }

    func testInMemoryCheckpoint() throws {
        let path = TestPaths.fixture("checkpoint/dtypes.pt").path
        let data = try XCTUnwrap(FileManager.default.contents(atPath: path))
        let c = try TorchCheckpoint(bytes: [UInt8](data))
        XCTAssertEqual(c.tensors.count, 10)
    }
}
