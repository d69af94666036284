// Random mutations almost always break a checksum, and the parsers rightly stop there. To reach the code
// behind the checksums, the fuzz targets run each input twice: as given, then with its checksums
// recomputed. The checksum checks themselves are covered by the unit tests' hostile inputs.
import CZlib

/// The CRC-32 (zlib polynomial) of `bytes[range]`, continuing from `crc`.
func crc32Of(_ bytes: UnsafeBufferPointer<UInt8>, _ range: Range<Int>, continuing crc: UInt32 = 0) -> UInt32 {
    UInt32(crc32(uLong(crc), bytes.baseAddress! + range.lowerBound, uInt(range.count)))
}

/// `bytes` with the CRC of every complete PNG chunk (after the 8-byte signature) recomputed. Stops at the
/// first chunk that does not fit; returns nil when nothing changed.
public func repairingPNGChunkCRCs(_ bytes: [UInt8]) -> [UInt8]? {
    guard bytes.count >= 8 else { return nil }
    var out = bytes
    var changed = false
    out.withUnsafeMutableBufferPointer { b in
        var pos = 8
        while pos + 12 <= b.count {
            let length = Int(b[pos]) << 24 | Int(b[pos + 1]) << 16 | Int(b[pos + 2]) << 8 | Int(b[pos + 3])
            let end = pos + 8 + length
            guard length <= b.count, end + 4 <= b.count else { return }
            let crc = crc32Of(UnsafeBufferPointer(b), (pos + 4)..<end)
            for i in 0..<4 {
                let byte = UInt8((crc >> (24 - 8 * UInt32(i))) & 0xFF)
                if b[end + i] != byte { b[end + i] = byte; changed = true }
            }
            pos = end + 4
        }
    }
    return changed ? out : nil
}

/// `bytes` with the `.glw` header CRC (field at offset 12, over bytes [0, data_start) with the field read
/// as zero) recomputed when the header's own lengths say where data_start is; nil otherwise or if unchanged.
public func repairingGLWHeaderCRC(_ bytes: [UInt8]) -> [UInt8]? {
    guard bytes.count >= 64 else { return nil }
    func le64(_ p: Int) -> UInt64 { (0..<8).reduce(0) { $0 | UInt64(bytes[p + $1]) << (8 * UInt64($1)) } }
    let alignment = UInt64(bytes[8]) | UInt64(bytes[9]) << 8 | UInt64(bytes[10]) << 16 | UInt64(bytes[11]) << 24
    guard alignment >= 1, alignment <= 65536, alignment & (alignment - 1) == 0 else { return nil }
    let namesOffset = le64(48), namesLength = le64(56)
    guard namesOffset <= UInt64(bytes.count), namesLength <= UInt64(bytes.count) else { return nil }
    let namesEnd = namesOffset + namesLength
    let dataStart = (namesEnd + alignment - 1) / alignment * alignment
    guard dataStart >= 16, dataStart <= UInt64(bytes.count) else { return nil }
    var out = bytes
    out[12] = 0; out[13] = 0; out[14] = 0; out[15] = 0
    let crc = out.withUnsafeBufferPointer { crc32Of($0, 0..<Int(dataStart)) }
    for i in 0..<4 { out[12 + i] = UInt8((crc >> (8 * UInt32(i))) & 0xFF) }
    return out == bytes ? nil : out
}
