/* pt_pointwise.h - pointwise (1x1, stride 1, no padding) convolution, FP32, NHWC.
 *
 *   x [N, H, W, Cin]   w [Cout, Cin]   b [Cout]   y [N, H, W, Cout]
 *
 * Over a mini-batch this is one GEMM [N*H*W, Cin] x [Cin, Cout]: exactly a
 * linear layer (pt_linear.h) with batch = N*H*W, and computed by it, so the
 * numerics and determinism are the same. Params: p->in is x's shape,
 * p->out_c = Cout; kh = kw = stride_h = stride_w = 1 and all pads 0
 * (PT_ERR_PARAM otherwise). bwd_weight sums over N*H*W; grad_b may be NULL. */
#ifndef PULPTRAIN_PT_POINTWISE_H
#define PULPTRAIN_PT_POINTWISE_H

#include "pt_types.h"

#ifdef __cplusplus
extern "C" {
#endif

size_t pt_pointwise_f32_fwd_scratch_bytes(const pt_conv_params *p, int num_threads);
size_t pt_pointwise_f32_bwd_input_scratch_bytes(const pt_conv_params *p, int num_threads);
size_t pt_pointwise_f32_bwd_weight_scratch_bytes(const pt_conv_params *p, int num_threads);

pt_status pt_pointwise_f32_fwd(const pt_ctx *ctx, const pt_conv_params *p, const float *x,
                               const float *w, const float *b, float *y);
/* y = act(conv(x) + b): the activation fused into the output pass. */
pt_status pt_pointwise_f32_fwd_act(const pt_ctx *ctx, const pt_conv_params *p, pt_act act,
                                   const float *x, const float *w, const float *b, float *y);
pt_status pt_pointwise_f32_bwd_input(const pt_ctx *ctx, const pt_conv_params *p, const float *w,
                                     const float *grad_y, float *grad_x);
/* grad_x through the activation that produced x: (0 < x < cap) ? grad_x : 0. */
pt_status pt_pointwise_f32_bwd_input_act(const pt_ctx *ctx, const pt_conv_params *p, pt_act act,
                                         const float *w, const float *grad_y, const float *x, float *grad_x);
pt_status pt_pointwise_f32_bwd_weight(const pt_ctx *ctx, const pt_conv_params *p, const float *x,
                                      const float *grad_y, float *grad_w, float *grad_b);

pt_status pt_pointwise_f32_fwd_ref(const pt_conv_params *p, const float *x, const float *w,
                                   const float *b, float *y);
pt_status pt_pointwise_f32_bwd_input_ref(const pt_conv_params *p, const float *w,
                                         const float *grad_y, float *grad_x);
pt_status pt_pointwise_f32_bwd_weight_ref(const pt_conv_params *p, const float *x,
                                          const float *grad_y, float *grad_w, float *grad_b);

#ifdef __cplusplus
}
#endif
#endif
