// The convolution pre-activation materialised (glide_preact_apply): the twin of the one winograd_f42.c's fused
// input transform applies as it loads, the same bits (preact_internal.h), for the convolution paths that read a
// plain input.
#include "CKernelsX86.h"
#include "preact_internal.h"

static void preact_plane_portable(const float *x, float *y, ptrdiff_t n, float a, float b, int silu) {
    for (ptrdiff_t i = 0; i < n; i++) y[i] = preact_scalar(x[i], a, b, silu);
}

#if defined(__x86_64__)
__attribute__((target("avx512f"))) static void preact_plane_avx512(const float *x, float *y, ptrdiff_t n, float a,
                                                                    float b, int silu) {
    const __m512 av = _mm512_set1_ps(a), bv = _mm512_set1_ps(b);
    ptrdiff_t i = 0;
    for (; i + 16 <= n; i += 16) _mm512_storeu_ps(y + i, preact512(_mm512_loadu_ps(x + i), av, bv, silu));
    for (; i < n; i += 16) {
        const __mmask16 k = (__mmask16)(n - i >= 16 ? 0xffff : (1u << (n - i)) - 1);
        _mm512_mask_storeu_ps(y + i, k, preact512(_mm512_maskz_loadu_ps(k, x + i), av, bv, silu));
    }
}

__attribute__((target("avx2,fma"))) static void preact_plane_avx2(const float *x, float *y, ptrdiff_t n, float a,
                                                                   float b, int silu) {
    const __m256 av = _mm256_set1_ps(a), bv = _mm256_set1_ps(b);
    ptrdiff_t i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, preact256(_mm256_loadu_ps(x + i), av, bv, silu));
    for (; i < n; i++) y[i] = preact_scalar(x[i], a, b, silu);
}
#endif

void glide_preact_apply(const float *x, float *y, ptrdiff_t spatial, ptrdiff_t c0, ptrdiff_t c1,
                        const glide_preact *pre, int isa) {
    for (ptrdiff_t c = c0; c < c1; c++) {
        const float *xc = x + c * spatial;
        float *yc = y + c * spatial;
        const float a = pre->a[c], b = pre->b[c];
#if defined(__x86_64__)
        if (isa == GLIDE_WF42_AVX512) { preact_plane_avx512(xc, yc, spatial, a, b, pre->silu); continue; }
        if (isa == GLIDE_WF42_AVX2) { preact_plane_avx2(xc, yc, spatial, a, b, pre->silu); continue; }
#endif
        preact_plane_portable(xc, yc, spatial, a, b, pre->silu);
    }
    (void)isa;
}
