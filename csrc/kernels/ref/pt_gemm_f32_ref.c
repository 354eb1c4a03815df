/* Reference twin of pt_gemm_f32.c: the textbook triple loop, one core. */
#include "pulptrain/pt_gemm.h"
#include "../pt_gemm_internal.h"

pt_status pt_sgemm_f32_ref(const pt_gemm_params *p, const float *a, const float *b,
                           const float *bias, float *c)
{
    pt_status st = pt_gemm_check(p, a, b, bias, c);
    if (st != PT_OK) return st;
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
            if (p->act) *out = pt_act_clamp(*out, pt_act_cap((pt_act)p->act));
        }
    }
    return PT_OK;
}
