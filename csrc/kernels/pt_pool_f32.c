/* Average pooling (windowed and global), FP32 NHWC, forward and backward.
 * Windowed: split over output rows (forward) or input rows (backward).
 * Global: split over (image, channel block); each output sums its pixels in
 * raster order on one core. Channel loops are innermost and contiguous. */
#include "pulptrain/pt_pool.h"
#include "elem_common.h"

#define POOL_BLOCK 64  /* channels per global-pool work item */

typedef struct pool_job {
    const pt_pool_params *p;
    pt_dims in;
    int out_h, out_w;
    const float *in_data;     /* x (forward) or grad_y (backward) */
    float *out;
    const float *mask;        /* global backward through an activation: its output x, or NULL */
    float mask_cap;
} pool_job;

static void avgpool_fwd_task(void *arg, int core, int ncores)
{
    const pool_job *j = (const pool_job *)arg;
    const pt_pool_params *p = j->p;
    const int C = p->in.c, H = p->in.h, W = p->in.w;
    const float count = (float)(p->kh * p->kw);
    size_t b, e;
    pt_split((size_t)p->in.n * (size_t)j->out_h, core, ncores, &b, &e);
    for (size_t row = b; row < e; ++row) {
        const int n = (int)(row / (size_t)j->out_h), oh = (int)(row % (size_t)j->out_h);
        for (int ow = 0; ow < j->out_w; ++ow) {
            float *restrict y = j->out + (row * (size_t)j->out_w + (size_t)ow) * C;
            for (int c = 0; c < C; ++c) y[c] = 0.0f;
            for (int kh = 0; kh < p->kh; ++kh)
                for (int kw = 0; kw < p->kw; ++kw) {
                    const float *restrict x = j->in_data +
                        (((size_t)n * H + (size_t)(oh * p->stride_h + kh)) * W + (size_t)(ow * p->stride_w + kw)) * C;
                    for (int c = 0; c < C; ++c) y[c] += x[c];
                }
            for (int c = 0; c < C; ++c) y[c] /= count;
        }
    }
}

static void avgpool_bwd_task(void *arg, int core, int ncores)
{
    const pool_job *j = (const pool_job *)arg;
    const pt_pool_params *p = j->p;
    const int C = p->in.c, H = p->in.h, W = p->in.w, OH = j->out_h, OW = j->out_w;
    const float count = (float)(p->kh * p->kw);
    size_t b, e;
    pt_split((size_t)p->in.n * (size_t)H, core, ncores, &b, &e);
    for (size_t row = b; row < e; ++row) {
        const int n = (int)(row / (size_t)H), ih = (int)(row % (size_t)H);
        int kh_first, kh_last;
        pt_taps_reaching(ih, 0, p->stride_h, p->kh, OH, &kh_first, &kh_last);
        for (int iw = 0; iw < W; ++iw) {
            int kw_first, kw_last;
            pt_taps_reaching(iw, 0, p->stride_w, p->kw, OW, &kw_first, &kw_last);
            float *restrict gx = j->out + (row * (size_t)W + (size_t)iw) * C;
            for (int c = 0; c < C; ++c) gx[c] = 0.0f;
            if (kh_first <= kh_last && kw_first <= kw_last) {
                /* descending taps = ascending window indices (oh, ow) */
                const int kh_top = kh_last - (kh_last - kh_first) % p->stride_h;
                const int kw_top = kw_last - (kw_last - kw_first) % p->stride_w;
                for (int kh = kh_top; kh >= kh_first; kh -= p->stride_h) {
                    const int oh = (ih - kh) / p->stride_h;
                    for (int kw = kw_top; kw >= kw_first; kw -= p->stride_w) {
                        const int ow = (iw - kw) / p->stride_w;
                        const float *restrict gy = j->in_data + (((size_t)n * OH + (size_t)oh) * OW + (size_t)ow) * C;
                        for (int c = 0; c < C; ++c) gx[c] += gy[c];
                    }
                }
            }
            for (int c = 0; c < C; ++c) gx[c] /= count;
        }
    }
}

static void global_fwd_task(void *arg, int core, int ncores)
{
    const pool_job *j = (const pool_job *)arg;
    const pt_dims d = j->in;
    const size_t blocks = ((size_t)d.c + POOL_BLOCK - 1) / POOL_BLOCK;
    const size_t pixels = (size_t)d.h * (size_t)d.w;
    const float count = (float)pixels;
    size_t b, e;
    pt_split((size_t)d.n * blocks, core, ncores, &b, &e);
    for (size_t item = b; item < e; ++item) {
        const size_t n = item / blocks;
        const int c0 = (int)(item % blocks) * POOL_BLOCK;
        const int c1 = c0 + POOL_BLOCK < d.c ? c0 + POOL_BLOCK : d.c;
        float *restrict y = j->out + n * (size_t)d.c;
        for (int c = c0; c < c1; ++c) y[c] = 0.0f;
        for (size_t px = 0; px < pixels; ++px) {
            const float *restrict x = j->in_data + (n * pixels + px) * (size_t)d.c;
            for (int c = c0; c < c1; ++c) y[c] += x[c];
        }
        for (int c = c0; c < c1; ++c) y[c] /= count;
    }
}

static void global_bwd_task(void *arg, int core, int ncores)
{
    const pool_job *j = (const pool_job *)arg;
    const pt_dims d = j->in;
    const size_t pixels = (size_t)d.h * (size_t)d.w;
    const float count = (float)pixels;
    size_t b, e;
    pt_split((size_t)d.n * pixels, core, ncores, &b, &e);
    for (size_t px = b; px < e; ++px) {
        const float *restrict gy = j->in_data + (px / pixels) * (size_t)d.c;
        float *restrict gx = j->out + px * (size_t)d.c;
        for (int c = 0; c < d.c; ++c) gx[c] = gy[c] / count;
        /* the mask as a second loop over the row, in L1: a select with the
         * division inside it would not vectorise */
        if (j->mask) {
            const float *restrict m = j->mask + px * (size_t)d.c;
            for (int c = 0; c < d.c; ++c) gx[c] = pt_act_grad_select(m[c], gx[c], j->mask_cap);
        }
    }
}

pt_status pt_avgpool_f32_fwd(const pt_ctx *ctx, const pt_pool_params *p, const float *x, float *y)
{
    int oh, ow;
    pt_status st = pt_check_ctx(ctx, 0);
    if (st == PT_OK) st = pt_check_pool(p, &oh, &ow);
    if (st != PT_OK) return st;
    if (!x || !y) return PT_ERR_NULL;
    pool_job job = {p, p->in, oh, ow, x, y, NULL, 0.0f};
    size_t rows = (size_t)p->in.n * (size_t)oh;
    size_t work = rows * (size_t)ow * (size_t)p->in.c * (size_t)(p->kh * p->kw);
    return pt_fork(pt_threads_for_work(ctx, rows, work), avgpool_fwd_task, &job);
}

pt_status pt_avgpool_f32_bwd(const pt_ctx *ctx, const pt_pool_params *p, const float *grad_y,
                             float *grad_x)
{
    int oh, ow;
    pt_status st = pt_check_ctx(ctx, 0);
    if (st == PT_OK) st = pt_check_pool(p, &oh, &ow);
    if (st != PT_OK) return st;
    if (!grad_y || !grad_x) return PT_ERR_NULL;
    pool_job job = {p, p->in, oh, ow, grad_y, grad_x, NULL, 0.0f};
    size_t rows = (size_t)p->in.n * (size_t)p->in.h;
    return pt_fork(pt_threads_for_work(ctx, rows, pt_dims_count(p->in)), avgpool_bwd_task, &job);
}

pt_status pt_global_avgpool_f32_fwd(const pt_ctx *ctx, pt_dims in, const float *x, float *y)
{
    pt_status st = pt_check_ctx(ctx, 0);
    if (st == PT_OK) st = pt_check_dims(in);
    if (st != PT_OK) return st;
    if (!x || !y) return PT_ERR_NULL;
    pool_job job = {NULL, in, 1, 1, x, y, NULL, 0.0f};
    size_t items = (size_t)in.n * (((size_t)in.c + POOL_BLOCK - 1) / POOL_BLOCK);
    return pt_fork(pt_threads_for_work(ctx, items, pt_dims_count(in)), global_fwd_task, &job);
}

pt_status pt_global_avgpool_f32_bwd(const pt_ctx *ctx, pt_dims in, const float *grad_y, float *grad_x)
{
    return pt_global_avgpool_f32_bwd_input_act(ctx, in, PT_ACT_NONE, grad_y, NULL, grad_x);
}

pt_status pt_global_avgpool_f32_bwd_input_act(const pt_ctx *ctx, pt_dims in, pt_act act, const float *grad_y,
                                              const float *x, float *grad_x)
{
    pt_status st = pt_check_ctx(ctx, 0);
    if (st == PT_OK) st = pt_check_dims(in);
    if (st != PT_OK) return st;
    if (act != PT_ACT_NONE && act != PT_ACT_RELU && act != PT_ACT_RELU6) return PT_ERR_PARAM;
    if (!grad_y || !grad_x || (act != PT_ACT_NONE && !x)) return PT_ERR_NULL;
    pool_job job = {NULL, in, 1, 1, grad_y, grad_x, act == PT_ACT_NONE ? NULL : x, pt_act_cap(act)};
    size_t items = (size_t)in.n * (size_t)in.h * (size_t)in.w;
    return pt_fork(pt_threads_for_work(ctx, items, pt_dims_count(in)), global_bwd_task, &job);
}
