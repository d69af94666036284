// `glide forward`: one model forward pass on .npy inputs, named with the reference's keywords.
import ArgumentParser
import Foundation
import GlideModel
import Kernels
import NumpyIO
import WeightFormat

/// `glide forward MODEL.glw --input x=X.npy --input timesteps=T.npy ... -o OUT.npy`.
struct Forward: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run one model forward pass on .npy inputs (for checks against PyTorch).",
        discussion: """
        Computes model(x, timesteps, tokens=..., mask=..., low_res=..., inpaint_image=..., inpaint_mask=...) \
        exactly as the reference's Text2ImUNet family does, and writes the float32 output [batch, 6, H, W] \
        (channels 0-2: the predicted noise; 3-5: the variance interpolation).

        Inputs, --input NAME=FILE.npy (the reference's forward keywords):
          x              float [batch, 3, H, W]             required
          timesteps      int or float [batch]               required
          tokens         int [batch, text_ctx]              unless xf_width is 0
          mask           bool or 0/1 [batch, text_ctx]      with xf_padding
          low_res        float [batch, 3, h, w]             super-resolution
          inpaint_image  float [batch, 3, H, W]             inpainting (or 0)
          inpaint_mask   float [batch, 1, H, W]             inpainting (or 0)

        CLIP encoders (clip/image-enc, clip/text-enc) write their embedding [batch, 512] before L2 \
        normalisation: the image encoder takes x (float [batch, 3, 64, 64] in [-1, 1], as image_embeddings \
        takes it) and timesteps (int [batch], 0..999), the text encoder tokens (int [batch, 77]) and lens \
        (int [batch]).

        Example:
          glide forward base.glw --input x=x.npy --input timesteps=t.npy \\
              --input tokens=tok.npy --input mask=mask.npy -o eps.npy
        """
    )

    static let inputNames = ["x", "timesteps", "tokens", "mask", "low_res", "inpaint_image", "inpaint_mask", "lens"]

    @Argument(help: ArgumentHelp("The converted model (.glw).", valueName: "model.glw"))
    var model: String

    @Option(name: .customLong("input"), help: ArgumentHelp("A model input: NAME=FILE.npy (repeatable).", valueName: "name=file.npy"))
    var inputs: [String] = []

    @Option(name: [.short, .customLong("output")], help: ArgumentHelp("Where to write the output .npy.", valueName: "out.npy"))
    var output: String

    @Option(help: "Worker threads (default: GLIDE_THREADS or all cores).")
    var threads: Int?

    @Flag(help: "Print nothing but errors.")
    var quiet = false

    func validate() throws {
        var seen = Set<String>()
        for item in inputs {
            let parts = item.split(separator: "=", maxSplits: 1).map(String.init)
            guard parts.count == 2, !parts[1].isEmpty else {
                throw ValidationError("--input expects NAME=FILE.npy, got '\(item)'")
            }
            guard Forward.inputNames.contains(parts[0]) else {
                throw ValidationError("--input: unknown name '\(parts[0])' (expected one of \(Forward.inputNames.joined(separator: ", ")))")
            }
            guard seen.insert(parts[0]).inserted else { throw ValidationError("--input \(parts[0]) given twice") }
        }
        // The CLIP text encoder takes tokens and lens; every other model x and timesteps.
        for required in seen.contains("lens") ? ["tokens", "lens"] : ["x", "timesteps"] where !seen.contains(required) {
            throw ValidationError("missing --input \(required)=FILE.npy")
        }
        if let threads, threads < 1 { throw ValidationError("--threads must be at least 1") }
    }

    func run() throws {
        try ComputeOptions(threadCount: threads).perform { try forward() }
    }

    private func forward() throws {
        var files: [String: String] = [:]
        for item in inputs {
            let parts = item.split(separator: "=", maxSplits: 1).map(String.init)
            files[parts[0]] = parts[1]
        }
        func read(_ name: String) throws -> NpyArray? {
            guard let path = files[name] else { return nil }
            do { return try Npy.read(path: path) } catch { throw CLIError("--input \(name)=\(path): \(error)") }
        }
        func floats(_ name: String) throws -> FloatTensor? {
            guard let a = try read(name) else { return nil }
            guard [.float32, .float64].contains(a.dtype) else {
                throw CLIError("--input \(name): expected float32 or float64, got \(a.dtype.rawValue)")
            }
            return FloatTensor(shape: a.shape, values: try a.floatValues())
        }

        if try isClipEncoderFile(model) {
            try clipForward(path: model, files: files, output: output, quiet: quiet)
            return
        }
        if files["lens"] != nil { throw CLIError("--input lens: only the CLIP text encoder takes lens") }
        let started = Date()
        let unet = try Text2ImUNet(path: model)
        let o = unet.options
        let x = try floats("x")!
        guard x.shape.count == 4 else { throw CLIError("--input x: shape \(x.shape), expected [batch, 3, H, W]") }
        let batch = x.shape[0]
        let timesteps: [Float] = try {
            let a = try read("timesteps")!
            guard a.shape == [batch] else { throw CLIError("--input timesteps: shape \(a.shape), expected [\(batch)]") }
            return [.float32, .float64].contains(a.dtype) ? try a.floatValues() : try a.intValues().map { Float($0) }
        }()

        var text: TextConditioning?
        if o.xfWidth > 0 {
            guard let tokenArray = try read("tokens") else {
                throw CLIError("missing --input tokens=FILE.npy (int [\(batch), \(o.textCtx)])")
            }
            guard tokenArray.shape == [batch, o.textCtx] else {
                throw CLIError("--input tokens: shape \(tokenArray.shape), expected [\(batch), \(o.textCtx)]")
            }
            let tokens = try tokenArray.intValues()
            var mask = [Bool](repeating: true, count: tokens.count)
            if let maskArray = try read("mask") {
                guard maskArray.shape == [batch, o.textCtx] else {
                    throw CLIError("--input mask: shape \(maskArray.shape), expected [\(batch), \(o.textCtx)]")
                }
                mask = maskArray.dtype == .bool ? try maskArray.boolValues() : try maskArray.intValues().map { $0 != 0 }
            } else if o.xfPadding {
                throw CLIError("missing --input mask=FILE.npy (bool [\(batch), \(o.textCtx)]): the model has xf_padding")
            }
            text = try unet.encodeText(tokens: tokens, mask: mask, batch: batch)
        } else if files["tokens"] != nil {
            throw CLIError("--input tokens: the model has no text transformer (xf_width 0)")
        }

        if o.superRes && files["low_res"] == nil {
            throw CLIError("missing --input low_res=FILE.npy (float [\(batch), 3, h, w]): \(model) is a super-resolution model")
        }
        for name in ["low_res"] where !o.superRes && files[name] != nil {
            throw CLIError("--input \(name): \(model) is not a super-resolution model")
        }
        for name in ["inpaint_image", "inpaint_mask"] where !o.inpaint && files[name] != nil {
            throw CLIError("--input \(name): \(model) is not an inpainting model")
        }
        let out = try unet.forward(x: x, timesteps: timesteps, text: text, lowRes: try floats("low_res"),
                                   inpaintImage: try floats("inpaint_image"), inpaintMask: try floats("inpaint_mask"))
        try Npy.write(try NpyArray(float32: out.values, shape: out.shape), path: output)
        if !quiet {
            FileHandle.standardError.write(String(format: "%@ forward in %.2f s\n", o.referenceClassName,
                                                  Date().timeIntervalSince(started)).data(using: .utf8)!)
            print("wrote \(output) (float32 \(out.shape))")
        }
    }
}
