/* Softmax cross-entropy, FP32: stable log-sum-exp forward, softmax-minus-onehot
 * backward split over rows. */
#include <math.h>
#include "pulptrain/pt_loss.h"
#include "elem_common.h"

typedef struct xent_job {
    int n, k;
    const float *logits;
    const int32_t *labels;
    float *grad;
} xent_job;

/* Row max and sum of exp(l - max). */
static void row_stats(const float *row, int k, float *max_out, float *sum_out)
{
    float m = row[0];
    for (int j = 1; j < k; ++j) m = row[j] > m ? row[j] : m;
    float s = 0.0f;
    for (int j = 0; j < k; ++j) s += expf(row[j] - m);
    *max_out = m;
    *sum_out = s;
}

pt_status pt_softmax_xent_f32_fwd(const pt_ctx *ctx, int n, int k, const float *logits,
                                  const int32_t *labels, float *loss)
{
    pt_status st = pt_check_ctx(ctx, 0);
    if (st == PT_OK) st = pt_check_xent(n, k, logits, labels, loss);
    if (st != PT_OK) return st;
    float total = 0.0f;
    for (int i = 0; i < n; ++i) {
        const float *row = logits + (size_t)i * (size_t)k;
        float m, s;
        row_stats(row, k, &m, &s);
        total += logf(s) - (row[labels[i]] - m);
    }
    *loss = total / (float)n;
    return PT_OK;
}

static void bwd_task(void *arg, int core, int ncores)
{
    const xent_job *j = (const xent_job *)arg;
    size_t b, e;
    pt_split((size_t)j->n, core, ncores, &b, &e);
    for (size_t i = b; i < e; ++i) {
        const float *row = j->logits + i * (size_t)j->k;
        float *grad = j->grad + i * (size_t)j->k;
        float m, s;
        row_stats(row, j->k, &m, &s);
        for (int c = 0; c < j->k; ++c) {
            float target = c == j->labels[i] ? 1.0f : 0.0f;
            grad[c] = (expf(row[c] - m) / s - target) / (float)j->n;
        }
    }
}

pt_status pt_softmax_xent_f32_bwd(const pt_ctx *ctx, int n, int k, const float *logits,
                                  const int32_t *labels, float *grad_logits)
{
    pt_status st = pt_check_ctx(ctx, 0);
    if (st == PT_OK) st = pt_check_xent(n, k, logits, labels, grad_logits);
    if (st != PT_OK) return st;
    xent_job job = {n, k, logits, labels, grad_logits};
    size_t work = (size_t)n * (size_t)k * 16;  /* two exps per element */
    int threads = work < PT_PARALLEL_MIN_ELEMS ? 1 : pt_threads_for(ctx, (size_t)n, 1);
    return pt_fork(threads, bwd_task, &job);
}
