// PNG text chunks: writing key/value fields (tEXt, or iTXt for non-ASCII text) and reading tEXt, zTXt and
// iTXt back from untrusted files (PNG specification, 3rd edition, sections 11.3.3).
import CZlib

/// One PNG text field: a keyword and its text (one `tEXt`/`iTXt` chunk each).
public struct PNGTextField: Equatable, Sendable {
    /// 1...79 Latin-1 printable characters (space allowed inside, not at either end, never two in a row).
    public var keyword: String
    /// Any text without NUL characters.
    public var text: String

    /// A field; `encodePNG(_:text:)` checks it.
    public init(keyword: String, text: String) {
        self.keyword = keyword
        self.text = text
    }
}

/// Default cap on the total text bytes `readPNGText` returns (after decompression): 1 MiB.
public let defaultMaxPNGTextBytes = 1 << 20

/// Encodes `image` as `encodePNG(_:compressionLevel:)` does, with one text chunk per field between IHDR and
/// IDAT, in order: `tEXt` when the text is ASCII, else uncompressed `iTXt` (UTF-8, no language tag).
/// Throws `ImagingError.invalidArgument` for a keyword the PNG specification forbids or a text with NUL.
public func encodePNG(_ image: Image, text: [PNGTextField], compressionLevel: Int = 6) throws -> [UInt8] {
    var chunks: [(type: String, data: [UInt8])] = []
    for field in text {
        guard let keyword = latin1Bytes(field.keyword), isValidPNGKeyword(keyword) else {
            throw ImagingError.invalidArgument("PNG text keyword '\(field.keyword)': 1...79 Latin-1 printable characters, "
                                               + "no leading, trailing or double spaces")
        }
        let utf8 = Array(field.text.utf8)
        guard !utf8.contains(0) else {
            throw ImagingError.invalidArgument("PNG text '\(field.keyword)' contains a NUL character")
        }
        if utf8.allSatisfy({ $0 < 0x80 }) {
            chunks.append(("tEXt", keyword + [0] + utf8))
        } else {
            // keyword NUL, compression flag 0, method 0, empty language tag NUL, empty translated keyword NUL, text.
            chunks.append(("iTXt", keyword + [0, 0, 0, 0, 0] + utf8))
        }
    }
    return encodePNG(image, compressionLevel: compressionLevel, ancillaryChunks: chunks)
}

/// Encodes `image` with text fields (see `encodePNG(_:text:compressionLevel:)`) and writes it to `path`.
public func writePNG(_ image: Image, path: String, text: [PNGTextField]) throws {
    try writeFileBytes(try encodePNG(image, text: text), path: path)
}

/// Reads the text fields of a PNG (`tEXt`, `zTXt`, `iTXt`), in file order, without decoding the image.
///
/// Built for untrusted files: every chunk length and CRC is checked before its data is used, compressed text
/// is inflated into a bounded buffer, and the decoded text of all chunks together may not exceed
/// `maxTextBytes`. Reading stops at `IEND`; a file that ends after its last complete chunk without `IEND`
/// gives the fields read so far.
/// - Throws: `ImagingError.notPNG` (wrong signature), `.truncated` (a chunk runs past the end),
///   `.corruptData` (chunk length over 2^31 - 1, or bad zlib data), `.crcMismatch`, `.invalidTextKeyword`,
///   `.malformedTextChunk`, `.unsupportedTextCompression`, `.textNotUTF8` (an `iTXt` text), `.textTooLarge`.
public func readPNGText(bytes b: [UInt8], maxTextBytes: Int = defaultMaxPNGTextBytes) throws -> [PNGTextField] {
    guard b.count >= 8, Array(b[0..<8]) == pngSignature else {
        throw ImagingError.notPNG(signature: b.prefix(8).map { hex2($0) }.joined(separator: " "))
    }
    var fields: [PNGTextField] = []
    var budget = maxTextBytes
    var pos = 8
    while pos < b.count {
        guard b.count - pos >= 8 else {
            throw ImagingError.truncated(format: "PNG", detail: "chunk header at offset \(pos)")
        }
        let length = Int(readBE32(b, pos))
        let type = String(decoding: b[(pos + 4)..<(pos + 8)], as: UTF8.self)
        guard length <= 0x7FFF_FFFF else {
            throw ImagingError.corruptData(format: "PNG", detail: "chunk \(type) length \(length)")
        }
        let dataStart = pos + 8
        guard length <= b.count - dataStart - 4 else {
            throw ImagingError.truncated(format: "PNG", detail: "chunk \(type) needs \(length + 12) bytes at offset \(pos), file has \(b.count - pos)")
        }
        let end = dataStart + length
        if type == "IEND" { break }
        if type == "tEXt" || type == "zTXt" || type == "iTXt" {
            let stored = readBE32(b, end)
            let computed = crc32Of(b, (pos + 4)..<end)
            guard stored == computed else { throw ImagingError.crcMismatch(chunk: type, expected: stored, actual: computed) }
            let field = try parseTextChunk(type, b[dataStart..<end], budget: budget)
            budget -= field.byteCount
            fields.append(field.field)
        }
        pos = end + 4
    }
    return fields
}

/// `readPNGText(bytes:)` on the contents of `path`.
public func readPNGText(path: String, maxTextBytes: Int = defaultMaxPNGTextBytes) throws -> [PNGTextField] {
    try readPNGText(bytes: readFileBytes(path: path), maxTextBytes: maxTextBytes)
}

// MARK: - Parsing one chunk

/// One text chunk's data (`d`: the bytes between length/type and CRC); `budget`: text bytes still allowed.
func parseTextChunk(_ type: String, _ d: ArraySlice<UInt8>, budget: Int) throws -> (field: PNGTextField, byteCount: Int) {
    guard let nul = d.firstIndex(of: 0) else {
        throw ImagingError.invalidTextKeyword(chunk: type, keyword: escapedLatin1(d.prefix(80)))
    }
    let keywordBytes = Array(d[d.startIndex..<nul])
    guard isValidPNGKeyword(keywordBytes) else {
        throw ImagingError.invalidTextKeyword(chunk: type, keyword: escapedLatin1(keywordBytes.prefix(80)))
    }
    let keyword = latin1String(keywordBytes)
    var p = nul + 1
    switch type {
    case "tEXt":
        let text = d[p...]
        guard !text.contains(0) else { throw ImagingError.malformedTextChunk(chunk: type, keyword: keyword, detail: "NUL inside the text") }
        guard text.count <= budget else { throw ImagingError.textTooLarge(keyword: keyword, limit: budget) }
        return (PNGTextField(keyword: keyword, text: latin1String(text)), text.count)
    case "zTXt":
        guard p < d.endIndex else { throw ImagingError.malformedTextChunk(chunk: type, keyword: keyword, detail: "no compression method") }
        let method = d[p]
        guard method == 0 else { throw ImagingError.unsupportedTextCompression(chunk: type, keyword: keyword, method: Int(method)) }
        p += 1
        let text = try inflateText(d[p...], chunk: type, keyword: keyword, budget: budget)
        guard !text.contains(0) else { throw ImagingError.malformedTextChunk(chunk: type, keyword: keyword, detail: "NUL inside the text") }
        return (PNGTextField(keyword: keyword, text: latin1String(text[...])), text.count)
    default:   // iTXt
        guard d.endIndex - p >= 2 else {
            throw ImagingError.malformedTextChunk(chunk: type, keyword: keyword, detail: "no compression flag and method")
        }
        let flag = d[p], method = d[p + 1]
        guard flag <= 1 else { throw ImagingError.malformedTextChunk(chunk: type, keyword: keyword, detail: "compression flag \(flag)") }
        if flag == 1 && method != 0 {
            throw ImagingError.unsupportedTextCompression(chunk: type, keyword: keyword, method: Int(method))
        }
        p += 2
        // Language tag and translated keyword: NUL-terminated, skipped.
        for part in ["language tag", "translated keyword"] {
            guard let n = d[p...].firstIndex(of: 0) else {
                throw ImagingError.malformedTextChunk(chunk: type, keyword: keyword, detail: "\(part) not terminated")
            }
            p = n + 1
        }
        let raw: [UInt8]
        if flag == 1 {
            raw = try inflateText(d[p...], chunk: type, keyword: keyword, budget: budget)
        } else {
            guard d.endIndex - p <= budget else { throw ImagingError.textTooLarge(keyword: keyword, limit: budget) }
            raw = Array(d[p...])
        }
        let text = String(decoding: raw, as: UTF8.self)
        guard text.utf8.elementsEqual(raw) else { throw ImagingError.textNotUTF8(keyword: keyword) }
        guard !raw.contains(0) else { throw ImagingError.malformedTextChunk(chunk: type, keyword: keyword, detail: "NUL inside the text") }
        return (PNGTextField(keyword: keyword, text: text), raw.count)
    }
}

/// Inflates one zlib stream holding at most `budget` bytes; the stream must end inside the chunk.
func inflateText(_ compressed: ArraySlice<UInt8>, chunk: String, keyword: String, budget: Int) throws -> [UInt8] {
    let stream = UnsafeMutablePointer<z_stream>.allocate(capacity: 1)
    stream.initialize(to: z_stream())
    defer { stream.deallocate() }
    guard inflateInit_(stream, ZLIB_VERSION, Int32(MemoryLayout<z_stream>.size)) == Z_OK else {
        throw ImagingError.corruptData(format: "PNG", detail: "zlib init failed")
    }
    defer { inflateEnd(stream) }
    var out: [UInt8] = []
    var buffer = [UInt8](repeating: 0, count: 1 << 14)
    let input = Array(compressed)
    return try input.withUnsafeBufferPointer { inBuf -> [UInt8] in
        stream.pointee.next_in = UnsafeMutablePointer(mutating: inBuf.baseAddress)
        stream.pointee.avail_in = uInt(inBuf.count)
        while true {
            let (rc, produced) = buffer.withUnsafeMutableBufferPointer { outBuf -> (Int32, Int) in
                stream.pointee.next_out = outBuf.baseAddress
                stream.pointee.avail_out = uInt(outBuf.count)
                let rc = inflate(stream, Z_NO_FLUSH)
                return (rc, outBuf.count - Int(stream.pointee.avail_out))
            }
            guard out.count + produced <= budget else { throw ImagingError.textTooLarge(keyword: keyword, limit: budget) }
            out += buffer[0..<produced]
            switch rc {
            case Z_STREAM_END:
                stream.pointee.next_in = nil; stream.pointee.next_out = nil
                return out
            case Z_OK:
                continue
            case Z_BUF_ERROR where stream.pointee.avail_in == 0:
                throw ImagingError.corruptData(format: "PNG", detail: "\(chunk) '\(keyword)': compressed text ends early")
            default:
                let msg = stream.pointee.msg.map { String(cString: $0) } ?? "zlib error \(rc)"
                throw ImagingError.corruptData(format: "PNG", detail: "\(chunk) '\(keyword)': \(msg)")
            }
        }
    }
}

// MARK: - Keywords and Latin-1

/// 1...79 bytes of Latin-1 printable characters (32...126, 161...255), no leading, trailing or double spaces.
func isValidPNGKeyword(_ k: [UInt8]) -> Bool {
    guard (1...79).contains(k.count), k.first != 0x20, k.last != 0x20 else { return false }
    for (i, c) in k.enumerated() {
        guard (0x20...0x7E).contains(c) || c >= 0xA1 else { return false }
        if c == 0x20 && i > 0 && k[i - 1] == 0x20 { return false }
    }
    return true
}

/// The Latin-1 bytes of `s`, or nil when a character is outside U+0000...U+00FF.
func latin1Bytes(_ s: String) -> [UInt8]? {
    var out: [UInt8] = []
    for scalar in s.unicodeScalars {
        guard scalar.value <= 0xFF else { return nil }
        out.append(UInt8(scalar.value))
    }
    return out
}

func latin1String<C: Collection>(_ bytes: C) -> String where C.Element == UInt8 {
    var s = ""
    s.unicodeScalars.append(contentsOf: bytes.map { Unicode.Scalar($0) })
    return s
}

/// Printable ASCII as is, everything else as `\xNN` (for error messages about hostile keywords).
func escapedLatin1<C: Collection>(_ bytes: C) -> String where C.Element == UInt8 {
    bytes.map { (0x20...0x7E).contains($0) && $0 != 0x5C ? String(UnicodeScalar($0)) : "\\x" + hex2($0) }.joined()
}

func hex2(_ b: UInt8) -> String {
    let s = String(b, radix: 16)
    return s.count == 1 ? "0" + s : s
}
