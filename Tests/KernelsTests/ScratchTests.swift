// The kernels' scratch stack (glide_scratch.h, ScratchFrame): LIFO frames, 64-byte alignment, growth to the deepest
// use seen, and no heap allocation once grown.
import XCTest
import CKernelsX86
@testable import Kernels

final class ScratchTests: XCTestCase {
    /// Two nested frames as a kernel and the kernel it calls would open them; returns their buffers' addresses.
    private func nestedUse(outer: Int, inner: Int) -> [UnsafeMutableRawPointer] {
        let frame = ScratchFrame(); defer { frame.release() }
        let a = frame.allocate(Float.self, count: outer)
        a.initialize(repeating: 1, count: outer)
        let b = frame.allocate(UInt8.self, count: 3)
        let innerFrame = ScratchFrame()
        let c = frame.allocate(Int32.self, count: inner)
        c.initialize(repeating: 7, count: inner)
        XCTAssertEqual(a[outer - 1], 1, "an inner buffer overlapped an outer one")
        innerFrame.release()
        XCTAssertEqual(glide_scratch_mark(), innerFrame.mark)
        return [UnsafeMutableRawPointer(a), UnsafeMutableRawPointer(b), UnsafeMutableRawPointer(c)]
    }

    func testFramesAreAlignedLIFOAndStopAllocatingOnceGrown() {
        releaseKernelScratch()
        XCTAssertEqual(glide_scratch_mark(), 0)
        let before = HeapAllocations.current
        let first = nestedUse(outer: 100_000, inner: 50_001)
        XCTAssertEqual(glide_scratch_mark(), 0, "released frames leave the stack empty")
        for p in first { XCTAssertEqual(Int(bitPattern: p) % 64, 0) }
        let grown = HeapAllocations.current
        XCTAssertGreaterThan(grown.count, before.count, "the first use allocates (counted)")
        XCTAssertGreaterThanOrEqual(kernelScratchByteCount(), 4 * 100_000 + 64 + 4 * 50_001)
        // The same use, and any smaller one, is served by the grown block: no heap allocation.
        let again = nestedUse(outer: 100_000, inner: 50_001)
        _ = nestedUse(outer: 10, inner: 20_000)
        let third = nestedUse(outer: 100_000, inner: 50_001)
        XCTAssertEqual(HeapAllocations.current, grown)
        XCTAssertEqual(again.map { Int(bitPattern: $0) }, third.map { Int(bitPattern: $0) }, "same places every time")
        // A deeper use overflows once (counted), and the block grows when the stack is empty again.
        _ = nestedUse(outer: 300_000, inner: 10)
        let deeper = HeapAllocations.current
        XCTAssertGreaterThan(deeper.count, grown.count)
        _ = nestedUse(outer: 300_000, inner: 10)
        XCTAssertEqual(HeapAllocations.current, deeper)
        releaseKernelScratch()
        XCTAssertEqual(kernelScratchByteCount(), 0)
    }

    func testEachThreadHasItsOwnStack() {
        let frame = ScratchFrame(); defer { frame.release() }
        let mine = frame.allocate(Float.self, count: 1000)
        mine.initialize(repeating: 3, count: 1000)
        let saved = KernelSettings.threadCount
        defer { KernelSettings.threadCount = saved }
        KernelSettings.threadCount = 2
        parallelFor(8) { i in
            let inner = ScratchFrame(); defer { inner.release() }
            let p = inner.allocate(Float.self, count: 4096)
            p.initialize(repeating: Float(i), count: 4096)
        }
        XCTAssertEqual((0..<1000).map { mine[$0] }, [Float](repeating: 3, count: 1000))
    }
}
