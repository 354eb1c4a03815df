/* Reference twins of pt_pointwise_f32.c: the linear reference twins over N*H*W rows. */
#include "pulptrain/pt_pointwise.h"
#include "pulptrain/pt_linear.h"
#include "../pt_gemm_internal.h"

pt_status pt_pointwise_f32_fwd_ref(const pt_conv_params *p, const float *x, const float *w,
                                   const float *b, float *y)
{
    pt_linear_params lp;
    pt_status st = pt_pointwise_as_linear(p, &lp);
    return st != PT_OK ? st : pt_linear_f32_fwd_ref(&lp, x, w, b, y);
}

pt_status pt_pointwise_f32_bwd_input_ref(const pt_conv_params *p, const float *w,
                                         const float *grad_y, float *grad_x)
{
    pt_linear_params lp;
    pt_status st = pt_pointwise_as_linear(p, &lp);
    return st != PT_OK ? st : pt_linear_f32_bwd_input_ref(&lp, w, grad_y, grad_x);
}

pt_status pt_pointwise_f32_bwd_weight_ref(const pt_conv_params *p, const float *x,
                                          const float *grad_y, float *grad_w, float *grad_b)
{
    pt_linear_params lp;
    pt_status st = pt_pointwise_as_linear(p, &lp);
    return st != PT_OK ? st : pt_linear_f32_bwd_weight_ref(&lp, x, grad_y, grad_w, grad_b);
}
