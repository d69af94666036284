// Errors of the tokenizers (GPT-2 BPE and CLIP's simple tokenizer).

/// Everything that can go wrong loading a tokenizer vocabulary.
public enum TokenizerError: Error, Equatable, CustomStringConvertible {
    /// A vocabulary file could not be read (path, reason).
    case cannotRead(path: String, reason: String)
    /// A required file is missing from a folder or embedded file set (its name).
    case missingFile(name: String)
    /// gzip data could not be inflated (file name, zlib message).
    case badGzip(name: String, reason: String)
    /// `encoder.json` is not a flat JSON object of string -> integer (why, byte offset).
    case badEncoderJSON(reason: String, offset: Int)
    /// A merges line is not two space-separated symbols (file name, 1-based line number).
    case badMergeLine(name: String, line: Int)
    /// A merge result or special token is missing from the vocabulary (the token).
    case tokenNotInVocabulary(token: String)

    public var description: String {
        switch self {
        case let .cannotRead(path, reason): return "cannot read \(path): \(reason)"
        case let .missingFile(name): return "tokenizer file \(name) not found"
        case let .badGzip(name, reason): return "\(name): not valid gzip data (\(reason))"
        case let .badEncoderJSON(reason, offset): return "encoder.json: \(reason) at byte \(offset)"
        case let .badMergeLine(name, line): return "\(name): line \(line) is not a merge of two symbols"
        case let .tokenNotInVocabulary(token): return "token '\(token)' is not in the vocabulary"
        }
    }
}
