// Port of glide_text2im.text2im_model: Text2ImUNet, SuperResText2ImUNet, InpaintText2ImUNet and
// SuperResInpaintText2ImUnet, as one model whose variant comes from the file's `super_res` / `inpaint` options.
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Kernels
import WeightFormat

/// A GLIDE text-conditional UNet loaded from a `.glw` file, runnable on the CPU.
///
/// The variant follows the file's options as `create_model` does: `Text2ImUNet` (base),
/// `SuperResText2ImUNet` (`super_res`), `InpaintText2ImUNet` (`inpaint`) or `SuperResInpaintText2ImUnet`
/// (both). Weights stay in the memory-mapped file in their stored dtype (f32, f16, bf16 or int8).
///
/// Usage: compute the text conditioning once per sample with `encodeText`, then call `forward` at
/// every diffusion step.
public final class Text2ImUNet: @unchecked Sendable {
    /// The architecture options read from the file.
    public let options: ModelOptions
    /// The weight file the layers view into (kept open for the model's lifetime).
    public let file: WeightFile
    private let arena: VectorArena
    /// The packed GEMM panels of the int8 matrices (filled at first use).
    let packedWeights = PackedWeightGroup()
    /// The transformed Winograd panels of the int8 3x3 convolutions (filled at first use, within its budget).
    let winogradWeights: WinogradWeightCache
    /// The activation buffers of forward passes, kept for the next one.
    let activationPool = ActivationPool()
    private let text: TextEncoder?
    private let unet: UNetBody

    /// Binds every tensor of `file` to the layers its options describe. Throws `GlideModelError` naming the
    /// first missing, misshapen, wrongly typed or unexpected tensor, or an impossible option.
    public init(file: WeightFile) throws {
        self.file = file
        options = try ModelOptions(hyperparameters: file.hyperparameters)
        arena = VectorArena()
        // Released with the model's pages: the file is a read-only mapping.
        winogradWeights = WinogradWeightCache(budget: Self.defaultWinogradCacheBudget(options), releasesSource: true)
        var bindings = NetworkBindings(file: file, arena: arena, options: options, packedWeights: packedWeights,
                                       winogradWeights: winogradWeights)
        (text, unet) = try bindings.build()
    }

    /// Opens and binds a `.glw` file.
    public convenience init(path: String) throws {
        try self.init(file: try WeightFile(path: path))
    }

    /// Drops the model's weights from resident memory while it is kept for later: the file's pages
    /// (`WeightFile.releaseResidentMemory`) and the packed GEMM panels. Both come back at the next use.
    public func releaseResidentMemory() {
        activationPool.release()
        packedWeights.release()
        winogradWeights.release()
        file.releaseResidentMemory()
    }

    /// Bytes of transformed int8 Winograd weight panels the model may keep across forward passes (the panels
    /// of a 3x3 convolution take 32 or 48 bytes per channel pair against the int8 weights' 9; the weights' file
    /// pages are released once their panels are kept). Weights are admitted in first-use order until the budget is
    /// reached; the others are transformed at every call. Default: `defaultWinogradCacheBudget`. Lowering it
    /// keeps panels already held until `releaseResidentMemory()`.
    public var winogradCacheBudget: Int {
        get { winogradWeights.budget }
        set { winogradWeights.budget = newValue }
    }

    /// Bytes of transformed Winograd weight panels the model holds.
    public var winogradCacheByteCount: Int { winogradWeights.byteCount }

    /// Bytes of the activation slab the model keeps for its next forward pass (`ActivationPool`; released by
    /// `releaseResidentMemory()`).
    public var activationPoolByteCount: Int { activationPool.heldBytes }

    /// The default `winogradCacheBudget`: env `GLIDE_WINOGRAD_CACHE_MB` (MiB) when set, else by measurement
    /// (BENCHMARKS.md) per model size, so that the text -> 64 -> 256 pipeline stays within its memory target.
    public static func defaultWinogradCacheBudget(_ options: ModelOptions) -> Int {
        if let mb = getenv("GLIDE_WINOGRAD_CACHE_MB").flatMap({ Int(String(cString: $0)) }) { return max(0, mb) << 20 }
        return options.imageSize <= 64 ? 512 << 20 : 0
    }

    /// The default `winogradCacheBudget` beside CLIP guidance, whose encoders and gradient buffers share the base
    /// stage's memory: env `GLIDE_WINOGRAD_CACHE_MB` when set, else at most 192 MiB (measured: the CLIP-guided
    /// base stage peaked 753 MB without panels, 846 MB with 128 MiB, 947 MB with 256 MiB, 1,079 MB with all).
    public static func clipGuidedWinogradCacheBudget(_ options: ModelOptions) -> Int {
        if getenv("GLIDE_WINOGRAD_CACHE_MB") != nil { return defaultWinogradCacheBudget(options) }
        return min(defaultWinogradCacheBudget(options), 192 << 20)
    }

    /// Lowers `winogradCacheBudget` to at most `bytes`, dropping the panels held when they exceed it (they are
    /// kept again within the new budget at their next use). Not while a forward pass runs.
    public func limitWinogradCache(to bytes: Int) {
        winogradWeights.budget = min(winogradWeights.budget, max(0, bytes))
        if winogradWeights.byteCount > winogradWeights.budget { winogradWeights.release() }
    }

    /// Rows of the token embedding (`n_vocab`), or nil for a model without text.
    public var vocabularySize: Int? { text?.vocabularySize }

    /// The text conditioning for `batch` prompts: `tokens` and `mask` are `[batch, text_ctx]` row-major
    /// (the reference's `padded_tokens_and_mask`). Compute it once per sample; it holds the transformer
    /// output, its projection and every attention block's encoder keys/values.
    public func encodeText(tokens: [Int], mask: [Bool], batch: Int) throws -> TextConditioning {
        guard let text else {
            throw GlideModelError.invalidInput(name: "tokens", expected: "no tokens (the model has xf_width 0)",
                                            actual: "\(tokens.count) tokens")
        }
        let ctx = options.textCtx
        guard batch > 0, tokens.count == batch * ctx else {
            throw GlideModelError.invalidInput(name: "tokens", expected: "[\(batch), \(ctx)]", actual: "\(tokens.count) values")
        }
        guard mask.count == batch * ctx else {
            throw GlideModelError.invalidInput(name: "mask", expected: "[\(batch), \(ctx)]", actual: "\(mask.count) values")
        }
        if let bad = tokens.first(where: { $0 < 0 || $0 >= text.vocabularySize }) {
            throw GlideModelError.invalidInput(name: "tokens", expected: "ids in 0..<\(text.vocabularySize)", actual: "\(bad)")
        }
        let (xfOut, xfProj) = text(tokens: tokens, mask: mask, batch: batch)
        let kv = unet.attentionBlocks.map { $0.encoderKeysValues(xfOut) }
        return TextConditioning(batch: batch, xfProj: xfProj, xfOut: xfOut, encoderKV: kv)
    }

    /// One forward pass, as the reference's `model(x, timesteps, tokens=, mask=, low_res=, inpaint_image=,
    /// inpaint_mask=)`: returns `[batch, 6, H, W]` (ε, then the variance interpolation).
    ///
    /// - `x`: `[batch, 3, H, W]` noisy images (H, W divisible by 2^(levels-1)).
    /// - `timesteps`: `batch` (possibly fractional) timesteps.
    /// - `text`: from `encodeText` (required when the model has a text transformer).
    /// - `lowRes`: `[batch, 3, h, w]`, required by super-resolution models (resized bilinearly to H x W).
    /// - `inpaintImage` `[batch, 3, H, W]` and `inpaintMask` `[batch, 1, H, W]`: inpainting models; absent
    ///   means zeros, as in the reference.
    /// - `observe`: receives named intermediate activations (`emb`, `input_block<i>`, `middle_block`,
    ///   `output_block<i>`) for equivalence checks.
    public func forward(x: FloatTensor, timesteps: [Float], text: TextConditioning?, lowRes: FloatTensor? = nil,
                        inpaintImage: FloatTensor? = nil, inpaintMask: FloatTensor? = nil,
                        observe: ((String, FloatTensor) -> Void)? = nil) throws -> FloatTensor {
        try activationPool.withPass {
            try forwardPooled(x: x, timesteps: timesteps, text: text, lowRes: lowRes, inpaintImage: inpaintImage,
                              inpaintMask: inpaintMask, observe: observe)
        }
    }

    /// `forward` with the model's activation pool installed.
    private func forwardPooled(x: FloatTensor, timesteps: [Float], text: TextConditioning?, lowRes: FloatTensor?,
                               inpaintImage: FloatTensor?, inpaintMask: FloatTensor?,
                               observe: ((String, FloatTensor) -> Void)?) throws -> FloatTensor {
        let o = options
        guard x.shape.count == 4, x.shape[1] == o.imageChannels, x.shape[0] > 0 else {
            throw GlideModelError.invalidInput(name: "x", expected: "[batch, \(o.imageChannels), H, W]", actual: "\(x.shape)")
        }
        let batch = x.shape[0], height = x.shape[2], width = x.shape[3]
        let factor = 1 << (o.channelMult.count - 1)
        guard height > 0, width > 0, height % factor == 0, width % factor == 0 else {
            throw GlideModelError.invalidInput(name: "x", expected: "height and width divisible by \(factor)", actual: "\(x.shape)")
        }
        guard timesteps.count == batch else {
            throw GlideModelError.invalidInput(name: "timesteps", expected: "[\(batch)]", actual: "[\(timesteps.count)]")
        }
        if self.text != nil {
            guard let text else {
                throw GlideModelError.invalidInput(name: "tokens", expected: "[\(batch), \(o.textCtx)]", actual: "none")
            }
            guard text.batch == batch else {
                throw GlideModelError.invalidInput(name: "tokens", expected: "[\(batch), \(o.textCtx)]",
                                                actual: "[\(text.batch), \(o.textCtx)]")
            }
        }

        // The variant's input concatenation (text2im_model.py's forward methods).
        var parts: [Activation] = [Activation(x)]
        if o.inpaint {
            let image = try inpaintImage.map { try checked($0, "inpaint_image", [batch, 3, height, width]) }
            let mask = try inpaintMask.map { try checked($0, "inpaint_mask", [batch, 1, height, width]) }
            let masked = Activation(shape: [batch, 3, height, width], zeroed: true)
            let maskPart = Activation(shape: [batch, 1, height, width], zeroed: true)
            if let image, let mask {
                let s = height * width
                for n in 0..<batch {
                    for c in 0..<3 {
                        for i in 0..<s { masked.pointer[(n * 3 + c) * s + i] = image.values[(n * 3 + c) * s + i] * mask.values[n * s + i] }
                    }
                }
            }
            if let mask { mask.values.withUnsafeBufferPointer { maskPart.pointer.update(from: $0.baseAddress!, count: $0.count) } }
            parts += [masked, maskPart]
        } else if inpaintImage != nil || inpaintMask != nil {
            throw GlideModelError.invalidInput(name: inpaintImage != nil ? "inpaint_image" : "inpaint_mask",
                                            expected: "none (not an inpainting model)", actual: "a tensor")
        }
        if o.superRes {
            guard let lowRes else {
                throw GlideModelError.invalidInput(name: "low_res", expected: "[\(batch), 3, h, w]", actual: "none")
            }
            guard lowRes.shape.count == 4, lowRes.shape[0] == batch, lowRes.shape[1] == 3, lowRes.shape[2] > 0, lowRes.shape[3] > 0 else {
                throw GlideModelError.invalidInput(name: "low_res", expected: "[\(batch), 3, h, w]", actual: "\(lowRes.shape)")
            }
            let up = Activation(shape: [batch, 3, height, width])
            lowRes.values.withUnsafeBufferPointer {
                resizeBilinear($0.baseAddress!, up.pointer, planes: batch * 3, inHeight: lowRes.shape[2],
                               inWidth: lowRes.shape[3], outHeight: height, outWidth: width)
            }
            parts.append(up)
        } else if lowRes != nil {
            throw GlideModelError.invalidInput(name: "low_res", expected: "none (not a super-resolution model)", actual: "a tensor")
        }
        var h = parts[0]
        for part in parts.dropFirst() { h = concatChannels(h, part) }

        var emb = unet.timeEmbedding(timesteps)
        if let text {
            for i in 0..<emb.count { emb[i] += text.xfProj[i] }
        }
        observe?("emb", FloatTensor(shape: [batch, emb.count / batch], values: emb))
        let out = unet(h, emb: emb, encoderKV: text?.encoderKV ?? [],
                       observe: observe.map { f in { name, a in f(name, a.tensor()) } })
        return out.tensor()
    }

    private func checked(_ t: FloatTensor, _ name: String, _ shape: [Int]) throws -> FloatTensor {
        guard t.shape == shape else {
            throw GlideModelError.invalidInput(name: name, expected: "\(shape)", actual: "\(t.shape)")
        }
        return t
    }
}
