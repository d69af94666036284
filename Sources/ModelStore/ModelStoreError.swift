// Errors of the ModelStore module (downloads, manifests, the model cache, set-up).

/// What can go wrong fetching, checking or caching model files. Errors of the conversion (`ConverterError`,
/// `CheckpointError`, `WeightFormatError`) pass through unchanged.
public enum ModelStoreError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The server answered `url` with a status other than 200/206.
    case http(url: String, status: Int)
    /// The transfer of `url` stopped after `received` bytes (network error, connection cut). The `.part` file
    /// is kept, so the next attempt resumes from there.
    case interrupted(url: String, received: Int64, reason: String)
    /// A file's length is not the expected one (`expectedFrom`: "pinned", "manifest" or "server").
    case lengthMismatch(file: String, expected: Int64, actual: Int64, expectedFrom: String)
    /// A downloaded file's SHA-256 is not the expected one (`expectedFrom`: "pinned" or "manifest").
    /// Nothing was installed; the downloaded bytes were removed.
    case digestMismatch(file: String, expected: String, actual: String, expectedFrom: String)
    /// A file already on disk does not match its manifest entry (changed or damaged since it was recorded).
    case presentFileMismatch(file: String, expected: String, actual: String)
    /// A file could not be read, written or renamed (`operation` e.g. "open", "write", "rename").
    case io(path: String, operation: String, reason: String)
    /// The manifest file is not a manifest this version reads.
    case badManifest(path: String, reason: String)
    /// A model name that is not one of the released models.
    case unknownModel(name: String, known: [String])
    /// A model that is not in the cache folder (`type` nil: in no storage type).
    case notInCache(model: String, type: String?, directory: String)

    public var description: String {
        switch self {
        case let .http(url, status): return "\(url) answered HTTP \(status)"
        case let .interrupted(url, received, reason):
            return "download of \(url) stopped after \(received) bytes (\(reason)); the partial file is kept and the next attempt resumes it"
        case let .lengthMismatch(file, expected, actual, from):
            return "\(file): \(actual) bytes, but the \(from) length is \(expected) bytes"
        case let .digestMismatch(file, expected, actual, from):
            return "\(file): SHA-256 \(actual), but the \(from) digest is \(expected); the download was discarded"
        case let .presentFileMismatch(file, expected, actual):
            return "\(file) does not match its manifest entry (recorded \(expected), found \(actual))"
        case let .io(path, op, reason): return "\(op) \(path): \(reason)"
        case let .badManifest(path, reason): return "bad manifest \(path): \(reason)"
        case let .unknownModel(name, known): return "unknown model '\(name)'; known: \(known.joined(separator: ", "))"
        case let .notInCache(model, type, dir):
            return "model \(model)\(type.map { " (\($0))" } ?? "") is not in the model cache \(dir)"
        }
    }
}
