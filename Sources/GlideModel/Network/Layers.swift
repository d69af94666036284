// Basic layers shared by the UNet and the text transformer: Linear, Conv2d, GroupNorm32, LayerNorm.
import Kernels

// Port of torch.nn.Linear (and nn.Conv1d with kernel 1, which GLIDE's attention uses as a Linear over channels).
struct Linear: @unchecked Sendable {
    let weight: WeightMatrix        // [out, in]
    let bias: UnsafePointer<Float>? // [out]
    var inFeatures: Int { weight.cols }
    var outFeatures: Int { weight.rows }

    /// Token-major rows: `output[r, :] (+)= input[r, :] . W^T + b`, input `[rows, in]`, output `[rows, out]`.
    func callAsFunction(_ input: UnsafePointer<Float>, rows: Int, into output: UnsafeMutablePointer<Float>,
                        accumulate: Bool = false) {
        linear(input: input, rows: rows, weight: weight, bias: bias, output: output, accumulate: accumulate)
    }

    /// Channel-major (NCL): `output[:, l] (+)= W . input[:, l] + b` for one item, input `[in, length]`,
    /// output `[out, length]`.
    func channels(_ input: MatrixOperand, length: Int, into output: UnsafeMutablePointer<Float>,
                  accumulate: Bool = false) {
        gemm(weight: weight, input: input, columns: length, output: MutableMatrixOperand(output, rowStride: length),
             bias: bias, accumulate: accumulate)
    }
}

// Port of torch.nn.Conv2d (square kernel, GLIDE's 3x3 padding 1 stride 1 or 2, and 1x1).
struct Conv2d: @unchecked Sendable {
    let weight: WeightMatrix        // [out, in*k*k]
    let bias: UnsafePointer<Float>? // [out]
    let inChannels: Int
    let outChannels: Int
    let kernelSize: Int
    let stride: Int
    let padding: Int

    func geometry(for x: Activation) -> Conv2dGeometry {
        Conv2dGeometry(batch: x.batch, inChannels: inChannels, height: x.height, width: x.width,
                       outChannels: outChannels, kernelSize: kernelSize, stride: stride, padding: padding)
    }

    func callAsFunction(_ x: Activation) -> Activation {
        let g = geometry(for: x)
        let y = Activation(shape: [x.batch, outChannels, g.outHeight, g.outWidth])
        conv2d(input: x.pointer, weight: weight, bias: bias, output: y.pointer, geometry: g)
        return y
    }

    /// The same, written into `output` (which must have the output's shape).
    func callAsFunction(_ x: Activation, into output: Activation) {
        let g = geometry(for: x)
        precondition(output.shape == [x.batch, outChannels, g.outHeight, g.outWidth])
        conv2d(input: x.pointer, weight: weight, bias: bias, output: output.pointer, geometry: g)
    }

    /// Whether the convolution of `x` applies a pre-activation natively (`conv2dFusesPreActivation`), so a
    /// preceding group norm can be folded into it instead of written out.
    func fusesPreActivation(for x: Activation) -> Bool {
        conv2dFusesPreActivation(weight: weight, geometry: geometry(for: x))
    }

    /// `conv(preActivation(x))` without writing the activated input.
    func callAsFunction(_ x: Activation, preActivation: ConvPreActivation?) -> Activation {
        let g = geometry(for: x)
        let y = Activation(shape: [x.batch, outChannels, g.outHeight, g.outWidth])
        conv2d(input: x.pointer, weight: weight, bias: bias, output: y.pointer, geometry: g, preActivation: preActivation)
        return y
    }

    /// The output shape for input `x`.
    func outputShape(for x: Activation) -> [Int] {
        let g = geometry(for: x)
        return [x.batch, outChannels, g.outHeight, g.outWidth]
    }

    /// `residual + conv(x)`, the result written over `residual` (which must have the output's shape).
    func accumulate(_ x: Activation, into residual: Activation, preActivation: ConvPreActivation? = nil) {
        let g = geometry(for: x)
        precondition(residual.shape == [x.batch, outChannels, g.outHeight, g.outWidth])
        conv2d(input: x.pointer, weight: weight, bias: bias, output: residual.pointer, geometry: g, accumulate: true,
               preActivation: preActivation)
    }
}

// Port of glide_text2im.nn.GroupNorm32 (32 groups, statistics in f32 or better), with the optional swish
// and the ResBlock's scale-shift folded in.
struct GroupNorm32: @unchecked Sendable {
    let gamma: UnsafePointer<Float> // [channels]
    let beta: UnsafePointer<Float>  // [channels]
    let channels: Int
    let swish: Bool

    /// `inputCopy`: also receives a copy of `x` (its shape), made in the same pass over `x`.
    func callAsFunction(_ x: Activation, scale: UnsafePointer<Float>? = nil,
                        shift: UnsafePointer<Float>? = nil, inputCopy: Activation? = nil) -> Activation {
        let y = Activation(shape: x.shape)
        if let inputCopy { precondition(inputCopy.shape == x.shape) }
        groupNorm(input: x.pointer, output: y.pointer, batch: x.batch, channels: channels, spatial: x.spatial,
                  groups: 32, eps: 1e-5, gamma: gamma, beta: beta, scale: scale, shift: shift, silu: swish,
                  inputCopy: inputCopy?.pointer)
        return y
    }

    /// The norm (and its swish) folded into the next convolution's input: only the statistics pass over `x`
    /// (`groupNormStatistics`; `inputCopy` as above); the result's `preActivation` goes to that convolution
    /// (`Conv2d.fusesPreActivation`). Deallocate it after the convolution.
    func folded(_ x: Activation, scale: UnsafePointer<Float>? = nil, shift: UnsafePointer<Float>? = nil,
                inputCopy: Activation? = nil) -> FoldedGroupNorm {
        if let inputCopy { precondition(inputCopy.shape == x.shape) }
        let multiplier = UnsafeMutablePointer<Float>.allocate(capacity: x.batch * channels)
        let offset = UnsafeMutablePointer<Float>.allocate(capacity: x.batch * channels)
        groupNormStatistics(input: x.pointer, batch: x.batch, channels: channels, spatial: x.spatial, groups: 32,
                            eps: 1e-5, gamma: gamma, beta: beta, scale: scale, shift: shift, multiplier: multiplier,
                            offset: offset, inputCopy: inputCopy?.pointer)
        return FoldedGroupNorm(multiplier: multiplier, offset: offset, silu: swish)
    }

    /// The same, overwriting `x` (for temporaries no one reads again).
    func inPlace(_ x: Activation, scale: UnsafePointer<Float>? = nil, shift: UnsafePointer<Float>? = nil) -> Activation {
        groupNorm(input: x.pointer, output: x.pointer, batch: x.batch, channels: channels, spatial: x.spatial,
                  groups: 32, eps: 1e-5, gamma: gamma, beta: beta, scale: scale, shift: shift, silu: swish)
        return x
    }
}

// A GroupNorm32 folded into a convolution's input: its per-(image, channel) affine and swish.
struct FoldedGroupNorm {
    let multiplier: UnsafeMutablePointer<Float> // [batch, channels]
    let offset: UnsafeMutablePointer<Float>     // [batch, channels]
    let silu: Bool
    var preActivation: ConvPreActivation {
        ConvPreActivation(multiplier: multiplier, offset: offset, silu: silu)
    }
    func deallocate() { multiplier.deallocate(); offset.deallocate() }
}

// Port of glide_text2im.xf.LayerNorm (nn.LayerNorm computed in f32, eps 1e-5).
struct LayerNorm: @unchecked Sendable {
    let gamma: UnsafePointer<Float> // [width]
    let beta: UnsafePointer<Float>  // [width]
    let width: Int

    func callAsFunction(_ input: UnsafePointer<Float>, rows: Int, into output: UnsafeMutablePointer<Float>) {
        layerNorm(input: input, output: output, rows: rows, width: width, gamma: gamma, beta: beta, eps: 1e-5)
    }
}
