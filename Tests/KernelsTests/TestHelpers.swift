// Shared helpers for the kernel tests: deterministic random data, typed weights, comparisons.
import XCTest
@testable import Kernels

/// Named tolerances (relative to the reference output's max magnitude).
enum Tolerance {
    /// f32 fast path vs scalar twin (different summation order, FMA).
    static let f32: Float = 1e-5
    /// f16/bf16 weights: both paths widen the same weights exactly, so like f32.
    static let halfWeights: Float = 1e-5
    /// int8 weights x int8 activations (activation quantization) vs f32 on dequantized weights.
    static let int8: Float = 2e-2
    /// int8 weights x int16 activations.
    static let int8Act16: Float = 1e-4
    /// int8 weights in the integer Winograd (exact int16 transformed weights, transformed input quantized to
    /// |q| <= 7300 per column and 256 channels) vs the scalar twin on the same dequantized weights.
    static let int8Winograd: Float = 1e-3
    /// int8 weights in the integer Winograd F(4x2, 3x3) (transformed input quantized to |q| <= 917 ... 32767,
    /// larger transform coefficients) vs the scalar twin on the same dequantized weights.
    static let int8WinogradF42: Float = 5e-3
    /// int8 weights in the integer Winograd F(4x4, 3x3) (transformed input quantized per position to |q| <=
    /// 1348 ... 32767, B4 in both directions) vs the scalar twin on the same dequantized weights (measured up to
    /// 2.0e-3).
    static let int8WinogradF44: Float = 5e-3
}

/// xorshift64* generator: reproducible test data.
struct TestRNG {
    var state: UInt64
    init(seed: UInt64) { state = seed &* 0x9E37_79B9_7F4A_7C15 | 1 }
    mutating func next() -> UInt64 {
        state ^= state >> 12; state ^= state << 25; state ^= state >> 27
        return state &* 2_685_821_657_736_338_717
    }
    /// Uniform in [-1, 1).
    mutating func float() -> Float { Float(next() >> 40) / Float(1 << 23) - 1 }
    mutating func floats(_ n: Int, scale: Float = 1) -> [Float] { (0..<n).map { _ in float() * scale } }
}

/// Owns typed copies of a random weight matrix so `WeightMatrix` views stay valid.
final class TypedWeights {
    let rows: Int, cols: Int
    var f32: [Float]
    var f16: [UInt16]
    var bf16: [UInt16]
    var q: [Int8]
    var scales: [Float]
    init(rows: Int, cols: Int, rng: inout TestRNG) {
        self.rows = rows; self.cols = cols
        f32 = rng.floats(rows * cols, scale: 0.5)
        f16 = f32.map(f32ToF16)
        bf16 = f32.map(f32ToBF16)
        q = [Int8](repeating: 0, count: rows * cols)
        scales = [Float](repeating: 0, count: rows)
        f32.withUnsafeBufferPointer { src in
            q.withUnsafeMutableBufferPointer { qd in
                scales.withUnsafeMutableBufferPointer { sd in
                    quantizeRowsInt8(src.baseAddress!, rows: rows, cols: cols, quantized: qd.baseAddress!,
                                     scales: sd.baseAddress!)
                }
            }
        }
    }
    /// Calls `body` with a view of the weights in `dtype` ("f32", "f16", "bf16", "int8").
    func with<R>(_ dtype: String, _ body: (WeightMatrix) throws -> R) rethrows -> R {
        switch dtype {
        case "f16": return try f16.withUnsafeBufferPointer { try body(WeightMatrix(rows: rows, cols: cols, elements: .f16($0.baseAddress!))) }
        case "bf16": return try bf16.withUnsafeBufferPointer { try body(WeightMatrix(rows: rows, cols: cols, elements: .bf16($0.baseAddress!))) }
        case "int8":
            return try q.withUnsafeBufferPointer { qp in
                try scales.withUnsafeBufferPointer { sp in
                    try body(WeightMatrix(rows: rows, cols: cols, elements: .int8(qp.baseAddress!, scales: sp.baseAddress!)))
                }
            }
        default: return try f32.withUnsafeBufferPointer { try body(WeightMatrix(rows: rows, cols: cols, elements: .f32($0.baseAddress!))) }
        }
    }
}

/// max |a - b| / max(max |b|, tiny).
func relativeError(_ a: [Float], _ b: [Float]) -> Float {
    precondition(a.count == b.count)
    var maxDiff: Float = 0, maxRef: Float = 0
    for i in 0..<a.count { maxDiff = max(maxDiff, abs(a[i] - b[i])); maxRef = max(maxRef, abs(b[i])) }
    return maxDiff / max(maxRef, 1e-30)
}

/// Runs `body` with the given kernel settings, restoring them afterwards.
/// `bf16Dot` false (default) keeps bf16 weights on the widened-f32 path, so the fast-vs-scalar tests hold
/// at `Tolerance.halfWeights`; the `vdpbf16ps` path has its own tests (AVX512Tests.swift).
func withSettings<R>(scalar: Bool = false, threads: Int? = nil, actMax: Int? = nil, winograd: Bool? = nil,
                     bf16Dot: Bool = false, _ body: () throws -> R) rethrows -> R {
    let (s, t, a) = (KernelSettings.forceScalar, KernelSettings.threadCount, KernelSettings.int8ActivationMax)
    let (w, b) = (KernelSettings.winograd, KernelSettings.bf16DotProducts)
    defer {
        KernelSettings.forceScalar = s; KernelSettings.threadCount = t; KernelSettings.int8ActivationMax = a
        KernelSettings.winograd = w; KernelSettings.bf16DotProducts = b
    }
    KernelSettings.bf16DotProducts = bf16Dot
    KernelSettings.forceScalar = scalar
    if let winograd { KernelSettings.winograd = winograd }
    if let threads { KernelSettings.threadCount = threads }
    if let actMax { KernelSettings.int8ActivationMax = actMax }
    return try body()
}

