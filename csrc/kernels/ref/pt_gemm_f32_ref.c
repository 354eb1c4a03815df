/* Reference twin of pt_gemm_f32.c: the textbook triple loop, one core. */
#include "pulptrain/pt_gemm.h"

pt_status pt_sgemm_f32_ref(const pt_gemm_params *p, const float *a, const float *b,
                           const float *bias, float *c)
{
    if (!p || !a || !b || !c) return PT_ERR_NULL;
    if (p->m <= 0 || p->n <= 0 || p->k <= 0) return PT_ERR_SHAPE;
    if ((p->trans_a != 0 && p->trans_a != 1) || (p->trans_b != 0 && p->trans_b != 1) ||
        (p->accumulate != 0 && p->accumulate != 1) || (p->accumulate && bias))
        return PT_ERR_PARAM;
    if (p->lda < (p->trans_a ? p->m : p->k) || p->ldb < (p->trans_b ? p->k : p->n) || p->ldc < p->n)
        return PT_ERR_SHAPE;
    for (int i = 0; i < p->m; ++i) {
        for (int j = 0; j < p->n; ++j) {
            float sum = 0.0f;
            for (int k = 0; k < p->k; ++k) {
                float av = p->trans_a ? a[(size_t)k * p->lda + i] : a[(size_t)i * p->lda + k];
                float bv = p->trans_b ? b[(size_t)j * p->ldb + k] : b[(size_t)k * p->ldb + j];
                sum += av * bv;
            }
            float *out = &c[(size_t)i * p->ldc + j];
            *out = p->accumulate ? *out + sum : (bias ? sum + bias[j] : sum);
        }
    }
    return PT_OK;
}
