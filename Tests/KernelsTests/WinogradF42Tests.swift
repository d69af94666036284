// The integer int8 Winograd F(4x2, 3x3) (winograd_f42.c, conv2dWinogradInt8F42): transforms against their
// scalar definitions and their zmm twins bit for bit, convolutions against the scalar int8 convolution.
import XCTest
import CKernelsX86
@testable import Kernels

final class WinogradF42Tests: XCTestCase {
    // (at least 16 output channels: fewer run on widened f32 weights, `int8ConvolutionRunsInF32`)
    static let geometries = [
        Conv2dGeometry(batch: 2, inChannels: 9, height: 17, width: 23, outChannels: 20, kernelSize: 3, stride: 1, padding: 1),
        Conv2dGeometry(batch: 1, inChannels: 40, height: 16, width: 16, outChannels: 16, kernelSize: 3, stride: 1, padding: 1),
        Conv2dGeometry(batch: 1, inChannels: 300, height: 10, width: 9, outChannels: 33, kernelSize: 3, stride: 1, padding: 1),
        Conv2dGeometry(batch: 2, inChannels: 11, height: 5, width: 70, outChannels: 17, kernelSize: 3, stride: 1, padding: 1),
        Conv2dGeometry(batch: 1, inChannels: 263, height: 7, width: 1, outChannels: 19, kernelSize: 3, stride: 1, padding: 1),
    ]

    /// conv2d through the integer F(4x2) Winograd on `kernel` (nil: the scalar twin).
    func run(_ g: Conv2dGeometry, kernel: Int8GEMMPath?, accumulate: Bool, threads: Int = 1, seed: UInt64,
             chunk: Int? = nil, cap: CPUPath? = nil, fused: Bool? = false) -> [Float] {
        runInt8WinogradTile(.f4x2, g, kernel: kernel, accumulate: accumulate, threads: threads, seed: seed, chunk: chunk,
                            cap: cap, fused: fused)
    }

    /// The int16 transformed weights are exactly N2 g N4^T, and f2[i] f4[j] times them is G2 g G4^T of the float
    /// F(2, 3) x F(4, 3) matrices.
    func testWeightTransformIsExact() {
        let g2: [[Double]] = [[1, 0, 0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0, 0, 1]]
        let g4: [[Double]] = [[1.0 / 4, 0, 0], [-1.0 / 6, -1.0 / 6, -1.0 / 6], [-1.0 / 6, 1.0 / 6, -1.0 / 6],
                              [1.0 / 24, 1.0 / 12, 1.0 / 6], [1.0 / 24, -1.0 / 12, 1.0 / 6], [0, 0, 1]]
        let f2 = [1, 0.5, 0.5, 1], f4 = [1.0 / 4, 1.0 / 6, 1.0 / 6, 1.0 / 24, 1.0 / 24, 1]
        var rng = TestRNG(seed: 42)
        for c in [1, 5, 32, 33, 70] {
            var k = (0..<(9 * c)).map { _ in Int8(truncatingIfNeeded: Int(rng.next() % 255) - 127) }
            if c == 5 { for i in 0..<9 { k[i] = i % 2 == 0 ? 127 : -127 } }   // extremes
            var u = [Int16](repeating: 0, count: 24 * c)
            glide_wf42_weights_i16(k, Int32(c), &u, c)
            for ch in 0..<c {
                for i in 0..<4 {
                    for j in 0..<6 {
                        var s = 0.0
                        for ky in 0..<3 { for kx in 0..<3 { s += g2[i][ky] * Double(k[ch * 9 + ky * 3 + kx]) * g4[j][kx] } }
                        let scaled = s / (f2[i] * f4[j])
                        XCTAssertEqual(Double(u[(i * 6 + j) * c + ch]), scaled.rounded(), "c=\(c) ch=\(ch) xi=\(i * 6 + j)")
                        XCTAssertEqual(scaled, scaled.rounded(), accuracy: 1e-9)
                    }
                }
            }
        }
        XCTAssertEqual(glide_wf42_qmax(256 * 2667), Int32(GLIDE_WF42_QMAX))
        XCTAssertLessThan(256 * 2667 * Int64(GLIDE_WF42_QMAX), Int64(Int32.max))
        XCTAssertEqual(glide_wf42_qmax(1), 32767)
    }

    /// The packed weight transform's AVX2 / VBMI bodies give the portable body's words and L1 bound.
    func testPackedWeightsSIMDMatchesPortable() {
        var rng = TestRNG(seed: 77)
        for (o, c, mr) in [(19, 300, 8), (7, 33, 6), (16, 513, 8)] {
            let q = (0..<(o * c * 9)).map { _ in Int8(truncatingIfNeeded: Int(rng.next() % 255) - 127) }
            let words = glide_wi16_packed_words(Int32(o), Int32(c), Int32(mr))
            let panels = Int32((o + mr - 1) / mr)
            var p0 = [UInt32](repeating: 0, count: 24 * words), p1 = [UInt32](repeating: 1, count: 24 * words)
            var l0 = [Int32](repeating: 0, count: 24), l1 = [Int32](repeating: 1, count: 24)
            defer { glide_wf42_weights_allow_simd(1) }
            glide_wf42_weights_allow_simd(0)
            XCTAssertEqual(glide_wf42_weights_i16_packed(q, c * 9, Int32(o), Int32(c), Int32(mr), 0, panels, &p0, &l0), 0)
            glide_wf42_weights_allow_simd(1)
            XCTAssertEqual(glide_wf42_weights_i16_packed(q, c * 9, Int32(o), Int32(c), Int32(mr), 0, panels, &p1, &l1), 0)
            XCTAssertEqual(p0, p1, "O=\(o) C=\(c) MR=\(mr)")
            XCTAssertEqual(l0, l1)
            for xi in 0..<24 { XCTAssertLessThanOrEqual(Int(l0[xi]), min(c, 256) * 2667) }
            XCTAssertGreaterThan(l0[9], l0[0], "rows (1 1 1) x (1 2 4) give larger transformed weights than (1 0 0)")
        }
    }

    /// The zmm and ymm input transforms + quantization + packing and output transforms give the portable bits.
    func testSIMDTransformsMatchPortable() throws {
        try XCTSkipUnless(KernelSettings.has(.avx2FMA), "CPU lacks avx2 (SIMD transforms not compared)")
        var rng = TestRNG(seed: 9)
        let bounds: [Int32] = (0..<24).map { 300 + 137 * Int32($0) }   // a bound of its own per position
        assertWF4TransformsMatchPortable(positions: 24, tileHeight: 2,
                                         cases: [(3, 5, 70, 32), (300, 7, 9, 16), (17, 4, 64, 32), (40, 33, 1, 32), (2, 3, 130, 16), (5, 6, 37, 32)],
                                         bounds: bounds, rng: &rng, input: glide_wf42_input_i16_packed, output: glide_wf42_output)
        try XCTSkipUnless(KernelSettings.has(.avx512f), "CPU lacks avx512f (zmm transforms not compared)")
    }

    /// F(4x2) against the scalar int8 convolution: odd sizes, few channels, batch 1 and 2, small chunks.
    func testMatchesScalarConvolution() throws {
        try XCTSkipUnless(KernelSettings.hasAVX2FMA, "CPU lacks avx2")
        assertInt8WinogradTileMatchesScalar(.f4x2, geometries: Self.geometries, seed: 8000, chunk: 24 * 40 * 12,
                                            tolerance: Tolerance.int8WinogradF42)
    }

    /// The worst case of the int32 bound: every kernel +127 (|48 U| = 9144 at position (1, 5) in all 256 channels,
    /// so the bound is 917) and every channel the same image (each transformed value is its column's max, |q| = 917
    /// in all channels): |acc| reaches 256 * 917 * 9144 = 2 146 572 288, just under 2^31, and must not wrap.
    func testWorstCaseAccumulatorDoesNotOverflow() throws {
        try XCTSkipUnless(KernelSettings.hasAVX2FMA, "CPU lacks avx2")
        assertInt8WinogradTileWorstCase(.f4x2, tolerance: Tolerance.int8WinogradF42)
        XCTAssertLessThan(256 * 917 * 9144, Int(Int32.max))
    }

    /// Every GEMM kernel, portable and zmm transforms, 1-3 threads and chunkings: the same bits.
    func testKernelsTransformsAndThreadsBitExact() throws {
        try XCTSkipUnless(KernelSettings.hasAVX2FMA, "CPU lacks avx2")
        var hardware: [Int8GEMMPath] = [.avx2]
        if KernelSettings.hasAVX512VNNI { hardware.append(.avx512vnni) }
        if KernelSettings.hasAVXVNNI { hardware.append(.avxvnni) }
        var seed: UInt64 = 9000
        for g in Self.geometries {
            seed += 1
            let ymm = run(g, kernel: .emulatedYMM, accumulate: true, seed: seed, cap: .avx2)
            let zmm = run(g, kernel: .emulatedZMM, accumulate: true, seed: seed, cap: .avx2)
            // (the panel width changes the tile grouping of the scales, not any value: both layouts agree)
            XCTAssertEqual(ymm.map(\.bitPattern), zmm.map(\.bitPattern), "\(g) ymm vs zmm layout")
            for kernel in hardware {
                for (threads, chunk) in [(1, nil), (2, 24 * 40 * 12), (3, nil)] as [(Int, Int?)] {
                    let y = run(g, kernel: kernel, accumulate: true, threads: threads, seed: seed, chunk: chunk)
                    XCTAssertEqual(ymm.map(\.bitPattern), y.map(\.bitPattern), "\(g) \(kernel) threads=\(threads)")
                }
            }
        }
        try XCTSkipUnless(KernelSettings.hasAVX512VNNI, "CPU lacks avx512_vnni (zmm vpdpwssd kernel not compared)")
        try XCTSkipUnless(KernelSettings.hasAVXVNNI, "CPU lacks avx_vnni (ymm vpdpwssd kernel not compared)")
    }

    /// The fused products + output transform (glide_wf42_gemm_output) against the 24 GEMMs into planes and the
    /// output transform: the same bits for every kernel (the emulated ones on the portable and AVX2 transforms),
    /// 1-3 threads, chunkings (chunks spanning images with batch 2) and 1-4 tile panels a pass.
    func testFusedOutputBitIdenticalToUnfused() throws {
        try XCTSkipUnless(KernelSettings.hasAVX2FMA, "CPU lacks avx2")
        var hardware: [Int8GEMMPath] = [.avx2]
        if KernelSettings.hasAVX512VNNI { hardware.append(.avx512vnni) }
        if KernelSettings.hasAVXVNNI { hardware.append(.avxvnni) }
        defer { glide_wf42_gemm_output_set_panels(0) }
        var seed: UInt64 = 9100
        for g in Self.geometries {
            seed += 1
            let ref = run(g, kernel: .emulatedYMM, accumulate: true, seed: seed, cap: .avx2, fused: false)
            for portable in [true, false] {   // the emulated GEMMs on the portable and the AVX2 transforms
                KernelSettings.int8WinogradF42PortableTransforms = portable
                defer { KernelSettings.int8WinogradF42PortableTransforms = false }
                for kernel in [Int8GEMMPath.emulatedYMM, .emulatedZMM] {
                    let y = run(g, kernel: kernel, accumulate: true, threads: 2, seed: seed, cap: .avx2, fused: true)
                    XCTAssertTrue(ref.map(\.bitPattern) == y.map(\.bitPattern), "\(g) \(kernel) portable=\(portable) fused")
                }
            }
            for kernel in hardware {
                for (threads, chunk, panels) in [(1, nil, 0), (2, 24 * 40 * 12, 2), (3, nil, 3), (1, 24 * 40 * 12, 4)]
                    as [(Int, Int?, Int32)] {
                    glide_wf42_gemm_output_set_panels(panels)
                    let unfused = run(g, kernel: kernel, accumulate: false, threads: threads, seed: seed, chunk: chunk)
                    let fused = run(g, kernel: kernel, accumulate: false, threads: threads, seed: seed, chunk: chunk,
                                    fused: true)
                    XCTAssertTrue(unfused.map(\.bitPattern) == fused.map(\.bitPattern), "\(g) \(kernel) threads=\(threads)")
                    let y = run(g, kernel: kernel, accumulate: true, threads: threads, seed: seed, chunk: chunk, fused: true)
                    XCTAssertTrue(ref.map(\.bitPattern) == y.map(\.bitPattern), "\(g) \(kernel) threads=\(threads) acc")
                }
            }
        }
        try XCTSkipUnless(KernelSettings.hasAVX512VNNI, "CPU lacks avx512_vnni (zmm vpdpwssd kernel not compared)")
        try XCTSkipUnless(KernelSettings.hasAVXVNNI, "CPU lacks avx_vnni (ymm vpdpwssd kernel not compared)")
    }

    /// The fused F(4x2) default: the zmm kernel up to 384 x 192 channels; forced either way.
    func testFusedOutputChoice() {
        let saved = KernelSettings.int8WinogradF42FusedOutput
        defer { KernelSettings.int8WinogradF42FusedOutput = saved }
        KernelSettings.int8WinogradF42FusedOutput = nil
        XCTAssertTrue(KernelSettings.int8WinogradF42Fuses(.avx512vnni, inChannels: 192, outChannels: 192))
        XCTAssertTrue(KernelSettings.int8WinogradF42Fuses(.avx512vnni, inChannels: 384, outChannels: 192))
        XCTAssertFalse(KernelSettings.int8WinogradF42Fuses(.avx512vnni, inChannels: 384, outChannels: 384))
        XCTAssertFalse(KernelSettings.int8WinogradF42Fuses(.avx2, inChannels: 192, outChannels: 192))
        KernelSettings.int8WinogradF42FusedOutput = true
        XCTAssertTrue(KernelSettings.int8WinogradF42Fuses(.emulatedYMM, inChannels: 768, outChannels: 768))
        KernelSettings.int8WinogradF42FusedOutput = false
        XCTAssertFalse(KernelSettings.int8WinogradF42Fuses(.avx512vnni, inChannels: 192, outChannels: 192))
    }

    /// The tile switch: forced either way, auto by size, F(2x2) with the opt-in fused output.
    func testTileChoice() {
        let saved = (KernelSettings.int8WinogradTile, KernelSettings.int8WinogradFusedOutput,
                     KernelSettings.int8WinogradF44MinimumSize)
        defer {
            (KernelSettings.int8WinogradTile, KernelSettings.int8WinogradFusedOutput,
             KernelSettings.int8WinogradF44MinimumSize) = saved
        }
        KernelSettings.int8WinogradF44MinimumSize = Int.max   // (F(4x4) from its size on: WinogradF44Tests)
        func geometry(_ h: Int, _ w: Int) -> Conv2dGeometry {
            Conv2dGeometry(batch: 1, inChannels: 64, height: h, width: w, outChannels: 64, kernelSize: 3, stride: 1, padding: 1)
        }
        let big = geometry(64, 64), small = geometry(8, 8)
        KernelSettings.int8WinogradFusedOutput = false
        KernelSettings.int8WinogradTile = .f2x2
        XCTAssertFalse(KernelSettings.int8WinogradUsesF42(big))
        KernelSettings.int8WinogradTile = .f4x2
        XCTAssertTrue(KernelSettings.int8WinogradUsesF42(small))
        KernelSettings.int8WinogradTile = .auto
        XCTAssertTrue(KernelSettings.int8WinogradUsesF42(big))
        XCTAssertFalse(KernelSettings.int8WinogradUsesF42(small))
        let unfused = KernelSettings.int8WinogradFusedInput
        defer { KernelSettings.int8WinogradFusedInput = unfused }
        KernelSettings.int8WinogradFusedInput = false
        XCTAssertFalse(KernelSettings.int8WinogradUsesF42(big))
        KernelSettings.int8WinogradFusedOutput = nil
        XCTAssertFalse(KernelSettings.int8WinogradUsesF42(big))
        XCTAssertEqual(Int8WinogradTile(rawValue: "4x2"), .f4x2)
    }
}
