/* Reference twin of pt_sgd_f32.c: PyTorch's update, written out plainly. */
#include <math.h>
#include "pulptrain/pt_sgd.h"

pt_status pt_sgd_f32_step_ref(const pt_sgd_params *p, size_t count, float *param, const float *grad,
                              float *velocity)
{
    if (!p || !param || !grad || !velocity) return PT_ERR_NULL;
    if (count == 0) return PT_ERR_SHAPE;
    if (!isfinite(p->lr) || !isfinite(p->momentum) || !isfinite(p->weight_decay) ||
        p->lr < 0.0f || p->momentum < 0.0f || p->weight_decay < 0.0f)
        return PT_ERR_PARAM;
    for (size_t i = 0; i < count; ++i) {
        float g = grad[i] + p->weight_decay * param[i];
        velocity[i] = p->momentum * velocity[i] + g;
        param[i] -= p->lr * velocity[i];
    }
    return PT_OK;
}
