import Foundation
import XCTest
@testable import WeightFormat

final class WeightFormatRoundTripTests: XCTestCase {
    var dir = ""
    override func setUp() { dir = GLWTestFile.tempDir() }
    override func tearDown() { try? FileManager.default.removeItem(atPath: dir) }

    func testRoundTripEveryDType() throws {
        let path = dir + "/t.glw"
        try GLWTestFile.write(to: path)
        let f = try WeightFile(path: path, verifyChecksums: true)
        XCTAssertEqual(f.version, 1)
        XCTAssertEqual(f.tensorNames, ["a.weight", "b.half", "c.brain", "d.quant", "e.index", "f.mask", "g.scalar", "h.empty"])
        XCTAssertEqual(f.modelName, "test")
        XCTAssertEqual(f.hyperparameters["image_size"], .int(64))
        XCTAssertEqual(f.hyperparameters["dropout"], .double(0.1))
        XCTAssertEqual(f.hyperparameters["attention_resolutions"], .string("32,16,8"))
        XCTAssertEqual(f.hyperparameters["xf_padding"], .bool(true))

        let a = try XCTUnwrap(f.tensor("a.weight"))
        XCTAssertEqual(a.dtype, .f32); XCTAssertEqual(a.shape, [3, 4])
        XCTAssertEqual(Array(a.data.bindMemory(to: Float.self)), GLWTestFile.f32Values)
        XCTAssertEqual(Array(f.tensor("b.half")!.data.bindMemory(to: UInt16.self)), GLWTestFile.f16Bits)
        XCTAssertEqual(Array(f.tensor("c.brain")!.data.bindMemory(to: UInt16.self)), GLWTestFile.bf16Bits)
        let q = try XCTUnwrap(f.tensor("d.quant"))
        XCTAssertEqual(q.dtype, .int8); XCTAssertEqual(q.shape, [4, 8])
        XCTAssertEqual(Array(q.data.bindMemory(to: Int8.self)), GLWTestFile.int8Values)
        XCTAssertEqual(Array(try XCTUnwrap(q.scales)), GLWTestFile.int8Scales)
        XCTAssertEqual(Int(bitPattern: q.scales!.baseAddress) % 64, 0)
        XCTAssertEqual(Array(f.tensor("e.index")!.data.bindMemory(to: Int64.self)), GLWTestFile.i64Values)
        XCTAssertEqual(Array(f.tensor("f.mask")!.data), GLWTestFile.boolValues)
        let s = try XCTUnwrap(f.tensor("g.scalar"))
        XCTAssertEqual(s.shape, []); XCTAssertEqual(s.elementCount, 1)
        XCTAssertEqual(s.data.load(as: Float.self), 42)
        XCTAssertEqual(f.tensor("h.empty")!.data.count, 0)
        XCTAssertNil(f.tensor("tokenizer/vocab.txt"))
        XCTAssertEqual(Array(try XCTUnwrap(f.tokenizerFiles["vocab.txt"])), GLWTestFile.fileBytes)
        for t in f.tensors { XCTAssertEqual(t.offset % 64, 0, t.name) }
    }

    func testReleasedMemoryReadsBackTheSameValues() throws {
        let path = dir + "/r.glw"
        try GLWTestFile.write(to: path, alignment: 4096)   // page-aligned tensors: each release drops whole pages
        let f = try WeightFile(path: path)
        let a = try XCTUnwrap(f.tensor("a.weight"))
        XCTAssertEqual(Array(a.data.bindMemory(to: Float.self)), GLWTestFile.f32Values)
        f.releaseResidentMemory()
        f.releaseResidentMemory()   // twice is fine
        XCTAssertEqual(Array(a.data.bindMemory(to: Float.self)), GLWTestFile.f32Values)
        XCTAssertEqual(Array(try XCTUnwrap(f.tensor("d.quant")).data.bindMemory(to: Int8.self)), GLWTestFile.int8Values)
        XCTAssertNoThrow(try f.verifyChecksums())
    }

    func testSameInputGivesSameBytes() throws {
        let one = try GLWTestFile.write(to: dir + "/1.glw")
        let two = try GLWTestFile.write(to: dir + "/2.glw")
        XCTAssertEqual(one, two)
    }

    func testPageAlignmentIsReadable() throws {
        try GLWTestFile.write(to: dir + "/p.glw", alignment: 4096)
        let f = try WeightFile(path: dir + "/p.glw", verifyChecksums: true)
        XCTAssertEqual(f.alignment, 4096)
        for t in f.tensors { XCTAssertEqual(t.offset % 4096, 0, t.name) }
    }

    func testNeverOverwritesWithoutPermission() throws {
        let path = dir + "/x.glw"
        try GLWTestFile.write(to: path)
        XCTAssertThrowsError(try WeightFileWriter(destination: path, metadataJSON: GLWTestFile.metadata, entries: [])) {
            XCTAssertEqual($0 as? WeightFormatError, .destinationExists(path: path))
            XCTAssertFalse("\($0)".contains("--"), "library errors name no CLI flags: \($0)")
        }
    }

    func testDestinationAppearingDuringWriteIsNotReplaced() throws {
        let path = dir + "/late.glw"
        let w = try WeightFileWriter(destination: path, metadataJSON: GLWTestFile.metadata, entries: [])
        try Data("precious".utf8).write(to: URL(fileURLWithPath: path))
        XCTAssertThrowsError(try w.finish()) { XCTAssertEqual($0 as? WeightFormatError, .destinationExists(path: path)) }
        XCTAssertEqual(try String(contentsOfFile: path, encoding: .utf8), "precious")
    }

    func testAbandonedWriterLeavesNothing() throws {
        let path = dir + "/gone.glw"
        do {
            let w = try WeightFileWriter(destination: path, metadataJSON: GLWTestFile.metadata, entries: GLWTestFile.plan)
            XCTAssertTrue(FileManager.default.fileExists(atPath: w.temporaryPath))
            try GLWTestFile.f32Values.withUnsafeBytes { try w.write($0) }
            XCTAssertThrowsError(try w.finish()) {   // not all entries written
                guard case .writerMisuse = $0 as? WeightFormatError else { return XCTFail("\($0)") }
            }
        }
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir), [])
    }

    func testWriterRejectsExtraBytesAndMisplacedScales() throws {
        let w = try WeightFileWriter(destination: dir + "/m.glw", metadataJSON: GLWTestFile.metadata,
                                     entries: [.tensor("q", .int8, [2, 2])])
        XCTAssertThrowsError(try [Float(1)].withUnsafeBufferPointer { try w.writeScales($0) })
        try [Int8](repeating: 1, count: 4).withUnsafeBytes { try w.write($0) }
        XCTAssertThrowsError(try [Int8(1)].withUnsafeBytes { try w.write($0) }) {
            guard case .writerMisuse = $0 as? WeightFormatError else { return XCTFail("\($0)") }
        }
        w.abort()
        XCTAssertFalse(FileManager.default.fileExists(atPath: w.temporaryPath))
    }

    func testWriterRejectsRankOneInt8() {
        XCTAssertThrowsError(try WeightFileWriter(destination: dir + "/r.glw", metadataJSON: GLWTestFile.metadata,
                                                  entries: [.tensor("v", .int8, [4])])) {
            guard case .badShape(let t, _, _) = $0 as? WeightFormatError else { return XCTFail("\($0)") }
            XCTAssertEqual(t, "v")
        }
    }

    func testWriterRejectsDuplicateNames() {
        XCTAssertThrowsError(try WeightFileWriter(destination: dir + "/d.glw", metadataJSON: GLWTestFile.metadata,
                                                  entries: [.tensor("w", .f32, [1]), .tensor("w", .f32, [1])])) {
            XCTAssertEqual($0 as? WeightFormatError, .duplicateName(name: "w"))
        }
    }

    func testWriterReportsIOErrors() {
        XCTAssertThrowsError(try WeightFileWriter(destination: dir + "/no/such/dir.glw", metadataJSON: GLWTestFile.metadata, entries: [])) {
            guard case let .io(_, op, err) = $0 as? WeightFormatError else { return XCTFail("\($0)") }
            XCTAssertEqual(op, "create"); XCTAssertEqual(err, ENOENT)
        }
    }

    func testMissingFileIsAnIOError() {
        XCTAssertThrowsError(try WeightFile(path: dir + "/absent.glw")) {
            guard case let .io(_, op, err) = $0 as? WeightFormatError else { return XCTFail("\($0)") }
            XCTAssertEqual(op, "open"); XCTAssertEqual(err, ENOENT)
        }
    }

    func testErrorMessagesNameTheTensor() {
        let e = WeightFormatError.checksumMismatch(tensor: "out.2.weight", expected: 0xdeadbeef, actual: 1)
        XCTAssertEqual(e.description, "tensor 'out.2.weight': CRC-32 mismatch: stored deadbeef, computed 00000001")
    }

    // MARK: activation_bits (glw-policy-2)

    func metadata(activationBits: [String: String]) -> String {
        let tensors = activationBits.map { #""\#($0.key)":{"activation_bits":\#($0.value),"dtype":"int8"}"# }.sorted().joined(separator: ",")
        return #"{"format":"glw","model":"test","quantization":{"policy":"glw-policy-2","tensors":{"# + tensors + "}}}"
    }

    func testActivationBitsAreRead() throws {
        try GLWTestFile.write(to: dir + "/bits.glw", metadata: metadata(activationBits: ["d.quant": "8"]))
        XCTAssertEqual(try WeightFile(path: dir + "/bits.glw").int8ActivationBits, ["d.quant": 8])
        try GLWTestFile.write(to: dir + "/plain.glw")
        XCTAssertEqual(try WeightFile(path: dir + "/plain.glw").int8ActivationBits, [:])
    }

    func testBadActivationBitsAreRejectedByName() throws {
        let cases: [(String, String, WeightFormatError)] = [
            ("d.quant", "12", .badActivationBits(tensor: "d.quant", expected: "8 or 16", actual: "12")),
            ("d.quant", #""8""#, .badActivationBits(tensor: "d.quant", expected: "8 or 16", actual: #""8""#)),
            ("a.weight", "8", .badActivationBits(tensor: "a.weight", expected: "an int8 tensor", actual: "a f32 tensor")),
            ("zz.weight", "16", .badActivationBits(tensor: "zz.weight", expected: "a tensor of the file", actual: "no such tensor")),
            ("tokenizer/vocab.txt", "8", .badActivationBits(tensor: "tokenizer/vocab.txt", expected: "a tensor of the file", actual: "no such tensor")),
        ]
        for (name, value, expected) in cases {
            let path = dir + "/bad.glw"
            try GLWTestFile.write(to: path, metadata: metadata(activationBits: [name: value]))
            XCTAssertThrowsError(try WeightFile(path: path)) { XCTAssertEqual($0 as? WeightFormatError, expected) }
        }
        XCTAssertEqual(WeightFormatError.badActivationBits(tensor: "d.quant", expected: "8 or 16", actual: "12").description,
                       "tensor 'd.quant': activation_bits must be 8 or 16, found 12")
    }
}
