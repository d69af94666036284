// JPEG decoding through libjpeg-turbo (via the CImagingShims setjmp wrapper), EXIF orientation.
import CImagingShims

func jpegMessage(_ info: inout imaging_jpeg_info) -> String {
    withUnsafeBytes(of: &info.message) { raw in
        String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
    }
}

/// Decodes a baseline or progressive JPEG to RGB8 (grey replicated; CMYK converted as Pillow's
/// `CMYK;I` raw mode followed by `convert('RGB')`).
func decodeJPEG(_ bytes: [UInt8], maxPixels: Int) throws -> Image {
    var info = imaging_jpeg_info()
    func check(_ code: Int32) throws {
        switch code {
        case Int32(IMAGING_JPEG_OK): return
        case Int32(IMAGING_JPEG_TRUNCATED): throw ImagingError.truncated(format: "JPEG", detail: "premature end of data")
        case Int32(IMAGING_JPEG_BUFFER): throw ImagingError.corruptData(format: "JPEG", detail: "output size changed while decoding")
        default:
            let message = jpegMessage(&info)
            if message.hasPrefix("Unsupported") { throw ImagingError.unsupported(format: "JPEG", detail: message) }
            throw ImagingError.corruptData(format: "JPEG", detail: message)
        }
    }
    try check(bytes.withUnsafeBufferPointer { imaging_jpeg_read_header($0.baseAddress, UInt($0.count), &info) })
    let w = Int(info.width), h = Int(info.height), comps = Int(info.components)
    guard w > 0, h > 0 else { throw ImagingError.invalidHeader(format: "JPEG", detail: "size \(w)x\(h)") }
    try checkPixelLimit(width: w, height: h, maxPixels: maxPixels)
    var decoded = [UInt8](repeating: 0, count: w * h * comps)
    let code = decoded.withUnsafeMutableBufferPointer { out in
        bytes.withUnsafeBufferPointer { imaging_jpeg_decode($0.baseAddress, UInt($0.count), out.baseAddress, out.count, &info) }
    }
    try check(code)
    switch comps {
    case 3: return Image(unchecked: w, h, 3, decoded)
    case 1:
        var rgb = [UInt8](repeating: 0, count: w * h * 3)
        for i in 0..<(w * h) { let g = decoded[i]; rgb[3 * i] = g; rgb[3 * i + 1] = g; rgb[3 * i + 2] = g }
        return Image(unchecked: w, h, 3, rgb)
    default:
        // Pillow reads 4-component JPEGs with raw mode "CMYK;I" (inverted, Adobe convention),
        // then cmyk2rgb: nk = 255 - k; out = clip(nk - muldiv255(c, nk)).
        var rgb = [UInt8](repeating: 0, count: w * h * 3)
        for i in 0..<(w * h) {
            let k = 255 - Int(decoded[4 * i + 3])
            let nk = 255 - k
            for c in 0..<3 {
                let v = 255 - Int(decoded[4 * i + c])
                let t = v * nk + 128
                let m = ((t >> 8) + t) >> 8
                rgb[3 * i + c] = UInt8(max(0, min(255, nk - m)))
            }
        }
        return Image(unchecked: w, h, 3, rgb)
    }
}

/// Finds the APP1 "Exif" segment of a JPEG and returns its orientation tag (1...8), if any.
func jpegEXIFOrientation(_ b: [UInt8]) -> Int? {
    var p = 2
    while p + 4 <= b.count {
        guard b[p] == 0xFF else { return nil }
        let marker = b[p + 1]
        if marker == 0xFF { p += 1; continue }              // fill byte
        if marker == 0xD8 || (0xD0...0xD7).contains(marker) || marker == 0x01 { p += 2; continue }
        if marker == 0xDA || marker == 0xD9 { return nil }   // start of scan / end: no more metadata
        let len = Int(b[p + 2]) << 8 | Int(b[p + 3])
        guard len >= 2, p + 2 + len <= b.count else { return nil }
        let s = p + 4, e = p + 2 + len
        if marker == 0xE1, e - s >= 6, Array(b[s..<(s + 6)]) == [0x45, 0x78, 0x69, 0x66, 0, 0] {
            if let o = exifOrientation(tiff: b[(s + 6)..<e]) { return o }
        }
        p = e
    }
    return nil
}

/// Reads tag 0x0112 (Orientation) from IFD0 of a TIFF-structured EXIF block; nil when absent or malformed.
func exifOrientation(tiff t: ArraySlice<UInt8>) -> Int? {
    let b = Array(t)
    guard b.count >= 8 else { return nil }
    let little: Bool
    if b[0] == 0x49 && b[1] == 0x49 { little = true } else if b[0] == 0x4D && b[1] == 0x4D { little = false } else { return nil }
    func u16(_ p: Int) -> Int? {
        guard p >= 0, p + 2 <= b.count else { return nil }
        return little ? Int(b[p]) | Int(b[p + 1]) << 8 : Int(b[p]) << 8 | Int(b[p + 1])
    }
    func u32(_ p: Int) -> Int? {
        guard let lo = u16(little ? p : p + 2), let hi = u16(little ? p + 2 : p) else { return nil }
        return hi << 16 | lo
    }
    guard u16(2) == 42, let ifd = u32(4), let n = u16(ifd) else { return nil }
    for i in 0..<n {
        let e = ifd + 2 + 12 * i
        guard let tag = u16(e) else { return nil }
        if tag == 0x0112 {
            guard let type = u16(e + 2) else { return nil }
            let value: Int?
            switch type {
            case 3: value = u16(e + 8)        // SHORT
            case 4, 9: value = u32(e + 8)     // LONG / SLONG
            case 1, 7: value = e + 8 < b.count ? Int(b[e + 8]) : nil   // BYTE / UNDEFINED
            default: value = nil
            }
            if let v = value, (1...8).contains(v) { return v }
            return nil
        }
    }
    return nil
}

/// Applies an EXIF orientation (1...8) as `PIL.ImageOps.exif_transpose` does:
/// 2 mirror, 3 rotate 180, 4 flip vertically, 5 transpose, 6 rotate 270 (clockwise 90),
/// 7 transverse, 8 rotate 90 (counter-clockwise).
public func applyOrientation(_ image: Image, _ orientation: Int) -> Image {
    guard (2...8).contains(orientation) else { return image }
    let w = image.width, h = image.height, ch = image.channels
    let swaps = orientation >= 5
    let ow = swaps ? h : w, oh = swaps ? w : h
    var out = [UInt8](repeating: 0, count: image.pixels.count)
    for oy in 0..<oh {
        for ox in 0..<ow {
            // Source pixel for output (ox, oy).
            let (sx, sy): (Int, Int)
            switch orientation {
            case 2: (sx, sy) = (w - 1 - ox, oy)
            case 3: (sx, sy) = (w - 1 - ox, h - 1 - oy)
            case 4: (sx, sy) = (ox, h - 1 - oy)
            case 5: (sx, sy) = (oy, ox)
            case 6: (sx, sy) = (oy, h - 1 - ox)
            case 7: (sx, sy) = (w - 1 - oy, h - 1 - ox)
            default: (sx, sy) = (w - 1 - oy, ox)
            }
            let s = (sy * w + sx) * ch, d = (oy * ow + ox) * ch
            for c in 0..<ch { out[d + c] = image.pixels[s + c] }
        }
    }
    return Image(unchecked: ow, oh, ch, out)
}
