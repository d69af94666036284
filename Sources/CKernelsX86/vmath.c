// AVX2 element-wise math: exp, softmax, SiLU, GELU (erf), affine+SiLU, sums. Scalar twins in Kernels.
#include "CKernelsX86.h"
#if defined(__x86_64__)
#include <immintrin.h>
#include <math.h>
#define TGT __attribute__((target("avx2,fma,f16c")))

// exp(x) for x in [-87.3, 88.7]: x = n ln2 + r, |r| <= ln2/2, degree-6 polynomial (Cephes expf coefficients).
TGT static inline __m256 exp256(__m256 x) {
    const __m256 hi = _mm256_set1_ps(88.3762626647949f), lo = _mm256_set1_ps(-87.3365478515625f);
    __m256 under = _mm256_cmp_ps(x, lo, _CMP_LT_OQ);
    x = _mm256_min_ps(_mm256_max_ps(x, lo), hi);
    __m256 fx = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)),
                                _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    x = _mm256_fnmadd_ps(fx, _mm256_set1_ps(0.693359375f), x);
    x = _mm256_fnmadd_ps(fx, _mm256_set1_ps(-2.12194440e-4f), x);
    __m256 y = _mm256_set1_ps(1.9875691500E-4f);
    y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(1.3981999507E-3f));
    y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(8.3334519073E-3f));
    y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(4.1665795894E-2f));
    y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(1.6666665459E-1f));
    y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(5.0000001201E-1f));
    __m256 x2 = _mm256_mul_ps(x, x);
    y = _mm256_fmadd_ps(y, x2, _mm256_add_ps(x, _mm256_set1_ps(1.f)));
    __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(fx), _mm256_set1_epi32(127)), 23);
    y = _mm256_mul_ps(y, _mm256_castsi256_ps(e));
    return _mm256_andnot_ps(under, y);   // exp(-inf) and tiny -> 0
}

// v * sigmoid(v) = v / (1 + exp(-v)). The division is a reciprocal estimate refined by one Newton step
// (relative error ~2 ulp; vdivps was half the cost of a group norm + SiLU pass).
TGT static inline __m256 sigmoid_mul(__m256 v) {
    __m256 e = exp256(_mm256_sub_ps(_mm256_setzero_ps(), v));
    __m256 d = _mm256_add_ps(_mm256_set1_ps(1.f), e);
    __m256 r = _mm256_rcp_ps(d);
    r = _mm256_mul_ps(r, _mm256_fnmadd_ps(d, r, _mm256_set1_ps(2.f)));
    return _mm256_mul_ps(v, r);
}

TGT static inline __m256 mask_tail(ptrdiff_t n) {
    __m256i idx = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    return _mm256_castsi256_ps(_mm256_cmpgt_epi32(_mm256_set1_epi32((int)n), idx));
}

TGT float glide_softmax_exp_row_avx2(float *x, ptrdiff_t n) {
    if (n <= 0) return 0.f;
    __m256 mv = _mm256_set1_ps(-INFINITY);
    ptrdiff_t i = 0;
    for (; i + 8 <= n; i += 8) mv = _mm256_max_ps(mv, _mm256_loadu_ps(x + i));
    float m = -INFINITY;
    float t[8]; _mm256_storeu_ps(t, mv);
    for (int j = 0; j < 8; j++) m = t[j] > m ? t[j] : m;
    for (; i < n; i++) m = x[i] > m ? x[i] : m;
    if (m == -INFINITY) m = 0;
    __m256 mb = _mm256_set1_ps(m), sv = _mm256_setzero_ps();
    for (i = 0; i + 8 <= n; i += 8) {
        __m256 e = exp256(_mm256_sub_ps(_mm256_loadu_ps(x + i), mb));
        _mm256_storeu_ps(x + i, e);
        sv = _mm256_add_ps(sv, e);
    }
    if (i < n) {
        __m256 msk = mask_tail(n - i);
        __m256 e = _mm256_and_ps(msk, exp256(_mm256_sub_ps(_mm256_maskload_ps(x + i, _mm256_castps_si256(msk)), mb)));
        _mm256_maskstore_ps(x + i, _mm256_castps_si256(msk), e);
        sv = _mm256_add_ps(sv, e);
    }
    _mm256_storeu_ps(t, sv);
    return ((t[0] + t[1]) + (t[2] + t[3])) + ((t[4] + t[5]) + (t[6] + t[7]));
}

TGT void glide_softmax_row_avx2(float *x, ptrdiff_t n) {
    if (n <= 0) return;
    float s = glide_softmax_exp_row_avx2(x, n);
    __m256 inv = _mm256_set1_ps(1.f / s);
    ptrdiff_t i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(x + i, _mm256_mul_ps(_mm256_loadu_ps(x + i), inv));
    for (; i < n; i++) x[i] *= 1.f / s;
}

TGT void glide_silu_avx2(const float *x, float *y, ptrdiff_t n) {
    ptrdiff_t i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, sigmoid_mul(_mm256_loadu_ps(x + i)));
    if (i < n) {
        __m256i msk = _mm256_castps_si256(mask_tail(n - i));
        _mm256_maskstore_ps(y + i, msk, sigmoid_mul(_mm256_maskload_ps(x + i, msk)));
    }
}

// erf via Abramowitz & Stegun 7.1.26 refined: use erf(x) = sign(x) (1 - poly(t) exp(-x^2)), t = 1/(1 + p|x|).
// A&S 7.1.26 has |error| <= 1.5e-7.
TGT static inline __m256 gelu256(__m256 x) {
    const __m256 absmask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
    __m256 z = _mm256_mul_ps(x, _mm256_set1_ps(0.70710678118654752f));
    __m256 az = _mm256_and_ps(z, absmask);
    __m256 t = _mm256_div_ps(_mm256_set1_ps(1.f), _mm256_fmadd_ps(_mm256_set1_ps(0.3275911f), az, _mm256_set1_ps(1.f)));
    __m256 p = _mm256_set1_ps(1.061405429f);
    p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(-1.453152027f));
    p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(1.421413741f));
    p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(-0.284496736f));
    p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(0.254829592f));
    p = _mm256_mul_ps(p, t);
    __m256 e = exp256(_mm256_sub_ps(_mm256_setzero_ps(), _mm256_mul_ps(az, az)));
    __m256 erfabs = _mm256_fnmadd_ps(p, e, _mm256_set1_ps(1.f));
    __m256 erf = _mm256_or_ps(erfabs, _mm256_andnot_ps(absmask, z));   // copy sign of z
    return _mm256_mul_ps(_mm256_mul_ps(_mm256_set1_ps(0.5f), x), _mm256_add_ps(_mm256_set1_ps(1.f), erf));
}

TGT void glide_gelu_avx2(const float *x, float *y, ptrdiff_t n) {
    ptrdiff_t i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, gelu256(_mm256_loadu_ps(x + i)));
    if (i < n) {
        __m256i msk = _mm256_castps_si256(mask_tail(n - i));
        _mm256_maskstore_ps(y + i, msk, gelu256(_mm256_maskload_ps(x + i, msk)));
    }
}

TGT void glide_affine_silu_avx2(const float *x, float *y, ptrdiff_t n, float a, float b, int silu) {
    __m256 av = _mm256_set1_ps(a), bv = _mm256_set1_ps(b);
    ptrdiff_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 v = _mm256_fmadd_ps(_mm256_loadu_ps(x + i), av, bv);
        _mm256_storeu_ps(y + i, silu ? sigmoid_mul(v) : v);
    }
    if (i < n) {
        __m256i msk = _mm256_castps_si256(mask_tail(n - i));
        __m256 v = _mm256_fmadd_ps(_mm256_maskload_ps(x + i, msk), av, bv);
        _mm256_maskstore_ps(y + i, msk, silu ? sigmoid_mul(v) : v);
    }
}

TGT void glide_normalize_affine_avx2(const float *x, float *y, ptrdiff_t n, float mean, float rstd,
                                     const float *gamma, const float *beta) {
    __m256 mv = _mm256_set1_ps(mean), rv = _mm256_set1_ps(rstd);
    ptrdiff_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 v = _mm256_mul_ps(_mm256_sub_ps(_mm256_loadu_ps(x + i), mv), rv);
        __m256 g = gamma ? _mm256_loadu_ps(gamma + i) : _mm256_set1_ps(1.f);
        __m256 b = beta ? _mm256_loadu_ps(beta + i) : _mm256_setzero_ps();
        _mm256_storeu_ps(y + i, _mm256_fmadd_ps(v, g, b));
    }
    for (; i < n; i++) {
        float v = (x[i] - mean) * rstd;
        y[i] = fmaf(v, gamma ? gamma[i] : 1.f, beta ? beta[i] : 0.f);
    }
}

TGT void glide_sum_sq_avx2(const float *x, ptrdiff_t n, double shift, double *sum, double *sumsq) {
    __m256d s0 = _mm256_setzero_pd(), s1 = _mm256_setzero_pd(), q0 = _mm256_setzero_pd(), q1 = _mm256_setzero_pd();
    __m256d sh = _mm256_set1_pd(shift);
    ptrdiff_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 v = _mm256_loadu_ps(x + i);
        __m256d a = _mm256_sub_pd(_mm256_cvtps_pd(_mm256_castps256_ps128(v)), sh);
        __m256d b = _mm256_sub_pd(_mm256_cvtps_pd(_mm256_extractf128_ps(v, 1)), sh);
        s0 = _mm256_add_pd(s0, a); s1 = _mm256_add_pd(s1, b);
        q0 = _mm256_fmadd_pd(a, a, q0); q1 = _mm256_fmadd_pd(b, b, q1);
    }
    double t[4], u[4];
    _mm256_storeu_pd(t, _mm256_add_pd(s0, s1)); _mm256_storeu_pd(u, _mm256_add_pd(q0, q1));
    double s = (t[0] + t[1]) + (t[2] + t[3]), q = (u[0] + u[1]) + (u[2] + u[3]);
    for (; i < n; i++) { double d = (double)x[i] - shift; s += d; q += d * d; }
    *sum = s; *sumsq = q;
}

// exp256 on zmm: the same operations per lane, so the same bits.
#define T512M __attribute__((target("avx512f,avx512bw,avx512vl,avx2,fma")))
T512M static inline __m512 exp512(__m512 x) {
    const __m512 hi = _mm512_set1_ps(88.3762626647949f), lo = _mm512_set1_ps(-87.3365478515625f);
    __mmask16 under = _mm512_cmp_ps_mask(x, lo, _CMP_LT_OQ);
    x = _mm512_min_ps(_mm512_max_ps(x, lo), hi);
    __m512 fx = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)),
                                     _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    x = _mm512_fnmadd_ps(fx, _mm512_set1_ps(0.693359375f), x);
    x = _mm512_fnmadd_ps(fx, _mm512_set1_ps(-2.12194440e-4f), x);
    __m512 y = _mm512_set1_ps(1.9875691500E-4f);
    y = _mm512_fmadd_ps(y, x, _mm512_set1_ps(1.3981999507E-3f));
    y = _mm512_fmadd_ps(y, x, _mm512_set1_ps(8.3334519073E-3f));
    y = _mm512_fmadd_ps(y, x, _mm512_set1_ps(4.1665795894E-2f));
    y = _mm512_fmadd_ps(y, x, _mm512_set1_ps(1.6666665459E-1f));
    y = _mm512_fmadd_ps(y, x, _mm512_set1_ps(5.0000001201E-1f));
    __m512 x2 = _mm512_mul_ps(x, x);
    y = _mm512_fmadd_ps(y, x2, _mm512_add_ps(x, _mm512_set1_ps(1.f)));
    __m512i e = _mm512_slli_epi32(_mm512_add_epi32(_mm512_cvtps_epi32(fx), _mm512_set1_epi32(127)), 23);
    y = _mm512_mul_ps(y, _mm512_castsi512_ps(e));
    return _mm512_maskz_mov_ps((__mmask16)~under, y);
}

// exp512 for x <= 0 (x - row max): no upper clamp needed, and 2^n applied by vscalefps, which rounds the
// product once like exp512's multiply by the constructed 2^n (n >= -126 after the lower clamp): the same bits.
T512M static inline __m512 exp512_nonpositive(__m512 x) {
    const __m512 lo = _mm512_set1_ps(-87.3365478515625f);
    __mmask16 under = _mm512_cmp_ps_mask(x, lo, _CMP_LT_OQ);
    x = _mm512_max_ps(x, lo);
    __m512 fx = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)),
                                     _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    x = _mm512_fnmadd_ps(fx, _mm512_set1_ps(0.693359375f), x);
    x = _mm512_fnmadd_ps(fx, _mm512_set1_ps(-2.12194440e-4f), x);
    __m512 y = _mm512_set1_ps(1.9875691500E-4f);
    y = _mm512_fmadd_ps(y, x, _mm512_set1_ps(1.3981999507E-3f));
    y = _mm512_fmadd_ps(y, x, _mm512_set1_ps(8.3334519073E-3f));
    y = _mm512_fmadd_ps(y, x, _mm512_set1_ps(4.1665795894E-2f));
    y = _mm512_fmadd_ps(y, x, _mm512_set1_ps(1.6666665459E-1f));
    y = _mm512_fmadd_ps(y, x, _mm512_set1_ps(5.0000001201E-1f));
    __m512 x2 = _mm512_mul_ps(x, x);
    y = _mm512_fmadd_ps(y, x2, _mm512_add_ps(x, _mm512_set1_ps(1.f)));
    return _mm512_maskz_scalef_ps((__mmask16)~under, y, fx);
}

// The row maximum for the softmax rows below (0 for an all -inf row, so exp(x - m) stays 0 there).
static T512M float softmax_row_max512(const float *x, ptrdiff_t n) {
    __m512 m0 = _mm512_set1_ps(-INFINITY), m1 = m0;
    ptrdiff_t i = 0;
    for (; i + 32 <= n; i += 32) {
        m0 = _mm512_max_ps(m0, _mm512_loadu_ps(x + i));
        m1 = _mm512_max_ps(m1, _mm512_loadu_ps(x + i + 16));
    }
    for (; i < n; i += 16) {
        __mmask16 k = (__mmask16)(n - i >= 16 ? 0xffff : (1u << (n - i)) - 1);
        m0 = _mm512_max_ps(m0, _mm512_mask_loadu_ps(_mm512_set1_ps(-INFINITY), k, x + i));
    }
    float m = _mm512_reduce_max_ps(_mm512_max_ps(m0, m1));
    return m == -INFINITY ? 0 : m;
}

// glide_softmax_exp_row_avx2 on zmm with the same bits: the same exp per element (exp512_nonpositive), the
// row sum accumulated in the AVX2 kernel's 8 lanes and order (each 16-float vector adds its low then its high
// half), the same final reduction.
T512M float glide_softmax_exp_row_avx512(float *x, ptrdiff_t n) {
    if (n <= 0) return 0.f;
    const float m = softmax_row_max512(x, n);
    ptrdiff_t i;
    const __m512 mb = _mm512_set1_ps(m);
    __m256 sv = _mm256_setzero_ps();
    for (i = 0; i + 16 <= n; i += 16) {
        __m512 e = exp512_nonpositive(_mm512_sub_ps(_mm512_loadu_ps(x + i), mb));
        _mm512_storeu_ps(x + i, e);
        sv = _mm256_add_ps(sv, _mm512_castps512_ps256(e));
        sv = _mm256_add_ps(sv, _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(e), 1)));
    }
    if (i < n) {
        __mmask16 k = (__mmask16)((1u << (n - i)) - 1);
        __m512 e = _mm512_maskz_mov_ps(k, exp512_nonpositive(_mm512_sub_ps(_mm512_maskz_loadu_ps(k, x + i), mb)));
        _mm512_mask_storeu_ps(x + i, k, e);
        sv = _mm256_add_ps(sv, _mm512_castps512_ps256(e));
        if (n - i > 8) sv = _mm256_add_ps(sv, _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(e), 1)));
    }
    float t[8];
    _mm256_storeu_ps(t, sv);
    return ((t[0] + t[1]) + (t[2] + t[3])) + ((t[4] + t[5]) + (t[6] + t[7]));
}

// Group-norm statistics on zmm: the same shifted f64 sums as glide_sum_sq_avx2, with four independent
// accumulator pairs (32 floats per iteration) so the f64 add/FMA latency no longer bounds the pass.
T512M void glide_sum_sq_avx512(const float *x, ptrdiff_t n, double shift, double *sum, double *sumsq) {
    __m512d s0 = _mm512_setzero_pd(), s1 = s0, s2 = s0, s3 = s0, q0 = s0, q1 = s0, q2 = s0, q3 = s0;
    const __m512d sh = _mm512_set1_pd(shift);
    ptrdiff_t i = 0;
    for (; i + 32 <= n; i += 32) {
        __m512d a = _mm512_sub_pd(_mm512_cvtps_pd(_mm256_loadu_ps(x + i)), sh);
        __m512d b = _mm512_sub_pd(_mm512_cvtps_pd(_mm256_loadu_ps(x + i + 8)), sh);
        __m512d c = _mm512_sub_pd(_mm512_cvtps_pd(_mm256_loadu_ps(x + i + 16)), sh);
        __m512d d = _mm512_sub_pd(_mm512_cvtps_pd(_mm256_loadu_ps(x + i + 24)), sh);
        s0 = _mm512_add_pd(s0, a); s1 = _mm512_add_pd(s1, b); s2 = _mm512_add_pd(s2, c); s3 = _mm512_add_pd(s3, d);
        q0 = _mm512_fmadd_pd(a, a, q0); q1 = _mm512_fmadd_pd(b, b, q1);
        q2 = _mm512_fmadd_pd(c, c, q2); q3 = _mm512_fmadd_pd(d, d, q3);
    }
    for (; i < n; i += 8) {
        __mmask8 k = (__mmask8)(n - i >= 8 ? 0xff : (1u << (n - i)) - 1);
        __m512d a = _mm512_maskz_sub_pd(k, _mm512_cvtps_pd(_mm256_maskz_loadu_ps(k, x + i)), sh);
        s0 = _mm512_add_pd(s0, a); q0 = _mm512_fmadd_pd(a, a, q0);
    }
    *sum = _mm512_reduce_add_pd(_mm512_add_pd(_mm512_add_pd(s0, s1), _mm512_add_pd(s2, s3)));
    *sumsq = _mm512_reduce_add_pd(_mm512_add_pd(_mm512_add_pd(q0, q1), _mm512_add_pd(q2, q3)));
}

// exp(x) for the sigmoid: exp512's clamps and polynomial without its underflow mask (exp(-87.3) ~ 1e-38
// vanishes beside 1 anyway), the power of two applied by vscalefps (3 operations fewer). Both clamps stay: with
// x clamped to 88.38 the result is finite (2.4e38), so 1 / (1 + e) stays a number for any v.
T512M static inline __m512 exp512_for_sigmoid(__m512 x) {
    x = _mm512_min_ps(_mm512_max_ps(x, _mm512_set1_ps(-87.3365478515625f)), _mm512_set1_ps(88.3762626647949f));
    __m512 fx = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)),
                                     _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    x = _mm512_fnmadd_ps(fx, _mm512_set1_ps(0.693359375f), x);
    x = _mm512_fnmadd_ps(fx, _mm512_set1_ps(-2.12194440e-4f), x);
    __m512 y = _mm512_set1_ps(1.9875691500E-4f);
    y = _mm512_fmadd_ps(y, x, _mm512_set1_ps(1.3981999507E-3f));
    y = _mm512_fmadd_ps(y, x, _mm512_set1_ps(8.3334519073E-3f));
    y = _mm512_fmadd_ps(y, x, _mm512_set1_ps(4.1665795894E-2f));
    y = _mm512_fmadd_ps(y, x, _mm512_set1_ps(1.6666665459E-1f));
    y = _mm512_fmadd_ps(y, x, _mm512_set1_ps(5.0000001201E-1f));
    __m512 x2 = _mm512_mul_ps(x, x);
    y = _mm512_fmadd_ps(y, x2, _mm512_add_ps(x, _mm512_set1_ps(1.f)));
    return _mm512_scalef_ps(y, fx);
}

// sigmoid_mul on zmm: v / (1 + exp(-v)) with the reciprocal as rcp14 + one Newton step.
T512M static inline __m512 sigmoid_mul512(__m512 v) {
    __m512 e = exp512_for_sigmoid(_mm512_sub_ps(_mm512_setzero_ps(), v));
    __m512 d = _mm512_add_ps(_mm512_set1_ps(1.f), e);
    __m512 r = _mm512_rcp14_ps(d);
    r = _mm512_mul_ps(r, _mm512_fnmadd_ps(d, r, _mm512_set1_ps(2.f)));
    return _mm512_mul_ps(v, r);
}

T512M void glide_affine_silu_avx512(const float *x, float *y, ptrdiff_t n, float a, float b, int silu) {
    const __m512 av = _mm512_set1_ps(a), bv = _mm512_set1_ps(b);
    ptrdiff_t i = 0;
    if (silu) {
        for (; i + 32 <= n; i += 32) {
            __m512 u = _mm512_fmadd_ps(_mm512_loadu_ps(x + i), av, bv);
            __m512 w = _mm512_fmadd_ps(_mm512_loadu_ps(x + i + 16), av, bv);
            _mm512_storeu_ps(y + i, sigmoid_mul512(u));
            _mm512_storeu_ps(y + i + 16, sigmoid_mul512(w));
        }
    }
    for (; i < n; i += 16) {
        __mmask16 k = (__mmask16)(n - i >= 16 ? 0xffff : (1u << (n - i)) - 1);
        __m512 v = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(k, x + i), av, bv);
        _mm512_mask_storeu_ps(y + i, k, silu ? sigmoid_mul512(v) : v);
    }
}
// dst[i] = src[i] with non-temporal stores (no read-for-ownership of dst's lines; they bypass the caches), then
// sfence. For copies far larger than the last-level cache: measured (Zen 5, 1 thread) 384 planes of 256 KB
// 4.4 -> 3.8 ms.
TGT void glide_copy_stream(const float *src, float *dst, ptrdiff_t n) {
    ptrdiff_t i = 0;
    for (; i < n && ((uintptr_t)(dst + i) & 31); i++) dst[i] = src[i];
    for (; i + 16 <= n; i += 16) {
        _mm256_stream_ps(dst + i, _mm256_loadu_ps(src + i));
        _mm256_stream_ps(dst + i + 8, _mm256_loadu_ps(src + i + 8));
    }
    for (; i < n; i++) dst[i] = src[i];
    _mm_sfence();
}

#else
void glide_copy_stream(const float *src, float *dst, ptrdiff_t n) { for (ptrdiff_t i = 0; i < n; i++) dst[i] = src[i]; }
void glide_softmax_row_avx2(float *x, ptrdiff_t n) { (void)x; (void)n; }
void glide_silu_avx2(const float *x, float *y, ptrdiff_t n) { (void)x; (void)y; (void)n; }
float glide_softmax_exp_row_avx2(float *x, ptrdiff_t n) { (void)x; (void)n; return 0.f; }
void glide_gelu_avx2(const float *x, float *y, ptrdiff_t n) { (void)x; (void)y; (void)n; }
void glide_affine_silu_avx2(const float *x, float *y, ptrdiff_t n, float a, float b, int silu) { (void)x; (void)y; (void)n; (void)a; (void)b; (void)silu; }
void glide_sum_sq_avx2(const float *x, ptrdiff_t n, double shift, double *sum, double *sumsq) { (void)x; (void)n; (void)shift; *sum = 0; *sumsq = 0; }
void glide_normalize_affine_avx2(const float *x, float *y, ptrdiff_t n, float mean, float rstd, const float *gamma, const float *beta) { (void)x; (void)y; (void)n; (void)mean; (void)rstd; (void)gamma; (void)beta; }
void glide_sum_sq_avx512(const float *x, ptrdiff_t n, double shift, double *sum, double *sumsq) { (void)x; (void)n; (void)shift; *sum = 0; *sumsq = 0; }
float glide_softmax_exp_row_avx512(float *x, ptrdiff_t n) { (void)x; (void)n; return 0.f; }
void glide_affine_silu_avx512(const float *x, float *y, ptrdiff_t n, float a, float b, int silu) { (void)x; (void)y; (void)n; (void)a; (void)b; (void)silu; }
#endif
