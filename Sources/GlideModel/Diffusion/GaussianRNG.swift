// Our seedable, counter-based Gaussian noise generator (no port; documented in README.md).
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Counter-based standard normal noise: every value is a pure function of (seed, stream, row, index),
/// so results never depend on thread count, batch size or call order.
///
/// Algorithm: a 64-bit key is derived by SplitMix64 finalisation from the seed, then mixed with `stream`
/// and `row`; pair `j` of a row takes the SplitMix64 outputs number `2j+1` and `2j+2` of a generator whose
/// state starts at that key (`mix(key + k * 0x9E3779B97F4A7C15)`), turns them into uniforms
/// u1 = ((a >> 11) + 1) / 2^53 in (0, 1] and u2 = (b >> 11) / 2^53 in [0, 1), and applies Box-Muller in
/// float64: element 2j = sqrt(-2 ln u1) cos(2π u2), element 2j+1 = sqrt(-2 ln u1) sin(2π u2), rounded to Float.
public struct GaussianRNG: Sendable, Equatable {
    /// The seed.
    public let seed: UInt64

    /// A generator for `seed`.
    public init(seed: UInt64) { self.seed = seed }

    static let golden: UInt64 = 0x9E37_79B9_7F4A_7C15

    @inline(__always) static func mix(_ z0: UInt64) -> UInt64 {
        var z = z0
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    func key(stream: UInt64, row: UInt64) -> UInt64 {
        let k0 = GaussianRNG.mix(seed &+ GaussianRNG.golden)
        let k1 = GaussianRNG.mix(k0 ^ (stream &* 0xD1B5_4A32_D192_ED03 &+ 1))
        return GaussianRNG.mix(k1 ^ (row &* 0xAEF1_7502_108E_F2D9 &+ 2))
    }

    /// `count` standard normal values for one batch row of one stream.
    /// The sampler uses stream 0 for the start noise and stream `k + 1` for the noise of step `k`
    /// (k counts sampling iterations from 0).
    public func normals(count: Int, stream: UInt64, row: UInt64) -> [Float] {
        let k = key(stream: stream, row: row)
        var out = [Float](repeating: 0, count: count)
        var j = 0
        while 2 * j < count {
            let a = GaussianRNG.mix(k &+ UInt64(2 * j + 1) &* GaussianRNG.golden)
            let b = GaussianRNG.mix(k &+ UInt64(2 * j + 2) &* GaussianRNG.golden)
            let u1 = Double((a >> 11) + 1) * 0x1p-53
            let u2 = Double(b >> 11) * 0x1p-53
            let r = (-2 * log(u1)).squareRoot()
            let angle = 2 * Double.pi * u2
            out[2 * j] = Float(r * cos(angle))
            if 2 * j + 1 < count { out[2 * j + 1] = Float(r * sin(angle)) }
            j += 1
        }
        return out
    }

    /// Noise for a whole batch: rows of `perRow` values, row r from `normals(count:stream:row: r)`.
    public func batch(rows: Int, perRow: Int, stream: UInt64) -> [Float] {
        var out: [Float] = []
        out.reserveCapacity(rows * perRow)
        for r in 0..<rows { out += normals(count: perRow, stream: stream, row: UInt64(r)) }
        return out
    }
}
