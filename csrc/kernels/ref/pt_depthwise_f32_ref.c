/* Reference twins of pt_depthwise_f32.c: one core, one output element at a
 * time, written straight from the formulas in pt_depthwise.h. */
#include "pulptrain/pt_depthwise.h"
#include "../elem_common.h"

static size_t at(const pt_dims *d, int n, int h, int w, int c)
{
    return (((size_t)n * d->h + (size_t)h) * d->w + (size_t)w) * d->c + (size_t)c;
}

pt_status pt_depthwise_f32_fwd_ref(const pt_conv_params *p, const float *x, const float *w,
                                   const float *b, float *y)
{
    int OH, OW;
    pt_status st = pt_check_depthwise(p, &OH, &OW);
    if (st != PT_OK) return st;
    if (!x || !w || !y) return PT_ERR_NULL;
    const pt_dims out = {p->in.n, OH, OW, p->in.c};
    for (int n = 0; n < p->in.n; ++n)
        for (int oh = 0; oh < OH; ++oh)
            for (int ow = 0; ow < OW; ++ow)
                for (int c = 0; c < p->in.c; ++c) {
                    float acc = b ? b[c] : 0.0f;
                    for (int kh = 0; kh < p->kh; ++kh)
                        for (int kw = 0; kw < p->kw; ++kw) {
                            int ih = oh * p->stride_h - p->pad_top + kh;
                            int iw = ow * p->stride_w - p->pad_left + kw;
                            if (ih < 0 || ih >= p->in.h || iw < 0 || iw >= p->in.w) continue;
                            acc += x[at(&p->in, n, ih, iw, c)] * w[((size_t)kh * p->kw + kw) * p->in.c + c];
                        }
                    y[at(&out, n, oh, ow, c)] = acc;
                }
    return PT_OK;
}

pt_status pt_depthwise_f32_bwd_input_ref(const pt_conv_params *p, const float *w,
                                         const float *grad_y, float *grad_x)
{
    int OH, OW;
    pt_status st = pt_check_depthwise(p, &OH, &OW);
    if (st != PT_OK) return st;
    if (!w || !grad_y || !grad_x) return PT_ERR_NULL;
    const pt_dims out = {p->in.n, OH, OW, p->in.c};
    for (int n = 0; n < p->in.n; ++n)
        for (int ih = 0; ih < p->in.h; ++ih)
            for (int iw = 0; iw < p->in.w; ++iw)
                for (int c = 0; c < p->in.c; ++c) {
                    float acc = 0.0f;
                    for (int kh = 0; kh < p->kh; ++kh)
                        for (int kw = 0; kw < p->kw; ++kw) {
                            int th = ih + p->pad_top - kh, tw = iw + p->pad_left - kw;
                            if (th < 0 || tw < 0 || th % p->stride_h || tw % p->stride_w) continue;
                            int oh = th / p->stride_h, ow = tw / p->stride_w;
                            if (oh >= OH || ow >= OW) continue;
                            acc += grad_y[at(&out, n, oh, ow, c)] * w[((size_t)kh * p->kw + kw) * p->in.c + c];
                        }
                    grad_x[at(&p->in, n, ih, iw, c)] = acc;
                }
    return PT_OK;
}

pt_status pt_depthwise_f32_bwd_weight_ref(const pt_conv_params *p, const float *x,
                                          const float *grad_y, float *grad_w, float *grad_b)
{
    int OH, OW;
    pt_status st = pt_check_depthwise(p, &OH, &OW);
    if (st != PT_OK) return st;
    if (!x || !grad_y || !grad_w) return PT_ERR_NULL;
    const pt_dims out = {p->in.n, OH, OW, p->in.c};
    for (int c = 0; c < p->in.c; ++c) {
        for (int kh = 0; kh < p->kh; ++kh)
            for (int kw = 0; kw < p->kw; ++kw) {
                float total = 0.0f;
                for (int n = 0; n < p->in.n; ++n) {
                    float image = 0.0f;
                    for (int oh = 0; oh < OH; ++oh)
                        for (int ow = 0; ow < OW; ++ow) {
                            int ih = oh * p->stride_h - p->pad_top + kh;
                            int iw = ow * p->stride_w - p->pad_left + kw;
                            if (ih < 0 || ih >= p->in.h || iw < 0 || iw >= p->in.w) continue;
                            image += x[at(&p->in, n, ih, iw, c)] * grad_y[at(&out, n, oh, ow, c)];
                        }
                    total = n == 0 ? image : total + image;
                }
                grad_w[((size_t)kh * p->kw + kw) * p->in.c + c] = total;
            }
        if (grad_b) {
            float total = 0.0f;
            for (int n = 0; n < p->in.n; ++n) {
                float image = 0.0f;
                for (int oh = 0; oh < OH; ++oh)
                    for (int ow = 0; ow < OW; ++ow) image += grad_y[at(&out, n, oh, ow, c)];
                total = n == 0 ? image : total + image;
            }
            grad_b[c] = total;
        }
    }
    return PT_OK;
}
