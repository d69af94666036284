// Checkpoint tensor names, in one place for the model's binding table (GlideModel/Network/Bindings.swift,
// CLIP.swift) and the converter's recognition (Converter/ModelRecognition.swift). Names are the reference's
// state_dict() keys: module paths, to which a layer adds `.weight` / `.bias` (PyTorch) or `.w` / `.b` / `.g`
// (the CLIP encoders' own modules).

/// Module paths of glide_text2im's Text2ImUNet (unet.UNetModel plus the text transformer of text2im_model.py).
public enum UNetTensorNames {
    /// `name.weight`.
    public static func weight(_ module: String) -> String { module + ".weight" }

    // Text transformer.
    /// `token_embedding` (Embedding `[n_vocab, xf_width]`).
    public static let tokenEmbedding = "token_embedding"
    /// `positional_embedding` (Parameter `[text_ctx, xf_width]`).
    public static let positionalEmbedding = "positional_embedding"
    /// `padding_embedding` (Parameter `[text_ctx, xf_width]`, with `xf_padding`).
    public static let paddingEmbedding = "padding_embedding"
    /// `final_ln` (LayerNorm, with `xf_final_ln`).
    public static let finalLN = "final_ln"
    /// `transformer_proj` (Linear to the time embedding width).
    public static let transformerProj = "transformer_proj"
    /// `transformer.resblocks`: the transformer blocks' parent.
    public static let transformerBlocks = "transformer.resblocks"
    /// `transformer.resblocks.i`.
    public static func transformerBlock(_ i: Int) -> String { "\(transformerBlocks).\(i)" }

    // UNet.
    /// `time_embed.i` (0 and 2 are the Linears).
    public static func timeEmbed(_ i: Int) -> String { "time_embed.\(i)" }
    /// `input_blocks`: the encoder stages' parent.
    public static let inputBlocks = "input_blocks"
    /// `input_blocks.i`.
    public static func inputBlock(_ i: Int) -> String { "\(inputBlocks).\(i)" }
    /// `middle_block.i`.
    public static func middleBlock(_ i: Int) -> String { "middle_block.\(i)" }
    /// `output_blocks`: the decoder stages' parent.
    public static let outputBlocks = "output_blocks"
    /// `output_blocks.i`.
    public static func outputBlock(_ i: Int) -> String { "\(outputBlocks).\(i)" }
    /// `out.0` (GroupNorm).
    public static let outNorm = "out.0"
    /// `out.2` (the last Conv2d).
    public static let outConv = "out.2"
    /// The first convolution, `input_blocks.0.0`.
    public static let firstConv = "input_blocks.0.0"

    /// Submodules of a ResBlock (relative to the block).
    public enum ResBlock {
        public static let inNorm = "in_layers.0"
        public static let inConv = "in_layers.2"
        public static let embLinear = "emb_layers.1"
        public static let outNorm = "out_layers.0"
        public static let outConv = "out_layers.3"
        public static let skip = "skip_connection"
    }

    /// Submodules of an AttentionBlock (relative to the block).
    public enum Attention {
        public static let norm = "norm"
        public static let qkv = "qkv"
        public static let encoderKV = "encoder_kv"
        public static let projOut = "proj_out"
    }

    /// The convolution of a plain Downsample (`op`) and Upsample (`conv`), relative to the layer.
    public static let downsampleConv = "op"
    public static let upsampleConv = "conv"
}

/// Module paths of glide_text2im.clip's image and text encoders.
public enum CLIPTensorNames {
    /// `blocks.input.w_voc` (text: token embedding `[n_vocab, n_embd]`).
    public static let tokenEmbedding = "blocks.input.w_voc"
    /// `blocks.input.w_pos` (positions).
    public static let positions = "blocks.input.w_pos"
    /// `blocks.input.patch_proj` (image: patch convolution).
    public static let patchProjection = "blocks.input.patch_proj"
    /// `blocks.input.pred_state` (image).
    public static let predState = "blocks.input.pred_state"
    /// `blocks.input.w_t` (image: timestep embedding).
    public static let timestepEmbedding = "blocks.input.w_t"
    /// `blocks.input.ln`.
    public static let inputLN = "blocks.input.ln"
    /// `blocks.block_i`.
    public static func block(_ i: Int) -> String { "blocks.block_\(i)" }
    /// `f_attn.f_q` inside a block (its first query projection: present in every block).
    public static let blockQuery = "f_attn.f_q"
    /// `blocks.output.ln`.
    public static let outputLN = "blocks.output.ln"
    /// `blocks.output.f` (the final projection, no bias).
    public static let outputProjection = "blocks.output.f"
    /// `name.w` (the encoders' weight field).
    public static func weight(_ module: String) -> String { module + ".w" }
}
