/* pt_affine.h - per-channel affine map (a folded, frozen BatchNorm), FP32, NHWC.
 *
 *   y[n,h,w,c] = x[n,h,w,c] * scale[c] + shift[c]     x, y: [N, H, W, C]
 *   grad_x = grad_y * scale[c]
 *   grad_scale[c] = sum over the batch of grad_y * x, grad_shift[c] = sum of grad_y
 *
 * The parameter gradients are reduced inside the kernel: per image a partial
 * sum over the pixels in raster order, then the images' partials in batch
 * order, one channel per core; bitwise identical for any thread count and equal
 * to the _ref twins. In-place forward / grad-input (y == x) is allowed. No
 * scratch. Outputs are overwritten. */
#ifndef PULPTRAIN_PT_AFFINE_H
#define PULPTRAIN_PT_AFFINE_H

#include "pt_types.h"

#ifdef __cplusplus
extern "C" {
#endif

pt_status pt_channel_affine_f32_fwd(const pt_ctx *ctx, pt_dims in, const float *x, const float *scale,
                                    const float *shift, float *y);
pt_status pt_channel_affine_f32_bwd_input(const pt_ctx *ctx, pt_dims in, const float *scale,
                                          const float *grad_y, float *grad_x);
/* grad_scale and grad_shift [C]; either may be NULL to skip it. */
pt_status pt_channel_affine_f32_bwd_param(const pt_ctx *ctx, pt_dims in, const float *x,
                                          const float *grad_y, float *grad_scale, float *grad_shift);
/* The same sums continued over more images of the batch: grad_scale and
 * grad_shift hold the earlier images' sums, and this call's images are added
 * one at a time in order (bitwise one call over all the images). */
pt_status pt_channel_affine_f32_bwd_param_acc(const pt_ctx *ctx, pt_dims in, const float *x,
                                              const float *grad_y, float *grad_scale, float *grad_shift);

/* Plain single-core reference twins. */
pt_status pt_channel_affine_f32_fwd_ref(pt_dims in, const float *x, const float *scale,
                                        const float *shift, float *y);
pt_status pt_channel_affine_f32_bwd_input_ref(pt_dims in, const float *scale, const float *grad_y,
                                              float *grad_x);
pt_status pt_channel_affine_f32_bwd_param_ref(pt_dims in, const float *x, const float *grad_y,
                                              float *grad_scale, float *grad_shift);

#ifdef __cplusplus
}
#endif
#endif
