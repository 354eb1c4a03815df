/* Pointwise convolution: a linear layer over the N*H*W pixels of the batch. */
#include "pulptrain/pt_pointwise.h"
#include "pulptrain/pt_linear.h"
#include "pt_gemm_internal.h"

#define SCRATCH_VIA_LINEAR(name)                                                   \
    size_t pt_pointwise_f32_##name##_scratch_bytes(const pt_conv_params *p, int nt)   \
    {                                                                               \
        pt_linear_params lp;                                                        \
        if (pt_pointwise_as_linear(p, &lp) != PT_OK) return 0;                      \
        return pt_linear_f32_##name##_scratch_bytes(&lp, nt);                      \
    }
SCRATCH_VIA_LINEAR(fwd)
SCRATCH_VIA_LINEAR(bwd_input)
SCRATCH_VIA_LINEAR(bwd_weight)

pt_status pt_pointwise_f32_fwd(const pt_ctx *ctx, const pt_conv_params *p, const float *x,
                               const float *w, const float *b, float *y)
{
    pt_linear_params lp;
    pt_status st = pt_pointwise_as_linear(p, &lp);
    return st != PT_OK ? st : pt_linear_f32_fwd(ctx, &lp, x, w, b, y);
}

pt_status pt_pointwise_f32_fwd_act(const pt_ctx *ctx, const pt_conv_params *p, pt_act act,
                                   const float *x, const float *w, const float *b, float *y)
{
    pt_linear_params lp;
    pt_status st = pt_pointwise_as_linear(p, &lp);
    return st != PT_OK ? st : pt_linear_f32_fwd_act(ctx, &lp, act, x, w, b, y);
}

pt_status pt_pointwise_f32_bwd_input(const pt_ctx *ctx, const pt_conv_params *p, const float *w,
                                     const float *grad_y, float *grad_x)
{
    pt_linear_params lp;
    pt_status st = pt_pointwise_as_linear(p, &lp);
    return st != PT_OK ? st : pt_linear_f32_bwd_input(ctx, &lp, w, grad_y, grad_x);
}

pt_status pt_pointwise_f32_bwd_input_act(const pt_ctx *ctx, const pt_conv_params *p, pt_act act,
                                         const float *w, const float *grad_y, const float *x, float *grad_x)
{
    pt_linear_params lp;
    pt_status st = pt_pointwise_as_linear(p, &lp);
    return st != PT_OK ? st : pt_linear_f32_bwd_input_act(ctx, &lp, act, w, grad_y, x, grad_x);
}

pt_status pt_pointwise_f32_bwd_weight(const pt_ctx *ctx, const pt_conv_params *p, const float *x,
                                      const float *grad_y, float *grad_w, float *grad_b)
{
    pt_linear_params lp;
    pt_status st = pt_pointwise_as_linear(p, &lp);
    return st != PT_OK ? st : pt_linear_f32_bwd_weight(ctx, &lp, x, grad_y, grad_w, grad_b);
}
