// Opt-in time counters for work inside the C kernels that the Swift profiler cannot see (GEMM packing).
// Off unless glide_profile_enabled is set; then each timed section costs two clock reads and one atomic add.
#include "CKernelsX86.h"
#include <time.h>

int glide_profile_enabled = 0;
int glide_profile_thread_cpu = 0;
static unsigned long long counters[GLIDE_PROFILE_SLOTS];

void glide_profile_configure(int enabled, int thread_cpu) {
    glide_profile_thread_cpu = thread_cpu;
    glide_profile_enabled = enabled;
}

unsigned long long glide_profile_now_ns(void) {
    struct timespec ts;
    clock_gettime(glide_profile_thread_cpu ? CLOCK_THREAD_CPUTIME_ID : CLOCK_MONOTONIC, &ts);
    return (unsigned long long)ts.tv_sec * 1000000000ull + (unsigned long long)ts.tv_nsec;
}

void glide_profile_add_ns(int slot, unsigned long long ns) {
    if (slot >= 0 && slot < GLIDE_PROFILE_SLOTS) __atomic_fetch_add(&counters[slot], ns, __ATOMIC_RELAXED);
}

unsigned long long glide_profile_read_ns(int slot) {
    if (slot < 0 || slot >= GLIDE_PROFILE_SLOTS) return 0;
    return __atomic_load_n(&counters[slot], __ATOMIC_RELAXED);
}
