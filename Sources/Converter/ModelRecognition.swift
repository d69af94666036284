// Recognising GLIDE models from tensor names and shapes, and filling in their hyperparameters
// with the reference's option names (model_and_diffusion_defaults() for UNets, clip/config.yaml for CLIP).
import GlideSpec
import WeightFormat

private typealias N = UNetTensorNames
private typealias C = CLIPTensorNames

/// Which kind of network a set of tensors is.
public enum ModelFamily: String, Sendable {
    case unet, clipImageEncoder = "clip-image-encoder", clipTextEncoder = "clip-text-encoder", plain = "tensors"
}

/// The result of recognition: what the model is and its hyperparameters.
public struct ModelDescription: Sendable {
    /// `base`, `upsample`, `base-inpaint`, `upsample-inpaint`, `clip/image-enc`, `clip/text-enc`, or the family name.
    public var model: String
    public var family: ModelFamily
    /// Options with the reference's names and types.
    public var hyperparameters: [String: HyperValue]
    /// Tokenizer kind (`glide-bpe`, `clip-bpe`) and the files it reads; nil for plain tensors.
    public var tokenizerKind: String?
    public var tokenizerFiles: [String]
    /// Things the user should know (e.g. options taken from defaults).
    public var warnings: [String]
}

/// Recognises GLIDE checkpoints from their tensors.
public enum ModelRecognizer {
    /// The reference's `model_and_diffusion_defaults()` (`ReferenceOptions.text2im`).
    public static var unetDefaults: [String: HyperValue] { ReferenceOptions.text2im }
    /// `model_and_diffusion_defaults_upsampler()` (`ReferenceOptions.upsampler`).
    public static var upsamplerDefaults: [String: HyperValue] { ReferenceOptions.upsampler }
    /// The reference's `clip/config.yaml` (`ReferenceOptions.clip`).
    public static var clipDefaults: [String: HyperValue] { ReferenceOptions.clip }
    /// Tensor count and parameter count of the released checkpoints (from the reference's state_dict()).
    static let releasedFingerprints: [String: (tensors: Int, parameters: Int)] = [
        "base": (783, 385_030_726), "upsample": (797, 398_361_286),
        "base-inpaint": (783, 385_037_638), "upsample-inpaint": (797, 398_368_198),
        "clip/image-enc": (188, 86_443_776), "clip/text-enc": (185, 71_679_488),
    ]
    static let glideTokenizerFiles = ["encoder.json.gz", "vocab.bpe.gz"]
    static let clipTokenizerFiles = ["bpe_simple_vocab_16e6.txt.gz"]
    /// Options of a UNet that cannot be read off the tensor shapes.
    static let unetNonStructural = ["num_heads", "num_head_channels", "num_heads_upsample", "xf_heads", "dropout",
                                    "diffusion_steps", "noise_schedule", "timestep_respacing", "use_fp16", "cache_text_emb"]

    /// Recognises `tensors` (name, shape, in file order). With `config` (options by the reference's names),
    /// a non-released GLIDE model is described; options that disagree with the tensors throw `configMismatch`.
    public static func describe(tensors: [(name: String, shape: [Int])], config: [String: HyperValue]?) throws -> ModelDescription {
        var shapes: [String: [Int]] = [:]
        for t in tensors { shapes[t.name] = t.shape }
        let count = tensors.count
        let params = tensors.reduce(0) { $0 + $1.shape.reduce(1, *) }

        if let (inferred, evidence) = inferUNet(shapes) {
            let released: [(String, [String: HyperValue])] = [
                ("base", unetDefaults), ("upsample", upsamplerDefaults),
                ("base-inpaint", unetDefaults.merging(["inpaint": .bool(true)]) { $1 }),
                ("upsample-inpaint", upsamplerDefaults.merging(["inpaint": .bool(true)]) { $1 }),
            ]
            if config == nil {
                for (name, opts) in released where releasedFingerprints[name]! == (count, params)
                    && inferred.allSatisfy({ opts[$0.key] == $0.value || $0.key == "n_vocab" }) && inferred["n_vocab"] == .int(50257) {
                    var hp = opts
                    hp["n_vocab"] = .int(50257)
                    return ModelDescription(model: name, family: .unet, hyperparameters: hp, tokenizerKind: "glide-bpe",
                                            tokenizerFiles: glideTokenizerFiles, warnings: [])
                }
            }
            if let config {
                let (hp, warnings) = try merge(config: config, inferred: inferred, evidence: evidence,
                                               defaults: inferred["super_res"] == .bool(true) ? upsamplerDefaults : unetDefaults)
                return ModelDescription(model: ModelFamily.unet.rawValue, family: .unet, hyperparameters: hp,
                                        tokenizerKind: "glide-bpe", tokenizerFiles: glideTokenizerFiles, warnings: warnings)
            }
            return plain(warning: "the tensors look like a GLIDE UNet (\(describeInferred(inferred))) but not a released one; converted as plain tensors. Give its options in an options file (the reference's option names, JSON) to record them.")
        }
        for family in [ModelFamily.clipImageEncoder, .clipTextEncoder] {
            guard let (inferred, evidence) = inferCLIP(shapes, family: family) else { continue }
            let name = family == .clipImageEncoder ? "clip/image-enc" : "clip/text-enc"
            if config == nil, releasedFingerprints[name]! == (count, params),
               inferred.allSatisfy({ clipDefaults[$0.key] == $0.value }) {
                return ModelDescription(model: name, family: family, hyperparameters: clipDefaults, tokenizerKind: "clip-bpe",
                                        tokenizerFiles: clipTokenizerFiles, warnings: [])
            }
            if let config {
                let (hp, warnings) = try merge(config: config, inferred: inferred, evidence: evidence, defaults: clipDefaults)
                // Only the width n_head * n_head_state is visible in the tensors.
                let side = family == .clipImageEncoder ? "image" : "text"
                let width = shapes[C.weight(C.outputProjection)]![1]
                if let heads = hp["n_head_\(side)"]?.intValue, let state = hp["n_head_state_\(side)"]?.intValue, heads * state != width {
                    throw ConverterError.configMismatch(option: "n_head_\(side) * n_head_state_\(side)", config: String(heads * state),
                                                        checkpoint: String(width), evidence: "\(C.weight(C.outputProjection)) \(shapes[C.weight(C.outputProjection)]!)")
                }
                return ModelDescription(model: family.rawValue, family: family, hyperparameters: hp, tokenizerKind: "clip-bpe",
                                        tokenizerFiles: clipTokenizerFiles, warnings: warnings)
            }
            return plain(warning: "the tensors look like a CLIP \(family == .clipImageEncoder ? "image" : "text") encoder (\(describeInferred(inferred))) but not the released one; converted as plain tensors. Give its options in an options file (the reference's option names, JSON) to record them.")
        }
        var d = plain(warning: "the tensors are not a GLIDE UNet or CLIP encoder; converted as plain named tensors without hyperparameters")
        if config != nil { d.warnings.append("the options file is ignored: no GLIDE architecture recognised") }
        return d
    }

    private static func plain(warning: String) -> ModelDescription {
        ModelDescription(model: ModelFamily.plain.rawValue, family: .plain, hyperparameters: [:], tokenizerKind: nil,
                         tokenizerFiles: [], warnings: [warning])
    }

    private static func describeInferred(_ h: [String: HyperValue]) -> String {
        h.keys.sorted().map { "\($0)=\(h[$0]!)" }.joined(separator: ", ")
    }

    /// Config values override defaults; structural options must agree with the tensors.
    private static func merge(config: [String: HyperValue], inferred: [String: HyperValue], evidence: [String: String],
                              defaults: [String: HyperValue]) throws -> ([String: HyperValue], [String]) {
        var hp = defaults
        for (k, v) in inferred { hp[k] = v }
        for (k, v) in config {
            if let i = inferred[k], !sameOption(k, v, i) {
                throw ConverterError.configMismatch(option: k, config: v.description, checkpoint: i.description, evidence: evidence[k] ?? "tensor shapes")
            }
            hp[k] = inferred[k] ?? v
        }
        var warnings: [String] = []
        let unknown = config.keys.filter { defaults[$0] == nil && inferred[$0] == nil }.sorted()
        if !unknown.isEmpty { warnings.append("options-file options not used by this model kept as given: \(unknown.joined(separator: ", "))") }
        for k in unknown { hp[k] = config[k] }
        let defaulted = defaults.keys.filter { config[$0] == nil && inferred[$0] == nil }.sorted()
        if !defaulted.isEmpty { warnings.append("options not in the options file and not visible in the tensors, taken from the reference defaults: \(defaulted.joined(separator: ", "))") }
        return (hp, warnings)
    }

    /// Option equality, treating "" channel_mult as the reference's default for the image size, and attention
    /// resolutions as a set.
    private static func sameOption(_ key: String, _ a: HyperValue, _ b: HyperValue) -> Bool {
        if a == b { return true }
        if key == "attention_resolutions", let x = a.stringValue, let y = b.stringValue {
            return Set(x.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }) == Set(y.split(separator: ",").map { String($0) })
        }
        if key == "channel_mult", let x = a.stringValue, let y = b.stringValue {
            let norm = { (s: String) in s.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.joined(separator: ",") }
            return norm(x) == norm(y)
        }
        if let x = a.doubleValue, let y = b.doubleValue { return x == y }
        return false
    }

    /// Reads the structural UNet options off the tensors (see glide_text2im/unet.py and text2im_model.py).
    static func inferUNet(_ s: [String: [Int]]) -> ([String: HyperValue], [String: String])? {
        guard let time = s[N.weight(N.timeEmbed(0))], time.count == 2, let first = s[N.weight(N.firstConv)], first.count == 4,
              let out = s[N.weight(N.outConv)], out.count == 4, out[0] == 6 else { return nil }
        let mc = time[1]
        let inCh = first[1]
        var h: [String: HyperValue] = [:]
        var ev: [String: String] = [:]
        h["num_channels"] = .int(mc); ev["num_channels"] = "\(N.weight(N.timeEmbed(0))) \(time)"
        switch inCh {
        case 3: h["inpaint"] = .bool(false); h["super_res"] = .bool(false)
        case 6: h["inpaint"] = .bool(false); h["super_res"] = .bool(true)
        case 7: h["inpaint"] = .bool(true); h["super_res"] = .bool(false)
        case 10: h["inpaint"] = .bool(true); h["super_res"] = .bool(true)
        default: return nil
        }
        ev["inpaint"] = "\(N.weight(N.firstConv)) \(first)"; ev["super_res"] = ev["inpaint"]
        func blockCount(_ prefix: String) -> Int {
            var i = 0
            while s.keys.contains(where: { $0.hasPrefix("\(prefix).\(i).") }) { i += 1 }
            return i
        }
        let outBlocks = blockCount(N.outputBlocks)
        guard outBlocks > 0 else { return nil }
        var nrb = outBlocks - 1
        for j in 0..<outBlocks {
            if (1...2).contains(where: { k in s[N.weight("\(N.outputBlock(j)).\(k).\(N.ResBlock.inNorm)")] != nil
                                           || s[N.weight("\(N.outputBlock(j)).\(k).\(N.upsampleConv)")] != nil }) {
                nrb = j; break
            }
        }
        guard outBlocks % (nrb + 1) == 0 else { return nil }
        let levels = outBlocks / (nrb + 1)
        h["num_res_blocks"] = .int(nrb); ev["num_res_blocks"] = "\(outBlocks) output blocks, first upsampling block output_blocks.\(nrb)"
        var mult: [Int] = []
        var attnRes: [Int] = []
        let imageSize = 1 << (levels + 2)
        for l in 0..<levels {
            let b = 1 + l * (nrb + 1)
            guard let w = s[N.weight("\(N.inputBlock(b)).0.\(N.ResBlock.outConv)")], w[0] % mc == 0 else { return nil }
            mult.append(w[0] / mc)
            if s[N.weight("\(N.inputBlock(b)).1.\(N.Attention.qkv)")] != nil { attnRes.append(imageSize >> l) }
        }
        h["image_size"] = .int(imageSize); ev["image_size"] = "\(levels) resolution levels"
        h["channel_mult"] = .string(ReferenceOptions.standardChannelMult(imageSize: imageSize) == mult ? "" : mult.map(String.init).joined(separator: ","))
        ev["channel_mult"] = "out_layers.3.weight of the first block of each level: \(mult.map { $0 * mc })"
        h["attention_resolutions"] = .string(attnRes.map(String.init).joined(separator: ","))
        ev["attention_resolutions"] = "qkv.weight present at resolutions \(attnRes)"
        let embName = N.weight("\(N.inputBlock(1)).0.\(N.ResBlock.embLinear)")
        if let emb = s[embName], let o = s[N.weight("\(N.inputBlock(1)).0.\(N.ResBlock.outConv)")] {
            h["use_scale_shift_norm"] = .bool(emb[0] == 2 * o[0])
            ev["use_scale_shift_norm"] = "\(embName) \(emb)"
        }
        if levels > 1 {
            let down = 1 + nrb
            h["resblock_updown"] = .bool(s[N.weight("\(N.inputBlock(down)).0.\(N.ResBlock.inNorm)")] != nil)
            ev["resblock_updown"] = N.inputBlock(down)
        }
        if let tok = s[N.weight(N.tokenEmbedding)], tok.count == 2 {
            h["xf_width"] = .int(tok[1]); ev["xf_width"] = "\(N.weight(N.tokenEmbedding)) \(tok)"
            h["n_vocab"] = .int(tok[0]); ev["n_vocab"] = ev["xf_width"]
            if let pos = s[N.positionalEmbedding] { h["text_ctx"] = .int(pos[0]); ev["text_ctx"] = "\(N.positionalEmbedding) \(pos)" }
            h["xf_layers"] = .int(blockCount(N.transformerBlocks)); ev["xf_layers"] = "\(N.transformerBlocks).N count"
            h["xf_final_ln"] = .bool(s[N.weight(N.finalLN)] != nil); ev["xf_final_ln"] = "\(N.weight(N.finalLN)) present or not"
            h["xf_padding"] = .bool(s[N.paddingEmbedding] != nil); ev["xf_padding"] = "\(N.paddingEmbedding) present or not"
        } else {
            h["xf_width"] = .int(0); ev["xf_width"] = "no \(N.weight(N.tokenEmbedding))"
        }
        return (h, ev)
    }

    /// Reads the structural CLIP options off the tensors (see glide_text2im/clip/encoders.py).
    static func inferCLIP(_ s: [String: [Int]], family: ModelFamily) -> ([String: HyperValue], [String: String])? {
        var h: [String: HyperValue] = [:]
        var ev: [String: String] = [:]
        var blocks = 0
        while s[C.weight("\(C.block(blocks)).\(C.blockQuery)")] != nil { blocks += 1 }
        guard let outF = s[C.weight(C.outputProjection)], outF.count == 2 else { return nil }
        h["n_embd"] = .int(outF[0]); ev["n_embd"] = "\(C.weight(C.outputProjection)) \(outF)"
        if family == .clipTextEncoder {
            guard let voc = s[C.tokenEmbedding], voc.count == 2, let pos = s[C.positions], pos.count == 2 else { return nil }
            h["n_vocab"] = .int(voc[0]); ev["n_vocab"] = "\(C.tokenEmbedding) \(voc)"
            h["max_text_len"] = .int(pos[0]); ev["max_text_len"] = "\(C.positions) \(pos)"
            h["n_xf_blocks_text"] = .int(blocks); ev["n_xf_blocks_text"] = "\(blocks) blocks"
        } else {
            guard let pp = s[C.patchProjection], pp.count == 4, let pos = s[C.positions], pos.count == 2 else { return nil }
            let patch = pp[3]
            let side = Int(Double(pos[0] - 1).squareRoot().rounded())
            guard side * side == pos[0] - 1 else { return nil }
            h["patch_size"] = .int(patch); ev["patch_size"] = "\(C.patchProjection) \(pp)"
            h["image_size"] = .int(side * patch); ev["image_size"] = "\(C.positions) \(pos)"
            h["n_timesteps"] = .int(s[C.timestepEmbedding]?[0] ?? 0); ev["n_timesteps"] = C.timestepEmbedding
            h["n_xf_blocks_image"] = .int(blocks); ev["n_xf_blocks_image"] = "\(blocks) blocks"
        }
        return (h, ev)
    }
}

import Foundation
