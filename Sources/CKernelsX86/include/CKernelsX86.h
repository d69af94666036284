// C micro-kernels with x86 intrinsics behind function-level target attributes.
// Every entry point here has a portable scalar twin in the Kernels module.
// Callers must check glide_cpu_has_avx2_fma() before calling any *_avx2 / *_f16c function.
#pragma once
#include <stdint.h>
#include <stddef.h>
#include "glide_scratch.h"

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
    // int8 on vpdpbusd only, optional (NULL: packed per call): the weight panels of the whole matrix packed
    // once by glide_i8_prepack (its layout's MR); row m of this desc is row w_packed_row0 + m of that matrix.
    const uint32_t *w_packed;
    const int32_t *w_packed_sums;
    ptrdiff_t w_packed_panels, w_packed_row0;
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
/// The unnormalized softmax of one row in place: x = exp(x - max x); returns the sum (softmax = x / sum).
float glide_softmax_exp_row_avx2(float *x, ptrdiff_t n);
/// glide_softmax_exp_row_avx2 on zmm: the same values and the same returned sum, bit for bit. AVX-512F+BW (caller
/// checked).
float glide_softmax_exp_row_avx512(float *x, ptrdiff_t n);
/// dst[i] = src[i], i < n, with non-temporal stores (copies much larger than the last-level cache; no overlap). AVX2
/// (caller checked).
void glide_copy_stream(const float *src, float *dst, ptrdiff_t n);
/// y = x * sigmoid(x), in place allowed.
void glide_silu_avx2(const float *x, float *y, ptrdiff_t n);
/// y = 0.5 x (1 + erf(x / sqrt 2)), erf with |error| < 2e-7; in place allowed.
void glide_gelu_avx2(const float *x, float *y, ptrdiff_t n);
/// y = x * a + b, then SiLU when `silu` != 0; in place allowed.
void glide_affine_silu_avx2(const float *x, float *y, ptrdiff_t n, float a, float b, int silu);
/// y = (x - mean) * rstd * gamma + beta (gamma/beta per element, NULL = 1 / 0); in place allowed.
void glide_normalize_affine_avx2(const float *x, float *y, ptrdiff_t n, float mean, float rstd,
                                 const float *gamma, const float *beta);
/// Sum and sum of squares of (x - shift) in double precision (for mean/variance).
void glide_sum_sq_avx2(const float *x, ptrdiff_t n, double shift, double *sum, double *sumsq);
/// glide_sum_sq_avx2 on zmm with four accumulator pairs (the same f64 sums in another order). AVX-512F
/// (caller checked).
void glide_sum_sq_avx512(const float *x, ptrdiff_t n, double shift, double *sum, double *sumsq);
/// glide_affine_silu_avx2 on zmm (SiLU's exp and reciprocal on zmm: within ~2 ulp of the AVX2 one). AVX-512F
/// (caller checked).
void glide_affine_silu_avx512(const float *x, float *y, ptrdiff_t n, float a, float b, int silu);

/// dst[j * dst_stride + i] = src[i * src_stride + j] * scale for i < rows, j < cols (8x8 register transposes,
/// the products rounded as the plain loop's). AVX2 (caller checked).
void glide_transpose_scale_avx2(const float *src, ptrdiff_t src_stride, int rows, int cols, float scale,
                                float *dst, ptrdiff_t dst_stride);

/// One output row of 2x2 average pooling: y[i] = (((r0[2i] + r0[2i+1]) + r1[2i]) + r1[2i+1]) / 4, i < ow
/// (the scalar loop's order, same bits). AVX2 (caller checked).
void glide_avgpool2x2_row_avx2(const float *r0, const float *r1, float *y, ptrdiff_t ow);
/// One row of nearest 2x upsampling: y[2i] = y[2i+1] = x[i], i < width. AVX2 (caller checked).
void glide_upsample2x_row_avx2(const float *x, float *y, ptrdiff_t width);

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

// ---------------------------------------------------------------- int8 x u8 GEMM with vpdpbusd
// (gemm_int8_vnni.c, cpu_vnni.c). int8 weights (desc.w_dtype == GLIDE_W_INT8) times activations quantized
// on the fly per column and 256-long K block: 8-bit (act_qmax <= 127, one vpdpbusd pass) or 16-bit
// (act_qmax > 127: q = 256 * hi + lo, two passes, the same integers as glide_gemm_avx2's int8 x int16).
// Same contract as glide_gemm_avx2; results are bit-identical between the three entry points and for any
// block partition. Return 0, or -1 (out of memory, or not int8 weights).

/// 1 when the CPU and OS support AVX512F/BW/VL + AVX512_VNNI (zmm state enabled), else 0.
int glide_cpu_has_avx512_vnni(void);
/// 1 when the CPU and OS support AVX2 + FMA + AVX-VNNI (the VEX-encoded ymm vpdpbusd), else 0.
int glide_cpu_has_avx_vnni(void);

/// Register tiles: the AVX512-VNNI kernel (8 rows x 32 columns) and the AVX-VNNI kernel (6 x 16).
/// Internal to the int8 GEMMs: `dst[g * 8 + r]` = the 4 bytes at `base + r * row_bytes + 4 g` for `g < groups`
/// (8-row weight panels of dword groups), with AVX-512 gathers.
typedef void (*glide_dword_pack8_fn)(const char *base, ptrdiff_t row_bytes, int groups, uint32_t *dst);
void glide_dword_pack8_avx512(const char *base, ptrdiff_t row_bytes, int groups, uint32_t *dst);
enum { GLIDE_I8_ZMM_MR = 8, GLIDE_I8_ZMM_NB = 32, GLIDE_I8_YMM_MR = 6, GLIDE_I8_YMM_NB = 16 };
/// Tile layouts of the portable emulation.
enum { GLIDE_I8_LAYOUT_ZMM = 0, GLIDE_I8_LAYOUT_YMM = 1 };

/// AVX512-VNNI path (caller checked glide_cpu_has_avx512_vnni()).
int glide_gemm_int8_avx512vnni(const glide_gemm_desc *d, ptrdiff_t m0, ptrdiff_t m1, ptrdiff_t n0, ptrdiff_t n1);
/// AVX-VNNI path (caller checked glide_cpu_has_avx_vnni()).
int glide_gemm_int8_avxvnni(const glide_gemm_desc *d, ptrdiff_t m0, ptrdiff_t m1, ptrdiff_t n0, ptrdiff_t n1);
/// Portable emulation of vpdpbusd through the same packing, quantization and blocking (`layout`:
/// GLIDE_I8_LAYOUT_*); runs on every CPU. The scalar twin the intrinsic paths are tested against bit-exactly.
int glide_gemm_int8_emulated(const glide_gemm_desc *d, ptrdiff_t m0, ptrdiff_t m1, ptrdiff_t n0, ptrdiff_t n1,
                             int layout);
/// Register-only throughput probes: `iterations` x 12 independent vpdpbusd (zmm: 64 MACs each, ymm: 32).
/// Weight panels packed once for the whole matrix (`glide_gemm_desc.w_packed`): the number of uint32 words of
/// the panels (`*words`) and of the int32 block row sums (`*sums`) of an M x K int8 matrix in `layout`.
void glide_i8_prepacked_size(ptrdiff_t M, ptrdiff_t K, int layout, ptrdiff_t *words, ptrdiff_t *sums);
/// Packs the panels [p0, p1) (MR rows each) of `d`'s int8 weights (M, K, w, ldw) for every 256-long K block:
/// the panel of block kb, panel p at `a + kb * 64 * MR * P + p * kq(kb) * MR` (P = ceil(M / MR), kq = groups of
/// 4 k in the block), its row sums at `sums + (kb * P + p) * MR`: the same bytes the GEMM packs per call.
void glide_i8_prepack(const glide_gemm_desc *d, int layout, ptrdiff_t p0, ptrdiff_t p1, uint32_t *a, int32_t *sums);
float glide_vnni512_peak_probe(long iterations);
float glide_avxvnni_peak_probe(long iterations);

// ---------------------------------------------------------------- int8 Winograd in integers (gemm_int8_avx2.c)
// The 16 products U[xi] x V[xi] of an int8-weight Winograd F(2x2, 3x3) convolution: exact int16 transformed
// weights times the f32 transformed input quantized per column and 256-long K block to |q| <= act_qmax.

/// Largest act_qmax for which 256 products of |4U| <= 1143 and |q| never overflow int32.
enum { GLIDE_WI16_QMAX = 7300 };
/// Register tiles: AVX2 vpmaddwd and AVX-VNNI vpdpwssd 6x16, AVX512-VNNI vpdpwssd 8x32 (layouts GLIDE_I8_LAYOUT_YMM / _ZMM).
enum { GLIDE_WI16_YMM_MR = 6, GLIDE_WI16_YMM_NB = 16, GLIDE_WI16_ZMM_MR = 8, GLIDE_WI16_ZMM_NB = 32 };

/// `y[m, n] = sum_k W[m, k] * X[k, n]` (no bias, overwrites y) with int16 weights, one f32 scale per row.
typedef struct glide_wi16_gemm_desc {
    ptrdiff_t M, N, K;
    const int16_t *w; ptrdiff_t ldw;    // W[m, k] = w[m * ldw + k]
    const float *w_scales;              // [M]
    const float *x; ptrdiff_t x_rs;     // X[k, n] = x[k * x_rs + n]
    float *y; ptrdiff_t y_rs;           // y[m * y_rs + n]
    int act_qmax;                       // 1 ... GLIDE_WI16_QMAX
    const uint32_t *w_packed;           // optional: the weights as glide_winograd_weights_i16_packed panels (w unused)
    // optional: the activations already quantized in panels (glide_winograd_input_i16_packed; x unused, n0 % NB == 0)
    const uint32_t *x_packed; const float *x_scales; ptrdiff_t x_panels;
} glide_wi16_gemm_desc;

/// Exact Winograd weight transform of one output channel of int8 weights `g[C][3][3]`:
/// `u[xi * xi_stride + c] = 4 U[xi]` with `U = G g G^T` (so the row scale is the int8 scale / 4).
void glide_winograd_weights_i16(const int8_t *g, int C, int16_t *u, ptrdiff_t xi_stride);
/// glide_winograd_weights_i16 with the kernels' [9][32] transposition on AVX512-VBMI byte permutes (same output).
/// Returns -1 (nothing written) when the CPU lacks AVX512-VBMI/BW.
int glide_winograd_weights_i16_vbmi(const int8_t *g, int C, int16_t *u, ptrdiff_t xi_stride);
/// Non-zero when the CPU has AVX512-VBMI and AVX512-BW (OS support of zmm state assumed where AVX-512F is used).
int glide_cpu_has_avx512_vbmi(void);
/// Whether glide_winograd_weights_i16_packed uses the VBMI transposition where the CPU has it (default on; tests).
void glide_winograd_weights_i16_allow_vbmi(int on);
/// uint32 words per position xi of `glide_winograd_weights_i16_packed` for O x C weights and MR-row panels.
ptrdiff_t glide_wi16_packed_words(int O, int C, int MR);
/// The weight transform of the output-channel panels [p0, p1) (MR channels each) of int8 weights `q[O][C][3][3]`
/// (row stride `ldq`), written straight in the GEMM's panel layout: position xi at `dst + xi * words`, K block kb,
/// panel p at `+ kb * 128 * MR * P + p * kp(kb) * MR` (P = ceil(O / MR), kp = int16 pairs in the block), the
/// same words the GEMM would pack from `glide_winograd_weights_i16`'s output (rows >= O and odd ends zero).
/// Returns 0, or -1 when its scratch could not be allocated. A GEMM given `w_packed` must start its row
/// range on a panel (m0 % MR == 0) unless `w` is also set.
int glide_winograd_weights_i16_packed(const int8_t *q, ptrdiff_t ldq, int O, int C, int MR, int p0, int p1,
                                      uint32_t *dst);
/// The input transform of a chunk of tile rows [ty0, ...) (`tiles` tiles of tw = (W + 1) / 2 per row, channels C of
/// the NCHW image `x`), quantized and written straight into the GEMM's activation panels of NB columns (no f32 V):
/// position xi at `dst + xi * glide_wi16_packed_words(tiles, C, NB)` (K block kb, panel p at
/// `+ kb * 128 * NB * P + p * kp(kb) * NB`, P = ceil(tiles / NB)) with its column scales at
/// `scales + (xi * nkb + kb) * P * NB + p * NB`: the same words and scales the GEMM's own packing makes from
/// glide_winograd_input_avx2's output. Panels [p0, p1). `avx512`: transform on zmm (caller checked AVX-512F/BW/VL),
/// else portable C (same bits). Returns 0, or -1 when its scratch could not be allocated.
int glide_winograd_input_i16_packed(const float *x, int H, int W, int C, int ty0, ptrdiff_t tiles, int NB, int qmax,
                                    ptrdiff_t p0, ptrdiff_t p1, uint32_t *dst, float *scales, int avx512);
/// The 16 products and the output transform of one chunk in one pass: per panel of NB tiles and MR output channels
/// the 16 positions' GEMM tiles are accumulated in an L1 buffer (the K blocks in order, the GEMM's float
/// operations) and transformed from there into y (NCHW, `OH x OW` planes, tile rows from ty0; + bias; added to y
/// when accumulate), so the products never go through memory. Same bits as the 16 GEMMs into planes followed by
/// glide_winograd_output_avx2.
typedef struct glide_wi16_fused_desc {
    ptrdiff_t M, K, tiles;               // output channels, input channels, tiles of the chunk
    const uint32_t *w_packed;            // glide_winograd_weights_i16_packed panels; position xi at + xi * w_words
    ptrdiff_t w_words;
    const float *w_scales;               // [M]
    const uint32_t *x_packed;            // glide_winograd_input_i16_packed panels; xi at + xi * x_words
    ptrdiff_t x_words;
    const float *x_scales;               // its scales
    int act_qmax, OH, OW, ty0, accumulate;
    const float *bias;                   // [M] or NULL
    float *y;                            // [M][OH][OW] of this batch item
} glide_wi16_fused_desc;
/// Tile panels [p0, p1) of `d`. `kernel`: GLIDE_WI16_KERNEL_* (caller checked the CPU has it). 0 or -1 (memory).
enum { GLIDE_WI16_KERNEL_EMULATED_YMM = 0, GLIDE_WI16_KERNEL_EMULATED_ZMM = 1, GLIDE_WI16_KERNEL_AVX2 = 2,
       GLIDE_WI16_KERNEL_AVXVNNI = 3, GLIDE_WI16_KERNEL_AVX512VNNI = 4 };
int glide_winograd_i16_gemm_output(const glide_wi16_fused_desc *d, ptrdiff_t p0, ptrdiff_t p1, int kernel);
/// Output block m in [m0, m1), n in [n0, n1): AVX2 vpmaddwd (caller checked glide_cpu_has_avx2_fma()).
int glide_gemm_wi16_avx2(const glide_wi16_gemm_desc *d, ptrdiff_t m0, ptrdiff_t m1, ptrdiff_t n0, ptrdiff_t n1);
/// The same with AVX-VNNI vpdpwssd on ymm (caller checked glide_cpu_has_avx_vnni()).
int glide_gemm_wi16_avxvnni(const glide_wi16_gemm_desc *d, ptrdiff_t m0, ptrdiff_t m1, ptrdiff_t n0, ptrdiff_t n1);
/// The same with AVX512-VNNI vpdpwssd (caller checked glide_cpu_has_avx512_vnni()).
int glide_gemm_wi16_avx512vnni(const glide_wi16_gemm_desc *d, ptrdiff_t m0, ptrdiff_t m1, ptrdiff_t n0, ptrdiff_t n1);
/// Whether the zmm int16 GEMMs (glide_gemm_wi16_avx512vnni, glide_wf42_gemm_output, glide_wf44_gemm_output) prefetch
/// the next weight tile spread over the current one (default on; same bits either way; tuning).
void glide_wi16_set_kernel_prefetch(int on);
/// Portable emulation through the same packing and quantization (`layout`: GLIDE_I8_LAYOUT_*).
int glide_gemm_wi16_emulated(const glide_wi16_gemm_desc *d, ptrdiff_t m0, ptrdiff_t m1, ptrdiff_t n0, ptrdiff_t n1,
                             int layout);
// ---------------------------------------------------------------- int8 Winograd F(4x2, 3x3) in integers (winograd_f42.c)
// 4 outputs along the width (F(4, 3)) x 2 along the height (F(2, 3)) per tile of 6 x 4 inputs: 24 positions
// xi = i * 6 + j (i: height 0..3, j: width 0..5), each an ordinary glide_gemm_wi16_* GEMM on packed panels.

/// The instruction set of the F(4x2) transforms (caller checked the CPU has it): all give the same bits.
enum { GLIDE_WF42_PORTABLE = 0, GLIDE_WF42_AVX2 = 1, GLIDE_WF42_AVX512 = 2 };
/// Largest activation bound for the worst case |U'| <= 127 * 3 * 7 = 2667: 256 * 3145 * 2667 < 2^31.
enum { GLIDE_WF42_QMAX = 3145 };
/// Largest activation bound (<= 32767) for which no K block can overflow int32 when the largest sum of |U'|
/// over a row's K block of a position is `max_l1`: |acc| <= qmax * max_l1 < 2^31 (worst case 256 * 2667 ->
/// GLIDE_WF42_QMAX).
int glide_wf42_qmax(int32_t max_l1);
/// Exact F(4x2) weight transform of one output channel of int8 weights `g[C][3][3]`:
/// `u[xi * xi_stride + c] = U'[xi]` with `U' = N2 g N4^T`, the integer rows of G2 = diag(f2) N2 and G4 = diag(f4) N4
/// (winograd_f42.c); position xi = i * 6 + j stands for f2[i] f4[j] U' (the factor goes with its activations).
void glide_wf42_weights_i16(const int8_t *g, int C, int16_t *u, ptrdiff_t xi_stride);
/// The F(4x2) weight transform of output-channel panels [p0, p1) straight into the GEMM's panel layout (as
/// glide_winograd_weights_i16_packed, 24 positions at `dst + xi * glide_wi16_packed_words(O, C, MR)`);
/// `max_l1[24]` (optional) = per position, the largest sum of |U'| over one row's 256-long K block, over these
/// panels (the bound glide_wf42_qmax takes). 0, or -1 when its scratch could not be allocated.
int glide_wf42_weights_i16_packed(const int8_t *q, ptrdiff_t ldq, int O, int C, int MR, int p0, int p1,
                                  uint32_t *dst, int32_t *max_l1);
/// Whether glide_wf42_weights_i16_packed uses its AVX2 / AVX512-VBMI bodies where the CPU has them (default on;
/// tests compare them with the portable body).
void glide_wf42_weights_allow_simd(int on);
/// The F(4x2) input transform of a chunk of tile rows [ty0, ...) (`tiles` tiles, tw = (W + 3) / 4 a row) of the
/// NCHW images `x` (C channels; the tile rows of all images in a row: global tile row gy is row gy % th of image
/// gy / th, th = (H + 1) / 2, so a chunk may span images), quantized per column and 256-long K block to
/// |q| <= qmax[xi] (the position's bound, <= 32767) and written in the GEMM's activation panels as
/// glide_winograd_input_i16_packed does (24 positions; each scale includes the position's factor f2[i] f4[j]).
/// Panels [p0, p1).
/// `isa`: GLIDE_WF42_* (AVX512: AVX-512F/BW/VL; AVX2: AVX2 + FMA). 0 or -1 (memory).
int glide_wf42_input_i16_packed(const float *x, int H, int W, int C, int ty0, ptrdiff_t tiles, int NB, const int *qmax,
                                ptrdiff_t p0, ptrdiff_t p1, uint32_t *dst, float *scales, int isa);
/// A convolution's per-(image, channel) pre-activation applied to its input as it is read: `y = a[n * C + c] * x
/// + b[n * C + c]` (one fused multiply-add), then SiLU when `silu` (`y / (1 + exp(-y))`, the same bits on every
/// instruction set). Positions outside the image (zero padding) stay 0.
typedef struct glide_preact {
    const float *a;   // [batch * C]
    const float *b;   // [batch * C]
    int silu;
} glide_preact;
/// glide_wf42_input_i16_packed with the pre-activation `pre` (NULL: none) applied to each input value it loads.
/// Same bits as glide_wf42_input_i16_packed on glide_preact_apply's output, for every `isa`.
int glide_wf42_input_i16_packed_preact(const float *x, int H, int W, int C, int ty0, ptrdiff_t tiles, int NB,
                                       const int *qmax, ptrdiff_t p0, ptrdiff_t p1, uint32_t *dst, float *scales,
                                       const glide_preact *pre, int isa);
/// Whether glide_wf42_input_i16_packed_preact's AVX-512 body keeps the activated rows a tile row below reads
/// again (default on; the same bits either way; tests compare).
void glide_wf42_preact_row_cache(int on);
/// The pre-activation of planes [c0, c1) (plane = n * C + c, `spatial` floats each) of `x` into `y` (may be x).
/// `isa`: GLIDE_WF42_* (caller checked the CPU has it); all give the same bits.
void glide_preact_apply(const float *x, float *y, ptrdiff_t spatial, ptrdiff_t c0, ptrdiff_t c1,
                        const glide_preact *pre, int isa);
/// F(4x2) output transform of output channels [o0, o1) of O: the 24 products `m[xi * xi_stride + o * ldm + t]`
/// (t = tile of the chunk, global tile rows [ty0, ty1) as in glide_wf42_input_i16_packed) into the NCHW images y
/// (O planes of `OH x OW` each), + bias[o] (optional), added to y when `accumulate`. `isa`: GLIDE_WF42_*.
void glide_wf42_output(const float *m, ptrdiff_t ldm, ptrdiff_t xi_stride, int O, int o0, int o1, int OH, int OW,
                       int ty0, int ty1, const float *bias, float *y, int accumulate, int isa);
/// The 24 F(4x2) products and the output transform of one chunk in one pass (glide_winograd_i16_gemm_output for
/// 24 positions): per group of tile panels and panel of MR output channels the 24 positions' GEMM tiles are
/// accumulated in an L1 buffer and transformed from there into the images y (global tile rows from d->ty0 as in
/// glide_wf42_output, d->M planes an image), so the products never go through memory. Same bits as the 24 GEMMs
/// into planes followed by glide_wf42_output. Tile panels [p0, p1); `kernel`: GLIDE_WI16_KERNEL_*; `isa`:
/// GLIDE_WF42_* of the output transform (caller checked the CPU has both). 0, or -1 (memory, or K or M < 1).
int glide_wf42_gemm_output(const glide_wi16_fused_desc *d, ptrdiff_t p0, ptrdiff_t p1, int kernel, int isa);
/// Tile panels per pass of glide_wf42_gemm_output and glide_wf44_gemm_output (0: automatic; tuning).
void glide_wf42_gemm_output_set_panels(int panels);
/// Whether glide_wf42_gemm_output and glide_wf44_gemm_output prefetch into L2 the output an accumulating pass adds
/// to, before each panel's products (default on; same bits either way; tuning).
void glide_wf_gemm_output_set_prefetch(int on);

// ---------------------------------------------------------------- int8 Winograd F(4x4, 3x3) in integers (winograd_f44.c)
// 4 x 4 outputs per tile of 6 x 6 inputs: 36 positions xi = i * 6 + j (i: height 0..5, j: width 0..5), each an
// ordinary glide_gemm_wi16_* GEMM on packed panels. The weights are U' = Gn g Gn^T with F(4, 3)'s G rows
// normalised to small integers (exact int16, |U'| <= 6223); position xi's factor f_i f_j
// (glide_wf44_position_factor) rides on its activation scales. Transforms: GLIDE_WF42_* (same bits).

/// f_i f_j of position xi = i * 6 + j, f = [1/4, -1/6, -1/6, 1/24, 1/24, 1] (0 outside 0 ..< 36).
float glide_wf44_position_factor(int xi);
/// Exact F(4x4) weight transform of one output channel of int8 weights `g[C][3][3]`:
/// `u[xi * xi_stride + c] = U'[xi]` with `U' = Gn g Gn^T`.
void glide_wf44_weights_i16(const int8_t *g, int C, int16_t *u, ptrdiff_t xi_stride);
/// The F(4x4) weight transform of output-channel panels [p0, p1) straight into the GEMM's panel layout (36
/// positions at `dst + xi * glide_wi16_packed_words(O, C, MR)`); `max_l1[36]` (optional) = per position the largest
/// sum of |U'| over one row's 256-long K block, over these panels (the bound glide_wf42_qmax takes). 0, or -1
/// when its scratch could not be allocated.
int glide_wf44_weights_i16_packed(const int8_t *q, ptrdiff_t ldq, int O, int C, int MR, int p0, int p1,
                                  uint32_t *dst, int32_t *max_l1);
/// Whether glide_wf44_weights_i16_packed uses its AVX2 / AVX512-VBMI bodies where the CPU has them (default on).
void glide_wf44_weights_allow_simd(int on);
/// The F(4x4) input transform of a chunk of tile rows [ty0, ...) (`tiles` tiles, tw = (W + 3) / 4 a row, th =
/// (H + 3) / 4 rows an image, global tile row gy = row gy % th of image gy / th), quantized per position, column and
/// 256-long K block to |q| <= qmax[xi] (36 bounds, each clamped to 1 ... 32767), the scales times
/// glide_wf44_position_factor(xi), in the GEMM's activation panels (as glide_wf42_input_i16_packed, 36
/// positions). Panels [p0, p1). 0 or -1 (memory, bad NB).
int glide_wf44_input_i16_packed(const float *x, int H, int W, int C, int ty0, ptrdiff_t tiles, int NB,
                                const int32_t *qmax, ptrdiff_t p0, ptrdiff_t p1, uint32_t *dst, float *scales,
                                int isa);
/// F(4x4) output transform of output channels [o0, o1) of O from the 36 product planes (as glide_wf42_output).
void glide_wf44_output(const float *m, ptrdiff_t ldm, ptrdiff_t xi_stride, int O, int o0, int o1, int OH, int OW,
                       int ty0, int ty1, const float *bias, float *y, int accumulate, int isa);
/// The 36 F(4x4) products and the output transform of one chunk in one pass (glide_wf42_gemm_output for 36
/// positions; same bits as the 36 GEMMs into planes followed by glide_wf44_output).
int glide_wf44_gemm_output(const glide_wi16_fused_desc *d, ptrdiff_t p0, ptrdiff_t p1, int kernel, int isa);
/// Whether glide_wf44_gemm_output's AVX-512 output stores whole aligned 64-byte lines with non-temporal stores when it
/// does not accumulate (default on; same bits either way; tuning).
void glide_wf44_gemm_output_set_streaming(int on);

/// Opt-in profiling counters (see Kernels' `KernelProfiler`). Slots of time spent inside the C GEMM:
/// packing (and quantizing) the activation / im2col operand, and packing the weight operand.
enum { GLIDE_PROFILE_PACK_ACTIVATIONS = 0, GLIDE_PROFILE_PACK_WEIGHTS = 1, GLIDE_PROFILE_SLOTS = 4 };
/// Non-zero while the profiler records (set from Swift; read by the kernels before timing a section).
extern int glide_profile_enabled;
/// Non-zero: sections are timed with the calling thread's CPU clock instead of the monotonic clock.
extern int glide_profile_thread_cpu;
/// Sets `glide_profile_enabled` and `glide_profile_thread_cpu`.
void glide_profile_configure(int enabled, int thread_cpu);
/// The profiler's clock in nanoseconds.
unsigned long long glide_profile_now_ns(void);
/// Adds `ns` to counter `slot` (thread-safe).
void glide_profile_add_ns(int slot, unsigned long long ns);
/// The running total of counter `slot` in nanoseconds (summed over threads).
unsigned long long glide_profile_read_ns(int slot);
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
/// glide_winograd_output_avx2 on zmm (16 tiles a step, rows interleaved in registers; bit-identical).
void glide_winograd_output_avx512(const float *m, ptrdiff_t ldm, ptrdiff_t xi_stride, int o0, int o1,
                                  int OH, int OW, int ty0, int ty1, const float *bias, float *y, int accumulate);
/// pool.c: runs fn(ctx, t, threads) for t in 0..<threads, t = 0 on the calling thread, on persistent workers that
/// spin briefly before sleeping. Returns 0 without running anything when it cannot (threads <= 1, a nested or
/// concurrent region, thread creation failed): the caller then runs the work itself.
typedef void (*glide_pool_task)(void *ctx, long t, long threads);
int glide_pool_run(long threads, glide_pool_task fn, void *ctx);
// ---------------------------------------------------------------- fused bf16 attention (attention_bf16.c)

/// Query rows per micro tile of glide_attention_bf16_block (`rows` is a multiple of it).
enum { GLIDE_ATTN_MR = 6 };
/// Words of glide_attn_bf16_pack_keys' output for `keys` keys of `channels` channels.
ptrdiff_t glide_attn_bf16_key_words(int keys, int channels);
/// Words of glide_attn_bf16_pack_values' output.
ptrdiff_t glide_attn_bf16_value_words(int keys, int channels);
/// Floats of the scratch buffer glide_attention_bf16_block needs.
ptrdiff_t glide_attn_bf16_scratch_floats(int keys);
/// Keys key0..<key0+count of `keys` (element (channel c, key key0 + j) at src[c * ld + j]) times `scale` ->
/// bf16 pairs (RNE) along the channels, in groups of 64 keys (zero padded to 16), at their places in `dst`.
/// `vector`: AVX-512F/BW code (caller checked), the same bits.
void glide_attn_bf16_pack_keys(const float *src, ptrdiff_t ld, int key0, int count, int keys, int channels,
                               float scale, uint32_t *dst, int vector);
/// Values `[keys, channels]` f32 (row stride ldv) -> bf16 pairs along the keys, `[(keys+1)/2][channels to 16]`.
void glide_attn_bf16_pack_values(const float *v, ptrdiff_t ldv, int keys, int channels, uint32_t *dst, int vector);
/// Values key0..<key0+count of `keys` from a channel-major source (element (channel c, key key0 + j) at
/// src[c * ld + j]) into glide_attn_bf16_pack_values' layout (the same words); key0 even, count even unless
/// key0 + count == keys.
void glide_attn_bf16_pack_values_cm(const float *src, ptrdiff_t ld, int key0, int count, int keys, int channels,
                                    uint32_t *dst, int vector);
/// Queries (element (channel c, query i) at qT[c * ldq + i], i < count) times `scale` -> bf16 pairs along the
/// channels, `[pairs][rows]`, queries count..<rows zero.
void glide_attn_bf16_pack_queries(const float *qT, ptrdiff_t ldq, int count, int rows, int channels, float scale,
                                  uint32_t *dst, int vector);
/// Attention of `rows` packed queries (a multiple of GLIDE_ATTN_MR; word (pair p, row r) at
/// queries_packed[p * ldq + r]) against one head's packed keys/values:
/// `out[r, c] = sum_j softmax_j(q'_r . k'_j + bias[r, j]) v[j, c]` for c below `channels` rounded up to 16
/// (row stride ldo), bf16 products with f32 accumulation, the exp of attention_bf16.c. `bias` (may be NULL):
/// rows below `bias_rows`, row stride ldb. `emulated`: the portable twin (same bits); otherwise the caller
/// checked AVX512_BF16 (and F/BW/VL).
void glide_attention_bf16_block(const uint32_t *keys_packed, const uint32_t *values_packed, int keys, int channels,
                                const uint32_t *queries_packed, ptrdiff_t ldq, int rows, const float *bias,
                                ptrdiff_t ldb, int bias_rows, float *scratch, float *out, ptrdiff_t ldo, int emulated);
/// Prefetch hint (into L2) for elements from..<to of `rows` rows of row stride ld (at most one line in 16 floats).
void glide_prefetch_rows(const float *base, ptrdiff_t ld, int rows, ptrdiff_t from, ptrdiff_t to);
