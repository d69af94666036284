// Private: the convolution pre-activation y = silu(a x + b) (or a x + b) with AVX-512, AVX2 and portable bodies
// doing the same float operations in the same order, so all give the same bits (winograd_f42.c's fused input
// transform, preact.c's materialising twin). SiLU: v / (1 + exp(-v)) with exp as vmath.c's (Cephes polynomial,
// the power of two built in the exponent bits) and an IEEE division (no reciprocal estimate: those differ
// between instruction sets). -v is clamped to [-87.34, 88.0] so 2^n stays a normal number.
#ifndef GLIDE_PREACT_INTERNAL_H
#define GLIDE_PREACT_INTERNAL_H
#include <stdint.h>
#include <string.h>
#include <math.h>

#pragma STDC FP_CONTRACT OFF

#define PA_LO (-87.3365478515625f)
#define PA_HI 88.0f
#define PA_LOG2E 1.44269504088896341f
#define PA_C1 0.693359375f
#define PA_C2 (-2.12194440e-4f)
#define PA_P0 1.9875691500E-4f
#define PA_P1 1.3981999507E-3f
#define PA_P2 8.3334519073E-3f
#define PA_P3 4.1665795894E-2f
#define PA_P4 1.6666665459E-1f
#define PA_P5 5.0000001201E-1f

// Portable: fmaf is the single rounding of vfmadd; (t + 1.5 2^23) - 1.5 2^23 rounds to nearest even as
// vroundps / vrndscaleps do (|t| < 2^22); max / min keep the vector semantics (NaN -> the bound).
static inline float preact_scalar(float x, float a, float b, int silu) {
    const float v = fmaf(x, a, b);
    if (!silu) return v;
    float t = -v;
    t = t > PA_LO ? t : PA_LO;
    t = t < PA_HI ? t : PA_HI;
    float fx = t * PA_LOG2E;
    fx = (fx + 12582912.f) - 12582912.f;
    float r = fmaf(-fx, PA_C1, t);
    r = fmaf(-fx, PA_C2, r);
    float y = PA_P0;
    y = fmaf(y, r, PA_P1); y = fmaf(y, r, PA_P2); y = fmaf(y, r, PA_P3); y = fmaf(y, r, PA_P4); y = fmaf(y, r, PA_P5);
    const float r2 = r * r;
    y = fmaf(y, r2, r + 1.f);
    const uint32_t bits = (uint32_t)((int32_t)fx + 127) << 23;
    float p2;
    memcpy(&p2, &bits, 4);
    return v / (1.f + y * p2);
}

#if defined(__x86_64__)
#include <immintrin.h>

__attribute__((target("avx512f"))) static inline __m512 preact512(__m512 x, __m512 a, __m512 b, int silu) {
    const __m512 v = _mm512_fmadd_ps(x, a, b);
    if (!silu) return v;
    __m512 t = _mm512_sub_ps(_mm512_setzero_ps(), v);
    t = _mm512_min_ps(_mm512_max_ps(t, _mm512_set1_ps(PA_LO)), _mm512_set1_ps(PA_HI));
    const __m512 fx = _mm512_roundscale_ps(_mm512_mul_ps(t, _mm512_set1_ps(PA_LOG2E)),
                                           _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_fnmadd_ps(fx, _mm512_set1_ps(PA_C1), t);
    r = _mm512_fnmadd_ps(fx, _mm512_set1_ps(PA_C2), r);
    __m512 y = _mm512_set1_ps(PA_P0);
    y = _mm512_fmadd_ps(y, r, _mm512_set1_ps(PA_P1));
    y = _mm512_fmadd_ps(y, r, _mm512_set1_ps(PA_P2));
    y = _mm512_fmadd_ps(y, r, _mm512_set1_ps(PA_P3));
    y = _mm512_fmadd_ps(y, r, _mm512_set1_ps(PA_P4));
    y = _mm512_fmadd_ps(y, r, _mm512_set1_ps(PA_P5));
    y = _mm512_fmadd_ps(y, _mm512_mul_ps(r, r), _mm512_add_ps(r, _mm512_set1_ps(1.f)));
    const __m512i e = _mm512_slli_epi32(_mm512_add_epi32(_mm512_cvtps_epi32(fx), _mm512_set1_epi32(127)), 23);
    const __m512 d = _mm512_add_ps(_mm512_set1_ps(1.f), _mm512_mul_ps(y, _mm512_castsi512_ps(e)));
    return _mm512_div_ps(v, d);
}

__attribute__((target("avx2,fma"))) static inline __m256 preact256(__m256 x, __m256 a, __m256 b, int silu) {
    const __m256 v = _mm256_fmadd_ps(x, a, b);
    if (!silu) return v;
    __m256 t = _mm256_sub_ps(_mm256_setzero_ps(), v);
    t = _mm256_min_ps(_mm256_max_ps(t, _mm256_set1_ps(PA_LO)), _mm256_set1_ps(PA_HI));
    const __m256 fx = _mm256_round_ps(_mm256_mul_ps(t, _mm256_set1_ps(PA_LOG2E)),
                                      _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r = _mm256_fnmadd_ps(fx, _mm256_set1_ps(PA_C1), t);
    r = _mm256_fnmadd_ps(fx, _mm256_set1_ps(PA_C2), r);
    __m256 y = _mm256_set1_ps(PA_P0);
    y = _mm256_fmadd_ps(y, r, _mm256_set1_ps(PA_P1));
    y = _mm256_fmadd_ps(y, r, _mm256_set1_ps(PA_P2));
    y = _mm256_fmadd_ps(y, r, _mm256_set1_ps(PA_P3));
    y = _mm256_fmadd_ps(y, r, _mm256_set1_ps(PA_P4));
    y = _mm256_fmadd_ps(y, r, _mm256_set1_ps(PA_P5));
    y = _mm256_fmadd_ps(y, _mm256_mul_ps(r, r), _mm256_add_ps(r, _mm256_set1_ps(1.f)));
    const __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(fx), _mm256_set1_epi32(127)), 23);
    const __m256 d = _mm256_add_ps(_mm256_set1_ps(1.f), _mm256_mul_ps(y, _mm256_castsi256_ps(e)));
    return _mm256_div_ps(v, d);
}
#endif
#endif
