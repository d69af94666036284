// Transposing copies for attention's gathers (channel-major activations -> token-major operands).
#include "CKernelsX86.h"
#if defined(__x86_64__)
#include <immintrin.h>
#define TGT __attribute__((target("avx2,fma")))

TGT static inline void transpose8x8(__m256 *r) {
    __m256 t0 = _mm256_unpacklo_ps(r[0], r[1]), t1 = _mm256_unpackhi_ps(r[0], r[1]);
    __m256 t2 = _mm256_unpacklo_ps(r[2], r[3]), t3 = _mm256_unpackhi_ps(r[2], r[3]);
    __m256 t4 = _mm256_unpacklo_ps(r[4], r[5]), t5 = _mm256_unpackhi_ps(r[4], r[5]);
    __m256 t6 = _mm256_unpacklo_ps(r[6], r[7]), t7 = _mm256_unpackhi_ps(r[6], r[7]);
    __m256 s0 = _mm256_shuffle_ps(t0, t2, 0x44), s1 = _mm256_shuffle_ps(t0, t2, 0xEE);
    __m256 s2 = _mm256_shuffle_ps(t1, t3, 0x44), s3 = _mm256_shuffle_ps(t1, t3, 0xEE);
    __m256 s4 = _mm256_shuffle_ps(t4, t6, 0x44), s5 = _mm256_shuffle_ps(t4, t6, 0xEE);
    __m256 s6 = _mm256_shuffle_ps(t5, t7, 0x44), s7 = _mm256_shuffle_ps(t5, t7, 0xEE);
    r[0] = _mm256_permute2f128_ps(s0, s4, 0x20); r[1] = _mm256_permute2f128_ps(s1, s5, 0x20);
    r[2] = _mm256_permute2f128_ps(s2, s6, 0x20); r[3] = _mm256_permute2f128_ps(s3, s7, 0x20);
    r[4] = _mm256_permute2f128_ps(s0, s4, 0x31); r[5] = _mm256_permute2f128_ps(s1, s5, 0x31);
    r[6] = _mm256_permute2f128_ps(s2, s6, 0x31); r[7] = _mm256_permute2f128_ps(s3, s7, 0x31);
}

TGT void glide_transpose_scale_avx2(const float *src, ptrdiff_t src_stride, int rows, int cols, float scale,
                                    float *dst, ptrdiff_t dst_stride) {
    const __m256 sv = _mm256_set1_ps(scale);
    int i = 0;
    for (; i + 8 <= rows; i += 8) {
        int j = 0;
        for (; j + 8 <= cols; j += 8) {
            __m256 r[8];
            for (int k = 0; k < 8; k++) r[k] = _mm256_mul_ps(_mm256_loadu_ps(src + (i + k) * src_stride + j), sv);
            transpose8x8(r);
            for (int k = 0; k < 8; k++) _mm256_storeu_ps(dst + (j + k) * dst_stride + i, r[k]);
        }
        for (; j < cols; j++)
            for (int k = 0; k < 8; k++) dst[j * dst_stride + i + k] = src[(i + k) * src_stride + j] * scale;
    }
    for (; i < rows; i++)
        for (int j = 0; j < cols; j++) dst[j * dst_stride + i] = src[i * src_stride + j] * scale;
}
#else
void glide_transpose_scale_avx2(const float *src, ptrdiff_t src_stride, int rows, int cols, float scale,
                                float *dst, ptrdiff_t dst_stride) {
    (void)src; (void)src_stride; (void)rows; (void)cols; (void)scale; (void)dst; (void)dst_stride;
}
#endif
