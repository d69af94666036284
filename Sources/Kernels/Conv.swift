// 2-D convolution over NCHW f32 activations with typed weights [O, I*kh*kw] (PyTorch OIHW order).
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import CKernelsX86

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

/// A per-(image, channel) activation `conv2d` applies to its input as it reads it:
/// `x' = multiplier[n, c] * x + offset[n, c]` (one fused multiply-add), then SiLU when `silu`. Zero padding stays
/// zero (out-of-image positions contribute 0, not the activation of 0). GroupNorm + scale-shift + SiLU folds into
/// one (`groupNormStatistics`), so the normalized tensor need not be written.
public struct ConvPreActivation: @unchecked Sendable {
    /// `[batch, inChannels]`.
    public var multiplier: UnsafePointer<Float>
    /// `[batch, inChannels]`.
    public var offset: UnsafePointer<Float>
    /// Whether SiLU follows the affine (`v / (1 + exp(-v))`, the same bits on every instruction set).
    public var silu: Bool
    public init(multiplier: UnsafePointer<Float>, offset: UnsafePointer<Float>, silu: Bool) {
        self.multiplier = multiplier; self.offset = offset; self.silu = silu
    }
}

extension KernelSettings {
    /// When true `conv2dFusesPreActivation` reports the paths that apply a pre-activation inside their input
    /// transform; when false (default) it reports none, so callers materialise the activation as before. Env
    /// `GLIDE_FUSED_NORM=1` turns it on, `GLIDE_NO_FUSED_NORM=1` off. Off by default: on a Zen 5 (AVX-512) the
    /// int8 base and upsampler steps measured 3-4 % slower with it at 1 thread (the SiLU, computed ~1.25 times per
    /// element inside the transform, costs more than the group norm's write and re-read saves; BENCHMARKS.md,
    /// "GroupNorm fused into the convolution").
    nonisolated(unsafe) public static var fusedPreActivation =
        getenv("GLIDE_FUSED_NORM").map { String(cString: $0) != "0" } == true && getenv("GLIDE_NO_FUSED_NORM") == nil
}

/// True when `conv2d` with `preActivation` applies it natively for these weights and geometry under the current
/// settings (today: the integer int8 Winograd F(4x2), inside its fused input transform), so a caller saves the pass
/// that would materialise the activated input. Elsewhere `conv2d` still takes a pre-activation, but applies it
/// into a scratch copy of the input first.
public func conv2dFusesPreActivation(weight: WeightMatrix, geometry g: Conv2dGeometry) -> Bool {
    guard KernelSettings.fusedPreActivation, case .int8 = weight.elements, KernelSettings.int8WinogradInIntegers,
          !int8ConvolutionRunsInF32(weight, g), conv2dUsesWinograd(g, kind: .int8) else { return false }
    return KernelSettings.int8WinogradUsesF42(g)
}

/// The instruction set of the pre-activation and F(4x2) input transform bodies (GLIDE_WF42_*).
func preActivationISA(portable: Bool = false) -> Int32 {
    Int32(portable || KernelSettings.int8WinogradF42PortableTransforms ? GLIDE_WF42_PORTABLE
          : KernelSettings.has(.avx512f) ? GLIDE_WF42_AVX512
          : KernelSettings.has(.avx2FMA) ? GLIDE_WF42_AVX2 : GLIDE_WF42_PORTABLE)
}

/// Calls `body` with a pointer to `pre` as the C passes take it (nil for none).
func withCPreActivation<R>(_ pre: ConvPreActivation?, _ body: (UnsafePointer<glide_preact>?) -> R) -> R {
    guard let pre else { return body(nil) }
    let c = glide_preact(a: pre.multiplier, b: pre.offset, silu: pre.silu ? 1 : 0)
    return withUnsafePointer(to: c) { body($0) }
}

/// `input` (`[batch, inChannels, height, width]`) with `pre` applied, in a buffer of `frame` (the calling thread's
/// scratch stack: valid until the frame is released).
func preActivated(_ input: UnsafePointer<Float>, _ pre: ConvPreActivation, geometry g: Conv2dGeometry,
                  portable: Bool, in frame: ScratchFrame) -> UnsafeMutablePointer<Float> {
    let planes = g.batch * g.inChannels, spatial = g.height * g.width
    let y = frame.allocate(Float.self, count: planes * spatial)
    let isa = preActivationISA(portable: portable)
    withCPreActivation(pre) { cp in
        let blocks = portable ? 1 : max(1, min(planes, 4 * KernelSettings.threadCount))
        let run = { (b: Int) in
            glide_preact_apply(input, y, spatial, planes * b / blocks, planes * (b + 1) / blocks, cp, isa)
        }
        if portable { run(0) } else { parallelFor(blocks, run) }
    }
    return y
}

/// `nn.Conv2d` forward over NCHW f32: `output[N, O, Ho, Wo] (+)= conv(input[N, I, H, W], weight) + bias[O]`.
///
/// `weight` is `[O, I*k*k]` (PyTorch OIHW flattened: K index = i*k*k + ky*k + kx), any dtype (see `gemm`).
/// Any kernel size, stride and padding (GLIDE uses 3x3 stride 1 or 2 with padding 1, and 1x1).
/// With `accumulate` the result is added to `output` (e.g. to fuse a residual add).
/// `output` must not overlap `input`. Multi-threaded, deterministic.
/// `preActivation`: applied to the input as it is read (`conv2dFusesPreActivation` tells where that is native;
/// elsewhere the activated input goes through a scratch copy; the same result).
public func conv2d(input: UnsafePointer<Float>, weight: WeightMatrix, bias: UnsafePointer<Float>?,
                   output: UnsafeMutablePointer<Float>, geometry g: Conv2dGeometry, accumulate: Bool = false,
                   preActivation: ConvPreActivation? = nil) {
    if let pre = preActivation, !conv2dFusesPreActivation(weight: weight, geometry: g) {
        let scratch = ScratchFrame(); defer { scratch.release() }
        let x = preActivated(input, pre, geometry: g, portable: false, in: scratch)
        conv2d(input: x, weight: weight, bias: bias, output: output, geometry: g, accumulate: accumulate)
        return
    }
    let probe = KernelProfiler.begin(conv2dProfileKind(g, weight), profileLabel(g, weight) + (preActivation != nil ? " +preact" : ""), flops: g.flops); defer { KernelProfiler.end(probe) }
    precondition(weight.rows == g.outChannels && weight.cols == g.reductionLength,
                 "conv2d: weight is [\(weight.rows), \(weight.cols)], expected [\(g.outChannels), \(g.reductionLength)]")
    if let pre = preActivation, case .int8(let q, let scales) = weight.elements {
        conv2dWinogradInt8Tiled(.f4x2, input: input, q: q, scales: scales, rowStride: weight.rowStride, bias: bias,
                                output: output, geometry: g, accumulate: accumulate,
                                weightCache: weight.winogradPanels, preActivation: pre)
        return
    }
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

/// Scalar twin of `conv2d` (direct convolution, weights widened to f32, no activation quantization; the
/// pre-activation applied by its portable body, the bits of the fast ones).
public func conv2dScalar(input: UnsafePointer<Float>, weight: WeightMatrix, bias: UnsafePointer<Float>?,
                         output: UnsafeMutablePointer<Float>, geometry g: Conv2dGeometry, accumulate: Bool = false,
                         preActivation: ConvPreActivation? = nil) {
    precondition(weight.rows == g.outChannels && weight.cols == g.reductionLength)
    if let pre = preActivation {
        let scratch = ScratchFrame(); defer { scratch.release() }
        let x = preActivated(input, pre, geometry: g, portable: true, in: scratch)
        conv2dScalar(input: x, weight: weight, bias: bias, output: output, geometry: g, accumulate: accumulate)
        return
    }
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
