/* Reference twins of pt_conv2d_f32.c: the convolution sums written out
 * directly, one core, no scratch. */
#include "pulptrain/pt_conv2d.h"
#include "../pt_gemm_internal.h"

/* Index of x[n, ih, iw, 0] when (ih, iw) is inside x, else -1. */
static long tap(const pt_conv_params *p, size_t n, long ih, long iw)
{
    if (ih < 0 || ih >= p->in.h || iw < 0 || iw >= p->in.w) return -1;
    return (long)(((n * (size_t)p->in.h + (size_t)ih) * (size_t)p->in.w + (size_t)iw) * (size_t)p->in.c);
}

static pt_status check(const pt_conv_params *p, const void *a, const void *b, const void *c,
                       pt_conv2d_geom *g)
{
    pt_status st = pt_conv2d_geometry(p, g);
    if (st != PT_OK) return st;
    return (!a || !b || !c) ? PT_ERR_NULL : PT_OK;
}

pt_status pt_conv2d_f32_fwd_ref(const pt_conv_params *p, const float *x, const float *w,
                                const float *b, float *y)
{
    pt_conv2d_geom g;
    pt_status st = check(p, x, w, y, &g);
    if (st != PT_OK) return st;
    const size_t cin = (size_t)p->in.c;
    for (size_t n = 0; n < (size_t)p->in.n; ++n)
        for (size_t oh = 0; oh < g.oh; ++oh)
            for (size_t ow = 0; ow < g.ow; ++ow)
                for (size_t co = 0; co < (size_t)p->out_c; ++co) {
                    float sum = 0.0f;
                    for (int kh = 0; kh < p->kh; ++kh)
                        for (int kw = 0; kw < p->kw; ++kw) {
                            long at = tap(p, n, (long)oh * p->stride_h - p->pad_top + kh,
                                          (long)ow * p->stride_w - p->pad_left + kw);
                            if (at < 0) continue;
                            const float *wk = w + (co * (size_t)p->kh * p->kw + (size_t)kh * p->kw + kw) * cin;
                            for (size_t ci = 0; ci < cin; ++ci) sum += x[(size_t)at + ci] * wk[ci];
                        }
                    y[((n * g.oh + oh) * g.ow + ow) * (size_t)p->out_c + co] = b ? sum + b[co] : sum;
                }
    return PT_OK;
}

pt_status pt_conv2d_f32_bwd_input_ref(const pt_conv_params *p, const float *w,
                                      const float *grad_y, float *grad_x)
{
    pt_conv2d_geom g;
    pt_status st = check(p, w, grad_y, grad_x, &g);
    if (st != PT_OK) return st;
    const size_t cin = (size_t)p->in.c, cout = (size_t)p->out_c;
    for (size_t i = 0; i < pt_dims_count(p->in); ++i) grad_x[i] = 0.0f;
    for (size_t n = 0; n < (size_t)p->in.n; ++n)
        for (size_t oh = 0; oh < g.oh; ++oh)
            for (size_t ow = 0; ow < g.ow; ++ow) {
                const float *gy = grad_y + ((n * g.oh + oh) * g.ow + ow) * cout;
                for (int kh = 0; kh < p->kh; ++kh)
                    for (int kw = 0; kw < p->kw; ++kw) {
                        long at = tap(p, n, (long)oh * p->stride_h - p->pad_top + kh,
                                      (long)ow * p->stride_w - p->pad_left + kw);
                        if (at < 0) continue;
                        for (size_t ci = 0; ci < cin; ++ci) {
                            float sum = 0.0f;
                            for (size_t co = 0; co < cout; ++co)
                                sum += gy[co] * w[(co * (size_t)p->kh * p->kw + (size_t)kh * p->kw + kw) * cin + ci];
                            grad_x[(size_t)at + ci] += sum;
                        }
                    }
            }
    return PT_OK;
}

pt_status pt_conv2d_f32_bwd_weight_ref(const pt_conv_params *p, const float *x,
                                       const float *grad_y, float *grad_w, float *grad_b)
{
    pt_conv2d_geom g;
    pt_status st = check(p, x, grad_y, grad_w, &g);
    if (st != PT_OK) return st;
    const size_t cin = (size_t)p->in.c, cout = (size_t)p->out_c;
    const size_t pixels = (size_t)p->in.n * g.oh * g.ow;
    for (size_t co = 0; co < cout; ++co) {
        for (int kh = 0; kh < p->kh; ++kh)
            for (int kw = 0; kw < p->kw; ++kw)
                for (size_t ci = 0; ci < cin; ++ci) {
                    float sum = 0.0f;
                    for (size_t n = 0; n < (size_t)p->in.n; ++n)
                        for (size_t oh = 0; oh < g.oh; ++oh)
                            for (size_t ow = 0; ow < g.ow; ++ow) {
                                long at = tap(p, n, (long)oh * p->stride_h - p->pad_top + kh,
                                              (long)ow * p->stride_w - p->pad_left + kw);
                                if (at < 0) continue;
                                sum += grad_y[((n * g.oh + oh) * g.ow + ow) * cout + co] * x[(size_t)at + ci];
                            }
                    grad_w[(co * (size_t)p->kh * p->kw + (size_t)kh * p->kw + kw) * cin + ci] = sum;
                }
        if (grad_b) {
            float sum = 0.0f;
            for (size_t r = 0; r < pixels; ++r) sum += grad_y[r * cout + co];
            grad_b[co] = sum;
        }
    }
    return PT_OK;
}
