// Element conversions used by convert, quantize and verify: f32 <-> f16/bf16 (round-to-nearest-even)
// and symmetric per-row int8.

/// The binary16 bit pattern nearest to `x` (ties to even); overflow gives infinity, NaN stays NaN.
@inline(__always)
public func f16Bits(from x: Float) -> UInt16 {
    let b = x.bitPattern
    let sign = UInt16(truncatingIfNeeded: (b >> 16) & 0x8000)
    let exp = Int((b >> 23) & 0xFF)
    var mant = b & 0x7F_FFFF
    if exp == 0xFF { return sign | 0x7C00 | (mant != 0 ? UInt16(truncatingIfNeeded: 0x200 | (mant >> 13)) : 0) }
    let e = exp - 127 + 15
    if e >= 0x1F { return sign | 0x7C00 }
    if e <= 0 {
        if e < -10 { return sign }
        mant |= 0x80_0000
        let shift = UInt32(14 - e)
        let halfway = UInt32(1) << (shift - 1)
        let rem = mant & ((UInt32(1) << shift) - 1)
        var h = mant >> shift
        if rem > halfway || (rem == halfway && (h & 1) == 1) { h += 1 }
        return sign | UInt16(truncatingIfNeeded: h)
    }
    var h = UInt32(e << 10) | (mant >> 13)
    let rem = mant & 0x1FFF
    if rem > 0x1000 || (rem == 0x1000 && (h & 1) == 1) { h += 1 }   // a carry into the exponent is correct rounding
    return sign | UInt16(truncatingIfNeeded: h)
}

/// The value of a binary16 bit pattern (exact).
@inline(__always)
public func float(fromF16 h: UInt16) -> Float {
    let sign = UInt32(h & 0x8000) << 16
    let exp = UInt32((h >> 10) & 0x1F)
    let mant = UInt32(h & 0x3FF)
    if exp == 0x1F { return Float(bitPattern: sign | 0x7F80_0000 | (mant << 13)) }
    if exp == 0 {
        if mant == 0 { return Float(bitPattern: sign) }
        let v = Float(mant) * (1.0 / 16_777_216.0)   // mant * 2^-24, exact
        return sign != 0 ? -v : v
    }
    return Float(bitPattern: sign | ((exp + 112) << 23) | (mant << 13))
}

/// The bfloat16 bit pattern nearest to `x` (ties to even); NaN stays a (quiet) NaN.
@inline(__always)
public func bf16Bits(from x: Float) -> UInt16 {
    let b = x.bitPattern
    if x.isNaN { return UInt16(truncatingIfNeeded: b >> 16) | 0x40 }
    return UInt16(truncatingIfNeeded: (b &+ 0x7FFF &+ ((b >> 16) & 1)) >> 16)
}

/// The value of a bfloat16 bit pattern (exact).
@inline(__always)
public func float(fromBF16 h: UInt16) -> Float { Float(bitPattern: UInt32(h) << 16) }

/// Quantizes one row symmetrically: scale = max|w| / 127, q = clamp(round-half-even(w / scale), -127, 127).
/// Returns the scale (0 for an all-zero row, whose q are all 0). The row must be finite.
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
