// 2x2 average pooling and nearest 2x upsampling rows on ymm (the Swift loops are the scalar twins).
#include "CKernelsX86.h"
#if defined(__x86_64__)
#include <immintrin.h>
#define TGT __attribute__((target("avx2,fma")))

// Even / odd elements of 16 consecutive floats, in order.
TGT static inline void deinterleave16(const float *p, __m256 *even, __m256 *odd) {
    __m256 a = _mm256_loadu_ps(p), b = _mm256_loadu_ps(p + 8);
    __m256 e = _mm256_shuffle_ps(a, b, 0x88), o = _mm256_shuffle_ps(a, b, 0xDD);   // lanes: a0 a2 b0 b2 | a4 a6 b4 b6
    *even = _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(e), 0xD8));
    *odd = _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(o), 0xD8));
}

TGT void glide_avgpool2x2_row_avx2(const float *r0, const float *r1, float *y, ptrdiff_t ow) {
    const __m256 quarter = _mm256_set1_ps(0.25f);
    ptrdiff_t ox = 0;
    for (; ox + 8 <= ow; ox += 8) {
        __m256 a, b, c, d;
        deinterleave16(r0 + 2 * ox, &a, &b);
        deinterleave16(r1 + 2 * ox, &c, &d);
        // ((a + b) + c) + d, then / 4 (exactly * 0.25): the scalar loop's order and bits.
        _mm256_storeu_ps(y + ox, _mm256_mul_ps(_mm256_add_ps(_mm256_add_ps(_mm256_add_ps(a, b), c), d), quarter));
    }
    for (; ox < ow; ox++) y[ox] = (r0[2 * ox] + r0[2 * ox + 1] + r1[2 * ox] + r1[2 * ox + 1]) / 4;
}

TGT void glide_upsample2x_row_avx2(const float *x, float *y, ptrdiff_t width) {
    ptrdiff_t ix = 0;
    for (; ix + 8 <= width; ix += 8) {
        __m256 v = _mm256_loadu_ps(x + ix);
        __m256 lo = _mm256_unpacklo_ps(v, v), hi = _mm256_unpackhi_ps(v, v);   // x0 x0 x1 x1 | x4 x4 x5 x5 ...
        _mm256_storeu_ps(y + 2 * ix, _mm256_permute2f128_ps(lo, hi, 0x20));
        _mm256_storeu_ps(y + 2 * ix + 8, _mm256_permute2f128_ps(lo, hi, 0x31));
    }
    for (; ix < width; ix++) { y[2 * ix] = x[ix]; y[2 * ix + 1] = x[ix]; }
}
#else
void glide_avgpool2x2_row_avx2(const float *r0, const float *r1, float *y, ptrdiff_t ow) {
    (void)r0; (void)r1; (void)y; (void)ow;
}
void glide_upsample2x_row_avx2(const float *x, float *y, ptrdiff_t width) { (void)x; (void)y; (void)width; }
#endif
