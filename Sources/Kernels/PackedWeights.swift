// Weight panels packed once: a per-weight cache of the int8 vpdpbusd GEMM's weight panels (gemm_int8_vnni.c,
// `glide_i8_prepack`), filled at first use and released with the weight's owner (the model).
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import CKernelsX86

extension KernelSettings {
    nonisolated(unsafe) private static var _packedWeightCache = getenv("GLIDE_NO_WEIGHT_CACHE") == nil

    /// When true (default; env `GLIDE_NO_WEIGHT_CACHE` turns it off) weights that carry a `PackedWeightCache`
    /// keep their int8 vpdpbusd GEMM panels packed after first use instead of packing them on every call.
    /// Results are the same bits either way.
    public static var packedWeightCache: Bool {
        get { _packedWeightCache }
        set { _packedWeightCache = newValue }
    }
}

/// The packed GEMM panels of one weight matrix, kept for the lifetime of this object (which the model's layers
/// hold through `WeightMatrix.packed`, so dropping the model frees them). Filled at the first GEMM that uses the
/// weight on a path that packs the same way every call (today: int8 weights on `vpdpbusd`; the panels hold
/// the same bytes as the weights, plus one int32 sum per row and 256-long K block).
///
/// With `releasesSource` the weight's own pages are dropped once packed (`madvise(MADV_DONTNEED)` on the whole
/// pages inside its byte range), so the packed copy replaces them in memory instead of adding to it. Only for
/// weights in a read-only file mapping (`WeightFile`): the pages reload from the file if anything reads them
/// again. Never for weights in ordinary memory, whose contents `MADV_DONTNEED` would discard.
public final class PackedWeightCache: @unchecked Sendable {
    /// True when the weight's pages are released after packing (see the type's documentation).
    public let releasesSource: Bool

    private struct Key: Hashable { var address: UInt, rows: Int, cols: Int, rowStride: Int, layout: Int32 }
    private struct Entry { var base: UnsafeMutableRawPointer; var bytes: Int; var words: Int }
    private var entries: [Key: Entry] = [:]
    private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)

    /// A cache for one weight matrix.
    public init(releasesSource: Bool = false) {
        self.releasesSource = releasesSource
        pthread_mutex_init(mutex, nil)
    }

    /// Bytes of packed panels held by all caches alive in the process.
    public static var totalByteCount: Int {
        pthread_mutex_lock(totalMutex); defer { pthread_mutex_unlock(totalMutex) }
        return total
    }
    nonisolated(unsafe) private static var total = 0
    nonisolated(unsafe) private static let totalMutex: UnsafeMutablePointer<pthread_mutex_t> = {
        let m = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
        pthread_mutex_init(m, nil)
        return m
    }()
    private static func count(_ bytes: Int) {
        pthread_mutex_lock(totalMutex); total += bytes; pthread_mutex_unlock(totalMutex)
    }

    /// Unmaps the packed panels (packed again at the next use). Not while a GEMM uses them.
    public func release() {
        pthread_mutex_lock(mutex); defer { pthread_mutex_unlock(mutex) }
        for e in entries.values { munmap(e.base, e.bytes); Self.count(-e.bytes) }
        entries = [:]
    }

    deinit {
        for e in entries.values { munmap(e.base, e.bytes); Self.count(-e.bytes) }
        pthread_mutex_destroy(mutex)
        mutex.deallocate()
    }

    /// Bytes of packed panels held.
    public var byteCount: Int {
        pthread_mutex_lock(mutex); defer { pthread_mutex_unlock(mutex) }
        return entries.values.reduce(0) { $0 + $1.bytes }
    }

    /// The packed int8 panels of `weight` in `layout` (GLIDE_I8_LAYOUT_*), packing them on first use:
    /// (panels, row sums), or nil when memory for them could not be mapped.
    func int8Panels(_ weight: WeightMatrix, layout: Int32) -> (UnsafePointer<UInt32>, UnsafePointer<Int32>)? {
        guard case .int8(let q, let scales) = weight.elements else { return nil }
        let key = Key(address: UInt(bitPattern: q), rows: weight.rows, cols: weight.cols, rowStride: weight.rowStride,
                      layout: layout)
        pthread_mutex_lock(mutex); defer { pthread_mutex_unlock(mutex) }
        if let e = entries[key] {
            let words = e.base.assumingMemoryBound(to: UInt32.self)
            return (UnsafePointer(words), UnsafePointer((e.base + 4 * e.words).assumingMemoryBound(to: Int32.self)))
        }
        var words = 0, sums = 0
        glide_i8_prepacked_size(weight.rows, weight.cols, layout, &words, &sums)
        let bytes = max(1, 4 * (words + sums))
        // Anonymous pages of their own: returned to the system when the cache goes, whatever malloc keeps.
        guard let m = mmap(nil, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0), m != MAP_FAILED
        else { return nil }
        let a = m.assumingMemoryBound(to: UInt32.self), s = (m + 4 * words).assumingMemoryBound(to: Int32.self)
        var d = glide_gemm_desc()
        d.M = weight.rows; d.K = weight.cols; d.ldw = weight.rowStride
        d.w_dtype = Int32(GLIDE_W_INT8); d.w = UnsafeRawPointer(q); d.w_scales = scales
        let mr = layout == Int32(GLIDE_I8_LAYOUT_YMM) ? Int(GLIDE_I8_YMM_MR) : Int(GLIDE_I8_ZMM_MR)
        let panels = (weight.rows + mr - 1) / mr
        let blocks = max(1, min(panels, 4 * KernelSettings.threadCount))
        let desc = d
        parallelFor(blocks) { b in
            withUnsafePointer(to: desc) {
                glide_i8_prepack($0, layout, panels * b / blocks, panels * (b + 1) / blocks, a, s)
            }
        }
        entries[key] = Entry(base: m, bytes: bytes, words: words)
        Self.count(bytes)
        if releasesSource && weight.rows > 0 && weight.cols > 0 {
            releasePages(UnsafeRawPointer(q), count: (weight.rows - 1) * weight.rowStride + weight.cols)
        }
        return (UnsafePointer(a), UnsafePointer(s))
    }
}

/// The packed-weight caches of one model: `release()` drops every cache's panels at once (they are packed
/// again at their next use), e.g. when a pipeline is done with the base model but keeps it. Not while a GEMM
/// of the model runs.
public final class PackedWeightGroup: @unchecked Sendable {
    private var caches: [PackedWeightCache] = []
    private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)

    /// An empty group.
    public init() { pthread_mutex_init(mutex, nil) }

    deinit {
        pthread_mutex_destroy(mutex)
        mutex.deallocate()
    }

    /// A new cache that belongs to this group.
    public func makeCache(releasesSource: Bool) -> PackedWeightCache {
        let cache = PackedWeightCache(releasesSource: releasesSource)
        pthread_mutex_lock(mutex); caches.append(cache); pthread_mutex_unlock(mutex)
        return cache
    }

    /// Bytes of packed panels held by the group's caches.
    public var byteCount: Int {
        pthread_mutex_lock(mutex); defer { pthread_mutex_unlock(mutex) }
        return caches.reduce(0) { $0 + $1.byteCount }
    }

    /// Unmaps every cache's packed panels.
    public func release() {
        pthread_mutex_lock(mutex); defer { pthread_mutex_unlock(mutex) }
        for c in caches { c.release() }
    }
}

/// `madvise(MADV_DONTNEED)` on the whole pages inside `[start, start + count)` (a read-only file mapping).
private func releasePages(_ start: UnsafeRawPointer, count: Int) {
    let page = Int(sysconf(Int32(_SC_PAGESIZE)))
    let lo = (Int(bitPattern: start) + page - 1) / page * page
    let hi = (Int(bitPattern: start) + count) / page * page
    if hi > lo { _ = madvise(UnsafeMutableRawPointer(bitPattern: lo), hi - lo, Int32(MADV_DONTNEED)) }
}

/// Sets the prepacked weight fields of `d` when `weight` carries a cache and the kernel packs int8 panels.
func attachPackedWeights(_ d: inout glide_gemm_desc, weight: WeightMatrix, kernel: FastGemmKernel) {
    guard KernelSettings.packedWeightCache, let cache = weight.packed, case .int8Dot(let path) = kernel else { return }
    let layout: Int32
    switch path {
    case .avx512vnni, .emulatedZMM: layout = Int32(GLIDE_I8_LAYOUT_ZMM)
    case .avxvnni, .emulatedYMM: layout = Int32(GLIDE_I8_LAYOUT_YMM)
    case .avx2: return
    }
    guard let (a, s) = cache.int8Panels(weight, layout: layout) else { return }
    let mr = layout == Int32(GLIDE_I8_LAYOUT_YMM) ? Int(GLIDE_I8_YMM_MR) : Int(GLIDE_I8_ZMM_MR)
    d.w_packed = a; d.w_packed_sums = s
    d.w_packed_panels = (weight.rows + mr - 1) / mr; d.w_packed_row0 = 0
}
