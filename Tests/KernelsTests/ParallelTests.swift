import XCTest
@testable import Kernels

/// The spinning worker pool (`pool.c`) against `DispatchQueue.concurrentPerform`: same items, same ranges, same
/// results; nested and concurrent regions fall back to running without it.
final class ParallelTests: XCTestCase {
    private func withPool<R>(_ on: Bool, threads: Int, _ body: () throws -> R) rethrows -> R {
        let saved = (KernelSettings.spinningPool, KernelSettings.threadCount)
        defer { (KernelSettings.spinningPool, KernelSettings.threadCount) = saved }
        KernelSettings.spinningPool = on
        KernelSettings.threadCount = threads
        return try body()
    }

    func testEveryItemRunsOnceWithAndWithoutThePool() {
        for threads in [2, 3, 5] {
            for count in [1, 2, 3, 7, 64, 1001] {
                for on in [true, false] {
                    let hits = UnsafeMutableBufferPointer<Int>.allocate(capacity: count)
                    defer { hits.deallocate() }
                    hits.initialize(repeating: 0)
                    withPool(on, threads: threads) { parallelFor(count) { hits[$0] += 1 } }
                    XCTAssertEqual(Array(hits), Array(repeating: 1, count: count), "threads \(threads) count \(count) pool \(on)")
                }
            }
        }
    }

    func testManyShortRegionsInARow() {
        let count = 4096
        let out = UnsafeMutableBufferPointer<Float>.allocate(capacity: count)
        defer { out.deallocate() }
        out.initialize(repeating: 0)
        withPool(true, threads: 2) {
            for round in 0..<2000 { parallelFor(count / 64) { i in for j in (i * 64)..<((i + 1) * 64) { out[j] += Float(round % 3) } } }
        }
        let expected = Float((0..<2000).reduce(0) { $0 + $1 % 3 })
        XCTAssertTrue(out.allSatisfy { $0 == expected })
    }

    func testNestedRegionRunsInsideItsItem() {
        let outer = 6, inner = 5
        let hits = UnsafeMutableBufferPointer<Int>.allocate(capacity: outer * inner)
        defer { hits.deallocate() }
        hits.initialize(repeating: 0)
        withPool(true, threads: 2) {
            parallelFor(outer) { o in parallelFor(inner) { i in hits[o * inner + i] += 1 } }
        }
        XCTAssertEqual(Array(hits), Array(repeating: 1, count: outer * inner))
    }

    func testKernelResultsDoNotDependOnThePool() {
        let m = 37, k = 300, n = 129
        var rng = SystemRandomNumberGenerator()
        let w = (0..<(m * k)).map { _ in Float.random(in: -1...1, using: &rng) }
        let x = (0..<(k * n)).map { _ in Float.random(in: -1...1, using: &rng) }
        func run(_ on: Bool, _ threads: Int) -> [Float] {
            var y = [Float](repeating: 0, count: m * n)
            w.withUnsafeBufferPointer { wp in x.withUnsafeBufferPointer { xp in y.withUnsafeMutableBufferPointer { yp in
                withPool(on, threads: threads) {
                    gemm(weight: WeightMatrix(rows: m, cols: k, f32: wp.baseAddress!),
                         input: MatrixOperand(xp.baseAddress!, rowStride: n, colStride: 1), columns: n,
                         output: MutableMatrixOperand(yp.baseAddress!, rowStride: n, colStride: 1))
                }
            } } }
            return y
        }
        let reference = run(false, 1)
        for threads in [2, 3] { XCTAssertEqual(run(true, threads), reference, "threads \(threads)"); XCTAssertEqual(run(false, threads), reference) }
    }
}
