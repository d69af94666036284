// The one home of the weight element types' arithmetic: f32 <-> f16 / bf16 (round to nearest even) and the
// symmetric per-row int8 reference quantizer. Serves the converter (writing .glw files) and the kernels
// (reading them); Kernels re-exports this module, so `import Kernels` keeps these names.

/// f32 -> IEEE binary16 bits, round to nearest even; overflow gives infinity, NaN stays NaN (quiet).
@inlinable @inline(__always)
public func f32ToF16(_ value: Float) -> UInt16 {
    let x = value.bitPattern
    let sign = UInt16((x >> 16) & 0x8000)
    let exp = Int((x >> 23) & 0xFF)
    let mant = x & 0x7F_FFFF
    if exp == 0xFF {                                   // inf / NaN
        return sign | 0x7C00 | (mant != 0 ? UInt16(0x200 | (mant >> 13)) : 0)
    }
    let e = exp - 127 + 15
    if e >= 0x1F { return sign | 0x7C00 }              // overflow
    if e <= 0 {                                        // subnormal half (or zero)
        if e < -10 { return sign }
        let m = mant | 0x80_0000                       // implicit bit
        let shift = UInt32(14 - e)                     // 14..24
        let half = m >> shift
        let rem = m & ((1 << shift) - 1)
        let halfway = UInt32(1) << (shift - 1)
        var r = half
        if rem > halfway || (rem == halfway && (half & 1) == 1) { r += 1 }
        return sign | UInt16(r)
    }
    var r = UInt32(e << 10) | (mant >> 13)
    let rem = mant & 0x1FFF
    if rem > 0x1000 || (rem == 0x1000 && (r & 1) == 1) { r += 1 }   // may carry into exponent: still correct
    return sign | UInt16(r)
}

/// IEEE binary16 bits -> f32 (exact).
@inlinable @inline(__always)
public func f16ToF32(_ bits: UInt16) -> Float {
    let sign = UInt32(bits & 0x8000) << 16
    let exp = UInt32((bits >> 10) & 0x1F)
    let mant = UInt32(bits & 0x3FF)
    if exp == 0 {
        if mant == 0 { return Float(bitPattern: sign) }
        let v = Float(mant) * (1.0 / 16_777_216.0)     // mant * 2^-24
        return sign != 0 ? -v : v
    }
    if exp == 0x1F { return Float(bitPattern: sign | 0x7F80_0000 | (mant << 13)) }
    return Float(bitPattern: sign | ((exp + 112) << 23) | (mant << 13))
}

/// f32 -> bfloat16 bits, round to nearest even; NaN stays NaN (quiet).
@inlinable @inline(__always)
public func f32ToBF16(_ value: Float) -> UInt16 {
    let x = value.bitPattern
    if (x & 0x7FFF_FFFF) > 0x7F80_0000 { return UInt16(x >> 16) | 0x40 }
    let rounding = 0x7FFF + ((x >> 16) & 1)
    return UInt16((x &+ rounding) >> 16)
}

/// bfloat16 bits -> f32 (exact).
@inlinable @inline(__always)
public func bf16ToF32(_ bits: UInt16) -> Float { Float(bitPattern: UInt32(bits) << 16) }

/// Quantizes one row symmetrically: `scale = max|x| / 127`, `q = clamp(round_half_even(x / scale), -127, 127)`.
/// Returns the scale (0 for an all-zero row, whose q are all 0). The row must be finite.
@inlinable
public func quantizeRowInt8(_ row: UnsafeBufferPointer<Float>, into q: UnsafeMutablePointer<Int8>) -> Float {
    var maxAbs: Float = 0
    for v in row { maxAbs = max(maxAbs, abs(v)) }
    if maxAbs == 0 {
        q.update(repeating: 0, count: row.count)
        return 0
    }
    let scale = maxAbs / 127
    for (i, v) in row.enumerated() {
        let r = (v / scale).rounded(.toNearestOrEven)
        q[i] = Int8(max(-127, min(127, r)))
    }
    return scale
}

/// `quantizeRowInt8` on each row of a `[rows, cols]` f32 matrix, the scales into `scales[r]`.
@inlinable
public func quantizeRowsInt8(_ src: UnsafePointer<Float>, rows: Int, cols: Int,
                             quantized: UnsafeMutablePointer<Int8>, scales: UnsafeMutablePointer<Float>) {
    for r in 0..<rows {
        scales[r] = quantizeRowInt8(UnsafeBufferPointer(start: src + r * cols, count: cols), into: quantized + r * cols)
    }
}
