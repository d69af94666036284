// Transformed Winograd weights kept across calls: a per-model cache of the integer int8 Winograd's exact int16
// weight panels (glide_winograd_weights_i16_packed / glide_wf42_weights_i16_packed / glide_wf44_weights_i16_packed),
// under a byte budget.
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import CKernelsX86

extension KernelSettings {
    nonisolated(unsafe) private static var _winogradWeightCache = getenv("GLIDE_NO_WINOGRAD_CACHE") == nil

    /// When true (default; env `GLIDE_NO_WINOGRAD_CACHE` turns it off) int8 weights that carry a
    /// `WinogradWeightCache` keep their transformed Winograd panels (within the cache's budget) instead of
    /// transforming them at every call. Results are the same bits either way.
    public static var winogradWeightCache: Bool {
        get { _winogradWeightCache }
        set { _winogradWeightCache = newValue }
    }
}

/// The transformed int16 Winograd weight panels of the int8 3x3 convolutions of one owner (a model), kept while
/// the owner lives, up to `budget` bytes: a weight whose panels would exceed the budget is transformed per call
/// as without a cache (weights are admitted in first-use order). Entries are keyed by the weight's address,
/// shape, tile and GEMM panel height, so one cache serves every weight of a model.
///
/// The panels take 32 (F(2x2)), 48 (F(4x2)) or 72 (F(4x4)) bytes per input/output channel pair against the
/// weights' 9. With
/// `releasesSource` the int8 weight's own pages are dropped once transformed (`madvise(MADV_DONTNEED)` on the
/// whole pages inside its byte range), so the cache costs the difference only. Only for weights in a read-only
/// file mapping (`WeightFile`): the pages reload from the file if anything reads them again.
public final class WinogradWeightCache: @unchecked Sendable {
    /// True when the weights' pages are released once their panels are cached.
    public let releasesSource: Bool

    struct Key: Hashable { var address: UInt, outChannels: Int, inChannels: Int, rowStride: Int, positions: Int, mr: Int }
    private struct Entry { var base: UnsafeMutableRawPointer; var bytes: Int; var maxL1: [Int32] }
    private var entries: [Key: Entry] = [:]
    private var held = 0
    private var _budget: Int
    private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)

    /// An empty cache admitting up to `budget` bytes of panels.
    public init(budget: Int, releasesSource: Bool = false) {
        _budget = max(0, budget)
        self.releasesSource = releasesSource
        pthread_mutex_init(mutex, nil)
    }

    deinit {
        for e in entries.values { munmap(e.base, e.bytes); Self.count(-e.bytes) }
        pthread_mutex_destroy(mutex)
        mutex.deallocate()
    }

    /// Bytes of panels the cache may hold. Lowering it does not drop panels already held (`release()` does).
    public var budget: Int {
        get { pthread_mutex_lock(mutex); defer { pthread_mutex_unlock(mutex) }; return _budget }
        set { pthread_mutex_lock(mutex); _budget = max(0, newValue); pthread_mutex_unlock(mutex) }
    }

    /// Bytes of panels held.
    public var byteCount: Int {
        pthread_mutex_lock(mutex); defer { pthread_mutex_unlock(mutex) }
        return held
    }

    /// Weights whose panels are held.
    public var entryCount: Int {
        pthread_mutex_lock(mutex); defer { pthread_mutex_unlock(mutex) }
        return entries.count
    }

    /// Unmaps every panel (transformed again, and cached again within the budget, at their next use). Not while a
    /// convolution uses them.
    public func release() {
        pthread_mutex_lock(mutex); defer { pthread_mutex_unlock(mutex) }
        for e in entries.values { munmap(e.base, e.bytes); Self.count(-e.bytes) }
        entries = [:]
        held = 0
    }

    /// Bytes of panels held by all Winograd weight caches alive in the process.
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

    /// The cached panels of `key` (`words` uint32 words), transformed by `fill` (which writes them and returns
    /// the per-position L1 maxima `maxL1` of F(4x2) / F(4x4), or nil on failure) at the first use when they fit the budget:
    /// (panels, maxL1), or
    /// nil when they do not fit or could not be made (the caller transforms into its own buffer).
    func panels(_ key: Key, words: Int, source: UnsafeRawPointer, sourceBytes: Int,
                fill: (UnsafeMutablePointer<UInt32>) -> [Int32]?) -> (UnsafePointer<UInt32>, [Int32])? {
        pthread_mutex_lock(mutex); defer { pthread_mutex_unlock(mutex) }
        if let e = entries[key] { return (UnsafePointer(e.base.assumingMemoryBound(to: UInt32.self)), e.maxL1) }
        let bytes = max(1, 4 * words)
        guard held + bytes <= _budget else { return nil }
        // Anonymous pages of their own: returned to the system when the cache goes, whatever malloc keeps.
        guard let m = mmap(nil, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0), m != MAP_FAILED
        else { return nil }
        let u = m.bindMemory(to: UInt32.self, capacity: max(1, words))
        guard let maxL1 = fill(u) else { munmap(m, bytes); return nil }
        entries[key] = Entry(base: m, bytes: bytes, maxL1: maxL1)
        held += bytes
        Self.count(bytes)
        if releasesSource { releaseSourcePages(source, count: sourceBytes) }
        return (UnsafePointer(u), maxL1)
    }
}

/// The transformed weights of one integer Winograd call: cached panels, or a buffer of the call's own.
struct WinogradWeightPanels {
    let u: UnsafePointer<UInt32>
    /// Per position, the largest sum of |U'| over a row's 256-long K block (F(4x2), F(4x4); empty for F(2x2)).
    let maxL1: [Int32]
    private let owned: UnsafeMutablePointer<UInt32>?

    /// The panels of int8 weights `q` (`o` x `c` 3x3 kernels, row stride `rowStride`) for `positions` (16, 24 or 36)
    /// transformed positions of `xiWords` words each, from `cache` when it holds them or admits them, else
    /// transformed by `fill` into a buffer of their own (freed by `deallocate()`).
    init(cache: WinogradWeightCache?, q: UnsafePointer<Int8>, rowStride: Int, outChannels o: Int, inChannels c: Int,
         positions: Int, mr: Int, xiWords: Int, fill: (UnsafeMutablePointer<UInt32>) -> [Int32]?) {
        let words = positions * xiWords
        if KernelSettings.winogradWeightCache, let cache {
            let key = WinogradWeightCache.Key(address: UInt(bitPattern: q), outChannels: o, inChannels: c,
                                              rowStride: rowStride, positions: positions, mr: mr)
            let sourceBytes = o > 0 && c > 0 ? (o - 1) * rowStride + c : 0
            if let (u, maxL1) = cache.panels(key, words: words, source: UnsafeRawPointer(q), sourceBytes: sourceBytes,
                                            fill: fill) {
                self.u = u; self.maxL1 = maxL1; owned = nil
                return
            }
        }
        let buffer = UnsafeMutablePointer<UInt32>.allocate(capacity: max(1, words))
        guard let maxL1 = fill(buffer) else {
            buffer.deallocate()
            preconditionFailure("conv2d: out of memory for the Winograd weights")
        }
        u = UnsafePointer(buffer); self.maxL1 = maxL1; owned = buffer
    }

    /// Frees the call's own buffer (cached panels stay).
    func deallocate() { owned?.deallocate() }
}

/// `madvise(MADV_DONTNEED)` on the whole pages inside `[start, start + count)` (a read-only file mapping).
private func releaseSourcePages(_ start: UnsafeRawPointer, count: Int) {
    let page = Int(sysconf(Int32(_SC_PAGESIZE)))
    let lo = (Int(bitPattern: start) + page - 1) / page * page
    let hi = (Int(bitPattern: start) + count) / page * page
    if hi > lo { _ = madvise(UnsafeMutableRawPointer(bitPattern: lo), hi - lo, Int32(MADV_DONTNEED)) }
}
