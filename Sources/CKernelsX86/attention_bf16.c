// Fused attention with bf16 products (`vdpbf16ps`, AVX512_BF16) and its portable emulation twin.
//
// Per head, keys and values are packed once as bf16 pairs (glide_attn_bf16_pack_*); per block of queries,
// glide_attention_bf16_block runs micro tiles of GLIDE_ATTN_MR query rows through three steps without writing
// the full score matrix:
//   1. scores of the tile against all keys (GLIDE_ATTN_MR x 64-key register tiles, pairs along the channels),
//      bias added, row maxima on the fly, into an L1-sized row buffer;
//   2. p = exp(s - max) with a short vectorised exp2 (below), its f32 row sums, p rounded to bf16 (RNE);
//   3. out = (p . v) / sum on GLIDE_ATTN_MR x 64-channel register tiles (pairs along the keys).
// The emulation (emulated != 0) is the same code with `vdpbf16ps`, `vrndscaleps`, `vscalefps` and the bf16
// conversion replaced by scalar C with the instructions' semantics (Intel SDM), so both give the same bits;
// every element's operation order is fixed by the packing, never by the thread split.
//
// exp: with L = log2(e), t = max(s*L - max*L, -125) (one FMA), n = t rounded to nearest even, f = t - n in
// [-1/2, 1/2] (exact), 2^f by a cubic (relative error 7.5e-5, far below bf16's 2^-9), times 2^n: t >= -125
// keeps every result a normal float, so the scaling is exact and no denormal reaches the bf16 rounding; -inf
// (masks) gives ~2^-125, nothing beside the row maximum's 1.
#include "CKernelsX86.h"
#include "bf16_internal.h"
#include <math.h>
#include <string.h>

#define MR GLIDE_ATTN_MR
#define INLINE static inline __attribute__((always_inline))

static const float kLog2e = 1.44269504088896341f;
static const float kExpFloor = -125.f;
// 2^f on [-1/2, 1/2]: cubic fitted to the relative error (max 7.5e-5).
static const float kC0 = 0.9999281167984009f, kC1 = 0.6932609677314758f, kC2 = 0.24261027574539185f,
                   kC3 = 0.05517121031880379f;

// Sizes (in 32-bit words) of the packed operands.
ptrdiff_t glide_attn_bf16_key_words(int keys, int channels) {
    ptrdiff_t pairs = (channels + 1) / 2, blocks = (keys + 15) / 16;
    return pairs * blocks * 16;
}
ptrdiff_t glide_attn_bf16_value_words(int keys, int channels) {
    ptrdiff_t pairs = (keys + 1) / 2, ch16 = (channels + 15) / 16 * 16;
    return pairs * ch16;
}
ptrdiff_t glide_attn_bf16_scratch_floats(int keys) {
    ptrdiff_t s32 = (keys + 31) / 32 * 32;
    return MR * s32 + MR * s32 / 2 + 64;
}

// ---------------------------------------------------------------- packing (the same bits on both paths)

// dst[i] = bf16(a[i] * scale) | bf16(b[i] * scale) << 16 (b == NULL: zero high halves).
static void pack_pairs_scalar(const float *a, const float *b, ptrdiff_t n, float scale, uint32_t *dst) {
    for (ptrdiff_t i = 0; i < n; i++) dst[i] = bf16_rne(a[i] * scale) | (b ? bf16_rne(b[i] * scale) << 16 : 0);
}

#if defined(__x86_64__)
#include <immintrin.h>
#define T512 __attribute__((target("avx512f,avx512bw,avx512vl,avx2,fma")))
// bf16_rne of 16 floats, in the low 16 bits of each dword.
T512 static inline __m512i bf16_rne_512(__m512 v) {
    __m512i x = _mm512_castps_si512(v);
    __m512i r = _mm512_srli_epi32(_mm512_add_epi32(x, _mm512_add_epi32(_mm512_set1_epi32(0x7fff),
                    _mm512_and_si512(_mm512_srli_epi32(x, 16), _mm512_set1_epi32(1)))), 16);
    __mmask16 nan = _mm512_cmpgt_epu32_mask(_mm512_and_si512(x, _mm512_set1_epi32(0x7fffffff)),
                                            _mm512_set1_epi32(0x7f800000));
    return _mm512_mask_or_epi32(r, nan, _mm512_srli_epi32(x, 16), _mm512_set1_epi32(0x40));
}
T512 static void pack_pairs_512(const float *a, const float *b, ptrdiff_t n, float scale, uint32_t *dst) {
    const __m512 sv = _mm512_set1_ps(scale);
    for (ptrdiff_t i = 0; i < n; i += 16) {
        __mmask16 k = n - i >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (n - i)) - 1);
        __m512i lo = bf16_rne_512(_mm512_mul_ps(_mm512_maskz_loadu_ps(k, a + i), sv));
        __m512i w = lo;
        if (b) w = _mm512_or_si512(lo, _mm512_slli_epi32(bf16_rne_512(_mm512_mul_ps(_mm512_maskz_loadu_ps(k, b + i), sv)), 16));
        _mm512_mask_storeu_epi32(dst + i, k, w);
    }
}
#endif

static void pack_pairs(const float *a, const float *b, ptrdiff_t n, float scale, uint32_t *dst, int vector) {
#if defined(__x86_64__)
    if (vector) { pack_pairs_512(a, b, n, scale, dst); return; }
#endif
    (void)vector;
    pack_pairs_scalar(a, b, n, scale, dst);
}

// Keys key0..<key0+count of `keys` (element (channel c, key key0 + j) at src[c * ld + j]) times `scale` into
// their places: groups of 64 keys, group g at word g*pairs*64, inside [pair][nb*16 keys] with nb = the group's
// 16-key blocks. The segment holding the last key also zeroes the padding past `keys`.
void glide_attn_bf16_pack_keys(const float *src, ptrdiff_t ld, int key0, int count, int keys, int channels,
                               float scale, uint32_t *dst, int vector) {
    int pairs = (channels + 1) / 2;
    for (int p = 0; p < pairs; p++) {   // pairs outer: each source row is read front to back
        const float *lo = src + 2 * p * ld, *hi = 2 * p + 1 < channels ? lo + ld : NULL;
        for (int g0 = key0 / 64 * 64; g0 < key0 + count; g0 += 64) {
            int n = keys - g0 < 64 ? keys - g0 : 64, nb = (n + 15) / 16;
            int a = g0 > key0 ? g0 : key0, b = g0 + n < key0 + count ? g0 + n : key0 + count;
            uint32_t *d = dst + (ptrdiff_t)g0 * pairs + (ptrdiff_t)p * nb * 16;
            pack_pairs(lo + (a - key0), hi ? hi + (a - key0) : NULL, b - a, scale, d + (a - g0), vector);
            if (b == keys) for (int i = n; i < nb * 16; i++) d[i] = 0;
        }
    }
}

// Values v as [S, C] f32 (row stride ldv) -> [S/2 pairs][C rounded up to 16] words, pair p = keys 2p, 2p+1.
void glide_attn_bf16_pack_values(const float *v, ptrdiff_t ldv, int keys, int channels, uint32_t *dst, int vector) {
    int ch16 = (channels + 15) / 16 * 16;
    for (int p = 0; p < (keys + 1) / 2; p++) {
        uint32_t *d = dst + (ptrdiff_t)p * ch16;
        pack_pairs(v + 2 * p * ldv, 2 * p + 1 < keys ? v + (2 * p + 1) * ldv : NULL, channels, 1.f, d, vector);
        for (int c = channels; c < ch16; c++) d[c] = 0;
    }
}

// Values key0..<key0+count of `keys` from a channel-major source (element (channel c, key key0 + j) at
// src[c * ld + j]) into glide_attn_bf16_pack_values' layout; key0 even, and count even unless the segment ends
// at `keys` (a pair never straddles two segments).
static void pack_values_cm_scalar(const float *src, ptrdiff_t ld, int key0, int count, int keys, int channels,
                                  uint32_t *dst) {
    int ch16 = (channels + 15) / 16 * 16;
    for (int p = key0 / 2; p < (key0 + count + 1) / 2; p++) {
        uint32_t *d = dst + (ptrdiff_t)p * ch16;
        int j = 2 * p - key0;
        for (int c = 0; c < channels; c++)
            d[c] = bf16_rne(src[c * ld + j]) | (2 * p + 1 < keys ? bf16_rne(src[c * ld + j + 1]) << 16 : 0);
        for (int c = channels; c < ch16; c++) d[c] = 0;
    }
}

#if defined(__x86_64__)
// 16 channels x 16 pairs at a time: each channel's 32 keys rounded and paired in a zmm, then a 16x16 dword
// transpose (four butterfly stages of vpermt2d) puts the 16 channels of each pair side by side.
T512 static void pack_values_cm_512(const float *src, ptrdiff_t ld, int key0, int count, int channels, uint32_t *dst) {
    int ch16 = (channels + 15) / 16 * 16;
    __m512i lo_idx[4], hi_idx[4];
    for (int s = 0, d = 8; s < 4; s++, d >>= 1) {
        int a[16], b[16];
        for (int j = 0; j < 16; j++) {
            a[j] = (j & d) == 0 ? j : 16 + j - d;
            b[j] = (j & d) == 0 ? j + d : 16 + j;
        }
        lo_idx[s] = _mm512_loadu_si512(a);
        hi_idx[s] = _mm512_loadu_si512(b);
    }
    const __m512i evens = _mm512_set_epi16(62, 60, 58, 56, 54, 52, 50, 48, 46, 44, 42, 40, 38, 36, 34, 32,
                                           30, 28, 26, 24, 22, 20, 18, 16, 14, 12, 10, 8, 6, 4, 2, 0);
    int pairs = (count + 1) / 2;
    for (int c0 = 0; c0 < ch16; c0 += 16) {
        for (int q0 = 0; q0 < pairs; q0 += 16) {
            int left = count - 2 * q0;   // keys of this chunk
            __mmask16 k0 = left >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << left) - 1);
            __mmask16 k1 = left >= 32 ? (__mmask16)0xffff : left <= 16 ? 0 : (__mmask16)((1u << (left - 16)) - 1);
            __m512i r[16];
            for (int i = 0; i < 16; i++) {
                if (c0 + i < channels) {
                    const float *x = src + (c0 + i) * ld + 2 * q0;
                    __m512i a = bf16_rne_512(_mm512_maskz_loadu_ps(k0, x));
                    __m512i b = bf16_rne_512(_mm512_maskz_loadu_ps(k1, x + 16));
                    r[i] = _mm512_permutex2var_epi16(a, evens, b);
                } else {
                    r[i] = _mm512_setzero_si512();
                }
            }
            for (int s = 0, d = 8; s < 4; s++, d >>= 1)
                for (int i = 0; i < 16; i++)
                    if ((i & d) == 0) {
                        __m512i x = r[i], y = r[i + d];
                        r[i] = _mm512_permutex2var_epi32(x, lo_idx[s], y);
                        r[i + d] = _mm512_permutex2var_epi32(x, hi_idx[s], y);
                    }
            int n = pairs - q0 < 16 ? pairs - q0 : 16;
            for (int p = 0; p < n; p++) _mm512_storeu_si512(dst + (ptrdiff_t)(key0 / 2 + q0 + p) * ch16 + c0, r[p]);
        }
    }
}
#endif

void glide_attn_bf16_pack_values_cm(const float *src, ptrdiff_t ld, int key0, int count, int keys, int channels,
                                    uint32_t *dst, int vector) {
#if defined(__x86_64__)
    if (vector) { pack_values_cm_512(src, ld, key0, count, channels, dst); return; }
#endif
    (void)vector;
    pack_values_cm_scalar(src, ld, key0, count, keys, channels, dst);
}

// Queries q (element (channel c, query i) at qT[c * ldq + i], i < count) times `scale` -> [pairs][rows] words,
// queries count..rows-1 zero.
void glide_attn_bf16_pack_queries(const float *qT, ptrdiff_t ldq, int count, int rows, int channels, float scale,
                                  uint32_t *dst, int vector) {
    int pairs = (channels + 1) / 2;
    for (int p = 0; p < pairs; p++) {
        uint32_t *d = dst + (ptrdiff_t)p * rows;
        pack_pairs(qT + 2 * p * ldq, 2 * p + 1 < channels ? qT + (2 * p + 1) * ldq : NULL, count, scale, d, vector);
        for (int i = count; i < rows; i++) d[i] = 0;
    }
}

// The 16 lanes of a row sum added in one fixed order (both paths).
INLINE float reduce16(const float *l) {
    float a[8];
    for (int i = 0; i < 8; i++) a[i] = l[i] + l[i + 8];
    for (int i = 0; i < 4; i++) a[i] = a[i] + a[i + 4];
    return (a[0] + a[2]) + (a[1] + a[3]);
}

// ---------------------------------------------------------------- portable emulation

// _mm512_max_ps(a, b) per lane: a > b ? a : b (NaN a gives b).
INLINE float max_emul(float a, float b) { return a > b ? a : b; }
// The exp of the header on one lane; t is already fma(s, L, -m*L).
INLINE float exp_emul(float t) {
    t = max_emul(t, kExpFloor);
    float n = rintf(t), f = t - n;
    float p = fmaf(fmaf(fmaf(kC3, f, kC2), f, kC1), f, kC0);
    return ldexpf(p, (int)n);
}

static void block_emulated(const uint32_t *kp, const uint32_t *vp, int keys, int channels, const uint32_t *qp,
                           ptrdiff_t ldq, int rows, const float *bias, ptrdiff_t ldb, int bias_rows, float *scratch, float *out,
                           ptrdiff_t ldo) {
    const int pairs = (channels + 1) / 2, ch16 = (channels + 15) / 16 * 16, kpairs = (keys + 1) / 2;
    const ptrdiff_t s32 = (keys + 31) / 32 * 32;
    float *sc = scratch;
    uint16_t *pb = (uint16_t *)(scratch + MR * s32);
    for (int r0 = 0; r0 < rows; r0 += MR) {
        float mx[MR], inv[MR];
        for (int r = 0; r < MR; r++) mx[r] = -INFINITY;
        // 1. scores
        for (int g0 = 0; g0 < keys; g0 += 64) {
            int n = keys - g0 < 64 ? keys - g0 : 64, nb = (n + 15) / 16;
            const uint32_t *kg = kp + (ptrdiff_t)g0 * pairs;
            for (int r = 0; r < MR; r++) {
                for (int j = 0; j < n; j++) {
                    float acc = 0.f;
                    for (int p = 0; p < pairs; p++) acc = dp_emul(acc, qp[(ptrdiff_t)p * ldq + r0 + r], kg[(ptrdiff_t)p * nb * 16 + j]);
                    if (bias && r0 + r < bias_rows) acc = acc + bias[(r0 + r) * ldb + g0 + j];
                    sc[r * s32 + g0 + j] = acc;
                    mx[r] = max_emul(acc, mx[r]);
                }
            }
        }
        // 2. exp, sums, bf16 weights
        for (int r = 0; r < MR; r++) {
            float lanes[16] = {0}, ml = mx[r] * kLog2e;
            for (ptrdiff_t j = 0; j < s32; j++) {
                float e = 0.f;
                if (j < keys) e = exp_emul(fmaf(sc[r * s32 + j], kLog2e, -ml));
                lanes[j % 16] += e;
                pb[r * s32 + j] = (uint16_t)bf16_rne(e);
            }
            inv[r] = 1.f / reduce16(lanes);
        }
        // 3. weighted sum
        const uint32_t *pw = (const uint32_t *)pb;
        for (int r = 0; r < MR; r++) {
            float *o = out + (ptrdiff_t)(r0 + r) * ldo;
            for (int c = 0; c < ch16; c++) {
                float acc = 0.f;
                for (int p = 0; p < kpairs; p++) acc = dp_emul(acc, pw[r * s32 / 2 + p], vp[(ptrdiff_t)p * ch16 + c]);
                o[c] = acc * inv[r];
            }
        }
    }
}

// ---------------------------------------------------------------- AVX-512 BF16

#if defined(__x86_64__)
#define TBF __attribute__((target("avx512f,avx512bw,avx512vl,avx512bf16,avx2,fma")))

// Scores of MR rows x NB*16 keys of one group; bias added; maxima updated; n valid keys in the group.
#define SCORE_TILE(NB)                                                                                       \
    TBF static inline __attribute__((always_inline)) void score_tile_##NB(                                  \
        const uint32_t *kg, const uint32_t *q, ptrdiff_t ldq, int pairs, int n, const float *const *brow,        \
        float *sc, ptrdiff_t s32, __m512 *mx) {                                                             \
        __m512 c[MR][NB];                                                                                   \
        for (int r = 0; r < MR; r++)                                                                        \
            for (int v = 0; v < NB; v++) c[r][v] = _mm512_setzero_ps();                                     \
        for (int p = 0; p < pairs; p++) {                                                                   \
            __m512bh b[NB];                                                                                 \
            for (int v = 0; v < NB; v++) b[v] = (__m512bh)_mm512_loadu_si512(kg + (ptrdiff_t)p * NB * 16 + v * 16); \
            const uint32_t *qr = q + (ptrdiff_t)p * ldq;                                                      \
            for (int r = 0; r < MR; r++) {                                                                  \
                __m512bh a = (__m512bh)_mm512_set1_epi32((int)qr[r]);                                       \
                for (int v = 0; v < NB; v++) c[r][v] = _mm512_dpbf16_ps(c[r][v], a, b[v]);                  \
            }                                                                                               \
        }                                                                                                   \
        for (int r = 0; r < MR; r++)                                                                        \
            for (int v = 0; v < NB; v++) {                                                                  \
                int left = n - v * 16;                                                                      \
                __mmask16 k = left >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << left) - 1);               \
                __m512 s = c[r][v];                                                                         \
                if (brow[r]) s = _mm512_add_ps(s, _mm512_maskz_loadu_ps(k, brow[r] + v * 16));              \
                _mm512_storeu_ps(sc + r * s32 + v * 16, s);                                                 \
                mx[r] = _mm512_mask_max_ps(mx[r], k, s, mx[r]);                                             \
            }                                                                                               \
    }
SCORE_TILE(1)
SCORE_TILE(2)
SCORE_TILE(3)
SCORE_TILE(4)

// out rows = (p . v) * inv for channels [c0, c0 + NV*16).
#define SUM_TILE(NV)                                                                                        \
    TBF static inline __attribute__((always_inline)) void sum_tile_##NV(                                    \
        const uint32_t *pw, ptrdiff_t ldp, const uint32_t *vp, int ch16, int kpairs, const float *inv,      \
        float *out, ptrdiff_t ldo) {                                                                        \
        __m512 c[MR][NV];                                                                                   \
        for (int r = 0; r < MR; r++)                                                                        \
            for (int v = 0; v < NV; v++) c[r][v] = _mm512_setzero_ps();                                     \
        for (int p = 0; p < kpairs; p++) {                                                                  \
            __m512bh b[NV];                                                                                 \
            for (int v = 0; v < NV; v++) b[v] = (__m512bh)_mm512_loadu_si512(vp + (ptrdiff_t)p * ch16 + v * 16); \
            for (int r = 0; r < MR; r++) {                                                                  \
                __m512bh a = (__m512bh)_mm512_set1_epi32((int)pw[r * ldp + p]);                             \
                for (int v = 0; v < NV; v++) c[r][v] = _mm512_dpbf16_ps(c[r][v], a, b[v]);                  \
            }                                                                                               \
        }                                                                                                   \
        for (int r = 0; r < MR; r++) {                                                                      \
            __m512 s = _mm512_set1_ps(inv[r]);                                                              \
            for (int v = 0; v < NV; v++) _mm512_storeu_ps(out + r * ldo + v * 16, _mm512_mul_ps(c[r][v], s)); \
        }                                                                                                   \
    }
SUM_TILE(1)
SUM_TILE(2)
SUM_TILE(3)
SUM_TILE(4)

TBF static inline __m512 exp2_tile(__m512 t) {
    t = _mm512_max_ps(t, _mm512_set1_ps(kExpFloor));
    __m512 n = _mm512_roundscale_ps(t, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 f = _mm512_sub_ps(t, n);   // exact
    __m512 p = _mm512_fmadd_ps(_mm512_set1_ps(kC3), f, _mm512_set1_ps(kC2));
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(kC1));
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(kC0));
    return _mm512_scalef_ps(p, n);
}

TBF static void block_avx512(const uint32_t *kp, const uint32_t *vp, int keys, int channels, const uint32_t *qp,
                             ptrdiff_t ldq, int rows, const float *bias, ptrdiff_t ldb, int bias_rows, float *scratch, float *out,
                             ptrdiff_t ldo) {
    const int pairs = (channels + 1) / 2, ch16 = (channels + 15) / 16 * 16, kpairs = (keys + 1) / 2;
    const ptrdiff_t s32 = (keys + 31) / 32 * 32;
    float *sc = scratch;
    uint16_t *pb = (uint16_t *)(scratch + MR * s32);
    const __m512 log2e = _mm512_set1_ps(kLog2e);
    for (int r0 = 0; r0 < rows; r0 += MR) {
        __m512 mx[MR];
        float inv[MR];
        for (int r = 0; r < MR; r++) mx[r] = _mm512_set1_ps(-INFINITY);
        // 1. scores
        for (int g0 = 0; g0 < keys; g0 += 64) {
            int n = keys - g0 < 64 ? keys - g0 : 64, nb = (n + 15) / 16;
            const uint32_t *kg = kp + (ptrdiff_t)g0 * pairs;
            const float *brow[MR];
            for (int r = 0; r < MR; r++) brow[r] = bias && r0 + r < bias_rows ? bias + (r0 + r) * ldb + g0 : NULL;
            switch (nb) {
            case 4: score_tile_4(kg, qp + r0, ldq, pairs, n, brow, sc + g0, s32, mx); break;
            case 3: score_tile_3(kg, qp + r0, ldq, pairs, n, brow, sc + g0, s32, mx); break;
            case 2: score_tile_2(kg, qp + r0, ldq, pairs, n, brow, sc + g0, s32, mx); break;
            default: score_tile_1(kg, qp + r0, ldq, pairs, n, brow, sc + g0, s32, mx); break;
            }
        }
        // 2. exp, sums, bf16 weights: the rows interleaved (independent sum chains)
        __m512 ml[MR], sum[MR];
        for (int r = 0; r < MR; r++) {
            ml[r] = _mm512_set1_ps(_mm512_reduce_max_ps(mx[r]) * kLog2e);
            sum[r] = _mm512_setzero_ps();
        }
        for (ptrdiff_t j = 0; j < s32; j += 32) {
            ptrdiff_t left = keys - j;
            __mmask16 k0 = left >= 16 ? (__mmask16)0xffff : left <= 0 ? 0 : (__mmask16)((1u << left) - 1);
            __mmask16 k1 = left >= 32 ? (__mmask16)0xffff : left <= 16 ? 0 : (__mmask16)((1u << (left - 16)) - 1);
            for (int r = 0; r < MR; r++) {
                __m512 e0 = _mm512_maskz_mov_ps(k0, exp2_tile(_mm512_fmsub_ps(_mm512_loadu_ps(sc + r * s32 + j), log2e, ml[r])));
                __m512 e1 = _mm512_maskz_mov_ps(k1, exp2_tile(_mm512_fmsub_ps(_mm512_loadu_ps(sc + r * s32 + j + 16), log2e, ml[r])));
                sum[r] = _mm512_add_ps(sum[r], e0);
                sum[r] = _mm512_add_ps(sum[r], e1);
                _mm512_storeu_si512(pb + r * s32 + j, (__m512i)_mm512_cvtne2ps_pbh(e1, e0));
            }
        }
        for (int r = 0; r < MR; r++) {
            float lanes[16];
            _mm512_storeu_ps(lanes, sum[r]);
            inv[r] = 1.f / reduce16(lanes);
        }
        // 3. weighted sum, 64 channels at a time
        const uint32_t *pw = (const uint32_t *)pb;
        float *o = out + (ptrdiff_t)r0 * ldo;
        for (int c0 = 0; c0 < ch16; c0 += 64) {
            int nv = (ch16 - c0) / 16 < 4 ? (ch16 - c0) / 16 : 4;
            switch (nv) {
            case 4: sum_tile_4(pw, s32 / 2, vp + c0, ch16, kpairs, inv, o + c0, ldo); break;
            case 3: sum_tile_3(pw, s32 / 2, vp + c0, ch16, kpairs, inv, o + c0, ldo); break;
            case 2: sum_tile_2(pw, s32 / 2, vp + c0, ch16, kpairs, inv, o + c0, ldo); break;
            default: sum_tile_1(pw, s32 / 2, vp + c0, ch16, kpairs, inv, o + c0, ldo); break;
            }
        }
    }
}
#endif

void glide_attention_bf16_block(const uint32_t *keys_packed, const uint32_t *values_packed, int keys, int channels,
                                const uint32_t *queries_packed, ptrdiff_t ldq, int rows, const float *bias,
                                ptrdiff_t ldb, int bias_rows, float *scratch, float *out, ptrdiff_t ldo, int emulated) {
#if defined(__x86_64__)
    if (!emulated) {
        block_avx512(keys_packed, values_packed, keys, channels, queries_packed, ldq, rows, bias, ldb, bias_rows,
                     scratch, out, ldo);
        return;
    }
#endif
    block_emulated(keys_packed, values_packed, keys, channels, queries_packed, ldq, rows, bias, ldb, bias_rows, scratch,
                   out, ldo);
}

void glide_prefetch_rows(const float *base, ptrdiff_t ld, int rows, ptrdiff_t from, ptrdiff_t to) {
    for (int r = 0; r < rows; r++)
        for (ptrdiff_t i = from; i < to; i += 16) __builtin_prefetch(base + r * ld + i, 0, 2);
}
