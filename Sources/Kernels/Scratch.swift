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

/// The calling thread's kernel scratch stack seen from outside the kernels: its depth, its peak per window, and
/// memory lent to it for a while (the UNet's activation slab, between two activations: `ActivationPool`).
public enum KernelScratch {
    /// Bytes in use on the calling thread's stack (0: no kernel frame open).
    public static var depth: Int { glide_scratch_mark() }

    /// The deepest the stack went (bytes) since the last call.
    public static func takePeakBytes() -> Int { glide_scratch_take_peak() }

    /// Serves the calling thread's stack from `base` (`bytes`, 64-byte aligned) until `endLoan()`; false (nothing
    /// done) when the stack is in use.
    public static func lend(_ base: UnsafeMutableRawPointer, bytes: Int) -> Bool { glide_scratch_lend_block(base, bytes) != 0 }

    /// Serves every frame of the calling thread's stack from the heap (one counted allocation each, freed when
    /// released, as without a stack) until `endLoan()`; false (nothing done) when the stack is in use.
    public static func lendNothing() -> Bool { glide_scratch_lend_block(nil, 0) != 0 }

    /// Frees the calling thread's own block (its stack must be empty and not on loan).
    public static func releaseOwnBlock() { glide_scratch_trim() }

    /// Back to the thread's own block; false (nothing done) when the stack is in use.
    @discardableResult
    public static func endLoan() -> Bool { glide_scratch_end_loan() != 0 }
}

/// Bytes of the calling thread's kernel scratch stack.
public func kernelScratchByteCount() -> Int { glide_scratch_thread_bytes() }

/// Frees the calling thread's kernel scratch stack (it must not be in use); the next kernel call grows it again.
public func releaseKernelScratch() { glide_scratch_trim() }
