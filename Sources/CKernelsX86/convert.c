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
#else
void glide_f32_to_f16_f16c(const float *src, uint16_t *dst, ptrdiff_t count) { (void)src; (void)dst; (void)count; }
void glide_f16_to_f32_f16c(const uint16_t *src, float *dst, ptrdiff_t count) { (void)src; (void)dst; (void)count; }
#endif
