/* pt_act.h - elementwise activations, FP32 (any layout: they act per element).
 *
 * relu:  y = max(x, 0)          relu6: y = min(max(x, 0), 6)
 * backward: grad_x = grad_y where 0 < v < cap, else 0, with v either the
 * forward input x or its output y (the mask is the same for both), matching
 * PyTorch's threshold_backward / hardtanh_backward. In-place (y == x,
 * grad_x == grad_y) is allowed. No scratch. */
#ifndef PULPTRAIN_PT_ACT_H
#define PULPTRAIN_PT_ACT_H

#include "pt_types.h"

#ifdef __cplusplus
extern "C" {
#endif

pt_status pt_relu_f32_fwd(const pt_ctx *ctx, size_t count, const float *x, float *y);
pt_status pt_relu_f32_bwd(const pt_ctx *ctx, size_t count, const float *x_or_y,
                          const float *grad_y, float *grad_x);
pt_status pt_relu6_f32_fwd(const pt_ctx *ctx, size_t count, const float *x, float *y);
pt_status pt_relu6_f32_bwd(const pt_ctx *ctx, size_t count, const float *x_or_y,
                           const float *grad_y, float *grad_x);

/* Plain single-core reference twins (always compiled, used by the tests). */
pt_status pt_relu_f32_fwd_ref(size_t count, const float *x, float *y);
pt_status pt_relu_f32_bwd_ref(size_t count, const float *x_or_y, const float *grad_y, float *grad_x);
pt_status pt_relu6_f32_fwd_ref(size_t count, const float *x, float *y);
pt_status pt_relu6_f32_bwd_ref(size_t count, const float *x_or_y, const float *grad_y, float *grad_x);

#ifdef __cplusplus
}
#endif
#endif
