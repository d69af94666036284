// Sinusoidal timestep embedding (glide_text2im.nn.timestep_embedding).
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// `[count, dim]` embeddings of (possibly fractional) timesteps: with `half = dim / 2` and
/// `freq[i] = exp(-ln(maxPeriod) * i / half)` (f32, as PyTorch), row = `[cos(t*freq), sin(t*freq)]`
/// (cos first), plus a trailing 0 when `dim` is odd.
public func timestepEmbedding(_ timesteps: UnsafePointer<Float>, count: Int, dim: Int, maxPeriod: Float = 10000,
                              output: UnsafeMutablePointer<Float>) {
    let probe = KernelProfiler.begin("timestep embedding", "\(count)x\(dim)"); defer { KernelProfiler.end(probe) }
    let half = dim / 2
    let negLog = Float(-log(Double(maxPeriod)))
    for n in 0..<count {
        let t = timesteps[n]
        let row = output + n * dim
        for i in 0..<half {
            let freq = expf(negLog * Float(i) / Float(half))
            let arg = t * freq
            row[i] = cosf(arg)
            row[half + i] = sinf(arg)
        }
        if dim % 2 == 1 { row[dim - 1] = 0 }
    }
}
