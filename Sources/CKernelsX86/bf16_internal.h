// Private scalar bf16 helpers shared by gemm_avx512.c and attention_bf16.c: bit casts, f32 -> bf16 rounding and
// the portable emulation of vdpbf16ps (DAZ in, FTZ out).
#ifndef GLIDE_BF16_INTERNAL_H
#define GLIDE_BF16_INTERNAL_H
#include <math.h>
#include <stdint.h>
#include <string.h>

#define BF16_INLINE static inline __attribute__((always_inline))

BF16_INLINE float bits_f32(uint32_t u) { float f; memcpy(&f, &u, 4); return f; }
BF16_INLINE uint32_t f32_bits(float f) { uint32_t u; memcpy(&u, &f, 4); return u; }

// f32 -> bf16 bits, round to nearest even, NaN stays (quiet) NaN: the same rule as Kernels' f32ToBF16.
BF16_INLINE uint32_t bf16_rne(float f) {
    uint32_t x = f32_bits(f);
    if ((x & 0x7fffffffu) > 0x7f800000u) return (x >> 16) | 0x40;
    return (x + 0x7fffu + ((x >> 16) & 1)) >> 16;
}

// bf16 bits (low 16 bits of h) -> f32 with DAZ (a denormal input counts as a signed zero).
BF16_INLINE float bf16_daz(uint32_t h) {
    uint32_t b = (h & 0xffffu) << 16;
    if ((b & 0x7f800000u) == 0) b &= 0x80000000u;
    return bits_f32(b);
}
// FTZ: a denormal result becomes a signed zero.
BF16_INLINE float ftz(float x) {
    uint32_t b = f32_bits(x);
    if ((b & 0x7f800000u) == 0) b &= 0x80000000u;
    return bits_f32(b);
}
// vdpbf16ps on one lane (Intel SDM): acc += a.hi * b.hi, then acc += a.lo * b.lo; each an f32 FMA with DAZ in,
// FTZ out, RNE, MXCSR ignored.
BF16_INLINE float dp_emul(float acc, uint32_t a, uint32_t b) {
    acc = ftz(fmaf(bf16_daz(a >> 16), bf16_daz(b >> 16), acc));
    return ftz(fmaf(bf16_daz(a), bf16_daz(b), acc));
}

#endif
