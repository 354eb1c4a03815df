/* Reference twins of pt_pool_f32.c: one core, one output element at a time. */
#include "pulptrain/pt_pool.h"
#include "../elem_common.h"

static size_t at(const pt_dims *d, int n, int h, int w, int c)
{
    return (((size_t)n * d->h + (size_t)h) * d->w + (size_t)w) * d->c + (size_t)c;
}

pt_status pt_avgpool_f32_fwd_ref(const pt_pool_params *p, const float *x, float *y)
{
    int OH, OW;
    pt_status st = pt_check_pool(p, &OH, &OW);
    if (st != PT_OK) return st;
    if (!x || !y) return PT_ERR_NULL;
    const pt_dims out = {p->in.n, OH, OW, p->in.c};
    for (int n = 0; n < p->in.n; ++n)
        for (int oh = 0; oh < OH; ++oh)
            for (int ow = 0; ow < OW; ++ow)
                for (int c = 0; c < p->in.c; ++c) {
                    float sum = 0.0f;
                    for (int kh = 0; kh < p->kh; ++kh)
                        for (int kw = 0; kw < p->kw; ++kw)
                            sum += x[at(&p->in, n, oh * p->stride_h + kh, ow * p->stride_w + kw, c)];
                    y[at(&out, n, oh, ow, c)] = sum / (float)(p->kh * p->kw);
                }
    return PT_OK;
}

pt_status pt_avgpool_f32_bwd_ref(const pt_pool_params *p, const float *grad_y, float *grad_x)
{
    int OH, OW;
    pt_status st = pt_check_pool(p, &OH, &OW);
    if (st != PT_OK) return st;
    if (!grad_y || !grad_x) return PT_ERR_NULL;
    const pt_dims out = {p->in.n, OH, OW, p->in.c};
    for (int n = 0; n < p->in.n; ++n)
        for (int ih = 0; ih < p->in.h; ++ih)
            for (int iw = 0; iw < p->in.w; ++iw)
                for (int c = 0; c < p->in.c; ++c) {
                    float sum = 0.0f;
                    for (int oh = 0; oh < OH; ++oh)
                        for (int ow = 0; ow < OW; ++ow) {
                            int kh = ih - oh * p->stride_h, kw = iw - ow * p->stride_w;
                            if (kh >= 0 && kh < p->kh && kw >= 0 && kw < p->kw)
                                sum += grad_y[at(&out, n, oh, ow, c)];
                        }
                    grad_x[at(&p->in, n, ih, iw, c)] = sum / (float)(p->kh * p->kw);
                }
    return PT_OK;
}

pt_status pt_global_avgpool_f32_fwd_ref(pt_dims in, const float *x, float *y)
{
    pt_status st = pt_check_dims(in);
    if (st != PT_OK) return st;
    if (!x || !y) return PT_ERR_NULL;
    for (int n = 0; n < in.n; ++n)
        for (int c = 0; c < in.c; ++c) {
            float sum = 0.0f;
            for (int h = 0; h < in.h; ++h)
                for (int w = 0; w < in.w; ++w) sum += x[at(&in, n, h, w, c)];
            y[(size_t)n * in.c + c] = sum / (float)((size_t)in.h * in.w);
        }
    return PT_OK;
}

pt_status pt_global_avgpool_f32_bwd_ref(pt_dims in, const float *grad_y, float *grad_x)
{
    pt_status st = pt_check_dims(in);
    if (st != PT_OK) return st;
    if (!grad_y || !grad_x) return PT_ERR_NULL;
    for (int n = 0; n < in.n; ++n)
        for (int h = 0; h < in.h; ++h)
            for (int w = 0; w < in.w; ++w)
                for (int c = 0; c < in.c; ++c)
                    grad_x[at(&in, n, h, w, c)] = grad_y[(size_t)n * in.c + c] / (float)((size_t)in.h * in.w);
    return PT_OK;
}
