// Winograd F(4x2, 3x3) for int8 weights in integers: each tile gives 4 outputs along the width (F(4, 3), points
// 0, +-1, +-2, inf) and 2 along the height (F(2, 3) as in gemm_int8_avx2.c), from a 6-wide x 4-tall input tile:
// 24 positions xi = 4-row index i * 6 + 6-column index j, 3 products per output instead of F(2x2)'s 4.
//   U' = N2 g N4^T          exact int16, |U'| <= 127 * 3 * 7 = 2667 (row scale = the int8 scale)
//   V = B2^T d B4           f32 in a fixed order (below), quantized per column (tile) and 256-long K block
//                           to the position's own bound, its scale times the position's factor f2[i] f4[j]
//   Y = A2^T M A4           f32 on the 24 GEMM products M (glide_gemm_wi16_* on packed panels)
// where G2 = diag(f2) N2 and G4 = diag(f4) N4 with integer rows: N2 = [1 0 0; 1 1 1; 1 -1 1; 0 0 1],
// f2 = (1, 1/2, 1/2, 1); N4 = [1 0 0; -1 -1 -1; -1 1 -1; 1 2 4; 1 -2 4; 0 0 1], f4 = (1/4, 1/6, 1/6, 1/24, 1/24, 1).
// The factors go with the activations (their scales are per position anyway), so each position's U' is as small
// as its integer rows allow and each position gets the largest activation bound its own U' permits.
// B4^T = [4 0 -5 0 1 0; 0 -4 -4 1 1 0;
// 0 4 -4 -1 1 0; 0 -2 -1 2 1 0; 0 2 -1 -2 1 0; 0 4 0 -5 0 1], A4^T = [1 1 1 1 1 0; 0 1 -1 2 -2 0; 0 1 1 4 4 0;
// 0 1 -1 8 -8 1] (Lavin & Gray's F(4, 3)). Every transform has AVX-512 and AVX2 bodies and a portable twin doing
// the same float operations in the same order, so all give the same bits.
#include "CKernelsX86.h"
#include "include/glide_scratch.h"
#include <stdlib.h>
#include <string.h>
#include "wf4_internal.h"
#include "preact_internal.h"

#pragma STDC FP_CONTRACT OFF

enum { WF42_XI = 24 };

// The positions' factors f2[i] f4[j] (header comment), xi = i * 6 + j.
#define WF42_F4(a) (a) / 4.f, (a) / 6.f, (a) / 6.f, (a) / 24.f, (a) / 24.f, (a)
static const float wf42_factor[WF42_XI] = {WF42_F4(1.f), WF42_F4(0.5f), WF42_F4(0.5f), WF42_F4(1.f)};
#undef WF42_F4

int glide_wf42_qmax(int32_t max_l1) {
    if (max_l1 < 1) max_l1 = 1;
    long long q = 2147483647LL / max_l1;
    return q > 32767 ? 32767 : q < 1 ? 1 : (int)q;
}

// ---------------------------------------------------------------- weights
// Channel blocks of 32: the 3x3 kernels transposed to [9][32] so that each step is a loop over channels
// (`vbmi`: the transposition with byte permutes; integer arithmetic, so every variant gives the same int16s).
static inline AI void wf42_weights(const int8_t *g, int C, int16_t *u, ptrdiff_t xi_stride, int vbmi) {
    enum { CB = 32 };
    for (int c0 = 0; c0 < C; c0 += CB) {
        const int cb = C - c0 < CB ? C - c0 : CB;
        int16_t k[9][CB] __attribute__((aligned(64))), t[4][3][CB] __attribute__((aligned(64)));
        wf4_kernel_block(g, c0, cb, k, vbmi);
        for (int x = 0; x < 3; x++)        // N2 g: rows of the kernel (height)
            for (int j = 0; j < CB; j++) {
                int16_t g0 = k[x][j], g1 = k[3 + x][j], g2 = k[6 + x][j];
                t[0][x][j] = g0; t[1][x][j] = (int16_t)(g0 + g1 + g2);
                t[2][x][j] = (int16_t)(g0 - g1 + g2); t[3][x][j] = g2;
            }
        for (int i = 0; i < 4; i++) {      // (N2 g) N4^T: columns (width)
            int16_t *ui = u + (ptrdiff_t)i * 6 * xi_stride + c0;
            int16_t *restrict u0 = ui, *restrict u1 = ui + xi_stride, *restrict u2 = ui + 2 * xi_stride;
            int16_t *restrict u3 = ui + 3 * xi_stride, *restrict u4 = ui + 4 * xi_stride, *restrict u5 = ui + 5 * xi_stride;
            for (int j = 0; j < cb; j++) {
                const int16_t t0 = t[i][0][j], t1 = t[i][1][j], t2 = t[i][2][j];
                u0[j] = t0;
                u1[j] = (int16_t)(-(t0 + t1 + t2));
                u2[j] = (int16_t)(-(t0 - t1 + t2));
                u3[j] = (int16_t)(t0 + 2 * t1 + 4 * t2);
                u4[j] = (int16_t)(t0 - 2 * t1 + 4 * t2);
                u5[j] = t2;
            }
        }
    }
    (void)vbmi;
}

void glide_wf42_weights_i16(const int8_t *g, int C, int16_t *u, ptrdiff_t xi_stride) {
    wf42_weights(g, C, u, xi_stride, 0);
}

static int wf42_weights_use_simd = 1;
void glide_wf42_weights_allow_simd(int on) { wf42_weights_use_simd = on != 0; }

#if defined(__x86_64__)
__attribute__((target("avx512f,avx512bw,avx512vl,avx512vbmi,avx2")))
static void wf42_weights_packed_vbmi(const int8_t *q, ptrdiff_t ldq, int O, int C, int MR, int p0, int p1,
                                     uint32_t *dst, int32_t *max_l1, int16_t *u, int transpose8) {
    wf4_weights_packed(q, ldq, O, C, MR, p0, p1, dst, max_l1, u, transpose8, 1, WF42_XI, wf42_weights);
}
__attribute__((target("avx2,fma")))
static void wf42_weights_packed_avx2(const int8_t *q, ptrdiff_t ldq, int O, int C, int MR, int p0, int p1,
                                     uint32_t *dst, int32_t *max_l1, int16_t *u, int transpose8) {
    wf4_weights_packed(q, ldq, O, C, MR, p0, p1, dst, max_l1, u, transpose8, 0, WF42_XI, wf42_weights);
}
#endif

int glide_wf42_weights_i16_packed(const int8_t *q, ptrdiff_t ldq, int O, int C, int MR, int p0, int p1,
                                  uint32_t *dst, int32_t *max_l1) {
    return wf4_weights_i16_packed(q, ldq, O, C, MR, p0, p1, dst, max_l1, WF42_XI, wf42_weights_use_simd,
                                  WF4_X86(wf42_weights_packed_vbmi), WF4_X86(wf42_weights_packed_avx2), wf42_weights);
}

// ---------------------------------------------------------------- input transform + quantization + packing
// The F(4, 3) row transform B4^T d of one input row of 6, in this order (x4 and x2 are exact):
//   a = d4 - d2, b = d4 - 4 d2, c = d3 - 4 d1, e = 2 (d3 - d1)
//   v0 = 4 (d0 - d2) + a, v1 = b + c, v2 = b - c, v3 = a + e, v4 = a - e, v5 = 4 (d1 - d3) + (d5 - d3)
// then the F(2, 3) column transform of the 4 rows: w0 = r0 - r2, w1 = r1 + r2, w2 = r2 - r1, w3 = r1 - r3.
// tb[xi * xs + c * NB + j]: position xi of channel k0 + c for the panel's tile j; mx[xi * 64 + j]: running max |v|
// of column j as a bit pattern (wi_abs_bits), as gemm_int8_avx2.c's fused packing keeps them.
static void wf42_transform_portable(const float *x, int H, int W, int C, int tw, int ty0, ptrdiff_t t0, int nt,
                                    int k0, int kc, int NB, float *tb, ptrdiff_t xs, uint32_t *mx,
                                    const glide_preact *pre) {
    for (int c = 0; c < kc; c++) {
        float *tc = tb + (size_t)c * NB;
        for (int j = 0; j < nt; j++) {
            int tx, ty;
            const float *plane;
            wf4_run(x, H, W, C, 2, tw, ty0, t0, j, nt, k0 + c, 1, &plane, &tx, &ty);
            // the pre-activation of this (image, channel): plane = x + (n * C + ch) * H * W
            const ptrdiff_t pc = (plane - x) / ((ptrdiff_t)H * W);
            const float pa = pre ? pre->a[pc] : 0.f, pb = pre ? pre->b[pc] : 0.f;
            float r[4][6];
            for (int rr = 0; rr < 4; rr++) {
                const int iy = 2 * ty - 1 + rr;
                float d[6];
                for (int k = 0; k < 6; k++) {
                    const int ix = 4 * tx - 1 + k;
                    d[k] = iy < 0 || iy >= H || ix < 0 || ix >= W ? 0.f
                         : pre ? preact_scalar(plane[(size_t)iy * W + ix], pa, pb, pre->silu) : plane[(size_t)iy * W + ix];
                }
                const float a = d[4] - d[2], b = d[4] - 4.f * d[2], cc = d[3] - 4.f * d[1], e = 2.f * (d[3] - d[1]);
                r[rr][0] = 4.f * (d[0] - d[2]) + a;
                r[rr][1] = b + cc;
                r[rr][2] = b - cc;
                r[rr][3] = a + e;
                r[rr][4] = a - e;
                r[rr][5] = 4.f * (d[1] - d[3]) + (d[5] - d[3]);
            }
            float v[WF42_XI];
            for (int jj = 0; jj < 6; jj++) {
                v[0 * 6 + jj] = r[0][jj] - r[2][jj];
                v[1 * 6 + jj] = r[1][jj] + r[2][jj];
                v[2 * 6 + jj] = r[2][jj] - r[1][jj];
                v[3 * 6 + jj] = r[1][jj] - r[3][jj];
            }
            for (int xi = 0; xi < WF42_XI; xi++) {
                tc[xi * xs + j] = v[xi];
                const uint32_t b = wi_abs_bits(v[xi]);
                if (b > mx[xi * 64 + j]) mx[xi * 64 + j] = b;
            }
        }
        for (int xi = 0; xi < WF42_XI; xi++) for (int j = nt; j < NB; j++) tc[xi * xs + j] = 0.f;
    }
}

// The pre-activation's row cache of the AVX-512 body: per (channel, 16-tile column segment) the activated rows
// 2 and 3 of the last run there, which are rows 0 and 1 of the run one tile row below (tiles overlap by 2 rows),
// so each activation is computed about once instead of twice (the same values: no bits change).
typedef struct {
    ptrdiff_t pc;        // the (image, channel) plane, -1: empty
    int tx, iy;          // the run's first tile column and the input row of z[0]
    float z[2][5][16] __attribute__((aligned(64)));
} wf42_cached_rows;
typedef struct { wf42_cached_rows *slots; int nseg; } wf42_row_cache;

#if defined(__x86_64__)
enum { WF42_PREFETCH = 4 };

// Runs of up to 16 tiles of one tile row, one tile a lane: the 66 input columns of a row as 5 masked loads,
// split into the 4 column phases (d0 .. d3 of each tile) by permutes, d4 / d5 = d0 / d1 of the next tile.
T512F static void wf42_transform_avx512(const float *x, int H, int W, int C, int tw, int ty0, ptrdiff_t t0, int nt,
                                        int k0, int kc, int NB, float *tb, ptrdiff_t xs, uint32_t *mx,
                                        const glide_preact *pre, wf42_row_cache *cache) {
    const __m512i idx01 = _mm512_setr_epi32(0, 4, 8, 12, 16, 20, 24, 28, 1, 5, 9, 13, 17, 21, 25, 29);
    const __m512i idx23 = _mm512_setr_epi32(2, 6, 10, 14, 18, 22, 26, 30, 3, 7, 11, 15, 19, 23, 27, 31);
    const __m512 zero = _mm512_setzero_ps(), four = _mm512_set1_ps(4.f), two = _mm512_set1_ps(2.f);
    for (int c = 0; c < kc; c++) {
        float *tc = tb + (size_t)c * NB;
        for (int j0 = 0; j0 < NB; ) {
            if (j0 >= nt) {   // columns past the chunk: zero
                const int n = NB - j0 < 16 ? NB - j0 : 16;
                const __mmask16 sm = (__mmask16)(((uint32_t)1 << n) - 1);
                for (int xi = 0; xi < WF42_XI; xi++) _mm512_mask_storeu_ps(tc + xi * xs + j0, sm, zero);
                j0 += n;
                continue;
            }
            int tx, ty;
            const float *plane;
            const int n = wf4_run(x, H, W, C, 2, tw, ty0, t0, j0, nt, k0 + c, 16, &plane, &tx, &ty);
            const ptrdiff_t s = 4 * (ptrdiff_t)tx - 1;
            __mmask16 lm[5];
            for (int q = 0; q < 5; q++) lm[q] = wi_range_mask16(s + 16 * q, W);
            lm[4] &= 3;
            const ptrdiff_t pc = (plane - x) / ((ptrdiff_t)H * W);   // pre-activation of (image, channel)
            const __m512 pa = _mm512_set1_ps(pre ? pre->a[pc] : 0.f), pb = _mm512_set1_ps(pre ? pre->b[pc] : 0.f);
            wf42_cached_rows *slot = cache ? cache->slots + (size_t)(k0 + c) * cache->nseg + tx / 16 : NULL;
            const int hit = slot && slot->pc == pc && slot->tx == tx && slot->iy == 2 * ty - 1;
            __m512 r[4][6];
            for (int rr = 0; rr < 4; rr++) {
                const int iy = 2 * ty - 1 + rr;
                __m512 z[5] = {zero, zero, zero, zero, zero};
                if (hit && rr < 2) {
                    for (int q = 0; q < 5; q++) z[q] = _mm512_load_ps(slot->z[rr][q]);
                } else if (iy >= 0 && iy < H) {
                    const float *pr = plane + (size_t)iy * W + s;
                    if (c + WF42_PREFETCH < kc) {
                        const char *f = (const char *)(pr + (size_t)WF42_PREFETCH * H * W);
                        _mm_prefetch(f, _MM_HINT_T0); _mm_prefetch(f + 64, _MM_HINT_T0);
                        _mm_prefetch(f + 128, _MM_HINT_T0); _mm_prefetch(f + 192, _MM_HINT_T0);
                        _mm_prefetch(f + 256, _MM_HINT_T0); _mm_prefetch(f + 263, _MM_HINT_T0);   // every line of the 264 bytes
                    }
                    for (int q = 0; q < 5; q++) z[q] = _mm512_maskz_loadu_ps(lm[q], pr + 16 * q);
                    if (pre)   // padding stays 0: the lanes outside the image are cleared after the activation
                        for (int q = 0; q < 5; q++) z[q] = _mm512_maskz_mov_ps(lm[q], preact512(z[q], pa, pb, pre->silu));
                }
                if (slot && rr >= 2) for (int q = 0; q < 5; q++) _mm512_store_ps(slot->z[rr - 2][q], z[q]);
                const __m512 a01 = _mm512_permutex2var_ps(z[0], idx01, z[1]), b01 = _mm512_permutex2var_ps(z[2], idx01, z[3]);
                const __m512 a23 = _mm512_permutex2var_ps(z[0], idx23, z[1]), b23 = _mm512_permutex2var_ps(z[2], idx23, z[3]);
                const __m512 d0 = _mm512_shuffle_f32x4(a01, b01, 0x44), d1 = _mm512_shuffle_f32x4(a01, b01, 0xee);
                const __m512 d2 = _mm512_shuffle_f32x4(a23, b23, 0x44), d3 = _mm512_shuffle_f32x4(a23, b23, 0xee);
                const __m512i z4 = _mm512_castps_si512(z[4]);
                const __m512 d4 = _mm512_castsi512_ps(_mm512_alignr_epi32(z4, _mm512_castps_si512(d0), 1));
                const __m512 d5 = _mm512_castsi512_ps(_mm512_alignr_epi32(_mm512_alignr_epi32(z4, z4, 1),
                                                                          _mm512_castps_si512(d1), 1));
                const __m512 a = _mm512_sub_ps(d4, d2), b = _mm512_sub_ps(d4, _mm512_mul_ps(four, d2));
                const __m512 cc = _mm512_sub_ps(d3, _mm512_mul_ps(four, d1));
                const __m512 e = _mm512_mul_ps(two, _mm512_sub_ps(d3, d1));
                r[rr][0] = _mm512_add_ps(_mm512_mul_ps(four, _mm512_sub_ps(d0, d2)), a);
                r[rr][1] = _mm512_add_ps(b, cc);
                r[rr][2] = _mm512_sub_ps(b, cc);
                r[rr][3] = _mm512_add_ps(a, e);
                r[rr][4] = _mm512_sub_ps(a, e);
                r[rr][5] = _mm512_add_ps(_mm512_mul_ps(four, _mm512_sub_ps(d1, d3)), _mm512_sub_ps(d5, d3));
            }
            if (slot) { slot->pc = pc; slot->tx = tx; slot->iy = 2 * ty + 1; }
            const __mmask16 sm = (__mmask16)(((uint32_t)1 << n) - 1);
            float *tj = tc + j0;
            uint32_t *mj = mx + j0;
            for (int jj = 0; jj < 6; jj++) {
                wi_store_max16(tj + (0 * 6 + jj) * xs, mj + (0 * 6 + jj) * 64, sm, _mm512_sub_ps(r[0][jj], r[2][jj]));
                wi_store_max16(tj + (1 * 6 + jj) * xs, mj + (1 * 6 + jj) * 64, sm, _mm512_add_ps(r[1][jj], r[2][jj]));
                wi_store_max16(tj + (2 * 6 + jj) * xs, mj + (2 * 6 + jj) * 64, sm, _mm512_sub_ps(r[2][jj], r[1][jj]));
                wi_store_max16(tj + (3 * 6 + jj) * xs, mj + (3 * 6 + jj) * 64, sm, _mm512_sub_ps(r[1][jj], r[3][jj]));
            }
            j0 += n;
        }
    }
}

// The same on ymm: runs of up to 8 tiles, one tile a lane; the 34 input columns of a row as 4 masked loads
// (two tiles each) transposed to the column phases d0 .. d3, d4 / d5 = d0 / d1 of the next tile.
TAVX2F static void wf42_transform_avx2(const float *x, int H, int W, int C, int tw, int ty0, ptrdiff_t t0, int nt,
                                      int k0, int kc, int NB, float *tb, ptrdiff_t xs, uint32_t *mx,
                                      const glide_preact *pre) {
    const __m256 zero = _mm256_setzero_ps(), four = _mm256_set1_ps(4.f), two = _mm256_set1_ps(2.f);
    const __m256i next = _mm256_setr_epi32(1, 2, 3, 4, 5, 6, 7, 7);
    for (int c = 0; c < kc; c++) {
        float *tc = tb + (size_t)c * NB;
        for (int j0 = 0; j0 < NB; ) {
            if (j0 >= nt) {   // columns past the chunk: zero
                const int n = NB - j0 < 8 ? NB - j0 : 8;
                const __m256i sm = wf4_lane_mask8(0, n);
                for (int xi = 0; xi < WF42_XI; xi++) _mm256_maskstore_ps(tc + xi * xs + j0, sm, zero);
                j0 += n;
                continue;
            }
            int tx, ty;
            const float *plane;
            const int n = wf4_run(x, H, W, C, 2, tw, ty0, t0, j0, nt, k0 + c, 8, &plane, &tx, &ty);
            const ptrdiff_t s = 4 * (ptrdiff_t)tx - 1;
            __m256i lm[4];
            for (int q = 0; q < 4; q++) lm[q] = wf4_lane_mask8(s + 8 * q, W);
            const ptrdiff_t pc = (plane - x) / ((ptrdiff_t)H * W);   // pre-activation of (image, channel)
            const float pas = pre ? pre->a[pc] : 0.f, pbs = pre ? pre->b[pc] : 0.f;
            const __m256 pa = _mm256_set1_ps(pas), pb = _mm256_set1_ps(pbs);
            __m256 r[4][6];
            for (int rr = 0; rr < 4; rr++) {
                const int iy = 2 * ty - 1 + rr;
                __m256 y[4] = {zero, zero, zero, zero};
                float e4 = 0.f, e5 = 0.f;
                if (iy >= 0 && iy < H) {
                    const float *pr = plane + (size_t)iy * W + s;
                    if (c + WF42_PREFETCH < kc) {   // as on zmm: the row streams of many channels defeat the hardware prefetcher
                        const char *f = (const char *)(pr + (size_t)WF42_PREFETCH * H * W);
                        _mm_prefetch(f, _MM_HINT_T0); _mm_prefetch(f + 64, _MM_HINT_T0);
                        _mm_prefetch(f + 128, _MM_HINT_T0); _mm_prefetch(f + 135, _MM_HINT_T0);   // every line of the 136 bytes
                    }
                    for (int q = 0; q < 4; q++) y[q] = _mm256_maskload_ps(pr + 8 * q, lm[q]);
                    if (s + 32 >= 0 && s + 32 < W) e4 = pr[32];
                    if (s + 33 >= 0 && s + 33 < W) e5 = pr[33];
                    if (pre) {   // padding stays 0: the lanes outside the image are cleared after the activation
                        for (int q = 0; q < 4; q++)
                            y[q] = _mm256_and_ps(preact256(y[q], pa, pb, pre->silu), _mm256_castsi256_ps(lm[q]));
                        if (s + 32 >= 0 && s + 32 < W) e4 = preact_scalar(e4, pas, pbs, pre->silu);
                        if (s + 33 >= 0 && s + 33 < W) e5 = preact_scalar(e5, pas, pbs, pre->silu);
                    }
                }
                // [t0|t4], [t1|t5], [t2|t6], [t3|t7], then a 4x4 transpose per 128-bit lane
                const __m256 z0 = _mm256_permute2f128_ps(y[0], y[2], 0x20), z1 = _mm256_permute2f128_ps(y[0], y[2], 0x31);
                const __m256 z2 = _mm256_permute2f128_ps(y[1], y[3], 0x20), z3 = _mm256_permute2f128_ps(y[1], y[3], 0x31);
                const __m256 u0 = _mm256_unpacklo_ps(z0, z1), u1 = _mm256_unpackhi_ps(z0, z1);
                const __m256 u2 = _mm256_unpacklo_ps(z2, z3), u3 = _mm256_unpackhi_ps(z2, z3);
                const __m256 d0 = _mm256_shuffle_ps(u0, u2, 0x44), d1 = _mm256_shuffle_ps(u0, u2, 0xee);
                const __m256 d2 = _mm256_shuffle_ps(u1, u3, 0x44), d3 = _mm256_shuffle_ps(u1, u3, 0xee);
                const __m256 d4 = _mm256_blend_ps(_mm256_permutevar8x32_ps(d0, next), _mm256_set1_ps(e4), 0x80);
                const __m256 d5 = _mm256_blend_ps(_mm256_permutevar8x32_ps(d1, next), _mm256_set1_ps(e5), 0x80);
                const __m256 a = _mm256_sub_ps(d4, d2), b = _mm256_sub_ps(d4, _mm256_mul_ps(four, d2));
                const __m256 cc = _mm256_sub_ps(d3, _mm256_mul_ps(four, d1));
                const __m256 e = _mm256_mul_ps(two, _mm256_sub_ps(d3, d1));
                r[rr][0] = _mm256_add_ps(_mm256_mul_ps(four, _mm256_sub_ps(d0, d2)), a);
                r[rr][1] = _mm256_add_ps(b, cc);
                r[rr][2] = _mm256_sub_ps(b, cc);
                r[rr][3] = _mm256_add_ps(a, e);
                r[rr][4] = _mm256_sub_ps(a, e);
                r[rr][5] = _mm256_add_ps(_mm256_mul_ps(four, _mm256_sub_ps(d1, d3)), _mm256_sub_ps(d5, d3));
            }
            const __m256i sm = wf4_lane_mask8(0, n);
            float *tj = tc + j0;
            uint32_t *mj = mx + j0;
            for (int jj = 0; jj < 6; jj++) {
                wf4_store_max8(tj + (0 * 6 + jj) * xs, mj + (0 * 6 + jj) * 64, sm, _mm256_sub_ps(r[0][jj], r[2][jj]));
                wf4_store_max8(tj + (1 * 6 + jj) * xs, mj + (1 * 6 + jj) * 64, sm, _mm256_add_ps(r[1][jj], r[2][jj]));
                wf4_store_max8(tj + (2 * 6 + jj) * xs, mj + (2 * 6 + jj) * 64, sm, _mm256_sub_ps(r[2][jj], r[1][jj]));
                wf4_store_max8(tj + (3 * 6 + jj) * xs, mj + (3 * 6 + jj) * 64, sm, _mm256_sub_ps(r[1][jj], r[3][jj]));
            }
            j0 += n;
        }
    }
}
#endif

static inline AI void wf42_pack_panels(const float *x, int H, int W, int C, int ty0, ptrdiff_t tiles, int NB, const int *qmax,
                                       ptrdiff_t p0, ptrdiff_t p1, uint32_t *dst, float *scales, float *tb,
                                       ptrdiff_t xs, uint32_t *mx, const glide_preact *pre, wf42_row_cache *cache,
                                       int isa) {
    const int tw = (W + 3) / 4;
    const ptrdiff_t P = (tiles + NB - 1) / NB, words = glide_wi16_packed_words((int)tiles, C, NB);
    const int nkb = (C + WI_KC - 1) / WI_KC;
    // With the row cache, the panels one tile row apart (stride S) one after the other.
    const ptrdiff_t S = cache && tw > NB && tw % NB == 0 ? tw / NB : 1;
    for (ptrdiff_t r = 0; r < S; r++)
    for (ptrdiff_t p = p0 + ((r - p0 % S) + S) % S; p < p1; p += S) {
        const ptrdiff_t t0 = p * NB;
        const int nt = (int)(tiles - t0 < NB ? tiles - t0 : NB);
        for (int k0 = 0; k0 < C; k0 += WI_KC) {
            const int kc = C - k0 < WI_KC ? C - k0 : WI_KC, kp = (kc + 1) / 2, kb = k0 / WI_KC;
            memset(mx, 0, sizeof(uint32_t) * WF42_XI * 64);
#if defined(__x86_64__)
            if (isa == GLIDE_WF42_AVX512) wf42_transform_avx512(x, H, W, C, tw, ty0, t0, nt, k0, kc, NB, tb, xs, mx, pre, cache);
            else if (isa == GLIDE_WF42_AVX2) wf42_transform_avx2(x, H, W, C, tw, ty0, t0, nt, k0, kc, NB, tb, xs, mx, pre);
            else
#endif
            wf42_transform_portable(x, H, W, C, tw, ty0, t0, nt, k0, kc, NB, tb, xs, mx, pre);
            for (int xi = 0; xi < WF42_XI; xi++) {
                float *sc = scales + ((ptrdiff_t)xi * nkb + kb) * P * NB + p * NB;
                wi_quantize_block(tb + xi * xs, mx + xi * 64, kc, NB, qmax[xi],
                                  dst + xi * words + (ptrdiff_t)kb * (WI_KC / 2) * NB * P + p * kp * NB, sc);
                for (int j = 0; j < NB; j++) sc[j] *= wf42_factor[xi];
            }
        }
    }
    (void)isa;
}

#if defined(__x86_64__)
T512F static void wf42_pack_panels_avx512(const float *x, int H, int W, int C, int ty0, ptrdiff_t tiles, int NB,
                                          const int *qmax, ptrdiff_t p0, ptrdiff_t p1, uint32_t *dst, float *scales,
                                          float *tb, ptrdiff_t xs, uint32_t *mx, const glide_preact *pre,
                                          wf42_row_cache *cache) {
    wf42_pack_panels(x, H, W, C, ty0, tiles, NB, qmax, p0, p1, dst, scales, tb, xs, mx, pre, cache, GLIDE_WF42_AVX512);
}
TAVX2F static void wf42_pack_panels_avx2(const float *x, int H, int W, int C, int ty0, ptrdiff_t tiles, int NB,
                                        const int *qmax, ptrdiff_t p0, ptrdiff_t p1, uint32_t *dst, float *scales,
                                        float *tb, ptrdiff_t xs, uint32_t *mx, const glide_preact *pre) {
    wf42_pack_panels(x, H, W, C, ty0, tiles, NB, qmax, p0, p1, dst, scales, tb, xs, mx, pre, NULL, GLIDE_WF42_AVX2);
}
#endif

int glide_wf42_input_i16_packed(const float *x, int H, int W, int C, int ty0, ptrdiff_t tiles, int NB, const int *qmax,
                                ptrdiff_t p0, ptrdiff_t p1, uint32_t *dst, float *scales, int isa) {
    return glide_wf42_input_i16_packed_preact(x, H, W, C, ty0, tiles, NB, qmax, p0, p1, dst, scales, NULL, isa);
}

static int wf42_row_cache_on = 1;
void glide_wf42_preact_row_cache(int on) { wf42_row_cache_on = on != 0; }

int glide_wf42_input_i16_packed_preact(const float *x, int H, int W, int C, int ty0, ptrdiff_t tiles, int NB,
                                       const int *qmax, ptrdiff_t p0, ptrdiff_t p1, uint32_t *dst, float *scales,
                                       const glide_preact *pre, int isa) {
    if (NB > 64 || NB < 8 || NB % 8) return -1;
    int q[WF42_XI];
    for (int xi = 0; xi < WF42_XI; xi++) q[xi] = qmax[xi] < 1 ? 1 : qmax[xi] > 32767 ? 32767 : qmax[xi];
    const int kcap = C < WI_KC ? (C > 0 ? C : 1) : WI_KC;
    const ptrdiff_t xs = (ptrdiff_t)kcap * NB + 16;   // + 64 bytes: the positions' blocks on different L1 sets
    const size_t mark = glide_scratch_mark();   // scratch from the calling thread's stack (glide_scratch.h)
    float *tb = glide_scratch_alloc(sizeof(float) * (size_t)(WF42_XI * xs));
    uint32_t *mx = glide_scratch_alloc(sizeof(uint32_t) * WF42_XI * 64);
    if (!tb || !mx) { glide_scratch_release(mark); return -1; }
#if defined(__x86_64__)
    if (isa == GLIDE_WF42_AVX512) {
        // the row cache (with a pre-activation)
        wf42_row_cache cache = {NULL, (W + 63) / 64};
        if (pre && wf42_row_cache_on) {
            cache.slots = glide_scratch_alloc(sizeof(wf42_cached_rows) * (size_t)C * cache.nseg);
            if (!cache.slots) { glide_scratch_release(mark); return -1; }
            for (size_t i = 0; i < (size_t)C * cache.nseg; i++) cache.slots[i].pc = -1;
        }
        wf42_pack_panels_avx512(x, H, W, C, ty0, tiles, NB, q, p0, p1, dst, scales, tb, xs, mx, pre,
                                cache.slots ? &cache : NULL);
    }
    else if (isa == GLIDE_WF42_AVX2) wf42_pack_panels_avx2(x, H, W, C, ty0, tiles, NB, q, p0, p1, dst, scales, tb, xs, mx, pre);
    else
#endif
    wf42_pack_panels(x, H, W, C, ty0, tiles, NB, q, p0, p1, dst, scales, tb, xs, mx, pre, NULL, GLIDE_WF42_PORTABLE);
    glide_scratch_release(mark);
    return 0;
}

// ---------------------------------------------------------------- output transform
// Per tile, from the 24 products m[i][j] (i height, j width), in this order:
//   h0[j] = (m0j + m1j) + m2j, h1[j] = (m1j - m2j) - m3j                     (A2^T)
//   per row h: s1 = h1 + h2, d1 = h1 - h2, s2 = h3 + h4, d2 = h3 - h4             (A4^T)
//   y0 = ((h0 + s1) + s2) + b, y1 = (d1 + 2 d2) + b, y2 = (s1 + 4 s2) + b, y3 = ((d1 + 8 d2) + h5) + b
// then y is stored, or added to y when accumulate (dst + y).
// One run of n tiles of one tile row (tile row ty of an image, first tile tx; `plane` = the output channel's
// plane): products mt[xi * xs + k] for tile tx + k. Every body below does these operations per tile.
static void wf42_out_run_portable(const float *mt, ptrdiff_t xs, int n, float bo, float *plane, int OH, int OW,
                             int ty, int tx0, int accumulate, int stream) {
    for (int k0 = 0; k0 < n; k0++) {
        float h[2][6];
        for (int j = 0; j < 6; j++) {
            const float m0 = mt[(0 * 6 + j) * xs + k0], m1 = mt[(1 * 6 + j) * xs + k0];
            const float m2 = mt[(2 * 6 + j) * xs + k0], m3 = mt[(3 * 6 + j) * xs + k0];
            h[0][j] = (m0 + m1) + m2;
            h[1][j] = (m1 - m2) - m3;
        }
        wf4_out_tile_portable((const float (*)[6])h, 2, bo, plane, OH, OW, 2 * ty, tx0 + k0, accumulate);
    }
    (void)stream;
}

#if defined(__x86_64__)
// Up to 16 tiles, one tile a lane (wf4_out_rows_avx512).
T512F static void wf42_out_run_avx512(const float *mt, ptrdiff_t xs, int n, float bias, float *plane,
                                      int OH, int OW, int ty, int tx, int accumulate, int stream) {
    const __mmask16 lm = (__mmask16)(((uint32_t)1 << n) - 1);
    __m512 h[2][6];
    for (int j = 0; j < 6; j++) {
        const __m512 m0 = _mm512_maskz_loadu_ps(lm, mt + (0 * 6 + j) * xs);
        const __m512 m1 = _mm512_maskz_loadu_ps(lm, mt + (1 * 6 + j) * xs);
        const __m512 m2 = _mm512_maskz_loadu_ps(lm, mt + (2 * 6 + j) * xs);
        const __m512 m3 = _mm512_maskz_loadu_ps(lm, mt + (3 * 6 + j) * xs);
        h[0][j] = _mm512_add_ps(_mm512_add_ps(m0, m1), m2);
        h[1][j] = _mm512_sub_ps(_mm512_sub_ps(m1, m2), m3);
    }
    wf4_out_rows_avx512((const __m512 (*)[6])h, 2, n, bias, plane, OH, OW, 2 * ty, tx, accumulate, stream);
}

// The same on ymm: up to 8 tiles (wf4_out_rows_avx2).
TAVX2F static void wf42_out_run_avx2(const float *mt, ptrdiff_t xs, int n, float bias, float *plane,
                                    int OH, int OW, int ty, int tx, int accumulate, int stream) {
    const __m256i lm = wf4_lane_mask8(0, n);
    __m256 h[2][6];
    for (int j = 0; j < 6; j++) {
        const __m256 m0 = _mm256_maskload_ps(mt + (0 * 6 + j) * xs, lm);
        const __m256 m1 = _mm256_maskload_ps(mt + (1 * 6 + j) * xs, lm);
        const __m256 m2 = _mm256_maskload_ps(mt + (2 * 6 + j) * xs, lm);
        const __m256 m3 = _mm256_maskload_ps(mt + (3 * 6 + j) * xs, lm);
        h[0][j] = _mm256_add_ps(_mm256_add_ps(m0, m1), m2);
        h[1][j] = _mm256_sub_ps(_mm256_sub_ps(m1, m2), m3);
    }
    wf4_out_rows_avx2((const __m256 (*)[6])h, 2, n, bias, plane, OH, OW, 2 * ty, tx, accumulate);
    (void)stream;
}
#endif

#if defined(__x86_64__)
T512F static void wf42_output_avx512(const float *m, ptrdiff_t ldm, ptrdiff_t xs, int O, int o0, int o1, int OH,
                                     int OW, int ty0, int ty1, const float *bias, float *y, int accumulate) {
    wf4_output_rows(m, ldm, xs, O, o0, o1, OH, OW, ty0, ty1, bias, y, accumulate, 2, GLIDE_WF42_AVX512, wf42_out_run_avx512);
}
TAVX2F static void wf42_output_avx2(const float *m, ptrdiff_t ldm, ptrdiff_t xs, int O, int o0, int o1, int OH,
                                    int OW, int ty0, int ty1, const float *bias, float *y, int accumulate) {
    wf4_output_rows(m, ldm, xs, O, o0, o1, OH, OW, ty0, ty1, bias, y, accumulate, 2, GLIDE_WF42_AVX2, wf42_out_run_avx2);
}
T512F static void wf42_output_panel_avx512(const float *buf, ptrdiff_t xs, ptrdiff_t rs, int m, int mr, ptrdiff_t t0,
                                           int nt, int O, int OH, int OW, int ty0, const float *bias, float *y,
                                           int accumulate) {
    wf4_output_panel(buf, xs, rs, m, mr, t0, nt, O, OH, OW, ty0, bias, y, accumulate, 2, GLIDE_WF42_AVX512,
                     wf42_out_run_avx512, 0);
}
TAVX2F static void wf42_output_panel_avx2(const float *buf, ptrdiff_t xs, ptrdiff_t rs, int m, int mr, ptrdiff_t t0,
                                          int nt, int O, int OH, int OW, int ty0, const float *bias, float *y,
                                          int accumulate) {
    wf4_output_panel(buf, xs, rs, m, mr, t0, nt, O, OH, OW, ty0, bias, y, accumulate, 2, GLIDE_WF42_AVX2,
                     wf42_out_run_avx2, 0);
}
#endif

void glide_wf42_output(const float *m, ptrdiff_t ldm, ptrdiff_t xi_stride, int O, int o0, int o1, int OH, int OW,
                       int ty0, int ty1, const float *bias, float *y, int accumulate, int isa) {
#if defined(__x86_64__)
    if (isa == GLIDE_WF42_AVX512) { wf42_output_avx512(m, ldm, xi_stride, O, o0, o1, OH, OW, ty0, ty1, bias, y, accumulate); return; }
    if (isa == GLIDE_WF42_AVX2) { wf42_output_avx2(m, ldm, xi_stride, O, o0, o1, OH, OW, ty0, ty1, bias, y, accumulate); return; }
#endif
    wf4_output_rows(m, ldm, xi_stride, O, o0, o1, OH, OW, ty0, ty1, bias, y, accumulate, 2, GLIDE_WF42_PORTABLE,
                    wf42_out_run_portable);
}

void glide_wf42_output_panel(const float *buf, ptrdiff_t xs, ptrdiff_t rs, int m, int mr, ptrdiff_t t0, int nt,
                             int O, int OH, int OW, int ty0, const float *bias, float *y, int accumulate, int isa) {
#if defined(__x86_64__)
    if (isa == GLIDE_WF42_AVX512) { wf42_output_panel_avx512(buf, xs, rs, m, mr, t0, nt, O, OH, OW, ty0, bias, y, accumulate); return; }
    if (isa == GLIDE_WF42_AVX2) { wf42_output_panel_avx2(buf, xs, rs, m, mr, t0, nt, O, OH, OW, ty0, bias, y, accumulate); return; }
#endif
    wf4_output_panel(buf, xs, rs, m, mr, t0, nt, O, OH, OW, ty0, bias, y, accumulate, 2, GLIDE_WF42_PORTABLE,
                     wf42_out_run_portable, 0);
}
