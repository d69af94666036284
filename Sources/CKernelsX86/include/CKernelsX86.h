// C micro-kernels with x86 intrinsics behind function-level target attributes.
// Every entry point here has a portable scalar twin in the Kernels module.
#pragma once
#include <stdint.h>
#include <stddef.h>

/// 1 when this CPU supports AVX2 and FMA (and the OS saves YMM state), else 0.
int glide_cpu_has_avx2_fma(void);
