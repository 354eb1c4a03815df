/* Reference twins of pt_loss_f32.c: the formulas of pt_loss.h, one row at a time. */
#include <math.h>
#include "pulptrain/pt_loss.h"
#include "../elem_common.h"

static float row_max(const float *row, int k)
{
    float m = row[0];
    for (int j = 1; j < k; ++j)
        if (row[j] > m) m = row[j];
    return m;
}

static float row_exp_sum(const float *row, int k, float m)
{
    float s = 0.0f;
    for (int j = 0; j < k; ++j) s += expf(row[j] - m);
    return s;
}

pt_status pt_softmax_xent_f32_fwd_ref(int n, int k, const float *logits, const int32_t *labels,
                                      float *loss)
{
    pt_status st = pt_check_xent(n, k, logits, labels, loss);
    if (st != PT_OK) return st;
    float total = 0.0f;
    for (int i = 0; i < n; ++i) {
        const float *row = logits + (size_t)i * k;
        float m = row_max(row, k);
        total += logf(row_exp_sum(row, k, m)) - (row[labels[i]] - m);
    }
    *loss = total / (float)n;
    return PT_OK;
}

pt_status pt_softmax_xent_f32_bwd_ref(int n, int k, const float *logits, const int32_t *labels,
                                      float *grad_logits)
{
    pt_status st = pt_check_xent(n, k, logits, labels, grad_logits);
    if (st != PT_OK) return st;
    for (int i = 0; i < n; ++i) {
        const float *row = logits + (size_t)i * k;
        float m = row_max(row, k), s = row_exp_sum(row, k, m);
        for (int j = 0; j < k; ++j)
            grad_logits[(size_t)i * k + j] = (expf(row[j] - m) / s - (j == labels[i] ? 1.0f : 0.0f)) / (float)n;
    }
    return PT_OK;
}
