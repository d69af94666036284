// Helpers for the .glw tests: a small file with every dtype, and byte-level corruption.
import Foundation
import XCTest
@testable import WeightFormat

enum GLWTestFile {
    static let metadata = #"{"format":"glw","hyperparameters":{"attention_resolutions":"32,16,8","dropout":0.1,"image_size":64,"xf_padding":true},"model":"test"}"#

    static let f32Values: [Float] = (0..<12).map { Float($0) * 0.5 - 3 }
    static let f16Bits: [UInt16] = [0x3C00, 0xC000, 0x0001, 0x7BFF, 0x0000]
    static let bf16Bits: [UInt16] = [0x3F80, 0xBF80, 0x4049, 0x0000, 0x7F80, 0x0001]
    static let int8Values: [Int8] = (0..<32).map { Int8(truncatingIfNeeded: $0 * 9 - 127) }
    static let int8Scales: [Float] = [0.5, 0.25, 2, 0]
    static let i64Values: [Int64] = [-1, 0, Int64.max]
    static let boolValues: [UInt8] = [1, 0]
    static let fileBytes: [UInt8] = Array("hello tokenizer".utf8)

    static let plan: [WeightEntryPlan] = [
        .tensor("a.weight", .f32, [3, 4]),
        .tensor("b.half", .f16, [5]),
        .tensor("c.brain", .bf16, [2, 3]),
        .tensor("d.quant", .int8, [4, 8]),
        .tensor("e.index", .i64, [3]),
        .tensor("f.mask", .bool, [2]),
        .tensor("g.scalar", .f32, []),
        .tensor("h.empty", .f32, [0, 4]),
        .file("tokenizer/vocab.txt", byteCount: fileBytes.count),
    ]

    /// Writes the small test file to `path` and returns its bytes.
    @discardableResult
    static func write(to path: String, alignment: Int = 64, metadata: String = GLWTestFile.metadata) throws -> [UInt8] {
        let w = try WeightFileWriter(destination: path, overwrite: true, metadataJSON: metadata, entries: plan, alignment: alignment)
        try f32Values.withUnsafeBytes { try w.write($0) }
        try f16Bits.withUnsafeBytes { try w.write($0) }
        try bf16Bits.withUnsafeBytes { try w.write($0) }
        // int8 values in two chunks to exercise chunked writes
        try int8Values.withUnsafeBytes { try w.write(UnsafeRawBufferPointer(rebasing: $0[0..<13])); try w.write(UnsafeRawBufferPointer(rebasing: $0[13...])) }
        try int8Scales.withUnsafeBufferPointer { try w.writeScales($0) }
        try i64Values.withUnsafeBytes { try w.write($0) }
        try boolValues.withUnsafeBytes { try w.write($0) }
        try [Float(42)].withUnsafeBytes { try w.write($0) }
        try fileBytes.withUnsafeBytes { try w.write($0) }
        try w.finish()
        return [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
    }

    static func tempDir() -> String {
        let d = NSTemporaryDirectory() + "glw-tests-\(getpid())-\(UUID().uuidString.prefix(8))"
        try? FileManager.default.createDirectory(atPath: d, withIntermediateDirectories: true)
        return d
    }
}

/// Byte-level access to a .glw file image for corruption tests.
struct GLWImage {
    var bytes: [UInt8]
    func u32(_ o: Int) -> UInt32 { bytes[o..<o + 4].reversed().reduce(0) { $0 << 8 | UInt32($1) } }
    func u64(_ o: Int) -> UInt64 { bytes[o..<o + 8].reversed().reduce(0) { $0 << 8 | UInt64($1) } }
    mutating func set32(_ o: Int, _ v: UInt32) { for i in 0..<4 { bytes[o + i] = UInt8(truncatingIfNeeded: v >> (8 * UInt32(i))) } }
    mutating func set64(_ o: Int, _ v: UInt64) { for i in 0..<8 { bytes[o + i] = UInt8(truncatingIfNeeded: v >> (8 * UInt64(i))) } }
    var tableOffset: Int { Int(u64(32)) }
    func entry(_ i: Int) -> Int { tableOffset + 128 * i }
    var dataStart: Int {
        let namesEnd = Int(u64(48) + u64(56)); let a = Int(u32(8))
        return (namesEnd + a - 1) / a * a
    }
    /// Recomputes the header CRC so that a deliberate index change reaches the later checks.
    mutating func reseal() {
        set32(12, 0)
        let crc = bytes[0..<dataStart].withUnsafeBytes { glwCRC32($0) }
        set32(12, crc)
    }
    func save(_ path: String) throws { try Data(bytes).write(to: URL(fileURLWithPath: path)) }
}
