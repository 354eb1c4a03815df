/* Reference twins of the INT8 kernels: one core, the plainest loops, weights
 * in their natural layouts. */
#include "q_internal.h"

static pt_status conv_ref(const pt_conv_params *p, int depthwise, int pixel_input, const uint8_t *x,
                          const int8_t *w, const pt_requant *rq, uint8_t *y)
{
    int oh, ow;
    pt_status st = pt_q_check(p, depthwise, x, w, rq, y, &oh, &ow);
    if (st != PT_OK) return st;
    const int cin = p->in.c, cout = p->out_c;
    for (int n = 0; n < p->in.n; ++n)
        for (int oy = 0; oy < oh; ++oy)
            for (int ox = 0; ox < ow; ++ox)
                for (int co = 0; co < cout; ++co) {
                    int32_t acc = rq->bias[co];
                    for (int ky = 0; ky < p->kh; ++ky)
                        for (int kx = 0; kx < p->kw; ++kx) {
                            int iy = oy * p->stride_h - p->pad_top + ky;
                            int ix = ox * p->stride_w - p->pad_left + kx;
                            if (iy < 0 || iy >= p->in.h || ix < 0 || ix >= p->in.w) continue;
                            const uint8_t *xp = x + (((size_t)n * p->in.h + iy) * p->in.w + ix) * cin;
                            if (depthwise) {
                                acc += (int32_t)xp[co] * w[((size_t)ky * p->kw + kx) * cin + co];
                                continue;
                            }
                            for (int ci = 0; ci < cin; ++ci) {
                                int32_t v = pixel_input ? 2 * (int32_t)xp[ci] - 255 : (int32_t)xp[ci];
                                acc += v * w[(((size_t)co * p->kh + ky) * p->kw + kx) * cin + ci];
                            }
                        }
                    y[(((size_t)n * oh + oy) * ow + ox) * cout + co] =
                        pt_requantize(acc, rq->multiplier[co], rq->shift[co], rq->act_max);
                }
    return PT_OK;
}

pt_status pt_q_conv2d_fwd_ref(const pt_conv_params *p, int pixel_input, const uint8_t *x,
                              const int8_t *w, const pt_requant *rq, uint8_t *y)
{
    return conv_ref(p, 0, pixel_input != 0, x, w, rq, y);
}

pt_status pt_q_depthwise_fwd_ref(const pt_conv_params *p, const uint8_t *x, const int8_t *w,
                                 const pt_requant *rq, uint8_t *y)
{
    return conv_ref(p, 1, 0, x, w, rq, y);
}

pt_status pt_q_pointwise_fwd_ref(const pt_conv_params *p, const uint8_t *x, const int8_t *w,
                                 const pt_requant *rq, uint8_t *y)
{
    if (p && (p->kh != 1 || p->kw != 1 || p->stride_h != 1 || p->stride_w != 1)) return PT_ERR_PARAM;
    return conv_ref(p, 0, 0, x, w, rq, y);
}
