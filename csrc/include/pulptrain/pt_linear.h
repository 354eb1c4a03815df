/* pt_linear.h - fully connected layer, FP32, mini-batch.
 *
 *   x [batch, in_features]   w [out_features, in_features]   b [out_features]
 *   y [batch, out_features]  y = x w^T + b
 *
 * bwd_input:  grad_x = grad_y w                        [batch, in_features]
 * bwd_weight: grad_w = grad_y^T x  (summed over batch) [out_features, in_features]
 *             grad_b = column sums of grad_y (NULL: not computed)
 * b may be NULL (no bias). Results are bitwise identical for any thread count;
 * the sums over the batch run in batch order inside PT_GEMM_KC blocks. */
#ifndef PULPTRAIN_PT_LINEAR_H
#define PULPTRAIN_PT_LINEAR_H

#include "pt_types.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct pt_linear_params {
    int batch, in_features, out_features;
} pt_linear_params;

size_t pt_linear_f32_fwd_scratch_bytes(const pt_linear_params *p, int num_threads);
size_t pt_linear_f32_bwd_input_scratch_bytes(const pt_linear_params *p, int num_threads);
size_t pt_linear_f32_bwd_weight_scratch_bytes(const pt_linear_params *p, int num_threads);

pt_status pt_linear_f32_fwd(const pt_ctx *ctx, const pt_linear_params *p, const float *x,
                            const float *w, const float *b, float *y);
/* y = act(x w^T + b), act fused into the GEMM's last pass over each tile. */
pt_status pt_linear_f32_fwd_act(const pt_ctx *ctx, const pt_linear_params *p, pt_act act,
                                const float *x, const float *w, const float *b, float *y);
pt_status pt_linear_f32_bwd_input(const pt_ctx *ctx, const pt_linear_params *p, const float *w,
                                  const float *grad_y, float *grad_x);
/* grad_x through the activation that produced x (x = act(z)): the gradient
 * with respect to z, (0 < x < cap) ? (grad_y w) : 0, fused into the GEMM's
 * last pass; bitwise pt_linear_f32_bwd_input then pt_relu*_f32_bwd(x, .). */
pt_status pt_linear_f32_bwd_input_act(const pt_ctx *ctx, const pt_linear_params *p, pt_act act,
                                      const float *w, const float *grad_y, const float *x, float *grad_x);
pt_status pt_linear_f32_bwd_weight(const pt_ctx *ctx, const pt_linear_params *p, const float *x,
                                   const float *grad_y, float *grad_w, float *grad_b);

/* Plain single-core reference twins (no scratch). */
pt_status pt_linear_f32_fwd_ref(const pt_linear_params *p, const float *x, const float *w,
                                const float *b, float *y);
pt_status pt_linear_f32_bwd_input_ref(const pt_linear_params *p, const float *w,
                                      const float *grad_y, float *grad_x);
pt_status pt_linear_f32_bwd_weight_ref(const pt_linear_params *p, const float *x,
                                       const float *grad_y, float *grad_w, float *grad_b);

#ifdef __cplusplus
}
#endif
#endif
