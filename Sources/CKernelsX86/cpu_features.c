// CPU feature detection for the run-time dispatcher (cpuid + xgetbv); see glide_cpu_features().
#include "CKernelsX86.h"
#if defined(__x86_64__) || defined(_M_X64)
#include <cpuid.h>
unsigned glide_cpu_features(void) {
    unsigned a, b, c, d, out = 0;
    if (glide_cpu_has_avx2_fma()) out |= GLIDE_CPU_AVX2_FMA;
    if (!__get_cpuid(1, &a, &b, &c, &d) || !((c >> 27) & 1)) return out;   /* OSXSAVE */
    unsigned lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    int ymm_os = (lo & 0x6) == 0x6;
    int zmm_os = (lo & 0xE6) == 0xE6;   /* XMM, YMM, opmask, ZMM_Hi256, Hi16_ZMM state enabled by the OS */
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return out;
    unsigned max_sub = a;
    if (zmm_os) {
        if ((b >> 16) & 1) out |= GLIDE_CPU_AVX512F;
        if ((b >> 30) & 1) out |= GLIDE_CPU_AVX512BW;
        if ((b >> 31) & 1) out |= GLIDE_CPU_AVX512VL;
        if ((c >> 11) & 1) out |= GLIDE_CPU_AVX512VNNI;
    }
    if (max_sub >= 1 && __get_cpuid_count(7, 1, &a, &b, &c, &d)) {
        if (zmm_os && ((a >> 5) & 1)) out |= GLIDE_CPU_AVX512BF16;
        if (ymm_os && ((a >> 4) & 1)) out |= GLIDE_CPU_AVXVNNI;
    }
    return out;
}
#else
unsigned glide_cpu_features(void) { return 0; }
#endif
