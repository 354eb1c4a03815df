/* pt_types.h - small POD structs shared by every kernel family.
 *
 * Layout conventions (fixed across pulptrain):
 *   activations  NHWC, float32, C-contiguous: x[((n*H + h)*W + w)*C + c]
 *   conv weights [Cout, KH, KW, Cin]
 *   depthwise    [KH, KW, C]
 *   pointwise    [Cout, Cin]
 *   linear       [Out, In]
 *
 * Every kernel takes (ctx, params, inputs..., outputs...) in that order. */
#ifndef PULPTRAIN_PT_TYPES_H
#define PULPTRAIN_PT_TYPES_H

#include <stddef.h>
#include <stdint.h>
#include "pt_status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Execution context: threads to use and caller-owned scratch memory. */
typedef struct pt_ctx {
    int num_threads;      /* cores to fork onto, 1..PT_MAX_THREADS */
    void *scratch;        /* at least the kernel's *_scratch_bytes(); may be NULL if that is 0 */
    size_t scratch_bytes;
} pt_ctx;

/* Shape of an NHWC tensor. */
typedef struct pt_dims {
    int n, h, w, c;
} pt_dims;

/* A 2-D convolution (dense, depthwise or pointwise) over an NHWC batch. */
typedef struct pt_conv_params {
    pt_dims in;           /* input shape */
    int out_c;            /* output channels (== in.c for depthwise) */
    int kh, kw;           /* kernel size */
    int stride_h, stride_w;
    int pad_top, pad_bottom, pad_left, pad_right;
} pt_conv_params;

/* Average pooling window (no padding; the window must fit the input). */
typedef struct pt_pool_params {
    pt_dims in;
    int kh, kw;
    int stride_h, stride_w;
} pt_pool_params;

/* An activation fused into a forward kernel's output (the *_fwd_act entries):
 * y = act(conv(x) + b), bitwise what the separate pt_relu*_f32_fwd gives. */
typedef enum pt_act { PT_ACT_NONE = 0, PT_ACT_RELU = 1, PT_ACT_RELU6 = 2 } pt_act;

/* Upper clamp of an activation: 6 for ReLU6, a huge value for ReLU (the
 * same constant pt_relu_f32_fwd uses). */
#define PT_ACT_NO_CAP 3.0e38f
static inline float pt_act_cap(pt_act act) { return act == PT_ACT_RELU6 ? 6.0f : PT_ACT_NO_CAP; }

/* max(v, 0) then min(., cap), with NaN -> 0, as the ReLU kernels compute it. */
static inline float pt_act_clamp(float v, float cap)
{
    v = v > 0.0f ? v : 0.0f;
    return v < cap ? v : cap;
}

/* The activation's backward given its output v: g where 0 < v < cap, else 0
 * (the select pt_relu*_f32_bwd computes). */
static inline float pt_act_grad_select(float v, float g, float cap)
{
    /* & rather than &&: no branch, so loops over it vectorise to a compare
     * and a blend (the same select; neither comparison has side effects) */
    return ((v > 0.0f) & (v < cap)) ? g : 0.0f;
}

/* Output height/width of a window op; <= 0 when the window does not fit. */
static inline int pt_out_extent(int in, int k, int stride, int pad_lo, int pad_hi)
{
    long span = (long)in + pad_lo + pad_hi - k;
    if (stride <= 0 || span < 0) return 0;
    return (int)(span / stride + 1);
}

static inline size_t pt_dims_count(pt_dims d)
{
    return (size_t)d.n * (size_t)d.h * (size_t)d.w * (size_t)d.c;
}

#ifdef __cplusplus
}
#endif
#endif
