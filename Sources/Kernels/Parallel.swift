// A minimal deterministic parallel-for over Dispatch (work is split by output index only).
import Dispatch
import CKernelsX86
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Runs `body(i)` for `i in 0..<count` on up to `KernelSettings.threadCount` threads. Items are split into
/// contiguous static ranges, one per thread; `body` must only write outputs owned by item `i`.
func parallelFor(_ count: Int, _ body: (Int) -> Void) {
    let threads = min(KernelSettings.threadCount, count)
    if threads <= 1 {
        for i in 0..<count { body(i) }
        return
    }
    withoutActuallyEscaping(body) { body in
        if KernelSettings.spinningPool {
            var job = ParallelJob(count: count, body: body)   // on the stack: no allocation per region
            let ran = withUnsafeMutablePointer(to: &job) { jobPointer in
                glide_pool_run(threads, { ctx, t, threads in
                    let job = ctx!.assumingMemoryBound(to: ParallelJob.self).pointee
                    let lo = job.count * t / threads, hi = job.count * (t + 1) / threads
                    for i in lo..<hi { job.body(i) }
                }, jobPointer)
            }
            if ran != 0 { return }
        }
        let box = UnsafeSendableBox(body)
        DispatchQueue.concurrentPerform(iterations: threads) { t in
            let lo = count * t / threads, hi = count * (t + 1) / threads
            for i in lo..<hi { box.value(i) }
        }
    }
}

/// One parallel region handed to the C pool (`glide_pool_run`).
private struct ParallelJob {
    let count: Int
    let body: (Int) -> Void
}

extension KernelSettings {
    /// Parallel regions run on persistent workers that spin briefly before sleeping (`pool.c`), instead of
    /// `DispatchQueue.concurrentPerform` (which wakes its threads per region: a step has thousands of short
    /// regions). The same static ranges either way, so the same results. Env `GLIDE_DISPATCH_THREADS` turns it off.
    nonisolated(unsafe) public static var spinningPool = getenv("GLIDE_DISPATCH_THREADS") == nil
}

/// Number of chunks of 4096 elements used to split flat element-wise work.
@inline(__always) func chunks(_ count: Int) -> Int { (count + 4095) / 4096 }
/// The element range of chunk `i` (see `chunks`).
@inline(__always) func chunkRange(_ i: Int, _ count: Int) -> (Int, Int) { (i * 4096, min(count, (i + 1) * 4096)) }

/// Carries a non-Sendable value into concurrent work whose safety the caller guarantees.
struct UnsafeSendableBox<T>: @unchecked Sendable {
    let value: T
    init(_ value: T) { self.value = value }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Monotonic clock in seconds (for benchmarks).
public func monotonicSeconds() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) * 1e-9
}

/// CPU time consumed by the calling thread, in seconds (for contention-insensitive single-thread benchmarks).
public func threadCPUSeconds() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) * 1e-9
}
