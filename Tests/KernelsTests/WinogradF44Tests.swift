// The integer int8 Winograd F(4x4, 3x3) (winograd_f44.c, conv2dWinogradInt8Tiled(.f4x4)): transforms against their
// scalar definitions and their zmm twins bit for bit, convolutions against the scalar int8 convolution.
import XCTest
import CKernelsX86
@testable import Kernels

final class WinogradF44Tests: XCTestCase {
    // (at least 16 output channels: fewer run on widened f32 weights, `int8ConvolutionRunsInF32`; at least 8 input
    // channels: fewer do not take Winograd, the C transforms are tested with 2 and 3 below); sizes that are not
    // multiples of 4, 1x1 images, channels 8 / 33 / 257 (crossing the 256-long K block), batch 1 and 2
    static let geometries = [
        Conv2dGeometry(batch: 2, inChannels: 8, height: 13, width: 10, outChannels: 20, kernelSize: 3, stride: 1, padding: 1),
        Conv2dGeometry(batch: 1, inChannels: 33, height: 6, width: 6, outChannels: 16, kernelSize: 3, stride: 1, padding: 1),
        Conv2dGeometry(batch: 2, inChannels: 257, height: 1, width: 1, outChannels: 17, kernelSize: 3, stride: 1, padding: 1),
        Conv2dGeometry(batch: 1, inChannels: 257, height: 9, width: 14, outChannels: 24, kernelSize: 3, stride: 1, padding: 1),
        Conv2dGeometry(batch: 2, inChannels: 11, height: 5, width: 70, outChannels: 17, kernelSize: 3, stride: 1, padding: 1),
    ]

    /// conv2d through the integer F(4x4) Winograd on `kernel` (nil: the scalar twin).
    func run(_ g: Conv2dGeometry, kernel: Int8GEMMPath?, accumulate: Bool, threads: Int = 1, seed: UInt64,
             chunk: Int? = nil, cap: CPUPath? = nil, fused: Bool? = false) -> [Float] {
        runInt8WinogradTile(.f4x4, g, kernel: kernel, accumulate: accumulate, threads: threads, seed: seed, chunk: chunk,
                            cap: cap, fused: fused)
    }

    /// The int16 transformed weights are exactly Gn g Gn^T, and f_i f_j times them is G g G^T of the float F(4, 3)
    /// matrices; the int32 bound of the worst case.
    func testWeightTransformIsExact() {
        let g4: [[Double]] = [[1.0 / 4, 0, 0], [-1.0 / 6, -1.0 / 6, -1.0 / 6], [-1.0 / 6, 1.0 / 6, -1.0 / 6],
                              [1.0 / 24, 1.0 / 12, 1.0 / 6], [1.0 / 24, -1.0 / 12, 1.0 / 6], [0, 0, 1]]
        let f: [Double] = [1.0 / 4, -1.0 / 6, -1.0 / 6, 1.0 / 24, 1.0 / 24, 1]
        var rng = TestRNG(seed: 44)
        for c in [1, 5, 32, 33, 70] {
            var k = (0..<(9 * c)).map { _ in Int8(truncatingIfNeeded: Int(rng.next() % 255) - 127) }
            if c == 5 { for i in 0..<9 { k[i] = i % 2 == 0 ? 127 : -127 }; for i in 9..<18 { k[i] = 127 } }   // extremes
            var u = [Int16](repeating: 0, count: 36 * c)
            glide_wf44_weights_i16(k, Int32(c), &u, c)
            for ch in 0..<c {
                for i in 0..<6 {
                    for j in 0..<6 {
                        var s = 0.0
                        for ky in 0..<3 { for kx in 0..<3 { s += g4[i][ky] * Double(k[ch * 9 + ky * 3 + kx]) * g4[j][kx] } }
                        let exact = s / (f[i] * f[j])
                        XCTAssertEqual(exact, exact.rounded(), accuracy: 1e-9)
                        XCTAssertEqual(Double(u[(i * 6 + j) * c + ch]), exact.rounded(), "c=\(c) ch=\(ch) xi=\(i * 6 + j)")
                        XCTAssertLessThanOrEqual(abs(Int(u[(i * 6 + j) * c + ch])), 6223)
                    }
                }
            }
        }
        for xi in 0..<36 { XCTAssertEqual(glide_wf44_position_factor(Int32(xi)), Float(f[xi / 6] * f[xi % 6])) }
        XCTAssertEqual(glide_wf44_position_factor(36), 0)
        let q = glide_wf42_qmax(256 * 6223)
        XCTAssertLessThan(256 * 6223 * Int64(q), Int64(Int32.max))
        XCTAssertGreaterThanOrEqual(256 * 6223 * Int64(q + 1), Int64(Int32.max))
    }

    /// The packed weight transform's AVX2 / VBMI bodies give the portable body's words and per-position bounds.
    func testPackedWeightsSIMDMatchesPortable() {
        var rng = TestRNG(seed: 78)
        for (o, c, mr) in [(19, 300, 8), (7, 33, 6), (16, 513, 8)] {
            let q = (0..<(o * c * 9)).map { _ in Int8(truncatingIfNeeded: Int(rng.next() % 255) - 127) }
            let words = glide_wi16_packed_words(Int32(o), Int32(c), Int32(mr))
            let panels = Int32((o + mr - 1) / mr)
            var p0 = [UInt32](repeating: 0, count: 36 * words), p1 = [UInt32](repeating: 1, count: 36 * words)
            var l0 = [Int32](repeating: 0, count: 36), l1 = [Int32](repeating: 1, count: 36)
            defer { glide_wf44_weights_allow_simd(1) }
            glide_wf44_weights_allow_simd(0)
            XCTAssertEqual(glide_wf44_weights_i16_packed(q, c * 9, Int32(o), Int32(c), Int32(mr), 0, panels, &p0, &l0), 0)
            glide_wf44_weights_allow_simd(1)
            XCTAssertEqual(glide_wf44_weights_i16_packed(q, c * 9, Int32(o), Int32(c), Int32(mr), 0, panels, &p1, &l1), 0)
            XCTAssertEqual(p0, p1, "O=\(o) C=\(c) MR=\(mr)")
            XCTAssertEqual(l0, l1)
            for xi in 0..<36 { XCTAssertLessThanOrEqual(Int(l0[xi]), min(c, 256) * 6223) }
            // position (0, 0) is g00 itself: its bound is at most 127 a channel, position (3, 3) up to 49 times that
            XCTAssertLessThanOrEqual(Int(l0[0]), min(c, 256) * 127)
            XCTAssertGreaterThan(l0[3 * 6 + 3], l0[0])
        }
    }

    /// The zmm and ymm input transforms + quantization + packing and output transforms give the portable bits.
    func testSIMDTransformsMatchPortable() throws {
        try XCTSkipUnless(KernelSettings.has(.avx2FMA), "CPU lacks avx2 (SIMD transforms not compared)")
        var rng = TestRNG(seed: 10)
        let qmax: [Int32] = (0..<36).map { Int32([917, 1348, 32767, 5000, 3][$0 % 5]) }
        assertWF4TransformsMatchPortable(positions: 36, tileHeight: 4,
                                         cases: [(3, 5, 70, 32), (300, 7, 9, 16), (17, 4, 64, 32), (40, 33, 1, 32), (2, 3, 130, 16), (5, 13, 10, 32)],
                                         bounds: qmax, rng: &rng, input: glide_wf44_input_i16_packed, output: glide_wf44_output)
        try XCTSkipUnless(KernelSettings.has(.avx512f), "CPU lacks avx512f (zmm transforms not compared)")
    }

    /// The quantized input times its scales is the transformed input B4^T d B4 divided by the position factor
    /// (scale = column max / qmax[xi] times f_i f_j): one tile, checked against a double-precision transform.
    func testInputQuantizationCarriesPositionFactors() {
        let b4: [[Double]] = [[4, 0, -5, 0, 1, 0], [0, -4, -4, 1, 1, 0], [0, 4, -4, -1, 1, 0],
                              [0, -2, -1, 2, 1, 0], [0, 2, -1, -2, 1, 0], [0, 4, 0, -5, 0, 1]]
        let f: [Double] = [1.0 / 4, -1.0 / 6, -1.0 / 6, 1.0 / 24, 1.0 / 24, 1]
        var rng = TestRNG(seed: 12)
        let h = 4, w = 4, c = 1, nb = 16
        let x = rng.floats(h * w, scale: 3).map(Double.init).map(Float.init)
        let qmax: [Int32] = (0..<36).map { 1000 + Int32($0) * 100 }
        var d = [UInt32](repeating: 0, count: 36 * glide_wi16_packed_words(1, 1, Int32(nb)))
        var s = [Float](repeating: 0, count: 36 * nb)
        XCTAssertEqual(glide_wf44_input_i16_packed(x, Int32(h), Int32(w), Int32(c), 0, 1, Int32(nb), qmax, 0, 1, &d, &s,
                                                   Int32(GLIDE_WF42_PORTABLE)), 0)
        let words = glide_wi16_packed_words(1, 1, Int32(nb))
        for i in 0..<6 {
            for j in 0..<6 {
                var v = 0.0
                for a in 0..<6 {
                    for b in 0..<6 {
                        let iy = a - 1, ix = b - 1
                        let dv = iy < 0 || iy >= h || ix < 0 || ix >= w ? 0 : Double(x[iy * w + ix])
                        v += b4[i][a] * dv * b4[j][b]
                    }
                }
                let xi = i * 6 + j
                let qv = Double(Int16(truncatingIfNeeded: d[xi * words] & 0xffff))
                XCTAssertEqual(abs(qv), v == 0 ? 0 : Double(qmax[xi]), "xi=\(xi): one channel, the column max is itself")
                XCTAssertEqual(qv * Double(s[xi * nb]), v * f[i] * f[j], accuracy: 1e-5 * max(1, abs(v * f[i] * f[j])))
            }
        }
    }

    /// F(4x4) against the scalar int8 convolution: odd sizes, few channels, batch 1 and 2, small chunks.
    func testMatchesScalarConvolution() throws {
        try XCTSkipUnless(KernelSettings.hasAVX2FMA, "CPU lacks avx2")
        assertInt8WinogradTileMatchesScalar(.f4x4, geometries: Self.geometries, seed: 8400, chunk: 36 * 40 * 12,
                                            tolerance: Tolerance.int8WinogradF44)
    }

    /// The worst case of the int32 bound: every kernel +127 (|U'| = 127 * 7 * 7 = 6223 at position (3, 3) in all 256
    /// channels, so its bound is 1348) and every channel the same image: |acc| reaches 256 * 1348 * 6223, just under
    /// 2^31, and must not wrap.
    func testWorstCaseAccumulatorDoesNotOverflow() throws {
        try XCTSkipUnless(KernelSettings.hasAVX2FMA, "CPU lacks avx2")
        assertInt8WinogradTileWorstCase(.f4x4, tolerance: Tolerance.int8WinogradF44)
        XCTAssertEqual(glide_wf42_qmax(256 * 6223), 1348)
        XCTAssertLessThan(256 * 1348 * 6223, Int(Int32.max))
    }

    /// Every GEMM kernel, 1-3 threads and chunkings: the same bits; the fused products + output transform
    /// (glide_wf44_gemm_output) against the 36 GEMMs into planes and the output transform, on the portable and the
    /// zmm transforms, 1-4 tile panels a pass: the same bits.
    func testKernelsThreadsAndFusedOutputBitExact() throws {
        try XCTSkipUnless(KernelSettings.hasAVX2FMA, "CPU lacks avx2")
        var hardware: [Int8GEMMPath] = [.avx2]
        if KernelSettings.hasAVX512VNNI { hardware.append(.avx512vnni) }
        if KernelSettings.hasAVXVNNI { hardware.append(.avxvnni) }
        defer { glide_wf42_gemm_output_set_panels(0) }
        var seed: UInt64 = 9400
        for g in Self.geometries {
            seed += 1
            let ref = run(g, kernel: .emulatedZMM, accumulate: true, seed: seed, cap: .avx2, fused: false)
            let ymm = run(g, kernel: .emulatedYMM, accumulate: true, seed: seed, cap: .avx2, fused: false)
            XCTAssertTrue(ref.map(\.bitPattern) == ymm.map(\.bitPattern), "\(g) ymm vs zmm layout")
            for portable in [true, false] {   // the emulated GEMMs on the portable and the machine's transforms
                KernelSettings.int8WinogradF42PortableTransforms = portable
                defer { KernelSettings.int8WinogradF42PortableTransforms = false }
                for kernel in [Int8GEMMPath.emulatedYMM, .emulatedZMM] {
                    for fused in [false, true] {
                        let y = run(g, kernel: kernel, accumulate: true, threads: 2, seed: seed, fused: fused)
                        XCTAssertTrue(ref.map(\.bitPattern) == y.map(\.bitPattern), "\(g) \(kernel) portable=\(portable) fused=\(fused)")
                    }
                }
            }
            for kernel in hardware {
                for (threads, chunk, panels) in [(1, nil, 0), (2, 36 * 40 * 12, 2), (3, nil, 3), (1, 36 * 40 * 12, 4)]
                    as [(Int, Int?, Int32)] {
                    glide_wf42_gemm_output_set_panels(panels)
                    let unfused = run(g, kernel: kernel, accumulate: true, threads: threads, seed: seed, chunk: chunk)
                    XCTAssertTrue(ref.map(\.bitPattern) == unfused.map(\.bitPattern), "\(g) \(kernel) threads=\(threads)")
                    let fused = run(g, kernel: kernel, accumulate: true, threads: threads, seed: seed, chunk: chunk,
                                    fused: true)
                    XCTAssertTrue(ref.map(\.bitPattern) == fused.map(\.bitPattern), "\(g) \(kernel) threads=\(threads) fused")
                }
            }
        }
        try XCTSkipUnless(KernelSettings.hasAVX512VNNI, "CPU lacks avx512_vnni (zmm vpdpwssd kernel not compared)")
        try XCTSkipUnless(KernelSettings.hasAVXVNNI, "CPU lacks avx_vnni (ymm vpdpwssd kernel not compared)")
    }

    /// The fused pass's non-temporal output stores (whole aligned lines, when it overwrites), its output prefetch
    /// (when it adds) and the zmm kernel's weight prefetch (fused and unfused GEMMs): the same bits as without them,
    /// on a 64-byte aligned output whose rows are whole lines and on one whose rows are not.
    func testPrefetchAndStreamingBitExact() throws {
        try XCTSkipUnless(KernelSettings.hasAVX512VNNI, "CPU lacks avx512_vnni (the fused zmm pass streams its stores)")
        for width in [64, 68] {   // every row a whole number of lines; rows on and off line boundaries
        let g = Conv2dGeometry(batch: 2, inChannels: 24, height: 12, width: width, outChannels: 20, kernelSize: 3,
                               stride: 1, padding: 1)
        var rng = TestRNG(seed: 9900 + UInt64(width))
        let q = (0..<(g.outChannels * g.reductionLength)).map { _ in Int8(truncatingIfNeeded: Int(rng.next() % 255) - 127) }
        let scales = rng.floats(g.outChannels).map { abs($0) * 0.01 + 0.001 }
        let bias = rng.floats(g.outChannels)
        let x = rng.floats(g.batch * g.inChannels * g.height * g.width, scale: 2)
        let start = rng.floats(g.batch * g.outChannels * g.outHeight * g.outWidth)
        let saved = (KernelSettings.int8WinogradF42FusedOutput, KernelSettings.int8WinogradFusedOutputStreaming)
        defer {
            (KernelSettings.int8WinogradF42FusedOutput, KernelSettings.int8WinogradFusedOutputStreaming) = saved
            KernelSettings.resetInt8Path()
            glide_wi16_set_kernel_prefetch(1)
        }
        KernelSettings.int8Path = .avx512vnni
        func conv(accumulate: Bool, streaming: Bool, threads: Int, fused: Bool = true) -> [Float] {
            KernelSettings.int8WinogradF42FusedOutput = fused
            KernelSettings.int8WinogradFusedOutputStreaming = streaming
            glide_wi16_set_kernel_prefetch(streaming ? 1 : 0)
            let y = UnsafeMutablePointer<Float>(OpaquePointer(UnsafeMutableRawPointer.allocate(
                byteCount: 4 * start.count, alignment: 64)))
            defer { y.deallocate() }
            y.initialize(from: start, count: start.count)
            withSettings(threads: threads, winograd: true) {
                conv2dWinogradInt8Tiled(.f4x4, input: x, q: q, scales: scales, rowStride: g.reductionLength, bias: bias,
                                        output: y, geometry: g, accumulate: accumulate)
            }
            return Array(UnsafeBufferPointer(start: y, count: start.count))
        }
        for accumulate in [false, true] {
            let ref = conv(accumulate: accumulate, streaming: false, threads: 1)
            for threads in [1, 2] {
                let y = conv(accumulate: accumulate, streaming: true, threads: threads)
                XCTAssertTrue(ref.map(\.bitPattern) == y.map(\.bitPattern), "\(g) acc=\(accumulate) threads=\(threads)")
            }
            let unfused = conv(accumulate: accumulate, streaming: true, threads: 2, fused: false)
            XCTAssertTrue(ref.map(\.bitPattern) == unfused.map(\.bitPattern), "\(g) acc=\(accumulate) unfused")
        }
        }
    }

    /// The tile switch: forced F(4x4), auto F(4x4) from the minimum size on the hardware kernels only.
    func testTileChoice() {
        let saved = (KernelSettings.int8WinogradTile, KernelSettings.int8WinogradFusedOutput)
        defer { (KernelSettings.int8WinogradTile, KernelSettings.int8WinogradFusedOutput) = saved; KernelSettings.resetInt8Path() }
        func geometry(_ s: Int) -> Conv2dGeometry {
            Conv2dGeometry(batch: 1, inChannels: 64, height: s, width: s, outChannels: 64, kernelSize: 3, stride: 1, padding: 1)
        }
        let large = geometry(KernelSettings.int8WinogradF44MinimumSize), mid = geometry(KernelSettings.int8WinogradF42MinimumSize), small = geometry(8)
        KernelSettings.int8WinogradFusedOutput = false
        KernelSettings.int8WinogradTile = .f4x4
        XCTAssertEqual(KernelSettings.int8WinogradTile(for: small), .f4x4)
        XCTAssertFalse(KernelSettings.int8WinogradUsesF42(small))
        KernelSettings.int8WinogradTile = .auto
        XCTAssertEqual(KernelSettings.int8WinogradTile(for: mid), .f4x2)
        XCTAssertEqual(KernelSettings.int8WinogradTile(for: small), .f2x2)
        KernelSettings.int8Path = .emulatedZMM
        XCTAssertEqual(KernelSettings.int8WinogradTile(for: large), .f4x2)
        if KernelSettings.hasAVX2FMA {
            KernelSettings.int8Path = .avx2
            XCTAssertEqual(KernelSettings.int8WinogradTile(for: large), .f4x4)
        }
        if KernelSettings.hasAVX512VNNI {
            KernelSettings.int8Path = .avx512vnni
            XCTAssertEqual(KernelSettings.int8WinogradTile(for: large), .f4x4)
        }
        XCTAssertEqual(Int8WinogradTile(rawValue: "4x4"), .f4x4)
    }
}
