// PNG decoding (every colour type and bit depth, Adam7, tRNS ignored) to RGB8, matching Pillow's convert('RGB').
import CZlib

let pngSignature: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]

@inline(__always) func readBE32(_ b: [UInt8], _ p: Int) -> UInt32 {
    UInt32(b[p]) << 24 | UInt32(b[p + 1]) << 16 | UInt32(b[p + 2]) << 8 | UInt32(b[p + 3])
}

/// CRC-32 (zlib's) of `bytes[range]`.
func crc32Of(_ bytes: [UInt8], _ range: Range<Int>) -> UInt32 {
    bytes.withUnsafeBufferPointer { buf in
        UInt32(crc32(0, buf.baseAddress! + range.lowerBound, uInt(range.count)))
    }
}

struct PNGHeader {
    var width = 0, height = 0, bitDepth = 0, colorType = 0, interlaced = false
    var samplesPerPixel: Int {
        switch colorType { case 0, 3: return 1; case 2: return 3; case 4: return 2; default: return 4 }
    }
    var bitsPerPixel: Int { samplesPerPixel * bitDepth }
    /// Bytes per complete pixel for filtering (at least 1).
    var filterStride: Int { max(1, bitsPerPixel / 8) }
    func rowBytes(_ w: Int) -> Int { (w * bitsPerPixel + 7) / 8 }
}

/// The seven Adam7 passes: x0, y0, dx, dy.
let adam7: [(Int, Int, Int, Int)] = [(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4),
                                     (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2)]

/// Sub-image sizes of the passes (or the single full image when not interlaced).
func pngPasses(_ h: PNGHeader) -> [(x0: Int, y0: Int, dx: Int, dy: Int, w: Int, h: Int)] {
    if !h.interlaced { return [(0, 0, 1, 1, h.width, h.height)] }
    return adam7.map { (x0, y0, dx, dy) in
        (x0, y0, dx, dy, h.width > x0 ? (h.width - x0 + dx - 1) / dx : 0,
         h.height > y0 ? (h.height - y0 + dy - 1) / dy : 0)
    }
}

func parseIHDR(_ b: [UInt8], _ p: Int, _ length: Int, maxPixels: Int) throws -> PNGHeader {
    guard length == 13 else { throw ImagingError.invalidHeader(format: "PNG", detail: "IHDR length \(length), expected 13") }
    var h = PNGHeader()
    let w = readBE32(b, p), ht = readBE32(b, p + 4)
    guard w > 0, ht > 0, w <= 0x7FFF_FFFF, ht <= 0x7FFF_FFFF else {
        throw ImagingError.invalidHeader(format: "PNG", detail: "size \(w)x\(ht)")
    }
    h.width = Int(w); h.height = Int(ht)
    h.bitDepth = Int(b[p + 8]); h.colorType = Int(b[p + 9])
    let allowed: [Int: [Int]] = [0: [1, 2, 4, 8, 16], 2: [8, 16], 3: [1, 2, 4, 8], 4: [8, 16], 6: [8, 16]]
    guard let depths = allowed[h.colorType], depths.contains(h.bitDepth) else {
        throw ImagingError.unsupported(format: "PNG", detail: "bit depth \(h.bitDepth) with colour type \(h.colorType)")
    }
    guard b[p + 10] == 0 else { throw ImagingError.unsupported(format: "PNG", detail: "compression method \(b[p + 10])") }
    guard b[p + 11] == 0 else { throw ImagingError.unsupported(format: "PNG", detail: "filter method \(b[p + 11])") }
    guard b[p + 12] <= 1 else { throw ImagingError.unsupported(format: "PNG", detail: "interlace method \(b[p + 12])") }
    h.interlaced = b[p + 12] == 1
    try checkPixelLimit(width: h.width, height: h.height, maxPixels: maxPixels)
    return h
}

/// Streams IDAT payloads through zlib into a buffer of exactly the expected size (never more).
/// The z_stream lives at a fixed heap address (zlib keeps a pointer back to it).
final class PNGInflater {
    let stream: UnsafeMutablePointer<z_stream>
    var output: [UInt8]
    var produced = 0
    var finished = false

    init(expected: Int) throws {
        output = [UInt8](repeating: 0, count: expected)
        stream = UnsafeMutablePointer<z_stream>.allocate(capacity: 1)
        stream.initialize(to: z_stream())
        let rc = inflateInit_(stream, ZLIB_VERSION, Int32(MemoryLayout<z_stream>.size))
        guard rc == Z_OK else {
            stream.deallocate()
            throw ImagingError.corruptData(format: "PNG", detail: "zlib init failed (\(rc))")
        }
    }

    deinit {
        inflateEnd(stream)
        stream.deallocate()
    }

    func feed(_ b: [UInt8], _ range: Range<Int>) throws {
        if finished || produced == output.count || range.isEmpty { return }
        let total = output.count
        try b.withUnsafeBufferPointer { inBuf in
            try output.withUnsafeMutableBufferPointer { outBuf in
                stream.pointee.next_in = UnsafeMutablePointer(mutating: inBuf.baseAddress! + range.lowerBound)
                stream.pointee.avail_in = uInt(range.count)
                while stream.pointee.avail_in > 0 && produced < total {
                    stream.pointee.next_out = outBuf.baseAddress! + produced
                    stream.pointee.avail_out = uInt(total - produced)
                    let rc = inflate(stream, Z_NO_FLUSH)
                    produced = total - Int(stream.pointee.avail_out)
                    if rc == Z_STREAM_END { finished = true; break }
                    if rc == Z_BUF_ERROR { break }
                    if rc != Z_OK {
                        let msg = stream.pointee.msg.map { String(cString: $0) } ?? "zlib error \(rc)"
                        throw ImagingError.corruptData(format: "PNG", detail: msg)
                    }
                }
                stream.pointee.next_in = nil; stream.pointee.next_out = nil
            }
        }
    }

}

/// Decodes a PNG; returns the RGB8 image and the raw eXIf payload (TIFF bytes), if any.
func decodePNG(_ b: [UInt8], maxPixels: Int) throws -> (Image, [UInt8]?) {
    var pos = 8
    var header: PNGHeader? = nil
    var palette: [UInt8] = []
    var exif: [UInt8]? = nil
    var inflater: PNGInflater? = nil
    var first = true
    var expected = 0
    chunks: while pos < b.count {
        func complete() -> Bool { inflater.map { $0.produced == expected } ?? false }
        guard pos + 8 <= b.count else {
            if complete() { break chunks }
            throw ImagingError.truncated(format: "PNG", detail: "chunk header at offset \(pos)")
        }
        let length = Int(readBE32(b, pos))
        let typeBytes = Array(b[(pos + 4)..<(pos + 8)])
        let type = String(decoding: typeBytes, as: UTF8.self)
        guard length <= 0x7FFF_FFFF else {
            throw ImagingError.corruptData(format: "PNG", detail: "chunk \(type) length \(length)")
        }
        let dataStart = pos + 8
        guard dataStart + length + 4 <= b.count else {
            if complete() { break chunks }
            throw ImagingError.truncated(format: "PNG", detail: "chunk \(type) needs \(length + 12) bytes at offset \(pos), file has \(b.count - pos)")
        }
        let stored = readBE32(b, dataStart + length)
        let computed = crc32Of(b, (pos + 4)..<(dataStart + length))
        guard stored == computed else { throw ImagingError.crcMismatch(chunk: type, expected: stored, actual: computed) }
        if first {
            guard type == "IHDR" else { throw ImagingError.missingChunk("IHDR") }
            first = false
        }
        switch type {
        case "IHDR":
            guard header == nil else { throw ImagingError.invalidHeader(format: "PNG", detail: "second IHDR") }
            let h = try parseIHDR(b, dataStart, length, maxPixels: maxPixels)
            header = h
            expected = pngPasses(h).reduce(0) { $0 + ($1.w > 0 ? $1.h * (1 + h.rowBytes($1.w)) : 0) }
        case "PLTE":
            guard length % 3 == 0, length <= 768, length > 0 else {
                throw ImagingError.corruptData(format: "PNG", detail: "PLTE length \(length)")
            }
            palette = Array(b[dataStart..<(dataStart + length)])
        case "eXIf":
            exif = Array(b[dataStart..<(dataStart + length)])
        case "IDAT":
            if inflater == nil { inflater = try PNGInflater(expected: expected) }
            try inflater?.feed(b, dataStart..<(dataStart + length))
        case "IEND":
            break chunks
        default:
            break   // ancillary and unknown chunks (tRNS, gAMA, text, ...) do not change convert('RGB')
        }
        pos = dataStart + length + 4
    }
    guard let h = header else { throw ImagingError.missingChunk("IHDR") }
    guard let inf = inflater else { throw ImagingError.missingChunk("IDAT") }
    guard inf.produced == expected else {
        throw ImagingError.truncated(format: "PNG", detail: "image data has \(inf.produced) of \(expected) bytes")
    }
    if h.colorType == 3 && palette.isEmpty { throw ImagingError.missingChunk("PLTE") }
    var raw = inf.output
    inf.output = []   // keep a single copy of the inflated bytes
    let pixels = try reconstructPNG(&raw, h, palette: palette)
    return (Image(unchecked: h.width, h.height, 3, pixels), exif)
}

/// Undoes the row filters in place and converts every pass to RGB8.
func reconstructPNG(_ raw: inout [UInt8], _ h: PNGHeader, palette: [UInt8]) throws -> [UInt8] {
    var out = [UInt8](repeating: 0, count: h.width * h.height * 3)
    let bpp = h.filterStride
    var offset = 0
    try raw.withUnsafeMutableBufferPointer { rawBuf in
        try out.withUnsafeMutableBufferPointer { outBuf in
            let base = rawBuf.baseAddress!
            for pass in pngPasses(h) where pass.w > 0 && pass.h > 0 {
                let rb = h.rowBytes(pass.w)
                var prev: UnsafeMutablePointer<UInt8>? = nil
                for py in 0..<pass.h {
                    let filter = base[offset]
                    let row = base + offset + 1
                    try unfilterRow(filter, row, prev, rb, bpp, rowIndex: py)
                    let y = pass.y0 + py * pass.dy
                    convertRowToRGB(row, pass.w, h, palette,
                                    outBuf.baseAddress! + (y * h.width + pass.x0) * 3, pass.dx * 3)
                    prev = row
                    offset += 1 + rb
                }
            }
        }
    }
    return out
}

@inline(__always) func paeth(_ a: UInt8, _ b: UInt8, _ c: UInt8) -> UInt8 {
    let p = Int(a) + Int(b) - Int(c)
    let pa = abs(p - Int(a)), pb = abs(p - Int(b)), pc = abs(p - Int(c))
    if pa <= pb && pa <= pc { return a }
    return pb <= pc ? b : c
}

func unfilterRow(_ filter: UInt8, _ row: UnsafeMutablePointer<UInt8>, _ prev: UnsafeMutablePointer<UInt8>?,
                 _ n: Int, _ bpp: Int, rowIndex: Int) throws {
    switch filter {
    case 0: return
    case 1:
        if n > bpp { for i in bpp..<n { row[i] = row[i] &+ row[i - bpp] } }
    case 2:
        guard let up = prev else { return }
        for i in 0..<n { row[i] = row[i] &+ up[i] }
    case 3:
        for i in 0..<n {
            let left = i >= bpp ? Int(row[i - bpp]) : 0
            let up = prev.map { Int($0[i]) } ?? 0
            row[i] = row[i] &+ UInt8((left + up) >> 1)
        }
    case 4:
        for i in 0..<n {
            let a = i >= bpp ? row[i - bpp] : 0
            let b = prev?[i] ?? 0
            let c = (i >= bpp ? prev?[i - bpp] : nil) ?? 0
            row[i] = row[i] &+ paeth(a, b, c)
        }
    default:
        throw ImagingError.corruptData(format: "PNG", detail: "filter type \(filter) in row \(rowIndex)")
    }
}

/// Converts `count` pixels of one unfiltered row to RGB8 at `dst`, advancing `dstStride` bytes per pixel.
func convertRowToRGB(_ src: UnsafeMutablePointer<UInt8>, _ count: Int, _ h: PNGHeader, _ palette: [UInt8],
                     _ dst: UnsafeMutablePointer<UInt8>, _ dstStride: Int) {
    var d = dst
    @inline(__always) func put(_ r: UInt8, _ g: UInt8, _ b: UInt8) {
        d[0] = r; d[1] = g; d[2] = b; d += dstStride
    }
    @inline(__always) func lowBitSample(_ i: Int) -> Int {
        let bit = i * h.bitDepth
        return Int(src[bit >> 3] >> UInt8(8 - h.bitDepth - (bit & 7))) & ((1 << h.bitDepth) - 1)
    }
    switch (h.colorType, h.bitDepth) {
    case (0, 16):
        // Pillow opens 16-bit grey as I;16 and clips to 0...255 when converting to L/RGB.
        for i in 0..<count {
            let v = Int(src[2 * i]) << 8 | Int(src[2 * i + 1])
            let g = UInt8(min(v, 255)); put(g, g, g)
        }
    case (0, 8):
        for i in 0..<count { put(src[i], src[i], src[i]) }
    case (0, _):
        let scale = 255 / ((1 << h.bitDepth) - 1)
        for i in 0..<count { let g = UInt8(lowBitSample(i) * scale); put(g, g, g) }
    case (2, 8):
        for i in 0..<count { put(src[3 * i], src[3 * i + 1], src[3 * i + 2]) }
    case (2, _):
        for i in 0..<count { put(src[6 * i], src[6 * i + 2], src[6 * i + 4]) }
    case (3, _):
        let entries = palette.count / 3
        for i in 0..<count {
            let idx = h.bitDepth == 8 ? Int(src[i]) : lowBitSample(i)
            if idx < entries { put(palette[3 * idx], palette[3 * idx + 1], palette[3 * idx + 2]) } else { put(0, 0, 0) }
        }
    case (4, 8):
        for i in 0..<count { put(src[2 * i], src[2 * i], src[2 * i]) }
    case (4, _):
        for i in 0..<count { put(src[4 * i], src[4 * i], src[4 * i]) }
    case (6, 8):
        for i in 0..<count { put(src[4 * i], src[4 * i + 1], src[4 * i + 2]) }
    default:
        for i in 0..<count { put(src[8 * i], src[8 * i + 2], src[8 * i + 4]) }
    }
}
