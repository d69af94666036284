// C micro-kernels with x86 intrinsics behind function-level target attributes.
// Every entry point here has a portable scalar twin in the Kernels module.
// Callers must check glide_cpu_has_avx2_fma() before calling any *_avx2 / *_f16c function.
#pragma once
#include <stdint.h>
#include <stddef.h>

/// 1 when this CPU supports AVX2, FMA and F16C (and the OS saves YMM state), else 0.
int glide_cpu_has_avx2_fma(void);

/// Bits of `glide_cpu_features()`: instruction sets this CPU has and the OS enabled (XCR0 state).
enum {
    GLIDE_CPU_AVX2_FMA = 1 << 0,     ///< AVX2 + FMA + F16C (same as glide_cpu_has_avx2_fma)
    GLIDE_CPU_AVX512F = 1 << 1,
    GLIDE_CPU_AVX512BW = 1 << 2,
    GLIDE_CPU_AVX512VL = 1 << 3,
    GLIDE_CPU_AVX512BF16 = 1 << 4,   ///< vdpbf16ps, vcvtne2ps2bf16
    GLIDE_CPU_AVX512VNNI = 1 << 5,   ///< vpdpbusd on zmm
    GLIDE_CPU_AVXVNNI = 1 << 6,      ///< VEX-encoded vpdpbusd on ymm
};
/// The GLIDE_CPU_* bits of this CPU (0 on non-x86).
unsigned glide_cpu_features(void);

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

/// Winograd F(2x2, 3x3) input transform (3x3 convolution, stride 1, padding 1) of channels [c0, c1) of one
/// image `x[C, H, W]`, for the tile rows [ty0, ty1) (tiles are 2x2 outputs, `(W + 1) / 2` per row):
/// `v[xi * xi_stride + c * ldv + t] = (B^T d B)[xi / 4][xi % 4]` for the 4x4 patch d of tile t, where
/// t = (ty - ty0) * tiles_per_row + tx. Pixels outside the image are zero.
void glide_winograd_input_avx2(const float *x, int H, int W, int c0, int c1, int ty0, int ty1,
                               float *v, ptrdiff_t ldv, ptrdiff_t xi_stride);
/// Winograd F(2x2, 3x3) output transform of output channels [o0, o1): reads the 16 products
/// `m[xi * xi_stride + o * ldm + t]` of the tile rows [ty0, ty1) and writes `y[o, OH, OW]` (+ bias[o];
/// added to y when `accumulate`), rows and columns beyond OH/OW dropped.
void glide_winograd_output_avx2(const float *m, ptrdiff_t ldm, ptrdiff_t xi_stride, int o0, int o1,
                                int OH, int OW, int ty0, int ty1, const float *bias, float *y, int accumulate);
/// Winograd F(2x2, 3x3) weight transform `U = G g G^T` of one output channel: `g[C][3][3]` (f32) ->
/// `u[xi * xi_stride + c]` for the 16 positions xi.
void glide_winograd_weights_avx2(const float *g, int C, float *u, ptrdiff_t xi_stride);

// ---------------------------------------------------------------- AVX-512 GEMM (gemm_avx512.c)

/// Register-tile sizes of the AVX-512 GEMMs (f32 and bf16 share them).
enum { GLIDE_GEMM512_MR = 14, GLIDE_GEMM512_NR = 32 };

/// Like glide_gemm_avx2 with AVX-512F f32 FMAs on a 14x32 register tile (28 zmm accumulators); f16/bf16
/// weights widened to f32 while packing. int8 weights are not handled (returns -2). Caller checks AVX-512F/BW/VL.
int glide_gemm_avx512(const glide_gemm_desc *d, ptrdiff_t m0, ptrdiff_t m1, ptrdiff_t n0, ptrdiff_t n1);
/// bf16 weights (w_dtype GLIDE_W_BF16 only, else returns -2) x activations rounded to bf16 (RNE) while
/// packing, `vdpbf16ps` with f32 accumulation. Caller checks AVX512_BF16 (and F/BW/VL).
int glide_gemm_avx512_bf16(const glide_gemm_desc *d, ptrdiff_t m0, ptrdiff_t m1, ptrdiff_t n0, ptrdiff_t n1);
/// Portable twin of glide_gemm_avx512_bf16: the same packing, blocking and store code, with the
/// micro-kernel replaced by a scalar emulation of `vdpbf16ps` (per pair: acc += a_odd*b_odd, then
/// acc += a_even*b_even, each an f32 FMA with RNE, bf16 denormal inputs as zero, denormal results flushed).
/// Runs on every CPU; bit-identical to the intrinsic path on CPUs that implement the instruction as Intel's SDM.
int glide_gemm_bf16_emulated(const glide_gemm_desc *d, ptrdiff_t m0, ptrdiff_t m1, ptrdiff_t n0, ptrdiff_t n1);
/// AVX-512F FMA throughput probe: `iterations` x 24 independent 16-wide FMAs (FLOPs = it * 24 * 32).
float glide_fma512_peak_probe(long iterations);
/// vdpbf16ps throughput probe: `iterations` x 24 independent 512-bit vdpbf16ps (FLOPs = it * 24 * 64).
float glide_bf16_peak_probe(long iterations);
/// glide_winograd_weights_avx2 with AVX-512F, 16 channels per step (bit-identical results). Caller checks AVX-512F.
void glide_winograd_weights_avx512(const float *g, int C, float *u, ptrdiff_t xi_stride);
