// Winograd F(2x2, 3x3) for int8 weights in integers: the transformed weights are exact int16
// (4U = (2G) g (2G)^T, |4U| <= 9 * 127 = 1143, row scale wscale / 4), the transformed input V (f32, from
// glide_winograd_input_avx2) is quantized per column and per 256-long K block to |q| <= act_qmax
// (<= GLIDE_WI16_QMAX so that 256 products never overflow int32), and the 16 GEMMs U[xi] x V[xi] run as
// int16 x int16 -> int32 pair products: AVX2 `vpmaddwd` (6x16 tile), AVX512-VNNI `vpdpwssd` (8x32 tile) and a
// portable emulation through the same packing and quantization. As in gemm_int8_vnni.c each output element
// depends only on its row, column and K, so all paths and all partitions give bit-identical results.
#include "CKernelsX86.h"
#include "include/glide_scratch.h"
#include <stdlib.h>
#include <string.h>
#include <math.h>
#include "wi16_internal.h"

#pragma STDC FP_CONTRACT OFF

#define WI_NC 1024
#define WI_MC_PANELS 18
// Whether the zmm GEMMs (glide_gemm_wi16_avx512vnni, the fused F(4x2) / F(4x4) passes) run wi_kernel_zmm_prefetch:
// the next weight tile prefetched a line per two steps of the current one (measured 4-19 % faster GEMMs than one
// burst of prefetches per tile or none, BENCHMARKS.md "F(4x4) fused pass (session 7)"; same bits).
static int wf_kernel_prefetch = 1;
void glide_wi16_set_kernel_prefetch(int on) { wf_kernel_prefetch = on != 0; }

// Blocks of 32 channels: the 3x3 kernels are transposed to [9][32] first so that every step below is a
// contiguous loop over the channels (vectorised), and each of the 16 outputs is stored as one run of 32.
// `vbmi`: the [9][32] transposition with AVX512-VBMI byte permutes (caller checked the CPU has them).
#if defined(__x86_64__)
#include <immintrin.h>
// Lane j of tap i: byte 9j + i of the block, at index (9j + i) & 127 of the 128-byte window (9j + i) >> 7.
static const uint8_t wi_t9_idx[9][64] __attribute__((aligned(64))) = {
    {0, 9, 18, 27, 36, 45, 54, 63, 72, 81, 90, 99, 108, 117, 126, 7, 16, 25, 34, 43, 52, 61, 70, 79, 88, 97, 106, 115, 124, 5, 14, 23, 0, 9, 18, 27, 36, 45, 54, 63, 72, 81, 90, 99, 108, 117, 126, 7, 16, 25, 34, 43, 52, 61, 70, 79, 88, 97, 106, 115, 124, 5, 14, 23},
    {1, 10, 19, 28, 37, 46, 55, 64, 73, 82, 91, 100, 109, 118, 127, 8, 17, 26, 35, 44, 53, 62, 71, 80, 89, 98, 107, 116, 125, 6, 15, 24, 1, 10, 19, 28, 37, 46, 55, 64, 73, 82, 91, 100, 109, 118, 127, 8, 17, 26, 35, 44, 53, 62, 71, 80, 89, 98, 107, 116, 125, 6, 15, 24},
    {2, 11, 20, 29, 38, 47, 56, 65, 74, 83, 92, 101, 110, 119, 0, 9, 18, 27, 36, 45, 54, 63, 72, 81, 90, 99, 108, 117, 126, 7, 16, 25, 2, 11, 20, 29, 38, 47, 56, 65, 74, 83, 92, 101, 110, 119, 0, 9, 18, 27, 36, 45, 54, 63, 72, 81, 90, 99, 108, 117, 126, 7, 16, 25},
    {3, 12, 21, 30, 39, 48, 57, 66, 75, 84, 93, 102, 111, 120, 1, 10, 19, 28, 37, 46, 55, 64, 73, 82, 91, 100, 109, 118, 127, 8, 17, 26, 3, 12, 21, 30, 39, 48, 57, 66, 75, 84, 93, 102, 111, 120, 1, 10, 19, 28, 37, 46, 55, 64, 73, 82, 91, 100, 109, 118, 127, 8, 17, 26},
    {4, 13, 22, 31, 40, 49, 58, 67, 76, 85, 94, 103, 112, 121, 2, 11, 20, 29, 38, 47, 56, 65, 74, 83, 92, 101, 110, 119, 0, 9, 18, 27, 4, 13, 22, 31, 40, 49, 58, 67, 76, 85, 94, 103, 112, 121, 2, 11, 20, 29, 38, 47, 56, 65, 74, 83, 92, 101, 110, 119, 0, 9, 18, 27},
    {5, 14, 23, 32, 41, 50, 59, 68, 77, 86, 95, 104, 113, 122, 3, 12, 21, 30, 39, 48, 57, 66, 75, 84, 93, 102, 111, 120, 1, 10, 19, 28, 5, 14, 23, 32, 41, 50, 59, 68, 77, 86, 95, 104, 113, 122, 3, 12, 21, 30, 39, 48, 57, 66, 75, 84, 93, 102, 111, 120, 1, 10, 19, 28},
    {6, 15, 24, 33, 42, 51, 60, 69, 78, 87, 96, 105, 114, 123, 4, 13, 22, 31, 40, 49, 58, 67, 76, 85, 94, 103, 112, 121, 2, 11, 20, 29, 6, 15, 24, 33, 42, 51, 60, 69, 78, 87, 96, 105, 114, 123, 4, 13, 22, 31, 40, 49, 58, 67, 76, 85, 94, 103, 112, 121, 2, 11, 20, 29},
    {7, 16, 25, 34, 43, 52, 61, 70, 79, 88, 97, 106, 115, 124, 5, 14, 23, 32, 41, 50, 59, 68, 77, 86, 95, 104, 113, 122, 3, 12, 21, 30, 7, 16, 25, 34, 43, 52, 61, 70, 79, 88, 97, 106, 115, 124, 5, 14, 23, 32, 41, 50, 59, 68, 77, 86, 95, 104, 113, 122, 3, 12, 21, 30},
    {8, 17, 26, 35, 44, 53, 62, 71, 80, 89, 98, 107, 116, 125, 6, 15, 24, 33, 42, 51, 60, 69, 78, 87, 96, 105, 114, 123, 4, 13, 22, 31, 8, 17, 26, 35, 44, 53, 62, 71, 80, 89, 98, 107, 116, 125, 6, 15, 24, 33, 42, 51, 60, 69, 78, 87, 96, 105, 114, 123, 4, 13, 22, 31}};
static const uint32_t wi_t9_win[9][3] = {
    {0x00007fffu, 0x1fff8000u, 0xe0000000u},
    {0x00007fffu, 0x1fff8000u, 0xe0000000u},
    {0x00003fffu, 0x1fffc000u, 0xe0000000u},
    {0x00003fffu, 0x1fffc000u, 0xe0000000u},
    {0x00003fffu, 0x0fffc000u, 0xf0000000u},
    {0x00003fffu, 0x0fffc000u, 0xf0000000u},
    {0x00003fffu, 0x0fffc000u, 0xf0000000u},
    {0x00003fffu, 0x0fffc000u, 0xf0000000u},
    {0x00003fffu, 0x0fffc000u, 0xf0000000u}};
__attribute__((target("avx512f,avx512bw,avx512vl,avx512vbmi")))
static void wi_transpose9_vbmi(const int8_t *g, int cb, int16_t k[9][32]) {
    // bytes 9j + i of the block (j < cb): windows of 128 bytes, each lane taken from the window it falls in
    const int bytes = 9 * cb;
    __m512i z[6];
    for (int w = 0; w < 6; w++) {
        const int left = bytes - 64 * w;
        const __mmask64 lm = left >= 64 ? ~(__mmask64)0 : left <= 0 ? 0 : (((__mmask64)1 << left) - 1);
        z[w] = _mm512_maskz_loadu_epi8(lm, g + 64 * w);
    }
    const __mmask64 lanes = cb >= 32 ? 0xffffffffu : (((__mmask64)1 << cb) - 1);
    for (int i = 0; i < 9; i++) {
        const __m512i ix = _mm512_load_si512(wi_t9_idx[i]);
        __m512i r = _mm512_maskz_permutex2var_epi8(wi_t9_win[i][0] & lanes, z[0], ix, z[1]);
        r = _mm512_or_si512(r, _mm512_maskz_permutex2var_epi8(wi_t9_win[i][1] & lanes, z[2], ix, z[3]));
        r = _mm512_or_si512(r, _mm512_maskz_permutex2var_epi8(wi_t9_win[i][2] & lanes, z[4], ix, z[5]));
        _mm512_storeu_si512(k[i], _mm512_cvtepi8_epi16(_mm512_castsi512_si256(r)));
    }
}

__attribute__((target("avx512f,avx512bw,avx512vl,avx512vbmi")))
void glide_wi_transpose9_vbmi(const int8_t *g, int cb, int16_t k[9][32]) { wi_transpose9_vbmi(g, cb, k); }
#endif

static inline AI void wi_weights_i16(const int8_t *g, int C, int16_t *u, ptrdiff_t xi_stride, int vbmi) {
    enum { CB = 32 };
    for (int c0 = 0; c0 < C; c0 += CB) {
        const int cb = C - c0 < CB ? C - c0 : CB;
        int16_t k[9][CB], t[4][3][CB];
#if defined(__x86_64__)
        if (vbmi) wi_transpose9_vbmi(g + (size_t)c0 * 9, cb, k);
        else
#endif
        {
            for (int i = 0; i < 9; i++) for (int j = 0; j < CB; j++) k[i][j] = 0;
            for (int j = 0; j < cb; j++)
                for (int i = 0; i < 9; i++) k[i][j] = g[(size_t)(c0 + j) * 9 + i];
        }
        for (int x = 0; x < 3; x++)        // (2G) g
            for (int j = 0; j < CB; j++) {
                int16_t g0 = k[x][j], g1 = k[3 + x][j], g2 = k[6 + x][j];
                t[0][x][j] = (int16_t)(2 * g0); t[1][x][j] = (int16_t)(g0 + g1 + g2);
                t[2][x][j] = (int16_t)(g0 - g1 + g2); t[3][x][j] = (int16_t)(2 * g2);
            }
        for (int i = 0; i < 4; i++) {      // ((2G) g) (2G)^T
            int16_t *u0 = u + (i * 4 + 0) * xi_stride + c0, *u1 = u + (i * 4 + 1) * xi_stride + c0;
            int16_t *u2 = u + (i * 4 + 2) * xi_stride + c0, *u3 = u + (i * 4 + 3) * xi_stride + c0;
            for (int j = 0; j < cb; j++) {
                int16_t t0 = t[i][0][j], t1 = t[i][1][j], t2 = t[i][2][j];
                u0[j] = (int16_t)(2 * t0); u1[j] = (int16_t)(t0 + t1 + t2);
                u2[j] = (int16_t)(t0 - t1 + t2); u3[j] = (int16_t)(2 * t2);
            }
        }
    }
    (void)vbmi;
}

void glide_winograd_weights_i16(const int8_t *g, int C, int16_t *u, ptrdiff_t xi_stride) {
    wi_weights_i16(g, C, u, xi_stride, 0);
}

int glide_cpu_has_avx512_vbmi(void) {
#if defined(__x86_64__)
    static int has = -1;
    if (has < 0) has = __builtin_cpu_supports("avx512vbmi") && __builtin_cpu_supports("avx512bw") ? 1 : 0;
    return has;
#else
    return 0;
#endif
}

#if defined(__x86_64__)
__attribute__((target("avx512f,avx512bw,avx512vl,avx512vbmi")))
static void wi_weights_i16_vbmi(const int8_t *g, int C, int16_t *u, ptrdiff_t xi_stride) {
    wi_weights_i16(g, C, u, xi_stride, 1);
}
#endif

int glide_winograd_weights_i16_vbmi(const int8_t *g, int C, int16_t *u, ptrdiff_t xi_stride) {
#if defined(__x86_64__)
    if (!glide_cpu_has_avx512_vbmi()) return -1;
    wi_weights_i16_vbmi(g, C, u, xi_stride);
    return 0;
#else
    (void)g; (void)C; (void)u; (void)xi_stride;
    return -1;
#endif
}

ptrdiff_t glide_wi16_packed_words(int O, int C, int MR) {
    const ptrdiff_t P = (O + MR - 1) / MR, nkb = (C + WI_KC - 1) / WI_KC, last = C - (nkb - 1) * WI_KC;
    return nkb == 0 ? 0 : ((nkb - 1) * (WI_KC / 2) + (last + 1) / 2) * MR * P;
}

static int glide_winograd_weights_i16_use_vbmi = 1;
void glide_winograd_weights_i16_allow_vbmi(int on) { glide_winograd_weights_i16_use_vbmi = on != 0; }

// Per panel: the MR channels' transforms into a scratch [MR][16][C] (rows >= O zero), then each (xi, K block)
// panel written as the GEMM's wi_pack_a would write it from glide_winograd_weights_i16's output.
int glide_winograd_weights_i16_packed(const int8_t *q, ptrdiff_t ldq, int O, int C, int MR, int p0, int p1,
                                      uint32_t *dst) {
    const ptrdiff_t P = (O + MR - 1) / MR, words = glide_wi16_packed_words(O, C, MR);
    const size_t mark = glide_scratch_mark();
    int16_t *u = glide_scratch_alloc(sizeof(int16_t) * (size_t)MR * 16 * (C > 0 ? C : 1));
    if (!u) return -1;
#if defined(__x86_64__)
    // 8-row panels: the dword transposes of the GEMM's own weight packing (the same words as the loop below).
    const int transpose8 = MR == 8 && glide_cpu_has_avx2_fma();
    const int vbmi = glide_winograd_weights_i16_use_vbmi && glide_cpu_has_avx512_vbmi();
#else
    const int vbmi = 0;
    const int transpose8 = 0;
#endif
    for (int p = p0; p < p1; p++) {
        const int m = p * MR, mr = O - m < MR ? O - m : MR;
        for (int r = 0; r < MR; r++) {
            int16_t *ur = u + (size_t)r * 16 * C;
            if (r < mr) {
                if (vbmi) glide_winograd_weights_i16_vbmi(q + (ptrdiff_t)(m + r) * ldq, C, ur, C);
                else glide_winograd_weights_i16(q + (ptrdiff_t)(m + r) * ldq, C, ur, C);
            }
            else memset(ur, 0, sizeof(int16_t) * 16 * (size_t)C);
        }
        for (int xi = 0; xi < 16; xi++)
            for (int k0 = 0; k0 < C; k0 += WI_KC) {
                const int kc = C - k0 < WI_KC ? C - k0 : WI_KC, kp = (kc + 1) / 2, k2 = kc / 2;
                uint32_t *o = dst + xi * words + (ptrdiff_t)(k0 / WI_KC) * (WI_KC / 2) * MR * P + (ptrdiff_t)p * kp * MR;
                if (transpose8) glide_dword_pack8_avx512((const char *)(u + (size_t)xi * C + k0), (ptrdiff_t)16 * C * 2, k2, o);
                else
                for (int pp = 0; pp < k2; pp++)
                    for (int r = 0; r < MR; r++) {
                        const int16_t *ur = u + ((size_t)r * 16 + xi) * C + k0 + 2 * pp;
                        o[pp * MR + r] = (uint32_t)(uint16_t)ur[0] | (uint32_t)(uint16_t)ur[1] << 16;
                    }
                if (k2 < kp)
                    for (int r = 0; r < MR; r++)
                        o[k2 * MR + r] = (uint32_t)(uint16_t)u[((size_t)r * 16 + xi) * C + k0 + kc - 1];
            }
    }
    glide_scratch_release(mark);
    return 0;
}

typedef uint32_t wi_v8u __attribute__((vector_size(32)));

// B panel: columns n .. n+nr-1 of x (k rows k0 .. k0+kc-1, row stride x_rs, columns contiguous), quantized
// per column: dst[p * NB + j] = (q[2p][j], q[2p+1][j]) as int16 pairs, scales[j] = max |x| / qmax; columns
// nr .. NB-1 are zero. Reads x directly (two passes over the block's rows: max, then quantize).
static inline AI void wi_pack_b(const glide_wi16_gemm_desc *d, ptrdiff_t k0, int kc, ptrdiff_t n, int nr, const int NB,
                                int qmax, uint32_t *restrict dst, float *restrict scales) {
    float mx[64];
    const float *x = d->x + k0 * d->x_rs + n;
    const ptrdiff_t rs = d->x_rs;
    for (int j = 0; j < NB; j++) mx[j] = 0.f;
    if (nr == NB)   // max |x| on the bit patterns, 8 columns a vector (NaN counts as 0: the float loop's result)
        for (int j0 = 0; j0 < NB; j0 += 8) {
            wi_v8u m = {0, 0, 0, 0, 0, 0, 0, 0};
            for (int k = 0; k < kc; k++) {
                wi_v8u b;
                memcpy(&b, x + k * rs + j0, sizeof b);
                b &= 0x7fffffffu;
                b &= (wi_v8u)(b <= 0x7f800000u);
                wi_v8u gt = (wi_v8u)(b > m);
                m = (b & gt) | (m & ~gt);
            }
            memcpy(mx + j0, &m, sizeof m);
        }
    else
        for (int k = 0; k < kc; k++) {
            const float *s = x + k * rs;
            for (int j = 0; j < nr; j++) { float a = fabsf(s[j]); mx[j] = a > mx[j] ? a : mx[j]; }
        }
    wi_quantize_pairs(x, rs, mx, kc, nr, NB, qmax, dst, scales);
}

// A panel: dst[p * MR + r] = (W[m+r][k0+2p], W[m+r][k0+2p+1]); zero beyond kc and for rows >= mr.
static inline AI void wi_pack_a(const glide_wi16_gemm_desc *d, ptrdiff_t m, int mr, const int MR, ptrdiff_t k0, int kc,
                                uint32_t *restrict dst, float *restrict ws, glide_dword_pack8_fn dwpack) {
    static const int16_t zeros[WI_KC + 2];
    const int kp = (kc + 1) / 2, k2 = kc / 2;
    const int16_t *rows[8];
    for (int r = 0; r < MR; r++) {
        rows[r] = r < mr ? d->w + (m + r) * d->ldw + k0 : zeros;
        ws[r] = r < mr ? d->w_scales[m + r] : 0.f;
    }
    if (dwpack && MR == 8 && mr == MR) dwpack((const char *)rows[0], d->ldw * 2, k2, dst);
    else
        for (int p = 0; p < k2; p++)
            for (int r = 0; r < MR; r++) { uint32_t v; memcpy(&v, rows[r] + 2 * p, 4); dst[p * MR + r] = v; }
    if (k2 < kp)
        for (int r = 0; r < MR; r++) dst[k2 * MR + r] = wi_pair(rows[r][kc - 1], 0);
}

static inline AI void wi_update(float *y, int32_t acc, float ws, float xs, int first) {
    float p = ws * xs;
    float t = (float)acc * p;
    *y = first ? t : *y + t;
}

typedef struct wi_tile {
    int kp;
    const uint32_t *a, *b;       // [kp][MR], [kp][NB]
    const float *ws, *xs;
    float *y; ptrdiff_t y_rs;
    int mr, nr, first;
    const char *next_a;          // wi_kernel_zmm_prefetch: the next tile's weights, prefetched a line per two steps
} wi_tile;
typedef void (*wi_kernel_fn)(const wi_tile *t);

static inline AI void wi_kernel_emulated(const wi_tile *t, const int MR, const int NB) {
    int32_t acc[8 * 64];
    for (int i = 0; i < MR * NB; i++) acc[i] = 0;
    for (int p = 0; p < t->kp; p++)
        for (int r = 0; r < MR; r++) {
            uint32_t a = t->a[p * MR + r];
            int32_t a0 = (int16_t)(a & 0xffff), a1 = (int16_t)(a >> 16);
            for (int j = 0; j < NB; j++) {
                uint32_t b = t->b[p * NB + j];
                acc[r * NB + j] += a0 * (int16_t)(b & 0xffff) + a1 * (int16_t)(b >> 16);
            }
        }
    for (int r = 0; r < t->mr; r++)
        for (int j = 0; j < t->nr; j++) wi_update(t->y + r * t->y_rs + j, acc[r * NB + j], t->ws[r], t->xs[j], t->first);
}
static void wi_kernel_emulated_ymm(const wi_tile *t) { wi_kernel_emulated(t, GLIDE_WI16_YMM_MR, GLIDE_WI16_YMM_NB); }
static void wi_kernel_emulated_zmm(const wi_tile *t) { wi_kernel_emulated(t, GLIDE_WI16_ZMM_MR, GLIDE_WI16_ZMM_NB); }

#if defined(__x86_64__)
#include <immintrin.h>
#define TAVX2 __attribute__((target("avx2,fma")))
#define T512 __attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni")))

// 6 rows x 16 columns, vpmaddwd + vpaddd into 12 ymm accumulators.
TAVX2 static void wi_kernel_avx2(const wi_tile *t) {
    enum { MR = GLIDE_WI16_YMM_MR, NB = GLIDE_WI16_YMM_NB };
    __m256i c[MR][2];
    for (int r = 0; r < MR; r++) c[r][0] = c[r][1] = _mm256_setzero_si256();
    const uint32_t *a = t->a, *b = t->b;
    for (int p = 0; p < t->kp; p++) {
        __m256i b0 = _mm256_load_si256((const __m256i *)b), b1 = _mm256_load_si256((const __m256i *)(b + 8));
        for (int r = 0; r < MR; r++) {
            __m256i av = _mm256_set1_epi32((int)a[r]);
            c[r][0] = _mm256_add_epi32(c[r][0], _mm256_madd_epi16(av, b0));
            c[r][1] = _mm256_add_epi32(c[r][1], _mm256_madd_epi16(av, b1));
        }
        a += MR; b += NB;
    }
    if (t->mr == MR && t->nr == NB) {
        __m256 x0 = _mm256_loadu_ps(t->xs), x1 = _mm256_loadu_ps(t->xs + 8);
        for (int r = 0; r < MR; r++) {
            __m256 w = _mm256_set1_ps(t->ws[r]);
            __m256 v0 = _mm256_mul_ps(_mm256_cvtepi32_ps(c[r][0]), _mm256_mul_ps(w, x0));
            __m256 v1 = _mm256_mul_ps(_mm256_cvtepi32_ps(c[r][1]), _mm256_mul_ps(w, x1));
            float *y = t->y + r * t->y_rs;
            if (!t->first) { v0 = _mm256_add_ps(_mm256_loadu_ps(y), v0); v1 = _mm256_add_ps(_mm256_loadu_ps(y + 8), v1); }
            _mm256_storeu_ps(y, v0); _mm256_storeu_ps(y + 8, v1);
        }
        return;
    }
    int32_t acc[MR * NB];
    for (int r = 0; r < MR; r++) { _mm256_storeu_si256((__m256i *)(acc + r * NB), c[r][0]); _mm256_storeu_si256((__m256i *)(acc + r * NB + 8), c[r][1]); }
    for (int r = 0; r < t->mr; r++)
        for (int j = 0; j < t->nr; j++) wi_update(t->y + r * t->y_rs + j, acc[r * NB + j], t->ws[r], t->xs[j], t->first);
}

// The AVX2 tile with AVX-VNNI's vpdpwssd (multiply-add of int16 pairs into the accumulator in one instruction).
#define TAVXVNNI __attribute__((target("avx2,fma,avxvnni")))
TAVXVNNI static void wi_kernel_avxvnni(const wi_tile *t) {
    enum { MR = GLIDE_WI16_YMM_MR, NB = GLIDE_WI16_YMM_NB };
    __m256i c[MR][2];
    for (int r = 0; r < MR; r++) c[r][0] = c[r][1] = _mm256_setzero_si256();
    const uint32_t *a = t->a, *b = t->b;
    for (int p = 0; p < t->kp; p++) {
        __m256i b0 = _mm256_load_si256((const __m256i *)b), b1 = _mm256_load_si256((const __m256i *)(b + 8));
        for (int r = 0; r < MR; r++) {
            __m256i av = _mm256_set1_epi32((int)a[r]);
            c[r][0] = _mm256_dpwssd_avx_epi32(c[r][0], av, b0);
            c[r][1] = _mm256_dpwssd_avx_epi32(c[r][1], av, b1);
        }
        a += MR; b += NB;
    }
    if (t->mr == MR && t->nr == NB) {
        __m256 x0 = _mm256_loadu_ps(t->xs), x1 = _mm256_loadu_ps(t->xs + 8);
        for (int r = 0; r < MR; r++) {
            __m256 w = _mm256_set1_ps(t->ws[r]);
            __m256 v0 = _mm256_mul_ps(_mm256_cvtepi32_ps(c[r][0]), _mm256_mul_ps(w, x0));
            __m256 v1 = _mm256_mul_ps(_mm256_cvtepi32_ps(c[r][1]), _mm256_mul_ps(w, x1));
            float *y = t->y + r * t->y_rs;
            if (!t->first) { v0 = _mm256_add_ps(_mm256_loadu_ps(y), v0); v1 = _mm256_add_ps(_mm256_loadu_ps(y + 8), v1); }
            _mm256_storeu_ps(y, v0); _mm256_storeu_ps(y + 8, v1);
        }
        return;
    }
    int32_t acc[MR * NB];
    for (int r = 0; r < MR; r++) { _mm256_storeu_si256((__m256i *)(acc + r * NB), c[r][0]); _mm256_storeu_si256((__m256i *)(acc + r * NB + 8), c[r][1]); }
    for (int r = 0; r < t->mr; r++)
        for (int j = 0; j < t->nr; j++) wi_update(t->y + r * t->y_rs + j, acc[r * NB + j], t->ws[r], t->xs[j], t->first);
}

// 8 rows x 32 columns, vpdpwssd into 16 zmm accumulators. `prefetch`: also t->next_a, a 64-byte line per 2 steps
// (the 32-byte steps of the next tile's weights: spread over the tile instead of one burst of misses).
static inline T512 AI void wi_kernel_zmm_body(const wi_tile *t, const int prefetch) {
    enum { MR = GLIDE_WI16_ZMM_MR, NB = GLIDE_WI16_ZMM_NB };
    __m512i c[MR][2];
    for (int r = 0; r < MR; r++) c[r][0] = c[r][1] = _mm512_setzero_si512();
    const uint32_t *a = t->a, *b = t->b;
    const char *na = t->next_a;
    for (int p = 0; p < t->kp; p++) {
        if (prefetch && !(p & 1)) _mm_prefetch(na + 32 * p, _MM_HINT_T0);
        __m512i b0 = _mm512_load_si512((const void *)b), b1 = _mm512_load_si512((const void *)(b + 16));
        for (int r = 0; r < MR; r++) {
            __m512i av = _mm512_set1_epi32((int)a[r]);
            c[r][0] = _mm512_dpwssd_epi32(c[r][0], av, b0);
            c[r][1] = _mm512_dpwssd_epi32(c[r][1], av, b1);
        }
        a += MR; b += NB;
    }
    if (t->mr == MR && t->nr == NB) {
        __m512 x0 = _mm512_loadu_ps(t->xs), x1 = _mm512_loadu_ps(t->xs + 16);
        for (int r = 0; r < MR; r++) {
            __m512 w = _mm512_set1_ps(t->ws[r]);
            __m512 v0 = _mm512_mul_ps(_mm512_cvtepi32_ps(c[r][0]), _mm512_mul_ps(w, x0));
            __m512 v1 = _mm512_mul_ps(_mm512_cvtepi32_ps(c[r][1]), _mm512_mul_ps(w, x1));
            float *y = t->y + r * t->y_rs;
            if (!t->first) { v0 = _mm512_add_ps(_mm512_loadu_ps(y), v0); v1 = _mm512_add_ps(_mm512_loadu_ps(y + 16), v1); }
            _mm512_storeu_ps(y, v0); _mm512_storeu_ps(y + 16, v1);
        }
        return;
    }
    int32_t acc[MR * NB];
    for (int r = 0; r < MR; r++) { _mm512_storeu_si512(acc + r * NB, c[r][0]); _mm512_storeu_si512(acc + r * NB + 16, c[r][1]); }
    for (int r = 0; r < t->mr; r++)
        for (int j = 0; j < t->nr; j++) wi_update(t->y + r * t->y_rs + j, acc[r * NB + j], t->ws[r], t->xs[j], t->first);
}
T512 static void wi_kernel_zmm(const wi_tile *t) { wi_kernel_zmm_body(t, 0); }
T512 static void wi_kernel_zmm_prefetch(const wi_tile *t) { wi_kernel_zmm_body(t, 1); }
#endif

static inline AI int wi_gemm(const glide_wi16_gemm_desc *d, ptrdiff_t m0, ptrdiff_t m1, ptrdiff_t n0, ptrdiff_t n1,
                             const int MR, const int NB, wi_kernel_fn kernel, glide_dword_pack8_fn dwpack) {
    if (m1 <= m0 || n1 <= n0) return 0;
    const ptrdiff_t K = d->K;
    if (K == 0) {
        for (ptrdiff_t m = m0; m < m1; m++) for (ptrdiff_t n = n0; n < n1; n++) d->y[m * d->y_rs + n] = 0.f;
        return 0;
    }
    const int qmax = d->act_qmax < 1 ? 1 : d->act_qmax > GLIDE_WI16_QMAX ? GLIDE_WI16_QMAX : d->act_qmax;
    const ptrdiff_t ncap = n1 - n0 < WI_NC ? n1 - n0 : WI_NC;
    const int npanels = (int)((ncap + NB - 1) / NB);
    const int MC = WI_MC_PANELS * MR;
    const ptrdiff_t mcap = m1 - m0 < MC ? m1 - m0 : MC;
    const int mpanels = (int)((mcap + MR - 1) / MR);
    const int kpmax = WI_KC / 2;
    // Activations already in panels (glide_winograd_input_i16_packed): used when the block starts on a panel.
    const int xpre = d->x_packed && d->x_scales && n0 % NB == 0;
    if (!xpre && !d->x) return -1;
    // Weights already in panels (glide_winograd_weights_i16_packed): used when the block starts on a panel.
    const int prepacked = d->w_packed && m0 % MR == 0;
    if (!prepacked && !d->w) return -1;   // packed weights only, and a block that does not start on a panel
    const ptrdiff_t gpanels = (d->M + MR - 1) / MR;
    // Scratch from the calling thread's stack (glide_scratch.h).
    const size_t mark = glide_scratch_mark();
    uint32_t *bp = glide_scratch_alloc(sizeof(uint32_t) * (xpre ? 1 : kpmax * NB * npanels));
    float *xs = glide_scratch_alloc(sizeof(float) * (xpre ? 1 : NB * npanels));
    uint32_t *ap = glide_scratch_alloc(sizeof(uint32_t) * (prepacked ? 1 : kpmax * MR * mpanels));
    float *ws = glide_scratch_alloc(sizeof(float) * MR * mpanels);
    if (!bp || !xs || !ap || !ws) { glide_scratch_release(mark); return -1; }
    for (ptrdiff_t jc = n0; jc < n1; jc += WI_NC) {
        ptrdiff_t nc = n1 - jc < WI_NC ? n1 - jc : WI_NC;
        int np = (int)((nc + NB - 1) / NB);
        for (ptrdiff_t pc = 0; pc < K; pc += WI_KC) {
            int kc = (int)(K - pc < WI_KC ? K - pc : WI_KC), kp = (kc + 1) / 2, first = pc == 0;
            const uint32_t *bpc = bp;
            const float *xsc = xs;
            if (xpre) {
                bpc = d->x_packed + (pc / WI_KC) * (WI_KC / 2) * NB * d->x_panels + (jc / NB) * kp * NB;
                xsc = d->x_scales + (pc / WI_KC) * d->x_panels * NB + jc;
            } else {
                unsigned long long pt0 = glide_profile_enabled ? glide_profile_now_ns() : 0;
                for (int jp = 0; jp < np; jp++) {
                    ptrdiff_t n = jc + (ptrdiff_t)jp * NB;
                    int nr = (int)(jc + nc - n < NB ? jc + nc - n : NB);
                    wi_pack_b(d, pc, kc, n, nr, NB, qmax, bp + (ptrdiff_t)jp * kp * NB, xs + jp * NB);
                }
                if (glide_profile_enabled) glide_profile_add_ns(GLIDE_PROFILE_PACK_ACTIVATIONS, glide_profile_now_ns() - pt0);
            }
            for (ptrdiff_t ic = m0; ic < m1; ic += MC) {
                ptrdiff_t mc = m1 - ic < MC ? m1 - ic : MC;
                int mp = (int)((mc + MR - 1) / MR);
                unsigned long long pt1 = glide_profile_enabled ? glide_profile_now_ns() : 0;
                const uint32_t *apc = prepacked ? d->w_packed + (pc / WI_KC) * (WI_KC / 2) * MR * gpanels + (ic / MR) * kp * MR : ap;
                for (int ip = 0; ip < mp; ip++) {
                    ptrdiff_t m = ic + (ptrdiff_t)ip * MR;
                    int mr = (int)(ic + mc - m < MR ? ic + mc - m : MR);
                    if (prepacked) { for (int r = 0; r < MR; r++) ws[ip * MR + r] = r < mr ? d->w_scales[m + r] : 0.f; }
                    else wi_pack_a(d, m, mr, MR, pc, kc, ap + (ptrdiff_t)ip * kp * MR, ws + ip * MR, dwpack);
                }
                if (glide_profile_enabled) glide_profile_add_ns(GLIDE_PROFILE_PACK_WEIGHTS, glide_profile_now_ns() - pt1);
                for (int jp = 0; jp < np; jp++) {
                    ptrdiff_t n = jc + (ptrdiff_t)jp * NB;
                    int nr = (int)(jc + nc - n < NB ? jc + nc - n : NB);
                    for (int ip = 0; ip < mp; ip++) {
                        ptrdiff_t m = ic + (ptrdiff_t)ip * MR;
                        int mr = (int)(ic + mc - m < MR ? ic + mc - m : MR);
                        wi_tile t;
                        t.kp = kp; t.a = apc + (ptrdiff_t)ip * kp * MR; t.b = bpc + (ptrdiff_t)jp * kp * NB;
                        t.ws = ws + ip * MR; t.xs = xsc + jp * NB;
                        t.y = d->y + m * d->y_rs + n; t.y_rs = d->y_rs;
                        t.mr = mr; t.nr = nr; t.first = first;
                        t.next_a = (const char *)(apc + (ptrdiff_t)(ip + 1 < mp ? ip + 1 : 0) * kp * MR);
                        kernel(&t);
                    }
                }
            }
        }
    }
    glide_scratch_release(mark);
    return 0;
}

int glide_gemm_wi16_emulated(const glide_wi16_gemm_desc *d, ptrdiff_t m0, ptrdiff_t m1, ptrdiff_t n0, ptrdiff_t n1,
                             int layout) {
    if (layout == GLIDE_I8_LAYOUT_ZMM)
        return wi_gemm(d, m0, m1, n0, n1, GLIDE_WI16_ZMM_MR, GLIDE_WI16_ZMM_NB, wi_kernel_emulated_zmm, NULL);
    return wi_gemm(d, m0, m1, n0, n1, GLIDE_WI16_YMM_MR, GLIDE_WI16_YMM_NB, wi_kernel_emulated_ymm, NULL);
}

#if defined(__x86_64__)
TAVX2 int glide_gemm_wi16_avx2(const glide_wi16_gemm_desc *d, ptrdiff_t m0, ptrdiff_t m1, ptrdiff_t n0, ptrdiff_t n1) {
    return wi_gemm(d, m0, m1, n0, n1, GLIDE_WI16_YMM_MR, GLIDE_WI16_YMM_NB, wi_kernel_avx2, NULL);
}
TAVXVNNI int glide_gemm_wi16_avxvnni(const glide_wi16_gemm_desc *d, ptrdiff_t m0, ptrdiff_t m1, ptrdiff_t n0, ptrdiff_t n1) {
    return wi_gemm(d, m0, m1, n0, n1, GLIDE_WI16_YMM_MR, GLIDE_WI16_YMM_NB, wi_kernel_avxvnni, NULL);
}
T512 int glide_gemm_wi16_avx512vnni(const glide_wi16_gemm_desc *d, ptrdiff_t m0, ptrdiff_t m1, ptrdiff_t n0, ptrdiff_t n1) {
    if (wf_kernel_prefetch)
        return wi_gemm(d, m0, m1, n0, n1, GLIDE_WI16_ZMM_MR, GLIDE_WI16_ZMM_NB, wi_kernel_zmm_prefetch, glide_dword_pack8_avx512);
    return wi_gemm(d, m0, m1, n0, n1, GLIDE_WI16_ZMM_MR, GLIDE_WI16_ZMM_NB, wi_kernel_zmm, glide_dword_pack8_avx512);
}
#else
int glide_gemm_wi16_avx2(const glide_wi16_gemm_desc *d, ptrdiff_t m0, ptrdiff_t m1, ptrdiff_t n0, ptrdiff_t n1) {
    (void)d; (void)m0; (void)m1; (void)n0; (void)n1; return -1;
}
int glide_gemm_wi16_avx512vnni(const glide_wi16_gemm_desc *d, ptrdiff_t m0, ptrdiff_t m1, ptrdiff_t n0, ptrdiff_t n1) {
    (void)d; (void)m0; (void)m1; (void)n0; (void)n1; return -1;
}
int glide_gemm_wi16_avxvnni(const glide_wi16_gemm_desc *d, ptrdiff_t m0, ptrdiff_t m1, ptrdiff_t n0, ptrdiff_t n1) {
    (void)d; (void)m0; (void)m1; (void)n0; (void)n1; return -1;
}
#endif

// ---------------------------------------------------------------- fused input transform + quantization + packing
// tb[xi * xs + c * NB + j]: the transformed input of channel k0 + c, position xi, for the panel's tile j (one
// position's K block is contiguous, 32 KB for NB = 32: it stays in L1 while quantized); mx[xi * 64 + j]: the
// running max |value| of column j as a bit pattern (NaN counts as 0), as wi_pack_b takes it. Per tile the float
// operations of glide_winograd_input_avx2 in its order (zero padding as +0), so the values are its bits.
static void wf_transform_portable(const float *x, int H, int W, int tw, int ty0, ptrdiff_t t0, int nt, int k0, int kc,
                                  int NB, float *tb, ptrdiff_t xs, uint32_t *mx) {
    for (int c = 0; c < kc; c++) {
        const float *plane = x + (size_t)(k0 + c) * H * W;
        float *tc = tb + (size_t)c * NB;
        for (int j = 0; j < nt; j++) {
            const ptrdiff_t t = t0 + j;
            const int ty = ty0 + (int)(t / tw), tx = (int)(t % tw);
            float a[4][4], v[16];
            for (int r = 0; r < 4; r++) {
                const int iy = 2 * ty - 1 + r;
                float d[4];
                for (int k = 0; k < 4; k++) {
                    const int ix = 2 * tx - 1 + k;
                    d[k] = iy < 0 || iy >= H || ix < 0 || ix >= W ? 0.f : plane[(size_t)iy * W + ix];
                }
                a[r][0] = d[0] - d[2]; a[r][1] = d[1] + d[2]; a[r][2] = d[2] - d[1]; a[r][3] = d[1] - d[3];
            }
            for (int jj = 0; jj < 4; jj++) {
                v[0 * 4 + jj] = a[0][jj] - a[2][jj];
                v[1 * 4 + jj] = a[1][jj] + a[2][jj];
                v[2 * 4 + jj] = a[2][jj] - a[1][jj];
                v[3 * 4 + jj] = a[1][jj] - a[3][jj];
            }
            for (int xi = 0; xi < 16; xi++) {
                tc[xi * xs + j] = v[xi];
                uint32_t b = wi_abs_bits(v[xi]);
                if (b > mx[xi * 64 + j]) mx[xi * 64 + j] = b;
            }
        }
        for (int xi = 0; xi < 16; xi++) for (int j = nt; j < NB; j++) tc[xi * xs + j] = 0.f;
    }
}

#if defined(__x86_64__)
enum { WF_PREFETCH = 4 };

// The same values on zmm: runs of up to 16 tiles of one tile row, masked loads for the padding.
__attribute__((target("avx512f,avx512bw,avx512vl")))
static void wf_transform_avx512(const float *x, int H, int W, int tw, int ty0, ptrdiff_t t0, int nt, int k0, int kc,
                                int NB, float *tb, ptrdiff_t xs, uint32_t *mx) {
    const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    const __m512i odd = _mm512_setr_epi32(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
    const __m512 zero = _mm512_setzero_ps();
    for (int c = 0; c < kc; c++) {
        const float *plane = x + (size_t)(k0 + c) * H * W;
        float *tc = tb + (size_t)c * NB;
        for (int j0 = 0; j0 < NB; ) {
            if (j0 >= nt) {   // columns past the chunk: zero
                const int n = NB - j0 < 16 ? NB - j0 : 16;
                const __mmask16 sm = (__mmask16)(((uint32_t)1 << n) - 1);
                for (int xi = 0; xi < 16; xi++) _mm512_mask_storeu_ps(tc + xi * xs + j0, sm, zero);
                j0 += n;
                continue;
            }
            const ptrdiff_t t = t0 + j0;
            const int ty = ty0 + (int)(t / tw), tx = (int)(t % tw);
            int n = tw - tx;                       // tiles left in this tile row
            if (n > nt - j0) n = nt - j0;
            if (n > 16) n = 16;
            const ptrdiff_t s = 2 * (ptrdiff_t)tx - 1;
            const __mmask16 m0 = wi_range_mask16(s, W), m1 = wi_range_mask16(s + 16, W);
            const __mmask16 m2 = wi_range_mask16(s + 2, W), m3 = wi_range_mask16(s + 18, W);
            __m512 a[4][4];
            for (int r = 0; r < 4; r++) {
                const int iy = 2 * ty - 1 + r;
                __m512 lo = zero, hi = zero, lo2 = zero, hi2 = zero;
                if (iy >= 0 && iy < H) {
                    const float *pr = plane + (size_t)iy * W + s;
                    if (c + WF_PREFETCH < kc) {   // the same run of a channel ahead: 768 row streams defeat the hardware prefetcher
                        const char *f = (const char *)(pr + (size_t)WF_PREFETCH * H * W);
                        _mm_prefetch(f, _MM_HINT_T0); _mm_prefetch(f + 64, _MM_HINT_T0);   // every line of the 136 bytes
                        _mm_prefetch(f + 128, _MM_HINT_T0); _mm_prefetch(f + 135, _MM_HINT_T0);
                    }
                    lo = _mm512_maskz_loadu_ps(m0, pr); hi = _mm512_maskz_loadu_ps(m1, pr + 16);
                    lo2 = _mm512_maskz_loadu_ps(m2, pr + 2); hi2 = _mm512_maskz_loadu_ps(m3, pr + 18);
                }
                __m512 d0 = _mm512_permutex2var_ps(lo, even, hi), d1 = _mm512_permutex2var_ps(lo, odd, hi);
                __m512 d2 = _mm512_permutex2var_ps(lo2, even, hi2), d3 = _mm512_permutex2var_ps(lo2, odd, hi2);
                a[r][0] = _mm512_sub_ps(d0, d2); a[r][1] = _mm512_add_ps(d1, d2);
                a[r][2] = _mm512_sub_ps(d2, d1); a[r][3] = _mm512_sub_ps(d1, d3);
            }
            const __mmask16 sm = (__mmask16)(((uint32_t)1 << n) - 1);
            float *tj = tc + j0;
            uint32_t *mj = mx + j0;
            for (int jj = 0; jj < 4; jj++) {
                wi_store_max16(tj + (0 * 4 + jj) * xs, mj + (0 * 4 + jj) * 64, sm, _mm512_sub_ps(a[0][jj], a[2][jj]));
                wi_store_max16(tj + (1 * 4 + jj) * xs, mj + (1 * 4 + jj) * 64, sm, _mm512_add_ps(a[1][jj], a[2][jj]));
                wi_store_max16(tj + (2 * 4 + jj) * xs, mj + (2 * 4 + jj) * 64, sm, _mm512_sub_ps(a[2][jj], a[1][jj]));
                wi_store_max16(tj + (3 * 4 + jj) * xs, mj + (3 * 4 + jj) * 64, sm, _mm512_sub_ps(a[1][jj], a[3][jj]));
            }
            j0 += n;
        }
    }
}
#endif

static inline AI void wf_pack_panels(const float *x, int H, int W, int C, int ty0, ptrdiff_t tiles, int NB, int qmax,
                                     ptrdiff_t p0, ptrdiff_t p1, uint32_t *dst, float *scales, float *tb, ptrdiff_t xs,
                                     uint32_t *mx, int avx512) {
    const int tw = (W + 1) / 2;
    const ptrdiff_t P = (tiles + NB - 1) / NB, words = glide_wi16_packed_words((int)tiles, C, NB);
    const int nkb = (C + WI_KC - 1) / WI_KC;
    for (ptrdiff_t p = p0; p < p1; p++) {
        const ptrdiff_t t0 = p * NB;
        const int nt = (int)(tiles - t0 < NB ? tiles - t0 : NB);
        for (int k0 = 0; k0 < C; k0 += WI_KC) {
            const int kc = C - k0 < WI_KC ? C - k0 : WI_KC, kp = (kc + 1) / 2, kb = k0 / WI_KC;
            memset(mx, 0, sizeof(uint32_t) * 16 * 64);
#if defined(__x86_64__)
            if (avx512) wf_transform_avx512(x, H, W, tw, ty0, t0, nt, k0, kc, NB, tb, xs, mx);
            else
#endif
            wf_transform_portable(x, H, W, tw, ty0, t0, nt, k0, kc, NB, tb, xs, mx);
            for (int xi = 0; xi < 16; xi++)
                wi_quantize_block(tb + xi * xs, mx + xi * 64, kc, NB, qmax,
                            dst + xi * words + (ptrdiff_t)kb * (WI_KC / 2) * NB * P + p * kp * NB,
                            scales + ((ptrdiff_t)xi * nkb + kb) * P * NB + p * NB);
        }
    }
    (void)avx512;
}

#if defined(__x86_64__)
__attribute__((target("avx512f,avx512bw,avx512vl")))
static void wf_pack_panels_avx512(const float *x, int H, int W, int C, int ty0, ptrdiff_t tiles, int NB, int qmax,
                                  ptrdiff_t p0, ptrdiff_t p1, uint32_t *dst, float *scales, float *tb, ptrdiff_t xs,
                                  uint32_t *mx) {
    wf_pack_panels(x, H, W, C, ty0, tiles, NB, qmax, p0, p1, dst, scales, tb, xs, mx, 1);
}
#endif

int glide_winograd_input_i16_packed(const float *x, int H, int W, int C, int ty0, ptrdiff_t tiles, int NB, int qmax,
                                    ptrdiff_t p0, ptrdiff_t p1, uint32_t *dst, float *scales, int avx512) {
    if (NB > 64 || NB < 8 || NB % 8) return -1;
    qmax = qmax < 1 ? 1 : qmax > GLIDE_WI16_QMAX ? GLIDE_WI16_QMAX : qmax;
    const int kcap = C < WI_KC ? (C > 0 ? C : 1) : WI_KC;
    const ptrdiff_t xs = (ptrdiff_t)kcap * NB + 16;   // + 64 bytes: the 16 positions' blocks on different L1 sets
    const size_t mark = glide_scratch_mark();   // scratch from the calling thread's stack (glide_scratch.h)
    float *tb = glide_scratch_alloc(sizeof(float) * (size_t)(16 * xs));
    uint32_t *mx = glide_scratch_alloc(sizeof(uint32_t) * 16 * 64);
    if (!tb || !mx) { glide_scratch_release(mark); return -1; }
#if defined(__x86_64__)
    if (avx512) wf_pack_panels_avx512(x, H, W, C, ty0, tiles, NB, qmax, p0, p1, dst, scales, tb, xs, mx);
    else
#endif
    wf_pack_panels(x, H, W, C, ty0, tiles, NB, qmax, p0, p1, dst, scales, tb, xs, mx, 0);
    glide_scratch_release(mark);
    return 0;
}

// ---------------------------------------------------------------- fused GEMM + output transform
// One GEMM tile of a fused pass: weight tile a (position xi, K block kb of kp pairs, mr channels) times tile panel
// jp's activations of that position and block, into y (row stride NB; the first K block stores, later ones add).
static inline AI void wi_fused_tile(const glide_wi16_fused_desc *d, const uint32_t *a, const float *ws, int xi, int kb,
                                    int nkb, int kp, ptrdiff_t jp, ptrdiff_t P, const int NB, int mr, float *y,
                                    wi_kernel_fn kernel, const uint32_t *next_a) {
    const ptrdiff_t n = jp * NB;
    wi_tile t;
    t.kp = kp; t.a = a; t.next_a = (const char *)next_a;
    t.b = d->x_packed + xi * d->x_words + (ptrdiff_t)kb * (WI_KC / 2) * NB * P + jp * kp * NB;
    t.ws = ws; t.xs = d->x_scales + ((ptrdiff_t)xi * nkb + kb) * P * NB + jp * NB;
    t.y = y; t.y_rs = NB;
    t.mr = mr; t.nr = (int)(d->tiles - n < NB ? d->tiles - n : NB); t.first = kb == 0;
    kernel(&t);
}

// buf[(xi * MR + r) * NB + j]: position xi's product for channel m + r and tile j (the GEMM's y for this tile).
static inline AI int wo_run(const glide_wi16_fused_desc *d, ptrdiff_t p0, ptrdiff_t p1, const int MR, const int NB,
                            wi_kernel_fn kernel) {
    const ptrdiff_t M = d->M, K = d->K, tiles = d->tiles;
    if (K <= 0 || M <= 0) return -1;
    const ptrdiff_t gp = (M + MR - 1) / MR, P = (tiles + NB - 1) / NB;
    const int nkb = (int)((K + WI_KC - 1) / WI_KC);
    // tile panels per pass: each weight tile (one position, K block, channel panel) used JB times from L1, while
    // the pass's activation panels (16 * nkb * JB of them) stay in L2
    const int JB = nkb == 1 ? 2 : 1;
    const int OH = d->OH, OW = d->OW, tw = (OW + 1) / 2;
    const size_t mark = glide_scratch_mark();   // scratch from the calling thread's stack (glide_scratch.h)
    float *buf = glide_scratch_alloc(sizeof(float) * 2 * 16 * MR * NB);
    if (!buf) return -1;
    float ws[8], out[4][64];
    for (ptrdiff_t jq = p0; jq < p1; jq += JB) {
        const int jn = (int)(p1 - jq < JB ? p1 - jq : JB);
        for (ptrdiff_t ip = 0; ip < gp; ip++) {
            const ptrdiff_t m = ip * MR;
            const int mr = (int)(M - m < MR ? M - m : MR);
            for (int r = 0; r < MR; r++) ws[r] = r < mr ? d->w_scales[m + r] : 0.f;
            for (int kb = 0; kb < nkb; kb++) {
                const int kc = (int)(K - kb * WI_KC < WI_KC ? K - kb * WI_KC : WI_KC), kp = (kc + 1) / 2;
                for (int xi = 0; xi < 16; xi++) {
                    const uint32_t *a = d->w_packed + xi * d->w_words + (ptrdiff_t)kb * (WI_KC / 2) * MR * gp + ip * kp * MR;
                    for (int jj = 0; jj < jn; jj++)
                        wi_fused_tile(d, a, ws, xi, kb, nkb, kp, jq + jj, P, NB, mr, buf + (jj * 16 + xi) * MR * NB, kernel, a);
                }
            }
            // glide_winograd_output_avx2's operations per tile, from buf
            for (int jj = 0; jj < jn; jj++) {
                const ptrdiff_t n = (jq + jj) * NB;
                const int nr = (int)(tiles - n < NB ? tiles - n : NB);
                for (int r = 0; r < mr; r++) {
                    const float *q = buf + (jj * 16 * MR + r) * NB;
                    const ptrdiff_t xs = (ptrdiff_t)MR * NB;
                    const float bo = d->bias ? d->bias[m + r] : 0.f;
                    for (int j = 0; j < NB; j++) {
                        float b0[4], b1[4];
                        for (int i = 0; i < 4; i++) {
                            const float q0 = q[(i * 4 + 0) * xs + j], q1 = q[(i * 4 + 1) * xs + j];
                            const float q2 = q[(i * 4 + 2) * xs + j], q3 = q[(i * 4 + 3) * xs + j];
                            b0[i] = q0 + q1 + q2;
                            b1[i] = q1 - q2 - q3;
                        }
                        out[0][j] = b0[0] + b0[1] + b0[2] + bo;   // row 2ty, column 2tx
                        out[1][j] = b1[0] + b1[1] + b1[2] + bo;   // row 2ty, column 2tx + 1
                        out[2][j] = b0[1] - b0[2] - b0[3] + bo;   // row 2ty + 1, column 2tx
                        out[3][j] = b1[1] - b1[2] - b1[3] + bo;   // row 2ty + 1, column 2tx + 1
                    }
                    float *plane = d->y + (size_t)(m + r) * OH * OW;
                    for (int j0 = 0; j0 < nr; ) {   // runs of tiles within one tile row
                        const ptrdiff_t t = n + j0;
                        const int ty = d->ty0 + (int)(t / tw), tx0 = (int)(t % tw);
                        int run = tw - tx0;
                        if (run > nr - j0) run = nr - j0;
                        for (int i = 0; i < 2; i++) {
                            const int oy = 2 * ty + i;
                            if (oy >= OH) break;
                            float *dst = plane + (size_t)oy * OW + 2 * tx0;
                            const float *e = out[2 * i] + j0, *o = out[2 * i + 1] + j0;
                            const int full = 2 * (tx0 + run) <= OW ? run : run - 1;   // last tile may have one column
                            if (d->accumulate) {
                                for (int j = 0; j < full; j++) { dst[2 * j] = dst[2 * j] + e[j]; dst[2 * j + 1] = dst[2 * j + 1] + o[j]; }
                                if (full < run) dst[2 * full] = dst[2 * full] + e[full];
                            } else {
                                for (int j = 0; j < full; j++) { dst[2 * j] = e[j]; dst[2 * j + 1] = o[j]; }
                                if (full < run) dst[2 * full] = e[full];
                            }
                        }
                        j0 += run;
                    }
                }
            }
        }
    }
    glide_scratch_release(mark);
    return 0;
}

#if defined(__x86_64__)
TAVX2 static int wo_run_avx2(const glide_wi16_fused_desc *d, ptrdiff_t p0, ptrdiff_t p1) {
    return wo_run(d, p0, p1, GLIDE_WI16_YMM_MR, GLIDE_WI16_YMM_NB, wi_kernel_avx2);
}
TAVXVNNI static int wo_run_avxvnni(const glide_wi16_fused_desc *d, ptrdiff_t p0, ptrdiff_t p1) {
    return wo_run(d, p0, p1, GLIDE_WI16_YMM_MR, GLIDE_WI16_YMM_NB, wi_kernel_avxvnni);
}
T512 static int wo_run_avx512vnni(const glide_wi16_fused_desc *d, ptrdiff_t p0, ptrdiff_t p1) {
    return wo_run(d, p0, p1, GLIDE_WI16_ZMM_MR, GLIDE_WI16_ZMM_NB, wi_kernel_zmm);
}
#endif

int glide_winograd_i16_gemm_output(const glide_wi16_fused_desc *d, ptrdiff_t p0, ptrdiff_t p1, int kernel) {
    switch (kernel) {
    case GLIDE_WI16_KERNEL_EMULATED_YMM: return wo_run(d, p0, p1, GLIDE_WI16_YMM_MR, GLIDE_WI16_YMM_NB, wi_kernel_emulated_ymm);
    case GLIDE_WI16_KERNEL_EMULATED_ZMM: return wo_run(d, p0, p1, GLIDE_WI16_ZMM_MR, GLIDE_WI16_ZMM_NB, wi_kernel_emulated_zmm);
#if defined(__x86_64__)
    case GLIDE_WI16_KERNEL_AVX2: return wo_run_avx2(d, p0, p1);
    case GLIDE_WI16_KERNEL_AVXVNNI: return wo_run_avxvnni(d, p0, p1);
    case GLIDE_WI16_KERNEL_AVX512VNNI: return wo_run_avx512vnni(d, p0, p1);
#endif
    default: return -1;
    }
}

// ---------------------------------------------------------------- fused GEMM + output transform, F(4x2) and F(4x4)
// buf[(jj * XI + xi) * MR * NB + r * NB + j] (XI = 24 or 36 positions): position xi's product for channel m + r and tile j of the pass's
// panel jj. Each weight tile (position, K block, channel panel) is loaded once per pass and used for the pass's
// JB tile panels from L1; the pass's activation panels (XI positions x K x JB * NB tiles) stay in L2 while the
// weights stream through. Per element the K blocks accumulate in order with the GEMM's float operations.
static int wf42_fused_panels;
static int wfo_prefetch = 1;
void glide_wf_gemm_output_set_prefetch(int on) { wfo_prefetch = on != 0; }

// The lines of output the pass's panels [jq, jq + jn) will add to for channels m .. m + mr - 1 (tiles of TH rows by
// 4 columns), at most `cap` of them into `lines`; returns their count. The pass prefetches them a slice per position
// while its products run (the hardware prefetchers do not follow runs of a few hundred bytes spread over many planes;
// all at once, the burst of misses stalls the core).
static inline AI int wfo_output_lines(const glide_wi16_fused_desc *d, ptrdiff_t jq, int jn, const int NB, ptrdiff_t m,
                                      int mr, const int TH, const char **lines, int cap) {
    const int OH = d->OH, OW = d->OW, tw = (OW + 3) / 4, th = (OH + TH - 1) / TH;
    const ptrdiff_t t1 = (jq + jn) * NB < d->tiles ? (jq + jn) * NB : d->tiles;
    int n = 0;
    for (ptrdiff_t t = jq * NB; t < t1; ) {
        const int gy = d->ty0 + (int)(t / tw), tx = (int)(t % tw), ty = gy % th;
        const int run = (int)(t1 - t < tw - tx ? t1 - t : tw - tx);
        const int c0 = 4 * tx, c1 = 4 * (tx + run) < OW ? 4 * (tx + run) : OW;
        for (int r = 0; r < mr; r++) {
            const float *plane = d->y + ((size_t)(gy / th) * d->M + m + r) * OH * OW;
            for (int rr = 0; rr < TH && TH * ty + rr < OH; rr++) {
                const char *row = (const char *)(plane + (size_t)(TH * ty + rr) * OW);
                for (ptrdiff_t b = (ptrdiff_t)c0 * 4 & ~(ptrdiff_t)63; b < (ptrdiff_t)c1 * 4 && n < cap; b += 64) lines[n++] = row + b;
            }
        }
        t += run;
    }
    return n;
}

void glide_wf42_gemm_output_set_panels(int panels) { wf42_fused_panels = panels > 0 ? panels : 0; }

// The runner of the F(4x2) and F(4x4) passes: XI positions, `panel` the tile's output transform of a panel (as
// glide_wf42_output_panel), `pass_bytes` the automatic bound on a pass's activation panels.
typedef void (*wi_output_panel_fn)(const float *buf, ptrdiff_t xs, ptrdiff_t rs, int m, int mr, ptrdiff_t t0, int nt,
                                   int O, int OH, int OW, int ty0, const float *bias, float *y, int accumulate, int isa);
static inline AI int wfo_run(const glide_wi16_fused_desc *d, ptrdiff_t p0, ptrdiff_t p1, const int MR, const int NB,
                             wi_kernel_fn kernel, int isa, const int XI, wi_output_panel_fn panel,
                             const ptrdiff_t pass_bytes, wi_kernel_fn kernel_plain, const int kernel_prefetches) {
    const ptrdiff_t M = d->M, K = d->K, tiles = d->tiles;
    if (K <= 0 || M <= 0) return -1;
    const ptrdiff_t gp = (M + MR - 1) / MR, P = (tiles + NB - 1) / NB;
    const int nkb = (int)((K + WI_KC - 1) / WI_KC);
    int JB = wf42_fused_panels;
    if (JB == 0) {   // activation panels of a pass <= pass_bytes
        const ptrdiff_t panel_bytes = (ptrdiff_t)XI * K * NB * 2;
        JB = (int)(pass_bytes / panel_bytes);
        JB = JB < 1 ? 1 : JB > 4 ? 4 : JB;
    }
    const size_t mark = glide_scratch_mark();   // scratch from the calling thread's stack (glide_scratch.h)
    float *buf = glide_scratch_alloc(sizeof(float) * (size_t)JB * XI * MR * NB);
    if (!buf) return -1;
    float ws[8];
    const ptrdiff_t xs = (ptrdiff_t)MR * NB;
    enum { WFO_LINES = 1024 };   // 8 channels x 4 rows x 4 panels x 8 lines
    const char *lines[WFO_LINES];
    for (ptrdiff_t jq = p0; jq < p1; jq += JB) {
        const int jn = (int)(p1 - jq < JB ? p1 - jq : JB);
        for (ptrdiff_t ip = 0; ip < gp; ip++) {
            const ptrdiff_t m = ip * MR;
            const int mr = (int)(M - m < MR ? M - m : MR);
            for (int r = 0; r < MR; r++) ws[r] = r < mr ? d->w_scales[m + r] : 0.f;
            const int nlines = d->accumulate && wfo_prefetch ? wfo_output_lines(d, jq, jn, NB, m, mr, XI == 36 ? 4 : 2, lines, WFO_LINES) : 0;
            for (int xi = 0; xi < XI; xi++) {
                for (int l = nlines * xi / XI; l < nlines * (xi + 1) / XI; l++) __builtin_prefetch(lines[l], 1, 2);
                for (int kb = 0; kb < nkb; kb++) {
                    const int kc = (int)(K - kb * WI_KC < WI_KC ? K - kb * WI_KC : WI_KC), kp = (kc + 1) / 2;
                    const uint32_t *a = d->w_packed + xi * d->w_words + (ptrdiff_t)kb * (WI_KC / 2) * MR * gp + ip * kp * MR;
                    const uint32_t *na = xi + 1 < XI ? a + d->w_words : a;   // the next position's weight tile (from L3)
                    if (!kernel_prefetches && xi + 1 < XI)
                        for (int l = 0; l < kp * MR * 4; l += 64) __builtin_prefetch((const char *)na + l, 0, 3);
                    for (int jj = 0; jj < jn; jj++)   // (the kernel prefetches during the last panel's tile)
                        wi_fused_tile(d, a, ws, xi, kb, nkb, kp, jq + jj, P, NB, mr, buf + (jj * XI + xi) * xs,
                                      kernel_prefetches && jj + 1 < jn ? kernel_plain : kernel, na);
                }
            }
            for (int jj = 0; jj < jn; jj++) {
                const ptrdiff_t n = (jq + jj) * NB;
                const int nr = (int)(tiles - n < NB ? tiles - n : NB);
                panel(buf + jj * XI * xs, xs, NB, (int)m, mr, n, nr, (int)M, d->OH, d->OW, d->ty0,
                      d->bias, d->y, d->accumulate, isa);
            }
        }
    }
    glide_scratch_release(mark);
    return 0;
}

static inline AI int wf42o_run(const glide_wi16_fused_desc *d, ptrdiff_t p0, ptrdiff_t p1, const int MR, const int NB,
                               wi_kernel_fn kernel, int isa, wi_kernel_fn kernel_plain, const int kernel_prefetches) {
    return wfo_run(d, p0, p1, MR, NB, kernel, isa, 24, glide_wf42_output_panel, 640 * 1024, kernel_plain, kernel_prefetches);   // (L2 1 MB and more)
}
static inline AI int wf44o_run(const glide_wi16_fused_desc *d, ptrdiff_t p0, ptrdiff_t p1, const int MR, const int NB,
                               wi_kernel_fn kernel, int isa, wi_kernel_fn kernel_plain, const int kernel_prefetches) {
    // F(4x4): its 36 positions' panels of 192 channels (442 KB a panel) go two to a pass; measured faster than one on
    // the upsampler's 192-channel layers (BENCHMARKS.md), though the pass outgrows a 1 MB L2
    return wfo_run(d, p0, p1, MR, NB, kernel, isa, 36, glide_wf44_output_panel, 1280 * 1024, kernel_plain,
                   kernel_prefetches);
}

// F(4x2) (`f44` 0) or F(4x4) (1) on each GEMM kernel.
static inline AI int wf4o_run(const glide_wi16_fused_desc *d, ptrdiff_t p0, ptrdiff_t p1, const int MR, const int NB,
                              wi_kernel_fn kernel, int isa, wi_kernel_fn kernel_plain, const int kernel_prefetches,
                              int f44) {
    if (f44) return wf44o_run(d, p0, p1, MR, NB, kernel, isa, kernel_plain, kernel_prefetches);
    return wf42o_run(d, p0, p1, MR, NB, kernel, isa, kernel_plain, kernel_prefetches);
}

#if defined(__x86_64__)
TAVX2 static int wf4o_run_avx2(const glide_wi16_fused_desc *d, ptrdiff_t p0, ptrdiff_t p1, int isa, int f44) {
    return wf4o_run(d, p0, p1, GLIDE_WI16_YMM_MR, GLIDE_WI16_YMM_NB, wi_kernel_avx2, isa, wi_kernel_avx2, 0, f44);
}
TAVXVNNI static int wf4o_run_avxvnni(const glide_wi16_fused_desc *d, ptrdiff_t p0, ptrdiff_t p1, int isa, int f44) {
    return wf4o_run(d, p0, p1, GLIDE_WI16_YMM_MR, GLIDE_WI16_YMM_NB, wi_kernel_avxvnni, isa, wi_kernel_avxvnni, 0, f44);
}
T512 static int wf4o_run_avx512vnni(const glide_wi16_fused_desc *d, ptrdiff_t p0, ptrdiff_t p1, int isa, int f44) {
    if (wf_kernel_prefetch)
        return wf4o_run(d, p0, p1, GLIDE_WI16_ZMM_MR, GLIDE_WI16_ZMM_NB, wi_kernel_zmm_prefetch, isa, wi_kernel_zmm, 1, f44);
    return wf4o_run(d, p0, p1, GLIDE_WI16_ZMM_MR, GLIDE_WI16_ZMM_NB, wi_kernel_zmm, isa, wi_kernel_zmm, 0, f44);
}
#endif

static int wf4_gemm_output(const glide_wi16_fused_desc *d, ptrdiff_t p0, ptrdiff_t p1, int kernel, int isa, int f44) {
    switch (kernel) {
    case GLIDE_WI16_KERNEL_EMULATED_YMM:
        return wf4o_run(d, p0, p1, GLIDE_WI16_YMM_MR, GLIDE_WI16_YMM_NB, wi_kernel_emulated_ymm, isa, wi_kernel_emulated_ymm, 0, f44);
    case GLIDE_WI16_KERNEL_EMULATED_ZMM:
        return wf4o_run(d, p0, p1, GLIDE_WI16_ZMM_MR, GLIDE_WI16_ZMM_NB, wi_kernel_emulated_zmm, isa, wi_kernel_emulated_zmm, 0, f44);
#if defined(__x86_64__)
    case GLIDE_WI16_KERNEL_AVX2: return wf4o_run_avx2(d, p0, p1, isa, f44);
    case GLIDE_WI16_KERNEL_AVXVNNI: return wf4o_run_avxvnni(d, p0, p1, isa, f44);
    case GLIDE_WI16_KERNEL_AVX512VNNI: return wf4o_run_avx512vnni(d, p0, p1, isa, f44);
#endif
    default: return -1;
    }
}

int glide_wf42_gemm_output(const glide_wi16_fused_desc *d, ptrdiff_t p0, ptrdiff_t p1, int kernel, int isa) {
    return wf4_gemm_output(d, p0, p1, kernel, isa, 0);
}
int glide_wf44_gemm_output(const glide_wi16_fused_desc *d, ptrdiff_t p0, ptrdiff_t p1, int kernel, int isa) {
    return wf4_gemm_output(d, p0, p1, kernel, isa, 1);
}
