// Imaging module: the Image type, the module's error enum, and format dispatch.
// PNG and JPEG decoding follow what the reference pipeline's `Image.open(path).convert('RGB')` (Pillow) yields.
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// An 8-bit image, rows top to bottom, channels interleaved (`pixels[(y * width + x) * channels + c]`).
public struct Image: Equatable, Sendable {
    /// Width in pixels.
    public var width: Int
    /// Height in pixels.
    public var height: Int
    /// Interleaved channels per pixel: 1 (grey), 3 (RGB) or 4 (RGBA). Decoders always return 3.
    public var channels: Int
    /// `width * height * channels` bytes.
    public var pixels: [UInt8]

    /// Wraps `pixels`; throws `ImagingError.invalidArgument` when the count does not match the dimensions.
    public init(width: Int, height: Int, channels: Int, pixels: [UInt8]) throws {
        guard width > 0, height > 0, (1...4).contains(channels) else {
            throw ImagingError.invalidArgument("image must be at least 1x1 with 1...4 channels, got \(width)x\(height)x\(channels)")
        }
        guard pixels.count == width * height * channels else {
            throw ImagingError.invalidArgument("pixel count \(pixels.count) != \(width)x\(height)x\(channels)")
        }
        self.width = width; self.height = height; self.channels = channels; self.pixels = pixels
    }

    /// Internal unchecked initialiser (callers guarantee the invariants).
    init(unchecked width: Int, _ height: Int, _ channels: Int, _ pixels: [UInt8]) {
        self.width = width; self.height = height; self.channels = channels; self.pixels = pixels
    }
}

/// Every way reading, converting or writing an image can fail.
public enum ImagingError: Error, Equatable, CustomStringConvertible {
    /// The bytes start with neither the PNG nor the JPEG signature (`signature`: the first bytes, hex).
    case notAnImage(signature: String)
    /// The data ended early (`format`: "PNG"/"JPEG"; `detail`: what was being read).
    case truncated(format: String, detail: String)
    /// A PNG chunk's stored CRC differs from the CRC of its type and data.
    case crcMismatch(chunk: String, expected: UInt32, actual: UInt32)
    /// The image header is malformed (zero size, wrong IHDR length, IHDR not first, ...).
    case invalidHeader(format: String, detail: String)
    /// A valid but unsupported feature (unknown compression/filter/interlace method, bit depth/colour type pair, ...).
    case unsupported(format: String, detail: String)
    /// `width * height` exceeds `maxPixels`; rejected before anything is allocated.
    case tooLarge(width: Int, height: Int, maxPixels: Int)
    /// The compressed or entropy-coded data is corrupt (zlib or libjpeg message, bad filter type, ...).
    case corruptData(format: String, detail: String)
    /// A chunk the image needs is absent (IHDR, IDAT, PLTE for palette images).
    case missingChunk(String)
    /// A file could not be read or written (`path`, `errno` text).
    case fileError(path: String, detail: String)
    /// An argument is out of range (zero output size, mismatched tensor length, ...).
    case invalidArgument(String)
    /// PNG text was asked of a file that is not a PNG (`signature`: its first bytes, hex).
    case notPNG(signature: String)
    /// A text chunk's keyword is missing its NUL terminator, empty, over 79 bytes, or has characters or spaces
    /// the PNG specification forbids (`keyword`: escaped, at most 80 bytes).
    case invalidTextKeyword(chunk: String, keyword: String)
    /// A text chunk's fields after the keyword are missing or out of range, or its text holds a NUL.
    case malformedTextChunk(chunk: String, keyword: String, detail: String)
    /// A `zTXt`/`iTXt` chunk names a compression method other than 0 (zlib).
    case unsupportedTextCompression(chunk: String, keyword: String, method: Int)
    /// An `iTXt` chunk's text is not valid UTF-8.
    case textNotUTF8(keyword: String)
    /// The file's text, decompressed, exceeds the reader's limit (`limit`: the bytes that were still allowed).
    case textTooLarge(keyword: String, limit: Int)

    /// One line suitable for a CLI error message.
    public var description: String {
        switch self {
        case .notAnImage(let sig): return "not a PNG or JPEG image (starts with \(sig))"
        case .truncated(let f, let d): return "truncated \(f): \(d)"
        case .crcMismatch(let c, let e, let a):
            return "PNG chunk \(c): CRC mismatch (stored \(hex32(e)), computed \(hex32(a)))"
        case .invalidHeader(let f, let d): return "invalid \(f) header: \(d)"
        case .unsupported(let f, let d): return "unsupported \(f): \(d)"
        case .tooLarge(let w, let h, let m): return "image too large: \(w)x\(h) exceeds \(m) pixels"
        case .corruptData(let f, let d): return "corrupt \(f) data: \(d)"
        case .missingChunk(let c): return "PNG has no \(c) chunk"
        case .fileError(let p, let d): return "\(p): \(d)"
        case .invalidArgument(let d): return "invalid argument: \(d)"
        case .notPNG(let sig): return "not a PNG (starts with \(sig.isEmpty ? "<empty>" : sig))"
        case .invalidTextKeyword(let c, let k): return "PNG \(c) chunk: invalid keyword '\(k)'"
        case .malformedTextChunk(let c, let k, let d): return "PNG \(c) chunk '\(k)': \(d)"
        case .unsupportedTextCompression(let c, let k, let m): return "PNG \(c) chunk '\(k)': unknown compression method \(m)"
        case .textNotUTF8(let k): return "PNG iTXt chunk '\(k)': text is not UTF-8"
        case .textTooLarge(let k, let l): return "PNG text '\(k)': more text than the \(l) bytes allowed"
        }
    }
}

func hex32(_ v: UInt32) -> String {
    let s = String(v, radix: 16)
    return "0x" + String(repeating: "0", count: max(0, 8 - s.count)) + s
}

/// Default pixel limit for decoding (Pillow's `Image.MAX_IMAGE_PIXELS`, about 9459 x 9459).
public let defaultMaxPixels = 89_478_485

/// Decodes a PNG or JPEG to 8-bit RGB exactly as Pillow's `Image.open(f).convert('RGB')` does:
/// alpha (and tRNS transparency) discarded without compositing, 16-bit colour samples keep their high byte,
/// 16-bit greyscale is clipped to 255 (Pillow's `I;16` -> `L` rule), low bit depths scaled to 0...255,
/// palette indices outside the palette give black, CMYK JPEGs converted as Pillow does.
/// - Parameters:
///   - bytes: the whole file.
///   - maxPixels: dimensions with `width * height` above this are rejected before allocating.
///   - applyEXIFOrientation: rotate/flip by the EXIF orientation tag (JPEG APP1 or PNG eXIf) as
///     `PIL.ImageOps.exif_transpose` does. The reference notebook's `read_image` does not do this; pass
///     `false` for byte-exact equivalence with it on rotated photos.
public func decodeImage(bytes: [UInt8], maxPixels: Int = defaultMaxPixels,
                        applyEXIFOrientation: Bool = true) throws -> Image {
    if bytes.count >= 8 && Array(bytes[0..<8]) == pngSignature {
        let (image, exif) = try decodePNG(bytes, maxPixels: maxPixels)
        if applyEXIFOrientation, let exif = exif, let o = exifOrientation(tiff: exif[...]) {
            return applyOrientation(image, o)
        }
        return image
    }
    if bytes.count >= 3 && bytes[0] == 0xFF && bytes[1] == 0xD8 && bytes[2] == 0xFF {
        let image = try decodeJPEG(bytes, maxPixels: maxPixels)
        if applyEXIFOrientation, let o = jpegEXIFOrientation(bytes) {
            return applyOrientation(image, o)
        }
        return image
    }
    let sig = bytes.prefix(8).map { b -> String in
        let s = String(b, radix: 16); return s.count == 1 ? "0" + s : s
    }.joined(separator: " ")
    throw ImagingError.notAnImage(signature: sig.isEmpty ? "<empty>" : sig)
}

/// Reads a whole file with Glibc (no Foundation in this module).
public func readFileBytes(path: String) throws -> [UInt8] {
    guard let f = fopen(path, "rb") else {
        throw ImagingError.fileError(path: path, detail: String(cString: strerror(errno)))
    }
    defer { fclose(f) }
    var out: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 1 << 16)
    while true {
        let n = chunk.withUnsafeMutableBytes { fread($0.baseAddress, 1, $0.count, f) }
        if n > 0 { out.append(contentsOf: chunk[0..<n]) }
        if n < chunk.count {
            if ferror(f) != 0 { throw ImagingError.fileError(path: path, detail: "read error") }
            break
        }
    }
    return out
}

/// Writes `bytes` to `path` (created or truncated).
public func writeFileBytes(_ bytes: [UInt8], path: String) throws {
    guard let f = fopen(path, "wb") else {
        throw ImagingError.fileError(path: path, detail: String(cString: strerror(errno)))
    }
    let n = bytes.withUnsafeBytes { fwrite($0.baseAddress, 1, $0.count, f) }
    let closed = fclose(f)
    if n != bytes.count || closed != 0 {
        throw ImagingError.fileError(path: path, detail: "write failed")
    }
}

/// `decodeImage(bytes:)` on the contents of `path`.
public func readImage(path: String, maxPixels: Int = defaultMaxPixels,
                      applyEXIFOrientation: Bool = true) throws -> Image {
    try decodeImage(bytes: readFileBytes(path: path), maxPixels: maxPixels,
                    applyEXIFOrientation: applyEXIFOrientation)
}

/// Encodes `image` as PNG and writes it to `path`.
public func writePNG(_ image: Image, path: String) throws {
    try writeFileBytes(encodePNG(image), path: path)
}

/// Rejects sizes whose pixel count exceeds `maxPixels` (overflow-safe).
func checkPixelLimit(width: Int, height: Int, maxPixels: Int) throws {
    let (p, overflow) = width.multipliedReportingOverflow(by: height)
    if overflow || p > maxPixels { throw ImagingError.tooLarge(width: width, height: height, maxPixels: maxPixels) }
}
