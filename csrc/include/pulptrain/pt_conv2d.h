/* pt_conv2d.h - dense 2-D convolution, FP32, NHWC, mini-batch.
 *
 *   x [N, H, W, Cin]   w [Cout, KH, KW, Cin]   b [Cout]   y [N, OH, OW, Cout]
 *   OH = (H + pad_top + pad_bottom - KH) / stride_h + 1, likewise OW;
 *   y[n,oh,ow,co] = b[co] + sum_{kh,kw,ci} x[n, oh*sh - pad_top + kh, ow*sw - pad_left + kw, ci]
 *                                          * w[co,kh,kw,ci]   (zero outside x)
 *
 * Computed as im2col + GEMM (pt_gemm.h): the im2col matrix has one row per
 * output pixel and one column per (kh, kw, ci), matching the weight layout.
 * It is built for a fixed number of whole images at a time (a function of the
 * shape only), so scratch stays bounded and results stay bitwise identical
 * for any thread count. A 1x1, stride-1, unpadded conv skips im2col.
 *
 * bwd_input:  grad_x (the GEMM grad_y w, then each input pixel gathers its
 *             (kh, kw) contributions in kh, kw order).
 * bwd_weight: grad_w = sum over N*OH*OW of grad_y^T im2col(x);
 *             grad_b = column sums of grad_y (NULL: not computed).
 * b may be NULL. Params: p->in = x's shape, p->out_c = Cout, kh, kw >= 1,
 * strides >= 1, pads >= 0, and the window must fit the padded input. */
#ifndef PULPTRAIN_PT_CONV2D_H
#define PULPTRAIN_PT_CONV2D_H

#include "pt_types.h"

#ifdef __cplusplus
extern "C" {
#endif

size_t pt_conv2d_f32_fwd_scratch_bytes(const pt_conv_params *p, int num_threads);
size_t pt_conv2d_f32_bwd_input_scratch_bytes(const pt_conv_params *p, int num_threads);
size_t pt_conv2d_f32_bwd_weight_scratch_bytes(const pt_conv_params *p, int num_threads);

pt_status pt_conv2d_f32_fwd(const pt_ctx *ctx, const pt_conv_params *p, const float *x,
                            const float *w, const float *b, float *y);
pt_status pt_conv2d_f32_bwd_input(const pt_ctx *ctx, const pt_conv_params *p, const float *w,
                                  const float *grad_y, float *grad_x);
pt_status pt_conv2d_f32_bwd_weight(const pt_ctx *ctx, const pt_conv_params *p, const float *x,
                                   const float *grad_y, float *grad_w, float *grad_b);

/* Plain single-core reference twins: direct loops, no scratch. */
pt_status pt_conv2d_f32_fwd_ref(const pt_conv_params *p, const float *x, const float *w,
                                const float *b, float *y);
pt_status pt_conv2d_f32_bwd_input_ref(const pt_conv_params *p, const float *w,
                                      const float *grad_y, float *grad_x);
pt_status pt_conv2d_f32_bwd_weight_ref(const pt_conv_params *p, const float *x,
                                       const float *grad_y, float *grad_w, float *grad_b);

#ifdef __cplusplus
}
#endif
#endif
