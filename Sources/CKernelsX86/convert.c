// F16C conversions (f32 <-> f16), round to nearest even.
#include "CKernelsX86.h"
#if defined(__x86_64__)
#include <immintrin.h>

__attribute__((target("avx2,fma,f16c")))
void glide_f32_to_f16_f16c(const float *src, uint16_t *dst, ptrdiff_t count) {
    ptrdiff_t i = 0;
    for (; i + 8 <= count; i += 8) {
        __m128i h = _mm256_cvtps_ph(_mm256_loadu_ps(src + i), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
        _mm_storeu_si128((__m128i *)(dst + i), h);
    }
    for (; i < count; i++) {
        __m128i h = _mm_cvtps_ph(_mm_set_ss(src[i]), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
        dst[i] = (uint16_t)_mm_extract_epi16(h, 0);
    }
}

__attribute__((target("avx2,fma,f16c")))
void glide_f16_to_f32_f16c(const uint16_t *src, float *dst, ptrdiff_t count) {
    ptrdiff_t i = 0;
    for (; i + 8 <= count; i += 8)
        _mm256_storeu_ps(dst + i, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(src + i))));
    for (; i < count; i++)
        dst[i] = _mm_cvtss_f32(_mm_cvtph_ps(_mm_cvtsi32_si128(src[i])));
}

// f32 -> bf16 bits, round to nearest even, NaN kept quiet: the same bits as ElementConversion's f32ToBF16.
__attribute__((target("avx2")))
void glide_f32_to_bf16_avx2(const float *src, uint16_t *dst, ptrdiff_t count) {
    ptrdiff_t i = 0;
    const __m256i one = _mm256_set1_epi32(1), bias = _mm256_set1_epi32(0x7fff);
    const __m256i absMask = _mm256_set1_epi32(0x7fffffff), inf = _mm256_set1_epi32(0x7f800000);
    const __m256i quiet = _mm256_set1_epi32(0x00400000);
    for (; i + 16 <= count; i += 16) {
        __m256i r[2];
        for (int h = 0; h < 2; h++) {
            __m256i x = _mm256_loadu_si256((const __m256i *)(src + i + 8 * h));
            __m256i rounded = _mm256_add_epi32(x, _mm256_add_epi32(bias, _mm256_and_si256(_mm256_srli_epi32(x, 16), one)));
            __m256i nan = _mm256_cmpgt_epi32(_mm256_and_si256(x, absMask), inf);
            r[h] = _mm256_srli_epi32(_mm256_blendv_epi8(rounded, _mm256_or_si256(x, quiet), nan), 16);
        }
        // packus works per 128-bit lane: fix the order with a 64-bit permute.
        __m256i packed = _mm256_permute4x64_epi64(_mm256_packus_epi32(r[0], r[1]), 0xd8);
        _mm256_storeu_si256((__m256i *)(dst + i), packed);
    }
    for (; i < count; i++) {
        uint32_t x; __builtin_memcpy(&x, src + i, 4);
        if ((x & 0x7fffffffu) > 0x7f800000u) dst[i] = (uint16_t)((x >> 16) | 0x40);
        else dst[i] = (uint16_t)((x + 0x7fffu + ((x >> 16) & 1u)) >> 16);
    }
}
#else
void glide_f32_to_bf16_avx2(const float *src, uint16_t *dst, ptrdiff_t count) { (void)src; (void)dst; (void)count; }
void glide_f32_to_f16_f16c(const float *src, uint16_t *dst, ptrdiff_t count) { (void)src; (void)dst; (void)count; }
void glide_f16_to_f32_f16c(const uint16_t *src, float *dst, ptrdiff_t count) { (void)src; (void)dst; (void)count; }
#endif
