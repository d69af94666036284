// Scratch buffers of kernels from the calling thread's grow-only stack (CKernelsX86 scratch.c), and the counters
// of heap allocations made by the project's own allocation functions.
import CKernelsX86

/// A frame on the calling thread's scratch stack: `allocate` hands out uninitialised 64-byte aligned buffers that
/// stay valid until `release()` (buffers of frames opened later must be released first). The stack grows to the
/// deepest use seen and is then reused, so a diffusion step allocates nothing from the heap after the first.
struct ScratchFrame {
    let mark: Int

    init() { mark = glide_scratch_mark() }

    /// `count` (at least 1) uninitialised elements of `T`.
    func allocate<T>(_ type: T.Type, count: Int) -> UnsafeMutablePointer<T> {
        let n = max(count, 1)
        guard let raw = glide_scratch_alloc(MemoryLayout<T>.stride * n) else {
            fatalError("out of memory: \(n) scratch elements of \(T.self)")
        }
        return raw.bindMemory(to: T.self, capacity: n)
    }

    /// Pops this frame's buffers (and any frame opened after it).
    func release() { glide_scratch_release(mark) }
}

/// Heap allocations counted by the project's own allocation functions (see `HeapAllocations.current`).
public struct HeapAllocations: Equatable, Sendable {
    /// Allocations counted.
    public var count: Int
    /// Those of 64 KiB or more.
    public var large: Int
    /// Their bytes.
    public var bytes: Int

    /// The counters so far. They cover the kernels' scratch stacks (the blocks and any call that did not fit) and the
    /// allocators that report to `count(bytes:)` (the UNet's activation pool and its small activations); not other
    /// allocations (Swift arrays, buffers of kernels that do not use the scratch stack yet).
    public static var current: HeapAllocations {
        let c = glide_heap_allocations()
        return HeapAllocations(count: Int(c.count), large: Int(c.large), bytes: Int(c.bytes))
    }

    /// Counts one heap allocation of `bytes` made outside the kernels.
    public static func count(bytes: Int) { glide_count_heap_allocation(bytes) }

    /// The difference of two readings.
    public static func - (a: HeapAllocations, b: HeapAllocations) -> HeapAllocations {
        HeapAllocations(count: a.count - b.count, large: a.large - b.large, bytes: a.bytes - b.bytes)
    }

    /// Returns the malloc heap's free pages to the system (glibc `malloc_trim`; nothing elsewhere).
    public static func trimMallocHeap() { glide_malloc_trim() }

    /// glibc's heap size (arena plus mmapped blocks, from `mallinfo2`) and its bytes in use; zeros elsewhere. A
    /// cross-check of the counters that sees every allocator: a heap that does not grow across steps was reused.
    public static var mallocHeap: (total: Int, inUse: Int) {
        var total = 0, inUse = 0
        glide_malloc_heap_bytes(&total, &inUse)
        return (total, inUse)
    }
}

/// Bytes of the calling thread's kernel scratch stack.
public func kernelScratchByteCount() -> Int { glide_scratch_thread_bytes() }

/// Frees the calling thread's kernel scratch stack (it must not be in use); the next kernel call grows it again.
public func releaseKernelScratch() { glide_scratch_trim() }
