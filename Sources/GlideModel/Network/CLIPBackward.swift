// Port of the gradient in glide_text2im.clip.model_creation.CLIPModel.cond_fn: the image encoder
// (clip/encoders.py ImageEncoder) run forward while keeping what its backward pass needs, then our own
// backward pass from exp(logit_scale) * <z_text, z_image / |z_image|> down to the noised image x_t.
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Kernels

/// The CLIP guidance objective of one batch and its gradient with respect to the image.
public struct ClipImageGradient: Sendable {
    /// `ImageEncoder((x + 1) * 127.5, t)`: `[batch, n_embd]`, before L2 normalisation.
    public var embeddings: FloatTensor
    /// `exp(logit_scale) * <z_text, z_image / (|z_image| + 1e-12)>` per row.
    public var objective: [Float]
    /// d(sum of `objective`) / dx, `[batch, 3, S, S]`, x in the [-1, 1] scale (not multiplied by any guidance scale).
    public var gradient: FloatTensor
}

// The activations one transformer block's backward pass reads, per batch of images (L tokens, width n,
// Q query rows per image: all L, or only the first in the last block, whose other outputs nothing reads).
private final class ClipBlockTape {
    let queries: Int
    let input: Activation       // block input x              [B, L, n]  (LayerNorm f_attn.ln backward)
    let q: Activation           // f_q output, query rows     [B, Q, n]  (attention backward)
    let k, v: Activation        // f_k, f_v outputs           [B, L, n]
    let probabilities: Activation // softmax weights          [B, heads, Q, L]
    let middle: Activation      // x + attention, query rows  [B, Q, n]  (LayerNorm f_mlp.ln backward)
    let hidden: Activation      // f_1 output before GELU     [B, Q, 4n] (GELU backward)

    init(batch: Int, length: Int, queries: Int, width: Int, heads: Int, hiddenWidth: Int) {
        self.queries = queries
        input = Activation(shape: [batch, length, width])
        q = Activation(shape: [batch, queries, width])
        k = Activation(shape: [batch, length, width])
        v = Activation(shape: [batch, length, width])
        probabilities = Activation(shape: [batch, heads, queries, length])
        middle = Activation(shape: [batch, queries, width])
        hidden = Activation(shape: [batch, queries, hiddenWidth])
    }
}

extension ClipEncoder {
    /// Bytes of activations the gradient keeps for a batch of `batch` images (the rest is transient scratch
    /// of at most a few `[L, 4n]` buffers): per block and image, the block input, q, k, v, the post-attention
    /// state (5 L n), the pre-GELU hidden state (4 L n) and the attention weights (heads L^2), in f32; the last
    /// block keeps q, the post-attention state, the hidden state and the weights of its first row only (the
    /// only one the embedding reads). The released image encoder (L = 257, n = 768, 12 heads, 12 blocks) keeps
    /// about 116 MB (1e6 bytes) per image.
    public func gradientActivationBytes(batch: Int) -> Int {
        guard kind == .image else { return 0 }
        let g = options.imageSize / options.patchSize, length = 1 + g * g, n = width, heads = options.nHeadImage
        let full = 9 * length * n + heads * length * length
        let last = 3 * length * n + 6 * n + heads * length
        return 4 * batch * (max(blocks.count - 1, 0) * full + (blocks.isEmpty ? 0 : last) + length * n)
    }

    /// The gradient `CLIPModel.cond_fn` takes (before its `grad_scale`): the objective
    /// `exp(logit_scale) * sum_rows <z_text, z_image>` with both embeddings L2-normalised, differentiated with
    /// respect to `x` through the whole image encoder.
    /// - Parameters:
    ///   - x: the noised images `[batch, 3, S, S]` in the [-1, 1] scale (as `image_embeddings` takes them).
    ///   - timesteps: one ORIGINAL (0..<n_timesteps) timestep per row, as respaced sampling passes it to cond_fn.
    ///   - textEmbeddings: `[batch, n_embd]` (or `[1, n_embd]`, shared), already L2-normalised
    ///     (`ClipEncoder.normalized(encodeText(...))`, the reference's `text_embeddings`).
    ///   - logitScale: the objective's factor; nil uses the file's `exp(log(logit_scale))` in f32.
    public func imageObjectiveGradient(x: FloatTensor, timesteps: [Int], textEmbeddings: FloatTensor,
                                       logitScale: Float? = nil) throws -> ClipImageGradient {
        guard kind == .image, let patchProjection, let imagePositions, let inputLN else {
            throw GlideModelError.invalidInput(name: "image", expected: "text tokens (this is the text encoder)", actual: "an image")
        }
        let s = options.imageSize, n = width, e = options.nEmbd
        guard x.shape.count == 4, x.shape[1] == 3, x.shape[2] == s, x.shape[3] == s, x.shape[0] > 0 else {
            throw GlideModelError.invalidInput(name: "x", expected: "[batch, 3, \(s), \(s)]", actual: "\(x.shape)")
        }
        let batch = x.shape[0]
        if let timestepEmbedding {
            guard timesteps.count == batch else {
                throw GlideModelError.invalidInput(name: "timesteps", expected: "[\(batch)]", actual: "[\(timesteps.count)]")
            }
            if let bad = timesteps.first(where: { $0 < 0 || $0 >= timestepEmbedding.rows }) {
                throw GlideModelError.invalidInput(name: "timesteps", expected: "integers in 0..<\(timestepEmbedding.rows)", actual: "\(bad)")
            }
        }
        guard textEmbeddings.shape.count == 2, textEmbeddings.shape[1] == e,
              textEmbeddings.shape[0] == batch || textEmbeddings.shape[0] == 1 else {
            throw GlideModelError.invalidInput(name: "text embeddings", expected: "[\(batch), \(e)]", actual: "\(textEmbeddings.shape)")
        }
        // torch.exp(torch.tensor(np.log(logit_scale), dtype=float32)), in f32.
        let scale = logitScale ?? expf(Float(log(options.logitScale)))

        // Input stage: (x + 1) * 127.5, channel normalisation, patch projection, timestep token, positions, LN.
        let means: [Float] = [122.77093945, 116.74601272, 104.09373519]
        let stds: [Float] = [68.50053285, 66.63215831, 70.32316309]
        let plane = s * s
        let normalizedImage = Activation(x)
        for b in 0..<batch {
            for c in 0..<3 {
                let p = normalizedImage.pointer + (b * 3 + c) * plane
                for i in 0..<plane { p[i] = ((p[i] + 1) * 127.5 - means[c]) / stds[c] }
            }
        }
        let patches = patchProjection(normalizedImage)          // [batch, n, g, g]
        let count = patches.spatial, length = 1 + count, rows = batch * length
        let embedded = Activation(shape: [batch, length, n])     // before blocks.input.ln (kept)
        for b in 0..<batch {
            let first = embedded.pointer + b * length * n
            for c in 0..<n { first[c] = timestepEmbedding?.value(timesteps[b], c) ?? predState![c] }
            for i in 0..<count {
                let row = first + (1 + i) * n
                for c in 0..<n { row[c] = patches.pointer[(b * n + c) * count + i] }
            }
            for i in 0..<(length * n) { first[i] += imagePositions[i] }
        }
        let firstState = Activation(shape: [batch, length, n])
        inputLN(embedded.pointer, rows: rows, into: firstState.pointer)

        // Transformer blocks, keeping each block's tape. `state` holds [B, Q, n] (Q = L, then 1 after the last block).
        var tapes: [ClipBlockTape] = []
        let normed = Activation(shape: [batch, length, n])
        let attended = Activation(shape: [batch, length, n])
        let hiddenWidth = blocks.first?.fc1.outFeatures ?? 4 * n
        let activated = Activation(shape: [batch, length, hiddenWidth])
        var state = firstState
        for (index, block) in blocks.enumerated() {
            let heads = block.heads, ch = n / heads
            let queries = index == blocks.count - 1 ? 1 : length, queryRows = batch * queries
            let tape = ClipBlockTape(batch: batch, length: length, queries: queries, width: n, heads: heads,
                                     hiddenWidth: hiddenWidth)
            tape.input.pointer.update(from: state.pointer, count: state.count)
            block.attnLN(state.pointer, rows: rows, into: normed.pointer)
            block.key(normed.pointer, rows: rows, into: tape.k.pointer)
            block.value(normed.pointer, rows: rows, into: tape.v.pointer)
            // The query rows of the normed input and of the residual.
            let residual = Activation(shape: [batch, queries, n])
            if queries == length {
                residual.pointer.update(from: state.pointer, count: state.count)
            } else {
                for b in 0..<batch {
                    (normed.pointer + b * queries * n).update(from: normed.pointer + b * length * n, count: queries * n)
                    (residual.pointer + b * queries * n).update(from: state.pointer + b * length * n, count: queries * n)
                }
            }
            block.query(normed.pointer, rows: queryRows, into: tape.q.pointer)
            let qkScale = Float(1 / Double(ch).squareRoot())
            for b in 0..<batch {
                let off = b * length * n, qoff = b * queries * n
                for h in 0..<heads {
                    let p = tape.probabilities.pointer + (b * heads + h) * queries * length
                    // scores = q_h k_h^T, scaled, softmaxed; attended_h = P v_h.
                    matmul(m: queries, n: length, k: ch, a: MatrixOperand(tape.q.pointer + qoff + h * ch, rowStride: n),
                           b: MatrixOperand(tape.k.pointer + off + h * ch, rowStride: 1, colStride: n),
                           c: MutableMatrixOperand(p, rowStride: length))
                    for i in 0..<(queries * length) { p[i] *= qkScale }
                    softmaxRows(p, rows: queries, cols: length)
                    matmul(m: queries, n: ch, k: length, a: MatrixOperand(p, rowStride: length),
                           b: MatrixOperand(tape.v.pointer + off + h * ch, rowStride: n),
                           c: MutableMatrixOperand(attended.pointer + qoff + h * ch, rowStride: n))
                }
            }
            block.attnOut(attended.pointer, rows: queryRows, into: residual.pointer, accumulate: true)
            tape.middle.pointer.update(from: residual.pointer, count: residual.count)
            block.mlpLN(residual.pointer, rows: queryRows, into: normed.pointer)
            block.fc1(normed.pointer, rows: queryRows, into: tape.hidden.pointer)
            gelu(tape.hidden.pointer, activated.pointer, count: tape.hidden.count)
            block.fc2(activated.pointer, rows: queryRows, into: residual.pointer, accumulate: true)
            state = residual
            tapes.append(tape)
        }

        // Output: LN of the first (timestep) position, projection; then the objective and dObjective/dz.
        let stateQueries = state.count / (batch * n)
        let picked = Activation(shape: [batch, 1, n])           // before blocks.output.ln (kept)
        for b in 0..<batch { (picked.pointer + b * n).update(from: state.pointer + b * stateQueries * n, count: n) }
        let pickedNormed = Activation(shape: [batch, 1, n])
        outputLN(picked.pointer, rows: batch, into: pickedNormed.pointer)
        var z = [Float](repeating: 0, count: batch * e)
        z.withUnsafeMutableBufferPointer { outputProjection(pickedNormed.pointer, rows: batch, into: $0.baseAddress!) }
        var objective = [Float](repeating: 0, count: batch)
        let dz = Activation(shape: [batch, e])
        for b in 0..<batch {
            let zt = textEmbeddings.values.withUnsafeBufferPointer { $0.baseAddress! } + (textEmbeddings.shape[0] == 1 ? 0 : b * e)
            var sq: Float = 0, dot: Float = 0
            for c in 0..<e { sq += z[b * e + c] * z[b * e + c]; dot += zt[c] * z[b * e + c] }
            let norm = sq.squareRoot(), denom = norm + 1e-12
            objective[b] = scale * dot / denom
            // d/dz <zt, z / (|z| + eps)> = zt / (|z| + eps) - <zt, z> z / (|z| (|z| + eps)^2)
            let radial = norm > 0 ? dot / (norm * denom * denom) : 0
            for c in 0..<e { dz.pointer[b * e + c] = scale * (zt[c] / denom - radial * z[b * e + c]) }
        }

        // Backward: projection, output LN, into position 0 of each image. dState is [B, Q, n] like `state`.
        var scratch = DenseWeightScratch()
        let dPickedNormed = Activation(shape: [batch, 1, n])
        linearInputGradient(outputProjection, dy: dz.pointer, rows: batch, into: dPickedNormed.pointer, scratch: &scratch)
        let dPicked = Activation(shape: [batch, 1, n])
        layerNormInputGradient(outputLN, input: picked.pointer, dy: dPickedNormed.pointer, rows: batch, into: dPicked.pointer)
        var dState = Activation(shape: [batch, stateQueries, n], zeroed: true)
        for b in 0..<batch { (dState.pointer + b * stateQueries * n).update(from: dPicked.pointer + b * n, count: n) }

        let dHidden = Activation(shape: [batch, length, hiddenWidth])
        let dNormed = Activation(shape: [batch, length, n])
        let dBranch = Activation(shape: [batch, length, n])
        let dq = Activation(shape: [batch, length, n]), dk = Activation(shape: [batch, length, n])
        let dv = Activation(shape: [batch, length, n])
        let dScores = Activation(shape: [length, length])
        for (block, tape) in zip(blocks, tapes).reversed() {
            let heads = block.heads, ch = n / heads, queries = tape.queries, queryRows = batch * queries
            // MLP branch (query rows): out = middle + f_2(gelu(f_1(ln(middle)))).
            linearInputGradient(block.fc2, dy: dState.pointer, rows: queryRows, into: dHidden.pointer, scratch: &scratch)
            geluBackward(preactivation: tape.hidden.pointer, gradient: dHidden.pointer, count: tape.hidden.count)
            linearInputGradient(block.fc1, dy: dHidden.pointer, rows: queryRows, into: dNormed.pointer, scratch: &scratch)
            layerNormInputGradient(block.mlpLN, input: tape.middle.pointer, dy: dNormed.pointer, rows: queryRows,
                                   into: dBranch.pointer)
            for i in 0..<dState.count { dState.pointer[i] += dBranch.pointer[i] }   // now d(middle), query rows
            // Attention branch: middle = input + f_c(attention(q, k, v)).
            linearInputGradient(block.attnOut, dy: dState.pointer, rows: queryRows, into: dBranch.pointer, scratch: &scratch)
            let qkScale = Float(1 / Double(ch).squareRoot())
            for b in 0..<batch {
                let off = b * length * n, qoff = b * queries * n
                for h in 0..<heads {
                    let p = tape.probabilities.pointer + (b * heads + h) * queries * length
                    let dO = MatrixOperand(dBranch.pointer + qoff + h * ch, rowStride: n)
                    // dP = dO v^T; dv = P^T dO.
                    matmul(m: queries, n: length, k: ch, a: dO,
                           b: MatrixOperand(tape.v.pointer + off + h * ch, rowStride: 1, colStride: n),
                           c: MutableMatrixOperand(dScores.pointer, rowStride: length))
                    matmul(m: length, n: ch, k: queries, a: MatrixOperand(p, rowStride: 1, colStride: length), b: dO,
                           c: MutableMatrixOperand(dv.pointer + off + h * ch, rowStride: n))
                    // Softmax backward, with the score scale folded in: dS = scale * P * (dP - <dP, P>).
                    softmaxBackward(probabilities: p, gradient: dScores.pointer, rows: queries, cols: length, scale: qkScale)
                    // dq = dS k; dk = dS^T q.
                    matmul(m: queries, n: ch, k: length, a: MatrixOperand(dScores.pointer, rowStride: length),
                           b: MatrixOperand(tape.k.pointer + off + h * ch, rowStride: n),
                           c: MutableMatrixOperand(dq.pointer + qoff + h * ch, rowStride: n))
                    matmul(m: length, n: ch, k: queries, a: MatrixOperand(dScores.pointer, rowStride: 1, colStride: length),
                           b: MatrixOperand(tape.q.pointer + qoff + h * ch, rowStride: n),
                           c: MutableMatrixOperand(dk.pointer + off + h * ch, rowStride: n))
                }
            }
            linearInputGradient(block.key, dy: dk.pointer, rows: rows, into: dNormed.pointer, scratch: &scratch)
            linearInputGradient(block.value, dy: dv.pointer, rows: rows, into: dNormed.pointer, accumulate: true, scratch: &scratch)
            if queries == length {
                linearInputGradient(block.query, dy: dq.pointer, rows: rows, into: dNormed.pointer, accumulate: true, scratch: &scratch)
            } else {
                linearInputGradient(block.query, dy: dq.pointer, rows: queryRows, into: dBranch.pointer, scratch: &scratch)
                for b in 0..<batch {
                    let dst = dNormed.pointer + b * length * n, src = dBranch.pointer + b * queries * n
                    for i in 0..<(queries * n) { dst[i] += src[i] }
                }
            }
            let dInput = Activation(shape: [batch, length, n])
            layerNormInputGradient(block.attnLN, input: tape.input.pointer, dy: dNormed.pointer, rows: rows,
                                   into: dInput.pointer)
            for b in 0..<batch {                                                   // + the residual, query rows
                let dst = dInput.pointer + b * length * n, src = dState.pointer + b * queries * n
                for i in 0..<(queries * n) { dst[i] += src[i] }
            }
            dState = dInput
        }
        tapes.removeAll()

        // Input stage backward: LN, then the patch rows (the timestep token and positions take no image gradient).
        let dEmbedded = Activation(shape: [batch, length, n])
        layerNormInputGradient(inputLN, input: embedded.pointer, dy: dState.pointer, rows: rows, into: dEmbedded.pointer)
        let p = options.patchSize, g = s / p, patchWidth = 3 * p * p
        let dPatches = Activation(shape: [batch * count, n])
        for b in 0..<batch {
            (dPatches.pointer + b * count * n).update(from: dEmbedded.pointer + (b * length + 1) * n, count: count * n)
        }
        let dColumns = Activation(shape: [batch * count, patchWidth])   // d(image patch) per patch, (c, ky, kx)
        let conv = Linear(weight: patchProjection.weight, bias: nil)
        linearInputGradient(conv, dy: dPatches.pointer, rows: batch * count, into: dColumns.pointer, scratch: &scratch)
        var gradient = [Float](repeating: 0, count: batch * 3 * plane)
        for b in 0..<batch {
            for gy in 0..<g {
                for gx in 0..<g {
                    let src = dColumns.pointer + (b * count + gy * g + gx) * patchWidth
                    for c in 0..<3 {
                        let factor = 127.5 / stds[c]
                        for ky in 0..<p {
                            for kx in 0..<p {
                                gradient[((b * 3 + c) * s + gy * p + ky) * s + gx * p + kx] = src[(c * p + ky) * p + kx] * factor
                            }
                        }
                    }
                }
            }
        }
        return ClipImageGradient(embeddings: FloatTensor(shape: [batch, e], values: z), objective: objective,
                                 gradient: FloatTensor(shape: x.shape, values: gradient))
    }
}

// An f32 copy of a non-f32 weight matrix, reused across layers (the largest is [4n, n]).
struct DenseWeightScratch {
    private var buffer: [Float] = []

    /// The weights as a dense f32 `[rows, cols]` operand: f32 files are read in place, others widened here.
    mutating func operand(_ w: WeightMatrix, _ body: (MatrixOperand) -> Void) {
        if case .f32(let base) = w.elements {
            body(MatrixOperand(base, rowStride: w.rowStride))
            return
        }
        let count = w.rows * w.cols
        if buffer.count < count { buffer = [Float](repeating: 0, count: count) }
        buffer.withUnsafeMutableBufferPointer { out in
            let dst = out.baseAddress!
            for r in 0..<w.rows {
                let row = dst + r * w.cols, start = r * w.rowStride
                switch w.elements {
                case .f32(let src): row.update(from: src + start, count: w.cols)
                case .f16(let src): convertF16ToF32(src + start, row, count: w.cols)
                case .bf16(let src): convertBF16ToF32(src + start, row, count: w.cols)
                case .int8(let q, let scales):
                    let sc = scales[r]
                    for c in 0..<w.cols { row[c] = Float(q[start + c]) * sc }
                }
            }
            body(MatrixOperand(UnsafePointer(dst), rowStride: w.cols))
        }
    }
}

// dx = dy W for y = x W^T + b: dy [rows, out], dx [rows, in].
func linearInputGradient(_ layer: Linear, dy: UnsafePointer<Float>, rows: Int, into dx: UnsafeMutablePointer<Float>,
                         accumulate: Bool = false, scratch: inout DenseWeightScratch) {
    let w = layer.weight
    scratch.operand(w) { weights in
        matmul(m: rows, n: w.cols, k: w.rows, a: MatrixOperand(dy, rowStride: w.rows), b: weights,
               c: MutableMatrixOperand(dx, rowStride: w.cols), accumulate: accumulate)
    }
}

// LayerNorm backward to its input (statistics recomputed in f64 as the forward kernel computes them):
// dx = rstd * (dxhat - mean(dxhat) - xhat * mean(dxhat * xhat)), dxhat = dy * gamma.
func layerNormInputGradient(_ ln: LayerNorm, input: UnsafePointer<Float>, dy: UnsafePointer<Float>, rows: Int,
                            into dx: UnsafeMutablePointer<Float>) {
    let width = ln.width
    for r in 0..<rows {
        let x = input + r * width, g = dy + r * width, out = dx + r * width
        var sum = 0.0
        for i in 0..<width { sum += Double(x[i]) }
        let mean = sum / Double(width)
        var sq = 0.0
        for i in 0..<width { let d = Double(x[i]) - mean; sq += d * d }
        let rstd = 1.0 / (sq / Double(width) + 1e-5).squareRoot()
        var sumG = 0.0, sumGX = 0.0
        for i in 0..<width {
            let gh = Double(g[i]) * Double(ln.gamma[i])
            sumG += gh
            sumGX += gh * (Double(x[i]) - mean) * rstd
        }
        let meanG = sumG / Double(width), meanGX = sumGX / Double(width)
        for i in 0..<width {
            let xhat = (Double(x[i]) - mean) * rstd
            let gh = Double(g[i]) * Double(ln.gamma[i])
            out[i] = Float(rstd * (gh - meanG - xhat * meanGX))
        }
    }
}

// Exact GELU backward in place: g *= Phi(x) + x phi(x).
func geluBackward(preactivation x: UnsafePointer<Float>, gradient g: UnsafeMutablePointer<Float>, count: Int) {
    let invSqrt2: Float = 0.70710678118654752440, invSqrt2Pi: Float = 0.39894228040143267794
    for i in 0..<count {
        let v = x[i]
        g[i] *= 0.5 * (1 + erff(v * invSqrt2)) + v * invSqrt2Pi * expf(-0.5 * v * v)
    }
}

// Softmax backward in place over rows: g = scale * p * (g - <g, p>).
func softmaxBackward(probabilities p: UnsafePointer<Float>, gradient g: UnsafeMutablePointer<Float>, rows: Int, cols: Int,
                     scale: Float) {
    for r in 0..<rows {
        let pr = p + r * cols, gr = g + r * cols
        var dot: Float = 0
        for j in 0..<cols { dot += pr[j] * gr[j] }
        for j in 0..<cols { gr[j] = scale * pr[j] * (gr[j] - dot) }
    }
}
