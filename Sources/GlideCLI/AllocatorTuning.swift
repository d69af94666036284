#if canImport(Glibc)
import Glibc
#endif

/// Keeps large, short-lived buffers (a step's activations, Winograd scratch) in the heap between steps.
///
/// glibc serves allocations above a threshold (at most 32 MiB) with a fresh `mmap` and unmaps them on free, so
/// every step faulted its large activation buffers in again page by page (63 s of system time in a whole
/// text-to-256 int8 run; 10 s with this setting, BENCHMARKS.md section 4). Raising the mmap and trim thresholds
/// lets freed blocks be reused. The live set is the same, the pages are merely kept.
/// `mallopt` is looked up at run time (Swift's Glibc module does not export `<malloc.h>`); elsewhere this does nothing.
enum AllocatorTuning {
    /// Largest block still taken from the heap (larger ones use `mmap` as before).
    static let mmapThresholdBytes: Int32 = 1 << 30
    /// What glibc versions that cap the mmap threshold at `HEAP_MAX_SIZE / 2` accept on 64-bit systems.
    static let cappedMmapThresholdBytes: Int32 = 32 << 20

    /// Returns whether glibc accepted both settings.
    @discardableResult
    static func apply() -> Bool {
        #if canImport(Glibc)
        typealias MalloptFunction = @convention(c) (Int32, Int32) -> Int32
        guard let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "mallopt") else { return false }
        let mallopt = unsafeBitCast(symbol, to: MalloptFunction.self)
        let trimThreshold: Int32 = -1, mmapThreshold: Int32 = -3   // M_TRIM_THRESHOLD, M_MMAP_THRESHOLD in <malloc.h>
        let mmapAccepted = mallopt(mmapThreshold, mmapThresholdBytes) == 1
            || mallopt(mmapThreshold, cappedMmapThresholdBytes) == 1
        return mmapAccepted && mallopt(trimThreshold, mmapThresholdBytes) == 1
        #else
        return false
        #endif
    }
}
