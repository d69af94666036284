// Winograd F(2x2, 3x3) weight transform U = G g G^T with AVX-512F, 16 input channels per step (the same
// float operations in the same order as glide_winograd_weights_avx2, so the results are bit-identical).
#include "CKernelsX86.h"
#if defined(__x86_64__)
#include <immintrin.h>
#define T512 __attribute__((target("avx512f,avx512bw,avx512vl,avx2,fma,f16c")))

T512 void glide_winograd_weights_avx512(const float *g, int C, float *u, ptrdiff_t xi_stride) {
    const __m512 half = _mm512_set1_ps(0.5f);
    const __m512i idx = _mm512_mullo_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
                                           _mm512_set1_epi32(9));
    int c = 0;
    for (; c + 16 <= C; c += 16) {
        const float *k = g + (size_t)c * 9;
        __m512 t[4][3];                // G g for 16 channels
        for (int x = 0; x < 3; x++) {
            __m512 g0 = _mm512_i32gather_ps(idx, k + x, 4);
            __m512 g1 = _mm512_i32gather_ps(idx, k + 3 + x, 4);
            __m512 g2 = _mm512_i32gather_ps(idx, k + 6 + x, 4);
            t[0][x] = g0;
            t[1][x] = _mm512_mul_ps(half, _mm512_add_ps(_mm512_add_ps(g0, g1), g2));
            t[2][x] = _mm512_mul_ps(half, _mm512_add_ps(_mm512_sub_ps(g0, g1), g2));
            t[3][x] = g2;
        }
        for (int i = 0; i < 4; i++) {
            __m512 t0 = t[i][0], t1 = t[i][1], t2 = t[i][2];
            _mm512_storeu_ps(u + (i * 4 + 0) * xi_stride + c, t0);
            _mm512_storeu_ps(u + (i * 4 + 1) * xi_stride + c, _mm512_mul_ps(half, _mm512_add_ps(_mm512_add_ps(t0, t1), t2)));
            _mm512_storeu_ps(u + (i * 4 + 2) * xi_stride + c, _mm512_mul_ps(half, _mm512_add_ps(_mm512_sub_ps(t0, t1), t2)));
            _mm512_storeu_ps(u + (i * 4 + 3) * xi_stride + c, t2);
        }
    }
    if (c < C) glide_winograd_weights_avx2(g + (size_t)c * 9, C - c, u + c, xi_stride);
}
// Output transform Y = A^T m A (+ bias, optionally added to y) on zmm, 16 tiles per step: the 16 planes read once,
// the two output rows of the tiles interleaved in registers and stored (or accumulated) straight into the NCHW
// planes. Same float operations in the same order as glide_winograd_output_avx2 (bit-identical).
T512 void glide_winograd_output_avx512(const float *m, ptrdiff_t ldm, ptrdiff_t xi_stride, int o0, int o1,
                                       int OH, int OW, int ty0, int ty1, const float *bias, float *y, int accumulate) {
    const int tw = (OW + 1) / 2;
    const __m512i ilo = _mm512_setr_epi32(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
    const __m512i ihi = _mm512_setr_epi32(8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31);
    for (int o = o0; o < o1; o++) {
        const __m512 bo = _mm512_set1_ps(bias ? bias[o] : 0.f);
        float *plane = y + (size_t)o * OH * OW;
        for (int ty = ty0; ty < ty1; ty++) {
            const float *mt = m + (size_t)o * ldm + (size_t)(ty - ty0) * tw;
            for (int tx0 = 0; tx0 < tw; tx0 += 16) {
                const int n = tw - tx0 < 16 ? tw - tx0 : 16;
                const __mmask16 lm = (__mmask16)(((uint32_t)1 << n) - 1);
                __m512 b[4][2];
                for (int i = 0; i < 4; i++) {
                    const float *mi = mt + tx0 + (i * 4) * xi_stride;
                    __m512 q0 = _mm512_maskz_loadu_ps(lm, mi), q1 = _mm512_maskz_loadu_ps(lm, mi + xi_stride);
                    __m512 q2 = _mm512_maskz_loadu_ps(lm, mi + 2 * xi_stride), q3 = _mm512_maskz_loadu_ps(lm, mi + 3 * xi_stride);
                    b[i][0] = _mm512_add_ps(_mm512_add_ps(q0, q1), q2);
                    b[i][1] = _mm512_sub_ps(_mm512_sub_ps(q1, q2), q3);
                }
                __m512 r0[2], r1[2];
                for (int jj = 0; jj < 2; jj++) {
                    r0[jj] = _mm512_add_ps(_mm512_add_ps(_mm512_add_ps(b[0][jj], b[1][jj]), b[2][jj]), bo);
                    r1[jj] = _mm512_add_ps(_mm512_sub_ps(_mm512_sub_ps(b[1][jj], b[2][jj]), b[3][jj]), bo);
                }
                // output columns 2 tx0 .. 2 tx0 + 31 of rows 2ty and 2ty + 1
                const int ox0 = 2 * tx0, left = OW - ox0;
                const __mmask16 s0 = (__mmask16)(left >= 16 ? 0xffff : ((uint32_t)1 << left) - 1);
                const __mmask16 s1 = (__mmask16)(left >= 32 ? 0xffff : left <= 16 ? 0 : ((uint32_t)1 << (left - 16)) - 1);
                for (int i = 0; i < 2; i++) {
                    int oy = 2 * ty + i;
                    if (oy >= OH) break;
                    const __m512 *rr = i == 0 ? r0 : r1;
                    __m512 lo = _mm512_permutex2var_ps(rr[0], ilo, rr[1]), hi = _mm512_permutex2var_ps(rr[0], ihi, rr[1]);
                    float *dst = plane + (size_t)oy * OW + ox0;
                    if (accumulate) {
                        lo = _mm512_add_ps(_mm512_maskz_loadu_ps(s0, dst), lo);
                        hi = _mm512_add_ps(_mm512_maskz_loadu_ps(s1, dst + 16), hi);
                    }
                    _mm512_mask_storeu_ps(dst, s0, lo);
                    _mm512_mask_storeu_ps(dst + 16, s1, hi);
                }
            }
        }
    }
}
#else
void glide_winograd_output_avx512(const float *m, ptrdiff_t ldm, ptrdiff_t xi_stride, int o0, int o1,
                                  int OH, int OW, int ty0, int ty1, const float *bias, float *y, int accumulate) {
    glide_winograd_output_avx2(m, ldm, xi_stride, o0, o1, OH, OW, ty0, ty1, bias, y, accumulate);
}
void glide_winograd_weights_avx512(const float *g, int C, float *u, ptrdiff_t xi_stride) {
    (void)g; (void)C; (void)u; (void)xi_stride;
}
#endif
