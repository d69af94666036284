// C micro-kernels with x86 intrinsics behind function-level target attributes.
// Every entry point here has a portable scalar twin in the Kernels module.
// Callers must check glide_cpu_has_avx2_fma() before calling any *_avx2 / *_f16c function.
#pragma once
#include <stdint.h>
#include <stddef.h>

/// 1 when this CPU supports AVX2, FMA and F16C (and the OS saves YMM state), else 0.
int glide_cpu_has_avx2_fma(void);

/// f32 -> f16 bits (round to nearest even) with F16C.
void glide_f32_to_f16_f16c(const float *src, uint16_t *dst, ptrdiff_t count);
/// f16 bits -> f32 with F16C.
void glide_f16_to_f32_f16c(const uint16_t *src, float *dst, ptrdiff_t count);

/// Weight element types of `glide_gemm_desc.w_dtype`.
enum { GLIDE_W_F32 = 0, GLIDE_W_F16 = 1, GLIDE_W_BF16 = 2, GLIDE_W_INT8 = 3 };
/// Activation sources of `glide_gemm_desc.src_kind`.
enum { GLIDE_SRC_STRIDED = 0, GLIDE_SRC_CONV = 1 };

/// One GEMM `y[m, n] (+)= sum_k W[m, k] * X[k, n] + bias[m]`, m < M, n < N, k < K.
typedef struct glide_gemm_desc {
    ptrdiff_t M, N, K;
    int w_dtype;                 // GLIDE_W_*
    const void *w;               // W[m, k] at w[m * ldw + k]
    ptrdiff_t ldw;
    const float *w_scales;       // int8 only: [M]
    int src_kind;                // GLIDE_SRC_*
    const float *x;              // strided: X[k, n] = x[k * x_rs + n * x_cs]; conv: the image [C, H, W]
    ptrdiff_t x_rs, x_cs;
    int conv_c, conv_h, conv_w, conv_k, conv_stride, conv_pad, conv_ow;  // conv: K = C*k*k, n = oy*ow + ox
    float *y;                    // y[m * y_rs + n * y_cs]
    ptrdiff_t y_rs, y_cs;
    const float *bias;           // [M] or NULL
    int accumulate;              // 1: add into y
    int act_qmax;                // int8 weights: activations quantized to |q| <= act_qmax (127 .. 32767)
} glide_gemm_desc;

/// Computes the output block m in [m0, m1), n in [n0, n1) of `d` with AVX2/FMA (int8: AVX2 vpmaddwd).
/// Disjoint blocks may run concurrently; each element's value does not depend on the block bounds.
/// Returns 0, or -1 when scratch memory could not be allocated.
int glide_gemm_avx2(const glide_gemm_desc *d, ptrdiff_t m0, ptrdiff_t m1, ptrdiff_t n0, ptrdiff_t n1);

/// Register-tile sizes of the AVX2 GEMM (for work partitioning).
enum { GLIDE_GEMM_MR = 6, GLIDE_GEMM_NR = 16, GLIDE_GEMM_KC = 256 };

/// FMA throughput probe: runs `iterations` x 12 independent 8-wide FMAs; returns a value to defeat DCE.
float glide_fma_peak_probe(long iterations);

/// In-place softmax of one contiguous row (max-subtracted, f32 sum), AVX2 exp (rel. error < 2e-7).
void glide_softmax_row_avx2(float *x, ptrdiff_t n);
/// y = x * sigmoid(x), in place allowed.
void glide_silu_avx2(const float *x, float *y, ptrdiff_t n);
/// y = 0.5 x (1 + erf(x / sqrt 2)), erf with |error| < 2e-7; in place allowed.
void glide_gelu_avx2(const float *x, float *y, ptrdiff_t n);
/// y = x * a + b, then SiLU when `silu` != 0; in place allowed.
void glide_affine_silu_avx2(const float *x, float *y, ptrdiff_t n, float a, float b, int silu);
/// Sum and sum of squares of (x - shift) in double precision (for mean/variance).
void glide_sum_sq_avx2(const float *x, ptrdiff_t n, double shift, double *sum, double *sumsq);
