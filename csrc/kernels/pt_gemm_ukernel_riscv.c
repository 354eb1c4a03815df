/* RISC-V GEMM micro-kernel (F or Zfinx): one fused multiply-add (fmadd.s)
 * chain per output element, like the x86 FMA kernels, in a tile small enough
 * for the scalar register file: with -ffp-contract=off the portable kernel
 * needs an fmul and an fadd per product, so at most 0.5 MAC per instruction,
 * and its 4 x 8 tile spills 32 accumulators on a 32-register file.
 *   F (32 float registers): RV_MR x RV_NR = 6 x 4: 24 accumulators, 6 values
 *       of A and one of B at a time (31 registers)
 *   Zfinx (floats share the integer registers with the pointers): 4 x 4
 * The k loop is unrolled by 2 to halve the loop overhead. */
#include <math.h>
#include "pt_gemm_internal.h"

#if defined(__riscv) && (defined(__riscv_flen) || defined(__riscv_zfinx))

#ifdef __riscv_flen
#define RV_MR 6
#else
#define RV_MR 4
#endif
#define RV_NR 4

static void ukernel_riscv(size_t kc, const float *a, const float *b, float *c, size_t ldc,
                          const float *bias, int accumulate, int m_valid, int n_valid)
{
    float acc[RV_MR][RV_NR] = {{0.0f}};
#pragma GCC unroll 2
    for (size_t k = 0; k < kc; ++k) {
        const float *ak = a + k * RV_MR;
        const float *bk = b + k * RV_NR;
#pragma GCC unroll 8
        for (int j = 0; j < RV_NR; ++j) {
            const float bj = bk[j];
#pragma GCC unroll 8
            for (int i = 0; i < RV_MR; ++i) acc[i][j] = fmaf(ak[i], bj, acc[i][j]);
        }
    }
    for (int i = 0; i < m_valid; ++i) {
        float *ci = c + (size_t)i * ldc;
        if (accumulate)
            for (int j = 0; j < n_valid; ++j) ci[j] += acc[i][j];
        else if (bias)
            for (int j = 0; j < n_valid; ++j) ci[j] = acc[i][j] + bias[j];
        else
            for (int j = 0; j < n_valid; ++j) ci[j] = acc[i][j];
    }
}

const pt_gemm_ukernel pt_gemm_ukernel_riscv = {RV_MR, RV_NR, ukernel_riscv};

#else

const pt_gemm_ukernel pt_gemm_ukernel_riscv = {0, 0, NULL};

#endif
