// Pillow's convolution resampling (Resample.c) with the bicubic filter (a = -0.5), 8-bit fixed point:
// horizontal pass then vertical pass, each rounding and clipping to uint8, support widened when shrinking.

/// Pillow's bicubic kernel (a = -0.5), support 2.
@inline(__always) func pilBicubic(_ x0: Double) -> Double {
    let a = -0.5
    let x = abs(x0)
    if x < 1.0 { return ((a + 2.0) * x - (a + 3.0)) * x * x + 1 }
    if x < 2.0 { return (((x - 5) * x + 8) * x - 4) * a }
    return 0.0
}

/// Fixed-point bits of the 8-bit coefficients (Pillow's PRECISION_BITS = 32 - 8 - 2).
let resamplePrecisionBits: Int32 = 22

/// Per output position: first input index, tap count, and `ksize` fixed-point coefficients.
struct ResampleCoefficients {
    var ksize: Int
    var bounds: [(min: Int, count: Int)]
    var weights: [Int32]   // outSize * ksize
}

/// Pillow's precompute_coeffs + normalize_coeffs_8bpc for the box [0, inSize) mapped onto outSize samples.
func precomputeCoefficients(inSize: Int, outSize: Int) -> ResampleCoefficients {
    let in0 = 0.0, in1 = Double(Float(inSize))
    let scale = (in1 - in0) / Double(outSize)
    let filterScale = max(scale, 1.0)
    let support = 2.0 * filterScale
    let ksize = Int(support.rounded(.up)) * 2 + 1
    var bounds: [(min: Int, count: Int)] = []
    bounds.reserveCapacity(outSize)
    var weights = [Int32](repeating: 0, count: outSize * ksize)
    var k = [Double](repeating: 0, count: ksize)
    for xx in 0..<outSize {
        let center = in0 + (Double(xx) + 0.5) * scale
        let ss = 1.0 / filterScale
        var xmin = Int(center - support + 0.5)      // C (int) cast: truncation toward zero
        if xmin < 0 { xmin = 0 }
        var xmax = Int(center + support + 0.5)
        if xmax > inSize { xmax = inSize }
        xmax -= xmin
        var ww = 0.0
        for x in 0..<xmax {
            let w = pilBicubic((Double(x + xmin) - center + 0.5) * ss)
            k[x] = w
            ww += w
        }
        for x in 0..<ksize {
            var v = x < xmax ? k[x] : 0
            if x < xmax && ww != 0.0 { v /= ww }
            let scaled = v * Double(1 << resamplePrecisionBits)
            weights[xx * ksize + x] = Int32(v < 0 ? -0.5 + scaled : 0.5 + scaled)
        }
        bounds.append((xmin, max(xmax, 0)))
    }
    return ResampleCoefficients(ksize: ksize, bounds: bounds, weights: weights)
}

@inline(__always) func clip8(_ v: Int32) -> UInt8 {
    if v >= (1 << resamplePrecisionBits) << 8 { return 255 }
    if v <= 0 { return 0 }
    return UInt8(truncatingIfNeeded: v >> resamplePrecisionBits)
}

/// Resizes with Pillow's `Image.resize((width, height), resample=Image.BICUBIC)` semantics for "L"/"RGB"
/// images: separable fixed-point convolution, antialiased when shrinking (kernel support scaled by the
/// factor), horizontal pass first, each pass rounded and clipped to 8 bits. Every channel is filtered
/// independently (Pillow premultiplies RGBA; convert to RGB first as the reference does).
/// The same size returns the image unchanged, as Pillow copies it.
public func resizeBicubicPIL(_ image: Image, width: Int, height: Int) throws -> Image {
    guard width > 0, height > 0 else {
        throw ImagingError.invalidArgument("resize target \(width)x\(height) must be positive")
    }
    if width == image.width && height == image.height { return image }
    let ch = image.channels
    let needH = width != image.width
    let needV = height != image.height
    let horiz = precomputeCoefficients(inSize: image.width, outSize: width)
    var vert = precomputeCoefficients(inSize: image.height, outSize: height)

    var current = image
    if needH {
        // Only rows the vertical pass reads are computed (as Pillow does); bounds shift accordingly.
        let first = vert.bounds[0].min
        let last = vert.bounds[height - 1].min + vert.bounds[height - 1].count
        let rows = needV ? last - first : image.height
        let rowOffset = needV ? first : 0
        if needV { for i in 0..<height { vert.bounds[i].min -= first } }
        var out = [UInt8](repeating: 0, count: width * rows * ch)
        image.pixels.withUnsafeBufferPointer { src in
            out.withUnsafeMutableBufferPointer { dst in
                horiz.weights.withUnsafeBufferPointer { kk in
                    for y in 0..<rows {
                        let srcRow = src.baseAddress! + (y + rowOffset) * image.width * ch
                        let dstRow = dst.baseAddress! + y * width * ch
                        for xx in 0..<width {
                            let (xmin, n) = horiz.bounds[xx]
                            let k = kk.baseAddress! + xx * horiz.ksize
                            for c in 0..<ch {
                                var acc: Int32 = 1 << (resamplePrecisionBits - 1)
                                var p = srcRow + xmin * ch + c
                                for x in 0..<n { acc = acc &+ Int32(p.pointee) &* k[x]; p += ch }
                                dstRow[xx * ch + c] = clip8(acc)
                            }
                        }
                    }
                }
            }
        }
        current = Image(unchecked: width, rows, ch, out)
    }
    if needV {
        let w = current.width
        var out = [UInt8](repeating: 0, count: w * height * ch)
        current.pixels.withUnsafeBufferPointer { src in
            out.withUnsafeMutableBufferPointer { dst in
                vert.weights.withUnsafeBufferPointer { kk in
                    let rowLen = w * ch
                    for yy in 0..<height {
                        let (ymin, n) = vert.bounds[yy]
                        let k = kk.baseAddress! + yy * vert.ksize
                        let dstRow = dst.baseAddress! + yy * rowLen
                        for i in 0..<rowLen {
                            var acc: Int32 = 1 << (resamplePrecisionBits - 1)
                            var p = src.baseAddress! + ymin * rowLen + i
                            for y in 0..<n { acc = acc &+ Int32(p.pointee) &* k[y]; p += rowLen }
                            dstRow[i] = clip8(acc)
                        }
                    }
                }
            }
        }
        current = Image(unchecked: w, height, ch, out)
    }
    return current
}
