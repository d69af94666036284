// Winograd F(4x4, 3x3) for int8 weights in integers: each tile gives 4 x 4 outputs (F(4, 3), points 0, +-1, +-2,
// inf, in both directions) from a 6 x 6 input tile: 36 positions xi = i * 6 + j (i: height, j: width), 2.25 products
// per output instead of F(4x2)'s 3. F(4, 3)'s G has rows with factors f = [1/4, -1/6, -1/6, 1/24, 1/24, 1] times
// the small integer rows Gn = [1 0 0; 1 1 1; 1 -1 1; 1 2 4; 1 -2 4; 0 0 1], so
//   U' = Gn g Gn^T          exact int16, |U'| <= 127 * 7 * 7 = 6223; U[i][j] = f_i f_j U'[i][j]
//   V  = B4^T d B4          f32 in a fixed order (below), quantized per position, column (tile) and 256-long K
//                           block to |q| <= qmax[xi] (per position: the largest that cannot overflow int32 for the
//                           layer's U'), its scale times f_i f_j (the factor rides on the activation scales, so
//                           the GEMMs are the ordinary glide_gemm_wi16_* on packed panels)
//   Y  = A4^T M A4          f32 on the 36 GEMM products M
// with B4^T = [4 0 -5 0 1 0; 0 -4 -4 1 1 0; 0 4 -4 -1 1 0; 0 -2 -1 2 1 0; 0 2 -1 -2 1 0; 0 4 0 -5 0 1] and
// A4^T = [1 1 1 1 1 0; 0 1 -1 2 -2 0; 0 1 1 4 4 0; 0 1 -1 8 -8 1] (Lavin & Gray's F(4, 3)). The transforms have
// AVX-512 and AVX2 bodies and portable twins doing the same float operations in the same order (same bits).
#include "CKernelsX86.h"
#include "include/glide_scratch.h"
#include <stdlib.h>
#include <string.h>
#include "wf4_internal.h"

#pragma STDC FP_CONTRACT OFF

enum { WF44_XI = 36 };

float glide_wf44_position_factor(int xi) {
    static const double f[6] = {1.0 / 4, -1.0 / 6, -1.0 / 6, 1.0 / 24, 1.0 / 24, 1.0};
    if (xi < 0 || xi >= WF44_XI) return 0.f;
    return (float)(f[xi / 6] * f[xi % 6]);
}

// ---------------------------------------------------------------- weights
// Channel blocks of 32: the 3x3 kernels transposed to [9][32] (`vbmi`: with byte permutes), then Gn along the
// height and along the width (integer arithmetic: every variant gives the same int16s).
static inline AI void wf44_weights(const int8_t *g, int C, int16_t *u, ptrdiff_t xi_stride, int vbmi) {
    enum { CB = 32 };
    for (int c0 = 0; c0 < C; c0 += CB) {
        const int cb = C - c0 < CB ? C - c0 : CB;
        int16_t k[9][CB] __attribute__((aligned(64))), t[6][3][CB] __attribute__((aligned(64)));
        wf4_kernel_block(g, c0, cb, k, vbmi);
        for (int x = 0; x < 3; x++)        // Gn g: rows of the kernel (height)
            for (int j = 0; j < CB; j++) {
                const int16_t g0 = k[x][j], g1 = k[3 + x][j], g2 = k[6 + x][j];
                t[0][x][j] = g0;
                t[1][x][j] = (int16_t)(g0 + g1 + g2);
                t[2][x][j] = (int16_t)(g0 - g1 + g2);
                t[3][x][j] = (int16_t)(g0 + 2 * g1 + 4 * g2);
                t[4][x][j] = (int16_t)(g0 - 2 * g1 + 4 * g2);
                t[5][x][j] = g2;
            }
        for (int i = 0; i < 6; i++) {      // (Gn g) Gn^T: columns (width)
            int16_t *ui = u + (ptrdiff_t)i * 6 * xi_stride + c0;
            int16_t *restrict u0 = ui, *restrict u1 = ui + xi_stride, *restrict u2 = ui + 2 * xi_stride;
            int16_t *restrict u3 = ui + 3 * xi_stride, *restrict u4 = ui + 4 * xi_stride, *restrict u5 = ui + 5 * xi_stride;
            for (int j = 0; j < cb; j++) {
                const int16_t t0 = t[i][0][j], t1 = t[i][1][j], t2 = t[i][2][j];
                u0[j] = t0;
                u1[j] = (int16_t)(t0 + t1 + t2);
                u2[j] = (int16_t)(t0 - t1 + t2);
                u3[j] = (int16_t)(t0 + 2 * t1 + 4 * t2);
                u4[j] = (int16_t)(t0 - 2 * t1 + 4 * t2);
                u5[j] = t2;
            }
        }
    }
    (void)vbmi;
}

void glide_wf44_weights_i16(const int8_t *g, int C, int16_t *u, ptrdiff_t xi_stride) {
    wf44_weights(g, C, u, xi_stride, 0);
}

static int wf44_weights_use_simd = 1;
void glide_wf44_weights_allow_simd(int on) { wf44_weights_use_simd = on != 0; }

#if defined(__x86_64__)
__attribute__((target("avx512f,avx512bw,avx512vl,avx512vbmi,avx2")))
static void wf44_weights_packed_vbmi(const int8_t *q, ptrdiff_t ldq, int O, int C, int MR, int p0, int p1,
                                     uint32_t *dst, int32_t *max_l1, int16_t *u, int transpose8) {
    wf4_weights_packed(q, ldq, O, C, MR, p0, p1, dst, max_l1, u, transpose8, 1, WF44_XI, wf44_weights);
}
__attribute__((target("avx2,fma")))
static void wf44_weights_packed_avx2(const int8_t *q, ptrdiff_t ldq, int O, int C, int MR, int p0, int p1,
                                     uint32_t *dst, int32_t *max_l1, int16_t *u, int transpose8) {
    wf4_weights_packed(q, ldq, O, C, MR, p0, p1, dst, max_l1, u, transpose8, 0, WF44_XI, wf44_weights);
}
#endif

int glide_wf44_weights_i16_packed(const int8_t *q, ptrdiff_t ldq, int O, int C, int MR, int p0, int p1,
                                  uint32_t *dst, int32_t *max_l1) {
    return wf4_weights_i16_packed(q, ldq, O, C, MR, p0, p1, dst, max_l1, WF44_XI, wf44_weights_use_simd,
                                  WF4_X86(wf44_weights_packed_vbmi), WF4_X86(wf44_weights_packed_avx2), wf44_weights);
}

// ---------------------------------------------------------------- input transform + quantization + packing
// B4^T d of 6 values, in this order (x4 and x2 are exact):
//   a = d4 - d2, b = d4 - 4 d2, c = d3 - 4 d1, e = 2 (d3 - d1)
//   v0 = 4 (d0 - d2) + a, v1 = b + c, v2 = b - c, v3 = a + e, v4 = a - e, v5 = 4 (d1 - d3) + (d5 - d3)
// first along each of the 6 input rows, then along each of the 6 columns of the row results.
static inline AI void wf44_b4(const float d[6], float v[6]) {
    const float a = d[4] - d[2], b = d[4] - 4.f * d[2], cc = d[3] - 4.f * d[1], e = 2.f * (d[3] - d[1]);
    v[0] = 4.f * (d[0] - d[2]) + a;
    v[1] = b + cc;
    v[2] = b - cc;
    v[3] = a + e;
    v[4] = a - e;
    v[5] = 4.f * (d[1] - d[3]) + (d[5] - d[3]);
}

// tb[xi * xs + c * NB + j]: position xi of channel k0 + c for the panel's tile j; mx[xi * 64 + j]: running max |v|
// of column j as a bit pattern (wi_abs_bits).
static void wf44_transform_portable(const float *x, int H, int W, int C, int tw, int ty0, ptrdiff_t t0, int nt,
                                    int k0, int kc, int NB, float *tb, ptrdiff_t xs, uint32_t *mx) {
    for (int c = 0; c < kc; c++) {
        float *tc = tb + (size_t)c * NB;
        for (int j = 0; j < nt; j++) {
            int tx, ty;
            const float *plane;
            wf4_run(x, H, W, C, 4, tw, ty0, t0, j, nt, k0 + c, 1, &plane, &tx, &ty);
            float r[6][6];
            for (int rr = 0; rr < 6; rr++) {
                const int iy = 4 * ty - 1 + rr;
                float d[6];
                for (int k = 0; k < 6; k++) {
                    const int ix = 4 * tx - 1 + k;
                    d[k] = iy < 0 || iy >= H || ix < 0 || ix >= W ? 0.f : plane[(size_t)iy * W + ix];
                }
                wf44_b4(d, r[rr]);
            }
            for (int jj = 0; jj < 6; jj++) {
                float d[6], v[6];
                for (int i = 0; i < 6; i++) d[i] = r[i][jj];
                wf44_b4(d, v);
                for (int i = 0; i < 6; i++) {
                    const int xi = i * 6 + jj;
                    tc[xi * xs + j] = v[i];
                    const uint32_t b = wi_abs_bits(v[i]);
                    if (b > mx[xi * 64 + j]) mx[xi * 64 + j] = b;
                }
            }
        }
        for (int xi = 0; xi < WF44_XI; xi++) for (int j = nt; j < NB; j++) tc[xi * xs + j] = 0.f;
    }
}

#if defined(__x86_64__)
enum { WF44_PREFETCH = 4 };

static inline T512F void wf44_b4_512(const __m512 d[6], __m512 v[6]) {
    const __m512 four = _mm512_set1_ps(4.f), two = _mm512_set1_ps(2.f);
    const __m512 a = _mm512_sub_ps(d[4], d[2]), b = _mm512_sub_ps(d[4], _mm512_mul_ps(four, d[2]));
    const __m512 cc = _mm512_sub_ps(d[3], _mm512_mul_ps(four, d[1]));
    const __m512 e = _mm512_mul_ps(two, _mm512_sub_ps(d[3], d[1]));
    v[0] = _mm512_add_ps(_mm512_mul_ps(four, _mm512_sub_ps(d[0], d[2])), a);
    v[1] = _mm512_add_ps(b, cc);
    v[2] = _mm512_sub_ps(b, cc);
    v[3] = _mm512_add_ps(a, e);
    v[4] = _mm512_sub_ps(a, e);
    v[5] = _mm512_add_ps(_mm512_mul_ps(four, _mm512_sub_ps(d[1], d[3])), _mm512_sub_ps(d[5], d[3]));
}

// Runs of up to 16 tiles of one tile row, one tile a lane: the 66 input columns of a row as 5 masked loads,
// split into the 4 column phases (d0 .. d3 of each tile) by permutes, d4 / d5 = d0 / d1 of the next tile.
T512F static void wf44_transform_avx512(const float *x, int H, int W, int C, int tw, int ty0, ptrdiff_t t0, int nt,
                                        int k0, int kc, int NB, float *tb, ptrdiff_t xs, uint32_t *mx) {
    const __m512i idx01 = _mm512_setr_epi32(0, 4, 8, 12, 16, 20, 24, 28, 1, 5, 9, 13, 17, 21, 25, 29);
    const __m512i idx23 = _mm512_setr_epi32(2, 6, 10, 14, 18, 22, 26, 30, 3, 7, 11, 15, 19, 23, 27, 31);
    const __m512 zero = _mm512_setzero_ps();
    for (int c = 0; c < kc; c++) {
        float *tc = tb + (size_t)c * NB;
        for (int j0 = 0; j0 < NB; ) {
            if (j0 >= nt) {   // columns past the chunk: zero
                const int n = NB - j0 < 16 ? NB - j0 : 16;
                const __mmask16 sm = (__mmask16)(((uint32_t)1 << n) - 1);
                for (int xi = 0; xi < WF44_XI; xi++) _mm512_mask_storeu_ps(tc + xi * xs + j0, sm, zero);
                j0 += n;
                continue;
            }
            int tx, ty;
            const float *plane;
            const int n = wf4_run(x, H, W, C, 4, tw, ty0, t0, j0, nt, k0 + c, 16, &plane, &tx, &ty);
            const ptrdiff_t s = 4 * (ptrdiff_t)tx - 1;
            __mmask16 lm[5];
            for (int q = 0; q < 5; q++) lm[q] = wi_range_mask16(s + 16 * q, W);
            lm[4] &= 3;
            __m512 r[6][6];
            for (int rr = 0; rr < 6; rr++) {
                const int iy = 4 * ty - 1 + rr;
                __m512 z[5] = {zero, zero, zero, zero, zero};
                if (iy >= 0 && iy < H) {
                    const float *pr = plane + (size_t)iy * W + s;
                    if (c + WF44_PREFETCH < kc) {
                        const char *f = (const char *)(pr + (size_t)WF44_PREFETCH * H * W);
                        _mm_prefetch(f, _MM_HINT_T0); _mm_prefetch(f + 64, _MM_HINT_T0);
                        _mm_prefetch(f + 128, _MM_HINT_T0); _mm_prefetch(f + 192, _MM_HINT_T0);
                        _mm_prefetch(f + 256, _MM_HINT_T0); _mm_prefetch(f + 263, _MM_HINT_T0);   // every line of the 264 bytes
                    }
                    for (int q = 0; q < 5; q++) z[q] = _mm512_maskz_loadu_ps(lm[q], pr + 16 * q);
                }
                const __m512 a01 = _mm512_permutex2var_ps(z[0], idx01, z[1]), b01 = _mm512_permutex2var_ps(z[2], idx01, z[3]);
                const __m512 a23 = _mm512_permutex2var_ps(z[0], idx23, z[1]), b23 = _mm512_permutex2var_ps(z[2], idx23, z[3]);
                __m512 d[6];
                d[0] = _mm512_shuffle_f32x4(a01, b01, 0x44); d[1] = _mm512_shuffle_f32x4(a01, b01, 0xee);
                d[2] = _mm512_shuffle_f32x4(a23, b23, 0x44); d[3] = _mm512_shuffle_f32x4(a23, b23, 0xee);
                const __m512i z4 = _mm512_castps_si512(z[4]);
                d[4] = _mm512_castsi512_ps(_mm512_alignr_epi32(z4, _mm512_castps_si512(d[0]), 1));
                d[5] = _mm512_castsi512_ps(_mm512_alignr_epi32(_mm512_alignr_epi32(z4, z4, 1),
                                                               _mm512_castps_si512(d[1]), 1));
                wf44_b4_512(d, r[rr]);
            }
            const __mmask16 sm = (__mmask16)(((uint32_t)1 << n) - 1);
            float *tj = tc + j0;
            uint32_t *mj = mx + j0;
            for (int jj = 0; jj < 6; jj++) {
                __m512 d[6], v[6];
                for (int i = 0; i < 6; i++) d[i] = r[i][jj];
                wf44_b4_512(d, v);
                for (int i = 0; i < 6; i++) wi_store_max16(tj + (i * 6 + jj) * xs, mj + (i * 6 + jj) * 64, sm, v[i]);
            }
            j0 += n;
        }
    }
}

static inline TAVX2F void wf44_b4_256(const __m256 d[6], __m256 v[6]) {
    const __m256 four = _mm256_set1_ps(4.f), two = _mm256_set1_ps(2.f);
    const __m256 a = _mm256_sub_ps(d[4], d[2]), b = _mm256_sub_ps(d[4], _mm256_mul_ps(four, d[2]));
    const __m256 cc = _mm256_sub_ps(d[3], _mm256_mul_ps(four, d[1]));
    const __m256 e = _mm256_mul_ps(two, _mm256_sub_ps(d[3], d[1]));
    v[0] = _mm256_add_ps(_mm256_mul_ps(four, _mm256_sub_ps(d[0], d[2])), a);
    v[1] = _mm256_add_ps(b, cc);
    v[2] = _mm256_sub_ps(b, cc);
    v[3] = _mm256_add_ps(a, e);
    v[4] = _mm256_sub_ps(a, e);
    v[5] = _mm256_add_ps(_mm256_mul_ps(four, _mm256_sub_ps(d[1], d[3])), _mm256_sub_ps(d[5], d[3]));
}

// The same on ymm: runs of up to 8 tiles, one tile a lane; the 34 input columns of a row as 4 masked loads (two
// tiles each) transposed to the column phases d0 .. d3, d4 / d5 = d0 / d1 of the next tile (as winograd_f42.c).
TAVX2F static void wf44_transform_avx2(const float *x, int H, int W, int C, int tw, int ty0, ptrdiff_t t0, int nt,
                                      int k0, int kc, int NB, float *tb, ptrdiff_t xs, uint32_t *mx) {
    const __m256 zero = _mm256_setzero_ps();
    const __m256i next = _mm256_setr_epi32(1, 2, 3, 4, 5, 6, 7, 7);
    for (int c = 0; c < kc; c++) {
        float *tc = tb + (size_t)c * NB;
        for (int j0 = 0; j0 < NB; ) {
            if (j0 >= nt) {   // columns past the chunk: zero
                const int n = NB - j0 < 8 ? NB - j0 : 8;
                const __m256i sm = wf4_lane_mask8(0, n);
                for (int xi = 0; xi < WF44_XI; xi++) _mm256_maskstore_ps(tc + xi * xs + j0, sm, zero);
                j0 += n;
                continue;
            }
            int tx, ty;
            const float *plane;
            const int n = wf4_run(x, H, W, C, 4, tw, ty0, t0, j0, nt, k0 + c, 8, &plane, &tx, &ty);
            const ptrdiff_t s = 4 * (ptrdiff_t)tx - 1;
            __m256i lm[4];
            for (int q = 0; q < 4; q++) lm[q] = wf4_lane_mask8(s + 8 * q, W);
            __m256 r[6][6];
            for (int rr = 0; rr < 6; rr++) {
                const int iy = 4 * ty - 1 + rr;
                __m256 y[4] = {zero, zero, zero, zero};
                float e4 = 0.f, e5 = 0.f;
                if (iy >= 0 && iy < H) {
                    const float *pr = plane + (size_t)iy * W + s;
                    if (c + WF44_PREFETCH < kc) {
                        const char *f = (const char *)(pr + (size_t)WF44_PREFETCH * H * W);
                        _mm_prefetch(f, _MM_HINT_T0); _mm_prefetch(f + 64, _MM_HINT_T0);
                        _mm_prefetch(f + 128, _MM_HINT_T0); _mm_prefetch(f + 135, _MM_HINT_T0);   // every line of the 136 bytes
                    }
                    for (int q = 0; q < 4; q++) y[q] = _mm256_maskload_ps(pr + 8 * q, lm[q]);
                    if (s + 32 >= 0 && s + 32 < W) e4 = pr[32];
                    if (s + 33 >= 0 && s + 33 < W) e5 = pr[33];
                }
                // [t0|t4], [t1|t5], [t2|t6], [t3|t7], then a 4x4 transpose per 128-bit lane
                const __m256 z0 = _mm256_permute2f128_ps(y[0], y[2], 0x20), z1 = _mm256_permute2f128_ps(y[0], y[2], 0x31);
                const __m256 z2 = _mm256_permute2f128_ps(y[1], y[3], 0x20), z3 = _mm256_permute2f128_ps(y[1], y[3], 0x31);
                const __m256 u0 = _mm256_unpacklo_ps(z0, z1), u1 = _mm256_unpackhi_ps(z0, z1);
                const __m256 u2 = _mm256_unpacklo_ps(z2, z3), u3 = _mm256_unpackhi_ps(z2, z3);
                __m256 d[6];
                d[0] = _mm256_shuffle_ps(u0, u2, 0x44); d[1] = _mm256_shuffle_ps(u0, u2, 0xee);
                d[2] = _mm256_shuffle_ps(u1, u3, 0x44); d[3] = _mm256_shuffle_ps(u1, u3, 0xee);
                d[4] = _mm256_blend_ps(_mm256_permutevar8x32_ps(d[0], next), _mm256_set1_ps(e4), 0x80);
                d[5] = _mm256_blend_ps(_mm256_permutevar8x32_ps(d[1], next), _mm256_set1_ps(e5), 0x80);
                wf44_b4_256(d, r[rr]);
            }
            const __m256i sm = wf4_lane_mask8(0, n);
            float *tj = tc + j0;
            uint32_t *mj = mx + j0;
            for (int jj = 0; jj < 6; jj++) {
                __m256 d[6], v[6];
                for (int i = 0; i < 6; i++) d[i] = r[i][jj];
                wf44_b4_256(d, v);
                for (int i = 0; i < 6; i++) wf4_store_max8(tj + (i * 6 + jj) * xs, mj + (i * 6 + jj) * 64, sm, v[i]);
            }
            j0 += n;
        }
    }
}
#endif

static inline AI void wf44_pack_panels(const float *x, int H, int W, int C, int ty0, ptrdiff_t tiles, int NB,
                                       const int32_t *qmax, ptrdiff_t p0, ptrdiff_t p1, uint32_t *dst, float *scales,
                                       float *tb, ptrdiff_t xs, uint32_t *mx, int isa) {
    const int tw = (W + 3) / 4;
    const ptrdiff_t P = (tiles + NB - 1) / NB, words = glide_wi16_packed_words((int)tiles, C, NB);
    const int nkb = (C + WI_KC - 1) / WI_KC;
    float fac[WF44_XI];
    int q[WF44_XI];
    for (int xi = 0; xi < WF44_XI; xi++) {
        fac[xi] = glide_wf44_position_factor(xi);
        q[xi] = qmax[xi] < 1 ? 1 : qmax[xi] > 32767 ? 32767 : qmax[xi];
    }
    for (ptrdiff_t p = p0; p < p1; p++) {
        const ptrdiff_t t0 = p * NB;
        const int nt = (int)(tiles - t0 < NB ? tiles - t0 : NB);
        for (int k0 = 0; k0 < C; k0 += WI_KC) {
            const int kc = C - k0 < WI_KC ? C - k0 : WI_KC, kp = (kc + 1) / 2, kb = k0 / WI_KC;
            memset(mx, 0, sizeof(uint32_t) * WF44_XI * 64);
#if defined(__x86_64__)
            if (isa == GLIDE_WF42_AVX512) wf44_transform_avx512(x, H, W, C, tw, ty0, t0, nt, k0, kc, NB, tb, xs, mx);
            else if (isa == GLIDE_WF42_AVX2) wf44_transform_avx2(x, H, W, C, tw, ty0, t0, nt, k0, kc, NB, tb, xs, mx);
            else
#endif
            wf44_transform_portable(x, H, W, C, tw, ty0, t0, nt, k0, kc, NB, tb, xs, mx);
            for (int xi = 0; xi < WF44_XI; xi++) {
                float *sc = scales + ((ptrdiff_t)xi * nkb + kb) * P * NB + p * NB;
                wi_quantize_block(tb + xi * xs, mx + xi * 64, kc, NB, q[xi],
                                  dst + xi * words + (ptrdiff_t)kb * (WI_KC / 2) * NB * P + p * kp * NB, sc);
                for (int j = 0; j < NB; j++) sc[j] = sc[j] * fac[xi];
            }
        }
    }
    (void)isa;
}

#if defined(__x86_64__)
T512F static void wf44_pack_panels_avx512(const float *x, int H, int W, int C, int ty0, ptrdiff_t tiles, int NB,
                                          const int32_t *qmax, ptrdiff_t p0, ptrdiff_t p1, uint32_t *dst,
                                          float *scales, float *tb, ptrdiff_t xs, uint32_t *mx) {
    wf44_pack_panels(x, H, W, C, ty0, tiles, NB, qmax, p0, p1, dst, scales, tb, xs, mx, GLIDE_WF42_AVX512);
}
TAVX2F static void wf44_pack_panels_avx2(const float *x, int H, int W, int C, int ty0, ptrdiff_t tiles, int NB,
                                        const int32_t *qmax, ptrdiff_t p0, ptrdiff_t p1, uint32_t *dst,
                                        float *scales, float *tb, ptrdiff_t xs, uint32_t *mx) {
    wf44_pack_panels(x, H, W, C, ty0, tiles, NB, qmax, p0, p1, dst, scales, tb, xs, mx, GLIDE_WF42_AVX2);
}
#endif

int glide_wf44_input_i16_packed(const float *x, int H, int W, int C, int ty0, ptrdiff_t tiles, int NB,
                                const int32_t *qmax, ptrdiff_t p0, ptrdiff_t p1, uint32_t *dst, float *scales,
                                int isa) {
    if (NB > 64 || NB < 8 || NB % 8 || !qmax) return -1;
    const int kcap = C < WI_KC ? (C > 0 ? C : 1) : WI_KC;
    const ptrdiff_t xs = (ptrdiff_t)kcap * NB + 16;   // + 64 bytes: the positions' blocks on different L1 sets
    const size_t mark = glide_scratch_mark();   // scratch from the calling thread's stack (glide_scratch.h)
    float *tb = glide_scratch_alloc(sizeof(float) * (size_t)(WF44_XI * xs));
    uint32_t *mx = glide_scratch_alloc(sizeof(uint32_t) * WF44_XI * 64);
    if (!tb || !mx) { glide_scratch_release(mark); return -1; }
#if defined(__x86_64__)
    if (isa == GLIDE_WF42_AVX512) wf44_pack_panels_avx512(x, H, W, C, ty0, tiles, NB, qmax, p0, p1, dst, scales, tb, xs, mx);
    else if (isa == GLIDE_WF42_AVX2) wf44_pack_panels_avx2(x, H, W, C, ty0, tiles, NB, qmax, p0, p1, dst, scales, tb, xs, mx);
    else
#endif
    wf44_pack_panels(x, H, W, C, ty0, tiles, NB, qmax, p0, p1, dst, scales, tb, xs, mx, GLIDE_WF42_PORTABLE);
    glide_scratch_release(mark);
    return 0;
}

// ---------------------------------------------------------------- output transform
// Per tile, from the 36 products m[i][j] (i height, j width), in this order: A4^T along the height per column j
//   s1 = m1j + m2j, d1 = m1j - m2j, s2 = m3j + m4j, d2 = m3j - m4j
//   h0[j] = (m0j + s1) + s2, h1[j] = d1 + 2 d2, h2[j] = s1 + 4 s2, h3[j] = (d1 + 8 d2) + m5j
// then along the width per row h (as winograd_f42.c): s1 = h1 + h2, d1 = h1 - h2, s2 = h3 + h4, d2 = h3 - h4,
//   y0 = ((h0 + s1) + s2) + b, y1 = (d1 + 2 d2) + b, y2 = (s1 + 4 s2) + b, y3 = ((d1 + 8 d2) + h5) + b
// then y is stored, or added to y when accumulate (dst + y).
// One run of n tiles of one tile row (tile row ty of an image, first tile tx0; `plane` = the output channel's
// plane): products mt[xi * xs + k] for tile tx0 + k.
static void wf44_out_run_portable(const float *mt, ptrdiff_t xs, int n, float bo, float *plane, int OH, int OW,
                             int ty, int tx0, int accumulate, int stream) {
    for (int k0 = 0; k0 < n; k0++) {
        float h[4][6];
        for (int j = 0; j < 6; j++) {
            float m[6];
            for (int i = 0; i < 6; i++) m[i] = mt[(i * 6 + j) * xs + k0];
            const float s1 = m[1] + m[2], d1 = m[1] - m[2], s2 = m[3] + m[4], d2 = m[3] - m[4];
            h[0][j] = (m[0] + s1) + s2;
            h[1][j] = d1 + 2.f * d2;
            h[2][j] = s1 + 4.f * s2;
            h[3][j] = (d1 + 8.f * d2) + m[5];
        }
        wf4_out_tile_portable((const float (*)[6])h, 4, bo, plane, OH, OW, 4 * ty, tx0 + k0, accumulate);
    }
    (void)stream;
}

#if defined(__x86_64__)
// Up to 16 tiles, one tile a lane (wf4_out_rows_avx512).
T512F static void wf44_out_run_avx512(const float *mt, ptrdiff_t xs, int n, float bias, float *plane,
                                      int OH, int OW, int ty, int tx, int accumulate, int stream) {
    const __m512 two = _mm512_set1_ps(2.f), four = _mm512_set1_ps(4.f), eight = _mm512_set1_ps(8.f);
    const __mmask16 lm = (__mmask16)(((uint32_t)1 << n) - 1);
    __m512 h[4][6];
    for (int j = 0; j < 6; j++) {
        __m512 m[6];
        for (int i = 0; i < 6; i++) m[i] = _mm512_maskz_loadu_ps(lm, mt + (i * 6 + j) * xs);
        const __m512 s1 = _mm512_add_ps(m[1], m[2]), d1 = _mm512_sub_ps(m[1], m[2]);
        const __m512 s2 = _mm512_add_ps(m[3], m[4]), d2 = _mm512_sub_ps(m[3], m[4]);
        h[0][j] = _mm512_add_ps(_mm512_add_ps(m[0], s1), s2);
        h[1][j] = _mm512_add_ps(d1, _mm512_mul_ps(two, d2));
        h[2][j] = _mm512_add_ps(s1, _mm512_mul_ps(four, s2));
        h[3][j] = _mm512_add_ps(_mm512_add_ps(d1, _mm512_mul_ps(eight, d2)), m[5]);
    }
    wf4_out_rows_avx512((const __m512 (*)[6])h, 4, n, bias, plane, OH, OW, 4 * ty, tx, accumulate, stream);
}

// The same on ymm: up to 8 tiles (wf4_out_rows_avx2).
TAVX2F static void wf44_out_run_avx2(const float *mt, ptrdiff_t xs, int n, float bias, float *plane,
                                    int OH, int OW, int ty, int tx, int accumulate, int stream) {
    const __m256 two = _mm256_set1_ps(2.f), four = _mm256_set1_ps(4.f), eight = _mm256_set1_ps(8.f);
    const __m256i lm = wf4_lane_mask8(0, n);
    __m256 h[4][6];
    for (int j = 0; j < 6; j++) {
        __m256 m[6];
        for (int i = 0; i < 6; i++) m[i] = _mm256_maskload_ps(mt + (i * 6 + j) * xs, lm);
        const __m256 s1 = _mm256_add_ps(m[1], m[2]), d1 = _mm256_sub_ps(m[1], m[2]);
        const __m256 s2 = _mm256_add_ps(m[3], m[4]), d2 = _mm256_sub_ps(m[3], m[4]);
        h[0][j] = _mm256_add_ps(_mm256_add_ps(m[0], s1), s2);
        h[1][j] = _mm256_add_ps(d1, _mm256_mul_ps(two, d2));
        h[2][j] = _mm256_add_ps(s1, _mm256_mul_ps(four, s2));
        h[3][j] = _mm256_add_ps(_mm256_add_ps(d1, _mm256_mul_ps(eight, d2)), m[5]);
    }
    wf4_out_rows_avx2((const __m256 (*)[6])h, 4, n, bias, plane, OH, OW, 4 * ty, tx, accumulate);
    (void)stream;
}
#endif

// Whether the fused pass's output panels store with non-temporal stores where they overwrite whole aligned lines
// (the 16 output rows of a chunk are not read again before the chunk ends: no read for ownership of each line).
static int wf44_stream = 1;
void glide_wf44_gemm_output_set_streaming(int on) { wf44_stream = on != 0; }

#if defined(__x86_64__)
T512F static void wf44_output_avx512(const float *m, ptrdiff_t ldm, ptrdiff_t xs, int O, int o0, int o1, int OH,
                                     int OW, int ty0, int ty1, const float *bias, float *y, int accumulate) {
    wf4_output_rows(m, ldm, xs, O, o0, o1, OH, OW, ty0, ty1, bias, y, accumulate, 4, GLIDE_WF42_AVX512, wf44_out_run_avx512);
}
TAVX2F static void wf44_output_avx2(const float *m, ptrdiff_t ldm, ptrdiff_t xs, int O, int o0, int o1, int OH,
                                    int OW, int ty0, int ty1, const float *bias, float *y, int accumulate) {
    wf4_output_rows(m, ldm, xs, O, o0, o1, OH, OW, ty0, ty1, bias, y, accumulate, 4, GLIDE_WF42_AVX2, wf44_out_run_avx2);
}
T512F static void wf44_output_panel_avx512(const float *buf, ptrdiff_t xs, ptrdiff_t rs, int m, int mr, ptrdiff_t t0,
                                           int nt, int O, int OH, int OW, int ty0, const float *bias, float *y,
                                           int accumulate) {
    wf4_output_panel(buf, xs, rs, m, mr, t0, nt, O, OH, OW, ty0, bias, y, accumulate, 4, GLIDE_WF42_AVX512,
                     wf44_out_run_avx512, wf44_stream && !accumulate);
    if (wf44_stream && !accumulate) _mm_sfence();   // the streamed lines visible before the pass returns
}
TAVX2F static void wf44_output_panel_avx2(const float *buf, ptrdiff_t xs, ptrdiff_t rs, int m, int mr, ptrdiff_t t0,
                                          int nt, int O, int OH, int OW, int ty0, const float *bias, float *y,
                                          int accumulate) {
    wf4_output_panel(buf, xs, rs, m, mr, t0, nt, O, OH, OW, ty0, bias, y, accumulate, 4, GLIDE_WF42_AVX2,
                     wf44_out_run_avx2, 0);
}
#endif

void glide_wf44_output(const float *m, ptrdiff_t ldm, ptrdiff_t xi_stride, int O, int o0, int o1, int OH, int OW,
                       int ty0, int ty1, const float *bias, float *y, int accumulate, int isa) {
#if defined(__x86_64__)
    if (isa == GLIDE_WF42_AVX512) { wf44_output_avx512(m, ldm, xi_stride, O, o0, o1, OH, OW, ty0, ty1, bias, y, accumulate); return; }
    if (isa == GLIDE_WF42_AVX2) { wf44_output_avx2(m, ldm, xi_stride, O, o0, o1, OH, OW, ty0, ty1, bias, y, accumulate); return; }
#endif
    wf4_output_rows(m, ldm, xi_stride, O, o0, o1, OH, OW, ty0, ty1, bias, y, accumulate, 4, GLIDE_WF42_PORTABLE,
                    wf44_out_run_portable);
}

void glide_wf44_output_panel(const float *buf, ptrdiff_t xs, ptrdiff_t rs, int m, int mr, ptrdiff_t t0, int nt,
                             int O, int OH, int OW, int ty0, const float *bias, float *y, int accumulate, int isa) {
#if defined(__x86_64__)
    if (isa == GLIDE_WF42_AVX512) { wf44_output_panel_avx512(buf, xs, rs, m, mr, t0, nt, O, OH, OW, ty0, bias, y, accumulate); return; }
    if (isa == GLIDE_WF42_AVX2) { wf44_output_panel_avx2(buf, xs, rs, m, mr, t0, nt, O, OH, OW, ty0, bias, y, accumulate); return; }
#endif
    wf4_output_panel(buf, xs, rs, m, mr, t0, nt, O, OH, OW, ty0, bias, y, accumulate, 4, GLIDE_WF42_PORTABLE,
                     wf44_out_run_portable, 0);
}
