// KernelProfiler: records op kind + shape per kernel entry, nests without double counting, and is silent when off.
import XCTest
@testable import Kernels

final class ProfilerTests: XCTestCase {
    override func tearDown() {
        KernelProfiler.stop()
        KernelProfiler.reset()
    }

    private func runConvAndNorm(threads: Int) {
        var rng = TestRNG(seed: 7)
        let g = Conv2dGeometry(batch: 2, inChannels: 16, height: 12, width: 12, outChannels: 8, kernelSize: 3,
                               stride: 1, padding: 1)
        let w = TypedWeights(rows: 8, cols: 16 * 9, rng: &rng)
        let x = rng.floats(2 * 16 * 144)
        var y = [Float](repeating: 0, count: 2 * 8 * 144)
        KernelSettings.threadCount = threads
        w.with("f32") { weight in
            conv2d(input: x, weight: weight, bias: nil, output: &y, geometry: g)
        }
        y.withUnsafeMutableBufferPointer { p in
            groupNorm(input: p.baseAddress!, output: p.baseAddress!, batch: 2, channels: 8, spatial: 144, groups: 4,
                      gamma: nil, beta: nil, silu: true)
        }
    }

    func testOffRecordsNothing() {
        KernelProfiler.reset()
        runConvAndNorm(threads: 1)
        XCTAssertTrue(KernelProfiler.entries.isEmpty)
    }

    func testRecordsKindsShapesAndExclusiveTimesAddUp() {
        let saved = KernelSettings.threadCount
        defer { KernelSettings.threadCount = saved }
        for threads in [1, 2] {
            KernelProfiler.start()
            let t0 = KernelProfiler.now()
            runConvAndNorm(threads: threads)
            runConvAndNorm(threads: threads)
            let total = KernelProfiler.now() - t0
            KernelProfiler.stop()
            let entries = KernelProfiler.entries
            let conv = entries.first { $0.kind.hasPrefix("conv2d") }
            XCTAssertNotNil(conv)
            XCTAssertEqual(conv?.calls, 2)
            XCTAssertEqual(conv?.shape, "3x3 s1 f32 16->8 2x12x12")
            XCTAssertEqual(conv?.flops ?? 0, 2 * Conv2dGeometry(batch: 2, inChannels: 16, height: 12, width: 12,
                                                                outChannels: 8, kernelSize: 3, padding: 1).flops)
            let norm = entries.first { $0.kind == "group norm" }
            XCTAssertEqual(norm?.shape, "2x8x144 +silu")
            XCTAssertEqual(norm?.calls, 2)
            // No gemm entry: the convolution's own GEMM belongs to it.
            XCTAssertFalse(entries.contains { $0.kind == "gemm" })
            let attributed = entries.reduce(0) { $0 + $1.exclusiveSeconds + $1.packActivationSeconds + $1.packWeightSeconds }
            XCTAssertLessThanOrEqual(attributed, total * 1.0001 + 1e-6)
            for e in entries where e.parent == nil {
                XCTAssertLessThanOrEqual(e.exclusiveSeconds, e.inclusiveSeconds + 1e-9)
            }
        }
    }

    func testNestedRegionsAreExclusive() {
        KernelProfiler.start()
        let outer = KernelProfiler.begin("outer", "a")
        let inner = KernelProfiler.begin("inner", "b")
        var s = 0.0
        for i in 0..<200_000 { s += Double(i).squareRoot() }
        KernelProfiler.end(inner)
        let skipped = KernelProfiler.begin("gemm", "c", unlessNested: true)
        XCTAssertEqual(skipped, -1)
        KernelProfiler.end(skipped)
        KernelProfiler.end(outer)
        KernelProfiler.stop()
        XCTAssertGreaterThan(s, 0)
        let e = KernelProfiler.entries
        XCTAssertEqual(e.map(\.kind), ["outer", "inner"])
        XCTAssertEqual(e[1].parent, 0)
        XCTAssertEqual(e[0].inclusiveSeconds, e[0].exclusiveSeconds + e[1].inclusiveSeconds, accuracy: 1e-6)
        // Off again: begin returns -1 and evaluates nothing.
        var evaluated = false
        let token = KernelProfiler.begin("x", { evaluated = true; return "y" }())
        XCTAssertEqual(token, -1)
        XCTAssertFalse(evaluated)
    }
}
