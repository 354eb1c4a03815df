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

/* acc += the kc x RV_NR products, reading A(i, k) as the expression a_at. */
#define RV_CHAINS(a_at)                                                                     \
    do {                                                                                    \
        _Pragma("GCC unroll 2") for (size_t k = 0; k < kc; ++k) {                           \
            const float *bk = b + k * RV_NR;                                                \
            _Pragma("GCC unroll 8") for (int j = 0; j < RV_NR; ++j) {                       \
                const float bj = bk[j];                                                     \
                _Pragma("GCC unroll 8") for (int i = 0; i < RV_MR; ++i)                     \
                    acc[i][j] = fmaf(a_at, bj, acc[i][j]);                                  \
            }                                                                               \
        }                                                                                   \
    } while (0)

static void ukernel_riscv(size_t kc, const float *a, size_t a_rs, const float *b, float *c,
                          size_t ldc, const float *bias, int accumulate, const pt_gemm_epilogue *ep,
                          int m_valid, int n_valid)
{
    float acc[RV_MR][RV_NR] = {{0.0f}};
    if (a_rs == 0) {
        RV_CHAINS(a[k * RV_MR + (size_t)i]);  /* packed panel: constant offsets */
    } else {
        const float *rows[RV_MR];              /* A in place: one pointer per row */
        for (int i = 0; i < RV_MR; ++i) rows[i] = a + (size_t)i * a_rs;
        RV_CHAINS(rows[i][k]);
    }
    pt_gemm_write_tile(&acc[0][0], RV_NR, c, ldc, bias, accumulate, ep, m_valid, n_valid);
}

const pt_gemm_ukernel pt_gemm_ukernel_riscv = {RV_MR, RV_NR, ukernel_riscv, NULL, NULL, NULL};

#else

const pt_gemm_ukernel pt_gemm_ukernel_riscv = {0, 0, NULL, NULL, NULL, NULL};

#endif
