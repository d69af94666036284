// A diffusion step after the first allocates nothing through the project's allocators (kernel scratch stacks and
// the UNet's activation slab, `HeapAllocations`), and the replayed slab gives the same bits as the first step.
import XCTest
import Kernels
import WeightFormat
@testable import GlideModel

extension NetworkTests {
    private func assertStepsAfterTheFirstAllocateNothing(_ variant: String, dtype: WeightDType, threads: Int,
                                                         file: StaticString = #filePath, line: UInt = #line) throws {
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
    }

    func testBaseStepsAfterTheFirstAllocateNothing() throws {
        try assertStepsAfterTheFirstAllocateNothing("tiny_base", dtype: .f32, threads: 1)
        try assertStepsAfterTheFirstAllocateNothing("tiny_base", dtype: .int8, threads: 2)
    }

    func testUpsamplerStepsAfterTheFirstAllocateNothing() throws {
        try assertStepsAfterTheFirstAllocateNothing("tiny_super_res", dtype: .int8, threads: 1)
        try assertStepsAfterTheFirstAllocateNothing("tiny_super_res", dtype: .f32, threads: 2)
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
