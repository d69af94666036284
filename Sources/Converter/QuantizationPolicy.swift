// Per-tensor storage policy glw-policy-1 (documented in Formats/glw.md): which tensors are
// stored in the requested type and which stay at higher precision.
import GlideSpec
import WeightFormat

/// The rule that decided a tensor's stored type.
public enum QuantizationRule: String, Sendable, CaseIterable {
    /// Integer and bool tensors: stored as they are.
    case nonFloat = "non-float"
    /// Rank <= 1 (biases, norm gains and shifts): always f32.
    case vector
    /// Fewer than `tinyLimit` elements: always f32.
    case tiny
    /// Tables that are looked up rather than multiplied: f16 when int8 is requested.
    case embedding
    /// Linear and convolution weights: the requested type.
    case matrix

    /// One-line description recorded in the file.
    public var explanation: String {
        switch self {
        case .nonFloat: return "integer and bool tensors are stored unchanged (int64; narrower ints widened to int64)"
        case .vector: return "rank <= 1 (biases, norm gains and shifts) stays f32"
        case .tiny: return "fewer than \(QuantizationPolicy.tinyLimit) elements stays f32"
        case .embedding: return "embedding tables (looked up, not multiplied) take the requested type, but f16 when int8 is requested"
        case .matrix: return "linear and convolution weights take the requested type (int8: symmetric per output row)"
        }
    }
}

/// glw-policy-1.
public enum QuantizationPolicy {
    /// Name recorded in files.
    public static let name = "glw-policy-1"
    /// Tensors with fewer elements stay f32.
    public static let tinyLimit = 16384
    /// Last name components of embedding tables in GLIDE and CLIP checkpoints.
    public static let embeddingNames: Set<String> = Set(
        [UNetTensorNames.tokenEmbedding, UNetTensorNames.positionalEmbedding, UNetTensorNames.paddingEmbedding,
         CLIPTensorNames.tokenEmbedding, CLIPTensorNames.positions, CLIPTensorNames.timestepEmbedding]
            .map { String($0.split(separator: ".").last!) })

    /// The rule for a tensor.
    public static func rule(name: String, shape: [Int], isFloat: Bool) -> QuantizationRule {
        if !isFloat { return .nonFloat }
        if shape.count <= 1 { return .vector }
        if shape.reduce(1, *) < tinyLimit { return .tiny }
        let last = name.split(separator: ".").last.map(String.init) ?? name
        if embeddingNames.contains(last) || name.hasSuffix(UNetTensorNames.weight(UNetTensorNames.tokenEmbedding)) { return .embedding }
        return .matrix
    }

    /// The stored type of a float tensor under `rule` when `target` is requested.
    public static func storedType(rule: QuantizationRule, target: WeightDType) -> WeightDType {
        switch rule {
        case .nonFloat: return .i64
        case .vector, .tiny: return .f32
        case .embedding: return target == .int8 ? .f16 : target
        case .matrix: return target
        }
    }

    /// Rules recorded in a file's metadata.
    static var rulesJSON: JSONValue {
        .object(Dictionary(uniqueKeysWithValues: QuantizationRule.allCases.map { ($0.rawValue, JSONValue.string($0.explanation)) }))
    }
}
