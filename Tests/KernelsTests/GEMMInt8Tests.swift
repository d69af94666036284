// The vpdpbusd int8 GEMM paths: the portable emulation against the f32 scalar reference (everywhere), the
// AVX512-VNNI / AVX-VNNI kernels against the emulation bit-exactly (where the CPU has the flag), the
// 16-bit mode against the AVX2 vpmaddwd path bit-exactly, and thread-count independence.
import XCTest
import CKernelsX86
@testable import Kernels

final class GEMMInt8Tests: XCTestCase {
    /// One int8 product through `gemmAVX2`'s dispatch (threads, staging) with a chosen path.
    enum Case {
        case matrix(m: Int, n: Int, k: Int, tokenMajor: Bool)
        case conv(Conv2dGeometry)
    }

    /// Runs `c` on `path` (nil: the f32 scalar twin on the dequantized weights) and returns the output.
    /// `cache`: the weight view carries it (`WeightMatrix.packed`), `uses` GEMMs are run in a row (the later
    /// ones use the panels the first one packed; all must give the same output).
    func run(_ c: Case, path: Int8GEMMPath?, actMax: Int, accumulate: Bool, threads: Int = 1, seed: UInt64,
             cache: PackedWeightCache? = nil, uses: Int = 1,
             activations: (inout TestRNG, Int) -> [Float] = { rng, n in rng.floats(n) }) -> [Float] {
        var rng = TestRNG(seed: seed)
        let (m, k): (Int, Int)
        switch c {
        case .matrix(let mm, _, let kk, _): (m, k) = (mm, kk)
        case .conv(let g): (m, k) = (g.outChannels, g.reductionLength)
        }
        let w = TypedWeights(rows: m, cols: k, rng: &rng)
        let bias = rng.floats(m)
        let inputCount: Int, outputCount: Int
        switch c {
        case .matrix(_, let n, _, _): (inputCount, outputCount) = (k * n, m * n)
        case .conv(let g): (inputCount, outputCount) = (g.batch * g.inChannels * g.height * g.width,
                                                        g.batch * m * g.outHeight * g.outWidth)
        }
        let x = activations(&rng, inputCount)
        let y0 = rng.floats(outputCount)
        var y = y0
        let savedPath = KernelSettings.int8Path
        defer { KernelSettings.resetInt8Path() }
        var results: [[Float]] = []
        for _ in 0..<uses {
        y = y0
        w.with("int8") { wm0 in
            var wm = wm0
            wm.packed = cache
            x.withUnsafeBufferPointer { xp in
                y.withUnsafeMutableBufferPointer { yp in
                    withSettings(threads: threads, actMax: actMax) {
                        if let path { KernelSettings.int8Path = path }
                        switch c {
                        case .matrix(_, let n, _, let tokenMajor):
                            let input = tokenMajor ? MatrixOperand(xp.baseAddress!, rowStride: 1, colStride: k)
                                                   : MatrixOperand(xp.baseAddress!, rowStride: n)
                            let out = tokenMajor ? MutableMatrixOperand(yp.baseAddress!, rowStride: 1, colStride: m)
                                                 : MutableMatrixOperand(yp.baseAddress!, rowStride: n)
                            if path == nil {
                                gemmScalar(weight: wm, input: input, columns: n, output: out, bias: bias, accumulate: accumulate)
                            } else {
                                gemmAVX2(weight: wm, source: .matrix(input), columns: n, output: out, bias: bias,
                                         accumulate: accumulate)
                            }
                        case .conv(let g):
                            if path == nil {
                                conv2dScalar(input: xp.baseAddress!, weight: wm, bias: bias, output: yp.baseAddress!,
                                             geometry: g, accumulate: accumulate)
                                return
                            }
                            let hw = g.height * g.width, ohw = g.outHeight * g.outWidth
                            for b in 0..<g.batch {
                                gemmAVX2(weight: wm, source: .conv(ConvSource(input: xp.baseAddress! + b * g.inChannels * hw, geometry: g)),
                                         columns: ohw, output: MutableMatrixOperand(yp.baseAddress! + b * m * ohw, rowStride: ohw),
                                         bias: bias, accumulate: accumulate)
                            }
                        }
                    }
                }
            }
        }
        results.append(y)
        }
        for r in results.dropFirst() { XCTAssertEqual(r, results[0], "\(c): cached panels changed the result") }
        return results[0]
    }

    static let cases: [Case] = [
        .matrix(m: 1, n: 1, k: 1, tokenMajor: false),
        .matrix(m: 7, n: 13, k: 5, tokenMajor: false),
        .matrix(m: 8, n: 32, k: 256, tokenMajor: false),
        .matrix(m: 13, n: 37, k: 301, tokenMajor: false),
        .matrix(m: 50, n: 33, k: 515, tokenMajor: false),
        .matrix(m: 29, n: 11, k: 70, tokenMajor: true),
        .matrix(m: 17, n: 40, k: 258, tokenMajor: true),
        .conv(Conv2dGeometry(batch: 2, inChannels: 5, height: 9, width: 7, outChannels: 13, kernelSize: 3, stride: 1, padding: 1)),
        .conv(Conv2dGeometry(batch: 1, inChannels: 30, height: 20, width: 36, outChannels: 20, kernelSize: 3, stride: 1, padding: 1)),
        .conv(Conv2dGeometry(batch: 2, inChannels: 6, height: 11, width: 10, outChannels: 9, kernelSize: 3, stride: 2, padding: 1)),
        .conv(Conv2dGeometry(batch: 1, inChannels: 4, height: 16, width: 16, outChannels: 8, kernelSize: 3, stride: 2, padding: 1)),
        .conv(Conv2dGeometry(batch: 2, inChannels: 12, height: 5, width: 6, outChannels: 10, kernelSize: 1)),
        // The AVX512-VNNI path packs these from the source (gemm_int8_vnni.c i8_pack_quantize_*_zmm): more than one
        // 1024-column block and a partial 8-panel group; an 8x8 same-size 3x3 convolution over two K blocks.
        .matrix(m: 19, n: 1100, k: 300, tokenMajor: false),
        .conv(Conv2dGeometry(batch: 2, inChannels: 40, height: 8, width: 8, outChannels: 24, kernelSize: 3, stride: 1, padding: 1)),
        // At most 4 columns (gemm_int8_vnni.c i8_kernel_zmm_narrow): groups of 4 k in runs of 4, 2 and 1.
        .matrix(m: 21, n: 2, k: 530, tokenMajor: true),
        .matrix(m: 16, n: 3, k: 262, tokenMajor: false),
        .matrix(m: 9, n: 4, k: 10, tokenMajor: false),
    ]

    /// The emulation (both tile layouts) against the f32 scalar reference on the same dequantized weights:
    /// only the activation quantization differs. Runs on every CPU.
    func testEmulationMatchesF32Reference() {
        var seed: UInt64 = 1000
        for c in Self.cases {
            for accumulate in [false, true] {
                seed += 1
                let ref = run(c, path: nil, actMax: 32767, accumulate: accumulate, seed: seed)
                for path in [Int8GEMMPath.emulatedZMM, .emulatedYMM] {
                    for (actMax, tol) in [(127, Tolerance.int8), (32767, Tolerance.int8Act16)] {
                        let y = run(c, path: path, actMax: actMax, accumulate: accumulate, seed: seed)
                        XCTAssertLessThanOrEqual(relativeError(y, ref), tol, "\(c) \(path) act=\(actMax) acc=\(accumulate)")
                    }
                }
            }
        }
    }

    /// Results do not depend on the tile layout or the thread count (each element depends only on its row,
    /// column and K). Runs on every CPU.
    func testEmulationLayoutsAndThreadsBitIdentical() {
        let c = Case.conv(Conv2dGeometry(batch: 1, inChannels: 16, height: 24, width: 24, outChannels: 40, kernelSize: 3, stride: 1, padding: 1))
        for actMax in [127, 32767] {
            let one = run(c, path: .emulatedZMM, actMax: actMax, accumulate: false, threads: 1, seed: 3)
            XCTAssertEqual(one, run(c, path: .emulatedYMM, actMax: actMax, accumulate: false, threads: 1, seed: 3))
            XCTAssertEqual(one, run(c, path: .emulatedZMM, actMax: actMax, accumulate: false, threads: 2, seed: 3))
            XCTAssertEqual(one, run(c, path: .emulatedYMM, actMax: actMax, accumulate: false, threads: 3, seed: 3))
        }
        let t = Case.matrix(m: 37, n: 45, k: 300, tokenMajor: true)
        XCTAssertEqual(run(t, path: .emulatedZMM, actMax: 127, accumulate: true, threads: 1, seed: 4),
                       run(t, path: .emulatedZMM, actMax: 127, accumulate: true, threads: 3, seed: 4))
    }

    /// An intrinsic path against the emulation, bit-exactly, on every case, both modes, 1 and 2 threads.
    func checkBitExact(_ path: Int8GEMMPath) throws {
        try XCTSkipUnless(path.isSupported, "CPU lacks \(path.requiredFlag ?? "")")
        var seed: UInt64 = 2000
        for c in Self.cases {
            for accumulate in [false, true] {
                seed += 1
                for actMax in [127, 32767] {
                    let emu = run(c, path: .emulatedZMM, actMax: actMax, accumulate: accumulate, seed: seed)
                    for threads in [1, 2] {
                        let y = run(c, path: path, actMax: actMax, accumulate: accumulate, threads: threads, seed: seed)
                        XCTAssertEqual(y, emu, "\(c) \(path) act=\(actMax) acc=\(accumulate) threads=\(threads)")
                    }
                }
            }
        }
    }

    func testAVX512VNNIBitExactToEmulation() throws { try checkBitExact(.avx512vnni) }
    func testAVXVNNIBitExactToEmulation() throws { try checkBitExact(.avxvnni) }

    /// The 16-bit mode computes the same integers as the AVX2 int8 x int16 path (vpmaddwd): same outputs.
    func testSixteenBitModeEqualsAVX2Int16Path() throws {
        try XCTSkipUnless(KernelSettings.hasAVX2FMA, "CPU lacks avx2")
        var seed: UInt64 = 3000
        for c in Self.cases {
            seed += 1
            let a = run(c, path: .avx2, actMax: 32767, accumulate: true, seed: seed)
            let b = run(c, path: .emulatedYMM, actMax: 32767, accumulate: true, seed: seed)
            XCTAssertEqual(a, b, "\(c)")
        }
    }

    /// Activation quantization error on SiLU-of-GroupNorm-like activations (heavy positive tail, many values
    /// near -0.28): 8-bit activations stay within the int8 tolerance, 16-bit within the int16 one.
    func testQuantizationErrorOnSiLULikeActivations() {
        let g = Conv2dGeometry(batch: 1, inChannels: 24, height: 12, width: 12, outChannels: 16, kernelSize: 3, stride: 1, padding: 1)
        let silu: (inout TestRNG, Int) -> [Float] = { rng, n in
            (0..<n).map { _ in
                // approximately normal (sum of 4 uniforms), then SiLU
                let z = (rng.float() + rng.float() + rng.float() + rng.float()) * 1.7
                return z / (1 + exp(-z))
            }
        }
        let ref = run(.conv(g), path: nil, actMax: 32767, accumulate: false, seed: 9, activations: silu)
        let y8 = run(.conv(g), path: .emulatedZMM, actMax: 127, accumulate: false, seed: 9, activations: silu)
        let y16 = run(.conv(g), path: .emulatedZMM, actMax: 32767, accumulate: false, seed: 9, activations: silu)
        XCTAssertLessThanOrEqual(relativeError(y8, ref), Tolerance.int8)
        XCTAssertLessThanOrEqual(relativeError(y16, ref), Tolerance.int8Act16)
    }
}

extension GEMMInt8Tests {
    /// int8 3x3 convolutions take the (integer) Winograd from 64 tiles on AVX512-VNNI, from 32 on the ymm paths.
    func testInt8WinogradChoiceFollowsPath() throws {
        try XCTSkipUnless(KernelSettings.hasAVX2FMA, "CPU lacks avx2")
        func geometry(_ batch: Int, _ size: Int) -> Conv2dGeometry {
            Conv2dGeometry(batch: batch, inChannels: 64, height: size, width: size, outChannels: 64, kernelSize: 3, stride: 1, padding: 1)
        }
        let saved = KernelSettings.int8Path
        defer { KernelSettings.resetInt8Path() }
        withSettings(winograd: true) {
            KernelSettings.int8Path = .emulatedZMM
            XCTAssertTrue(conv2dUsesWinograd(geometry(1, 16), int8Weights: true))
            XCTAssertFalse(conv2dUsesWinograd(geometry(2, 8), int8Weights: true))
            XCTAssertFalse(conv2dUsesWinograd(geometry(1, 16), int8Weights: false))
            KernelSettings.int8Path = .avx2
            XCTAssertTrue(conv2dUsesWinograd(geometry(2, 8), int8Weights: true))
            XCTAssertFalse(conv2dUsesWinograd(geometry(1, 8), int8Weights: true))
        }
    }
}

/// The integer int8 Winograd (exact int16 transformed weights x 13-bit transformed input).
final class WinogradInt8Tests: XCTestCase {
    static let geometries = [
        Conv2dGeometry(batch: 2, inChannels: 9, height: 17, width: 23, outChannels: 20, kernelSize: 3, stride: 1, padding: 1),
        Conv2dGeometry(batch: 1, inChannels: 40, height: 16, width: 16, outChannels: 8, kernelSize: 3, stride: 1, padding: 1),
        Conv2dGeometry(batch: 1, inChannels: 300, height: 10, width: 9, outChannels: 33, kernelSize: 3, stride: 1, padding: 1),
    ]

    /// conv2d on `kernel` through the integer Winograd (nil: the scalar twin).
    func run(_ g: Conv2dGeometry, kernel: Int8GEMMPath?, accumulate: Bool, threads: Int = 1, seed: UInt64,
             chunk: Int? = nil, silu: Bool = false) -> [Float] {
        var rng = TestRNG(seed: seed)
        let w = TypedWeights(rows: g.outChannels, cols: g.reductionLength, rng: &rng)
        let bias = rng.floats(g.outChannels)
        var x = rng.floats(g.batch * g.inChannels * g.height * g.width, scale: 2)
        if silu { x = x.map { $0 / (1 + exp(-$0)) } }
        var y = rng.floats(g.batch * g.outChannels * g.outHeight * g.outWidth)
        let saved = (KernelSettings.winogradMinimumTilesInt8, KernelSettings.winogradChunkElements,
                     KernelSettings.int8WinogradMinimumTilesOverride, KernelSettings.int8WinogradTile)
        defer {
            KernelSettings.resetInt8Path()
            (KernelSettings.winogradMinimumTilesInt8, KernelSettings.winogradChunkElements,
             KernelSettings.int8WinogradMinimumTilesOverride, KernelSettings.int8WinogradTile) = saved
        }
        KernelSettings.int8WinogradTile = .f2x2   // F(4x2): WinogradF42Tests
        w.with("int8") { wm in
            withSettings(threads: threads, winograd: true) {
                if let kernel {
                    KernelSettings.int8Path = kernel
                    KernelSettings.int8WinogradMinimumTilesOverride = 1
                    if let chunk { KernelSettings.winogradChunkElements = chunk }
                    XCTAssertTrue(conv2dUsesWinograd(g, int8Weights: true), "\(g) cap=\(KernelSettings.cpuCap) path=\(KernelSettings.cpuPath) winograd=\(KernelSettings.winograd) useAVX2=\(KernelSettings.useAVX2)")
                    conv2d(input: x, weight: wm, bias: bias, output: &y, geometry: g, accumulate: accumulate)
                } else {
                    conv2dScalar(input: x, weight: wm, bias: bias, output: &y, geometry: g, accumulate: accumulate)
                }
            }
        }
        return y
    }

    func testIntegerWinogradMatchesScalarTwin() throws {
        try XCTSkipUnless(KernelSettings.hasAVX2FMA, "CPU lacks avx2 (the Winograd transforms)")
        var seed: UInt64 = 4000
        for g in Self.geometries {
            for accumulate in [false, true] {
                seed += 1
                let ref = run(g, kernel: nil, accumulate: accumulate, seed: seed)
                for chunk in [nil, 16 * 40 * 12] as [Int?] {
                    let y = run(g, kernel: .emulatedYMM, accumulate: accumulate, seed: seed, chunk: chunk)
                    XCTAssertLessThanOrEqual(relativeError(y, ref), Tolerance.int8Winograd, "\(g) acc=\(accumulate) chunk=\(String(describing: chunk))")
                }
            }
        }
        let g = Self.geometries[0]
        let ref = run(g, kernel: nil, accumulate: false, seed: 7, silu: true)
        let y = run(g, kernel: .emulatedZMM, accumulate: false, seed: 7, silu: true)
        XCTAssertLessThanOrEqual(relativeError(y, ref), Tolerance.int8Winograd, "SiLU activations")
    }

    /// AVX2 vpmaddwd and AVX512-VNNI vpdpwssd against the emulation bit-exactly, and across thread counts.
    func testIntegerWinogradKernelsBitExact() throws {
        try XCTSkipUnless(KernelSettings.hasAVX2FMA, "CPU lacks avx2 (the Winograd transforms)")
        var seed: UInt64 = 5000
        for g in Self.geometries {
            seed += 1
            let emu = run(g, kernel: .emulatedYMM, accumulate: true, seed: seed)
            XCTAssertEqual(emu, run(g, kernel: .emulatedZMM, accumulate: true, seed: seed), "\(g)")
            XCTAssertEqual(emu, run(g, kernel: .avx2, accumulate: true, threads: 2, seed: seed), "\(g) avx2")
            XCTAssertEqual(emu, run(g, kernel: .avx2, accumulate: true, threads: 3, seed: seed), "\(g) avx2 3 threads")
            if KernelSettings.hasAVX512VNNI {
                XCTAssertEqual(emu, run(g, kernel: .avx512vnni, accumulate: true, threads: 2, seed: seed), "\(g) avx512vnni")
            }
            if KernelSettings.hasAVXVNNI {
                XCTAssertEqual(emu, run(g, kernel: .avxvnni, accumulate: true, threads: 2, seed: seed), "\(g) avxvnni")
            }
        }
        try XCTSkipUnless(KernelSettings.hasAVX512VNNI, "CPU lacks avx512_vnni (zmm vpdpwssd kernel not compared)")
        try XCTSkipUnless(KernelSettings.hasAVXVNNI, "CPU lacks avx_vnni (ymm vpdpwssd kernel not compared)")
    }

    /// The int8 weight transform with the VBMI byte-permute transposition gives glide_winograd_weights_i16's int16s
    /// (whole and partial 32-channel blocks), and the packed panels built with it the same words.
    func testVBMIWeightTransformBitIdentical() throws {
        try XCTSkipUnless(glide_cpu_has_avx512_vbmi() != 0, "CPU lacks avx512_vbmi")
        var state: UInt64 = 0x9e3779b97f4a7c15
        func nextByte() -> Int8 {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return Int8(truncatingIfNeeded: state >> 33)
        }
        for c in [1, 5, 31, 32, 33, 64, 100, 577] {
            let g = (0..<(c * 9)).map { _ in nextByte() }
            var a = [Int16](repeating: 0, count: 16 * c), b = [Int16](repeating: 7, count: 16 * c)
            glide_winograd_weights_i16(g, Int32(c), &a, c)
            XCTAssertEqual(glide_winograd_weights_i16_vbmi(g, Int32(c), &b, c), 0)
            XCTAssertEqual(a, b, "C=\(c)")
        }
        let (o, c) = (19, 300)
        let q = (0..<(o * c * 9)).map { _ in nextByte() }
        let words = glide_wi16_packed_words(Int32(o), Int32(c), 8)
        var p0 = [UInt32](repeating: 0, count: 16 * words), p1 = p0
        defer { glide_winograd_weights_i16_allow_vbmi(1) }
        glide_winograd_weights_i16_allow_vbmi(0)
        XCTAssertEqual(glide_winograd_weights_i16_packed(q, c * 9, Int32(o), Int32(c), 8, 0, 3, &p0), 0)
        glide_winograd_weights_i16_allow_vbmi(1)
        XCTAssertEqual(glide_winograd_weights_i16_packed(q, c * 9, Int32(o), Int32(c), 8, 0, 3, &p1), 0)
        XCTAssertEqual(p0, p1)
    }

    /// The fused input transform + quantization + panel packing (`int8WinogradFusedInput`), and with it the fused
    /// products + output transform (`int8WinogradFusedOutput`), give the bits of the f32 input transform, the GEMM's
    /// packing, the 16 GEMMs and the output transform: portable transform (capped at AVX2) and zmm transform,
    /// both panel widths, panels spanning tile rows, odd K tails past a 256 block, small chunks, batch 1 and 2,
    /// 1-3 threads.
    func testFusedInputPackingBitIdentical() throws {
        try XCTSkipUnless(KernelSettings.hasAVX2FMA, "CPU lacks avx2 (the Winograd transforms)")
        let saved = (KernelSettings.int8WinogradFusedInput, KernelSettings.int8WinogradFusedOutput)
        defer { (KernelSettings.int8WinogradFusedInput, KernelSettings.int8WinogradFusedOutput) = saved }
        let geometries = Self.geometries + [
            Conv2dGeometry(batch: 2, inChannels: 263, height: 7, width: 1, outChannels: 9, kernelSize: 3, stride: 1, padding: 1),
            Conv2dGeometry(batch: 1, inChannels: 12, height: 64, width: 66, outChannels: 16, kernelSize: 3, stride: 1, padding: 1),
        ]
        var caps: [CPUPath] = [.avx2]
        if KernelSettings.supportedPath == .avx512 { caps.append(.avx512) }
        var seed: UInt64 = 6000
        for g in geometries {
            seed += 1
            for cap in caps {
                for kernel in [Int8GEMMPath.emulatedYMM, .emulatedZMM] {
                    for (threads, chunk) in [(1, nil), (2, 16 * 40 * 12), (3, nil)] as [(Int, Int?)] {
                        let (unfused, fused, fusedOutput) = withCPU(cap) { () -> ([Float], [Float], [Float]) in
                            KernelSettings.int8WinogradFusedInput = false
                            let a = run(g, kernel: kernel, accumulate: true, threads: threads, seed: seed, chunk: chunk)
                            KernelSettings.int8WinogradFusedInput = true
                            KernelSettings.int8WinogradFusedOutput = false
                            let b = run(g, kernel: kernel, accumulate: true, threads: threads, seed: seed, chunk: chunk)
                            KernelSettings.int8WinogradFusedOutput = true
                            let c = run(g, kernel: kernel, accumulate: true, threads: threads, seed: seed, chunk: chunk)
                            return (a, b, c)
                        }
                        XCTAssertEqual(unfused.map(\.bitPattern), fused.map(\.bitPattern),
                                       "\(g) cap=\(cap) \(kernel) threads=\(threads) chunk=\(String(describing: chunk))")
                        XCTAssertEqual(unfused.map(\.bitPattern), fusedOutput.map(\.bitPattern),
                                       "fused output \(g) cap=\(cap) \(kernel) threads=\(threads) chunk=\(String(describing: chunk))")
                    }
                }
            }
            var hardware: [Int8GEMMPath] = [.avx2]
            if KernelSettings.hasAVX512VNNI { hardware.append(.avx512vnni) }
            if KernelSettings.hasAVXVNNI { hardware.append(.avxvnni) }
            for kernel in hardware {
                for accumulate in [false, true] {
                    KernelSettings.int8WinogradFusedInput = false
                    let a = run(g, kernel: kernel, accumulate: accumulate, threads: 2, seed: seed)
                    KernelSettings.int8WinogradFusedInput = true
                    KernelSettings.int8WinogradFusedOutput = false
                    let b = run(g, kernel: kernel, accumulate: accumulate, threads: 2, seed: seed)
                    KernelSettings.int8WinogradFusedOutput = true
                    let c = run(g, kernel: kernel, accumulate: accumulate, threads: 2, seed: seed)
                    XCTAssertEqual(a.map(\.bitPattern), b.map(\.bitPattern), "\(g) \(kernel) acc=\(accumulate)")
                    XCTAssertEqual(a.map(\.bitPattern), c.map(\.bitPattern), "fused output \(g) \(kernel) acc=\(accumulate)")
                }
            }
        }
    }
}

extension GEMMInt8Tests {
    /// Few output channels (all paths) or a short K (ymm paths): the int8 convolution runs on widened f32
    /// weights, i.e. exactly the f32 convolution of the dequantized weights.
    func testSmallInt8ConvolutionsRunOnWidenedWeights() throws {
        try XCTSkipUnless(KernelSettings.hasAVX2FMA, "CPU lacks avx2")
        let saved = KernelSettings.int8Path
        defer { KernelSettings.resetInt8Path() }
        let out = Conv2dGeometry(batch: 2, inChannels: 20, height: 12, width: 10, outChannels: 6, kernelSize: 3, stride: 1, padding: 1)
        let input = Conv2dGeometry(batch: 1, inChannels: 3, height: 12, width: 10, outChannels: 20, kernelSize: 3, stride: 1, padding: 1)
        for (g, path, widened) in [(out, Int8GEMMPath.emulatedZMM, true), (input, .avx2, true), (input, .emulatedZMM, false)] {
            KernelSettings.int8Path = path
            XCTAssertEqual(int8ConvolutionRunsInF32(WeightMatrix(rows: 1, cols: 1, elements: .int8([0], scales: [1])), g), widened)
            guard widened else { continue }
            var rng = TestRNG(seed: 77)
            let w = TypedWeights(rows: g.outChannels, cols: g.reductionLength, rng: &rng)
            let x = rng.floats(g.batch * g.inChannels * g.height * g.width), b = rng.floats(g.outChannels)
            let dequantized = (0..<(g.outChannels * g.reductionLength)).map { Float(w.q[$0]) * w.scales[$0 / g.reductionLength] }
            var y8 = [Float](repeating: 0, count: g.batch * g.outChannels * g.outHeight * g.outWidth), y32 = y8
            w.with("int8") { conv2d(input: x, weight: $0, bias: b, output: &y8, geometry: g) }
            dequantized.withUnsafeBufferPointer {
                conv2d(input: x, weight: WeightMatrix(rows: g.outChannels, cols: g.reductionLength, f32: $0.baseAddress!),
                       bias: b, output: &y32, geometry: g)
            }
            XCTAssertEqual(y8, y32, "\(g) \(path)")
        }
    }
}

extension GEMMInt8Tests {
    /// Weights packed once (`PackedWeightCache`) give the bits of per-call packing on every case, both modes,
    /// both tile layouts and the intrinsic paths the CPU has, 1 and 3 threads (the cache is filled by the first
    /// GEMM and reused by the second).
    func testPackedWeightCacheBitIdentical() {
        var paths: [Int8GEMMPath] = [.emulatedZMM, .emulatedYMM]
        if Int8GEMMPath.avx512vnni.isSupported { paths.append(.avx512vnni) }
        if Int8GEMMPath.avxvnni.isSupported { paths.append(.avxvnni) }
        var seed: UInt64 = 7000
        for c in Self.cases {
            seed += 1
            for path in paths {
                for actMax in [127, 32767] {
                    let plain = run(c, path: path, actMax: actMax, accumulate: true, seed: seed)
                    for threads in [1, 3] {
                        let cache = PackedWeightCache()
                        let y = run(c, path: path, actMax: actMax, accumulate: true, threads: threads, seed: seed,
                                    cache: cache, uses: 2)
                        XCTAssertEqual(y, plain, "\(c) \(path) act=\(actMax) threads=\(threads)")
                        XCTAssertGreaterThan(cache.byteCount, 0, "\(c) \(path): the cache was not filled")
                    }
                }
            }
        }
        // Off: the same bits, nothing packed.
        let saved = KernelSettings.packedWeightCache
        defer { KernelSettings.packedWeightCache = saved }
        KernelSettings.packedWeightCache = false
        let cache = PackedWeightCache()
        let c = Self.cases[4]
        XCTAssertEqual(run(c, path: .emulatedZMM, actMax: 32767, accumulate: false, seed: 9, cache: cache),
                       run(c, path: .emulatedZMM, actMax: 32767, accumulate: false, seed: 9))
        XCTAssertEqual(cache.byteCount, 0)
    }

    /// The packed panels belong to the cache object: they go when its last owner (the model's weight views) goes.
    func testPackedWeightCacheReleasedWithOwner() {
        weak var weakCache: PackedWeightCache?
        do {
            let cache = PackedWeightCache()
            weakCache = cache
            _ = run(Self.cases[3], path: .emulatedZMM, actMax: 32767, accumulate: false, seed: 11, cache: cache)
            XCTAssertGreaterThan(cache.byteCount, 0)
        }
        XCTAssertNil(weakCache, "the cache outlived the weight views that held it")
    }

    /// The int8 Winograd weights transformed straight into panels (`glide_winograd_weights_i16_packed`) against
    /// `glide_winograd_weights_i16` + the GEMM's own per-call packing: bit-identical products for both tile
    /// layouts, odd channel counts, K beyond one block, row counts that are not multiples of the tile, and
    /// row ranges that start inside and outside a panel.
    func testWinogradPackedWeightsBitIdentical() {
        var rng = TestRNG(seed: 12)
        for (o, c, n) in [(13, 301, 37), (8, 64, 32), (20, 7, 5)] {
            let q = (0..<(o * c * 9)).map { _ in Int8(max(-127, min(127, Int((rng.float() * 127).rounded())))) }
            let scales = (0..<o).map { _ in abs(rng.float()) * 0.01 + 1e-3 }
            let x = rng.floats(16 * c * n, scale: 3)
            var u = [Int16](repeating: 0, count: 16 * o * c)
            q.withUnsafeBufferPointer { qp in
                u.withUnsafeMutableBufferPointer { up in
                    for oc in 0..<o { glide_winograd_weights_i16(qp.baseAddress! + oc * c * 9, Int32(c), up.baseAddress! + oc * c, o * c) }
                }
            }
            for (layout, mr) in [(Int32(GLIDE_I8_LAYOUT_ZMM), 8), (Int32(GLIDE_I8_LAYOUT_YMM), 6)] {
                let words = glide_wi16_packed_words(Int32(o), Int32(c), Int32(mr))
                var packed = [UInt32](repeating: 0xdead_beef, count: 16 * words)
                let panels = (o + mr - 1) / mr
                q.withUnsafeBufferPointer { qp in
                    packed.withUnsafeMutableBufferPointer { pp in
                        XCTAssertEqual(glide_winograd_weights_i16_packed(qp.baseAddress!, c * 9, Int32(o), Int32(c),
                                                                         Int32(mr), 0, Int32(panels / 2), pp.baseAddress!), 0)
                        XCTAssertEqual(glide_winograd_weights_i16_packed(qp.baseAddress!, c * 9, Int32(o), Int32(c), Int32(mr),
                                                                         Int32(panels / 2), Int32(panels), pp.baseAddress!), 0)
                    }
                }
                XCTAssertFalse(packed.contains(0xdead_beef), "o=\(o) c=\(c) mr=\(mr): words not written")
                for xi in [0, 5, 15] {
                    func gemm(_ usePacked: Bool, _ m0: Int) -> [Float] {
                        var y = [Float](repeating: .nan, count: o * n)
                        u.withUnsafeBufferPointer { up in
                            packed.withUnsafeBufferPointer { pp in
                                scales.withUnsafeBufferPointer { sp in
                                    x.withUnsafeBufferPointer { xp in
                                        y.withUnsafeMutableBufferPointer { yp in
                                            var d = glide_wi16_gemm_desc()
                                            d.M = o; d.N = n; d.K = c
                                            d.w = up.baseAddress! + xi * o * c; d.ldw = c; d.w_scales = sp.baseAddress!
                                            if usePacked { d.w_packed = pp.baseAddress! + xi * words }
                                            d.x = xp.baseAddress! + xi * c * n; d.x_rs = n
                                            d.y = yp.baseAddress!; d.y_rs = n; d.act_qmax = Int32(GLIDE_WI16_QMAX)
                                            _ = glide_gemm_wi16_emulated(&d, 0, m0, 0, n, layout)
                                            _ = glide_gemm_wi16_emulated(&d, m0, o, 0, n, layout)
                                        }
                                    }
                                }
                            }
                        }
                        return y
                    }
                    let ref = gemm(false, 0)
                    XCTAssertFalse(ref.contains { $0.isNaN })
                    for m0 in [0, mr, min(o, 3)] {
                        XCTAssertEqual(gemm(true, m0), ref, "o=\(o) c=\(c) mr=\(mr) xi=\(xi) m0=\(m0)")
                    }
                }
            }
        }
    }
}
