// int8-weight GEMM with u8 x s8 -> i32 dot products of 4 (`vpdpbusd`): AVX512-VNNI (zmm, 8x32 tile),
// AVX-VNNI (ymm, 6x16 tile) and a portable emulation that runs everywhere.
//
// y[m, n] (+)= sum_k W[m, k] X[k, n] + bias[m], W int8 with one scale per row, X f32 (strided or the
// implicit im2col of an NCHW image, as gemm.c). X is quantized on the fly, one scale per column and per
// block of KC = 256 K values:
//   8-bit  (act_qmax <= 127): q = round(x / s) in [-qmax, qmax], stored as u8 q + 128; one vpdpbusd pass.
//   16-bit (act_qmax > 127):  q = round(x / s) in [-32767, 32767] split q = 256 * hi + lo with hi = q >> 8
//                             (stored u8 hi + 128) and lo = q & 255 (stored u8); two passes, acc = 256 *
//                             acc_hi + acc_lo: exactly today's int8 x int16 product at twice the 8-bit cost.
// The +128 offset is removed with the row's weight sum of the block: the accumulators start at
// -128 * sum_k W[m, k] (the 16-bit mode shifts them left by 8 between the passes). Int32 never overflows:
// |acc| <= 256 * 127 * (128 * 256 + 255).
// The result of each block is rescaled as f32 `(float)acc * (wscale[m] * xscale[n])` and added to y in block
// order, so every output element depends only on its row, its column and K: results are bit-identical for any
// tile shape, any (m0, m1, n0, n1) partition and between the emulation and the intrinsic kernels.
// Packing and quantization are portable C (auto-vectorised; compiled once per target by inlining) shared by
// all three paths; only the inner dot-product loop differs.
#include "CKernelsX86.h"
#include "include/glide_scratch.h"
#include <stdlib.h>
#include <string.h>
#include <math.h>
#include "wi16_internal.h"

#pragma STDC FP_CONTRACT OFF

#define I8_KC 256
// Columns per block: the block's f32 outputs (M x I8_NC, re-read once per K block) stay in L2 for M <= 384
// (512 measured 5-10 % faster than 1024 on the UNet's 1x1 convolutions, Zen 5; same bits for any value).
#define I8_NC 512
#define I8_MC_PANELS 18
#ifndef I8_A_PREFETCH
#define I8_A_PREFETCH 4
#endif
#ifndef I8_STRIDED_PANELS
#define I8_STRIDED_PANELS 8   // panels per pass of i8_pack_quantize_strided8_zmm
#endif

// ---------------------------------------------------------------- portable packing (shared)

// One f32 column panel dst[k * NB + j], k < kc, columns n .. n + nr - 1 (columns nr .. NB-1 are zero).
static inline AI void i8_pack_b_f32(const glide_gemm_desc *d, ptrdiff_t k0, int kc, ptrdiff_t n, int nr,
                                    const int NB, float *restrict dst) {
    if (d->src_kind == GLIDE_SRC_STRIDED) {
        const float *x = d->x + k0 * d->x_rs + n * d->x_cs;
        if (d->x_cs == 1) {
            for (int k = 0; k < kc; k++) {
                const float *s = x + k * d->x_rs;
                float *o = dst + k * NB;
                for (int j = 0; j < nr; j++) o[j] = s[j];
                for (int j = nr; j < NB; j++) o[j] = 0.f;
            }
        } else if (d->x_rs == 1) {   // token-major activations: each column is dense along k
            for (int j = 0; j < NB; j++) {
                if (j >= nr) { for (int k = 0; k < kc; k++) dst[k * NB + j] = 0.f; continue; }
                const float *s = x + j * d->x_cs;
                for (int k = 0; k < kc; k++) dst[k * NB + j] = s[k];
            }
        } else {
            for (int k = 0; k < kc; k++)
                for (int j = 0; j < NB; j++) dst[k * NB + j] = j < nr ? x[k * d->x_rs + j * d->x_cs] : 0.f;
        }
        return;
    }
    // implicit im2col: the panel's columns split into runs that lie in one output row
    const int ks = d->conv_k, kk = ks * ks, H = d->conv_h, W = d->conv_w, st = d->conv_stride, pad = d->conv_pad;
    const int ow = d->conv_ow;
    int rj[64], rlen[64], riy[64], rix[64], runs = 0;
    for (int j = 0; j < nr;) {
        ptrdiff_t nn = n + j;
        int oy = (int)(nn / ow), ox = (int)(nn % ow);
        int len = ow - ox < nr - j ? ow - ox : nr - j;
        rj[runs] = j; rlen[runs] = len; riy[runs] = oy * st - pad; rix[runs] = ox * st - pad; runs++;
        j += len;
    }
    int c = (int)(k0 / kk), r = (int)(k0 % kk);
    int ky = r / ks, kx = r % ks;
    const float *plane = d->x + (ptrdiff_t)c * H * W;
    for (int k = 0; k < kc; k++) {
        float *o = dst + k * NB;
        for (int u = 0; u < runs; u++) {
            float *ou = o + rj[u];
            const int len = rlen[u], iy = riy[u] + ky, ix = rix[u] + kx;
            if (iy < 0 || iy >= H) { for (int t = 0; t < len; t++) ou[t] = 0.f; continue; }
            const float *row = plane + (ptrdiff_t)iy * W;
            if (st == 1) {
                int lo = ix < 0 ? -ix : 0, hi = W - ix < len ? W - ix : len;
                if (hi < lo) hi = lo;
                for (int t = 0; t < lo; t++) ou[t] = 0.f;
                for (int t = lo; t < hi; t++) ou[t] = row[ix + t];
                for (int t = hi; t < len; t++) ou[t] = 0.f;
            } else {
                for (int t = 0; t < len; t++) {
                    int xx = ix + t * st;
                    ou[t] = xx >= 0 && xx < W ? row[xx] : 0.f;
                }
            }
        }
        for (int j = nr; j < NB; j++) o[j] = 0.f;
        if (++kx == ks) { kx = 0; if (++ky == ks) { ky = 0; plane += (ptrdiff_t)H * W; } }
    }
}

static inline AI uint32_t i8_bytes(int b0, int b1, int b2, int b3) {
    return (uint32_t)(b0 & 255) | (uint32_t)(b1 & 255) << 8 | (uint32_t)(b2 & 255) << 16 | (uint32_t)(b3 & 255) << 24;
}

// Quantizes an f32 panel [kc][NB] per column: scales[j] = max_k |x| / qmax, and the u8 groups of 4 k
// hi[g * NB + j] (byte i = k 4g+i; k >= kc count as 0) and, in 16-bit mode, lo[g * NB + j].
static inline AI void i8_quantize_panel(const float *restrict src, int kc, const int NB, int qmax,
                                        uint32_t *restrict hi, uint32_t *restrict lo, float *restrict scales) {
    static const float zeros[64];
    float mx[64], inv[64];
    for (int j = 0; j < NB; j++) mx[j] = 0.f;
    for (int k = 0; k < kc; k++)
        for (int j = 0; j < NB; j++) { float a = fabsf(src[k * NB + j]); mx[j] = a > mx[j] ? a : mx[j]; }
    for (int j = 0; j < NB; j++) {
        float s = mx[j] / (float)qmax;
        scales[j] = s;
        inv[j] = s > 0.f ? 1.f / s : 0.f;
    }
    const int kq = (kc + 3) / 4, two = qmax > 127;
    for (int g = 0; g < kq; g++) {
        const float *r0 = src + (4 * g) * NB;
        const float *r1 = 4 * g + 1 < kc ? src + (4 * g + 1) * NB : zeros;
        const float *r2 = 4 * g + 2 < kc ? src + (4 * g + 2) * NB : zeros;
        const float *r3 = 4 * g + 3 < kc ? src + (4 * g + 3) * NB : zeros;
        uint32_t *h = hi + g * NB;
        if (two) {
            uint32_t *l = lo + g * NB;
            for (int j = 0; j < NB; j++) {
                int q0 = wi_round(r0[j] * inv[j], qmax), q1 = wi_round(r1[j] * inv[j], qmax);
                int q2 = wi_round(r2[j] * inv[j], qmax), q3 = wi_round(r3[j] * inv[j], qmax);
                h[j] = i8_bytes((q0 >> 8) + 128, (q1 >> 8) + 128, (q2 >> 8) + 128, (q3 >> 8) + 128);
                l[j] = i8_bytes(q0, q1, q2, q3);
            }
        } else {
            for (int j = 0; j < NB; j++) {
                int q0 = wi_round(r0[j] * inv[j], qmax), q1 = wi_round(r1[j] * inv[j], qmax);
                int q2 = wi_round(r2[j] * inv[j], qmax), q3 = wi_round(r3[j] * inv[j], qmax);
                h[j] = i8_bytes(q0 + 128, q1 + 128, q2 + 128, q3 + 128);
            }
        }
    }
}

// Weight panel: dst[g * MR + r] = W[m + r, k0 + 4g .. 4g + 3] as 4 s8 bytes (zero beyond kc and for rows >= mr),
// wsum[r] = the row's weight sum over the block, wscale[r] its scale (0 for rows >= mr).
static inline AI void i8_pack_a(const glide_gemm_desc *d, ptrdiff_t m, int mr, const int MR, ptrdiff_t k0, int kc,
                                uint32_t *restrict dst, int32_t *restrict wsum, float *restrict wscale,
                                glide_dword_pack8_fn dwpack) {
    static const int8_t zeros[I8_KC + 4];
    const int kq = (kc + 3) / 4, k4 = kc / 4;
    const int8_t *rows[8];
    for (int r = 0; r < MR; r++) {
        rows[r] = r < mr ? (const int8_t *)d->w + (m + r) * d->ldw + k0 : zeros;
        int32_t sum = 0;
        for (int k = 0; k < kc; k++) sum += rows[r][k];
        wsum[r] = sum; wscale[r] = r < mr ? d->w_scales[m + r] : 0.f;
    }
    if (dwpack && MR == 8 && mr == MR) dwpack((const char *)rows[0], d->ldw, k4, dst);
    else
        for (int g = 0; g < k4; g++)
            for (int r = 0; r < MR; r++) { uint32_t v; memcpy(&v, rows[r] + 4 * g, 4); dst[g * MR + r] = v; }
    if (k4 < kq)
        for (int r = 0; r < MR; r++) {
            int8_t t[4] = {0, 0, 0, 0};
            for (int k = 4 * k4; k < kc; k++) t[k - 4 * k4] = rows[r][k];
            uint32_t v; memcpy(&v, t, 4); dst[k4 * MR + r] = v;
        }
}

// The f32 update of one output element from its block accumulator (the same expression on every path).
static inline AI void i8_update(float *y, int32_t acc, float ws, float xs, float b, int add_old) {
    float p = ws * xs;
    float t = (float)acc * p;
    float v = t + b;
    *y = add_old ? *y + v : v;
}

// ---------------------------------------------------------------- kernels

// Arguments of one tile (MR x NB outputs of one K block).
typedef struct i8_tile {
    int kq, two;                 // groups of 4 k; 16-bit mode
    const uint32_t *a;           // [kq][MR]
    const uint32_t *bh, *bl;     // [kq][NB]
    const int32_t *wsum;         // [MR]
    const float *ws, *xs;        // [MR], [NB]
    const float *bias;           // bias + m, or NULL (first block only)
    float *y; ptrdiff_t y_rs;    // y + m * y_rs + n, y_cs == 1
    int mr, nr, add_old;
} i8_tile;

typedef void (*i8_kernel_fn)(const i8_tile *t);
// Packs and quantizes one activation panel (i8_pack_b_f32 + i8_quantize_panel in one; `fpanel`: scratch).
typedef void (*i8_packq_fn)(const glide_gemm_desc *d, ptrdiff_t k0, int kc, ptrdiff_t n, int nr, int qmax,
                            uint32_t *hi, uint32_t *lo, float *scales, float *fpanel);
// The same for up to 8 adjacent panels (columns n .. n + ncols) of a strided source with x_cs == 1.
typedef void (*i8_packq8_fn)(const glide_gemm_desc *d, ptrdiff_t k0, int kc, ptrdiff_t n, int ncols, int qmax, int kq,
                             uint32_t *hi, uint32_t *lo, float *scales);

// vpdpbusd semantics: sum of 4 products of unsigned bytes of `u` by signed bytes of `s`, added to acc (no saturation).
static inline AI int32_t i8_dp4(int32_t acc, uint32_t u, uint32_t s) {
    for (int i = 0; i < 4; i++) acc += (int32_t)(uint8_t)(u >> (8 * i)) * (int32_t)(int8_t)(uint8_t)(s >> (8 * i));
    return acc;
}

static inline AI void i8_kernel_emulated(const i8_tile *t, const int MR, const int NB) {
    int32_t acc[8 * 64];
    for (int r = 0; r < MR; r++)
        for (int j = 0; j < NB; j++) acc[r * NB + j] = -128 * t->wsum[r];
    for (int g = 0; g < t->kq; g++)
        for (int r = 0; r < MR; r++)
            for (int j = 0; j < NB; j++) acc[r * NB + j] = i8_dp4(acc[r * NB + j], t->bh[g * NB + j], t->a[g * MR + r]);
    if (t->two) {
        for (int i = 0; i < MR * NB; i++) acc[i] *= 256;
        for (int g = 0; g < t->kq; g++)
            for (int r = 0; r < MR; r++)
                for (int j = 0; j < NB; j++) acc[r * NB + j] = i8_dp4(acc[r * NB + j], t->bl[g * NB + j], t->a[g * MR + r]);
    }
    for (int r = 0; r < t->mr; r++) {
        float b = t->bias ? t->bias[r] : 0.f;
        for (int j = 0; j < t->nr; j++) i8_update(t->y + r * t->y_rs + j, acc[r * NB + j], t->ws[r], t->xs[j], b, t->add_old);
    }
}
static void i8_kernel_emulated_zmm(const i8_tile *t) { i8_kernel_emulated(t, GLIDE_I8_ZMM_MR, GLIDE_I8_ZMM_NB); }
static void i8_kernel_emulated_ymm(const i8_tile *t) { i8_kernel_emulated(t, GLIDE_I8_YMM_MR, GLIDE_I8_YMM_NB); }

#if defined(__x86_64__)
#include <immintrin.h>
#define T512 __attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni")))
#define TAVXVNNI __attribute__((target("avx2,fma,avxvnni")))

// dst[g * 8 + r] = the dword at base + r * row_bytes + 4 g, g < groups: 8x8 dword transposes in ymm registers
// (the portable loop in i8_pack_a/wi_pack_a writes the same; with it the weight panels cost ~2 ms per 768->768
// 8x8 convolution; AVX-512 gathers measured 2.5x slower than the loop on the Winograd weights).
__attribute__((target("avx2"))) void glide_dword_pack8_avx512(const char *base, ptrdiff_t row_bytes, int groups,
                                                              uint32_t *dst) {
    int g = 0;
    for (; g + 8 <= groups; g += 8) {
        __m256 r[8], t[8];
        for (int i = 0; i < 8; i++) r[i] = _mm256_loadu_ps((const float *)(base + i * row_bytes + 4 * g));
        for (int i = 0; i < 8; i += 2) { t[i] = _mm256_unpacklo_ps(r[i], r[i + 1]); t[i + 1] = _mm256_unpackhi_ps(r[i], r[i + 1]); }
        // t0 = r0r1 (g0,g1 | g4,g5), t1 = r0r1 (g2,g3 | g6,g7), t2/t3 = r2r3, t4/t5 = r4r5, t6/t7 = r6r7
        __m256 u[8];
        u[0] = _mm256_shuffle_ps(t[0], t[2], 0x44); u[1] = _mm256_shuffle_ps(t[0], t[2], 0xee);   // r0-3: g0 | g4, g1 | g5
        u[2] = _mm256_shuffle_ps(t[1], t[3], 0x44); u[3] = _mm256_shuffle_ps(t[1], t[3], 0xee);   // g2 | g6, g3 | g7
        u[4] = _mm256_shuffle_ps(t[4], t[6], 0x44); u[5] = _mm256_shuffle_ps(t[4], t[6], 0xee);   // r4-7
        u[6] = _mm256_shuffle_ps(t[5], t[7], 0x44); u[7] = _mm256_shuffle_ps(t[5], t[7], 0xee);
        float *o = (float *)(dst + g * 8);
        for (int j = 0; j < 4; j++) {   // j = g0..g3 within the lane
            _mm256_storeu_ps(o + j * 8, _mm256_permute2f128_ps(u[j], u[4 + j], 0x20));
            _mm256_storeu_ps(o + (j + 4) * 8, _mm256_permute2f128_ps(u[j], u[4 + j], 0x31));
        }
    }
    for (; g < groups; g++)
        for (int r = 0; r < 8; r++) { uint32_t v; memcpy(&v, base + r * row_bytes + 4 * g, 4); dst[g * 8 + r] = v; }
}

// Quantizes and packs one 32-column activation panel (the zmm layout) straight from the source where its rows are
// contiguous: a strided matrix with x_cs == 1 (1x1 convolutions), and the implicit im2col of a stride-1 convolution
// whose output is as large as its input (each k row of the panel is then the image plane read at one fixed offset,
// with the padding as a lane mask). Other sources go through the portable f32 panel (i8_pack_b_f32). The
// values, scales and bytes are exactly those of i8_pack_b_f32 + i8_quantize_panel: the same max |x|, the same
// f32 divide and multiply, and vcvtps2dq's round-to-nearest-even equals wi_round's magic-number rounding for
// |x| < 2^22 (larger |x * inv| cannot occur: |x| <= max, inv = qmax / max; NaN gives INT_MIN in both).
T512 static void i8_pack_quantize_zmm(const glide_gemm_desc *d, ptrdiff_t k0, int kc, ptrdiff_t n, int nr, int qmax,
                                      uint32_t *restrict hi, uint32_t *restrict lo, float *restrict scales,
                                      float *restrict fpanel) {
    enum { NB = GLIDE_I8_ZMM_NB };
    // row k (k < kc) of the panel: 32 floats at rp[k], lanes outside the panel (or the image) masked by
    // lm0/lm1[ri[k]]
    const float *rp[I8_KC];
    unsigned char ri[I8_KC];
    __mmask16 lm0[9], lm1[9];
    const int ks = d->conv_k, H = d->conv_h, W = d->conv_w, pad = d->conv_pad;
    lm0[0] = (__mmask16)(nr >= 16 ? 0xffff : (1u << nr) - 1);
    lm1[0] = (__mmask16)(nr >= 32 ? 0xffff : nr <= 16 ? 0 : (1u << (nr - 16)) - 1);
    if (d->src_kind == GLIDE_SRC_STRIDED && d->x_cs == 1) {
        const float *x = d->x + k0 * d->x_rs + n;
        for (int k = 0; k < kc; k++) { rp[k] = x + k * d->x_rs; ri[k] = 0; }
    } else if (d->src_kind == GLIDE_SRC_CONV && d->conv_stride == 1 && ks <= 3 && d->conv_ow == W &&
               H + 2 * pad - ks + 1 == H && W + 2 * pad - ks + 1 == W) {
        ptrdiff_t coff[9];
        for (int ky = 0; ky < ks; ky++)
            for (int kx = 0; kx < ks; kx++) {
                uint32_t bits = 0;
                for (int j = 0; j < nr; j++) {
                    ptrdiff_t nn = n + j;
                    int iy = (int)(nn / W) + ky - pad, ix = (int)(nn % W) + kx - pad;
                    if (iy >= 0 && iy < H && ix >= 0 && ix < W) bits |= 1u << j;
                }
                lm0[ky * ks + kx] = (__mmask16)(bits & 0xffff); lm1[ky * ks + kx] = (__mmask16)(bits >> 16);
                coff[ky * ks + kx] = n + (ptrdiff_t)(ky - pad) * W + (kx - pad);
            }
        const int kk = ks * ks;
        int r = (int)(k0 % kk);
        // pointer arithmetic in integers: lanes before the plane's start are masked, never read
        uintptr_t plane = (uintptr_t)(d->x + (k0 / kk) * (ptrdiff_t)H * W);
        for (int k = 0; k < kc; k++) {
            rp[k] = (const float *)(plane + (uintptr_t)(coff[r] * (ptrdiff_t)sizeof(float)));
            ri[k] = (unsigned char)r;
            if (++r == kk) { r = 0; plane += (uintptr_t)H * W * sizeof(float); }
        }
    } else {
        i8_pack_b_f32(d, k0, kc, n, nr, NB, fpanel);
        lm0[0] = lm1[0] = 0xffff;
        for (int k = 0; k < kc; k++) { rp[k] = fpanel + k * NB; ri[k] = 0; }
    }
#define I8_ROW(k, v0, v1) do {                                                                  \
        v0 = _mm512_maskz_loadu_ps(lm0[ri[k]], rp[k]); v1 = _mm512_maskz_loadu_ps(lm1[ri[k]], rp[k] + 16); \
    } while (0)
    __m512 mx0 = _mm512_setzero_ps(), mx1 = _mm512_setzero_ps();
    for (int k = 0; k < kc; k++) {
        __m512 v0, v1;
        I8_ROW(k, v0, v1);
        mx0 = _mm512_max_ps(_mm512_abs_ps(v0), mx0);
        mx1 = _mm512_max_ps(_mm512_abs_ps(v1), mx1);
    }
    const __m512 qm = _mm512_set1_ps((float)qmax), one = _mm512_set1_ps(1.f);
    __m512 s0 = _mm512_div_ps(mx0, qm), s1 = _mm512_div_ps(mx1, qm);
    _mm512_storeu_ps(scales, s0); _mm512_storeu_ps(scales + 16, s1);
    const __m512 inv0 = _mm512_maskz_div_ps(_mm512_cmp_ps_mask(s0, _mm512_setzero_ps(), _CMP_GT_OQ), one, s0);
    const __m512 inv1 = _mm512_maskz_div_ps(_mm512_cmp_ps_mask(s1, _mm512_setzero_ps(), _CMP_GT_OQ), one, s1);
    const __m512i qhi = _mm512_set1_epi32(qmax), qlo = _mm512_set1_epi32(-qmax), off = _mm512_set1_epi32(128);
    const __m512i low = _mm512_set1_epi32(255);
    const int kq = (kc + 3) / 4, two = qmax > 127;
    for (int g = 0; g < kq; g++) {
        __m512i h0 = _mm512_setzero_si512(), h1 = h0, l0 = h0, l1 = h0;
        for (int i = 0; i < 4; i++) {
            int k = 4 * g + i;
            __m512 v0 = _mm512_setzero_ps(), v1 = v0;
            if (k < kc) I8_ROW(k, v0, v1);
            __m512i q0 = _mm512_cvtps_epi32(_mm512_mul_ps(v0, inv0)), q1 = _mm512_cvtps_epi32(_mm512_mul_ps(v1, inv1));
            q0 = _mm512_max_epi32(_mm512_min_epi32(q0, qhi), qlo);
            q1 = _mm512_max_epi32(_mm512_min_epi32(q1, qhi), qlo);
            if (two) {
                __m512i a0 = _mm512_add_epi32(_mm512_srai_epi32(q0, 8), off), a1 = _mm512_add_epi32(_mm512_srai_epi32(q1, 8), off);
                h0 = _mm512_or_si512(h0, _mm512_slli_epi32(_mm512_and_si512(a0, low), 8 * i));
                h1 = _mm512_or_si512(h1, _mm512_slli_epi32(_mm512_and_si512(a1, low), 8 * i));
                l0 = _mm512_or_si512(l0, _mm512_slli_epi32(_mm512_and_si512(q0, low), 8 * i));
                l1 = _mm512_or_si512(l1, _mm512_slli_epi32(_mm512_and_si512(q1, low), 8 * i));
            } else {
                h0 = _mm512_or_si512(h0, _mm512_slli_epi32(_mm512_add_epi32(q0, off), 8 * i));
                h1 = _mm512_or_si512(h1, _mm512_slli_epi32(_mm512_add_epi32(q1, off), 8 * i));
            }
        }
        _mm512_storeu_si512(hi + g * NB, h0); _mm512_storeu_si512(hi + g * NB + 16, h1);
        if (two) { _mm512_storeu_si512(lo + g * NB, l0); _mm512_storeu_si512(lo + g * NB + 16, l1); }
    }
#undef I8_ROW
}

// i8_pack_quantize_zmm for up to 8 adjacent panels of a strided source with x_cs == 1 (1x1 convolutions): each
// source row is read as one contiguous run of up to 256 floats (instead of 32-float pieces 256 rows apart,
// which the hardware prefetchers follow poorly), and the 8 panels' rows (<= 256 KB) stay in L2 for the
// second pass. Panel p covers columns n + 32 p .. (n + ncols). The same values and bytes as per panel.
T512 static void i8_pack_quantize_strided8_zmm(const glide_gemm_desc *d, ptrdiff_t k0, int kc, ptrdiff_t n, int ncols,
                                               int qmax, int kq, uint32_t *restrict hi, uint32_t *restrict lo,
                                               float *restrict scales) {
    enum { NB = GLIDE_I8_ZMM_NB };
    const int P = (ncols + NB - 1) / NB, V = 2 * P;   // zmm vectors per row
    __mmask16 lm[2 * I8_STRIDED_PANELS];
    for (int v = 0; v < V; v++) {
        int left = ncols - 16 * v;
        lm[v] = (__mmask16)(left >= 16 ? 0xffff : left <= 0 ? 0 : (1u << left) - 1);
    }
    const float *x = d->x + k0 * d->x_rs + n;
    const ptrdiff_t rs = d->x_rs;
    __m512 mx[2 * I8_STRIDED_PANELS], inv[2 * I8_STRIDED_PANELS];
    for (int v = 0; v < V; v++) mx[v] = _mm512_setzero_ps();
    for (int k = 0; k < kc; k++) {
        const float *r = x + k * rs;
        for (int v = 0; v < V; v++) mx[v] = _mm512_max_ps(_mm512_abs_ps(_mm512_maskz_loadu_ps(lm[v], r + 16 * v)), mx[v]);
    }
    const __m512 qm = _mm512_set1_ps((float)qmax), one = _mm512_set1_ps(1.f);
    for (int v = 0; v < V; v++) {
        __m512 sv = _mm512_div_ps(mx[v], qm);
        _mm512_storeu_ps(scales + 16 * v, sv);   // panel p's scales at scales + 32 p
        inv[v] = _mm512_maskz_div_ps(_mm512_cmp_ps_mask(sv, _mm512_setzero_ps(), _CMP_GT_OQ), one, sv);
    }
    const __m512i qhi = _mm512_set1_epi32(qmax), qlo = _mm512_set1_epi32(-qmax), off = _mm512_set1_epi32(128);
    const __m512i low = _mm512_set1_epi32(255);
    const int two = qmax > 127;
    const ptrdiff_t pstride = (ptrdiff_t)kq * NB;   // words per panel
    for (int g = 0; g < kq; g++) {
        const float *r[4];
        for (int i = 0; i < 4; i++) r[i] = 4 * g + i < kc ? x + (4 * g + i) * rs : NULL;
        for (int v = 0; v < V; v++) {
            __m512i h = _mm512_setzero_si512(), l = h;
            for (int i = 0; i < 4; i++) {
                __m512 xv = r[i] ? _mm512_maskz_loadu_ps(lm[v], r[i] + 16 * v) : _mm512_setzero_ps();
                // the next pass's rows, one cache line per line read (measured: ~15 % less packing time)
                if (r[i]) _mm_prefetch((const char *)(r[i] + NB * I8_STRIDED_PANELS + 16 * v), _MM_HINT_T0);
                __m512i q = _mm512_cvtps_epi32(_mm512_mul_ps(xv, inv[v]));
                q = _mm512_max_epi32(_mm512_min_epi32(q, qhi), qlo);
                if (two) {
                    __m512i a = _mm512_add_epi32(_mm512_srai_epi32(q, 8), off);
                    h = _mm512_or_si512(h, _mm512_slli_epi32(_mm512_and_si512(a, low), 8 * i));
                    l = _mm512_or_si512(l, _mm512_slli_epi32(_mm512_and_si512(q, low), 8 * i));
                } else {
                    h = _mm512_or_si512(h, _mm512_slli_epi32(_mm512_add_epi32(q, off), 8 * i));
                }
            }
            ptrdiff_t o = (v >> 1) * pstride + g * NB + 16 * (v & 1);
            _mm512_storeu_si512(hi + o, h);
            if (two) _mm512_storeu_si512(lo + o, l);
        }
    }
}

// At most I8_NARROW_COLS columns (the time-embedding linear layers: one column per batch item): the weights go
// in the lanes instead of the activations, so no vpdpbusd is spent on the panel's zero columns. Lanes 0-7 hold
// rows 0-7 at even groups of 4 k, lanes 8-15 the same rows at odd groups (one 64-byte load of the panel); each
// column's activation quad is broadcast to its half. The two halves (and the two chains per column) are summed at
// the end: the same exact integer as i8_kernel_zmm (int32 wrap-around included), then the same f32 update.
#define I8_NARROW_COLS 4
T512 static inline AI void i8_kernel_zmm_narrow_n(const i8_tile *t, const int NC) {
    enum { MR = GLIDE_I8_ZMM_MR, NB = GLIDE_I8_ZMM_NB };
    const int kq = t->kq;
    __m512i c0[I8_NARROW_COLS], c1[I8_NARROW_COLS];
    const __m512i init = _mm512_mullo_epi32(_mm512_maskz_loadu_epi32(0x00ff, t->wsum), _mm512_set1_epi32(-128));
    for (int j = 0; j < NC; j++) { c0[j] = init; c1[j] = _mm512_setzero_si512(); }
    for (int pass = 0; pass <= t->two; pass++) {
        const uint32_t *b = pass ? t->bl : t->bh, *a = t->a;
        if (pass)
            for (int j = 0; j < NC; j++) { c0[j] = _mm512_slli_epi32(c0[j], 8); c1[j] = _mm512_slli_epi32(c1[j], 8); }
#define I8_NARROW_STEP(c, g) do {                                                                          \
            const __m512i av = _mm512_loadu_si512((const void *)(a + (g) * MR));                           \
            for (int j = 0; j < NC; j++)                                                                   \
                c[j] = _mm512_dpbusd_epi32(c[j], _mm512_inserti64x4(_mm512_set1_epi32((int)b[(g) * NB + j]), \
                                           _mm256_set1_epi32((int)b[((g) + 1) * NB + j]), 1), av);          \
        } while (0)
        int g = 0;
        for (; g + 4 <= kq; g += 4) { I8_NARROW_STEP(c0, g); I8_NARROW_STEP(c1, g + 2); }
        if (g + 2 <= kq) { I8_NARROW_STEP(c0, g); g += 2; }
#undef I8_NARROW_STEP
        if (g < kq) {   // odd group count: the last group alone in lanes 0-7
            const __m512i av = _mm512_maskz_loadu_epi32(0x00ff, a + g * MR);
            for (int j = 0; j < NC; j++) c1[j] = _mm512_dpbusd_epi32(c1[j], _mm512_set1_epi32((int)b[g * NB + j]), av);
        }
    }
    int32_t acc[8];
    for (int j = 0; j < NC; j++) {
        __m512i s2 = _mm512_add_epi32(c0[j], c1[j]);
        __m256i s = _mm256_add_epi32(_mm512_castsi512_si256(s2), _mm512_extracti64x4_epi64(s2, 1));
        _mm256_storeu_si256((__m256i *)acc, s);
        for (int r = 0; r < t->mr; r++)
            i8_update(t->y + r * t->y_rs + j, acc[r], t->ws[r], t->xs[j], t->bias ? t->bias[r] : 0.f, t->add_old);
    }
}
T512 static void i8_kernel_zmm_narrow(const i8_tile *t) {
    switch (t->nr) {
    case 1: i8_kernel_zmm_narrow_n(t, 1); break;
    case 2: i8_kernel_zmm_narrow_n(t, 2); break;
    case 3: i8_kernel_zmm_narrow_n(t, 3); break;
    default: i8_kernel_zmm_narrow_n(t, 4); break;
    }
}

// 8 rows x 32 columns: 16 zmm accumulators, 2 activation loads + 8 weight broadcasts per 4 k.
// Measured on Zen 5 (1 thread, CPU time, the UNet's qkv / 8x8 3x3 / 1x1 shapes): the loop runs at ~93 % of
// glide_vnni512_peak_probe and the whole GEMM at 76-85 % with 8-bit activations, 74-92 % of the two-pass rate with
// 16-bit ones (`glide bench kernels` counts 2*M*N*K ops against the one-pass peak, so it shows half that); the
// rest is activation packing (~6 %) and the driver. Tried without gain (same bits, within +-3 % noise): 4x64
// tiles over two panels (0.5 instead of 0.625 loads per vpdpbusd), unrolling by 4, 6-32 row panels per L2
// block; vpdpbusd with an embedded {1to16} broadcast in place of vpbroadcastd was 12-15 % slower.
T512 static void i8_kernel_zmm(const i8_tile *t) {
    enum { MR = GLIDE_I8_ZMM_MR, NB = GLIDE_I8_ZMM_NB };
    if (t->nr <= I8_NARROW_COLS) { i8_kernel_zmm_narrow(t); return; }
    __m512i c[MR][2];
    for (int r = 0; r < MR; r++) c[r][0] = c[r][1] = _mm512_set1_epi32(-128 * t->wsum[r]);
    for (int pass = 0; pass <= t->two; pass++) {
        const uint32_t *b = pass ? t->bl : t->bh, *a = t->a;
        if (pass) for (int r = 0; r < MR; r++) { c[r][0] = _mm512_slli_epi32(c[r][0], 8); c[r][1] = _mm512_slli_epi32(c[r][1], 8); }
        for (int g = 0; g < t->kq; g++) {
            __m512i b0 = _mm512_load_si512((const void *)b), b1 = _mm512_load_si512((const void *)(b + 16));
            for (int r = 0; r < MR; r++) {
                __m512i av = _mm512_set1_epi32((int)a[r]);
                c[r][0] = _mm512_dpbusd_epi32(c[r][0], b0, av);
                c[r][1] = _mm512_dpbusd_epi32(c[r][1], b1, av);
            }
            a += MR; b += NB;
        }
    }
    __m512 x0 = _mm512_loadu_ps(t->xs), x1 = _mm512_loadu_ps(t->xs + 16);
    if (t->mr == MR && t->nr == NB) {
        for (int r = 0; r < MR; r++) {
            __m512 w = _mm512_set1_ps(t->ws[r]), b = _mm512_set1_ps(t->bias ? t->bias[r] : 0.f);
            __m512 v0 = _mm512_add_ps(_mm512_mul_ps(_mm512_cvtepi32_ps(c[r][0]), _mm512_mul_ps(w, x0)), b);
            __m512 v1 = _mm512_add_ps(_mm512_mul_ps(_mm512_cvtepi32_ps(c[r][1]), _mm512_mul_ps(w, x1)), b);
            float *y = t->y + r * t->y_rs;
            if (t->add_old) { v0 = _mm512_add_ps(_mm512_loadu_ps(y), v0); v1 = _mm512_add_ps(_mm512_loadu_ps(y + 16), v1); }
            _mm512_storeu_ps(y, v0); _mm512_storeu_ps(y + 16, v1);
        }
        return;
    }
    int32_t acc[MR * NB];
    for (int r = 0; r < MR; r++) { _mm512_storeu_si512(acc + r * NB, c[r][0]); _mm512_storeu_si512(acc + r * NB + 16, c[r][1]); }
    for (int r = 0; r < t->mr; r++) {
        float b = t->bias ? t->bias[r] : 0.f;
        for (int j = 0; j < t->nr; j++) i8_update(t->y + r * t->y_rs + j, acc[r * NB + j], t->ws[r], t->xs[j], b, t->add_old);
    }
}

// 6 rows x 16 columns: 12 ymm accumulators.
TAVXVNNI static void i8_kernel_ymm(const i8_tile *t) {
    enum { MR = GLIDE_I8_YMM_MR, NB = GLIDE_I8_YMM_NB };
    __m256i c[MR][2];
    for (int r = 0; r < MR; r++) c[r][0] = c[r][1] = _mm256_set1_epi32(-128 * t->wsum[r]);
    for (int pass = 0; pass <= t->two; pass++) {
        const uint32_t *b = pass ? t->bl : t->bh, *a = t->a;
        if (pass) for (int r = 0; r < MR; r++) { c[r][0] = _mm256_slli_epi32(c[r][0], 8); c[r][1] = _mm256_slli_epi32(c[r][1], 8); }
        for (int g = 0; g < t->kq; g++) {
            __m256i b0 = _mm256_load_si256((const __m256i *)b), b1 = _mm256_load_si256((const __m256i *)(b + 8));
            for (int r = 0; r < MR; r++) {
                __m256i av = _mm256_set1_epi32((int)a[r]);
                c[r][0] = _mm256_dpbusd_avx_epi32(c[r][0], b0, av);
                c[r][1] = _mm256_dpbusd_avx_epi32(c[r][1], b1, av);
            }
            a += MR; b += NB;
        }
    }
    __m256 x0 = _mm256_loadu_ps(t->xs), x1 = _mm256_loadu_ps(t->xs + 8);
    if (t->mr == MR && t->nr == NB) {
        for (int r = 0; r < MR; r++) {
            __m256 w = _mm256_set1_ps(t->ws[r]), b = _mm256_set1_ps(t->bias ? t->bias[r] : 0.f);
            __m256 v0 = _mm256_add_ps(_mm256_mul_ps(_mm256_cvtepi32_ps(c[r][0]), _mm256_mul_ps(w, x0)), b);
            __m256 v1 = _mm256_add_ps(_mm256_mul_ps(_mm256_cvtepi32_ps(c[r][1]), _mm256_mul_ps(w, x1)), b);
            float *y = t->y + r * t->y_rs;
            if (t->add_old) { v0 = _mm256_add_ps(_mm256_loadu_ps(y), v0); v1 = _mm256_add_ps(_mm256_loadu_ps(y + 8), v1); }
            _mm256_storeu_ps(y, v0); _mm256_storeu_ps(y + 8, v1);
        }
        return;
    }
    int32_t acc[MR * NB];
    for (int r = 0; r < MR; r++) { _mm256_storeu_si256((__m256i *)(acc + r * NB), c[r][0]); _mm256_storeu_si256((__m256i *)(acc + r * NB + 8), c[r][1]); }
    for (int r = 0; r < t->mr; r++) {
        float b = t->bias ? t->bias[r] : 0.f;
        for (int j = 0; j < t->nr; j++) i8_update(t->y + r * t->y_rs + j, acc[r * NB + j], t->ws[r], t->xs[j], b, t->add_old);
    }
}
#endif

// ---------------------------------------------------------------- driver (shared)

// Scratch from the calling thread's stack (glide_scratch.h): released with the mark taken before it.
static void *i8_aligned(size_t bytes) { return glide_scratch_alloc(bytes); }

// y_cs == 1 (the token-major case is staged by the caller).
static inline AI int i8_run(const glide_gemm_desc *d, ptrdiff_t m0, ptrdiff_t m1, ptrdiff_t n0, ptrdiff_t n1,
                            const int MR, const int NB, i8_kernel_fn kernel, glide_dword_pack8_fn dwpack,
                            i8_packq_fn packq, i8_packq8_fn packq8) {
    const ptrdiff_t K = d->K;
    if (K == 0) {
        for (ptrdiff_t m = m0; m < m1; m++)
            for (ptrdiff_t n = n0; n < n1; n++) {
                float *y = d->y + m * d->y_rs + n * d->y_cs;
                float b = d->bias ? d->bias[m] : 0.f;
                *y = d->accumulate ? *y + b : b;
            }
        return 0;
    }
    const int two = d->act_qmax > 127;
    const int qmax = d->act_qmax > 32767 ? 32767 : d->act_qmax < 1 ? 1 : d->act_qmax;
    const i8_packq8_fn strided8 = packq8 && d->src_kind == GLIDE_SRC_STRIDED && d->x_cs == 1 ? packq8 : NULL;
    const ptrdiff_t ncap = n1 - n0 < I8_NC ? n1 - n0 : I8_NC;
    const int npanels = (int)((ncap + NB - 1) / NB);
    // The weights of the block are packed once for all column blocks (about M x K bytes of scratch).
    const int mpt = (int)((m1 - m0 + MR - 1) / MR), nkb = (int)((K + I8_KC - 1) / I8_KC);
    const int kqmax = I8_KC / 4;
    // Weights packed once (glide_i8_prepack): used when this block starts on one of its panels.
    const int prepacked = d->w_packed && d->w_packed_sums && (d->w_packed_row0 + m0) % MR == 0;
    const ptrdiff_t gp0 = prepacked ? (d->w_packed_row0 + m0) / MR : 0, gpanels = d->w_packed_panels;
    const size_t mark = glide_scratch_mark();
    float *fpanel = i8_aligned(sizeof(float) * I8_KC * NB);
    uint32_t *bh = i8_aligned(sizeof(uint32_t) * kqmax * NB * npanels);
    uint32_t *bl = two ? i8_aligned(sizeof(uint32_t) * kqmax * NB * npanels) : NULL;
    float *xs = i8_aligned(sizeof(float) * NB * npanels);
    uint32_t *ap = prepacked ? NULL : i8_aligned(sizeof(uint32_t) * (size_t)kqmax * MR * mpt * nkb);
    int32_t *wsum = prepacked ? NULL : i8_aligned(sizeof(int32_t) * (size_t)MR * mpt * nkb);
    float *ws = i8_aligned(sizeof(float) * MR * mpt);
    if (!fpanel || !bh || (two && !bl) || !xs || (!prepacked && (!ap || !wsum)) || !ws) {
        glide_scratch_release(mark);
        return -1;
    }
    // (prepacked: only the scales are copied; no clock reads, whose cost the profile would book as packing)
    unsigned long long pt1 = glide_profile_enabled && !prepacked ? glide_profile_now_ns() : 0;
    if (prepacked)
        for (int ip = 0; ip < mpt; ip++) {
            ptrdiff_t m = m0 + (ptrdiff_t)ip * MR;
            int mr = (int)(m1 - m < MR ? m1 - m : MR);
            for (int r = 0; r < MR; r++) ws[ip * MR + r] = r < mr ? d->w_scales[m + r] : 0.f;
        }
    else
    for (int kb = 0; kb < nkb; kb++) {
        ptrdiff_t pc = (ptrdiff_t)kb * I8_KC;
        int kc = (int)(K - pc < I8_KC ? K - pc : I8_KC), kq = (kc + 3) / 4;
        for (int ip = 0; ip < mpt; ip++) {
            ptrdiff_t m = m0 + (ptrdiff_t)ip * MR;
            int mr = (int)(m1 - m < MR ? m1 - m : MR);
            i8_pack_a(d, m, mr, MR, pc, kc, ap + ((size_t)kb * mpt + ip) * kqmax * MR,
                      wsum + ((size_t)kb * mpt + ip) * MR, ws + ip * MR, dwpack);
        }
    }
    if (glide_profile_enabled && !prepacked) glide_profile_add_ns(GLIDE_PROFILE_PACK_WEIGHTS, glide_profile_now_ns() - pt1);
    for (ptrdiff_t jc = n0; jc < n1; jc += I8_NC) {
        ptrdiff_t nc = n1 - jc < I8_NC ? n1 - jc : I8_NC;
        int np = (int)((nc + NB - 1) / NB);
        for (int kb = 0; kb < nkb; kb++) {
            ptrdiff_t pc = (ptrdiff_t)kb * I8_KC;
            int kc = (int)(K - pc < I8_KC ? K - pc : I8_KC);
            int kq = (kc + 3) / 4;
            int first = pc == 0;
            unsigned long long pt0 = glide_profile_enabled ? glide_profile_now_ns() : 0;
            int jp0 = 0;
            if (strided8)   // 1x1 convolutions: I8_STRIDED_PANELS panels at a time, rows read contiguously
                for (; jp0 < np; jp0 += I8_STRIDED_PANELS) {
                    ptrdiff_t n = jc + (ptrdiff_t)jp0 * NB;
                    int cols = (int)(jc + nc - n < I8_STRIDED_PANELS * NB ? jc + nc - n : I8_STRIDED_PANELS * NB);
                    strided8(d, pc, kc, n, cols, qmax, kq, bh + (ptrdiff_t)jp0 * kq * NB,
                             two ? bl + (ptrdiff_t)jp0 * kq * NB : NULL, xs + jp0 * NB);
                }
            for (int jp = jp0; jp < np; jp++) {
                ptrdiff_t n = jc + (ptrdiff_t)jp * NB;
                int nr = (int)(jc + nc - n < NB ? jc + nc - n : NB);
                if (packq) {
                    packq(d, pc, kc, n, nr, qmax, bh + (ptrdiff_t)jp * kq * NB, two ? bl + (ptrdiff_t)jp * kq * NB : NULL,
                          xs + jp * NB, fpanel);
                    continue;
                }
                i8_pack_b_f32(d, pc, kc, n, nr, NB, fpanel);
                i8_quantize_panel(fpanel, kc, NB, qmax, bh + (ptrdiff_t)jp * kq * NB,
                                  two ? bl + (ptrdiff_t)jp * kq * NB : NULL, xs + jp * NB);
            }
            if (glide_profile_enabled) glide_profile_add_ns(GLIDE_PROFILE_PACK_ACTIVATIONS, glide_profile_now_ns() - pt0);
            for (int ic = 0; ic < mpt; ic += I8_MC_PANELS) {
                int ice = ic + I8_MC_PANELS < mpt ? ic + I8_MC_PANELS : mpt;
                for (int jp = 0; jp < np; jp++) {
                    ptrdiff_t n = jc + (ptrdiff_t)jp * NB;
                    int nr = (int)(jc + nc - n < NB ? jc + nc - n : NB);
                    for (int ip = ic; ip < ice; ip++) {
                        ptrdiff_t m = m0 + (ptrdiff_t)ip * MR;
                        int mr = (int)(m1 - m < MR ? m1 - m : MR);
                        i8_tile t;
                        t.kq = kq; t.two = two;
                        if (prepacked) {
                            t.a = d->w_packed + (size_t)kb * kqmax * MR * gpanels + (size_t)(gp0 + ip) * kq * MR;
                            t.wsum = d->w_packed_sums + ((size_t)kb * gpanels + gp0 + ip) * MR;
                        } else {
                            t.a = ap + ((size_t)kb * mpt + ip) * kqmax * MR;
                            t.wsum = wsum + ((size_t)kb * mpt + ip) * MR;
                        }
                        t.bh = bh + (ptrdiff_t)jp * kq * NB;
                        t.bl = two ? bl + (ptrdiff_t)jp * kq * NB : NULL;
                        t.ws = ws + ip * MR; t.xs = xs + jp * NB;
                        t.bias = first && d->bias ? d->bias + m : NULL;
                        t.y = d->y + m * d->y_rs + n; t.y_rs = d->y_rs;
                        t.mr = mr; t.nr = nr; t.add_old = !first || d->accumulate;
                        if (ip + 1 < ice) {   // the next tile's outputs, for writing (measured 1-5 % faster)
                            float *yn = t.y + MR * d->y_rs;
                            for (int r = 0; r < MR; r++) {
                                __builtin_prefetch(yn + r * d->y_rs, 1, 3);
                                __builtin_prefetch(yn + r * d->y_rs + NB - 1, 1, 3);
                            }
                        }
                        if (jp == 0) {   // weights I8_A_PREFETCH panels ahead in first-use order, into L2
                            int f = ip + I8_A_PREFETCH, fkb = kb;
                            if (f >= mpt) { f -= mpt; fkb++; }
                            if (fkb < nkb && f < mpt) {
                                ptrdiff_t fpc = (ptrdiff_t)fkb * I8_KC;
                                int fkq = (int)(((K - fpc < I8_KC ? K - fpc : I8_KC) + 3) / 4);
                                const char *pa = prepacked
                                    ? (const char *)(d->w_packed + (size_t)fkb * kqmax * MR * gpanels + (size_t)(gp0 + f) * fkq * MR)
                                    : (const char *)(ap + ((size_t)fkb * mpt + f) * kqmax * MR);
                                for (int l = 0; l < fkq * MR * 4; l += 64) __builtin_prefetch(pa + l, 0, 2);
                            }
                        }
                        kernel(&t);
                    }
                }
            }
        }
    }
    glide_scratch_release(mark);
    return 0;
}

// Outputs with y_cs != 1 (token-major linear layers): compute a dense [m][n] stage, then scatter it.
static inline AI int i8_gemm(const glide_gemm_desc *d, ptrdiff_t m0, ptrdiff_t m1, ptrdiff_t n0, ptrdiff_t n1,
                             const int MR, const int NB, i8_kernel_fn kernel, glide_dword_pack8_fn dwpack,
                             i8_packq_fn packq, i8_packq8_fn packq8) {
    if (m1 <= m0 || n1 <= n0) return 0;
    if (d->y_cs == 1 || d->K == 0) return i8_run(d, m0, m1, n0, n1, MR, NB, kernel, dwpack, packq, packq8);
    ptrdiff_t mm = m1 - m0, nn = n1 - n0;
    const size_t mark = glide_scratch_mark();
    float *stage = i8_aligned(sizeof(float) * mm * nn);
    if (!stage) return -1;
    glide_gemm_desc s2 = *d;
    s2.M = mm; s2.N = nn;
    s2.w = (const int8_t *)d->w + m0 * d->ldw;
    s2.w_scales = d->w_scales + m0;
    s2.w_packed_row0 = d->w_packed_row0 + m0;
    if (d->bias) s2.bias = d->bias + m0;
    int rc;
    if (d->src_kind == GLIDE_SRC_STRIDED) {
        s2.x = d->x + n0 * d->x_cs;
        s2.y = stage; s2.y_rs = nn; s2.y_cs = 1; s2.accumulate = 0;
        rc = i8_run(&s2, 0, mm, 0, nn, MR, NB, kernel, dwpack, packq, packq8);
    } else {   // the image source keeps its column numbering: column n lands at stage[m * nn + n - n0]
        s2.y = stage - n0; s2.y_rs = nn; s2.y_cs = 1; s2.accumulate = 0;
        rc = i8_run(&s2, 0, mm, n0, n1, MR, NB, kernel, dwpack, packq, packq8);
    }
    if (rc == 0) {   // transpose in 32x32 blocks (both sides stay in L1)
        for (ptrdiff_t mb = 0; mb < mm; mb += 32) {
            ptrdiff_t me = mb + 32 < mm ? mb + 32 : mm;
            for (ptrdiff_t jb = 0; jb < nn; jb += 32) {
                ptrdiff_t je = jb + 32 < nn ? jb + 32 : nn;
                for (ptrdiff_t j = jb; j < je; j++) {
                    float *y = d->y + (n0 + j) * d->y_cs + m0 * d->y_rs;
                    if (d->accumulate) for (ptrdiff_t m = mb; m < me; m++) y[m * d->y_rs] += stage[m * nn + j];
                    else for (ptrdiff_t m = mb; m < me; m++) y[m * d->y_rs] = stage[m * nn + j];
                }
            }
        }
    }
    glide_scratch_release(mark);
    return rc;
}

void glide_i8_prepacked_size(ptrdiff_t M, ptrdiff_t K, int layout, ptrdiff_t *words, ptrdiff_t *sums) {
    const ptrdiff_t MR = layout == GLIDE_I8_LAYOUT_YMM ? GLIDE_I8_YMM_MR : GLIDE_I8_ZMM_MR;
    const ptrdiff_t P = (M + MR - 1) / MR, nkb = (K + I8_KC - 1) / I8_KC;
    const ptrdiff_t last = K - (nkb - 1) * I8_KC;
    *words = nkb == 0 ? 0 : ((nkb - 1) * (I8_KC / 4) + (last + 3) / 4) * MR * P;
    *sums = nkb * P * MR;
}

void glide_i8_prepack(const glide_gemm_desc *d, int layout, ptrdiff_t p0, ptrdiff_t p1, uint32_t *a, int32_t *sums) {
    const int MR = layout == GLIDE_I8_LAYOUT_YMM ? GLIDE_I8_YMM_MR : GLIDE_I8_ZMM_MR;
    const ptrdiff_t M = d->M, K = d->K, P = (M + MR - 1) / MR;
    float ws[8];
    for (ptrdiff_t kb = 0; kb * I8_KC < K; kb++) {
        ptrdiff_t pc = kb * I8_KC;
        int kc = (int)(K - pc < I8_KC ? K - pc : I8_KC), kq = (kc + 3) / 4;
        for (ptrdiff_t p = p0; p < p1; p++) {
            ptrdiff_t m = p * MR;
            int mr = (int)(M - m < MR ? M - m : MR);
            i8_pack_a(d, m, mr, MR, pc, kc, a + kb * (I8_KC / 4) * MR * P + p * kq * MR, sums + (kb * P + p) * MR, ws,
                      NULL);
        }
    }
}

int glide_gemm_int8_emulated(const glide_gemm_desc *d, ptrdiff_t m0, ptrdiff_t m1, ptrdiff_t n0, ptrdiff_t n1,
                             int layout) {
    if (d->w_dtype != GLIDE_W_INT8) return -1;
    if (layout == GLIDE_I8_LAYOUT_YMM)
        return i8_gemm(d, m0, m1, n0, n1, GLIDE_I8_YMM_MR, GLIDE_I8_YMM_NB, i8_kernel_emulated_ymm, NULL, NULL, NULL);
    return i8_gemm(d, m0, m1, n0, n1, GLIDE_I8_ZMM_MR, GLIDE_I8_ZMM_NB, i8_kernel_emulated_zmm, NULL, NULL, NULL);
}

#if defined(__x86_64__)
T512 int glide_gemm_int8_avx512vnni(const glide_gemm_desc *d, ptrdiff_t m0, ptrdiff_t m1, ptrdiff_t n0, ptrdiff_t n1) {
    if (d->w_dtype != GLIDE_W_INT8) return -1;
    return i8_gemm(d, m0, m1, n0, n1, GLIDE_I8_ZMM_MR, GLIDE_I8_ZMM_NB, i8_kernel_zmm, glide_dword_pack8_avx512,
                   i8_pack_quantize_zmm, i8_pack_quantize_strided8_zmm);
}
TAVXVNNI int glide_gemm_int8_avxvnni(const glide_gemm_desc *d, ptrdiff_t m0, ptrdiff_t m1, ptrdiff_t n0, ptrdiff_t n1) {
    if (d->w_dtype != GLIDE_W_INT8) return -1;
    return i8_gemm(d, m0, m1, n0, n1, GLIDE_I8_YMM_MR, GLIDE_I8_YMM_NB, i8_kernel_ymm, NULL, NULL, NULL);
}

// Register-only throughput probes: `iterations` x 12 independent vpdpbusd (64 resp. 32 MACs each).
T512 float glide_vnni512_peak_probe(long iterations) {
    __m512i c[12];
    for (int i = 0; i < 12; i++) c[i] = _mm512_set1_epi32(i);
    __m512i a = _mm512_set1_epi32(0x01010101), b = _mm512_set1_epi32(0x01fe01fe);
    for (long it = 0; it < iterations; it++) {
        for (int i = 0; i < 12; i++) c[i] = _mm512_dpbusd_epi32(c[i], a, b);
        __asm__ volatile("" : "+v"(c[0]), "+v"(c[1]), "+v"(c[2]), "+v"(c[3]), "+v"(c[4]), "+v"(c[5]));
    }
    __m512i s = c[0];
    for (int i = 1; i < 12; i++) s = _mm512_add_epi32(s, c[i]);
    return (float)_mm512_reduce_add_epi32(s);
}
TAVXVNNI float glide_avxvnni_peak_probe(long iterations) {
    __m256i c[12];
    for (int i = 0; i < 12; i++) c[i] = _mm256_set1_epi32(i);
    __m256i a = _mm256_set1_epi32(0x01010101), b = _mm256_set1_epi32(0x01fe01fe);
    for (long it = 0; it < iterations; it++) {
        for (int i = 0; i < 12; i++) c[i] = _mm256_dpbusd_avx_epi32(c[i], a, b);
        __asm__ volatile("" : "+x"(c[0]), "+x"(c[1]), "+x"(c[2]), "+x"(c[3]), "+x"(c[4]), "+x"(c[5]));
    }
    __m256i s = c[0];
    for (int i = 1; i < 12; i++) s = _mm256_add_epi32(s, c[i]);
    int out[8]; _mm256_storeu_si256((__m256i *)out, s);
    return (float)out[0];
}
#else
int glide_gemm_int8_avx512vnni(const glide_gemm_desc *d, ptrdiff_t m0, ptrdiff_t m1, ptrdiff_t n0, ptrdiff_t n1) {
    (void)d; (void)m0; (void)m1; (void)n0; (void)n1; return -1;
}
int glide_gemm_int8_avxvnni(const glide_gemm_desc *d, ptrdiff_t m0, ptrdiff_t m1, ptrdiff_t n0, ptrdiff_t n1) {
    (void)d; (void)m0; (void)m1; (void)n0; (void)n1; return -1;
}
float glide_vnni512_peak_probe(long iterations) { (void)iterations; return 0.f; }
void glide_dword_pack8_avx512(const char *base, ptrdiff_t row_bytes, int groups, uint32_t *dst) {
    (void)base; (void)row_bytes; (void)groups; (void)dst;
}
float glide_avxvnni_peak_probe(long iterations) { (void)iterations; return 0.f; }
#endif
