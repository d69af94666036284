// Element conversions over buffers: f32 <-> f16 / bf16 (F16C when available) and int8 dequantization.
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import CKernelsX86

// The scalar element conversions and the int8 reference quantizer live in ElementConversion (one home for
// the converter and the kernels), re-exported here so `import Kernels` keeps their names.
@_exported import ElementConversion

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
