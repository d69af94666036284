// The set-up recipe for one checkpoint: convert (tokenizer embedded), check that it is the model it should be,
// verify every tensor against the source; on any failure nothing is left at the destination.
import Foundation
import WeightFormat

/// What `convertAndVerify` produced.
public struct PreparedModel: Sendable {
    public var summary: ConversionSummary
    public var verification: VerificationReport
}

/// Converts `source` to `destination` with `options`, then verifies the result against the source (every CRC,
/// and each tensor bit-exact or within the int8 bound). With `expectedModel` (a released model's name), a
/// checkpoint recognised as another model is refused, unless `options.configPath` describes a model of its own.
/// On failure the destination is removed.
public func convertAndVerify(source: String, destination: String, options: ConversionOptions,
                             expectedModel: String?, progress: ((String, Int, Int) -> Void)? = nil) throws -> PreparedModel {
    let summary = try convertCheckpoint(source: source, destination: destination, options: options)
    do {
        if let expectedModel, options.configPath == nil, summary.model != expectedModel {
            throw ConverterError.unexpectedModel(path: source, expected: expectedModel, actual: summary.model)
        }
        let report = try verifyGLW(path: destination, against: source, progress: progress)
        if !report.isSound {
            let reason = report.checksumFailures.first.map { "\($0)" }
                ?? report.missingFromFile.first.map { "tensor \($0) is missing" }
                ?? report.missingFromSource.first.map { "tensor \($0) is not in the source" }
                ?? report.comparisons.first(where: \.isMismatch).map { "tensor \($0.name): \($0.outcome)" } ?? "unsound"
            throw ConverterError.verificationFailed(path: destination, reason: reason)
        }
        return PreparedModel(summary: summary, verification: report)
    } catch {
        unlink(destination)
        throw error
    }
}
