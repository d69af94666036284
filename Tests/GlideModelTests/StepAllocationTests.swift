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
}
