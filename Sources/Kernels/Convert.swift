// Element conversions: f32 <-> f16 / bf16 (round to nearest even) and int8 row quantization.
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import CKernelsX86

/// f32 -> IEEE binary16 bits, round to nearest even; overflow gives infinity, NaN stays NaN (quiet).
@inline(__always)
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
@inline(__always)
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
@inline(__always)
public func f32ToBF16(_ value: Float) -> UInt16 {
    let x = value.bitPattern
    if (x & 0x7FFF_FFFF) > 0x7F80_0000 { return UInt16(x >> 16) | 0x40 }
    let rounding = 0x7FFF + ((x >> 16) & 1)
    return UInt16((x &+ rounding) >> 16)
}

/// bfloat16 bits -> f32 (exact).
@inline(__always)
public func bf16ToF32(_ bits: UInt16) -> Float { Float(bitPattern: UInt32(bits) << 16) }

/// Converts `count` floats to f16 bits (round to nearest even). Uses F16C when available.
public func convertF32ToF16(_ src: UnsafePointer<Float>, _ dst: UnsafeMutablePointer<UInt16>, count: Int) {
    if KernelSettings.useAVX2 { glide_f32_to_f16_f16c(src, dst, count); return }
    convertF32ToF16Scalar(src, dst, count: count)
}
/// Scalar twin of `convertF32ToF16`.
public func convertF32ToF16Scalar(_ src: UnsafePointer<Float>, _ dst: UnsafeMutablePointer<UInt16>, count: Int) {
    for i in 0..<count { dst[i] = f32ToF16(src[i]) }
}
/// Converts `count` f16 bit patterns to floats. Uses F16C when available.
public func convertF16ToF32(_ src: UnsafePointer<UInt16>, _ dst: UnsafeMutablePointer<Float>, count: Int) {
    if KernelSettings.useAVX2 { glide_f16_to_f32_f16c(src, dst, count); return }
    convertF16ToF32Scalar(src, dst, count: count)
}
/// Scalar twin of `convertF16ToF32`.
public func convertF16ToF32Scalar(_ src: UnsafePointer<UInt16>, _ dst: UnsafeMutablePointer<Float>, count: Int) {
    for i in 0..<count { dst[i] = f16ToF32(src[i]) }
}
/// Converts `count` floats to bf16 bits (round to nearest even).
public func convertF32ToBF16(_ src: UnsafePointer<Float>, _ dst: UnsafeMutablePointer<UInt16>, count: Int) {
    for i in 0..<count { dst[i] = f32ToBF16(src[i]) }
}
/// Converts `count` bf16 bit patterns to floats.
public func convertBF16ToF32(_ src: UnsafePointer<UInt16>, _ dst: UnsafeMutablePointer<Float>, count: Int) {
    for i in 0..<count { dst[i] = bf16ToF32(src[i]) }
}

/// Symmetric int8 quantization of each row of a `[rows, cols]` f32 matrix:
/// `scales[r] = max|x[r, :]| / 127`, `q = round_half_even(x / scale)` clamped to -127...127.
/// An all-zero row gets scale 0 and zeros. Non-finite inputs are not allowed.
public func quantizeRowsInt8(_ src: UnsafePointer<Float>, rows: Int, cols: Int,
                             quantized: UnsafeMutablePointer<Int8>, scales: UnsafeMutablePointer<Float>) {
    for r in 0..<rows {
        let row = src + r * cols
        var maxAbs: Float = 0
        for c in 0..<cols { maxAbs = max(maxAbs, abs(row[c])) }
        let scale = maxAbs / 127
        scales[r] = scale
        let out = quantized + r * cols
        if scale == 0 {
            for c in 0..<cols { out[c] = 0 }
            continue
        }
        for c in 0..<cols {
            let q = (row[c] / scale).rounded(.toNearestOrEven)
            out[c] = Int8(max(-127, min(127, q)))
        }
    }
}

/// Inverse of `quantizeRowsInt8`: `dst[r, c] = Float(q[r, c]) * scales[r]`.
public func dequantizeRowsInt8(_ quantized: UnsafePointer<Int8>, scales: UnsafePointer<Float>, rows: Int, cols: Int,
                               output: UnsafeMutablePointer<Float>) {
    for r in 0..<rows {
        let s = scales[r]
        for c in 0..<cols { output[r * cols + c] = Float(quantized[r * cols + c]) * s }
    }
}

/// Expands any weight matrix to dense f32 `[rows, cols]` (dequantizing int8).
public func dequantizeWeights(_ weight: WeightMatrix, output: UnsafeMutablePointer<Float>) {
    for r in 0..<weight.rows {
        for c in 0..<weight.cols { output[r * weight.cols + c] = weight.value(r, c) }
    }
}
