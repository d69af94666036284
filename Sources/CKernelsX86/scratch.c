// Per-thread grow-only scratch stack (include/glide_scratch.h) and the heap allocation counters.
#define _GNU_SOURCE
#include "include/glide_scratch.h"
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#if defined(__GLIBC__)
#include <malloc.h>
#endif

// Calls that did not fit the block: freed when released below their start.
typedef struct overflow { struct overflow *next; size_t start; } overflow;

typedef struct {
    char *base;          // the block, `capacity` bytes
    size_t capacity;
    size_t top;          // stack depth in bytes, including overflowed calls
    size_t high;         // deepest `top` seen with the own block since it was last sized
    overflow *overflows; // newest first
    int lent;            // base/capacity are lent memory (glide_scratch_lend_block); the own block waits in own_*
    char *own_base;
    size_t own_capacity;
    size_t window_peak;  // deepest `top` since the last glide_scratch_take_peak
} scratch_stack;

static _Thread_local scratch_stack stack_;
static pthread_key_t exit_key;
static pthread_once_t exit_once = PTHREAD_ONCE_INIT;
static long long count_, large_, bytes_;

void glide_count_heap_allocation(size_t bytes) {
    __atomic_fetch_add(&count_, 1, __ATOMIC_RELAXED);
    if (bytes >= 65536) __atomic_fetch_add(&large_, 1, __ATOMIC_RELAXED);
    __atomic_fetch_add(&bytes_, (long long)bytes, __ATOMIC_RELAXED);
}

glide_heap_counts glide_heap_allocations(void) {
    glide_heap_counts c = {__atomic_load_n(&count_, __ATOMIC_RELAXED), __atomic_load_n(&large_, __ATOMIC_RELAXED),
                           __atomic_load_n(&bytes_, __ATOMIC_RELAXED)};
    return c;
}

static void free_at_thread_exit(void *unused) {
    (void)unused;
    while (stack_.overflows) { overflow *o = stack_.overflows; stack_.overflows = o->next; free(o); }
    if (stack_.lent) { stack_.base = stack_.own_base; stack_.lent = 0; }
    free(stack_.base);
    stack_.base = NULL; stack_.capacity = stack_.top = stack_.high = 0;
}

static void make_exit_key(void) { pthread_key_create(&exit_key, free_at_thread_exit); }

static void *aligned_block(size_t bytes) {
    void *p = NULL;
    if (posix_memalign(&p, 64, bytes ? bytes : 64) != 0) return NULL;
    glide_count_heap_allocation(bytes);
    return p;
}

size_t glide_scratch_mark(void) { return stack_.top; }

// With the stack empty: the block resized to the deepest stack seen (0 when out of memory).
static int fit_block(scratch_stack *s) {
    if (s->lent || s->top != 0 || s->high <= s->capacity) return 1;
    free(s->base);
    s->capacity = 0;
    s->base = aligned_block(s->high);
    if (!s->base) return 0;
    s->capacity = s->high;
    return 1;
}

void *glide_scratch_alloc(size_t bytes) {
    scratch_stack *s = &stack_;
    bytes = (bytes + 63) & ~(size_t)63;
    if (!bytes) bytes = 64;
    if (!fit_block(s)) return NULL;
    if (s->top == 0 && s->capacity == 0) {
        pthread_once(&exit_once, make_exit_key);
        pthread_setspecific(exit_key, s);   // any non-NULL value: runs the destructor at thread exit
    }
    void *p;
    if (s->top + bytes <= s->capacity) {
        p = s->base + s->top;
    } else {
        overflow *o = aligned_block(64 + bytes);
        if (!o) return NULL;
        o->start = s->top;
        o->next = s->overflows;
        s->overflows = o;
        p = (char *)o + 64;
    }
    s->top += bytes;
    if (!s->lent && s->top > s->high) s->high = s->top;
    if (s->top > s->window_peak) s->window_peak = s->top;
    return p;
}

void glide_scratch_release(size_t mark) {
    scratch_stack *s = &stack_;
    while (s->overflows && s->overflows->start >= mark) {
        overflow *o = s->overflows;
        s->overflows = o->next;
        free(o);
    }
    if (mark < s->top) s->top = mark;
    fit_block(s);   // grown as soon as the stack is empty: within the step that needed it
}

void glide_scratch_trim(void) {
    scratch_stack *s = &stack_;
    if (s->top != 0 || s->lent) return;
    free(s->base);
    s->base = NULL; s->capacity = 0; s->high = 0;
}

size_t glide_scratch_thread_bytes(void) { return stack_.lent ? stack_.own_capacity : stack_.capacity; }

int glide_scratch_lend_block(void *base, size_t capacity) {
    scratch_stack *s = &stack_;
    if (s->top != 0) return 0;
    if (!s->lent) { s->own_base = s->base; s->own_capacity = s->capacity; s->lent = 1; }
    s->base = base;
    s->capacity = capacity & ~(size_t)63;
    return 1;
}

int glide_scratch_end_loan(void) {
    scratch_stack *s = &stack_;
    if (s->top != 0) return 0;
    if (s->lent) { s->base = s->own_base; s->capacity = s->own_capacity; s->lent = 0; }
    return 1;
}

size_t glide_scratch_take_peak(void) {
    scratch_stack *s = &stack_;
    size_t peak = s->window_peak;
    s->window_peak = s->top;
    return peak;
}

void glide_malloc_heap_bytes(size_t *total, size_t *in_use) {
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 33))
    struct mallinfo2 m = mallinfo2();
    *total = m.arena + m.hblkhd;
    *in_use = m.uordblks + m.hblkhd;
#else
    *total = 0; *in_use = 0;
#endif
}

void glide_malloc_trim(void) {
#if defined(__GLIBC__)
    malloc_trim(0);
#endif
}
