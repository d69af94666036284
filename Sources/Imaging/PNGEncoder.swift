// PNG encoding of 8-bit grey/RGB/RGBA images (adaptive row filters, zlib).
import CZlib

/// Encodes `image` as a non-interlaced 8-bit PNG (colour type grey, RGB or RGBA from `image.channels`;
/// 2 channels are written as grey+alpha). Rows are filtered with the usual minimum-sum heuristic.
public func encodePNG(_ image: Image, compressionLevel: Int = 6) -> [UInt8] {
    encodePNG(image, compressionLevel: compressionLevel, ancillaryChunks: [])
}

/// The PNG of `image` with `ancillaryChunks` (type, data) written between IHDR and IDAT.
func encodePNG(_ image: Image, compressionLevel: Int, ancillaryChunks: [(type: String, data: [UInt8])]) -> [UInt8] {
    let w = image.width, h = image.height, ch = image.channels
    let colorType: UInt8 = [1: 0, 2: 4, 3: 2, 4: 6][ch] ?? 2
    let rowBytes = w * ch
    var filtered = [UInt8](repeating: 0, count: h * (rowBytes + 1))
    let zeroRow = [UInt8](repeating: 0, count: rowBytes)
    // Five candidate rows (filters 0...4) side by side; the one with the smallest sum of |signed byte| wins.
    var candidates = [UInt8](repeating: 0, count: 5 * rowBytes)
    image.pixels.withUnsafeBufferPointer { px in
        zeroRow.withUnsafeBufferPointer { zero in
            candidates.withUnsafeMutableBufferPointer { cand in
                filtered.withUnsafeMutableBufferPointer { outBuf in
                    let c = cand.baseAddress!
                    for y in 0..<h {
                        let row = px.baseAddress! + y * rowBytes
                        let up = y > 0 ? row - rowBytes : zero.baseAddress!
                        var scores = (0, 0, 0, 0, 0)
                        for i in 0..<rowBytes {
                            let x = row[i], b = up[i]
                            let a: UInt8 = i >= ch ? row[i - ch] : 0
                            let cc: UInt8 = i >= ch ? up[i - ch] : 0
                            let v0 = x
                            let v1 = x &- a
                            let v2 = x &- b
                            let v3 = x &- UInt8((Int(a) + Int(b)) >> 1)
                            let v4 = x &- paeth(a, b, cc)
                            c[i] = v0; c[rowBytes + i] = v1; c[2 * rowBytes + i] = v2
                            c[3 * rowBytes + i] = v3; c[4 * rowBytes + i] = v4
                            scores.0 += Int(Int8(bitPattern: v0).magnitude)
                            scores.1 += Int(Int8(bitPattern: v1).magnitude)
                            scores.2 += Int(Int8(bitPattern: v2).magnitude)
                            scores.3 += Int(Int8(bitPattern: v3).magnitude)
                            scores.4 += Int(Int8(bitPattern: v4).magnitude)
                        }
                        let all = [scores.0, scores.1, scores.2, scores.3, scores.4]
                        var best = 0
                        for f in 1..<5 where all[f] < all[best] { best = f }
                        let o = outBuf.baseAddress! + y * (rowBytes + 1)
                        o[0] = UInt8(best)
                        (o + 1).update(from: c + best * rowBytes, count: rowBytes)
                    }
                }
            }
        }
    }
    let compressed = zlibCompress(filtered, level: compressionLevel)

    var out = pngSignature
    func be32(_ v: UInt32) -> [UInt8] { [UInt8(v >> 24), UInt8((v >> 16) & 255), UInt8((v >> 8) & 255), UInt8(v & 255)] }
    func chunk(_ type: String, _ data: [UInt8]) {
        out += be32(UInt32(data.count))
        let body = Array(type.utf8) + data
        out += body
        out += be32(crc32Of(body, 0..<body.count))
    }
    chunk("IHDR", be32(UInt32(w)) + be32(UInt32(h)) + [8, colorType, 0, 0, 0])
    for c in ancillaryChunks { chunk(c.type, c.data) }
    chunk("IDAT", compressed)
    chunk("IEND", [])
    return out
}

/// zlib-compresses `bytes` (one complete zlib stream).
func zlibCompress(_ bytes: [UInt8], level: Int = 6) -> [UInt8] {
    var destLen = compressBound(uLong(bytes.count))
    var compressed = [UInt8](repeating: 0, count: Int(destLen))
    let rc = compressed.withUnsafeMutableBufferPointer { dst in
        bytes.withUnsafeBufferPointer { src in
            compress2(dst.baseAddress!, &destLen, src.baseAddress, uLong(src.count), Int32(level))
        }
    }
    precondition(rc == Z_OK, "zlib compress2 failed: \(rc)")   // only fails on out-of-memory
    compressed.removeSubrange(Int(destLen)...)
    return compressed
}
