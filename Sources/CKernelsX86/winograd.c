// Winograd F(2x2, 3x3) transforms (Lavin & Gray 2015) for 3x3 stride-1 padding-1 convolutions.
// The 16 products in between are ordinary GEMMs (see Kernels/Winograd.swift). Plain loops over the tiles
// of a row, written so that the compiler vectorizes them for AVX2.
#include "CKernelsX86.h"
#include "include/glide_scratch.h"
#if defined(__x86_64__)
#include <stdlib.h>
#include <string.h>
#define TGT __attribute__((target("avx2,fma,f16c")))

TGT void glide_winograd_input_avx2(const float *x, int H, int W, int c0, int c1, int ty0, int ty1,
                                   float *v, ptrdiff_t ldv, ptrdiff_t xi_stride) {
    const int tw = (W + 1) / 2;
    const int plen = 2 * tw + 2;       // padded row: p[i] = x[i - 1], zero outside [1, W]
    const size_t mark = glide_scratch_mark();
    float *buf = glide_scratch_alloc(sizeof(float) * (size_t)(4 * plen + 16 * tw));
    if (!buf) abort();
    float *p[4] = {buf, buf + plen, buf + 2 * plen, buf + 3 * plen};
    float *a = buf + 4 * plen;         // a[(r * 4 + j) * tw + tx]: rows of the patch transformed along x
    for (int c = c0; c < c1; c++) {
        const float *plane = x + (size_t)c * H * W;
        for (int ty = ty0; ty < ty1; ty++) {
            for (int r = 0; r < 4; r++) {
                int iy = 2 * ty - 1 + r;
                float *pr = p[r];
                if (iy < 0 || iy >= H) { memset(pr, 0, sizeof(float) * plen); continue; }
                pr[0] = 0.f;
                memcpy(pr + 1, plane + (size_t)iy * W, sizeof(float) * W);
                for (int i = W + 1; i < plen; i++) pr[i] = 0.f;
            }
            for (int r = 0; r < 4; r++) {
                const float *restrict pr = p[r];
                float *restrict a0 = a + (r * 4 + 0) * tw, *restrict a1 = a + (r * 4 + 1) * tw;
                float *restrict a2 = a + (r * 4 + 2) * tw, *restrict a3 = a + (r * 4 + 3) * tw;
                for (int tx = 0; tx < tw; tx++) {
                    float d0 = pr[2 * tx], d1 = pr[2 * tx + 1], d2 = pr[2 * tx + 2], d3 = pr[2 * tx + 3];
                    a0[tx] = d0 - d2; a1[tx] = d1 + d2; a2[tx] = d2 - d1; a3[tx] = d1 - d3;
                }
            }
            float *vt = v + (size_t)c * ldv + (size_t)(ty - ty0) * tw;
            for (int j = 0; j < 4; j++) {
                const float *restrict r0 = a + (0 * 4 + j) * tw, *restrict r1 = a + (1 * 4 + j) * tw;
                const float *restrict r2 = a + (2 * 4 + j) * tw, *restrict r3 = a + (3 * 4 + j) * tw;
                float *restrict v0 = vt + (0 * 4 + j) * xi_stride, *restrict v1 = vt + (1 * 4 + j) * xi_stride;
                float *restrict v2 = vt + (2 * 4 + j) * xi_stride, *restrict v3 = vt + (3 * 4 + j) * xi_stride;
                for (int tx = 0; tx < tw; tx++) {
                    v0[tx] = r0[tx] - r2[tx]; v1[tx] = r1[tx] + r2[tx];
                    v2[tx] = r2[tx] - r1[tx]; v3[tx] = r1[tx] - r3[tx];
                }
            }
        }
    }
    glide_scratch_release(mark);
}

TGT void glide_winograd_output_avx2(const float *m, ptrdiff_t ldm, ptrdiff_t xi_stride, int o0, int o1,
                                    int OH, int OW, int ty0, int ty1, const float *bias, float *y, int accumulate) {
    const int tw = (OW + 1) / 2;
    const size_t mark = glide_scratch_mark();
    float *buf = glide_scratch_alloc(sizeof(float) * (size_t)(8 * tw + 4 * tw));
    if (!buf) abort();
    float *b = buf;                    // b[(i * 2 + jj) * tw + tx]: patch rows reduced along x
    float *row = buf + 8 * tw;         // two interleaved output rows of 2 * tw
    for (int o = o0; o < o1; o++) {
        const float bo = bias ? bias[o] : 0.f;
        float *plane = y + (size_t)o * OH * OW;
        for (int ty = ty0; ty < ty1; ty++) {
            const float *mt = m + (size_t)o * ldm + (size_t)(ty - ty0) * tw;
            for (int i = 0; i < 4; i++) {
                const float *restrict m0 = mt + (i * 4 + 0) * xi_stride, *restrict m1 = mt + (i * 4 + 1) * xi_stride;
                const float *restrict m2 = mt + (i * 4 + 2) * xi_stride, *restrict m3 = mt + (i * 4 + 3) * xi_stride;
                float *restrict b0 = b + (i * 2 + 0) * tw, *restrict b1 = b + (i * 2 + 1) * tw;
                for (int tx = 0; tx < tw; tx++) {
                    b0[tx] = m0[tx] + m1[tx] + m2[tx];
                    b1[tx] = m1[tx] - m2[tx] - m3[tx];
                }
            }
            float *restrict y0 = row, *restrict y1 = row + 2 * tw;
            for (int jj = 0; jj < 2; jj++) {
                const float *restrict s0 = b + (0 * 2 + jj) * tw, *restrict s1 = b + (1 * 2 + jj) * tw;
                const float *restrict s2 = b + (2 * 2 + jj) * tw, *restrict s3 = b + (3 * 2 + jj) * tw;
                for (int tx = 0; tx < tw; tx++) {
                    y0[2 * tx + jj] = s0[tx] + s1[tx] + s2[tx] + bo;
                    y1[2 * tx + jj] = s1[tx] - s2[tx] - s3[tx] + bo;
                }
            }
            for (int i = 0; i < 2; i++) {
                int oy = 2 * ty + i;
                if (oy >= OH) break;
                float *restrict dst = plane + (size_t)oy * OW;
                const float *restrict src = i == 0 ? y0 : y1;
                if (accumulate) for (int ox = 0; ox < OW; ox++) dst[ox] += src[ox];
                else memcpy(dst, src, sizeof(float) * OW);
            }
        }
    }
    glide_scratch_release(mark);
}
TGT void glide_winograd_weights_avx2(const float *g, int C, float *u, ptrdiff_t xi_stride) {
    for (int c = 0; c < C; c++) {
        const float *k = g + (size_t)c * 9;
        float t[4][3];                 // G g
        for (int x = 0; x < 3; x++) {
            float g0 = k[x], g1 = k[3 + x], g2 = k[6 + x];
            t[0][x] = g0; t[1][x] = 0.5f * (g0 + g1 + g2); t[2][x] = 0.5f * (g0 - g1 + g2); t[3][x] = g2;
        }
        for (int i = 0; i < 4; i++) {
            float t0 = t[i][0], t1 = t[i][1], t2 = t[i][2];
            u[(i * 4 + 0) * xi_stride + c] = t0;
            u[(i * 4 + 1) * xi_stride + c] = 0.5f * (t0 + t1 + t2);
            u[(i * 4 + 2) * xi_stride + c] = 0.5f * (t0 - t1 + t2);
            u[(i * 4 + 3) * xi_stride + c] = t2;
        }
    }
}
#else
void glide_winograd_weights_avx2(const float *g, int C, float *u, ptrdiff_t xi_stride) {
    (void)g; (void)C; (void)u; (void)xi_stride;
}
void glide_winograd_input_avx2(const float *x, int H, int W, int c0, int c1, int ty0, int ty1,
                               float *v, ptrdiff_t ldv, ptrdiff_t xi_stride) {
    (void)x; (void)H; (void)W; (void)c0; (void)c1; (void)ty0; (void)ty1; (void)v; (void)ldv; (void)xi_stride;
}
void glide_winograd_output_avx2(const float *m, ptrdiff_t ldm, ptrdiff_t xi_stride, int o0, int o1,
                                int OH, int OW, int ty0, int ty1, const float *bias, float *y, int accumulate) {
    (void)m; (void)ldm; (void)xi_stride; (void)o0; (void)o1; (void)OH; (void)OW; (void)ty0; (void)ty1;
    (void)bias; (void)y; (void)accumulate;
}
#endif
