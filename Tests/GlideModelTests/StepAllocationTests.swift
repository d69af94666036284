// A diffusion step after the first allocates nothing through the project's allocators (kernel scratch stacks and
// the UNet's activation slab, `HeapAllocations`), and the replayed slab gives the same bits as the first step.
import XCTest
@testable import Kernels
import WeightFormat
@testable import GlideModel

extension NetworkTests {
    /// `ranKernels`: the kernels of a last step (profile kind and shape), to check which paths ran.
    private func assertStepsAfterTheFirstAllocateNothing(_ variant: String, dtype: WeightDType, threads: Int,
                                                         file: StaticString = #filePath, line: UInt = #line,
                                                         ranKernels: (([String]) -> Void)? = nil) throws {
        let saved = KernelSettings.threadCount
        defer { KernelSettings.threadCount = saved }
        KernelSettings.threadCount = threads
        let model = try Text2ImUNet(path: try convertedWeightFile(variant, dtype: dtype))
        let i = try inputs(variant)
        let text = try model.encodeText(tokens: i.tokens, mask: i.mask, batch: i.x.shape[0])
        func step() throws -> (FloatTensor, HeapAllocations) {
            let before = HeapAllocations.current
            let out = try model.forward(x: i.x, timesteps: i.timesteps, text: text, lowRes: i.extra["low_res"],
                                        inpaintImage: i.extra["inpaint_image"], inpaintMask: i.extra["inpaint_mask"])
            return (out, HeapAllocations.current - before)
        }
        let (first, warmUp) = try step()
        XCTAssertGreaterThan(warmUp.large, 0, "the first step allocates its buffers (counted)", file: file, line: line)
        XCTAssertGreaterThan(model.activationPoolByteCount, 0, file: file, line: line)
        for n in 2...3 {
            let (out, counted) = try step()
            XCTAssertEqual(counted.count, 0, "\(variant) \(dtype) \(threads) threads, step \(n): \(counted)", file: file, line: line)
            XCTAssertEqual(out, first, "\(variant) \(dtype) step \(n) differs from step 1", file: file, line: line)
        }
        model.releaseResidentMemory()
        XCTAssertEqual(model.activationPoolByteCount, 0, file: file, line: line)
        let (afterRelease, _) = try step()
        XCTAssertEqual(afterRelease, first, file: file, line: line)
        if let ranKernels {
            KernelProfiler.start()
            defer { KernelProfiler.stop(); KernelProfiler.reset() }
            _ = try step()
            ranKernels(KernelProfiler.entries.map { "\($0.kind) \($0.shape)" })
        }
    }

    func testBaseStepsAfterTheFirstAllocateNothing() throws {
        try assertStepsAfterTheFirstAllocateNothing("tiny_base", dtype: .f32, threads: 1)
        try assertStepsAfterTheFirstAllocateNothing("tiny_base", dtype: .int8, threads: 2)
    }

    func testUpsamplerStepsAfterTheFirstAllocateNothing() throws {
        try assertStepsAfterTheFirstAllocateNothing("tiny_super_res", dtype: .int8, threads: 1)
        try assertStepsAfterTheFirstAllocateNothing("tiny_super_res", dtype: .f32, threads: 2)
    }

    /// Every integer int8 Winograd path on the tiny models (below the tiles' automatic minimum sizes: forced), with
    /// the fused and the materialised GroupNorm pre-activation.
    func testInt8WinogradPathsAfterTheFirstStepAllocateNothing() throws {
        let saved = (KernelSettings.int8WinogradTile, KernelSettings.int8WinogradMinimumTilesOverride,
                     KernelSettings.int8WinogradFusedOutput, KernelSettings.int8WinogradF42FusedOutput,
                     KernelSettings.fusedPreActivation)
        defer {
            (KernelSettings.int8WinogradTile, KernelSettings.int8WinogradMinimumTilesOverride,
             KernelSettings.int8WinogradFusedOutput, KernelSettings.int8WinogradF42FusedOutput,
             KernelSettings.fusedPreActivation) = saved
        }
        KernelSettings.int8WinogradMinimumTilesOverride = 1
        let paths: [(Int8WinogradTile, f22FusedOutput: Bool?, f42FusedOutput: Bool?, fusedNorm: Bool)] = [
            (.f4x4, nil, true, false), (.f4x4, nil, false, false),
            (.f4x2, nil, true, true), (.f4x2, nil, false, true), (.f4x2, nil, nil, false),
            (.f2x2, nil, nil, true), (.f2x2, false, nil, false),
        ]
        for (tile, f22, f42, fusedNorm) in paths {
            KernelSettings.int8WinogradTile = tile
            KernelSettings.int8WinogradFusedOutput = f22
            KernelSettings.int8WinogradF42FusedOutput = f42
            KernelSettings.fusedPreActivation = fusedNorm
            let fusedOutput = tile == .f2x2 ? f22 != false : f42 ?? (KernelSettings.int8WinogradKernel == .avx512vnni)
            let fusedPreActivation = fusedNorm && tile == .f4x2
            for (variant, threads) in [("tiny_base", 2), ("tiny_super_res", 1)] {
                try assertStepsAfterTheFirstAllocateNothing(variant, dtype: .int8, threads: threads) { kernels in
                    let winograd = kernels.filter { $0.hasPrefix("winograd") }
                    let name = tile == .f2x2 ? nil : "F(\(tile.rawValue))"
                    XCTAssert(winograd.contains { $0.hasPrefix("winograd input transform") && (name.map($0.contains) ?? !$0.contains("F(")) },
                              "\(variant) \(tile): \(winograd)")
                    XCTAssertEqual(winograd.contains { $0.hasPrefix("winograd gemm+output") }, fusedOutput,
                                   "\(variant) \(tile) fused output \(fusedOutput): \(winograd)")
                    XCTAssertEqual(kernels.contains { $0.hasSuffix("+preact") }, fusedPreActivation,
                                   "\(variant) \(tile) pre-activation: \(kernels)")
                }
            }
        }
    }

    func testPassesOfChangingShapesGiveTheSameBitsAsAFreshModel() throws {
        let path = try convertedWeightFile("tiny_base", dtype: .int8)
        let model = try Text2ImUNet(path: path)
        let i = try inputs("tiny_base")
        let text = try model.encodeText(tokens: i.tokens, mask: i.mask, batch: i.x.shape[0])
        let (b, h, w) = (i.x.shape[0], i.x.shape[2], i.x.shape[3])
        let larger = FloatTensor(shape: [b, 3, 2 * h, 2 * w], values: (0..<(b * 3 * 4 * h * w)).map { Float($0 % 17) / 8 - 1 })
        func run(_ m: Text2ImUNet, _ x: FloatTensor) throws -> FloatTensor {
            try m.forward(x: x, timesteps: i.timesteps, text: text)
        }
        // Planned on the fixture's shape, then shapes alternate: every plan breaks, the pool stops planning.
        let expectedSmall = try run(model, i.x)
        XCTAssertEqual(try run(model, i.x), expectedSmall)
        let expectedLarge = try run(try Text2ImUNet(path: path), larger)
        for _ in 0..<3 {
            XCTAssertEqual(try run(model, larger), expectedLarge)
            XCTAssertEqual(try run(model, i.x), expectedSmall)
        }
        XCTAssertEqual(model.activationPoolByteCount, 0, "no slab kept once passes keep changing")
    }
}
