/* pt_loss.h - softmax cross-entropy over a mini-batch of logits, FP32.
 *
 * logits [N, K] row-major, labels [N] int32 in [0, K).
 *   forward:  *loss = (1/N) * sum_n (log sum_k exp(l[n,k] - m_n) - (l[n,label_n] - m_n)),
 *             m_n = max_k l[n,k] (numerically stable log-sum-exp); rows summed in order.
 *   backward: grad[n,k] = (softmax(l[n])_k - [k == label_n]) / N
 * A label outside [0, K) gives PT_ERR_RANGE and nothing is written. The
 * forward runs on one core (its O(N*K) cost is negligible next to the layers
 * it closes); the backward splits over rows. Bitwise equal to the _ref twins
 * for any thread count. No scratch. */
#ifndef PULPTRAIN_PT_LOSS_H
#define PULPTRAIN_PT_LOSS_H

#include "pt_types.h"

#ifdef __cplusplus
extern "C" {
#endif

pt_status pt_softmax_xent_f32_fwd(const pt_ctx *ctx, int n, int k, const float *logits,
                                  const int32_t *labels, float *loss);
pt_status pt_softmax_xent_f32_bwd(const pt_ctx *ctx, int n, int k, const float *logits,
                                  const int32_t *labels, float *grad_logits);

/* Plain reference twins. */
pt_status pt_softmax_xent_f32_fwd_ref(int n, int k, const float *logits, const int32_t *labels,
                                      float *loss);
pt_status pt_softmax_xent_f32_bwd_ref(int n, int k, const float *logits, const int32_t *labels,
                                      float *grad_logits);

#ifdef __cplusplus
}
#endif
#endif
