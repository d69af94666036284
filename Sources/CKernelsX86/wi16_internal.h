// Private helpers shared by the int8 Winograd files (gemm_int8_avx2.c: F(2x2, 3x3); winograd_f42.c: F(4x2, 3x3)):
// the 256-long K block, the activation quantizer (round half to even, clamp to +-qmax) and int16 pair packing.
#ifndef GLIDE_WI16_INTERNAL_H
#define GLIDE_WI16_INTERNAL_H
#include <stdint.h>
#include <stddef.h>
#include <stdlib.h>

#define WI_KC 256
#define AI __attribute__((always_inline))

static inline void *wi_aligned(size_t bytes) {
    void *p = NULL;
    if (posix_memalign(&p, 64, bytes ? bytes : 64) != 0) return NULL;
    return p;
}

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

#if defined(__x86_64__)
// The 3x3 kernels of cb <= 32 channels (g[c * 9 + i]) transposed to k[i][c] (zero for c >= cb) with AVX512-VBMI
// byte permutes (gemm_int8_avx2.c; caller checked glide_cpu_has_avx512_vbmi()).
void glide_wi_transpose9_vbmi(const int8_t *g, int cb, int16_t k[9][32]);
#endif

// winograd_f42.c's output transform of the products buf[xi * xs + r * rs + j] of output channels m .. m + mr - 1
// and tiles t0 .. t0 + nt - 1 of a chunk (as glide_wf42_output; `isa`: GLIDE_WF42_*).
void glide_wf42_output_panel(const float *buf, ptrdiff_t xs, ptrdiff_t rs, int m, int mr, ptrdiff_t t0, int nt,
                             int O, int OH, int OW, int ty0, const float *bias, float *y, int accumulate, int isa);

#endif
