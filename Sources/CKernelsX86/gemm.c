// AVX2/FMA blocked GEMM: W [M, K] (f32 / f16 / bf16 / int8) x X [K, N] (f32, strided or implicit im2col).
// Loop order (BLIS): jc over NC columns -> pc over KC -> pack B block -> ic over MC rows -> pack A block
// -> jr over NR panels -> ir over MR panels -> 6x16 register micro-kernel.
// The K reduction order of every output element is fixed (KC blocks in order), independent of the
// (m0, m1, n0, n1) block, so any partition over threads gives bit-identical results.
#include "CKernelsX86.h"
#include "include/glide_scratch.h"
#if defined(__x86_64__)
#include <immintrin.h>
#include <stdlib.h>
#include <string.h>
#include <math.h>

#define MR 6
#define NR 16
#ifndef KC
#define KC 256
#endif
#ifndef MC
#define MC 144
#endif
#ifndef NC
#define NC 2048
#endif
#define TGT __attribute__((target("avx2,fma,f16c")))

// ---------------------------------------------------------------- packing A (weights)

// f32 panels: dst[k * MR + r] for k < kc (rows >= mr are zero).
TGT static void pack_a_f32(const glide_gemm_desc *d, ptrdiff_t m, int mr, ptrdiff_t k0, int kc, float *dst,
                           float *tmp /* MR*KC */) {
    for (int r = 0; r < MR; r++) {
        float *t = tmp + r * KC;
        if (r >= mr) { memset(t, 0, sizeof(float) * kc); continue; }
        ptrdiff_t off = (m + r) * d->ldw + k0;
        int k = 0;
        switch (d->w_dtype) {
        case GLIDE_W_F32: memcpy(t, (const float *)d->w + off, sizeof(float) * kc); break;
        case GLIDE_W_F16: {
            const uint16_t *s = (const uint16_t *)d->w + off;
            for (; k + 8 <= kc; k += 8) _mm256_storeu_ps(t + k, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(s + k))));
            for (; k < kc; k++) t[k] = _mm_cvtss_f32(_mm_cvtph_ps(_mm_cvtsi32_si128(s[k])));
            break;
        }
        case GLIDE_W_BF16: {
            const uint16_t *s = (const uint16_t *)d->w + off;
            for (; k + 8 <= kc; k += 8) {
                __m256i v = _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)(s + k)));
                _mm256_storeu_ps(t + k, _mm256_castsi256_ps(_mm256_slli_epi32(v, 16)));
            }
            for (; k < kc; k++) { uint32_t b = (uint32_t)s[k] << 16; memcpy(t + k, &b, 4); }
            break;
        }
        }
    }
    // transpose [MR][kc] -> [kc][MR]: 8x8 register transpose of 6 real rows + 2 zero rows; each output
    // vector k holds [r0..r5, 0, 0] and is stored 8 wide at dst + k*MR (the next store overwrites the
    // 2 extra lanes; the caller leaves 8 floats of slack after the panel).
    int k = 0;
    const __m256 z = _mm256_setzero_ps();
    for (; k + 8 <= kc; k += 8) {
        __m256 r0 = _mm256_loadu_ps(tmp + 0 * KC + k), r1 = _mm256_loadu_ps(tmp + 1 * KC + k);
        __m256 r2 = _mm256_loadu_ps(tmp + 2 * KC + k), r3 = _mm256_loadu_ps(tmp + 3 * KC + k);
        __m256 r4 = _mm256_loadu_ps(tmp + 4 * KC + k), r5 = _mm256_loadu_ps(tmp + 5 * KC + k);
        __m256 t0 = _mm256_unpacklo_ps(r0, r1), t1 = _mm256_unpackhi_ps(r0, r1);
        __m256 t2 = _mm256_unpacklo_ps(r2, r3), t3 = _mm256_unpackhi_ps(r2, r3);
        __m256 t4 = _mm256_unpacklo_ps(r4, r5), t5 = _mm256_unpackhi_ps(r4, r5);
        __m256 t6 = z, t7 = z;
        __m256 u0 = _mm256_shuffle_ps(t0, t2, 0x44), u1 = _mm256_shuffle_ps(t0, t2, 0xEE);
        __m256 u2 = _mm256_shuffle_ps(t1, t3, 0x44), u3 = _mm256_shuffle_ps(t1, t3, 0xEE);
        __m256 u4 = _mm256_shuffle_ps(t4, t6, 0x44), u5 = _mm256_shuffle_ps(t4, t6, 0xEE);
        __m256 u6 = _mm256_shuffle_ps(t5, t7, 0x44), u7 = _mm256_shuffle_ps(t5, t7, 0xEE);
        float *o = dst + k * MR;
        _mm256_storeu_ps(o + 0 * MR, _mm256_permute2f128_ps(u0, u4, 0x20));
        _mm256_storeu_ps(o + 1 * MR, _mm256_permute2f128_ps(u1, u5, 0x20));
        _mm256_storeu_ps(o + 2 * MR, _mm256_permute2f128_ps(u2, u6, 0x20));
        _mm256_storeu_ps(o + 3 * MR, _mm256_permute2f128_ps(u3, u7, 0x20));
        _mm256_storeu_ps(o + 4 * MR, _mm256_permute2f128_ps(u0, u4, 0x31));
        _mm256_storeu_ps(o + 5 * MR, _mm256_permute2f128_ps(u1, u5, 0x31));
        _mm256_storeu_ps(o + 6 * MR, _mm256_permute2f128_ps(u2, u6, 0x31));
        _mm256_storeu_ps(o + 7 * MR, _mm256_permute2f128_ps(u3, u7, 0x31));
    }
    for (; k < kc; k++)
        for (int r = 0; r < MR; r++) dst[k * MR + r] = tmp[r * KC + k];
}

// int8 weights -> int16 panels: dst[(k/2) * MR*2 + r*2 + (k&1)], kc rounded up to even with zeros.
TGT static void pack_a_i16(const glide_gemm_desc *d, ptrdiff_t m, int mr, ptrdiff_t k0, int kc, int16_t *dst) {
    int kp = (kc + 1) / 2;
    for (int r = 0; r < MR; r++) {
        if (r >= mr) {
            for (int p = 0; p < kp; p++) { dst[p * MR * 2 + r * 2] = 0; dst[p * MR * 2 + r * 2 + 1] = 0; }
            continue;
        }
        const int8_t *s = (const int8_t *)d->w + (m + r) * d->ldw + k0;
        int p = 0;
        for (; 2 * p + 1 < kc; p++) {
            int32_t v = (uint16_t)(int16_t)s[2 * p] | ((uint32_t)(uint16_t)(int16_t)s[2 * p + 1] << 16);
            memcpy(dst + p * MR * 2 + r * 2, &v, 4);
        }
        if (kc & 1) { dst[p * MR * 2 + r * 2] = s[kc - 1]; dst[p * MR * 2 + r * 2 + 1] = 0; }
    }
}

// ---------------------------------------------------------------- packing B (activations)

// One f32 panel: dst[k * NR + j], k < kc, columns n..n+nr-1 (nr <= NR, rest zero).
TGT static void pack_b_f32(const glide_gemm_desc *d, ptrdiff_t k0, int kc, ptrdiff_t n, int nr, float *dst) {
    if (d->src_kind == GLIDE_SRC_STRIDED) {
        const float *x = d->x + k0 * d->x_rs + n * d->x_cs;
        if (d->x_cs == 1 && nr == NR) {
            for (int k = 0; k < kc; k++) {
                const float *s = x + k * d->x_rs;
                _mm256_store_ps(dst + k * NR, _mm256_loadu_ps(s));
                _mm256_store_ps(dst + k * NR + 8, _mm256_loadu_ps(s + 8));
            }
        } else if (d->x_rs == 1) {          // X^T dense along k (token-major activations): read rows
            for (int j = 0; j < NR; j++) {
                if (j >= nr) { for (int k = 0; k < kc; k++) dst[k * NR + j] = 0; continue; }
                const float *s = x + j * d->x_cs;
                for (int k = 0; k < kc; k++) dst[k * NR + j] = s[k];
            }
        } else {
            for (int k = 0; k < kc; k++)
                for (int j = 0; j < NR; j++) dst[k * NR + j] = j < nr ? x[k * d->x_rs + j * d->x_cs] : 0.f;
        }
        return;
    }
    // implicit im2col of one image
    const int ks = d->conv_k, kk = ks * ks, H = d->conv_h, W = d->conv_w, st = d->conv_stride, pad = d->conv_pad;
    const int ow = d->conv_ow;
    int iy0[NR], ix0[NR];
    for (int j = 0; j < NR; j++) {
        ptrdiff_t nn = n + (j < nr ? j : 0);
        int oy = (int)(nn / ow), ox = (int)(nn % ow);
        iy0[j] = oy * st - pad; ix0[j] = ox * st - pad;
    }
    // an 8-lane segment is "fast" when its 8 columns are valid, in one output row, and stride is 1
    int fast[2];
    for (int s = 0; s < 2; s++) {
        int j0 = s * 8;
        fast[s] = st == 1 && j0 + 8 <= nr && iy0[j0] == iy0[j0 + 7] && ix0[j0 + 7] == ix0[j0] + 7;
    }
    const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    const __m256i wv = _mm256_set1_epi32(W);
    int c = (int)(k0 / kk), r = (int)(k0 % kk);
    int ky = r / ks, kx = r % ks;
    const float *plane = d->x + (ptrdiff_t)c * H * W;
    for (int k = 0; k < kc; k++) {
        float *o = dst + k * NR;
        for (int s = 0; s < 2; s++) {
            int j0 = s * 8;
            if (fast[s]) {
                int iy = iy0[j0] + ky;
                if (iy < 0 || iy >= H) { _mm256_store_ps(o + j0, _mm256_setzero_ps()); continue; }
                int ix = ix0[j0] + kx;
                const float *src = plane + (ptrdiff_t)iy * W + ix;
                _mm_prefetch((const char *)(src + 16), _MM_HINT_T0);   // the next panel's columns
                if (ix >= 0 && ix + 8 <= W) {
                    _mm256_store_ps(o + j0, _mm256_loadu_ps(src));
                } else {
                    __m256i idx = _mm256_add_epi32(_mm256_set1_epi32(ix), lane);
                    __m256i ok = _mm256_andnot_si256(_mm256_cmpgt_epi32(_mm256_setzero_si256(), idx),
                                                     _mm256_cmpgt_epi32(wv, idx));
                    _mm256_store_ps(o + j0, _mm256_maskload_ps(src, ok));
                }
            } else {
                for (int j = j0; j < j0 + 8; j++) {
                    int iy = iy0[j] + ky, ix = ix0[j] + kx;
                    o[j] = (j < nr && iy >= 0 && iy < H && ix >= 0 && ix < W) ? plane[(ptrdiff_t)iy * W + ix] : 0.f;
                }
            }
        }
        if (++kx == ks) { kx = 0; if (++ky == ks) { ky = 0; plane += (ptrdiff_t)H * W; } }
    }
}

// Quantize a packed f32 panel [kc][NR] to int16 pairs dst[(k/2) * NR*2 + j*2 + (k&1)], one scale per column.
TGT static void quantize_b_panel(const float *src, int kc, int qmax, int16_t *dst, float *scales) {
    __m256 mx0 = _mm256_setzero_ps(), mx1 = _mm256_setzero_ps();
    const __m256 absmask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
    for (int k = 0; k < kc; k++) {
        mx0 = _mm256_max_ps(mx0, _mm256_and_ps(absmask, _mm256_load_ps(src + k * NR)));
        mx1 = _mm256_max_ps(mx1, _mm256_and_ps(absmask, _mm256_load_ps(src + k * NR + 8)));
    }
    const __m256 qm = _mm256_set1_ps((float)qmax);
    __m256 s0 = _mm256_div_ps(mx0, qm), s1 = _mm256_div_ps(mx1, qm);
    __m256 zero = _mm256_setzero_ps();
    // inverse scale; 0 for all-zero columns
    __m256 i0 = _mm256_and_ps(_mm256_cmp_ps(s0, zero, _CMP_GT_OQ), _mm256_div_ps(_mm256_set1_ps(1.f), s0));
    __m256 i1 = _mm256_and_ps(_mm256_cmp_ps(s1, zero, _CMP_GT_OQ), _mm256_div_ps(_mm256_set1_ps(1.f), s1));
    _mm256_storeu_ps(scales, s0); _mm256_storeu_ps(scales + 8, s1);
    int kp = (kc + 1) / 2;
    for (int p = 0; p < kp; p++) {
        int ka = 2 * p, kb = 2 * p + 1;
        __m256 a0 = _mm256_load_ps(src + ka * NR), a1 = _mm256_load_ps(src + ka * NR + 8);
        __m256 b0 = kb < kc ? _mm256_load_ps(src + kb * NR) : zero;
        __m256 b1 = kb < kc ? _mm256_load_ps(src + kb * NR + 8) : zero;
        __m256i qa0 = _mm256_cvtps_epi32(_mm256_mul_ps(a0, i0)), qa1 = _mm256_cvtps_epi32(_mm256_mul_ps(a1, i1));
        __m256i qb0 = _mm256_cvtps_epi32(_mm256_mul_ps(b0, i0)), qb1 = _mm256_cvtps_epi32(_mm256_mul_ps(b1, i1));
        // interleave (a, b) per column as int16 pairs: lo16 = a, hi16 = b
        __m256i mask = _mm256_set1_epi32(0xffff);
        __m256i p0 = _mm256_or_si256(_mm256_and_si256(qa0, mask), _mm256_slli_epi32(qb0, 16));
        __m256i p1 = _mm256_or_si256(_mm256_and_si256(qa1, mask), _mm256_slli_epi32(qb1, 16));
        _mm256_store_si256((__m256i *)(dst + p * NR * 2), p0);
        _mm256_store_si256((__m256i *)(dst + p * NR * 2 + 16), p1);
    }
}

// ---------------------------------------------------------------- store

// c[r][0..15] in registers; row r of the tile is output row m+r, columns n..n+15.
TGT static inline void store_tile(const glide_gemm_desc *d, __m256 c[2 * MR], ptrdiff_t m, int mr, ptrdiff_t n,
                                  int nr, int first) {
    int add_old = !first || d->accumulate;
    if (mr == MR && nr == NR && d->y_cs == 1) {
        for (int r = 0; r < MR; r++) {
            float *y = d->y + (m + r) * d->y_rs + n;
            __m256 v0 = c[2 * r], v1 = c[2 * r + 1];
            if (first && d->bias) { __m256 b = _mm256_broadcast_ss(d->bias + m + r); v0 = _mm256_add_ps(v0, b); v1 = _mm256_add_ps(v1, b); }
            if (add_old) { v0 = _mm256_add_ps(_mm256_loadu_ps(y), v0); v1 = _mm256_add_ps(_mm256_loadu_ps(y + 8), v1); }
            _mm256_storeu_ps(y, v0); _mm256_storeu_ps(y + 8, v1);
        }
        return;
    }
    float t[MR * NR];
    for (int r = 0; r < MR; r++) { _mm256_storeu_ps(t + r * NR, c[2 * r]); _mm256_storeu_ps(t + r * NR + 8, c[2 * r + 1]); }
    for (int r = 0; r < mr; r++) {
        float b = (first && d->bias) ? d->bias[m + r] : 0.f;
        for (int j = 0; j < nr; j++) {
            float *y = d->y + (m + r) * d->y_rs + (n + j) * d->y_cs;
            float v = t[r * NR + j] + b;
            *y = add_old ? *y + v : v;
        }
    }
}

// ---------------------------------------------------------------- micro-kernels

TGT static inline void kernel_f32(int kc, const float *a, const float *b, __m256 c[2 * MR]) {
    __m256 c00 = _mm256_setzero_ps(), c01 = _mm256_setzero_ps(), c10 = _mm256_setzero_ps(), c11 = _mm256_setzero_ps();
    __m256 c20 = _mm256_setzero_ps(), c21 = _mm256_setzero_ps(), c30 = _mm256_setzero_ps(), c31 = _mm256_setzero_ps();
    __m256 c40 = _mm256_setzero_ps(), c41 = _mm256_setzero_ps(), c50 = _mm256_setzero_ps(), c51 = _mm256_setzero_ps();
    for (int k = 0; k < kc; k++) {
        __m256 b0 = _mm256_load_ps(b), b1 = _mm256_load_ps(b + 8);
        __m256 a0 = _mm256_broadcast_ss(a + 0); c00 = _mm256_fmadd_ps(a0, b0, c00); c01 = _mm256_fmadd_ps(a0, b1, c01);
        __m256 a1 = _mm256_broadcast_ss(a + 1); c10 = _mm256_fmadd_ps(a1, b0, c10); c11 = _mm256_fmadd_ps(a1, b1, c11);
        __m256 a2 = _mm256_broadcast_ss(a + 2); c20 = _mm256_fmadd_ps(a2, b0, c20); c21 = _mm256_fmadd_ps(a2, b1, c21);
        __m256 a3 = _mm256_broadcast_ss(a + 3); c30 = _mm256_fmadd_ps(a3, b0, c30); c31 = _mm256_fmadd_ps(a3, b1, c31);
        __m256 a4 = _mm256_broadcast_ss(a + 4); c40 = _mm256_fmadd_ps(a4, b0, c40); c41 = _mm256_fmadd_ps(a4, b1, c41);
        __m256 a5 = _mm256_broadcast_ss(a + 5); c50 = _mm256_fmadd_ps(a5, b0, c50); c51 = _mm256_fmadd_ps(a5, b1, c51);
        a += MR; b += NR;
    }
    c[0] = c00; c[1] = c01; c[2] = c10; c[3] = c11; c[4] = c20; c[5] = c21;
    c[6] = c30; c[7] = c31; c[8] = c40; c[9] = c41; c[10] = c50; c[11] = c51;
}

// Same as kernel_f32 but A is read straight from 6 weight rows (f32 weights, no packing): used when the
// column range is short and packing A could not be amortized. Same FMA order as kernel_f32.
TGT static inline void kernel_f32_rows(int kc, const float *const rows[MR], const float *b, __m256 c[2 * MR]) {
    const float *a0p = rows[0], *a1p = rows[1], *a2p = rows[2], *a3p = rows[3], *a4p = rows[4], *a5p = rows[5];
    __m256 c00 = _mm256_setzero_ps(), c01 = _mm256_setzero_ps(), c10 = _mm256_setzero_ps(), c11 = _mm256_setzero_ps();
    __m256 c20 = _mm256_setzero_ps(), c21 = _mm256_setzero_ps(), c30 = _mm256_setzero_ps(), c31 = _mm256_setzero_ps();
    __m256 c40 = _mm256_setzero_ps(), c41 = _mm256_setzero_ps(), c50 = _mm256_setzero_ps(), c51 = _mm256_setzero_ps();
    for (int k = 0; k < kc; k++) {
        __m256 b0 = _mm256_load_ps(b), b1 = _mm256_load_ps(b + 8);
        __m256 a0 = _mm256_broadcast_ss(a0p + k); c00 = _mm256_fmadd_ps(a0, b0, c00); c01 = _mm256_fmadd_ps(a0, b1, c01);
        __m256 a1 = _mm256_broadcast_ss(a1p + k); c10 = _mm256_fmadd_ps(a1, b0, c10); c11 = _mm256_fmadd_ps(a1, b1, c11);
        __m256 a2 = _mm256_broadcast_ss(a2p + k); c20 = _mm256_fmadd_ps(a2, b0, c20); c21 = _mm256_fmadd_ps(a2, b1, c21);
        __m256 a3 = _mm256_broadcast_ss(a3p + k); c30 = _mm256_fmadd_ps(a3, b0, c30); c31 = _mm256_fmadd_ps(a3, b1, c31);
        __m256 a4 = _mm256_broadcast_ss(a4p + k); c40 = _mm256_fmadd_ps(a4, b0, c40); c41 = _mm256_fmadd_ps(a4, b1, c41);
        __m256 a5 = _mm256_broadcast_ss(a5p + k); c50 = _mm256_fmadd_ps(a5, b0, c50); c51 = _mm256_fmadd_ps(a5, b1, c51);
        b += NR;
    }
    c[0] = c00; c[1] = c01; c[2] = c10; c[3] = c11; c[4] = c20; c[5] = c21;
    c[6] = c30; c[7] = c31; c[8] = c40; c[9] = c41; c[10] = c50; c[11] = c51;
}

// int16 pairs: a[(p) * MR*2 + r*2 + {0,1}], b[p * NR*2 + j*2 + {0,1}]; result scaled to f32:
// c = acc * wscale[r] * bscale[j].
TGT static inline void kernel_i16(int kp, const int16_t *a, const int16_t *b, const float *wscale,
                                  const float *bscale, __m256 c[2 * MR]) {
    __m256i c00 = _mm256_setzero_si256(), c01 = _mm256_setzero_si256(), c10 = _mm256_setzero_si256(), c11 = _mm256_setzero_si256();
    __m256i c20 = _mm256_setzero_si256(), c21 = _mm256_setzero_si256(), c30 = _mm256_setzero_si256(), c31 = _mm256_setzero_si256();
    __m256i c40 = _mm256_setzero_si256(), c41 = _mm256_setzero_si256(), c50 = _mm256_setzero_si256(), c51 = _mm256_setzero_si256();
    const int32_t *a32 = (const int32_t *)a;
    for (int p = 0; p < kp; p++) {
        __m256i b0 = _mm256_load_si256((const __m256i *)b), b1 = _mm256_load_si256((const __m256i *)(b + 16));
        __m256i a0 = _mm256_set1_epi32(a32[0]); c00 = _mm256_add_epi32(c00, _mm256_madd_epi16(a0, b0)); c01 = _mm256_add_epi32(c01, _mm256_madd_epi16(a0, b1));
        __m256i a1 = _mm256_set1_epi32(a32[1]); c10 = _mm256_add_epi32(c10, _mm256_madd_epi16(a1, b0)); c11 = _mm256_add_epi32(c11, _mm256_madd_epi16(a1, b1));
        __m256i a2 = _mm256_set1_epi32(a32[2]); c20 = _mm256_add_epi32(c20, _mm256_madd_epi16(a2, b0)); c21 = _mm256_add_epi32(c21, _mm256_madd_epi16(a2, b1));
        __m256i a3 = _mm256_set1_epi32(a32[3]); c30 = _mm256_add_epi32(c30, _mm256_madd_epi16(a3, b0)); c31 = _mm256_add_epi32(c31, _mm256_madd_epi16(a3, b1));
        __m256i a4 = _mm256_set1_epi32(a32[4]); c40 = _mm256_add_epi32(c40, _mm256_madd_epi16(a4, b0)); c41 = _mm256_add_epi32(c41, _mm256_madd_epi16(a4, b1));
        __m256i a5 = _mm256_set1_epi32(a32[5]); c50 = _mm256_add_epi32(c50, _mm256_madd_epi16(a5, b0)); c51 = _mm256_add_epi32(c51, _mm256_madd_epi16(a5, b1));
        a32 += MR; b += NR * 2;
    }
    __m256 s0 = _mm256_loadu_ps(bscale), s1 = _mm256_loadu_ps(bscale + 8);
    __m256i acc[12] = {c00, c01, c10, c11, c20, c21, c30, c31, c40, c41, c50, c51};
    for (int r = 0; r < MR; r++) {
        __m256 w = _mm256_broadcast_ss(wscale + r);
        c[2 * r] = _mm256_mul_ps(_mm256_cvtepi32_ps(acc[2 * r]), _mm256_mul_ps(w, s0));
        c[2 * r + 1] = _mm256_mul_ps(_mm256_cvtepi32_ps(acc[2 * r + 1]), _mm256_mul_ps(w, s1));
    }
}

// ---------------------------------------------------------------- driver

// Scratch from the calling thread's stack (glide_scratch.h): released with the mark taken before it.
static void *aligned(size_t bytes) { return glide_scratch_alloc(bytes); }

static size_t elem_size(int dtype) { return dtype == GLIDE_W_F32 ? 4 : dtype == GLIDE_W_INT8 ? 1 : 2; }

TGT int glide_gemm_avx2(const glide_gemm_desc *d, ptrdiff_t m0, ptrdiff_t m1, ptrdiff_t n0, ptrdiff_t n1) {
    if (m1 <= m0 || n1 <= n0) return 0;
    if (d->y_cs != 1 && d->src_kind == GLIDE_SRC_STRIDED && d->K > 0) {
        // Output with m contiguous (token-major linear layers): compute the block into a dense [m][n] stage,
        // then transpose it into y. Writing 16 columns that are 4-8 KB apart straight from the register tile
        // thrashes L1 sets and halves the speed.
        ptrdiff_t mm = m1 - m0, nn = n1 - n0;
        const size_t mark = glide_scratch_mark();
        float *stage = aligned(sizeof(float) * mm * nn);
        if (!stage) return -1;
        glide_gemm_desc s2 = *d;
        s2.M = mm; s2.N = nn;
        s2.w = (const char *)d->w + (size_t)m0 * d->ldw * elem_size(d->w_dtype);
        if (d->w_scales) s2.w_scales = d->w_scales + m0;
        if (d->bias) s2.bias = d->bias + m0;
        s2.x = d->x + n0 * d->x_cs;
        s2.y = stage; s2.y_rs = nn; s2.y_cs = 1; s2.accumulate = 0;
        int rc = glide_gemm_avx2(&s2, 0, mm, 0, nn);
        if (rc == 0 && d->y_rs == 1) {
            // 8x8 register transposes: stage rows m..m+7, columns n..n+7 -> y rows n..n+7 at m..m+7
            ptrdiff_t n8 = nn & ~(ptrdiff_t)7, m8 = mm & ~(ptrdiff_t)7;
            for (ptrdiff_t n = 0; n < n8; n += 8) {
                for (ptrdiff_t m = 0; m < m8; m += 8) {
                    __m256 r[8];
                    for (int i = 0; i < 8; i++) r[i] = _mm256_loadu_ps(stage + (m + i) * nn + n);
                    __m256 t0 = _mm256_unpacklo_ps(r[0], r[1]), t1 = _mm256_unpackhi_ps(r[0], r[1]);
                    __m256 t2 = _mm256_unpacklo_ps(r[2], r[3]), t3 = _mm256_unpackhi_ps(r[2], r[3]);
                    __m256 t4 = _mm256_unpacklo_ps(r[4], r[5]), t5 = _mm256_unpackhi_ps(r[4], r[5]);
                    __m256 t6 = _mm256_unpacklo_ps(r[6], r[7]), t7 = _mm256_unpackhi_ps(r[6], r[7]);
                    __m256 u0 = _mm256_shuffle_ps(t0, t2, 0x44), u1 = _mm256_shuffle_ps(t0, t2, 0xEE);
                    __m256 u2 = _mm256_shuffle_ps(t1, t3, 0x44), u3 = _mm256_shuffle_ps(t1, t3, 0xEE);
                    __m256 u4 = _mm256_shuffle_ps(t4, t6, 0x44), u5 = _mm256_shuffle_ps(t4, t6, 0xEE);
                    __m256 u6 = _mm256_shuffle_ps(t5, t7, 0x44), u7 = _mm256_shuffle_ps(t5, t7, 0xEE);
                    __m256 o[8] = {
                        _mm256_permute2f128_ps(u0, u4, 0x20), _mm256_permute2f128_ps(u1, u5, 0x20),
                        _mm256_permute2f128_ps(u2, u6, 0x20), _mm256_permute2f128_ps(u3, u7, 0x20),
                        _mm256_permute2f128_ps(u0, u4, 0x31), _mm256_permute2f128_ps(u1, u5, 0x31),
                        _mm256_permute2f128_ps(u2, u6, 0x31), _mm256_permute2f128_ps(u3, u7, 0x31)};
                    for (int j = 0; j < 8; j++) {
                        float *y = d->y + (n0 + n + j) * d->y_cs + m0 + m;
                        _mm256_storeu_ps(y, d->accumulate ? _mm256_add_ps(_mm256_loadu_ps(y), o[j]) : o[j]);
                    }
                }
                for (ptrdiff_t j = n; j < n + 8; j++) {
                    float *y = d->y + (n0 + j) * d->y_cs + m0;
                    for (ptrdiff_t m = m8; m < mm; m++) y[m] = d->accumulate ? y[m] + stage[m * nn + j] : stage[m * nn + j];
                }
            }
            for (ptrdiff_t j = n8; j < nn; j++) {
                float *y = d->y + (n0 + j) * d->y_cs + m0;
                for (ptrdiff_t m = 0; m < mm; m++) y[m] = d->accumulate ? y[m] + stage[m * nn + j] : stage[m * nn + j];
            }
        } else if (rc == 0) {
            for (ptrdiff_t n = 0; n < nn; n++) {
                float *y = d->y + (n0 + n) * d->y_cs + m0 * d->y_rs;
                if (d->accumulate) for (ptrdiff_t m = 0; m < mm; m++) y[m * d->y_rs] += stage[m * nn + n];
                else for (ptrdiff_t m = 0; m < mm; m++) y[m * d->y_rs] = stage[m * nn + n];
            }
        }
        glide_scratch_release(mark);
        return rc;
    }
    const ptrdiff_t K = d->K;
    const int quant = d->w_dtype == GLIDE_W_INT8;
    if (K == 0) {   // y = bias (or unchanged + bias)
        for (ptrdiff_t m = m0; m < m1; m++)
            for (ptrdiff_t n = n0; n < n1; n++) {
                float *y = d->y + m * d->y_rs + n * d->y_cs;
                float b = d->bias ? d->bias[m] : 0.f;
                *y = d->accumulate ? *y + b : b;
            }
        return 0;
    }
    ptrdiff_t ncap = n1 - n0 < NC ? n1 - n0 : NC;
    ptrdiff_t npanels = (ncap + NR - 1) / NR;
    ptrdiff_t mcap = m1 - m0 < MC ? m1 - m0 : MC;
    ptrdiff_t mpanels = (mcap + MR - 1) / MR;
    const size_t mark = glide_scratch_mark();
    float *bpack = aligned(sizeof(float) * KC * NR * (quant ? 1 : npanels));
    float *apack = quant ? NULL : aligned(sizeof(float) * (KC * MR * mpanels + 8));
    float *atmp = aligned(sizeof(float) * KC * MR);
    int16_t *bq = quant ? aligned(sizeof(int16_t) * (KC + 2) * NR * npanels) : NULL;
    float *bscale = quant ? aligned(sizeof(float) * NR * npanels) : NULL;
    int16_t *aq = quant ? aligned(sizeof(int16_t) * (KC + 2) * MR * mpanels) : NULL;
    float *wscale = quant ? aligned(sizeof(float) * MR * mpanels) : NULL;
    if (!bpack || !atmp || (!quant && !apack) || (quant && (!bq || !bscale || !aq || !wscale))) {
        glide_scratch_release(mark);
        return -1;
    }
    __m256 c[2 * MR];
    // f32 weights with few columns: read A rows directly instead of packing them.
    const int direct = d->w_dtype == GLIDE_W_F32 && (n1 - n0) <= 8 * NR;
    static const float zeros[KC] __attribute__((aligned(64)));
    for (ptrdiff_t jc = n0; jc < n1; jc += NC) {
        ptrdiff_t nc = n1 - jc < NC ? n1 - jc : NC;
        int np = (int)((nc + NR - 1) / NR);
        for (ptrdiff_t pc = 0; pc < K; pc += KC) {
            int kc = (int)(K - pc < KC ? K - pc : KC);
            int kp = (kc + 1) / 2;
            int first = pc == 0;
            unsigned long long pt0 = glide_profile_enabled ? glide_profile_now_ns() : 0;
            for (int jp = 0; jp < np; jp++) {
                ptrdiff_t n = jc + (ptrdiff_t)jp * NR;
                int nr = (int)(jc + nc - n < NR ? jc + nc - n : NR);
                if (quant) {
                    pack_b_f32(d, pc, kc, n, nr, bpack);
                    quantize_b_panel(bpack, kc, d->act_qmax, bq + (ptrdiff_t)jp * kp * NR * 2, bscale + jp * NR);
                } else {
                    pack_b_f32(d, pc, kc, n, nr, bpack + (ptrdiff_t)jp * KC * NR);
                }
            }
            if (glide_profile_enabled) glide_profile_add_ns(GLIDE_PROFILE_PACK_ACTIVATIONS, glide_profile_now_ns() - pt0);
            for (ptrdiff_t ic = m0; ic < m1; ic += MC) {
                ptrdiff_t mc = m1 - ic < MC ? m1 - ic : MC;
                int mp = (int)((mc + MR - 1) / MR);
                unsigned long long pt1 = glide_profile_enabled ? glide_profile_now_ns() : 0;
                for (int ip = 0; ip < mp; ip++) {
                    ptrdiff_t m = ic + (ptrdiff_t)ip * MR;
                    int mr = (int)(ic + mc - m < MR ? ic + mc - m : MR);
                    if (direct) {
                        continue;
                    } else if (quant) {
                        pack_a_i16(d, m, mr, pc, kc, aq + (ptrdiff_t)ip * kp * MR * 2);
                        for (int r = 0; r < MR; r++) wscale[ip * MR + r] = r < mr ? d->w_scales[m + r] : 0.f;
                    } else {
                        pack_a_f32(d, m, mr, pc, kc, apack + (ptrdiff_t)ip * KC * MR, atmp);
                    }
                }
                if (glide_profile_enabled) glide_profile_add_ns(GLIDE_PROFILE_PACK_WEIGHTS, glide_profile_now_ns() - pt1);
                for (int jp = 0; jp < np; jp++) {
                    ptrdiff_t n = jc + (ptrdiff_t)jp * NR;
                    int nr = (int)(jc + nc - n < NR ? jc + nc - n : NR);
                    for (int ip = 0; ip < mp; ip++) {
                        ptrdiff_t m = ic + (ptrdiff_t)ip * MR;
                        int mr = (int)(ic + mc - m < MR ? ic + mc - m : MR);
                        if (d->y_cs == 1)
                            for (int r = 0; r < mr; r++) {
                                const char *yp = (const char *)(d->y + (m + r) * d->y_rs + n);
                                _mm_prefetch(yp, _MM_HINT_T0); _mm_prefetch(yp + 60, _MM_HINT_T0);
                            }
                        if (quant)
                            kernel_i16(kp, aq + (ptrdiff_t)ip * kp * MR * 2, bq + (ptrdiff_t)jp * kp * NR * 2,
                                       wscale + ip * MR, bscale + jp * NR, c);
                        else if (direct) {
                            const float *rows[MR];
                            for (int r = 0; r < MR; r++)
                                rows[r] = r < mr ? (const float *)d->w + (m + r) * d->ldw + pc : zeros;
                            kernel_f32_rows(kc, rows, bpack + (ptrdiff_t)jp * KC * NR, c);
                        } else
                            kernel_f32(kc, apack + (ptrdiff_t)ip * KC * MR, bpack + (ptrdiff_t)jp * KC * NR, c);
                        store_tile(d, c, m, mr, n, nr, first);
                    }
                }
            }
        }
    }
    glide_scratch_release(mark);
    return 0;
}

// ---------------------------------------------------------------- peak probe

TGT float glide_fma_peak_probe(long iterations) {
    __m256 c0 = _mm256_set1_ps(0.f), c1 = c0, c2 = c0, c3 = c0, c4 = c0, c5 = c0, c6 = c0, c7 = c0, c8 = c0, c9 = c0, c10 = c0, c11 = c0;
    __m256 a = _mm256_set1_ps(0.999999f), b = _mm256_set1_ps(1e-7f);
    for (long i = 0; i < iterations; i++) {
        c0 = _mm256_fmadd_ps(c0, a, b); c1 = _mm256_fmadd_ps(c1, a, b); c2 = _mm256_fmadd_ps(c2, a, b);
        c3 = _mm256_fmadd_ps(c3, a, b); c4 = _mm256_fmadd_ps(c4, a, b); c5 = _mm256_fmadd_ps(c5, a, b);
        c6 = _mm256_fmadd_ps(c6, a, b); c7 = _mm256_fmadd_ps(c7, a, b); c8 = _mm256_fmadd_ps(c8, a, b);
        c9 = _mm256_fmadd_ps(c9, a, b); c10 = _mm256_fmadd_ps(c10, a, b); c11 = _mm256_fmadd_ps(c11, a, b);
        __asm__ volatile("" : "+x"(c0), "+x"(c1), "+x"(c2), "+x"(c3), "+x"(c4), "+x"(c5));
    }
    __m256 s = _mm256_add_ps(_mm256_add_ps(_mm256_add_ps(c0, c1), _mm256_add_ps(c2, c3)),
                             _mm256_add_ps(_mm256_add_ps(c4, c5), _mm256_add_ps(c6, c7)));
    s = _mm256_add_ps(s, _mm256_add_ps(_mm256_add_ps(c8, c9), _mm256_add_ps(c10, c11)));
    float out[8]; _mm256_storeu_ps(out, s);
    return out[0];
}
#else
int glide_gemm_avx2(const glide_gemm_desc *d, ptrdiff_t m0, ptrdiff_t m1, ptrdiff_t n0, ptrdiff_t n1) {
    (void)d; (void)m0; (void)m1; (void)n0; (void)n1; return -1;
}
float glide_fma_peak_probe(long iterations) { (void)iterations; return 0.f; }
#endif
