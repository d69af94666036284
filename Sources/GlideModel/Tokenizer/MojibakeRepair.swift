// Port of the common case of ftfy.fix_encoding (ftfy/__init__.py, _fix_encoding_one_step_and_explain): text
// that was UTF-8 but got decoded as Latin-1 or Windows-1252 ("cafÃ©", "donâ€™t") is encoded back with that
// single-byte charmap and decoded as UTF-8, repeated until nothing changes.
//
// Not covered (see README.md): ftfy's badness heuristic is replaced by the UTF-8 signature test below; the
// other charmaps it tries (sloppy-windows-1250/1251/1253/1254, iso-8859-2, macroman, cp437); restore_byte_a0
// (a lost 0xA0 byte shown as a space), replace_lossy_sequences, utf-8-variants (CESU-8, 0xC0 0x80), and
// decode_inconsistent_utf8 (mojibake mixed with correct non-Latin-1 text in one segment).

extension TextCleanup {
    /// ftfy's `fix_encoding` subset: whole-segment UTF-8 mojibake through Latin-1 or sloppy Windows-1252.
    static func fixEncoding(_ text: Scalars) -> Scalars {
        var current = text
        while true {
            let next = fixEncodingOneStep(current)
            if next == current { return current }
            current = next
        }
    }

    static func fixEncodingOneStep(_ text: Scalars) -> Scalars {
        if text.allSatisfy({ $0.value < 0x80 }) { return text }
        for charmap in [latin1Byte, sloppyWindows1252Byte] {
            guard let bytes = encode(text, charmap), hasUTF8Signature(bytes), let decoded = strictUTF8(bytes) else { continue }
            return decoded
        }
        return text
    }

    // Stands in for ftfy's is_bad on text a single-byte charmap can hold: some UTF-8 lead byte followed by a
    // continuation byte (what "Ã©", "â€™", "Â°" are made of).
    static func hasUTF8Signature(_ bytes: [UInt8]) -> Bool {
        for i in 0..<max(bytes.count - 1, 0) where (0xC2...0xF4).contains(bytes[i]) && (0x80...0xBF).contains(bytes[i + 1]) {
            return true
        }
        return false
    }

    static func encode(_ text: Scalars, _ charmap: (UInt32) -> UInt8?) -> [UInt8]? {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(text.count)
        for c in text {
            guard let b = charmap(c.value) else { return nil }
            bytes.append(b)
        }
        return bytes
    }

    static func latin1Byte(_ v: UInt32) -> UInt8? { v <= 0xFF ? UInt8(v) : nil }

    /// ftfy's sloppy-windows-1252: Windows-1252 with its five undefined bytes mapped to the C1 code points.
    static func sloppyWindows1252Byte(_ v: UInt32) -> UInt8? {
        if v < 0x80 || (0xA0...0xFF).contains(v) { return UInt8(v) }
        return windows1252Reverse[v]
    }

    static let windows1252Reverse: [UInt32: UInt8] = {
        var d: [UInt32: UInt8] = [:]
        for b in UInt32(0x80)...0x9F { d[cp1252(b).value] = UInt8(b) }
        return d
    }()

    /// Strict UTF-8 decoding (no overlong forms, no surrogates), nil when the bytes are not UTF-8.
    static func strictUTF8(_ bytes: [UInt8]) -> Scalars? {
        var out: Scalars = []
        var i = 0
        while i < bytes.count {
            let b0 = bytes[i]
            let (count, minimum, initial): (Int, UInt32, UInt32)
            switch b0 {
            case 0x00...0x7F: out.append(Unicode.Scalar(b0)); i += 1; continue
            case 0xC2...0xDF: (count, minimum, initial) = (1, 0x80, UInt32(b0 & 0x1F))
            case 0xE0...0xEF: (count, minimum, initial) = (2, 0x800, UInt32(b0 & 0x0F))
            case 0xF0...0xF4: (count, minimum, initial) = (3, 0x10000, UInt32(b0 & 0x07))
            default: return nil
            }
            guard i + count < bytes.count else { return nil }
            var v = initial
            for k in 1...count {
                let b = bytes[i + k]
                guard (0x80...0xBF).contains(b) else { return nil }
                v = v << 6 | UInt32(b & 0x3F)
            }
            guard v >= minimum, v <= 0x10FFFF, !(0xD800...0xDFFF).contains(v), let s = Unicode.Scalar(v) else { return nil }
            out.append(s)
            i += count + 1
        }
        return out
    }
}
