#include "CKernelsX86.h"
#if defined(__x86_64__) || defined(_M_X64)
#include <cpuid.h>
static int detect_avx2_fma(void) {
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d)) return 0;
    int fma = (c >> 12) & 1, osxsave = (c >> 27) & 1, avx = (c >> 28) & 1;
    if (!(fma && osxsave && avx)) return 0;
    unsigned lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    if ((lo & 6) != 6) return 0;
    if (!((c >> 29) & 1)) return 0;   /* F16C (cpuid 1 ecx bit 29) */
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return 0;
    return (b >> 5) & 1;
}
/* Detected once: CPUID and XGETBV trap to the hypervisor on virtual machines, and kernels ask per call. */
int glide_cpu_has_avx2_fma(void) {
    static int cached = -1;
    int known = __atomic_load_n(&cached, __ATOMIC_RELAXED);
    if (known < 0) {
        known = detect_avx2_fma();
        __atomic_store_n(&cached, known, __ATOMIC_RELAXED);
    }
    return known;
}
#else
int glide_cpu_has_avx2_fma(void) { return 0; }
#endif
