// Character classes and lowercasing as the reference tokenizers see them: the `regex` module's
// \s, \p{L}, \p{N} and Python's str.lower().

enum UnicodeClasses {
    enum Extra { case letter, number }

    // Code points the `regex` module (2026.11, Unicode 17) classifies as letters/numbers that Swift 6.3's
    // Unicode tables still leave unassigned. Found by comparing every code point (see README.md).
    static let extraRanges: [(UInt32, UInt32, Extra)] = [
        (0x00558, 0x00558, .letter), (0x0058B, 0x0058C, .letter), (0x0208F, 0x0208F, .letter),
        (0x0209D, 0x0209F, .letter), (0x0A7DD, 0x0A7DD, .letter), (0x0A7E2, 0x0A7E2, .letter),
        (0x0AB6C, 0x0AB6D, .letter), (0x107BB, 0x107BF, .letter), (0x10ED9, 0x10EEE, .letter),
        (0x11B0A, 0x11B0A, .letter), (0x11DF1, 0x11DF1, .letter), (0x1246F, 0x1246F, .number),
        (0x12475, 0x1247F, .number), (0x12550, 0x12686, .number), (0x18CD6, 0x18CDA, .letter),
        (0x18D1F, 0x18D20, .letter), (0x18E00, 0x19191, .letter), (0x191A0, 0x191D2, .letter),
        (0x1B123, 0x1B128, .letter), (0x1B168, 0x1B168, .letter), (0x1D6A6, 0x1D6A6, .letter),
        (0x1DF1F, 0x1DF24, .letter), (0x1DF2B, 0x1DF81, .letter), (0x1DF90, 0x1DF96, .letter),
        (0x1DFCD, 0x1DFFF, .letter), (0x2B81E, 0x2B81E, .letter), (0x3D000, 0x3FC3F, .letter),
    ]

    // Code points Swift lowercases but Python 3.11's str.lower() (Unicode 14) leaves alone.
    static let keepCaseRanges: [ClosedRange<UInt32>] = [
        0x1C89...0x1C89, 0xA7CB...0xA7CC, 0xA7CE...0xA7CE, 0xA7D2...0xA7D2, 0xA7D4...0xA7D4,
        0xA7DA...0xA7DA, 0xA7DC...0xA7DC, 0x10D50...0x10D65, 0x16EA0...0x16EB8,
    ]

    static func extra(_ s: Unicode.Scalar) -> Extra? {
        let v = s.value
        guard v >= 0x558 else { return nil }
        for r in extraRanges where v >= r.0 && v <= r.1 { return r.2 }
        return nil
    }

    /// \p{L}
    static func isLetter(_ s: Unicode.Scalar) -> Bool {
        if s.isASCII { let v = s.value; return (v >= 0x41 && v <= 0x5A) || (v >= 0x61 && v <= 0x7A) }
        switch s.properties.generalCategory {
        case .uppercaseLetter, .lowercaseLetter, .titlecaseLetter, .modifierLetter, .otherLetter: return true
        case .unassigned: return extra(s) == .letter
        default: return false
        }
    }

    /// \p{N}
    static func isNumber(_ s: Unicode.Scalar) -> Bool {
        if s.isASCII { return s.value >= 0x30 && s.value <= 0x39 }
        switch s.properties.generalCategory {
        case .decimalNumber, .letterNumber, .otherNumber: return true
        case .unassigned: return extra(s) == .number
        default: return false
        }
    }

    /// \s in the `regex` module: the Unicode White_Space property.
    static func isSpace(_ s: Unicode.Scalar) -> Bool {
        if s.isASCII { let v = s.value; return v == 0x20 || (v >= 0x09 && v <= 0x0D) }
        return s.properties.isWhitespace
    }

    /// Python's `str.lower()`: full lowercase mappings, with the Final_Sigma rule for U+03A3.
    static func pythonLower(_ scalars: [Unicode.Scalar]) -> [Unicode.Scalar] {
        var out: [Unicode.Scalar] = []
        out.reserveCapacity(scalars.count)
        for (i, s) in scalars.enumerated() {
            if s.isASCII {
                out.append(s.value >= 0x41 && s.value <= 0x5A ? Unicode.Scalar(s.value + 32)! : s)
            } else if s.value == 0x3A3 {
                out.append(isFinalSigma(scalars, i) ? "\u{3C2}" : "\u{3C3}")
            } else if keepCaseRanges.contains(where: { $0.contains(s.value) }) {
                out.append(s)
            } else {
                out.append(contentsOf: s.properties.lowercaseMapping.unicodeScalars)
            }
        }
        return out
    }

    // Final_Sigma: preceded by a cased letter (skipping case-ignorables), not followed by one.
    private static func isFinalSigma(_ s: [Unicode.Scalar], _ i: Int) -> Bool {
        var j = i - 1
        while j >= 0, s[j].properties.isCaseIgnorable { j -= 1 }
        guard j >= 0, s[j].properties.isCased else { return false }
        var k = i + 1
        while k < s.count, s[k].properties.isCaseIgnorable { k += 1 }
        return !(k < s.count && s[k].properties.isCased)
    }
}
