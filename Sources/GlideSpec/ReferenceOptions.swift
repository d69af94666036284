// The reference's option defaults, in one place for the converter (recognising and describing checkpoints) and
// the model (reading a .glw file's hyperparameters): glide_text2im.model_creation.model_and_diffusion_defaults(),
// model_and_diffusion_defaults_upsampler() and glide_text2im/clip/config.yaml.
import WeightFormat

/// The reference's options for each model family, keyed by the reference's option names.
public enum ReferenceOptions {
    /// `model_and_diffusion_defaults()` (with `use_fp16` false: a .glw file records precision per tensor).
    public static let text2im: [String: HyperValue] = [
        "image_size": .int(64), "num_channels": .int(192), "num_res_blocks": .int(3), "channel_mult": .string(""),
        "num_heads": .int(1), "num_head_channels": .int(64), "num_heads_upsample": .int(-1),
        "attention_resolutions": .string("32,16,8"), "dropout": .double(0.1), "text_ctx": .int(128),
        "xf_width": .int(512), "xf_layers": .int(16), "xf_heads": .int(8), "xf_final_ln": .bool(true),
        "xf_padding": .bool(true), "diffusion_steps": .int(1000), "noise_schedule": .string("squaredcos_cap_v2"),
        "timestep_respacing": .string(""), "use_scale_shift_norm": .bool(true), "resblock_updown": .bool(true),
        "use_fp16": .bool(false), "cache_text_emb": .bool(false), "inpaint": .bool(false), "super_res": .bool(false),
    ]

    /// `model_and_diffusion_defaults_upsampler()`.
    public static let upsampler: [String: HyperValue] = text2im.merging([
        "image_size": .int(256), "num_res_blocks": .int(2), "noise_schedule": .string("linear"), "super_res": .bool(true),
    ]) { $1 }

    /// The UNet defaults for a model with or without `super_res`.
    public static func unet(superRes: Bool) -> [String: HyperValue] { superRes ? upsampler : text2im }

    /// `glide_text2im/clip/config.yaml`.
    public static let clip: [String: HyperValue] = [
        "logit_scale": .double(100.0), "beta_schedule": .string("squaredcos_cap_v2"), "n_timesteps": .int(1000),
        "image_size": .int(64), "patch_size": .int(4), "n_vocab": .int(65536), "max_text_len": .int(77), "n_embd": .int(512),
        "n_head_state_text": .int(64), "n_head_text": .int(8), "n_xf_blocks_text": .int(12),
        "n_head_state_image": .int(64), "n_head_image": .int(12), "n_xf_blocks_image": .int(12),
    ]

    /// The `channel_mult` the reference derives from `image_size` when the option is `""`, or nil when it has none.
    public static func standardChannelMult(imageSize: Int) -> [Int]? {
        switch imageSize {
        case 256: return [1, 1, 2, 2, 4, 4]
        case 128: return [1, 1, 2, 3, 4]
        case 64: return [1, 2, 3, 4]
        default: return nil
        }
    }
}
