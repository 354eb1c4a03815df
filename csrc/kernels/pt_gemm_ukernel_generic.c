/* Portable GEMM micro-kernel: a 4 x 8 tile in plain C, one multiply then one
 * add per product (the build uses -ffp-contract=off), so every target that
 * runs it rounds identically. Fixed trip counts let compilers vectorise it. */
#include "pt_gemm_internal.h"

#define MR 4
#define NR 8

static void ukernel_generic(size_t kc, const float *a, size_t a_rs, const float *b, float *c,
                            size_t ldc, const float *bias, int accumulate, const pt_gemm_epilogue *ep,
                            int m_valid, int n_valid)
{
    float acc[MR][NR] = {{0.0f}};
    const size_t row_step = a_rs ? a_rs : 1, k_step = a_rs ? 1 : MR;
    for (size_t k = 0; k < kc; ++k) {
        const float *ak = a + k * k_step;
        const float *bk = b + k * NR;
        for (int i = 0; i < MR; ++i)
            for (int j = 0; j < NR; ++j) acc[i][j] += ak[i * row_step] * bk[j];
    }
    pt_gemm_write_tile(&acc[0][0], NR, c, ldc, bias, accumulate, ep, m_valid, n_valid);
}

const pt_gemm_ukernel pt_gemm_ukernel_generic = {MR, NR, ukernel_generic, NULL, NULL, NULL};
