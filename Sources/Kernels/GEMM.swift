// Matrix multiply with typed weights: output[m, n] = sum_k W[m, k] * X[k, n] (+ bias[m]).
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import CKernelsX86

/// `output[m, n] (+)= sum_k weight[m, k] * input[k, n] + bias[m]` for `m < weight.rows`, `n < columns`,
/// `k < weight.cols`.
///
/// - `input` is any strided f32 `[K, columns]` matrix (e.g. NCHW activations `[C, H*W]` with
///   `rowStride: H*W`, or a token-major `[T, K]` buffer read transposed with `rowStride: 1, colStride: K`).
/// - `output` is any strided f32 `[M, columns]` matrix; with `accumulate` the product is added to it.
/// - f16/bf16 weights are widened to f32 on the fly; f32 accumulation throughout.
/// - int8 weights: the activations are quantized on the fly (symmetric, one scale per output column and block
///   of 256 K values; 16-bit by default, `KernelSettings.int8ActivationMax`) and multiplied in int32
///   (`vpdpbusd` or `vpmaddwd`, `KernelSettings.int8Path`); the result is rescaled to f32. Expect ~1e-4
///   relative error against the f32 product on the dequantized weights, ~1e-2 with 8-bit activations
///   (see README "Tolerances").
/// Multi-threaded (`KernelSettings.threadCount`); results are bit-identical for every thread count.
public func gemm(weight: WeightMatrix, input: MatrixOperand, columns: Int, output: MutableMatrixOperand,
                 bias: UnsafePointer<Float>? = nil, accumulate: Bool = false) {
    let probe = KernelProfiler.begin("gemm", "\(weight.dtypeName) \(weight.rows)x\(weight.cols) . \(weight.cols)x\(columns)", flops: 2 * Double(weight.rows) * Double(weight.cols) * Double(columns), unlessNested: true); defer { KernelProfiler.end(probe) }
    if weight.rows == 0 || columns == 0 { return }
    if KernelSettings.useAVX2 {
        gemmAVX2(weight: weight, source: .matrix(input), columns: columns, output: output,
                 bias: bias, accumulate: accumulate)
        return
    }
    gemmScalar(weight: weight, input: input, columns: columns, output: output, bias: bias, accumulate: accumulate)
}

/// Scalar twin of `gemm`: plain loops, weights widened to f32 (int8 dequantized; activations NOT quantized).
public func gemmScalar(weight: WeightMatrix, input: MatrixOperand, columns: Int, output: MutableMatrixOperand,
                       bias: UnsafePointer<Float>? = nil, accumulate: Bool = false) {
    let m = weight.rows, k = weight.cols
    if m == 0 || columns == 0 { return }
    let scratch = ScratchFrame(); defer { scratch.release() }
    let row = scratch.allocate(Float.self, count: k)
    let acc = scratch.allocate(Float.self, count: columns)
    for i in 0..<m {
        for c in 0..<k { row[c] = weight.value(i, c) }
        for j in 0..<columns { acc[j] = 0 }
        for c in 0..<k {
            let w = row[c]
            let x = input.base + c * input.rowStride
            if input.colStride == 1 {
                for j in 0..<columns { acc[j] += w * x[j] }
            } else {
                for j in 0..<columns { acc[j] += w * x[j * input.colStride] }
            }
        }
        let b = bias?[i] ?? 0
        for j in 0..<columns {
            let v = acc[j] + b
            if accumulate { output[i, j] += v } else { output[i, j] = v }
        }
    }
}

/// Linear layer as PyTorch's `nn.Linear`: `output[t, o] (+)= sum_k input[t, k] * weight[o, k] + bias[o]`.
/// `input` is `[rows, weight.cols]` and `output` is `[rows, weight.rows]`, both dense row-major.
/// Same dtype behaviour as `gemm`.
public func linear(input: UnsafePointer<Float>, rows: Int, weight: WeightMatrix, bias: UnsafePointer<Float>?,
                   output: UnsafeMutablePointer<Float>, accumulate: Bool = false) {
    let probe = KernelProfiler.begin("linear", "\(weight.dtypeName) \(rows)x\(weight.cols) -> \(weight.rows)", flops: 2 * Double(rows) * Double(weight.cols) * Double(weight.rows), unlessNested: true); defer { KernelProfiler.end(probe) }
    gemm(weight: weight, input: MatrixOperand(input, rowStride: 1, colStride: weight.cols), columns: rows,
         output: MutableMatrixOperand(output, rowStride: 1, colStride: weight.rows), bias: bias,
         accumulate: accumulate)
}

/// Scalar twin of `linear`.
public func linearScalar(input: UnsafePointer<Float>, rows: Int, weight: WeightMatrix, bias: UnsafePointer<Float>?,
                         output: UnsafeMutablePointer<Float>, accumulate: Bool = false) {
    gemmScalar(weight: weight, input: MatrixOperand(input, rowStride: 1, colStride: weight.cols), columns: rows,
               output: MutableMatrixOperand(output, rowStride: 1, colStride: weight.rows), bias: bias,
               accumulate: accumulate)
}

/// Plain f32 matrix product `c[M, N] (+)= a[M, K] * b[K, N]` with arbitrary strides on all three
/// (for activation x activation products such as attention scores). Multi-threaded, deterministic.
public func matmul(m: Int, n: Int, k: Int, a: MatrixOperand, b: MatrixOperand, c: MutableMatrixOperand,
                   accumulate: Bool = false) {
    let probe = KernelProfiler.begin("matmul", "\(m)x\(k) . \(k)x\(n)", flops: 2 * Double(m) * Double(n) * Double(k), unlessNested: true); defer { KernelProfiler.end(probe) }
    if m == 0 || n == 0 { return }
    if a.colStride == 1 {
        gemm(weight: WeightMatrix(rows: m, cols: k, elements: .f32(a.base), rowStride: a.rowStride),
             input: b, columns: n, output: c, accumulate: accumulate)
    } else {
        // Copy A to a dense buffer so it can be used as the weight operand.
        let scratch = ScratchFrame(); defer { scratch.release() }
        let dense = scratch.allocate(Float.self, count: m * k)
        for i in 0..<m { for j in 0..<k { dense[i * k + j] = a[i, j] } }
        gemm(weight: WeightMatrix(rows: m, cols: k, f32: dense), input: b, columns: n, output: c,
             accumulate: accumulate)
    }
}
