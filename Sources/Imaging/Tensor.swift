// Conversions between 8-bit images and the models' float NCHW tensors in [-1, 1], and image grids.

/// RGB image -> float32 planar [3, H, W] (one batch item of NCHW) with `x / 127.5 - 1`,
/// exactly as the reference notebook's `read_image` (`th.from_numpy(img).float() / 127.5 - 1`).
/// Grey images are replicated to three channels; a fourth (alpha) channel is dropped.
public func imageToTensor(_ image: Image) -> [Float] {
    let hw = image.width * image.height
    var out = [Float](repeating: 0, count: 3 * hw)
    let ch = image.channels
    for i in 0..<hw {
        for c in 0..<3 {
            let v = image.pixels[i * ch + (ch >= 3 ? c : 0)]
            out[c * hw + i] = Float(v) / 127.5 - 1
        }
    }
    return out
}

/// One NCHW float32 tensor [batch, 3, height, width] in [-1, 1] -> `batch` RGB images, with the notebook's
/// `((x + 1) * 127.5).round().clamp(0, 255)` (round half to even, as torch does; NaN becomes 0).
public func tensorToImages(_ tensor: [Float], batch: Int, height: Int, width: Int) throws -> [Image] {
    guard batch > 0, height > 0, width > 0, tensor.count == batch * 3 * height * width else {
        throw ImagingError.invalidArgument("tensor has \(tensor.count) values, expected \(batch)x3x\(height)x\(width)")
    }
    let hw = height * width
    return (0..<batch).map { n in
        var px = [UInt8](repeating: 0, count: hw * 3)
        for c in 0..<3 {
            let base = (n * 3 + c) * hw
            for i in 0..<hw { px[i * 3 + c] = floatToByte(tensor[base + i]) }
        }
        return Image(unchecked: width, height, 3, px)
    }
}

/// A single [3, H, W] (or [1, 3, H, W]) tensor -> image; see `tensorToImages`.
public func tensorToImage(_ tensor: [Float], height: Int, width: Int) throws -> Image {
    try tensorToImages(tensor, batch: 1, height: height, width: width)[0]
}

@inline(__always) func floatToByte(_ x: Float) -> UInt8 {
    let v = ((x + 1) * 127.5).rounded(.toNearestOrEven)
    if !(v > 0) { return 0 }   // also NaN
    if v >= 255 { return 255 }
    return UInt8(v)
}

/// The upsampling notebooks' `((x + 1) * 127.5).round() / 127.5 - 1` in float32 (round half to even, no clamp):
/// a sample snapped to the 8-bit levels a saved image would have, still in [-1, 1].
public func quantizeTo8BitLevels(_ tensor: [Float]) -> [Float] {
    tensor.map { (($0 + 1) * 127.5).rounded(.toNearestOrEven) / 127.5 - 1 }
}

/// Lays images of one size out in a grid of `columns` (default: all in one row, as the notebook's
/// `show_images` does: `batch.permute(2, 0, 3, 1).reshape([H, N * W, 3])`), filling rows left to right;
/// cells left over in the last row are white.
public func makeGrid(_ images: [Image], columns: Int? = nil) throws -> Image {
    guard let first = images.first else { throw ImagingError.invalidArgument("makeGrid needs at least one image") }
    let w = first.width, h = first.height, ch = first.channels
    for im in images where im.width != w || im.height != h || im.channels != ch {
        throw ImagingError.invalidArgument("makeGrid: image \(im.width)x\(im.height)x\(im.channels) differs from \(w)x\(h)x\(ch)")
    }
    let n = images.count
    let cols = min(n, columns ?? n)
    guard cols > 0 else { throw ImagingError.invalidArgument("makeGrid: columns must be positive, got \(cols)") }
    let gridRows = (n + cols - 1) / cols
    var out = [UInt8](repeating: 255, count: gridRows * h * cols * w * ch)
    for (k, im) in images.enumerated() {
        let gx = (k % cols) * w, gy = (k / cols) * h
        for y in 0..<h {
            let src = y * w * ch
            let dst = ((gy + y) * cols * w + gx) * ch
            for i in 0..<(w * ch) { out[dst + i] = im.pixels[src + i] }
        }
    }
    return Image(unchecked: cols * w, gridRows * h, ch, out)
}

/// The notebook's `read_image(path, size)` on decoded pixels: resize to `size`x`size` with Pillow's bicubic
/// and convert to a [3, size, size] float tensor in [-1, 1].
public func referenceImageTensor(_ image: Image, size: Int) throws -> [Float] {
    imageToTensor(try resizeBicubicPIL(image, width: size, height: size))
}
