// 2-D convolution over NCHW f32 activations with typed weights [O, I*kh*kw] (PyTorch OIHW order).

/// The geometry of one 2-D convolution (square kernel, equal stride and padding on both axes).
public struct Conv2dGeometry: Sendable, Equatable {
    public var batch: Int
    public var inChannels: Int
    public var height: Int
    public var width: Int
    public var outChannels: Int
    public var kernelSize: Int
    public var stride: Int
    public var padding: Int
    public init(batch: Int, inChannels: Int, height: Int, width: Int, outChannels: Int,
                kernelSize: Int, stride: Int = 1, padding: Int = 0) {
        self.batch = batch; self.inChannels = inChannels; self.height = height; self.width = width
        self.outChannels = outChannels; self.kernelSize = kernelSize; self.stride = stride; self.padding = padding
    }
    /// `(height + 2*padding - kernelSize) / stride + 1`, as PyTorch.
    public var outHeight: Int { (height + 2 * padding - kernelSize) / stride + 1 }
    /// `(width + 2*padding - kernelSize) / stride + 1`, as PyTorch.
    public var outWidth: Int { (width + 2 * padding - kernelSize) / stride + 1 }
    /// K of the weight matrix: `inChannels * kernelSize * kernelSize`.
    public var reductionLength: Int { inChannels * kernelSize * kernelSize }
    /// Multiply-adds x 2 for the whole batch.
    public var flops: Double {
        2 * Double(batch) * Double(outChannels) * Double(outHeight * outWidth) * Double(reductionLength)
    }
}

/// `nn.Conv2d` forward over NCHW f32: `output[N, O, Ho, Wo] (+)= conv(input[N, I, H, W], weight) + bias[O]`.
///
/// `weight` is `[O, I*k*k]` (PyTorch OIHW flattened: K index = i*k*k + ky*k + kx), any dtype (see `gemm`).
/// Any kernel size, stride and padding (GLIDE uses 3x3 stride 1 or 2 with padding 1, and 1x1).
/// With `accumulate` the result is added to `output` (e.g. to fuse a residual add).
/// `output` must not overlap `input`. Multi-threaded, deterministic.
public func conv2d(input: UnsafePointer<Float>, weight: WeightMatrix, bias: UnsafePointer<Float>?,
                   output: UnsafeMutablePointer<Float>, geometry g: Conv2dGeometry, accumulate: Bool = false) {
    let probe = KernelProfiler.begin(conv2dProfileKind(g, weight), profileLabel(g, weight), flops: g.flops); defer { KernelProfiler.end(probe) }
    precondition(weight.rows == g.outChannels && weight.cols == g.reductionLength,
                 "conv2d: weight is [\(weight.rows), \(weight.cols)], expected [\(g.outChannels), \(g.reductionLength)]")
    if int8ConvolutionRunsInF32(weight, g) {
        withF32Weights(weight) { conv2d(input: input, weight: $0, bias: bias, output: output, geometry: g, accumulate: accumulate) }
        return
    }
    if conv2dUsesWinograd(g, kind: weight.elements.kind) {
        conv2dWinograd(input: input, weight: weight, bias: bias, output: output, geometry: g, accumulate: accumulate)
        return
    }
    let hw = g.height * g.width, ohw = g.outHeight * g.outWidth
    for n in 0..<g.batch {
        let x = input + n * g.inChannels * hw
        let y = output + n * g.outChannels * ohw
        let out = MutableMatrixOperand(y, rowStride: ohw)
        if g.kernelSize == 1 && g.stride == 1 && g.padding == 0 {
            gemm(weight: weight, input: MatrixOperand(x, rowStride: hw), columns: hw, output: out,
                 bias: bias, accumulate: accumulate)
        } else if KernelSettings.useAVX2 {
            gemmAVX2(weight: weight, source: .conv(ConvSource(input: x, geometry: g)), columns: ohw,
                     output: out, bias: bias, accumulate: accumulate)
        } else {
            conv2dScalarImage(input: x, weight: weight, bias: bias, output: y, geometry: g, accumulate: accumulate)
        }
    }
}

/// Scalar twin of `conv2d` (direct convolution, weights widened to f32, no activation quantization).
public func conv2dScalar(input: UnsafePointer<Float>, weight: WeightMatrix, bias: UnsafePointer<Float>?,
                         output: UnsafeMutablePointer<Float>, geometry g: Conv2dGeometry, accumulate: Bool = false) {
    precondition(weight.rows == g.outChannels && weight.cols == g.reductionLength)
    let hw = g.height * g.width, ohw = g.outHeight * g.outWidth
    for n in 0..<g.batch {
        conv2dScalarImage(input: input + n * g.inChannels * hw, weight: weight, bias: bias,
                          output: output + n * g.outChannels * ohw, geometry: g, accumulate: accumulate)
    }
}

/// One image of `conv2dScalar`.
func conv2dScalarImage(input: UnsafePointer<Float>, weight: WeightMatrix, bias: UnsafePointer<Float>?,
                       output: UnsafeMutablePointer<Float>, geometry g: Conv2dGeometry, accumulate: Bool) {
    let k = g.kernelSize, oh = g.outHeight, ow = g.outWidth, ohw = oh * ow
    let acc = UnsafeMutablePointer<Float>.allocate(capacity: max(ohw, 1))
    defer { acc.deallocate() }
    for o in 0..<g.outChannels {
        for i in 0..<ohw { acc[i] = 0 }
        for c in 0..<g.inChannels {
            let plane = input + c * g.height * g.width
            for ky in 0..<k {
                for kx in 0..<k {
                    let w = weight.value(o, (c * k + ky) * k + kx)
                    for oy in 0..<oh {
                        let iy = oy * g.stride + ky - g.padding
                        if iy < 0 || iy >= g.height { continue }
                        for ox in 0..<ow {
                            let ix = ox * g.stride + kx - g.padding
                            if ix < 0 || ix >= g.width { continue }
                            acc[oy * ow + ox] += w * plane[iy * g.width + ix]
                        }
                    }
                }
            }
        }
        let b = bias?[o] ?? 0
        let y = output + o * ohw
        for i in 0..<ohw {
            if accumulate { y[i] += acc[i] + b } else { y[i] = acc[i] + b }
        }
    }
}

/// Where the fast GEMM reads its [K, N] activation operand from.
enum GemmSource {
    /// A strided matrix.
    case matrix(MatrixOperand)
    /// The implicit im2col matrix of one NCHW image: K = (c, ky, kx), N = (oy, ox).
    case conv(ConvSource)
}

/// One image of a convolution seen as an implicit `[I*k*k, Ho*Wo]` matrix.
struct ConvSource {
    var input: UnsafePointer<Float>
    var geometry: Conv2dGeometry
}
