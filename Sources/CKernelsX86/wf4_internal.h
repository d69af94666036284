// Private helpers shared by the int8 Winograd files whose tiles are 4 outputs wide (F(4, 3) along the width):
// winograd_f42.c (F(4x2, 3x3), tiles 2 outputs tall) and winograd_f44.c (F(4x4, 3x3), 4 tall). Each file keeps its
// height transforms; here: the tile runs, the AVX2 lane masks, and the output transform's width pass
//   per row h: s1 = h1 + h2, d1 = h1 - h2, s2 = h3 + h4, d2 = h3 - h4                     (A4^T)
//   y0 = ((h0 + s1) + s2) + b, y1 = (d1 + 2 d2) + b, y2 = (s1 + 4 s2) + b, y3 = ((d1 + 8 d2) + h5) + b
// with its stores (y, or dst + y when accumulate), and the output drivers. Every body does these operations in
// this order, so all give the same bits.
#ifndef GLIDE_WF4_INTERNAL_H
#define GLIDE_WF4_INTERNAL_H
#include "CKernelsX86.h"
#include "wi16_internal.h"
#include "include/glide_scratch.h"

#pragma STDC FP_CONTRACT OFF

#if defined(__x86_64__)
#include <immintrin.h>
#define T512F __attribute__((target("avx512f,avx512bw,avx512vl")))
#define TAVX2F __attribute__((target("avx2,fma")))
#define WF4_X86(f) f   // a body that exists on x86 only, else NULL
#else
#define WF4_X86(f) NULL
#endif

// The run of tiles of one tile row starting at column j0 of the chunk (tile t0 + j0, at most `lanes` tiles, not past
// the chunk's nt), for tiles `tile_h` input rows apart: its length; *plane = channel ch's input plane of its image,
// *tx / *ty its tile column / row there.
static inline AI int wf4_run(const float *x, int H, int W, int C, int tile_h, int tw, int ty0, ptrdiff_t t0, int j0,
                             int nt, int ch, int lanes, const float **plane, int *tx, int *ty) {
    const int th = (H + tile_h - 1) / tile_h;
    const ptrdiff_t t = t0 + j0;
    const int gy = ty0 + (int)(t / tw);
    *tx = (int)(t % tw);
    *ty = gy % th;
    *plane = x + ((size_t)(gy / th) * C + ch) * H * W;
    int n = tw - *tx;
    if (n > nt - j0) n = nt - j0;
    return n < lanes ? n : lanes;
}

// The 3x3 kernels of channels c0 .. c0 + cb - 1 (cb <= 32) transposed to k[9][32] (zero past cb), so that each
// step of a weight transform is a loop over channels (`vbmi`: with byte permutes).
static inline AI void wf4_kernel_block(const int8_t *g, int c0, int cb, int16_t k[9][32], int vbmi) {
#if defined(__x86_64__)
    if (vbmi) glide_wi_transpose9_vbmi(g + (size_t)c0 * 9, cb, k);
    else
#endif
    {
        for (int i = 0; i < 9; i++) for (int j = 0; j < 32; j++) k[i][j] = 0;
        for (int j = 0; j < cb; j++)
            for (int i = 0; i < 9; i++) k[i][j] = g[(size_t)(c0 + j) * 9 + i];
    }
    (void)vbmi;
}

// The weight transform of one output channel (3x3 int8 kernels of C channels) into u[xi * xi_stride + c].
typedef void (*wf4_weights_fn)(const int8_t *g, int C, int16_t *u, ptrdiff_t xi_stride, int vbmi);

// Per panel: the MR channels' transforms (`weights`, XI positions) into a scratch [MR][XI][C] (rows >= O zero), then
// each (xi, K block) panel in the GEMM's layout (as glide_winograd_weights_i16_packed). max_l1[xi]: the largest sum
// of |U'| over a row's 256-long K block of position xi, over the panels' rows.
static inline AI void wf4_weights_packed(const int8_t *q, ptrdiff_t ldq, int O, int C, int MR, int p0, int p1,
                                         uint32_t *dst, int32_t *max_l1, int16_t *u, int transpose8, int vbmi,
                                         int XI, wf4_weights_fn weights) {
    const ptrdiff_t P = (O + MR - 1) / MR, words = glide_wi16_packed_words(O, C, MR);
    int32_t mx[36];
    for (int xi = 0; xi < XI; xi++) mx[xi] = 0;
    for (int p = p0; p < p1; p++) {
        const int m = p * MR, mr = O - m < MR ? O - m : MR;
        for (int r = 0; r < MR; r++) {
            int16_t *ur = u + (size_t)r * XI * C;
            if (r < mr) {
                weights(q + (ptrdiff_t)(m + r) * ldq, C, ur, C, vbmi);
                for (int xi = 0; xi < XI; xi++)
                    for (int k0 = 0; k0 < C; k0 += WI_KC) {
                        const int kc = C - k0 < WI_KC ? C - k0 : WI_KC;
                        const int16_t *uk = ur + (size_t)xi * C + k0;
                        int32_t l1 = 0;
                        for (int k = 0; k < kc; k++) l1 += uk[k] < 0 ? -uk[k] : uk[k];
                        mx[xi] = l1 > mx[xi] ? l1 : mx[xi];
                    }
            } else memset(ur, 0, sizeof(int16_t) * XI * (size_t)C);
        }
        for (int xi = 0; xi < XI; xi++)
            for (int k0 = 0; k0 < C; k0 += WI_KC) {
                const int kc = C - k0 < WI_KC ? C - k0 : WI_KC, kp = (kc + 1) / 2, k2 = kc / 2;
                uint32_t *o = dst + xi * words + (ptrdiff_t)(k0 / WI_KC) * (WI_KC / 2) * MR * P + (ptrdiff_t)p * kp * MR;
                if (transpose8)
                    glide_dword_pack8_avx512((const char *)(u + (size_t)xi * C + k0), (ptrdiff_t)XI * C * 2, k2, o);
                else
                    for (int pp = 0; pp < k2; pp++)
                        for (int r = 0; r < MR; r++) {
                            const int16_t *ur = u + ((size_t)r * XI + xi) * C + k0 + 2 * pp;
                            o[pp * MR + r] = (uint32_t)(uint16_t)ur[0] | (uint32_t)(uint16_t)ur[1] << 16;
                        }
                if (k2 < kp)
                    for (int r = 0; r < MR; r++)
                        o[k2 * MR + r] = (uint32_t)(uint16_t)u[((size_t)r * XI + xi) * C + k0 + kc - 1];
            }
    }
    if (max_l1) for (int xi = 0; xi < XI; xi++) max_l1[xi] = mx[xi];
}

// The AVX-512 VBMI / AVX2 bodies of a file's wf4_weights_packed (target-specific wrappers in the file).
typedef void (*wf4_weights_packed_fn)(const int8_t *q, ptrdiff_t ldq, int O, int C, int MR, int p0, int p1,
                                      uint32_t *dst, int32_t *max_l1, int16_t *u, int transpose8);

// glide_wf4x_weights_i16_packed: scratch from the calling thread's stack (glide_scratch.h), then the body the CPU
// (and `use_simd`) allows; -1 when the scratch is exhausted.
static inline AI int wf4_weights_i16_packed(const int8_t *q, ptrdiff_t ldq, int O, int C, int MR, int p0, int p1,
                                            uint32_t *dst, int32_t *max_l1, int XI, int use_simd,
                                            wf4_weights_packed_fn vbmi_body, wf4_weights_packed_fn avx2_body,
                                            wf4_weights_fn weights) {
    const size_t mark = glide_scratch_mark();
    int16_t *u = glide_scratch_alloc(sizeof(int16_t) * (size_t)MR * XI * (C > 0 ? C : 1));
    if (!u) return -1;
#if defined(__x86_64__)
    const int avx2 = glide_cpu_has_avx2_fma();
    const int transpose8 = MR == 8 && avx2;
    if (use_simd && glide_cpu_has_avx512_vbmi())
        vbmi_body(q, ldq, O, C, MR, p0, p1, dst, max_l1, u, transpose8);
    else if (use_simd && avx2)
        avx2_body(q, ldq, O, C, MR, p0, p1, dst, max_l1, u, transpose8);
    else
#endif
    wf4_weights_packed(q, ldq, O, C, MR, p0, p1, dst, max_l1, u, 0, 0, XI, weights);
    (void)vbmi_body; (void)avx2_body;
    glide_scratch_release(mark);
    return 0;
}

// The output rows oy0 .. oy0 + rows - 1 of one tile (column tx) from its height-transformed rows h.
static inline AI void wf4_out_tile_portable(const float (*h)[6], int rows, float bo, float *plane, int OH, int OW,
                                            int oy0, int tx, int accumulate) {
    for (int rr = 0; rr < rows; rr++) {
        const int oy = oy0 + rr;
        if (oy >= OH) break;
        const float *q = h[rr];
        const float s1 = q[1] + q[2], d1 = q[1] - q[2], s2 = q[3] + q[4], d2 = q[3] - q[4];
        float v[4];
        v[0] = ((q[0] + s1) + s2) + bo;
        v[1] = (d1 + 2.f * d2) + bo;
        v[2] = (s1 + 4.f * s2) + bo;
        v[3] = ((d1 + 8.f * d2) + q[5]) + bo;
        float *dst = plane + (size_t)oy * OW + 4 * tx;
        for (int k = 0; k < 4 && 4 * tx + k < OW; k++) dst[k] = accumulate ? dst[k] + v[k] : v[k];
    }
}

// One run of n tiles (tile row ty, first tile tx; `plane` = the output channel's plane): the products
// mt[xi * xs + k] of tile tx + k through the file's height transform, then wf4's width pass and stores.
// `stream`: non-temporal stores where whole aligned lines are overwritten (AVX-512 only).
typedef void (*wf4_out_run_fn)(const float *mt, ptrdiff_t xs, int n, float bias, float *plane, int OH, int OW,
                               int ty, int tx, int accumulate, int stream);

#if defined(__x86_64__)
// Up to 16 tiles, one tile a lane: the rows' 4 outputs of each tile interleaved into 64 columns by permutes.
static inline AI T512F void wf4_out_rows_avx512(const __m512 (*h)[6], int rows, int n, float bias, float *plane,
                                                int OH, int OW, int oy0, int tx, int accumulate, int stream) {
    const __m512i lo = _mm512_setr_epi32(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
    const __m512i hi = _mm512_setr_epi32(8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31);
    const __m512i q0 = _mm512_setr_epi32(0, 1, 16, 17, 2, 3, 18, 19, 4, 5, 20, 21, 6, 7, 22, 23);
    const __m512i q1 = _mm512_setr_epi32(8, 9, 24, 25, 10, 11, 26, 27, 12, 13, 28, 29, 14, 15, 30, 31);
    const __m512 two = _mm512_set1_ps(2.f), four = _mm512_set1_ps(4.f), eight = _mm512_set1_ps(8.f);
    const __m512 bo = _mm512_set1_ps(bias);
    const int cols = OW - 4 * tx < 4 * n ? OW - 4 * tx : 4 * n;
    for (int rr = 0; rr < rows; rr++) {
        const int oy = oy0 + rr;
        if (oy >= OH) break;
        const __m512 *q = h[rr];
        const __m512 s1 = _mm512_add_ps(q[1], q[2]), d1 = _mm512_sub_ps(q[1], q[2]);
        const __m512 s2 = _mm512_add_ps(q[3], q[4]), d2 = _mm512_sub_ps(q[3], q[4]);
        const __m512 v0 = _mm512_add_ps(_mm512_add_ps(_mm512_add_ps(q[0], s1), s2), bo);
        const __m512 v1 = _mm512_add_ps(_mm512_add_ps(d1, _mm512_mul_ps(two, d2)), bo);
        const __m512 v2 = _mm512_add_ps(_mm512_add_ps(s1, _mm512_mul_ps(four, s2)), bo);
        const __m512 v3 = _mm512_add_ps(_mm512_add_ps(_mm512_add_ps(d1, _mm512_mul_ps(eight, d2)), q[5]), bo);
        const __m512 t01l = _mm512_permutex2var_ps(v0, lo, v1), t01h = _mm512_permutex2var_ps(v0, hi, v1);
        const __m512 t23l = _mm512_permutex2var_ps(v2, lo, v3), t23h = _mm512_permutex2var_ps(v2, hi, v3);
        __m512 out[4];
        out[0] = _mm512_permutex2var_ps(t01l, q0, t23l); out[1] = _mm512_permutex2var_ps(t01l, q1, t23l);
        out[2] = _mm512_permutex2var_ps(t01h, q0, t23h); out[3] = _mm512_permutex2var_ps(t01h, q1, t23h);
        float *dst = plane + (size_t)oy * OW + 4 * tx;
        for (int k = 0; k < 4; k++) {
            const int left = cols - 16 * k;
            if (left <= 0) break;
            const __mmask16 sm = left >= 16 ? (__mmask16)0xffff : (__mmask16)(((uint32_t)1 << left) - 1);
            __m512 v = out[k];
            if (accumulate) v = _mm512_add_ps(_mm512_maskz_loadu_ps(sm, dst + 16 * k), v);
            if (stream && sm == 0xffff && ((uintptr_t)(dst + 16 * k) & 63) == 0) _mm512_stream_ps(dst + 16 * k, v);
            else _mm512_mask_storeu_ps(dst + 16 * k, sm, v);
        }
    }
}

// Lanes s .. s + 7 that lie in [0, W), as an AVX2 mask.
static inline TAVX2F __m256i wf4_lane_mask8(ptrdiff_t s, int W) {
    const __m256i i = _mm256_add_epi32(_mm256_set1_epi32((int)s), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
    return _mm256_andnot_si256(_mm256_cmpgt_epi32(_mm256_setzero_si256(), i), _mm256_cmpgt_epi32(_mm256_set1_epi32(W), i));
}

// Stores all 8 lanes (vmaskmovps stores are slow on AMD): lanes past the run land on columns a later run of the
// same channel, the next channel or the block's 16 floats of padding rewrite; only the max is masked.
static inline TAVX2F void wf4_store_max8(float *dst, uint32_t *mx, __m256i sm, __m256 v) {
    _mm256_storeu_ps(dst, v);
    __m256i b = _mm256_and_si256(_mm256_castps_si256(v), _mm256_set1_epi32(0x7fffffff));
    b = _mm256_and_si256(b, _mm256_cmpgt_epi32(_mm256_set1_epi32(0x7f800001), b));   // NaN counts as 0
    b = _mm256_and_si256(b, sm);
    const __m256i m = _mm256_loadu_si256((const __m256i *)mx);
    _mm256_storeu_si256((__m256i *)mx, _mm256_max_epu32(m, b));
}

// The same on ymm: up to 8 tiles; the 4 outputs of each tile interleaved by a 4x4 transpose per 128-bit lane.
static inline AI TAVX2F void wf4_out_rows_avx2(const __m256 (*h)[6], int rows, int n, float bias, float *plane,
                                               int OH, int OW, int oy0, int tx, int accumulate) {
    const __m256 two = _mm256_set1_ps(2.f), four = _mm256_set1_ps(4.f), eight = _mm256_set1_ps(8.f);
    const __m256 bo = _mm256_set1_ps(bias);
    const int cols = OW - 4 * tx < 4 * n ? OW - 4 * tx : 4 * n;
    for (int rr = 0; rr < rows; rr++) {
        const int oy = oy0 + rr;
        if (oy >= OH) break;
        const __m256 *q = h[rr];
        const __m256 s1 = _mm256_add_ps(q[1], q[2]), d1 = _mm256_sub_ps(q[1], q[2]);
        const __m256 s2 = _mm256_add_ps(q[3], q[4]), d2 = _mm256_sub_ps(q[3], q[4]);
        const __m256 v0 = _mm256_add_ps(_mm256_add_ps(_mm256_add_ps(q[0], s1), s2), bo);
        const __m256 v1 = _mm256_add_ps(_mm256_add_ps(d1, _mm256_mul_ps(two, d2)), bo);
        const __m256 v2 = _mm256_add_ps(_mm256_add_ps(s1, _mm256_mul_ps(four, s2)), bo);
        const __m256 v3 = _mm256_add_ps(_mm256_add_ps(_mm256_add_ps(d1, _mm256_mul_ps(eight, d2)), q[5]), bo);
        const __m256 u0 = _mm256_unpacklo_ps(v0, v1), u1 = _mm256_unpackhi_ps(v0, v1);
        const __m256 u2 = _mm256_unpacklo_ps(v2, v3), u3 = _mm256_unpackhi_ps(v2, v3);
        const __m256 r0 = _mm256_shuffle_ps(u0, u2, 0x44), r1 = _mm256_shuffle_ps(u0, u2, 0xee);
        const __m256 r2 = _mm256_shuffle_ps(u1, u3, 0x44), r3 = _mm256_shuffle_ps(u1, u3, 0xee);
        __m256 out[4];   // r_k = [tile k | tile k + 4]
        out[0] = _mm256_permute2f128_ps(r0, r1, 0x20); out[1] = _mm256_permute2f128_ps(r2, r3, 0x20);
        out[2] = _mm256_permute2f128_ps(r0, r1, 0x31); out[3] = _mm256_permute2f128_ps(r2, r3, 0x31);
        float *dst = plane + (size_t)oy * OW + 4 * tx;
        for (int k = 0; k < 4; k++) {
            const int left = cols - 8 * k;
            if (left <= 0) break;
            __m256 v = out[k];
            if (left >= 8) {   // (vmaskmovps stores are slow on AMD: the edge only)
                if (accumulate) v = _mm256_add_ps(_mm256_loadu_ps(dst + 8 * k), v);
                _mm256_storeu_ps(dst + 8 * k, v);
                continue;
            }
            const __m256i sm = wf4_lane_mask8(0, left);
            if (accumulate) v = _mm256_add_ps(_mm256_maskload_ps(dst + 8 * k, sm), v);
            _mm256_maskstore_ps(dst + 8 * k, sm, v);
        }
    }
}
#endif

// Tiles per run of each body.
static inline AI int wf4_step(int isa, int whole) {
    return isa == GLIDE_WF42_AVX512 ? 16 : isa == GLIDE_WF42_AVX2 ? 8 : whole;
}

// Channels [o0, o1), tile rows [ty0, ty1) of the planes m (whole tile rows) of tiles `tile_h` outputs tall, in runs
// of `run` (the body of `isa`).
static inline AI void wf4_output_rows(const float *m, ptrdiff_t ldm, ptrdiff_t xi_stride, int O, int o0, int o1,
                                      int OH, int OW, int ty0, int ty1, const float *bias, float *y, int accumulate,
                                      int tile_h, int isa, wf4_out_run_fn run) {
    const int tw = (OW + 3) / 4, th = (OH + tile_h - 1) / tile_h;
    const int step = wf4_step(isa, tw);
    for (int o = o0; o < o1; o++) {
        const float bo = bias ? bias[o] : 0.f;
        for (int gy = ty0; gy < ty1; gy++) {
            const int ty = gy % th;
            float *plane = y + ((size_t)(gy / th) * O + o) * OH * OW;
            const float *mt = m + (size_t)o * ldm + (size_t)(gy - ty0) * tw;
            for (int tx = 0; tx < tw; tx += step) {
                const int n = tw - tx < step ? tw - tx : step;
                run(mt + tx, xi_stride, n, bo, plane, OH, OW, ty, tx, accumulate, 0);
            }
        }
    }
}

// Output channels m .. m + mr - 1, tiles t0 .. t0 + nt - 1 of the chunk, products buf[xi * xs + r * rs + j]
// (channel m + r, tile t0 + j): runs within one tile row.
static inline AI void wf4_output_panel(const float *buf, ptrdiff_t xs, ptrdiff_t rs, int m, int mr, ptrdiff_t t0,
                                       int nt, int O, int OH, int OW, int ty0, const float *bias, float *y,
                                       int accumulate, int tile_h, int isa, wf4_out_run_fn run, int stream) {
    const int tw = (OW + 3) / 4, th = (OH + tile_h - 1) / tile_h;
    const int step = wf4_step(isa, nt);
    for (int r = 0; r < mr; r++) {
        const int o = m + r;
        const float bo = bias ? bias[o] : 0.f;
        for (int j0 = 0; j0 < nt; ) {
            const ptrdiff_t t = t0 + j0;
            const int gy = ty0 + (int)(t / tw), tx = (int)(t % tw), ty = gy % th;
            float *plane = y + ((size_t)(gy / th) * O + o) * OH * OW;
            int n = tw - tx;
            if (n > nt - j0) n = nt - j0;
            if (n > step) n = step;
            run(buf + r * rs + j0, xs, n, bo, plane, OH, OW, ty, tx, accumulate, stream);
            j0 += n;
        }
    }
}
#endif
