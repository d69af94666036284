// Private helpers shared by the int8 Winograd files (gemm_int8_avx2.c: F(2x2, 3x3); winograd_f42.c: F(4x2, 3x3)):
// the 256-long K block, the activation quantizer (round half to even, clamp to +-qmax; also gemm_int8_vnni.c's),
// int16 pair packing and the fused transforms' column maxima.
#ifndef GLIDE_WI16_INTERNAL_H
#define GLIDE_WI16_INTERNAL_H
#include <stdint.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#define WI_KC 256
#define AI __attribute__((always_inline))

// Round to nearest even (|x| < 2^22) and clamp to [-qmax, qmax]; no libm call, vectorises on plain SSE2.
static inline AI int wi_round(float x, int qmax) {
    float t = x + 12582912.f;
    t = t - 12582912.f;
    int q = (int)t;
    q = q > qmax ? qmax : q;
    q = q < -qmax ? -qmax : q;
    return q;
}

static inline AI uint32_t wi_pair(int lo, int hi) { return (uint32_t)(lo & 0xffff) | (uint32_t)(hi & 0xffff) << 16; }

// The quantizing half of a B panel, given the column maxima mx[0..NB-1]: scales[j] = mx[j] / qmax and
// dst[p * NB + j] = (q[2p][j], q[2p+1][j]) for rows of x (stride rs); columns nr .. NB-1 are zero.
static inline AI void wi_quantize_pairs(const float *x, ptrdiff_t rs, const float *mx, int kc, int nr, const int NB,
                                        int qmax, uint32_t *restrict dst, float *restrict scales) {
    float inv[64];
    for (int j = 0; j < NB; j++) {
        float s = mx[j] / (float)qmax;
        scales[j] = s;
        inv[j] = s > 0.f ? 1.f / s : 0.f;
    }
    static const float zeros[64];
    const int kp = (kc + 1) / 2;
    for (int p = 0; p < kp; p++) {
        const float *r0 = x + 2 * p * rs, *r1 = 2 * p + 1 < kc ? x + (2 * p + 1) * rs : zeros;
        uint32_t *o = dst + p * NB;
        if (nr == NB)
            for (int j = 0; j < NB; j++) o[j] = wi_pair(wi_round(r0[j] * inv[j], qmax), wi_round(r1[j] * inv[j], qmax));
        else {
            for (int j = 0; j < nr; j++) o[j] = wi_pair(wi_round(r0[j] * inv[j], qmax), wi_round(r1[j] * inv[j], qmax));
            for (int j = nr; j < NB; j++) o[j] = 0;
        }
    }
}

// The fused input transforms' running column maxima: |v| as a bit pattern (NaN counts as 0).
static inline AI uint32_t wi_abs_bits(float v) {
    uint32_t b;
    memcpy(&b, &v, 4);
    b &= 0x7fffffffu;
    return b <= 0x7f800000u ? b : 0;
}

// wi_quantize_pairs on one position's K block tb (row stride NB; columns past the chunk are zero there, so their
// max, scale and words are 0) with the column maxima mxb (wi_abs_bits patterns) taken during the transform.
static inline AI void wi_quantize_block(const float *tb, const uint32_t *mxb, int kc, int NB, int qmax,
                                        uint32_t *restrict dst, float *restrict scales) {
    float mx[64];
    memcpy(mx, mxb, (size_t)NB * 4);
    wi_quantize_pairs(tb, NB, mx, kc, NB, NB, qmax, dst, scales);
}

#if defined(__x86_64__)
#include <immintrin.h>
#define WI_T512F __attribute__((target("avx512f,avx512bw,avx512vl")))

// Lanes [lo, hi) of 16 floats starting at column s that lie in [0, W).
static inline WI_T512F __mmask16 wi_range_mask16(ptrdiff_t s, int W) {
    ptrdiff_t lo = s < 0 ? -s : 0, hi = W - s;
    if (hi > 16) hi = 16;
    if (hi <= lo) return 0;
    return (__mmask16)((((uint32_t)1 << hi) - 1) & ~(((uint32_t)1 << lo) - 1));
}

// Stores the lanes sm of v to dst and raises the column maxima mx[0..15] (wi_abs_bits of each lane).
static inline WI_T512F void wi_store_max16(float *dst, uint32_t *mx, __mmask16 sm, __m512 v) {
    _mm512_mask_storeu_ps(dst, sm, v);
    __m512i b = _mm512_and_si512(_mm512_castps_si512(v), _mm512_set1_epi32(0x7fffffff));
    b = _mm512_maskz_mov_epi32(_mm512_cmple_epu32_mask(b, _mm512_set1_epi32(0x7f800000)), b);
    __m512i m = _mm512_loadu_si512(mx);
    _mm512_storeu_si512(mx, _mm512_mask_max_epu32(m, sm, m, b));
}

// The 3x3 kernels of cb <= 32 channels (g[c * 9 + i]) transposed to k[i][c] (zero for c >= cb) with AVX512-VBMI
// byte permutes (gemm_int8_avx2.c; caller checked glide_cpu_has_avx512_vbmi()).
void glide_wi_transpose9_vbmi(const int8_t *g, int cb, int16_t k[9][32]);
#endif

// winograd_f42.c's output transform of the products buf[xi * xs + r * rs + j] of output channels m .. m + mr - 1
// and tiles t0 .. t0 + nt - 1 of a chunk (as glide_wf42_output; `isa`: GLIDE_WF42_*).
void glide_wf42_output_panel(const float *buf, ptrdiff_t xs, ptrdiff_t rs, int m, int mr, ptrdiff_t t0, int nt,
                             int O, int OH, int OW, int ty0, const float *bias, float *y, int accumulate, int isa);
// winograd_f44.c's: the same for F(4x4) (36 positions).
void glide_wf44_output_panel(const float *buf, ptrdiff_t xs, ptrdiff_t rs, int m, int mr, ptrdiff_t t0, int nt,
                             int O, int OH, int OW, int ty0, const float *bias, float *y, int accumulate, int isa);

#endif
