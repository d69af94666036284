import Foundation
import XCTest
import TestSupport
@testable import Imaging

/// Reads `Tests/Fixtures/imaging/<name>`.
func fixtureBytes(_ name: String, file: StaticString = #filePath, line: UInt = #line) throws -> [UInt8] {
    let url = TestPaths.fixture("imaging/" + name)
    return [UInt8](try Data(contentsOf: url))
}

/// The generator's manifest.json.
func fixtureManifest() throws -> [String: Any] {
    let data = try Data(contentsOf: TestPaths.fixture("imaging/manifest.json"))
    return try JSONSerialization.jsonObject(with: data) as! [String: Any]
}

/// Largest absolute difference between two byte arrays of equal length (Int.max when lengths differ).
func maxAbsDiff(_ a: [UInt8], _ b: [UInt8]) -> Int {
    guard a.count == b.count else { return Int.max }
    var m = 0
    for i in 0..<a.count { m = max(m, abs(Int(a[i]) - Int(b[i]))) }
    return m
}

/// Builds a PNG from chunks (type, data) with correct CRCs unless `badCRC`.
func makePNG(_ chunks: [(String, [UInt8])], badCRC: String? = nil) -> [UInt8] {
    var out: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]
    for (type, data) in chunks {
        let n = UInt32(data.count)
        out += [UInt8(n >> 24), UInt8((n >> 16) & 255), UInt8((n >> 8) & 255), UInt8(n & 255)]
        let body = Array(type.utf8) + data
        out += body
        var crc = crc32Of(body, 0..<body.count)
        if badCRC == type { crc ^= 1 }
        out += [UInt8(crc >> 24), UInt8((crc >> 16) & 255), UInt8((crc >> 8) & 255), UInt8(crc & 255)]
    }
    return out
}

func ihdr(width: UInt32, height: UInt32, depth: UInt8 = 8, colorType: UInt8 = 2,
          compression: UInt8 = 0, filter: UInt8 = 0, interlace: UInt8 = 0) -> [UInt8] {
    func be(_ v: UInt32) -> [UInt8] { [UInt8(v >> 24), UInt8((v >> 16) & 255), UInt8((v >> 8) & 255), UInt8(v & 255)] }
    return be(width) + be(height) + [depth, colorType, compression, filter, interlace]
}

