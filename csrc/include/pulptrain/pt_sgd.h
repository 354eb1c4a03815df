/* pt_sgd.h - one SGD step with momentum and weight decay, FP32, in place.
 *
 * PyTorch semantics (torch.optim.SGD, dampening 0, no Nesterov), per element:
 *   g = grad + weight_decay * param
 *   velocity = momentum * velocity + g
 *   param = param - lr * velocity
 * With velocity zero-initialised the first step equals PyTorch's (which
 * starts its buffer at g). lr, momentum and weight_decay must be finite and
 * >= 0 (PT_ERR_PARAM). Split over elements; bitwise equal to the _ref twin for
 * any thread count. No scratch. */
#ifndef PULPTRAIN_PT_SGD_H
#define PULPTRAIN_PT_SGD_H

#include "pt_types.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct pt_sgd_params {
    float lr;
    float momentum;
    float weight_decay;
} pt_sgd_params;

/* param, grad, velocity: count floats each; param and velocity are updated. */
pt_status pt_sgd_f32_step(const pt_ctx *ctx, const pt_sgd_params *p, size_t count, float *param,
                          const float *grad, float *velocity);

pt_status pt_sgd_f32_step_ref(const pt_sgd_params *p, size_t count, float *param, const float *grad,
                              float *velocity);

#ifdef __cplusplus
}
#endif
#endif
