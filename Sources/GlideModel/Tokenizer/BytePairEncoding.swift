// The byte-level BPE shared by both tokenizers: port of bytes_to_unicode / get_pairs / Encoder.bpe
// (glide_text2im/tokenizer/bpe.py and simple_tokenizer.py).

/// GPT-2's reversible byte -> printable code point map.
enum ByteUnicodeMap {
    /// `byteToScalar[b]` is the code point standing for byte b.
    static let byteToScalar: [Unicode.Scalar] = {
        var printable: [Int] = Array(0x21...0x7E) + Array(0xA1...0xAC) + Array(0xAE...0xFF)
        var scalars = printable
        var n = 0
        for b in 0..<256 where !printable.contains(b) {
            printable.append(b)
            scalars.append(256 + n)
            n += 1
        }
        var table = [Unicode.Scalar](repeating: " ", count: 256)
        for (b, s) in zip(printable, scalars) { table[b] = Unicode.Scalar(UInt32(s))! }
        return table
    }()

    /// The 256 byte symbols in the order of the reference's `bytes_to_unicode().values()`.
    static let orderedSymbols: [String] = {
        let printable: [Int] = Array(0x21...0x7E) + Array(0xA1...0xAC) + Array(0xAE...0xFF)
        let rest = (0..<256).filter { !printable.contains($0) }
        return (printable + rest).map { String(byteToScalar[$0]) }
    }()

    static let scalarToByte: [UInt32: UInt8] = {
        var d: [UInt32: UInt8] = [:]
        for b in 0..<256 { d[byteToScalar[b].value] = UInt8(b) }
        return d
    }()

    /// The UTF-8 bytes of a piece of text, each as its symbol.
    static func symbols(of scalars: ArraySlice<Unicode.Scalar>) -> [String] {
        var s = String.UnicodeScalarView()
        s.append(contentsOf: scalars)
        return String(s).utf8.map { String(byteToScalar[Int($0)]) }
    }
}

/// Merge ranks plus the greedy lowest-rank-first merging loop.
struct BPEMerger {
    let ranks: [String: Int]   // key: first + "\u{0}" + second

    init(merges: [(String, String)]) {
        var r: [String: Int] = [:]
        r.reserveCapacity(merges.count)
        for (i, m) in merges.enumerated() where r[m.0 + "\u{0}" + m.1] == nil { r[m.0 + "\u{0}" + m.1] = i }
        ranks = r
    }

    /// Repeatedly merges every occurrence of the lowest-ranked adjacent pair, left to right.
    func merge(_ initial: [String]) -> [String] {
        var word = initial
        while word.count > 1 {
            var best = Int.max
            var bestPair = ("", "")
            for i in 0..<(word.count - 1) {
                if let r = ranks[word[i] + "\u{0}" + word[i + 1]], r < best { best = r; bestPair = (word[i], word[i + 1]) }
            }
            if best == Int.max { break }
            var merged: [String] = []
            merged.reserveCapacity(word.count)
            var i = 0
            while i < word.count {
                if i < word.count - 1, word[i] == bestPair.0, word[i + 1] == bestPair.1 {
                    merged.append(bestPair.0 + bestPair.1)
                    i += 2
                } else {
                    merged.append(word[i])
                    i += 1
                }
            }
            word = merged
        }
        return word
    }
}
