// PNG encoding of 8-bit grey/RGB/RGBA images (adaptive row filters, zlib).
import CZlib

/// Encodes `image` as a non-interlaced 8-bit PNG (colour type grey, RGB or RGBA from `image.channels`;
/// 2 channels are written as grey+alpha). Rows are filtered with the usual minimum-sum heuristic.
public func encodePNG(_ image: Image, compressionLevel: Int = 6) -> [UInt8] {
    let w = image.width, h = image.height, ch = image.channels
    let colorType: UInt8 = [1: 0, 2: 4, 3: 2, 4: 6][ch] ?? 2
    let rowBytes = w * ch
    var filtered = [UInt8](repeating: 0, count: h * (rowBytes + 1))
    var candidate = [UInt8](repeating: 0, count: rowBytes)
    image.pixels.withUnsafeBufferPointer { px in
        for y in 0..<h {
            let row = px.baseAddress! + y * rowBytes
            let up: UnsafePointer<UInt8>? = y > 0 ? row - rowBytes : nil
            var bestFilter: UInt8 = 0
            var bestScore = Int.max
            var best = [UInt8](repeating: 0, count: rowBytes)
            for f in UInt8(0)...4 {
                var score = 0
                for i in 0..<rowBytes {
                    let a = i >= ch ? row[i - ch] : 0
                    let b = up?[i] ?? 0
                    let c = (i >= ch ? up?[i - ch] : nil) ?? 0
                    let predictor: UInt8
                    switch f {
                    case 0: predictor = 0
                    case 1: predictor = a
                    case 2: predictor = b
                    case 3: predictor = UInt8((Int(a) + Int(b)) >> 1)
                    default: predictor = paeth(a, b, c)
                    }
                    let v = row[i] &- predictor
                    candidate[i] = v
                    score += v < 128 ? Int(v) : 256 - Int(v)
                }
                if score < bestScore { bestScore = score; bestFilter = f; swap(&best, &candidate) }
            }
            let o = y * (rowBytes + 1)
            filtered[o] = bestFilter
            for i in 0..<rowBytes { filtered[o + 1 + i] = best[i] }
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
