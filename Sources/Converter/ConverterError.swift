// Errors of the Converter module (checkpoint -> .glw, requantization, verification).

/// What can go wrong converting, requantizing or verifying. Errors of the checkpoint reader
/// (`CheckpointError`) and of the weight file (`WeightFormatError`) pass through unchanged.
public enum ConverterError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The requested output type is not one of f32, f16, bf16, int8.
    case unsupportedTargetType(String)
    /// Reading a file failed (`operation` e.g. "open", "read"); `errno` is the C error number.
    case io(path: String, operation: String, errno: Int32)
    /// The options file (`ConversionOptions.configPath`) is not a JSON object of option names to numbers, strings or bools.
    case invalidConfig(path: String, reason: String)
    /// An option of the options file disagrees with what the checkpoint's tensors say.
    case configMismatch(option: String, config: String, checkpoint: String, evidence: String)
    /// A tensor's values cannot be represented in the target type (NaN/infinity for int8, beyond ±65504 for f16).
    case valueOutOfRange(tensor: String, target: String, value: Float)
    /// A tokenizer file the model needs is not in the tokenizer directory (`ConversionOptions.tokenizerDirectory`).
    case tokenizerFileMissing(path: String)
    /// The stored zip CRC-32 of a checkpoint entry does not match its bytes.
    case sourceChecksumMismatch(entry: String, expected: UInt32, actual: UInt32)
    /// Source and destination are the same file.
    case sameSourceAndDestination(path: String)
    /// The checkpoint was recognised as another model than the one asked for (`convertAndVerify`).
    case unexpectedModel(path: String, expected: String, actual: String)
    /// The converted file did not verify against its source (`convertAndVerify`); it was removed.
    case verificationFailed(path: String, reason: String)

    public var description: String {
        switch self {
        case let .unsupportedTargetType(t): return "unsupported output type '\(t)' (choose f32, f16, bf16 or int8)"
        case let .io(path, op, err): return "\(op) \(path): \(String(cString: strerrorText(err)))"
        case let .invalidConfig(path, reason): return "bad options file \(path): \(reason)"
        case let .configMismatch(option, config, checkpoint, evidence):
            return "the options file says \(option) = \(config), but the checkpoint has \(checkpoint) (\(evidence))"
        case let .valueOutOfRange(tensor, target, value): return "tensor '\(tensor)': value \(value) cannot be stored as \(target)"
        case let .tokenizerFileMissing(path): return "tokenizer file \(path) not found"
        case let .sourceChecksumMismatch(entry, expected, actual):
            return "checkpoint entry \(entry) is damaged: stored CRC-32 \(String(expected, radix: 16)), computed \(String(actual, radix: 16))"
        case let .sameSourceAndDestination(path): return "source and destination are the same file: \(path)"
        case let .unexpectedModel(path, expected, actual): return "\(path) is not the \(expected) model: its tensors are those of \(actual)"
        case let .verificationFailed(path, reason): return "\(path) did not verify against its source: \(reason)"
        }
    }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
func strerrorText(_ e: Int32) -> UnsafeMutablePointer<CChar> { strerror(e) }
