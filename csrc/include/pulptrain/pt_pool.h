/* pt_pool.h - average pooling, FP32, NHWC, over a mini-batch.
 *
 * avgpool: p->in = [N, H, W, C], a KH x KW window moved by (stride_h,
 * stride_w), no padding; y [N, OH, OW, C] with OH = (H - KH) / stride_h + 1.
 *   y[n,oh,ow,c] = (sum over the window in (kh, kw) order) / (KH*KW)
 *   grad_x[n,ih,iw,c] = (sum of grad_y over the windows holding (ih, iw), in
 *   ascending (oh, ow) order) / (KH*KW); 0 for pixels no window covers.
 *
 * global average pool: x [N, H, W, C] -> y [N, C],
 *   y[n,c] = (sum over (h, w) in raster order) / (H*W),
 *   grad_x[n,h,w,c] = grad_y[n,c] / (H*W).
 *
 * Split over outputs; bitwise identical for any thread count and equal to the
 * _ref twins. No scratch. Outputs are overwritten. */
#ifndef PULPTRAIN_PT_POOL_H
#define PULPTRAIN_PT_POOL_H

#include "pt_types.h"

#ifdef __cplusplus
extern "C" {
#endif

pt_status pt_avgpool_f32_fwd(const pt_ctx *ctx, const pt_pool_params *p, const float *x, float *y);
pt_status pt_avgpool_f32_bwd(const pt_ctx *ctx, const pt_pool_params *p, const float *grad_y,
                             float *grad_x);
pt_status pt_global_avgpool_f32_fwd(const pt_ctx *ctx, pt_dims in, const float *x, float *y);
pt_status pt_global_avgpool_f32_bwd(const pt_ctx *ctx, pt_dims in, const float *grad_y, float *grad_x);
/* grad_x through the activation that produced x (x = act(z), act ReLU or
 * ReLU6; PT_ACT_NONE: the plain backward, x unused): (0 < x < cap) ?
 * grad_y[n,c] / (H*W) : 0, masked as it is stored; bitwise the plain backward
 * followed by pt_relu*_f32_bwd. */
pt_status pt_global_avgpool_f32_bwd_input_act(const pt_ctx *ctx, pt_dims in, pt_act act, const float *grad_y,
                                              const float *x, float *grad_x);

/* Plain single-core reference twins. */
pt_status pt_avgpool_f32_fwd_ref(const pt_pool_params *p, const float *x, float *y);
pt_status pt_avgpool_f32_bwd_ref(const pt_pool_params *p, const float *grad_y, float *grad_x);
pt_status pt_global_avgpool_f32_fwd_ref(pt_dims in, const float *x, float *y);
pt_status pt_global_avgpool_f32_bwd_ref(pt_dims in, const float *grad_y, float *grad_x);

#ifdef __cplusplus
}
#endif
#endif
