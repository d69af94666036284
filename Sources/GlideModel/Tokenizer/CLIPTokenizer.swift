// Port of glide_text2im.tokenizer.simple_tokenizer.SimpleTokenizer (CLIP's BPE), with our own
// reimplementation of the text cleanup it runs first (ftfy.fix_text subset + html.unescape x2).

/// CLIP's tokenizer, as GLIDE's noised CLIP text encoder uses it.
///
/// Cleanup difference from the reference (only exotic input is affected; see README.md): ftfy's
/// mojibake repair (`fix_encoding`) covers whole-line Latin-1 / Windows-1252 mojibake only.
public struct CLIPTokenizer: Sendable {
    let encoder: [String: Int]
    let decoder: [Int: String]
    let merger: BPEMerger

    /// File name of the released merges (gzip-compressed).
    public static let mergesFileName = "bpe_simple_vocab_16e6.txt.gz"

    /// Builds the tokenizer from `bpe_simple_vocab_16e6.txt` (gzip-compressed or plain).
    public init(merges data: [UInt8]) throws {
        let text = try TokenizerFiles.gunzipIfNeeded(data, name: CLIPTokenizer.mergesFileName)
        let merges = try TokenizerFiles.parseMerges(text, name: CLIPTokenizer.mergesFileName, lines: (1, 49152 - 256 - 2 + 1))
        var vocab = ByteUnicodeMap.orderedSymbols
        vocab += vocab.map { $0 + "</w>" }
        vocab += merges.map { $0.0 + $0.1 }
        vocab += ["<|startoftext|>", "<|endoftext|>"]
        var enc: [String: Int] = [:]
        var dec: [Int: String] = [:]
        for (i, v) in vocab.enumerated() { enc[v] = i; dec[i] = v }   // later duplicates win, as dict(zip(...))
        encoder = enc
        decoder = dec
        merger = BPEMerger(merges: merges)
    }

    /// Loads `bpe_simple_vocab_16e6.txt.gz` (or the uncompressed `.txt`) from a folder.
    public init(directory: String) throws {
        for name in [CLIPTokenizer.mergesFileName, "bpe_simple_vocab_16e6.txt"]
        where TokenizerFiles.fileExists(directory + "/" + name) {
            try self.init(merges: TokenizerFiles.readFile(directory + "/" + name))
            return
        }
        throw GlideModelError.missingFile(name: directory + "/" + CLIPTokenizer.mergesFileName)
    }

    /// Builds the tokenizer from embedded files keyed by file name (e.g. a `.glw` file's `tokenizerFiles`).
    public init(files: [String: UnsafeRawBufferPointer]) throws {
        guard let b = files[CLIPTokenizer.mergesFileName] ?? files["bpe_simple_vocab_16e6.txt"] else {
            throw GlideModelError.missingFile(name: CLIPTokenizer.mergesFileName)
        }
        try self.init(merges: Array(b))
    }

    /// `<|startoftext|>` (49406 for the released file).
    public var startToken: Int { encoder["<|startoftext|>"]! }
    /// `<|endoftext|>` (49407 for the released file).
    public var endToken: Int { encoder["<|endoftext|>"]! }
    /// Vocabulary size (49408 for the released file).
    public var vocabularySize: Int { encoder.count }

    /// Token ids of `text` after cleanup (no start/end tokens), as `SimpleTokenizer.encode`.
    public func encode(_ text: String) -> [Int] {
        let cleaned = UnicodeClasses.pythonLower(TextCleanup.whitespaceClean(TextCleanup.basicClean(text)))
        var tokens: [Int] = []
        for range in CLIPTokenizer.preTokenize(cleaned) {
            let piece = cleaned[range]
            if let special = CLIPTokenizer.special(piece) { tokens.append(encoder[special]!); continue }
            var symbols = ByteUnicodeMap.symbols(of: piece)
            symbols[symbols.count - 1] += "</w>"
            for p in merger.merge(symbols) { if let id = encoder[p] { tokens.append(id) } }
        }
        return tokens
    }

    /// Text of token ids, `</w>` turned into spaces, as `SimpleTokenizer.decode`.
    public func decode(_ tokens: [Int]) -> String {
        String(decoding: decodeBytes(tokens), as: UTF8.self)
    }

    /// The raw bytes token ids stand for, `</w>` as a space (a token may hold part of a UTF-8 sequence).
    public func decodeBytes(_ tokens: [Int]) -> [UInt8] {
        var bytes: [UInt8] = []
        for t in tokens {
            guard let piece = decoder[t] else { continue }
            var s = piece
            if s == "<|startoftext|>" || s == "<|endoftext|>" { bytes += Array(s.utf8); continue }
            let endOfWord = s.hasSuffix("</w>")
            if endOfWord { s.removeLast(4) }
            for sc in s.unicodeScalars { if let b = ByteUnicodeMap.scalarToByte[sc.value] { bytes.append(b) } }
            if endOfWord { bytes.append(0x20) }
        }
        return bytes
    }

    /// `padded_tokens_and_len`: `[start] + tokens[:context-2] + [end]`, zero-padded to `context`; the length
    /// counts start and end.
    public func paddedTokensAndLength(_ tokens: [Int], context: Int) -> (tokens: [Int], length: Int) {
        let body = [startToken] + Array(tokens.prefix(max(context - 2, 0))) + [endToken]
        return (body + [Int](repeating: 0, count: max(context - body.count, 0)), body.count)
    }

    static func special(_ piece: ArraySlice<Unicode.Scalar>) -> String? {
        let s = String(String.UnicodeScalarView(piece))
        return s == "<|startoftext|>" || s == "<|endoftext|>" ? s : nil
    }

    // `<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+`;
    // characters matching none (whitespace) are skipped, as re.findall does.
    static func preTokenize(_ s: [Unicode.Scalar]) -> [Range<Int>] {
        let n = s.count
        var out: [Range<Int>] = []
        var i = 0
        let specials: [[Unicode.Scalar]] = [Array("<|startoftext|>".unicodeScalars), Array("<|endoftext|>".unicodeScalars)]
        // With IGNORECASE, U+0345 (which case-folds to a Greek iota) matches neither [\p{L}] nor
        // [^\s\p{L}\p{N}] in the `regex` module, so it matches nothing; it is the only such code point.
        func isOther(_ c: Unicode.Scalar) -> Bool {
            c.value != 0x345 && !UnicodeClasses.isSpace(c) && !UnicodeClasses.isLetter(c) && !UnicodeClasses.isNumber(c)
        }
        outer: while i < n {
            for sp in specials where i + sp.count <= n && Array(s[i..<(i + sp.count)]) == sp {
                out.append(i..<(i + sp.count)); i += sp.count; continue outer
            }
            if s[i] == "'" && i + 1 < n {
                let a = s[i + 1]
                if a == "s" || a == "t" || a == "m" || a == "d" { out.append(i..<(i + 2)); i += 2; continue }
                if i + 2 < n {
                    let b = s[i + 2]
                    if (a == "r" && b == "e") || (a == "v" && b == "e") || (a == "l" && b == "l") {
                        out.append(i..<(i + 3)); i += 3; continue
                    }
                }
            }
            if UnicodeClasses.isLetter(s[i]) {
                var e = i + 1
                while e < n, UnicodeClasses.isLetter(s[e]) { e += 1 }
                out.append(i..<e); i = e; continue
            }
            if UnicodeClasses.isNumber(s[i]) { out.append(i..<(i + 1)); i += 1; continue }
            if isOther(s[i]) {
                var e = i + 1
                while e < n, isOther(s[e]) { e += 1 }
                out.append(i..<e); i = e; continue
            }
            i += 1   // whitespace: no alternative matches
        }
        return out
    }
}

/// The text cleanup CLIP's tokenizer applies before splitting.
enum TextCleanup {
    typealias Scalars = [Unicode.Scalar]

    /// `basic_clean`: ftfy.fix_text (subset), html.unescape twice, strip.
    static func basicClean(_ text: String) -> Scalars {
        var s = ftfyFixText(Array(text.unicodeScalars))
        s = htmlUnescape(htmlUnescape(s))
        return pythonStrip(s)
    }

    /// `whitespace_clean`: runs of \s become one space, then strip.
    static func whitespaceClean(_ s: Scalars) -> Scalars {
        var out: Scalars = []
        var inSpace = false
        for c in s {
            if UnicodeClasses.isSpace(c) { if !inSpace { out.append(" ") }; inSpace = true } else { out.append(c); inSpace = false }
        }
        return pythonStrip(out)
    }

    // str.strip(): removes leading/trailing characters for which str.isspace() is true.
    static func pythonStrip(_ s: Scalars) -> Scalars {
        func isPySpace(_ c: Unicode.Scalar) -> Bool {
            let v = c.value
            if (0x1C...0x1F).contains(v) { return true }
            return UnicodeClasses.isSpace(c)
        }
        var a = 0, b = s.count
        while a < b, isPySpace(s[a]) { a += 1 }
        while b > a, isPySpace(s[b - 1]) { b -= 1 }
        return Array(s[a..<b])
    }

    // MARK: ftfy.fix_text (default config), fix_encoding only for Latin-1 / Windows-1252 mojibake

    static func ftfyFixText(_ text: Scalars) -> Scalars {
        // fix_text works on line-sized segments; "auto" HTML unescaping is off for a segment containing '<'.
        var out: Scalars = []
        var start = 0
        while start < text.count {
            var end = start
            while end < text.count, text[end] != "\n" { end += 1 }
            if end < text.count { end += 1 }
            out += fixSegment(Array(text[start..<end]))
            start = end
        }
        return out
    }

    static func fixSegment(_ segment: Scalars) -> Scalars {
        let unescape = !segment.contains("<")
        var text = segment
        while true {
            let orig = text
            if unescape { text = ftfyUnescapeHTML(text) }
            text = fixEncoding(text)                                                             // fix_encoding (subset)
            text = text.map { c in (0x80...0x9F).contains(c.value) ? cp1252(c.value) : c }          // fix_c1_controls
            text = text.flatMap { c -> Scalars in ligatures[c.value].map { Array($0.unicodeScalars) } ?? [c] }
            text = text.flatMap { c -> Scalars in widthMap[c.value].map { Array($0.unicodeScalars) } ?? [c] }
            text = text.map { c in                                                               // uncurl_quotes
                let v = c.value
                if v == 0x2BC || (0x2018...0x201B).contains(v) { return "'" }
                if (0x201C...0x201F).contains(v) { return "\"" }
                return c
            }
            text = fixLineBreaks(text)
            text = removeTerminalEscapes(text)
            text = text.filter { !isRemovedControl($0.value) }
            text = nfc(text)
            if text == orig { return text }
        }
    }

    static func cp1252(_ v: UInt32) -> Unicode.Scalar {
        // sloppy-windows-1252: the five undefined bytes keep their C1 code point.
        let table: [UInt32] = [0x20AC, 0x81, 0x201A, 0x192, 0x201E, 0x2026, 0x2020, 0x2021, 0x2C6, 0x2030, 0x160,
                               0x2039, 0x152, 0x8D, 0x17D, 0x8F, 0x90, 0x2018, 0x2019, 0x201C, 0x201D, 0x2022,
                               0x2013, 0x2014, 0x2DC, 0x2122, 0x161, 0x203A, 0x153, 0x9D, 0x17E, 0x178]
        return Unicode.Scalar(table[Int(v - 0x80)])!
    }

    static let ligatures: [UInt32: String] = [
        0x132: "IJ", 0x133: "ij", 0x149: "\u{2BC}n", 0x1C4: "D\u{17D}", 0x1C5: "D\u{17E}", 0x1C6: "d\u{17E}",
        0x1C7: "LJ", 0x1C8: "Lj", 0x1C9: "lj", 0x1CA: "NJ", 0x1CB: "Nj", 0x1CC: "nj", 0x1F1: "DZ", 0x1F2: "Dz",
        0x1F3: "dz", 0xFB00: "ff", 0xFB01: "fi", 0xFB02: "fl", 0xFB03: "ffi", 0xFB04: "ffl", 0xFB05: "\u{17F}t",
        0xFB06: "st",
    ]

    static let widthMap: [UInt32: String] = {
        var d: [UInt32: String] = [:]
        for line in TextCleanupTables.widthMap.split(separator: "\n", omittingEmptySubsequences: true) {
            guard let eq = line.firstIndex(of: "="), let k = UInt32(line[..<eq], radix: 16) else { continue }
            d[k] = String(line[line.index(after: eq)...])
        }
        return d
    }()

    static let html5: [String: String] = {
        var d: [String: String] = [:]
        for line in TextCleanupTables.html5Entities.split(separator: "\n", omittingEmptySubsequences: true) {
            guard let eq = line.firstIndex(of: "=") else { continue }
            d[String(line[..<eq])] = String(line[line.index(after: eq)...])
        }
        return d
    }()

    static func fixLineBreaks(_ s: Scalars) -> Scalars {
        var out: Scalars = []
        var i = 0
        while i < s.count {
            let v = s[i].value
            if v == 0x0D && i + 1 < s.count && s[i + 1] == "\n" { out.append("\n"); i += 2; continue }
            out.append(v == 0x0D || v == 0x2028 || v == 0x2029 || v == 0x85 ? "\n" : s[i])
            i += 1
        }
        return out
    }

    // ANSI escapes: ESC [ (digits|;)* letter
    static func removeTerminalEscapes(_ s: Scalars) -> Scalars {
        var out: Scalars = []
        var i = 0
        while i < s.count {
            if s[i].value == 0x1B, i + 1 < s.count, s[i + 1] == "[" {
                var j = i + 2
                while j < s.count, (s[j].value >= 0x30 && s[j].value <= 0x39) || s[j] == ";" { j += 1 }
                if j < s.count, s[j].isASCII, s[j].properties.isAlphabetic { i = j + 1; continue }
            }
            out.append(s[i]); i += 1
        }
        return out
    }

    static func isRemovedControl(_ v: UInt32) -> Bool {
        v <= 0x08 || v == 0x0B || (0x0E...0x1F).contains(v) || v == 0x7F || (0x206A...0x206F).contains(v)
            || v == 0xFEFF || (0xFFF9...0xFFFC).contains(v)
    }

    static func nfc(_ s: Scalars) -> Scalars {
        if s.allSatisfy({ $0.value < 0x300 }) { return s }
        return Array(String(decoding: String(String.UnicodeScalarView(s))._nfcCodeUnits, as: UTF8.self).unicodeScalars)
    }

    // ftfy's unescape_html: `&#?[0-9A-Za-z]{1,24};` replaced when it is an HTML5 entity ending in ';'
    // or a numeric reference html.unescape decodes.
    static func ftfyUnescapeHTML(_ s: Scalars) -> Scalars {
        var out: Scalars = []
        var i = 0
        func isAlnum(_ c: Unicode.Scalar) -> Bool {
            let v = c.value
            return (0x30...0x39).contains(v) || (0x41...0x5A).contains(v) || (0x61...0x7A).contains(v)
        }
        while i < s.count {
            if s[i] == "&" {
                var j = i + 1
                if j < s.count, s[j] == "#" { j += 1 }
                let bodyStart = j
                while j < s.count, j - bodyStart < 24, isAlnum(s[j]) { j += 1 }
                if j > bodyStart, j < s.count, s[j] == ";" {
                    let entity = Array(s[i...j])
                    let name = String(String.UnicodeScalarView(entity.dropFirst()))
                    if entity[1] != "#", let v = html5[name] ?? upperCaseEntity(entity) {
                        out += v.unicodeScalars; i = j + 1; continue
                    }
                    if entity[1] == "#" {
                        let un = htmlUnescape(entity)
                        if !un.contains(";") { out += un; i = j + 1; continue }
                    }
                }
            }
            out.append(s[i]); i += 1
        }
        return out
    }

    // ftfy also decodes all-caps spellings of lowercase entity names (`&EACUTE;` -> "É", `&SZLIG;` -> "SS")
    // when html.unescape would leave that spelling alone; the replacement is uppercased.
    static func upperCaseEntity(_ entity: Scalars) -> String? {
        let name = String(String.UnicodeScalarView(entity.dropFirst()))
        guard !name.unicodeScalars.contains(where: { $0.value >= 0x61 && $0.value <= 0x7A }) else { return nil }
        let lower = String(String.UnicodeScalarView(name.unicodeScalars.map { s in
            s.value >= 0x41 && s.value <= 0x5A ? Unicode.Scalar(s.value + 32)! : s
        }))
        guard lower != name, let value = html5[lower], htmlUnescape(entity) == entity else { return nil }
        return String(String.UnicodeScalarView(value.unicodeScalars.flatMap { $0.properties.uppercaseMapping.unicodeScalars }))
    }

    // MARK: Python's html.unescape

    static func htmlUnescape(_ s: Scalars) -> Scalars {
        guard s.contains("&") else { return s }
        var out: Scalars = []
        var i = 0
        while i < s.count {
            guard s[i] == "&", i + 1 < s.count else { out.append(s[i]); i += 1; continue }
            if s[i + 1] == "#" {
                var j = i + 2
                var hex = false
                if j < s.count, s[j] == "x" || s[j] == "X" { hex = true; j += 1 }
                let digitsStart = j
                while j < s.count, isDigit(s[j], hex: hex) { j += 1 }
                if j > digitsStart {
                    let digits = String(String.UnicodeScalarView(s[digitsStart..<j]))
                    if j < s.count, s[j] == ";" { j += 1 }
                    out += numericCharref(digits, hex: hex)
                    i = j; continue
                }
                out.append(s[i]); i += 1; continue
            }
            // [^\t\n\f <&#;]{1,32};?
            var j = i + 1
            while j < s.count, j - (i + 1) < 32, !"\t\n\u{0C} <&#;".unicodeScalars.contains(s[j]) { j += 1 }
            guard j > i + 1 else { out.append(s[i]); i += 1; continue }
            if j < s.count, s[j] == ";" { j += 1 }
            let name = String(String.UnicodeScalarView(s[(i + 1)..<j]))
            if let v = html5[name] {
                out += v.unicodeScalars
            } else {
                let nameScalars = Array(name.unicodeScalars)
                var replaced = false
                var x = nameScalars.count - 1
                while x > 1 {
                    if let v = html5[String(String.UnicodeScalarView(nameScalars[0..<x]))] {
                        out += v.unicodeScalars; out += nameScalars[x...]; replaced = true; break
                    }
                    x -= 1
                }
                if !replaced { out.append("&"); out += nameScalars }
            }
            i = j
        }
        return out
    }

    static func isDigit(_ c: Unicode.Scalar, hex: Bool) -> Bool {
        let v = c.value
        if (0x30...0x39).contains(v) { return true }
        return hex && ((0x41...0x46).contains(v) || (0x61...0x66).contains(v))
    }

    static func numericCharref(_ digits: String, hex: Bool) -> Scalars {
        var num: UInt64 = 0
        for c in digits.unicodeScalars {
            let d = UInt64(c.properties.numericType != nil ? Int(c.value) - 0x30 : 0)
            let hv: UInt64 = c.value >= 0x61 ? UInt64(c.value - 0x61 + 10) : c.value >= 0x41 ? UInt64(c.value - 0x41 + 10) : d
            num = min(num &* (hex ? 16 : 10) &+ (hex ? hv : d), 0x7FFF_FFFF)
        }
        if num == 0 { return ["\u{FFFD}"] }
        if num == 0x0D { return ["\r"] }
        if (0x80...0x9F).contains(num) {
            let c = cp1252(UInt32(num))
            // html's table maps the five undefined bytes to their C1 code points too.
            return [c]
        }
        if (0xD800...0xDFFF).contains(num) || num > 0x10FFFF { return ["\u{FFFD}"] }
        let invalid = (0x1...0x8).contains(num) || (0xE...0x1F).contains(num) || (0x7F...0x9F).contains(num)
            || (0xFDD0...0xFDEF).contains(num) || num == 0xB || (num & 0xFFFE) == 0xFFFE
        if invalid { return [] }
        return [Unicode.Scalar(UInt32(num))!]
    }
}
