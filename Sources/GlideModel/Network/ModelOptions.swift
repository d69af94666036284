// The model options of glide_text2im.model_creation (create_model), read from a weight file.
import GlideSpec
import WeightFormat

/// The architecture options of a GLIDE text-conditional UNet, named as the reference's
/// `model_and_diffusion_defaults()` names them (the keys stored in a `.glw` file's hyperparameters).
///
/// Keys absent from the file take the reference defaults: `model_and_diffusion_defaults()`, or
/// `model_and_diffusion_defaults_upsampler()` when `super_res` is true.
public struct ModelOptions: Equatable, Sendable {
    /// `image_size`: side of the square images the model produces.
    public var imageSize: Int
    /// `num_channels`: the UNet's base width (`model_channels`).
    public var numChannels: Int
    /// `num_res_blocks`: residual blocks per resolution level.
    public var numResBlocks: Int
    /// `channel_mult`: width multiplier per level (derived from `image_size` when stored as "").
    public var channelMult: [Int]
    /// `num_heads`: attention heads when `num_head_channels` is -1.
    public var numHeads: Int
    /// `num_head_channels`: channels per attention head (-1: use `num_heads`).
    public var numHeadChannels: Int
    /// `num_heads_upsample`: heads in the decoder's attention (-1: same as `num_heads`).
    public var numHeadsUpsample: Int
    /// `attention_resolutions`: resolutions (in pixels) with attention, e.g. "32,16,8".
    public var attentionResolutions: [Int]
    /// `text_ctx`: number of text tokens.
    public var textCtx: Int
    /// `xf_width`: text transformer width (0: no text conditioning).
    public var xfWidth: Int
    /// `xf_layers`: text transformer depth.
    public var xfLayers: Int
    /// `xf_heads`: text transformer heads.
    public var xfHeads: Int
    /// `xf_final_ln`: a LayerNorm after the text transformer.
    public var xfFinalLN: Bool
    /// `xf_padding`: a learned embedding replaces padded (mask false) token positions.
    public var xfPadding: Bool
    /// `use_scale_shift_norm`: FiLM-style (1 + scale, shift) conditioning in ResBlocks.
    public var useScaleShiftNorm: Bool
    /// `resblock_updown`: residual blocks do the up/down-sampling (else plain conv resampling).
    public var resblockUpdown: Bool
    /// `inpaint`: the input carries the masked image and the mask.
    public var inpaint: Bool
    /// `super_res`: the input carries a bilinearly upsampled low-resolution image.
    public var superRes: Bool
    /// `diffusion_steps`: length of the training diffusion process.
    public var diffusionSteps: Int
    /// `noise_schedule`: `squaredcos_cap_v2` or `linear`.
    public var noiseSchedule: NoiseSchedule
    /// `timestep_respacing`: the file's default respacing (`.all` for "").
    public var timestepRespacing: TimestepRespacing

    /// Image channels in and out of the diffusion process (the reference fixes 3 in, 6 out).
    public var imageChannels: Int { 3 }
    /// Output channels: ε and the variance interpolation.
    public var outChannels: Int { 6 }
    /// Input channels of the first convolution, after the variant's concatenation.
    public var modelInChannels: Int {
        switch (superRes, inpaint) {
        case (false, false): return imageChannels
        case (true, false): return imageChannels * 2
        case (false, true): return imageChannels * 2 + 1
        case (true, true): return imageChannels * 3 + 1
        }
    }
    /// The width of the timestep embedding (`model_channels * 4`).
    public var timeEmbedDim: Int { numChannels * 4 }
    /// Downsample rates with attention (`image_size / resolution`).
    public var attentionDownsampleRates: Set<Int> { Set(attentionResolutions.map { imageSize / $0 }) }

    /// The reference class this configuration builds.
    public var referenceClassName: String {
        switch (superRes, inpaint) {
        case (false, false): return "Text2ImUNet"
        case (true, false): return "SuperResText2ImUNet"
        case (false, true): return "InpaintText2ImUNet"
        case (true, true): return "SuperResInpaintText2ImUnet"
        }
    }

    /// Reads the options from a weight file's hyperparameters (reference names), filling absent
    /// keys with the reference defaults (`ReferenceOptions.unet(superRes:)`), and checks them.
    public init(hyperparameters given: [String: HyperValue]) throws {
        let superRes = try Self.bool(given, "super_res")
        let h = ReferenceOptions.unet(superRes: superRes).merging(given) { $1 }
        imageSize = try Self.int(h, "image_size")
        numChannels = try Self.int(h, "num_channels")
        numResBlocks = try Self.int(h, "num_res_blocks")
        numHeads = try Self.int(h, "num_heads")
        numHeadChannels = try Self.int(h, "num_head_channels")
        numHeadsUpsample = try Self.int(h, "num_heads_upsample")
        textCtx = try Self.int(h, "text_ctx")
        xfWidth = try Self.int(h, "xf_width")
        xfLayers = try Self.int(h, "xf_layers")
        xfHeads = try Self.int(h, "xf_heads")
        xfFinalLN = try Self.bool(h, "xf_final_ln")
        xfPadding = try Self.bool(h, "xf_padding")
        useScaleShiftNorm = try Self.bool(h, "use_scale_shift_norm")
        resblockUpdown = try Self.bool(h, "resblock_updown")
        inpaint = try Self.bool(h, "inpaint")
        self.superRes = superRes
        diffusionSteps = try Self.int(h, "diffusion_steps")
        let scheduleName = try Self.string(h, "noise_schedule")
        guard let schedule = NoiseSchedule(rawValue: scheduleName) else {
            throw GlideModelError.invalidHyperparameter(
                name: "noise_schedule", expected: NoiseSchedule.allCases.map(\.rawValue).joined(separator: " or "),
                actual: "\"\(scheduleName)\"")
        }
        noiseSchedule = schedule
        let respacingText = try Self.string(h, "timestep_respacing")
        do {
            timestepRespacing = try TimestepRespacing(parsing: respacingText)
        } catch {
            throw GlideModelError.invalidHyperparameter(name: "timestep_respacing", expected: "a respacing (\"\", 100, ddim50, fast27, 10,10,10)",
                                                        actual: "\"\(respacingText)\"")
        }

        let multText = try Self.string(h, "channel_mult")
        if multText.isEmpty {
            guard let standard = ReferenceOptions.standardChannelMult(imageSize: imageSize) else {
                throw GlideModelError.invalidHyperparameter(
                    name: "channel_mult", expected: "a list (image_size \(imageSize) has no default)", actual: "\"\"")
            }
            channelMult = standard
        } else {
            channelMult = try Self.intList(multText, name: "channel_mult")
        }
        attentionResolutions = try Self.intList(try Self.string(h, "attention_resolutions"),
                                                name: "attention_resolutions")
        try validate()
    }

    private func validate() throws {
        func require(_ ok: Bool, _ name: String, _ expected: String, _ actual: String) throws {
            if !ok { throw GlideModelError.invalidHyperparameter(name: name, expected: expected, actual: actual) }
        }
        try require(imageSize > 0, "image_size", "> 0", "\(imageSize)")
        try require(numChannels > 0, "num_channels", "> 0", "\(numChannels)")
        try require(numResBlocks > 0, "num_res_blocks", "> 0", "\(numResBlocks)")
        try require(!channelMult.isEmpty && channelMult.allSatisfy { $0 > 0 && ($0 * numChannels) % 32 == 0 },
                    "channel_mult", "positive multipliers giving widths divisible by 32", "\(channelMult)")
        try require(imageSize % (1 << (channelMult.count - 1)) == 0, "image_size",
                    "divisible by 2^(levels-1)", "\(imageSize)")
        try require(attentionResolutions.allSatisfy { $0 > 0 && imageSize % $0 == 0 }, "attention_resolutions",
                    "divisors of image_size \(imageSize)", "\(attentionResolutions)")
        try require(numHeadChannels == -1 || numHeadChannels > 0, "num_head_channels", "-1 or > 0", "\(numHeadChannels)")
        try require(numHeadChannels != -1 || numHeads > 0, "num_heads", "> 0", "\(numHeads)")
        try require(textCtx > 0 || xfWidth == 0, "text_ctx", "> 0", "\(textCtx)")
        try require(xfWidth >= 0, "xf_width", ">= 0", "\(xfWidth)")
        if xfWidth > 0 {
            try require(xfHeads > 0 && xfWidth % xfHeads == 0, "xf_heads", "a divisor of xf_width \(xfWidth)", "\(xfHeads)")
            try require(xfLayers >= 0, "xf_layers", ">= 0", "\(xfLayers)")
        }
        try require(diffusionSteps > 0, "diffusion_steps", "> 0", "\(diffusionSteps)")
    }

    private static func describe(_ v: HyperValue) -> String {
        switch v {
        case .int(let i): return "int \(i)"
        case .double(let d): return "double \(d)"
        case .string(let s): return "string \"\(s)\""
        case .bool(let b): return "bool \(b)"
        }
    }

    // Every key read here has a reference default, so `h` (defaults merged with the file's values) holds it.
    private static func int(_ h: [String: HyperValue], _ key: String) throws -> Int {
        guard let v = h[key] else { return try absent(key, "an integer") }
        switch v {
        case .int(let i): return i
        case .double(let d) where d == d.rounded() && abs(d) < 1e15: return Int(d)
        case .string(let s) where Int(s) != nil: return Int(s)!
        default: throw GlideModelError.invalidHyperparameter(name: key, expected: "an integer", actual: describe(v))
        }
    }

    private static func bool(_ h: [String: HyperValue], _ key: String) throws -> Bool {
        guard let v = h[key] ?? ReferenceOptions.text2im[key] else { return try absent(key, "a boolean") }
        switch v {
        case .bool(let b): return b
        case .int(let i) where i == 0 || i == 1: return i == 1
        case .string("true"), .string("True"): return true
        case .string("false"), .string("False"): return false
        default: throw GlideModelError.invalidHyperparameter(name: key, expected: "a boolean", actual: describe(v))
        }
    }

    private static func absent<T>(_ key: String, _ expected: String) throws -> T {
        throw GlideModelError.invalidHyperparameter(name: key, expected: expected, actual: "absent")
    }

    private static func string(_ h: [String: HyperValue], _ key: String) throws -> String {
        guard let v = h[key] else { return try absent(key, "a string") }
        switch v {
        case .string(let s): return s
        case .int(let i): return String(i)
        default: throw GlideModelError.invalidHyperparameter(name: key, expected: "a string", actual: describe(v))
        }
    }

    private static func intList(_ text: String, name: String) throws -> [Int] {
        var result: [Int] = []
        for part in text.split(separator: ",", omittingEmptySubsequences: false) {
            let trimmed = part.filter { $0 != " " }
            guard let value = Int(trimmed) else {
                throw GlideModelError.invalidHyperparameter(name: name, expected: "comma-separated integers", actual: "\"\(text)\"")
            }
            result.append(value)
        }
        return result
    }
}
