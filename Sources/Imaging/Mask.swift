// Inpainting masks: from a mask image (Pillow's convert('L') + NEAREST resize), from a rectangle,
// and torch's `F.interpolate(mode='nearest')` for the 64 -> 256 mask upsampling.

/// Which pixels of a mask image mark the region to keep (copied from the source photo).
public enum MaskKeep: Sendable {
    /// Light pixels (grey >= 128) are kept; dark ones are regenerated.
    case white
    /// Dark pixels (grey < 128) are kept; light ones are regenerated.
    case black
}

/// Pillow's `convert('L')` of an RGB pixel: ITU-R 601-2 luma in 16.16 fixed point, rounded.
@inline(__always) func pilLuma(_ r: UInt8, _ g: UInt8, _ b: UInt8) -> UInt8 {
    let sum: Int = Int(r) * 19595 + Int(g) * 38470 + Int(b) * 7471 + 0x8000
    return UInt8(truncatingIfNeeded: sum >> 16)
}

/// Pillow's `convert('L')`: one grey channel (grey images are returned unchanged; alpha ignored).
public func toGreyPIL(_ image: Image) -> Image {
    if image.channels == 1 { return image }
    let n = image.width * image.height, ch = image.channels
    var out = [UInt8](repeating: 0, count: n)
    for i in 0..<n {
        if ch == 2 { out[i] = image.pixels[i * 2]; continue }
        out[i] = pilLuma(image.pixels[i * ch], image.pixels[i * ch + 1], image.pixels[i * ch + 2])
    }
    return Image(unchecked: image.width, image.height, 1, out)
}

/// Source indices of Pillow's NEAREST resize along one axis (ImagingScaleAffine: the sample position
/// starts at half a step and is advanced by repeated addition in double precision, then truncated).
func pilNearestIndices(inSize: Int, outSize: Int) -> [Int] {
    let step = Double(Float(inSize)) / Double(outSize)
    var pos = step * 0.5
    var out = [Int](repeating: 0, count: outSize)
    for i in 0..<outSize {
        out[i] = pos < 0 ? -1 : min(Int(pos), inSize - 1)
        pos += step
    }
    return out
}

/// Pillow's `Image.resize(size, resample=Image.NEAREST)`.
public func resizeNearestPIL(_ image: Image, width: Int, height: Int) throws -> Image {
    guard width > 0, height > 0 else {
        throw ImagingError.invalidArgument("resize target \(width)x\(height) must be positive")
    }
    if width == image.width && height == image.height { return image }
    let xs = pilNearestIndices(inSize: image.width, outSize: width)
    let ys = pilNearestIndices(inSize: image.height, outSize: height)
    let ch = image.channels
    var out = [UInt8](repeating: 0, count: width * height * ch)
    for y in 0..<height {
        for x in 0..<width {
            let s = (ys[y] * image.width + xs[x]) * ch, d = (y * width + x) * ch
            for c in 0..<ch { out[d + c] = image.pixels[s + c] }
        }
    }
    return Image(unchecked: width, height, ch, out)
}

/// A mask image -> `[height * width]` floats, 1 where the source is kept and 0 where it is regenerated
/// (the reference's `inpaint_mask` layout). The image is converted to grey as Pillow's `convert('L')`,
/// resized with Pillow's NEAREST (so the mask stays binary) and thresholded at 128.
public func maskFromImage(_ image: Image, width: Int, height: Int, keep: MaskKeep = .white) throws -> [Float] {
    let grey = try resizeNearestPIL(toGreyPIL(image), width: width, height: height)
    return grey.pixels.map { v in ((v >= 128) == (keep == .white)) ? 1 : 0 }
}

/// `[height * width]` mask that keeps (1) the rectangle `x..<x+w, y..<y+h` (clipped to the image) and
/// regenerates (0) everything else. The notebook's mask is `keepRectMask(width: 64, height: 64, x: 0, y: 0, w: 64, h: 20)`.
public func keepRectMask(width: Int, height: Int, x: Int, y: Int, w: Int, h: Int) -> [Float] {
    var out = [Float](repeating: 0, count: width * height)
    let x0 = max(0, x), y0 = max(0, y), x1 = min(width, x + w), y1 = min(height, y + h)
    if x0 < x1 && y0 < y1 {
        for yy in y0..<y1 { for xx in x0..<x1 { out[yy * width + xx] = 1 } }
    }
    return out
}

/// torch's `F.interpolate(x, (outHeight, outWidth), mode='nearest')` on one `[inHeight * inWidth]` plane:
/// source index `min(floor(dst * (Float(in) / Float(out))), in - 1)` in float32 (exact halving when out == 2 * in).
public func interpolateNearest(_ plane: [Float], inWidth: Int, inHeight: Int,
                               outWidth: Int, outHeight: Int) throws -> [Float] {
    guard plane.count == inWidth * inHeight, inWidth > 0, inHeight > 0, outWidth > 0, outHeight > 0 else {
        throw ImagingError.invalidArgument("interpolateNearest: \(plane.count) values for \(inWidth)x\(inHeight) -> \(outWidth)x\(outHeight)")
    }
    func indices(_ n: Int, _ m: Int) -> [Int] {
        if n == m { return Array(0..<m) }
        if m == 2 * n { return (0..<m).map { $0 >> 1 } }
        let scale = Float(n) / Float(m)
        return (0..<m).map { min(Int((Float($0) * scale).rounded(.down)), n - 1) }
    }
    let xs = indices(inWidth, outWidth), ys = indices(inHeight, outHeight)
    var out = [Float](repeating: 0, count: outWidth * outHeight)
    for y in 0..<outHeight { for x in 0..<outWidth { out[y * outWidth + x] = plane[ys[y] * inWidth + xs[x]] } }
    return out
}
