// Scratch memory for kernels: a grow-only stack per thread, so a diffusion step allocates nothing after the first.
#pragma once
#include <stddef.h>

/// The calling thread's scratch stack position, to hand back to `glide_scratch_release`.
size_t glide_scratch_mark(void);
/// `bytes` (rounded up to 64) of uninitialised, 64-byte aligned scratch on the calling thread's stack, valid until
/// `glide_scratch_release` of a mark taken before it; NULL when memory runs out. Served from one block that grows
/// to the deepest stack seen (the growth happens when the stack is next empty); only a call that does not fit
/// allocates from the heap, and is counted.
void *glide_scratch_alloc(size_t bytes);
/// Pops everything allocated on the calling thread since `mark` (LIFO).
void glide_scratch_release(size_t mark);
/// Frees the calling thread's scratch block (its stack must be empty); the next use allocates again.
void glide_scratch_trim(void);
/// Bytes of scratch blocks the calling thread holds (its own, not lent ones).
size_t glide_scratch_thread_bytes(void);
/// With the calling thread's stack empty: serve it from `base` (`capacity` bytes, 64-byte aligned, owned by the
/// caller) instead of its own block until `glide_scratch_end_loan`; calls that do not fit overflow (counted).
/// Returns 0 (nothing done) when the stack is in use.
int glide_scratch_lend_block(void *base, size_t capacity);
/// With the stack empty: back to the thread's own block. Returns 0 (nothing done) when the stack is in use.
int glide_scratch_end_loan(void);
/// The calling thread's deepest stack (bytes) since the last call; starts the next window at the current depth.
size_t glide_scratch_take_peak(void);

/// Heap allocations counted so far by the project's allocation functions: scratch blocks and overflows, and the
/// activation pool's misses (`glide_count_heap_allocation`). `large` counts those of 64 KiB or more.
typedef struct { long long count, large, bytes; } glide_heap_counts;
glide_heap_counts glide_heap_allocations(void);
/// Adds one heap allocation of `bytes` to the counters (for allocators outside this file).
void glide_count_heap_allocation(size_t bytes);
/// glibc's view of the heap (`mallinfo2`): bytes of arena plus mmapped blocks, and bytes in use; 0 elsewhere.
void glide_malloc_heap_bytes(size_t *total, size_t *in_use);
/// Returns the heap's free pages to the system (glibc `malloc_trim`; nothing elsewhere).
void glide_malloc_trim(void);
