/* Reference twins of pt_linear_f32.c: direct loops, one core, sums in order. */
#include "pulptrain/pt_linear.h"

static pt_status check(const pt_linear_params *p, const void *a, const void *b, const void *c)
{
    if (!p || !a || !b || !c) return PT_ERR_NULL;
    if (p->batch <= 0 || p->in_features <= 0 || p->out_features <= 0) return PT_ERR_SHAPE;
    return PT_OK;
}

pt_status pt_linear_f32_fwd_ref(const pt_linear_params *p, const float *x, const float *w,
                                const float *b, float *y)
{
    pt_status st = check(p, x, w, y);
    if (st != PT_OK) return st;
    const size_t in = (size_t)p->in_features, out = (size_t)p->out_features;
    for (size_t n = 0; n < (size_t)p->batch; ++n)
        for (size_t o = 0; o < out; ++o) {
            float sum = 0.0f;
            for (size_t i = 0; i < in; ++i) sum += x[n * in + i] * w[o * in + i];
            y[n * out + o] = b ? sum + b[o] : sum;
        }
    return PT_OK;
}

pt_status pt_linear_f32_bwd_input_ref(const pt_linear_params *p, const float *w,
                                      const float *grad_y, float *grad_x)
{
    pt_status st = check(p, w, grad_y, grad_x);
    if (st != PT_OK) return st;
    const size_t in = (size_t)p->in_features, out = (size_t)p->out_features;
    for (size_t n = 0; n < (size_t)p->batch; ++n)
        for (size_t i = 0; i < in; ++i) {
            float sum = 0.0f;
            for (size_t o = 0; o < out; ++o) sum += grad_y[n * out + o] * w[o * in + i];
            grad_x[n * in + i] = sum;
        }
    return PT_OK;
}

pt_status pt_linear_f32_bwd_weight_ref(const pt_linear_params *p, const float *x,
                                       const float *grad_y, float *grad_w, float *grad_b)
{
    pt_status st = check(p, x, grad_y, grad_w);
    if (st != PT_OK) return st;
    const size_t in = (size_t)p->in_features, out = (size_t)p->out_features;
    const size_t batch = (size_t)p->batch;
    for (size_t o = 0; o < out; ++o) {
        for (size_t i = 0; i < in; ++i) {
            float sum = 0.0f;
            for (size_t n = 0; n < batch; ++n) sum += grad_y[n * out + o] * x[n * in + i];
            grad_w[o * in + i] = sum;
        }
        if (grad_b) {
            float sum = 0.0f;
            for (size_t n = 0; n < batch; ++n) sum += grad_y[n * out + o];
            grad_b[o] = sum;
        }
    }
    return PT_OK;
}
