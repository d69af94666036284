// Reading tokenizer files: whole files, gzip (via zlib), and the flat encoder.json object.
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import CZlib

enum TokenizerFiles {
    static func readFile(_ path: String) throws -> [UInt8] {
        guard let f = fopen(path, "rb") else {
            throw GlideModelError.cannotRead(path: path, reason: String(cString: strerror(errno)))
        }
        defer { fclose(f) }
        var out: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 1 << 16)
        while true {
            let n = chunk.withUnsafeMutableBytes { fread($0.baseAddress, 1, $0.count, f) }
            out.append(contentsOf: chunk[0..<n])
            if n < chunk.count {
                if ferror(f) != 0 { throw GlideModelError.cannotRead(path: path, reason: String(cString: strerror(errno))) }
                return out
            }
        }
    }

    static func fileExists(_ path: String) -> Bool { access(path, R_OK) == 0 }

    /// Inflates gzip data; data without the gzip magic is returned unchanged (uncompressed files work too).
    static func gunzipIfNeeded(_ data: [UInt8], name: String) throws -> [UInt8] {
        guard data.count >= 2, data[0] == 0x1F, data[1] == 0x8B else { return data }
        var stream = z_stream()
        guard inflateInit2_(&stream, 16 + MAX_WBITS, ZLIB_VERSION, Int32(MemoryLayout<z_stream>.size)) == Z_OK else {
            throw GlideModelError.badGzip(name: name, reason: "inflateInit2 failed")
        }
        defer { inflateEnd(&stream) }
        var out: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 1 << 18)
        var input = data
        return try input.withUnsafeMutableBufferPointer { inp in
            stream.next_in = inp.baseAddress
            stream.avail_in = uInt(inp.count)
            while true {
                let (status, produced) = buffer.withUnsafeMutableBufferPointer { buf -> (Int32, Int) in
                    stream.next_out = buf.baseAddress
                    stream.avail_out = uInt(buf.count)
                    let s = inflate(&stream, Z_NO_FLUSH)
                    return (s, buf.count - Int(stream.avail_out))
                }
                out.append(contentsOf: buffer[0..<produced])
                if status == Z_STREAM_END { return out }
                if status != Z_OK {
                    let msg = stream.msg.map { String(cString: $0) } ?? "zlib error \(status)"
                    throw GlideModelError.badGzip(name: name, reason: msg)
                }
                if stream.avail_in == 0 && produced == 0 {
                    throw GlideModelError.badGzip(name: name, reason: "unexpected end of data")
                }
            }
        }
    }

    /// Parses a JSON object whose values are all integers: `{"token": 123, ...}`.
    static func parseEncoderJSON(_ bytes: [UInt8]) throws -> [String: Int] {
        var i = 0
        func fail(_ why: String) -> GlideModelError { .badEncoderJSON(reason: why, offset: i) }
        func skipSpace() { while i < bytes.count, bytes[i] == 0x20 || bytes[i] == 0x0A || bytes[i] == 0x0D || bytes[i] == 0x09 { i += 1 } }
        func hex4() throws -> UInt32 {
            guard i + 4 <= bytes.count else { throw fail("truncated \\u escape") }
            var v: UInt32 = 0
            for _ in 0..<4 {
                let c = bytes[i]
                let d: UInt32
                switch c {
                case 0x30...0x39: d = UInt32(c - 0x30)
                case 0x41...0x46: d = UInt32(c - 0x41 + 10)
                case 0x61...0x66: d = UInt32(c - 0x61 + 10)
                default: throw fail("bad hex digit in \\u escape")
                }
                v = v * 16 + d
                i += 1
            }
            return v
        }
        func string() throws -> String {
            guard i < bytes.count, bytes[i] == 0x22 else { throw fail("expected a string") }
            i += 1
            var out: [UInt8] = []
            while true {
                guard i < bytes.count else { throw fail("unterminated string") }
                let c = bytes[i]
                if c == 0x22 { i += 1; break }
                if c != 0x5C { out.append(c); i += 1; continue }
                i += 1
                guard i < bytes.count else { throw fail("unterminated escape") }
                let e = bytes[i]; i += 1
                switch e {
                case 0x22, 0x5C, 0x2F: out.append(e)
                case 0x62: out.append(0x08)
                case 0x66: out.append(0x0C)
                case 0x6E: out.append(0x0A)
                case 0x72: out.append(0x0D)
                case 0x74: out.append(0x09)
                case 0x75:
                    var code = try hex4()
                    if (0xD800..<0xDC00).contains(code), i + 6 <= bytes.count, bytes[i] == 0x5C, bytes[i + 1] == 0x75 {
                        let save = i
                        i += 2
                        let low = try hex4()
                        if (0xDC00..<0xE000).contains(low) {
                            code = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00)
                        } else { i = save }
                    }
                    let scalar = Unicode.Scalar(code) ?? "\u{FFFD}"
                    out.append(contentsOf: Array(String(scalar).utf8))
                default: throw fail("bad escape")
                }
            }
            return String(decoding: out, as: UTF8.self)
        }
        var result: [String: Int] = [:]
        skipSpace()
        guard i < bytes.count, bytes[i] == 0x7B else { throw fail("expected '{'") }
        i += 1
        skipSpace()
        if i < bytes.count, bytes[i] == 0x7D { return result }
        while true {
            skipSpace()
            let key = try string()
            skipSpace()
            guard i < bytes.count, bytes[i] == 0x3A else { throw fail("expected ':'") }
            i += 1
            skipSpace()
            var negative = false
            if i < bytes.count, bytes[i] == 0x2D { negative = true; i += 1 }
            var value = 0, digits = 0
            while i < bytes.count, (0x30...0x39).contains(bytes[i]) {
                value = value * 10 + Int(bytes[i] - 0x30); i += 1; digits += 1
            }
            guard digits > 0 else { throw fail("expected an integer") }
            result[key] = negative ? -value : value
            skipSpace()
            guard i < bytes.count else { throw fail("unterminated object") }
            if bytes[i] == 0x2C { i += 1; continue }
            if bytes[i] == 0x7D { return result }
            throw fail("expected ',' or '}'")
        }
    }

    /// Splits lines `first..<end` of a merges file into symbol pairs, as `line.split()` does
    /// (`end` nil: up to the last line, which the reference drops because the file ends with a newline).
    static func parseMerges(_ bytes: [UInt8], name: String, lines range: (first: Int, end: Int?)) throws -> [(String, String)] {
        var lineStarts: [Int] = [0]
        for (i, b) in bytes.enumerated() where b == 0x0A {
            lineStarts.append(i + 1)
            if let e = range.end, lineStarts.count > e { break }
        }
        let lineCount = lineStarts.count   // the last "line" is whatever follows the final newline
        let end = min(range.end ?? (lineCount - 1), lineCount)
        var merges: [(String, String)] = []
        guard range.first < end else { return merges }
        merges.reserveCapacity(end - range.first)
        for n in range.first..<end {
            let a = lineStarts[n]
            let b = n + 1 < lineStarts.count ? lineStarts[n + 1] - 1 : bytes.count
            var parts: [String] = []
            var i = a
            while i < b {
                while i < b, bytes[i] == 0x20 || bytes[i] == 0x09 || bytes[i] == 0x0D { i += 1 }
                let s = i
                while i < b, bytes[i] != 0x20, bytes[i] != 0x09, bytes[i] != 0x0D { i += 1 }
                if i > s { parts.append(String(decoding: bytes[s..<i], as: UTF8.self)) }
            }
            guard parts.count == 2 else { throw GlideModelError.badMergeLine(name: name, line: n + 1) }
            merges.append((parts[0], parts[1]))
        }
        return merges
    }
}
