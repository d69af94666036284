// Resampling over NCHW planes: 2x2 average pooling, nearest 2x upsampling, bilinear resize.
import CKernelsX86

/// `nn.AvgPool2d(2)` (kernel 2, stride 2, floor): `planes` = N*C planes of `height x width`
/// -> `height/2 x width/2`.
public func avgPool2x2(_ input: UnsafePointer<Float>, _ output: UnsafeMutablePointer<Float>,
                       planes: Int, height: Int, width: Int) {
    let probe = KernelProfiler.begin("avgpool 2x2", "\(planes) planes \(height)x\(width)"); defer { KernelProfiler.end(probe) }
    avgPool2x2Impl(input, output, planes: planes, height: height, width: width, vector: KernelSettings.useAVX2)
}

/// Scalar twin of `avgPool2x2`.
public func avgPool2x2Scalar(_ input: UnsafePointer<Float>, _ output: UnsafeMutablePointer<Float>,
                             planes: Int, height: Int, width: Int) {
    avgPool2x2Impl(input, output, planes: planes, height: height, width: width, vector: false)
}

func avgPool2x2Impl(_ input: UnsafePointer<Float>, _ output: UnsafeMutablePointer<Float>,
                    planes: Int, height: Int, width: Int, vector: Bool) {
    let oh = height / 2, ow = width / 2
    parallelFor(planes) { p in
        let x = input + p * height * width, y = output + p * oh * ow
        for oy in 0..<oh {
            let r0 = x + 2 * oy * width, r1 = r0 + width
            if vector {
                glide_avgpool2x2_row_avx2(r0, r1, y + oy * ow, ow)
                continue
            }
            for ox in 0..<ow {
                y[oy * ow + ox] = (r0[2 * ox] + r0[2 * ox + 1] + r1[2 * ox] + r1[2 * ox + 1]) / 4
            }
        }
    }
}

/// `F.interpolate(scale_factor=2, mode="nearest")`: `height x width` -> `2*height x 2*width` per plane.
public func upsampleNearest2x(_ input: UnsafePointer<Float>, _ output: UnsafeMutablePointer<Float>,
                              planes: Int, height: Int, width: Int) {
    let probe = KernelProfiler.begin("upsample nearest 2x", "\(planes) planes \(height)x\(width)"); defer { KernelProfiler.end(probe) }
    upsampleNearest2xImpl(input, output, planes: planes, height: height, width: width, vector: KernelSettings.useAVX2)
}

/// Scalar twin of `upsampleNearest2x`.
public func upsampleNearest2xScalar(_ input: UnsafePointer<Float>, _ output: UnsafeMutablePointer<Float>,
                                    planes: Int, height: Int, width: Int) {
    upsampleNearest2xImpl(input, output, planes: planes, height: height, width: width, vector: false)
}

func upsampleNearest2xImpl(_ input: UnsafePointer<Float>, _ output: UnsafeMutablePointer<Float>,
                           planes: Int, height: Int, width: Int, vector: Bool) {
    let ow = 2 * width
    parallelFor(planes) { p in
        let x = input + p * height * width, y = output + p * 4 * height * width
        for iy in 0..<height {
            let row = y + 2 * iy * ow
            if vector {
                glide_upsample2x_row_avx2(x + iy * width, row, width)
            } else {
                for ix in 0..<width { let v = x[iy * width + ix]; row[2 * ix] = v; row[2 * ix + 1] = v }
            }
            (row + ow).update(from: row, count: ow)
        }
    }
}

/// `F.interpolate(size=(outHeight, outWidth), mode="bilinear", align_corners=False)` per plane, with
/// PyTorch's f32 index math (scale = in/out, source = max(scale*(dst+0.5)-0.5, 0)).
public func resizeBilinear(_ input: UnsafePointer<Float>, _ output: UnsafeMutablePointer<Float>, planes: Int,
                           inHeight: Int, inWidth: Int, outHeight: Int, outWidth: Int) {
    let probe = KernelProfiler.begin("resize bilinear", "\(planes) planes \(inHeight)x\(inWidth) -> \(outHeight)x\(outWidth)"); defer { KernelProfiler.end(probe) }
    func taps(_ inSize: Int, _ outSize: Int) -> [(Int, Int, Float, Float)] {
        let scale = Float(inSize) / Float(outSize)
        return (0..<outSize).map { d in
            let src = max(scale * (Float(d) + 0.5) - 0.5, 0)
            let i0 = Int(src)
            let i1 = i0 < inSize - 1 ? i0 + 1 : i0
            let l1 = min(max(src - Float(i0), 0), 1)
            return (i0, i1, 1 - l1, l1)
        }
    }
    let ty = taps(inHeight, outHeight), tx = taps(inWidth, outWidth)
    for p in 0..<planes {
        let x = input + p * inHeight * inWidth, y = output + p * outHeight * outWidth
        for oy in 0..<outHeight {
            let (y0, y1, h0, h1) = ty[oy]
            let r0 = x + y0 * inWidth, r1 = x + y1 * inWidth
            for ox in 0..<outWidth {
                let (x0, x1, w0, w1) = tx[ox]
                y[oy * outWidth + ox] = h0 * (w0 * r0[x0] + w1 * r0[x1]) + h1 * (w0 * r1[x0] + w1 * r1[x1])
            }
        }
    }
}
