/* pt_depthwise.h - depthwise 2-D convolution, FP32, NHWC, over a mini-batch.
 *
 * p->in = [N, H, W, C], p->out_c == C; weights w [KH, KW, C]; optional bias
 * b [C]; output y [N, OH, OW, C] with OH = (H + pad_top + pad_bottom - KH) /
 * stride_h + 1 (likewise OW). Any stride and any (asymmetric) zero padding.
 *
 *   y[n,oh,ow,c] = b[c] + sum_{kh,kw} x[n, oh*sh - pt + kh, ow*sw - pl + kw, c] * w[kh,kw,c]
 *
 * Every output sums its taps in ascending (kh, kw) order, starting from the
 * bias (or 0), skipping taps that fall in the padding. grad_input gathers, for
 * each input pixel, the taps that reached it in the same order. grad_weight
 * (and grad_bias) reduce over the batch inside the kernel: per image, a
 * partial sum over (oh, ow) in raster order, then the images' partials added
 * in batch order. Each channel is reduced by one core, so results are bitwise
 * identical for any thread count, and bitwise equal to the _ref twins.
 * No scratch.
 *
 * The channel loop is innermost and contiguous; on x86-64 an AVX-512 build of
 * it is chosen at run time when the CPU has it. */
#ifndef PULPTRAIN_PT_DEPTHWISE_H
#define PULPTRAIN_PT_DEPTHWISE_H

#include "pt_types.h"

#ifdef __cplusplus
extern "C" {
#endif

/* y [N, OH, OW, C] from x [N, H, W, C], w [KH, KW, C], b [C] or NULL. */
pt_status pt_depthwise_f32_fwd(const pt_ctx *ctx, const pt_conv_params *p, const float *x,
                               const float *w, const float *b, float *y);

/* y = act(depthwise(x) + b): the activation fused into the output store. */
pt_status pt_depthwise_f32_fwd_act(const pt_ctx *ctx, const pt_conv_params *p, pt_act act,
                                   const float *x, const float *w, const float *b, float *y);

/* grad_x [N, H, W, C] from w and grad_y [N, OH, OW, C] (overwritten, not accumulated). */
pt_status pt_depthwise_f32_bwd_input(const pt_ctx *ctx, const pt_conv_params *p, const float *w,
                                     const float *grad_y, float *grad_x);

/* grad_x through the activation that produced x (x = act(z)): the gradient
 * with respect to z, (0 < x < cap) ? grad_x : 0, masked as it is stored. */
pt_status pt_depthwise_f32_bwd_input_act(const pt_ctx *ctx, const pt_conv_params *p, pt_act act,
                                         const float *w, const float *grad_y, const float *x, float *grad_x);

/* grad_w [KH, KW, C] and grad_b [C] (NULL to skip) from x and grad_y, summed
 * over the batch (overwritten, not accumulated). */
pt_status pt_depthwise_f32_bwd_weight(const pt_ctx *ctx, const pt_conv_params *p, const float *x,
                                      const float *grad_y, float *grad_w, float *grad_b);

/* The same sums continued: grad_w and grad_b hold those of the batch's
 * earlier images, and this call's images are added to them one at a time in
 * order, so calls over consecutive runs of images give bitwise the one call
 * over all of them (the tiled executor's grad-weight uses this). */
pt_status pt_depthwise_f32_bwd_weight_acc(const pt_ctx *ctx, const pt_conv_params *p, const float *x,
                                          const float *grad_y, float *grad_w, float *grad_b);

/* Both gradients at once, bitwise pt_depthwise_f32_bwd_input_act followed by
 * pt_depthwise_f32_bwd_weight (act may be PT_ACT_NONE; x is needed either
 * way), in one pass over grad_y where the build has a fused path (AVX-512,
 * 3x3, stride 1); grad_b may be NULL. */
pt_status pt_depthwise_f32_bwd(const pt_ctx *ctx, const pt_conv_params *p, pt_act act, const float *w,
                               const float *x, const float *grad_y, float *grad_x, float *grad_w,
                               float *grad_b);

/* Plain single-core reference twins. */
pt_status pt_depthwise_f32_fwd_ref(const pt_conv_params *p, const float *x, const float *w,
                                   const float *b, float *y);
pt_status pt_depthwise_f32_bwd_input_ref(const pt_conv_params *p, const float *w,
                                         const float *grad_y, float *grad_x);
pt_status pt_depthwise_f32_bwd_weight_ref(const pt_conv_params *p, const float *x,
                                          const float *grad_y, float *grad_w, float *grad_b);

#ifdef __cplusplus
}
#endif
#endif
