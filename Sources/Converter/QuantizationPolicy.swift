// Per-tensor storage policy glw-policy-2 (documented in Formats/glw.md): which tensors are
// stored in the requested type, which stay at higher precision, and, for int8 tensors, the precision
// of the activations they multiply.
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
    /// The first `QuantizationPolicy.earlyTextBlocks` blocks of the GLIDE text transformer: f16 when int8 is requested.
    case earlyText = "text-early"
    /// Linear and convolution weights: the requested type.
    case matrix

    /// One-line description recorded in the file.
    public var explanation: String {
        switch self {
        case .nonFloat: return "integer and bool tensors are stored unchanged (int64; narrower ints widened to int64)"
        case .vector: return "rank <= 1 (biases, norm gains and shifts) stays f32"
        case .tiny: return "fewer than \(QuantizationPolicy.tinyLimit) elements stays f32"
        case .embedding: return "embedding tables (looked up, not multiplied) take the requested type, but f16 when int8 is requested"
        case .earlyText: return "matrices of the first \(QuantizationPolicy.earlyTextBlocks) text transformer blocks (transformer.resblocks.0-\(QuantizationPolicy.earlyTextBlocks - 1)) take the requested type, but f16 when int8 is requested"
        case .matrix: return "linear and convolution weights take the requested type (int8: symmetric per output row)"
        }
    }
}

/// How `glide convert` / `glide quantize` choose the `activation_bits` of int8 tensors.
public enum Int8ActivationChoice: String, Sendable, CaseIterable {
    /// By layer role (`QuantizationPolicy.activationBits(name:)`): 8-bit for the UNet's convolutions and
    /// attention projections, 16-bit for the rest. The default.
    case role
    /// 16-bit for every int8 tensor (what every glw-policy-1 file means).
    case all16 = "16"
    /// 8-bit for every int8 tensor (fastest, largest error).
    case all8 = "8"

    /// The bits recorded for the int8 tensor `name`.
    public func bits(name: String) -> Int {
        switch self {
        case .role: return QuantizationPolicy.activationBits(name: name)
        case .all16: return 16
        case .all8: return 8
        }
    }
}

/// glw-policy-2 (glw-policy-1 plus the `text-early` rule and per-tensor `activation_bits`).
public enum QuantizationPolicy {
    /// Name recorded in files.
    public static let name = "glw-policy-2"
    /// Tensors with fewer elements stay f32.
    public static let tinyLimit = 16384
    /// Blocks at the start of the GLIDE text transformer whose matrices stay f16 when int8 is requested.
    public static let earlyTextBlocks = 4
    /// Last module names (before `.weight`) of int8 matrices whose activations are quantized to 8 bits under
    /// `Int8ActivationChoice.role`: the UNet's per-step convolutions and attention projections.
    public static let eightBitActivationModules: Set<String> = [
        UNetTensorNames.ResBlock.inConv, UNetTensorNames.ResBlock.outConv, UNetTensorNames.ResBlock.skip,
        UNetTensorNames.Attention.qkv, UNetTensorNames.Attention.encoderKV, UNetTensorNames.Attention.projOut,
        UNetTensorNames.downsampleConv, UNetTensorNames.upsampleConv,
    ]

    /// Activation bits (8 or 16) for the int8 matrix `name` by its role. 8 for the UNet's convolutions and attention
    /// projections (work done every step, where `vpdpbusd` runs twice as fast on 8-bit activations); 16 for the text
    /// transformer, `transformer_proj`, `time_embed` and `emb_layers` (run once per sample or on one column per step,
    /// so 8 bits would buy no time, and measured as the layers where 8 bits cost the most error).
    public static func activationBits(name: String) -> Int {
        guard name.hasSuffix(".weight"), !name.hasPrefix(UNetTensorNames.transformerBlocks + ".") else { return 16 }
        let module = name.dropLast(".weight".count)
        for m in eightBitActivationModules where module.hasSuffix("." + m) { return 8 }
        return 16
    }

    /// True for the matrices of the first `earlyTextBlocks` text transformer blocks.
    static func isEarlyText(_ name: String) -> Bool {
        let prefix = UNetTensorNames.transformerBlocks + "."
        guard name.hasPrefix(prefix) else { return false }
        guard let block = Int(name.dropFirst(prefix.count).prefix(while: { $0 != "." })) else { return false }
        return block < earlyTextBlocks
    }
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
        if isEarlyText(name) { return .earlyText }
        return .matrix
    }

    /// The stored type of a float tensor under `rule` when `target` is requested.
    public static func storedType(rule: QuantizationRule, target: WeightDType) -> WeightDType {
        switch rule {
        case .nonFloat: return .i64
        case .vector, .tiny: return .f32
        case .embedding, .earlyText: return target == .int8 ? .f16 : target
        case .matrix: return target
        }
    }

    /// Rules recorded in a file's metadata.
    static var rulesJSON: JSONValue {
        .object(Dictionary(uniqueKeysWithValues: QuantizationRule.allCases.map { ($0.rawValue, JSONValue.string($0.explanation)) }))
    }
}
