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
#else
void glide_winograd_weights_avx512(const float *g, int C, float *u, ptrdiff_t xi_stride) {
    (void)g; (void)C; (void)u; (void)xi_stride;
}
#endif
