// CPU feature detection for the vpdpbusd int8 GEMM paths (gemm_int8_vnni.c).
#include "CKernelsX86.h"
#if defined(__x86_64__) || defined(_M_X64)
#include <cpuid.h>
static unsigned long long xcr0(void) {
    unsigned lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    return ((unsigned long long)hi << 32) | lo;
}
int glide_cpu_has_avx512_vnni(void) {
    unsigned a, b, c, d;
    if (!glide_cpu_has_avx2_fma()) return 0;
    if ((xcr0() & 0xe6) != 0xe6) return 0;            // XMM, YMM, opmask, ZMM_Hi256, Hi16_ZMM saved by the OS
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return 0;
    int f = (b >> 16) & 1, bw = (b >> 30) & 1, vl = (b >> 31) & 1, vnni = (c >> 11) & 1;
    return f && bw && vl && vnni;
}
int glide_cpu_has_avx_vnni(void) {
    unsigned a, b, c, d;
    if (!glide_cpu_has_avx2_fma()) return 0;
    if (!__get_cpuid_count(7, 1, &a, &b, &c, &d)) return 0;
    return (a >> 4) & 1;                              // CPUID.(7,1):EAX bit 4 = AVX-VNNI
}
#else
int glide_cpu_has_avx512_vnni(void) { return 0; }
int glide_cpu_has_avx_vnni(void) { return 0; }
#endif
