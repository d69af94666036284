// AVX-512 GEMMs: W [M, K] x X [K, N] (X f32, strided or implicit im2col), same contract as glide_gemm_avx2.
//   glide_gemm_avx512       f32 FMAs (AVX-512F), 14x32 register tile = 28 zmm accumulators + 2 for B;
//                           f32/f16/bf16 weights widened to f32 while packing.
//   glide_gemm_avx512_bf16  bf16 weights used as stored (pairs along K) x activations rounded to bf16 (RNE)
//                           while packing, `vdpbf16ps` (AVX512_BF16) with f32 accumulation, same 14x32 tile.
//   glide_gemm_bf16_emulated  the bf16 path with a portable scalar emulation of `vdpbf16ps` as micro-kernel.
// One driver (`run`, BLIS loop order jc -> pc -> pack B -> ic -> pack A -> jr -> ir -> micro-kernel) holds
// the packing, blocking and store code for all three; it is written in portable C and inlined into each
// entry point, so the intrinsic entry points get it compiled for AVX-512 and the emulated one for the
// baseline ISA. The K reduction order of an element is fixed (KC blocks in order, pairs in order), so any
// partition over threads gives bit-identical results.
#include "CKernelsX86.h"
#include "include/glide_scratch.h"
#include "bf16_internal.h"
#include <stdlib.h>
#include <string.h>
#include <math.h>

#define MR GLIDE_GEMM512_MR
#define NR GLIDE_GEMM512_NR
#define KC 256
#define MC ((144 / MR) * MR)
#define NC 2048
#define INLINE static inline __attribute__((always_inline))

typedef void (*kernel_fn)(int kk, const void *a, const void *b, float *tile);

// ---------------------------------------------------------------- portable element helpers

// f16 bits -> f32, exact (normals, subnormals, inf, NaN) without F16C.
INLINE float f16_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000) << 16, em = h & 0x7fff;
    if (em >= 0x7c00) return bits_f32(sign | 0x7f800000u | ((em & 0x3ff) << 13));
    return bits_f32(f32_bits(bits_f32(em << 13) * 0x1p112f) | sign);
}

// Scratch from the calling thread's stack (glide_scratch.h): released with the mark taken before it.
static void *aligned64(size_t bytes) { return glide_scratch_alloc(bytes); }

// ---------------------------------------------------------------- packing A (weights)

// f32 panel dst[k * MR + r], k < kc (rows >= mr zero), weights widened.
INLINE void pack_a_f32(const glide_gemm_desc *d, ptrdiff_t m, int mr, ptrdiff_t k0, int kc, float *restrict dst) {
    for (int r = 0; r < MR; r++) {
        if (r >= mr) { for (int k = 0; k < kc; k++) dst[k * MR + r] = 0.f; continue; }
        ptrdiff_t off = (m + r) * d->ldw + k0;
        if (d->w_dtype == GLIDE_W_F32) {
            const float *s = (const float *)d->w + off;
            for (int k = 0; k < kc; k++) dst[k * MR + r] = s[k];
        } else if (d->w_dtype == GLIDE_W_BF16) {
            const uint16_t *s = (const uint16_t *)d->w + off;
            for (int k = 0; k < kc; k++) dst[k * MR + r] = bits_f32((uint32_t)s[k] << 16);
        } else {
            const uint16_t *s = (const uint16_t *)d->w + off;
            for (int k = 0; k < kc; k++) dst[k * MR + r] = f16_f32(s[k]);
        }
    }
}

// bf16 weights as stored: dst[p * MR + r] = (w[r][2p] | w[r][2p+1] << 16), an odd tail padded with 0.
INLINE void pack_a_bf16(const glide_gemm_desc *d, ptrdiff_t m, int mr, ptrdiff_t k0, int kc, uint32_t *restrict dst) {
    int kp = (kc + 1) / 2, kh = kc / 2;
    for (int r = 0; r < MR; r++) {
        if (r >= mr) { for (int p = 0; p < kp; p++) dst[p * MR + r] = 0; continue; }
        const uint16_t *s = (const uint16_t *)d->w + (m + r) * d->ldw + k0;
        for (int p = 0; p < kh; p++) { uint32_t v; memcpy(&v, s + 2 * p, 4); dst[p * MR + r] = v; }
        if (kc & 1) dst[kh * MR + r] = s[kc - 1];
    }
}

// ---------------------------------------------------------------- packing B (activations)

// One f32 panel dst[k * NR + j], columns n..n+nr-1 (nr <= NR; the rest zero).
INLINE void pack_b_f32(const glide_gemm_desc *d, ptrdiff_t k0, int kc, ptrdiff_t n, int nr, float *restrict dst) {
    if (d->src_kind == GLIDE_SRC_STRIDED) {
        const float *x = d->x + k0 * d->x_rs + n * d->x_cs;
        if (d->x_cs == 1) {
            for (int k = 0; k < kc; k++) {
                const float *s = x + k * d->x_rs;
                float *o = dst + k * NR;
                if (nr == NR) memcpy(o, s, sizeof(float) * NR);
                else for (int j = 0; j < NR; j++) o[j] = j < nr ? s[j] : 0.f;
            }
        } else if (d->x_rs == 1) {      // X^T dense along k (token-major activations)
            for (int j = 0; j < NR; j++) {
                if (j >= nr) { for (int k = 0; k < kc; k++) dst[k * NR + j] = 0.f; continue; }
                const float *s = x + j * d->x_cs;
                for (int k = 0; k < kc; k++) dst[k * NR + j] = s[k];
            }
        } else {
            for (int k = 0; k < kc; k++)
                for (int j = 0; j < NR; j++) dst[k * NR + j] = j < nr ? x[k * d->x_rs + j * d->x_cs] : 0.f;
        }
        return;
    }
    // implicit im2col of one image. The panel's valid columns split into runs of consecutive output pixels
    // of one output row (stride 1: consecutive input pixels too); each run is copied per k as one contiguous
    // piece (per-lane bounds only at the left/right image border), columns >= nr are zero.
    const int ks = d->conv_k, kk = ks * ks, H = d->conv_h, W = d->conv_w, st = d->conv_stride, pad = d->conv_pad;
    const int ow = d->conv_ow;
    int run_start[NR], run_len[NR], run_iy[NR], run_ix[NR], runs = 0;
    for (int j = 0; j < nr; j++) {
        ptrdiff_t nn = n + j;
        int oy = (int)(nn / ow), ox = (int)(nn % ow);
        int iy = oy * st - pad, ix = ox * st - pad;
        if (runs > 0 && st == 1 && iy == run_iy[runs - 1] && ix == run_ix[runs - 1] + run_len[runs - 1]) {
            run_len[runs - 1]++;
        } else {
            run_start[runs] = j; run_len[runs] = 1; run_iy[runs] = iy; run_ix[runs] = ix; runs++;
        }
    }
    int c = (int)(k0 / kk), r = (int)(k0 % kk);
    int ky = r / ks, kx = r % ks;
    const float *plane = d->x + (ptrdiff_t)c * H * W;
    for (int k = 0; k < kc; k++) {
        float *o = dst + k * NR;
        for (int q = 0; q < runs; q++) {
            float *os = o + run_start[q];
            const int len = run_len[q];
            int iy = run_iy[q] + ky;
            if (iy < 0 || iy >= H) { for (int j = 0; j < len; j++) os[j] = 0.f; continue; }
            int ix = run_ix[q] + kx;
            const float *row = plane + (ptrdiff_t)iy * W;
            if (ix >= 0 && ix + len <= W) {
                const float *src = row + ix;
                for (int j = 0; j < len; j++) os[j] = src[j];
            } else {
                for (int j = 0; j < len; j++) { int x = ix + j; os[j] = (x >= 0 && x < W) ? row[x] : 0.f; }
            }
        }
        for (int j = nr; j < NR; j++) o[j] = 0.f;
        if (++kx == ks) { kx = 0; if (++ky == ks) { ky = 0; plane += (ptrdiff_t)H * W; } }
    }
}

// f32 panel [kc][NR] -> bf16 pairs dst[p * NR + j] = (rne(x[2p][j]) | rne(x[2p+1][j]) << 16), odd tail 0.
INLINE void pack_b_bf16(const float *restrict src, int kc, uint32_t *restrict dst) {
    int kh = kc / 2;
    for (int p = 0; p < kh; p++) {
        const float *s0 = src + (2 * p) * NR, *s1 = s0 + NR;
        for (int j = 0; j < NR; j++) dst[p * NR + j] = bf16_rne(s0[j]) | (bf16_rne(s1[j]) << 16);
    }
    if (kc & 1) {
        const float *s0 = src + (kc - 1) * NR;
        for (int j = 0; j < NR; j++) dst[kh * NR + j] = bf16_rne(s0[j]);
    }
}

// ---------------------------------------------------------------- store

// tile[r * NR + j] -> y rows m.., columns n..; bias added on the first K block, old y added unless first
// block of a non-accumulating call. Same float operations for every entry point.
INLINE void store_tile(const glide_gemm_desc *d, const float *restrict t, ptrdiff_t m, int mr, ptrdiff_t n,
                       int nr, int first) {
    int add_old = !first || d->accumulate;
    for (int r = 0; r < mr; r++) {
        float b = (first && d->bias) ? d->bias[m + r] : 0.f;
        const float *tr = t + r * NR;
        if (d->y_cs == 1) {
            float *y = d->y + (m + r) * d->y_rs + n;
            if (nr == NR) {
                if (add_old) for (int j = 0; j < NR; j++) y[j] = y[j] + (tr[j] + b);
                else for (int j = 0; j < NR; j++) y[j] = tr[j] + b;
            } else {
                for (int j = 0; j < nr; j++) { float v = tr[j] + b; y[j] = add_old ? y[j] + v : v; }
            }
        } else {
            for (int j = 0; j < nr; j++) {
                float *y = d->y + (m + r) * d->y_rs + (n + j) * d->y_cs;
                float v = tr[j] + b;
                *y = add_old ? *y + v : v;
            }
        }
    }
}

// ---------------------------------------------------------------- driver

// f32-mode A packing (same layout as pack_a_f32), AVX-512 16x16 register transposes; defined below.
static void pack_a_f32_512(const glide_gemm_desc *d, ptrdiff_t m, int mr, ptrdiff_t k0, int kc, float *dst,
                           float *tmp);
// pack_b_f32 with the token-major case (x_rs == 1) done by 16x16 zmm transposes; defined below.
static void pack_b_f32_512(const glide_gemm_desc *d, ptrdiff_t k0, int kc, ptrdiff_t n, int nr, float *dst);
// bf16-mode A packing (same layout as pack_a_bf16) with the same transposes on dwords; defined below.
static void pack_a_bf16_512(const glide_gemm_desc *d, ptrdiff_t m, int mr, ptrdiff_t k0, int kc, uint32_t *dst);

typedef int (*entry_fn)(const glide_gemm_desc *, ptrdiff_t, ptrdiff_t, ptrdiff_t, ptrdiff_t);

// Output with m contiguous (token-major linear layers): compute into a dense [m][n] stage, then transpose.
// Copies (or adds, with d->accumulate) stage[m][j] into y; defined below (AVX-512 16x16 transposes when y_rs == 1).
static void unstage_512(const glide_gemm_desc *d, const float *stage, ptrdiff_t m0, ptrdiff_t mm, ptrdiff_t n0,
                        ptrdiff_t nn);

static int staged(const glide_gemm_desc *d, ptrdiff_t m0, ptrdiff_t m1, ptrdiff_t n0, ptrdiff_t n1, entry_fn fn) {
    ptrdiff_t mm = m1 - m0, nn = n1 - n0;
    const size_t mark = glide_scratch_mark();
    float *stage = aligned64(sizeof(float) * mm * nn);
    if (!stage) return -1;
    glide_gemm_desc s2 = *d;
    s2.M = mm; s2.N = nn;
    size_t es = d->w_dtype == GLIDE_W_F32 ? 4 : 2;
    s2.w = (const char *)d->w + (size_t)m0 * d->ldw * es;
    if (d->bias) s2.bias = d->bias + m0;
    s2.x = d->x + n0 * d->x_cs;
    s2.y = stage; s2.y_rs = nn; s2.y_cs = 1; s2.accumulate = 0;
    int rc = fn(&s2, 0, mm, 0, nn);
    if (rc == 0 && fn != glide_gemm_bf16_emulated) {
        unstage_512(d, stage, m0, mm, n0, nn);
    } else if (rc == 0) {
        for (ptrdiff_t j = 0; j < nn; j++) {
            float *y = d->y + (n0 + j) * d->y_cs + m0 * d->y_rs;
            if (d->accumulate) for (ptrdiff_t m = 0; m < mm; m++) y[m * d->y_rs] += stage[m * nn + j];
            else for (ptrdiff_t m = 0; m < mm; m++) y[m * d->y_rs] = stage[m * nn + j];
        }
    }
    glide_scratch_release(mark);
    return rc;
}

// `vector_pack`: A panels packed with AVX-512 transposes (the intrinsic entry points); 0 = portable packing
// (the emulation). Both give the same panel bits.
INLINE int run(const glide_gemm_desc *d, ptrdiff_t m0, ptrdiff_t m1, ptrdiff_t n0, ptrdiff_t n1, int bf16,
               kernel_fn kernel, int vector_pack) {
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
    ptrdiff_t ncap = n1 - n0 < NC ? n1 - n0 : NC;
    ptrdiff_t npanels = (ncap + NR - 1) / NR;
    ptrdiff_t mcap = m1 - m0 < MC ? m1 - m0 : MC;
    ptrdiff_t mpanels = (mcap + MR - 1) / MR;
    // f32: B panels [np][KC][NR] f32, A panels [mp][KC][MR] f32.
    // bf16: one f32 staging panel, B panels [np][KC/2][NR] u32, A panels [mp][KC/2][MR] u32.
    const size_t mark = glide_scratch_mark();
    float *bf = aligned64(sizeof(float) * KC * NR * (bf16 ? 1 : npanels));
    void *bp = bf16 ? aligned64(sizeof(uint32_t) * (KC / 2) * NR * npanels) : bf;
    void *ap = aligned64(bf16 ? sizeof(uint32_t) * (KC / 2) * MR * mpanels : sizeof(float) * KC * MR * mpanels);
    float *tile = aligned64(sizeof(float) * MR * NR);
    float *atmp = bf16 ? NULL : aligned64(sizeof(float) * MR * KC);
    if (!bf || !bp || !ap || !tile || (!bf16 && !atmp)) {
        glide_scratch_release(mark);
        return -1;
    }
    for (ptrdiff_t jc = n0; jc < n1; jc += NC) {
        ptrdiff_t nc = n1 - jc < NC ? n1 - jc : NC;
        int np = (int)((nc + NR - 1) / NR);
        for (ptrdiff_t pc = 0; pc < K; pc += KC) {
            int kc = (int)(K - pc < KC ? K - pc : KC);
            int kk = bf16 ? (kc + 1) / 2 : kc;          // micro-kernel steps
            ptrdiff_t bstride = bf16 ? (ptrdiff_t)kk * NR * 4 : (ptrdiff_t)KC * NR * 4;   // bytes per B panel
            ptrdiff_t astride = bf16 ? (ptrdiff_t)kk * MR * 4 : (ptrdiff_t)KC * MR * 4;   // bytes per A panel
            int first = pc == 0;
            unsigned long long pt0 = glide_profile_enabled ? glide_profile_now_ns() : 0;
            for (int jp = 0; jp < np; jp++) {
                ptrdiff_t n = jc + (ptrdiff_t)jp * NR;
                int nr = (int)(jc + nc - n < NR ? jc + nc - n : NR);
                if (bf16) {
                    if (vector_pack) pack_b_f32_512(d, pc, kc, n, nr, bf);
                    else pack_b_f32(d, pc, kc, n, nr, bf);
                    pack_b_bf16(bf, kc, (uint32_t *)((char *)bp + jp * bstride));
                } else {
                    pack_b_f32_512(d, pc, kc, n, nr, (float *)((char *)bp + jp * bstride));
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
                    if (bf16 && vector_pack) pack_a_bf16_512(d, m, mr, pc, kc, (uint32_t *)((char *)ap + ip * astride));
                    else if (bf16) pack_a_bf16(d, m, mr, pc, kc, (uint32_t *)((char *)ap + ip * astride));
                    else if (!vector_pack) pack_a_f32(d, m, mr, pc, kc, (float *)((char *)ap + ip * astride));
                    else pack_a_f32_512(d, m, mr, pc, kc, (float *)((char *)ap + ip * astride), atmp);
                }
                if (glide_profile_enabled) glide_profile_add_ns(GLIDE_PROFILE_PACK_WEIGHTS, glide_profile_now_ns() - pt1);
                for (int jp = 0; jp < np; jp++) {
                    ptrdiff_t n = jc + (ptrdiff_t)jp * NR;
                    int nr = (int)(jc + nc - n < NR ? jc + nc - n : NR);
                    for (int ip = 0; ip < mp; ip++) {
                        ptrdiff_t m = ic + (ptrdiff_t)ip * MR;
                        int mr = (int)(ic + mc - m < MR ? ic + mc - m : MR);
                        kernel(kk, (const char *)ap + ip * astride, (const char *)bp + jp * bstride, tile);
                        store_tile(d, tile, m, mr, n, nr, first);
                    }
                }
            }
        }
    }
    glide_scratch_release(mark);
    return 0;
}

// ---------------------------------------------------------------- portable vdpbf16ps emulation

// Intel SDM, VDPBF16PS: per dword i, srcdest += src1.bf16[2i+1] * src2.bf16[2i+1], then
// srcdest += src1.bf16[2i] * src2.bf16[2i]; each an f32 FMA with DAZ in, FTZ out, RNE, MXCSR ignored.
static void kernel_bf16_emulated(int kp, const void *av, const void *bv, float *tile) {
    const uint32_t *a = av, *b = bv;
    for (int i = 0; i < MR * NR; i++) tile[i] = 0.f;
    for (int p = 0; p < kp; p++) {
        for (int r = 0; r < MR; r++) {
            const uint32_t ar = a[p * MR + r];
            float *t = tile + r * NR;
            for (int j = 0; j < NR; j++) t[j] = dp_emul(t[j], ar, b[p * NR + j]);
        }
    }
}

int glide_gemm_bf16_emulated(const glide_gemm_desc *d, ptrdiff_t m0, ptrdiff_t m1, ptrdiff_t n0, ptrdiff_t n1) {
    if (d->w_dtype != GLIDE_W_BF16) return -2;
    if (m1 <= m0 || n1 <= n0) return 0;
    if (d->y_cs != 1 && d->src_kind == GLIDE_SRC_STRIDED && d->K > 0)
        return staged(d, m0, m1, n0, n1, glide_gemm_bf16_emulated);
    return run(d, m0, m1, n0, n1, 1, kernel_bf16_emulated, 0);
}

// ---------------------------------------------------------------- AVX-512 micro-kernels
#if defined(__x86_64__)
#include <immintrin.h>
#define T512 __attribute__((target("avx512f,avx512bw,avx512vl,avx2,fma,f16c")))
#define T512BF __attribute__((target("avx512f,avx512bw,avx512vl,avx512bf16,avx2,fma,f16c")))

#define ROWS(X) X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7) X(8) X(9) X(10) X(11) X(12) X(13)

static const float zero_row[KC] __attribute__((aligned(64)));

// Transposes 16 rows x 16 k (rows[i] + k) and stores column j (the lanes in `keep`) at dst + j * stride.
T512 static inline void transpose16(const float *const rows[16], int k, float *dst, int stride, __mmask16 keep) {
    __m512 r[16];
    for (int i = 0; i < 16; i++) r[i] = _mm512_loadu_ps(rows[i] + k);
    __m512 t[16], u[16];
    for (int i = 0; i < 16; i += 2) { t[i] = _mm512_unpacklo_ps(r[i], r[i + 1]); t[i + 1] = _mm512_unpackhi_ps(r[i], r[i + 1]); }
    for (int i = 0; i < 16; i += 4) {
        __m512d a0 = _mm512_castps_pd(t[i]), a1 = _mm512_castps_pd(t[i + 1]);
        __m512d a2 = _mm512_castps_pd(t[i + 2]), a3 = _mm512_castps_pd(t[i + 3]);
        u[i] = _mm512_castpd_ps(_mm512_unpacklo_pd(a0, a2));       // k = 0, 4, 8, 12 (rows i..i+3)
        u[i + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(a0, a2));   // k = 1, 5, 9, 13
        u[i + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(a1, a3));   // k = 2, 6, 10, 14
        u[i + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(a1, a3));   // k = 3, 7, 11, 15
    }
    for (int q = 0; q < 4; q++) {                                  // k = q + 4 * lane
        __m512 v0 = _mm512_shuffle_f32x4(u[q], u[4 + q], 0x88);    // [r0-3 k=q, r0-3 q+8, r4-7 q, r4-7 q+8]
        __m512 v1 = _mm512_shuffle_f32x4(u[q], u[4 + q], 0xdd);    // [.. q+4, .. q+12, ..]
        __m512 v2 = _mm512_shuffle_f32x4(u[8 + q], u[12 + q], 0x88);
        __m512 v3 = _mm512_shuffle_f32x4(u[8 + q], u[12 + q], 0xdd);
        _mm512_mask_storeu_ps(dst + q * stride, keep, _mm512_shuffle_f32x4(v0, v2, 0x88));
        _mm512_mask_storeu_ps(dst + (q + 8) * stride, keep, _mm512_shuffle_f32x4(v0, v2, 0xdd));
        _mm512_mask_storeu_ps(dst + (q + 4) * stride, keep, _mm512_shuffle_f32x4(v1, v3, 0x88));
        _mm512_mask_storeu_ps(dst + (q + 12) * stride, keep, _mm512_shuffle_f32x4(v1, v3, 0xdd));
    }
}

T512 static void pack_a_f32_512(const glide_gemm_desc *d, ptrdiff_t m, int mr, ptrdiff_t k0, int kc, float *dst,
                                float *tmp) {
    const float *rows[16];
    for (int r = 0; r < 16; r++) {
        if (r >= mr || r >= MR) { rows[r] = zero_row; continue; }
        ptrdiff_t off = (m + r) * d->ldw + k0;
        if (d->w_dtype == GLIDE_W_F32) { rows[r] = (const float *)d->w + off; continue; }
        float *t = tmp + r * KC;
        const uint16_t *s = (const uint16_t *)d->w + off;
        int k = 0;
        if (d->w_dtype == GLIDE_W_BF16) {
            for (; k + 16 <= kc; k += 16)
                _mm512_storeu_ps(t + k, _mm512_castsi512_ps(_mm512_slli_epi32(
                    _mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i *)(s + k))), 16)));
            for (; k < kc; k++) t[k] = bits_f32((uint32_t)s[k] << 16);
        } else {
            for (; k + 16 <= kc; k += 16) _mm512_storeu_ps(t + k, _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(s + k))));
            for (; k < kc; k++) t[k] = f16_f32(s[k]);
        }
        rows[r] = t;
    }
    int k = 0;
    for (; k + 16 <= kc; k += 16) transpose16(rows, k, dst + k * MR, MR, (__mmask16)((1u << MR) - 1));
    for (; k < kc; k++)
        for (int r = 0; r < MR; r++) dst[k * MR + r] = rows[r][k];
}

T512 static void pack_a_bf16_512(const glide_gemm_desc *d, ptrdiff_t m, int mr, ptrdiff_t k0, int kc, uint32_t *dst) {
    const float *rows[16];             // dword p of row r = bf16 pair (2p, 2p + 1), moved as a float's bits
    for (int r = 0; r < 16; r++)
        rows[r] = (r >= mr || r >= MR) ? zero_row : (const float *)((const uint16_t *)d->w + (m + r) * d->ldw + k0);
    int kh = kc / 2, p = 0;
    for (; p + 16 <= kh; p += 16) transpose16(rows, p, (float *)dst + p * MR, MR, (__mmask16)((1u << MR) - 1));
    for (int r = 0; r < MR; r++) {
        const uint16_t *s = r < mr ? (const uint16_t *)d->w + (m + r) * d->ldw + k0 : NULL;
        for (int q = p; q < kh; q++) { uint32_t v = 0; if (s) memcpy(&v, s + 2 * q, 4); dst[q * MR + r] = v; }
        if (kc & 1) dst[kh * MR + r] = s ? s[kc - 1] : 0;
    }
}

T512 static void unstage_512(const glide_gemm_desc *d, const float *stage, ptrdiff_t m0, ptrdiff_t mm, ptrdiff_t n0,
                             ptrdiff_t nn) {
    ptrdiff_t m16 = d->y_rs == 1 ? mm & ~(ptrdiff_t)15 : 0, n16 = nn & ~(ptrdiff_t)15;
    float t[16 * 16] __attribute__((aligned(64)));
    for (ptrdiff_t m = 0; m < m16; m += 16) {
        const float *rows[16];
        for (int i = 0; i < 16; i++) rows[i] = stage + (m + i) * nn;
        for (ptrdiff_t j0 = 0; j0 < n16; j0 += 16) {
            transpose16(rows, (int)j0, t, 16, (__mmask16)0xffff);     // t[j * 16 + i] = stage[m + i][j0 + j]
            for (int j = 0; j < 16; j++) {
                float *y = d->y + (n0 + j0 + j) * d->y_cs + m0 + m;
                __m512 v = _mm512_load_ps(t + j * 16);
                _mm512_storeu_ps(y, d->accumulate ? _mm512_add_ps(_mm512_loadu_ps(y), v) : v);
            }
        }
        for (ptrdiff_t j = n16; j < nn; j++) {
            float *y = d->y + (n0 + j) * d->y_cs + m0 + m;
            for (int i = 0; i < 16; i++) y[i] = d->accumulate ? y[i] + stage[(m + i) * nn + j] : stage[(m + i) * nn + j];
        }
    }
    for (ptrdiff_t j = 0; j < nn; j++) {
        float *y = d->y + (n0 + j) * d->y_cs + m0 * d->y_rs;
        if (d->accumulate) for (ptrdiff_t m = m16; m < mm; m++) y[m * d->y_rs] += stage[m * nn + j];
        else for (ptrdiff_t m = m16; m < mm; m++) y[m * d->y_rs] = stage[m * nn + j];
    }
}

T512 static void pack_b_f32_512(const glide_gemm_desc *d, ptrdiff_t k0, int kc, ptrdiff_t n, int nr, float *dst) {
    if (d->src_kind != GLIDE_SRC_STRIDED || d->x_rs != 1 || d->x_cs == 1) { pack_b_f32(d, k0, kc, n, nr, dst); return; }
    const float *x = d->x + k0 + n * d->x_cs;     // column j: x + j * x_cs, contiguous along k
    for (int s0 = 0; s0 < NR; s0 += 16) {
        const float *cols[16];
        for (int i = 0; i < 16; i++) cols[i] = s0 + i < nr ? x + (s0 + i) * d->x_cs : zero_row;
        int k = 0;
        for (; k + 16 <= kc; k += 16) transpose16(cols, k, dst + s0 + k * NR, NR, (__mmask16)0xffff);
        for (; k < kc; k++)
            for (int i = 0; i < 16; i++) dst[k * NR + s0 + i] = cols[i][k];
    }
}

#define NV (NR / 16)

// MR x NR f32 tile: a[k * MR + r] (broadcast), b[k * NR + j] (NV zmm).
T512 static inline void kernel_f32_512(int kc, const void *av, const void *bv, float *tile) {
    const float *a = av, *b = bv;
    __m512 c[MR][NV];
#pragma clang loop unroll(full)
    for (int i = 0; i < MR; i++)
#pragma clang loop unroll(full)
        for (int v = 0; v < NV; v++) c[i][v] = _mm512_setzero_ps();
    for (int k = 0; k < kc; k++) {
        __m512 bk[NV];
#pragma clang loop unroll(full)
        for (int v = 0; v < NV; v++) bk[v] = _mm512_load_ps(b + 16 * v);
#pragma clang loop unroll(full)
        for (int i = 0; i < MR; i++) {
            __m512 ai = _mm512_set1_ps(a[i]);
#pragma clang loop unroll(full)
            for (int v = 0; v < NV; v++) c[i][v] = _mm512_fmadd_ps(ai, bk[v], c[i][v]);
        }
        a += MR; b += NR;
    }
#pragma clang loop unroll(full)
    for (int i = 0; i < MR; i++)
#pragma clang loop unroll(full)
        for (int v = 0; v < NV; v++) _mm512_store_ps(tile + i * NR + 16 * v, c[i][v]);
}

// MR x NR bf16 tile: a[p * MR + r] (dword = 2 bf16 along K, broadcast), b[p * NR + j] (NV zmm of 16 dwords).
T512BF static inline void kernel_bf16_512(int kp, const void *av, const void *bv, float *tile) {
    const uint32_t *a = av, *b = bv;
    __m512 c[MR][NV];
#pragma clang loop unroll(full)
    for (int i = 0; i < MR; i++)
#pragma clang loop unroll(full)
        for (int v = 0; v < NV; v++) c[i][v] = _mm512_setzero_ps();
    for (int p = 0; p < kp; p++) {
        __m512bh bk[NV];
#pragma clang loop unroll(full)
        for (int v = 0; v < NV; v++) bk[v] = (__m512bh)_mm512_load_si512((const void *)(b + 16 * v));
#pragma clang loop unroll(full)
        for (int i = 0; i < MR; i++) {
            __m512bh ai = (__m512bh)_mm512_set1_epi32((int)a[i]);
#pragma clang loop unroll(full)
            for (int v = 0; v < NV; v++) c[i][v] = _mm512_dpbf16_ps(c[i][v], ai, bk[v]);
        }
        a += MR; b += NR;
    }
#pragma clang loop unroll(full)
    for (int i = 0; i < MR; i++)
#pragma clang loop unroll(full)
        for (int v = 0; v < NV; v++) _mm512_store_ps(tile + i * NR + 16 * v, c[i][v]);
}

T512 int glide_gemm_avx512(const glide_gemm_desc *d, ptrdiff_t m0, ptrdiff_t m1, ptrdiff_t n0, ptrdiff_t n1) {
    if (d->w_dtype == GLIDE_W_INT8) return -2;
    if (m1 <= m0 || n1 <= n0) return 0;
    if (d->y_cs != 1 && d->src_kind == GLIDE_SRC_STRIDED && d->K > 0)
        return staged(d, m0, m1, n0, n1, glide_gemm_avx512);
    return run(d, m0, m1, n0, n1, 0, kernel_f32_512, 1);
}

T512BF int glide_gemm_avx512_bf16(const glide_gemm_desc *d, ptrdiff_t m0, ptrdiff_t m1, ptrdiff_t n0, ptrdiff_t n1) {
    if (d->w_dtype != GLIDE_W_BF16) return -2;
    if (m1 <= m0 || n1 <= n0) return 0;
    if (d->y_cs != 1 && d->src_kind == GLIDE_SRC_STRIDED && d->K > 0)
        return staged(d, m0, m1, n0, n1, glide_gemm_avx512_bf16);
    return run(d, m0, m1, n0, n1, 1, kernel_bf16_512, 1);
}

// ---------------------------------------------------------------- peak probes

#define CHAINS(X) X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7) X(8) X(9) X(10) X(11) \
                  X(12) X(13) X(14) X(15) X(16) X(17) X(18) X(19) X(20) X(21) X(22) X(23)

T512 float glide_fma512_peak_probe(long iterations) {
#define DECL(i) __m512 c##i = _mm512_set1_ps(0.f);
    CHAINS(DECL)
#undef DECL
    __m512 a = _mm512_set1_ps(0.999999f), b = _mm512_set1_ps(1e-7f);
    for (long it = 0; it < iterations; it++) {
#define STEP(i) c##i = _mm512_fmadd_ps(c##i, a, b);
        CHAINS(STEP)
#undef STEP
        __asm__ volatile("" : "+v"(c0), "+v"(c1), "+v"(c2), "+v"(c3), "+v"(c4), "+v"(c5));
    }
    __m512 s = _mm512_setzero_ps();
#define SUM(i) s = _mm512_add_ps(s, c##i);
    CHAINS(SUM)
#undef SUM
    return _mm512_reduce_add_ps(s);
}

T512BF float glide_bf16_peak_probe(long iterations) {
#define DECL(i) __m512 c##i = _mm512_set1_ps(0.f);
    CHAINS(DECL)
#undef DECL
    __m512bh a = (__m512bh)_mm512_set1_epi32(0x3f803f80), b = (__m512bh)_mm512_set1_epi32(0x33d633d6);
    for (long it = 0; it < iterations; it++) {
#define STEP(i) c##i = _mm512_dpbf16_ps(c##i, a, b);
        CHAINS(STEP)
#undef STEP
        __asm__ volatile("" : "+v"(c0), "+v"(c1), "+v"(c2), "+v"(c3), "+v"(c4), "+v"(c5));
    }
    __m512 s = _mm512_setzero_ps();
#define SUM(i) s = _mm512_add_ps(s, c##i);
    CHAINS(SUM)
#undef SUM
    return _mm512_reduce_add_ps(s);
}
#else
static void pack_a_f32_512(const glide_gemm_desc *d, ptrdiff_t m, int mr, ptrdiff_t k0, int kc, float *dst,
                           float *tmp) {
    (void)tmp; pack_a_f32(d, m, mr, k0, kc, dst);
}
static void pack_a_bf16_512(const glide_gemm_desc *d, ptrdiff_t m, int mr, ptrdiff_t k0, int kc, uint32_t *dst) {
    pack_a_bf16(d, m, mr, k0, kc, dst);
}
static void pack_b_f32_512(const glide_gemm_desc *d, ptrdiff_t k0, int kc, ptrdiff_t n, int nr, float *dst) {
    pack_b_f32(d, k0, kc, n, nr, dst);
}
static void unstage_512(const glide_gemm_desc *d, const float *stage, ptrdiff_t m0, ptrdiff_t mm, ptrdiff_t n0,
                        ptrdiff_t nn) {
    (void)d; (void)stage; (void)m0; (void)mm; (void)n0; (void)nn;
}
int glide_gemm_avx512(const glide_gemm_desc *d, ptrdiff_t m0, ptrdiff_t m1, ptrdiff_t n0, ptrdiff_t n1) {
    (void)d; (void)m0; (void)m1; (void)n0; (void)n1; return -2;
}
int glide_gemm_avx512_bf16(const glide_gemm_desc *d, ptrdiff_t m0, ptrdiff_t m1, ptrdiff_t n0, ptrdiff_t n1) {
    (void)d; (void)m0; (void)m1; (void)n0; (void)n1; return -2;
}
float glide_fma512_peak_probe(long iterations) { (void)iterations; return 0.f; }
float glide_bf16_peak_probe(long iterations) { (void)iterations; return 0.f; }
#endif
