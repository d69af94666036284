// Port of glide_text2im.tokenizer.bpe.Encoder (GPT-2's byte-level BPE) with GLIDE's padding.

/// GPT-2 byte-level BPE tokenizer, as GLIDE's text models use it (`model.tokenizer`).
///
/// `encode` lowercases like Python's `str.lower()`, splits with the GPT-2 pattern
/// `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+` (implemented by hand),
/// maps UTF-8 bytes to GPT-2's printable symbols and merges by rank.
public struct GPT2Tokenizer: Sendable {
    let encoder: [String: Int]
    let decoder: [Int: String]
    let merger: BPEMerger

    /// File names the released tokenizer uses (gzip-compressed).
    public static let encoderFileName = "encoder.json.gz"
    /// See `encoderFileName`.
    public static let mergesFileName = "vocab.bpe.gz"

    /// Builds the tokenizer from the contents of `encoder.json` and `vocab.bpe` (gzip-compressed or plain).
    public init(encoderJSON: [UInt8], vocabBPE: [UInt8]) throws {
        let json = try TokenizerFiles.gunzipIfNeeded(encoderJSON, name: "encoder.json")
        let bpe = try TokenizerFiles.gunzipIfNeeded(vocabBPE, name: "vocab.bpe")
        encoder = try TokenizerFiles.parseEncoderJSON(json)
        var d: [Int: String] = [:]
        for (k, v) in encoder { d[v] = k }
        decoder = d
        let merges = try TokenizerFiles.parseMerges(bpe, name: "vocab.bpe", lines: (1, nil))
        merger = BPEMerger(merges: merges)
        // Every byte symbol and merge result must have an id, so `encode` never meets an unknown piece.
        for symbol in ByteUnicodeMap.orderedSymbols where encoder[symbol] == nil {
            throw GlideModelError.tokenNotInVocabulary(token: symbol)
        }
        for (a, b) in merges where encoder[a + b] == nil { throw GlideModelError.tokenNotInVocabulary(token: a + b) }
    }

    /// Loads `encoder.json.gz` and `vocab.bpe.gz` (or the uncompressed `encoder.json`, `vocab.bpe`) from a folder.
    public init(directory: String) throws {
        func load(_ gz: String, _ plain: String) throws -> [UInt8] {
            for name in [gz, plain] where TokenizerFiles.fileExists(directory + "/" + name) {
                return try TokenizerFiles.readFile(directory + "/" + name)
            }
            throw GlideModelError.missingFile(name: directory + "/" + gz)
        }
        try self.init(encoderJSON: load("encoder.json.gz", "encoder.json"), vocabBPE: load("vocab.bpe.gz", "vocab.bpe"))
    }

    /// Builds the tokenizer from embedded files keyed by file name (e.g. a `.glw` file's `tokenizerFiles`);
    /// needs `encoder.json(.gz)` and `vocab.bpe(.gz)`.
    public init(files: [String: UnsafeRawBufferPointer]) throws {
        func pick(_ names: [String]) throws -> [UInt8] {
            for n in names { if let b = files[n] { return Array(b) } }
            throw GlideModelError.missingFile(name: names[0])
        }
        try self.init(encoderJSON: pick(["encoder.json.gz", "encoder.json"]), vocabBPE: pick(["vocab.bpe.gz", "vocab.bpe"]))
    }

    /// Vocabulary size (`n_vocab`, 50257 for the released files).
    public var vocabularySize: Int { encoder.count }
    /// `<|endoftext|>`, the padding token: `n_vocab - 1`.
    public var endToken: Int { encoder.count - 1 }

    /// Token ids of `text` (no padding, no truncation), exactly as `Encoder.encode`.
    public func encode(_ text: String) -> [Int] {
        let scalars = UnicodeClasses.pythonLower(Array(text.unicodeScalars))
        var tokens: [Int] = []
        for range in GPT2Tokenizer.preTokenize(scalars) {
            let symbols = ByteUnicodeMap.symbols(of: scalars[range])
            for piece in merger.merge(symbols) {
                if let id = encoder[piece] { tokens.append(id) }   // always present: checked when loading
            }
        }
        return tokens
    }

    /// Text of token ids (invalid UTF-8 replaced by U+FFFD), as `Encoder.decode`.
    public func decode(_ tokens: [Int]) -> String {
        String(decoding: decodeBytes(tokens), as: UTF8.self)
    }

    /// The raw bytes token ids stand for (a single token may hold part of a UTF-8 sequence).
    public func decodeBytes(_ tokens: [Int]) -> [UInt8] {
        var bytes: [UInt8] = []
        for t in tokens {
            guard let piece = decoder[t] else { continue }
            for s in piece.unicodeScalars { if let b = ByteUnicodeMap.scalarToByte[s.value] { bytes.append(b) } }
        }
        return bytes
    }

    /// `padded_tokens_and_mask`: truncates to `context`, pads with `endToken`; mask is true for real tokens.
    public func paddedTokensAndMask(_ tokens: [Int], context: Int) -> (tokens: [Int], mask: [Bool]) {
        let kept = Array(tokens.prefix(context))
        let padding = context - kept.count
        return (kept + [Int](repeating: endToken, count: padding),
                [Bool](repeating: true, count: kept.count) + [Bool](repeating: false, count: padding))
    }

    // The GPT-2 pattern, alternative by alternative in the reference's order, returning match ranges.
    static func preTokenize(_ s: [Unicode.Scalar]) -> [Range<Int>] {
        let n = s.count
        var out: [Range<Int>] = []
        var i = 0
        func run(from j: Int, _ pred: (Unicode.Scalar) -> Bool) -> Int {
            var k = j
            while k < n, pred(s[k]) { k += 1 }
            return k
        }
        let isOther: (Unicode.Scalar) -> Bool = {
            !UnicodeClasses.isSpace($0) && !UnicodeClasses.isLetter($0) && !UnicodeClasses.isNumber($0)
        }
        while i < n {
            // 's|'t|'re|'ve|'m|'ll|'d
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
            // ` ?\p{L}+`, ` ?\p{N}+`, ` ?[^\s\p{L}\p{N}]+`
            let body = s[i] == " " && i + 1 < n ? i + 1 : i
            var matched = false
            for pred in [UnicodeClasses.isLetter, UnicodeClasses.isNumber, isOther] {
                if body != i, pred(s[body]) {
                    let e = run(from: body, pred); out.append(i..<e); i = e; matched = true; break
                }
                if pred(s[i]) {
                    let e = run(from: i, pred); out.append(i..<e); i = e; matched = true; break
                }
            }
            if matched { continue }
            // `\s+(?!\S)` then `\s+`: s[i] is whitespace here.
            let e = run(from: i, UnicodeClasses.isSpace)
            if e == n || e - i == 1 { out.append(i..<e); i = e } else { out.append(i..<(e - 1)); i = e - 1 }
        }
        return out
    }
}

/// The text models' tokenizer under the name `glide sample` uses.
public typealias GlideTokenizer = GPT2Tokenizer

extension GPT2Tokenizer {
    /// Same as `init(encoderJSON:vocabBPE:)` (gzip data is detected either way).
    public init(encoderJSONGz: [UInt8], vocabBPEGz: [UInt8]) throws {
        try self.init(encoderJSON: encoderJSONGz, vocabBPE: vocabBPEGz)
    }

    /// Same as `paddedTokensAndMask(_:context:)`, with the reference's `text_ctx` name.
    public func paddedTokensAndMask(_ tokens: [Int], textCtx: Int) -> (tokens: [Int], mask: [Bool]) {
        paddedTokensAndMask(tokens, context: textCtx)
    }
}
