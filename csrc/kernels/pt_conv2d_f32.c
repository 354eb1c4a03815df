/* Dense conv2d forward / grad-input / grad-weight: im2col (or col2im) plus the
 * shared GEMM, a fixed number of whole images at a time (see pt_conv2d.h). */
#include <string.h>
#include "pulptrain/pt_conv2d.h"
#include "pulptrain/pt_gemm.h"
#include "pulptrain/internal.h"
#include "pt_gemm_internal.h"

/* Upper bound (in floats) on an im2col chunk unless one image needs more; a
 * build for a small memory sets its own (the RISC-V profiles do). */
#ifndef PT_CONV2D_COLS_BUDGET_FLOATS
#define PT_CONV2D_COLS_BUDGET_FLOATS ((size_t)1 << 22)
#endif

typedef struct conv_plan {
    pt_conv2d_geom g;
    int direct;                 /* 1x1, stride 1, no padding: x is its own im2col */
    size_t img_rows;            /* output pixels per image */
    size_t chunk_imgs;          /* images per im2col chunk */
    size_t cols_bytes;          /* aligned size of the im2col buffer (0 if direct) */
} conv_plan;

static pt_status make_plan(const pt_conv_params *p, conv_plan *plan)
{
    pt_status st = pt_conv2d_geometry(p, &plan->g);
    if (st != PT_OK) return st;
    plan->direct = p->kh == 1 && p->kw == 1 && p->stride_h == 1 && p->stride_w == 1 &&
                   !p->pad_top && !p->pad_bottom && !p->pad_left && !p->pad_right;
    plan->img_rows = plan->g.oh * plan->g.ow;
    size_t per_img = plan->img_rows * plan->g.patch;
    plan->chunk_imgs = plan->direct ? (size_t)p->in.n : PT_CONV2D_COLS_BUDGET_FLOATS / per_img;
    if (plan->chunk_imgs < 1) plan->chunk_imgs = 1;
    if (plan->chunk_imgs > (size_t)p->in.n) plan->chunk_imgs = (size_t)p->in.n;
    size_t floats = plan->direct ? 0 : plan->chunk_imgs * per_img;
    plan->cols_bytes = (floats * sizeof(float) + PT_SCRATCH_ALIGN - 1) / PT_SCRATCH_ALIGN * PT_SCRATCH_ALIGN;
    return PT_OK;
}

/* The three GEMMs over a chunk of `rows` output pixels. */
static pt_gemm_params fwd_gemm(const pt_conv_params *p, const conv_plan *c, size_t rows)
{
    pt_gemm_params g = {(int)rows, p->out_c, (int)c->g.patch, 0, 1,
                        (int)c->g.patch, (int)c->g.patch, p->out_c, 0, PT_ACT_NONE};
    return g;
}

static pt_gemm_params bwd_input_gemm(const pt_conv_params *p, const conv_plan *c, size_t rows)
{
    pt_gemm_params g = {(int)rows, (int)c->g.patch, p->out_c, 0, 0,
                        p->out_c, (int)c->g.patch, (int)c->g.patch, 0, PT_ACT_NONE};
    return g;
}

static pt_gemm_params bwd_weight_gemm(const pt_conv_params *p, const conv_plan *c, size_t rows,
                                      int accumulate)
{
    pt_gemm_params g = {p->out_c, (int)c->g.patch, (int)rows, 1, 0,
                        p->out_c, (int)c->g.patch, (int)c->g.patch, accumulate, PT_ACT_NONE};
    return g;
}

static size_t total_scratch(const conv_plan *c, const pt_gemm_params *g, int num_threads)
{
    return PT_SCRATCH_ALIGN + c->cols_bytes + pt_sgemm_f32_scratch_bytes(g, num_threads);
}

size_t pt_conv2d_f32_fwd_scratch_bytes(const pt_conv_params *p, int num_threads)
{
    conv_plan c;
    if (make_plan(p, &c) != PT_OK) return 0;
    pt_gemm_params g = fwd_gemm(p, &c, c.chunk_imgs * c.img_rows);
    return total_scratch(&c, &g, num_threads);
}

size_t pt_conv2d_f32_bwd_input_scratch_bytes(const pt_conv_params *p, int num_threads)
{
    conv_plan c;
    if (make_plan(p, &c) != PT_OK) return 0;
    pt_gemm_params g = bwd_input_gemm(p, &c, c.chunk_imgs * c.img_rows);
    return total_scratch(&c, &g, num_threads);
}

size_t pt_conv2d_f32_bwd_weight_scratch_bytes(const pt_conv_params *p, int num_threads)
{
    conv_plan c;
    if (make_plan(p, &c) != PT_OK) return 0;
    pt_gemm_params g = bwd_weight_gemm(p, &c, c.chunk_imgs * c.img_rows, 0);
    return total_scratch(&c, &g, num_threads);
}

/* ------------------------------------------------------- im2col / col2im */
typedef struct cols_job {
    const pt_conv_params *p;
    pt_conv2d_geom g;
    size_t first, count;        /* im2col: output pixels (n * OH * OW + pixel) */
    int tap0, tap1;             /* the taps (kh * KW + kw) [tap0, tap1) of each row */
    int accumulate;             /* col2im: add to grad_x instead of setting it */
    const float *src;
    float *dst;
} cols_job;

/* cols[r, (kh, kw, ci)] = x at the (kh, kw) tap of output pixel first + r, or
 * 0; taps [tap0, tap1) only, so a row is (tap1 - tap0) * Cin long. */
static void im2col_task(void *arg, int core, int ncores)
{
    const cols_job *job = (const cols_job *)arg;
    const pt_conv_params *p = job->p;
    const size_t ow = job->g.ow, img_rows = job->g.oh * job->g.ow;
    const size_t cin = (size_t)p->in.c, width = (size_t)(job->tap1 - job->tap0) * cin;
    size_t rb, re;
    pt_split(job->count, core, ncores, &rb, &re);
    for (size_t r = rb; r < re; ++r) {
        size_t n = (job->first + r) / img_rows, pix = (job->first + r) % img_rows;
        long ih0 = (long)(pix / ow) * p->stride_h - p->pad_top;
        long iw0 = (long)(pix % ow) * p->stride_w - p->pad_left;
        float *row = job->dst + r * width;
        for (int tap = job->tap0; tap < job->tap1; ++tap, row += cin) {
            long ih = ih0 + tap / p->kw, iw = iw0 + tap % p->kw;
            if (ih < 0 || ih >= p->in.h || iw < 0 || iw >= p->in.w) {
                memset(row, 0, cin * sizeof(float));
            } else {
                const float *px = job->src + ((n * (size_t)p->in.h + (size_t)ih) * (size_t)p->in.w +
                                              (size_t)iw) * cin;
                memcpy(row, px, cin * sizeof(float));
            }
        }
    }
}

/* grad_x[n, ih, iw, :] = sum over taps (kh, kw), in that order, of the
 * grad-cols row of the output pixel that tap reads it from; all of p's
 * images; taps [tap0, tap1) only (grad-cols rows hold just those), added to
 * grad_x when accumulating. */
static void col2im_task(void *arg, int core, int ncores)
{
    const cols_job *job = (const cols_job *)arg;
    const pt_conv_params *p = job->p;
    const size_t oh = job->g.oh, ow = job->g.ow, cin = (size_t)p->in.c;
    const size_t width = (size_t)(job->tap1 - job->tap0) * cin, in_w = (size_t)p->in.w;
    size_t rb, re;
    pt_split((size_t)p->in.n * (size_t)p->in.h, core, ncores, &rb, &re);
    for (size_t r = rb; r < re; ++r) {
        size_t n = r / (size_t)p->in.h, ih = r % (size_t)p->in.h;
        float *out_row = job->dst + (n * (size_t)p->in.h + ih) * in_w * cin;
        if (!job->accumulate) memset(out_row, 0, in_w * cin * sizeof(float));
        for (int kh = job->tap0 / p->kw; kh <= (job->tap1 - 1) / p->kw; ++kh) {
            long th = (long)ih + p->pad_top - kh;
            if (th < 0 || th % p->stride_h) continue;
            size_t out_h = (size_t)(th / p->stride_h);
            if (out_h >= oh) continue;
            for (size_t iw = 0; iw < in_w; ++iw) {
                float *out = out_row + iw * cin;
                const int kw0 = job->tap0 > kh * p->kw ? job->tap0 - kh * p->kw : 0;
                const int kw1 = job->tap1 - kh * p->kw < p->kw ? job->tap1 - kh * p->kw : p->kw;
                for (int kw = kw0; kw < kw1; ++kw) {
                    long tw = (long)iw + p->pad_left - kw;
                    if (tw < 0 || tw % p->stride_w) continue;
                    size_t out_w = (size_t)(tw / p->stride_w);
                    if (out_w >= ow) continue;
                    const float *src = job->src + ((n * oh + out_h) * ow + out_w) * width +
                                       ((size_t)(kh * p->kw + kw - job->tap0)) * cin;
                    for (size_t ci = 0; ci < cin; ++ci) out[ci] += src[ci];
                }
            }
        }
    }
}

/* Rows of im2col / col2im work below which one core does it all. */
#define COLS_PARALLEL_MIN_ROWS 64

pt_status pt_conv2d_im2col(const pt_ctx *ctx, const pt_conv_params *p, const float *x, size_t first,
                           size_t count, int tap0, int tap1, float *cols)
{
    cols_job job;
    job.p = p;
    pt_status st = pt_conv2d_geometry(p, &job.g);
    if (st != PT_OK) return st;
    if (first + count > (size_t)p->in.n * job.g.oh * job.g.ow) return PT_ERR_SHAPE;
    if (tap0 < 0 || tap0 >= tap1 || tap1 > p->kh * p->kw) return PT_ERR_PARAM;
    job.first = first;
    job.count = count;
    job.tap0 = tap0;
    job.tap1 = tap1;
    job.accumulate = 0;
    job.src = x;
    job.dst = cols;
    return pt_fork(pt_threads_for(ctx, count, COLS_PARALLEL_MIN_ROWS), im2col_task, &job);
}

pt_status pt_conv2d_col2im(const pt_ctx *ctx, const pt_conv_params *p, const float *grad_cols, int tap0,
                           int tap1, int accumulate, float *grad_x)
{
    cols_job job;
    job.p = p;
    pt_status st = pt_conv2d_geometry(p, &job.g);
    if (st != PT_OK) return st;
    if (tap0 < 0 || tap0 >= tap1 || tap1 > p->kh * p->kw) return PT_ERR_PARAM;
    job.first = job.count = 0;
    job.tap0 = tap0;
    job.tap1 = tap1;
    job.accumulate = accumulate;
    job.src = grad_cols;
    job.dst = grad_x;
    size_t rows = (size_t)p->in.n * (size_t)p->in.h;
    return pt_fork(pt_threads_for(ctx, rows, COLS_PARALLEL_MIN_ROWS), col2im_task, &job);
}

size_t pt_conv2d_chunk_images(const pt_conv_params *p)
{
    conv_plan c;
    return make_plan(p, &c) == PT_OK ? c.chunk_imgs : 0;
}

/* ------------------------------------------------------------ the kernels */
typedef struct conv_run {
    conv_plan plan;
    float *cols;                /* im2col buffer in the scratch */
    pt_ctx gemm_ctx;            /* the rest of the scratch, for the GEMM */
} conv_run;

/* Validate everything, then carve the scratch; need = this kernel's GEMM. */
static pt_status prepare(const pt_ctx *ctx, const pt_conv_params *p,
                         pt_gemm_params (*gemm_of)(const pt_conv_params *, const conv_plan *, size_t),
                         const void *in1, const void *in2, const void *out, conv_run *run)
{
    pt_status st = pt_check_ctx(ctx, 0);
    if (st != PT_OK) return st;
    st = make_plan(p, &run->plan);
    if (st != PT_OK) return st;
    if (!in1 || !in2 || !out) return PT_ERR_NULL;
    pt_gemm_params g = gemm_of(p, &run->plan, run->plan.chunk_imgs * run->plan.img_rows);
    st = pt_check_ctx(ctx, total_scratch(&run->plan, &g, ctx->num_threads));
    if (st != PT_OK) return st;
    run->cols = (float *)pt_align_scratch(ctx->scratch);
    run->gemm_ctx.num_threads = ctx->num_threads;
    run->gemm_ctx.scratch = (char *)run->cols + run->plan.cols_bytes;
    run->gemm_ctx.scratch_bytes = pt_sgemm_f32_scratch_bytes(&g, ctx->num_threads);
    return PT_OK;
}

static pt_gemm_params bwd_weight_gemm_first(const pt_conv_params *p, const conv_plan *c, size_t rows)
{
    return bwd_weight_gemm(p, c, rows, 0);
}

/* Images in the chunk that starts at image img0. */
static size_t chunk_len(const pt_conv_params *p, const conv_plan *c, size_t img0)
{
    size_t left = (size_t)p->in.n - img0;
    return left < c->chunk_imgs ? left : c->chunk_imgs;
}

/* The im2col rows of images [img0, img0 + imgs) into *cols (x itself when
 * the conv is direct). */
static pt_status im2col(const pt_ctx *ctx, const pt_conv_params *p, const conv_run *run,
                        const float *x, size_t img0, size_t imgs, const float **cols)
{
    if (run->plan.direct) {
        *cols = x;
        return PT_OK;
    }
    *cols = run->cols;
    return pt_conv2d_im2col(ctx, p, x, img0 * run->plan.img_rows, imgs * run->plan.img_rows, 0,
                            p->kh * p->kw, run->cols);
}

pt_status pt_conv2d_f32_fwd(const pt_ctx *ctx, const pt_conv_params *p, const float *x,
                            const float *w, const float *b, float *y)
{
    conv_run run;
    pt_status st = prepare(ctx, p, fwd_gemm, x, w, y, &run);
    const conv_plan *c = &run.plan;
    for (size_t img0 = 0; st == PT_OK && img0 < (size_t)p->in.n; img0 += c->chunk_imgs) {
        size_t imgs = chunk_len(p, c, img0);
        const float *cols;
        st = im2col(ctx, p, &run, x, img0, imgs, &cols);
        pt_gemm_params g = fwd_gemm(p, c, imgs * c->img_rows);
        if (st == PT_OK) st = pt_sgemm_f32(&run.gemm_ctx, &g, cols, w, b, y + img0 * c->img_rows * (size_t)p->out_c);
    }
    return st;
}

pt_status pt_conv2d_f32_bwd_input(const pt_ctx *ctx, const pt_conv_params *p, const float *w,
                                  const float *grad_y, float *grad_x)
{
    conv_run run;
    pt_status st = prepare(ctx, p, bwd_input_gemm, w, grad_y, grad_x, &run);
    const conv_plan *c = &run.plan;
    for (size_t img0 = 0; st == PT_OK && img0 < (size_t)p->in.n; img0 += c->chunk_imgs) {
        size_t imgs = chunk_len(p, c, img0);
        pt_gemm_params g = bwd_input_gemm(p, c, imgs * c->img_rows);
        const float *gy = grad_y + img0 * c->img_rows * (size_t)p->out_c;
        st = pt_sgemm_f32(&run.gemm_ctx, &g, gy, w, NULL, c->direct ? grad_x : run.cols);
        if (st == PT_OK && !c->direct) {
            pt_conv_params chunk = *p;
            chunk.in.n = (int)imgs;
            st = pt_conv2d_col2im(ctx, &chunk, run.cols, 0, p->kh * p->kw, 0,
                                  grad_x + img0 * (size_t)p->in.h * (size_t)p->in.w * (size_t)p->in.c);
        }
    }
    return st;
}

pt_status pt_conv2d_f32_bwd_weight(const pt_ctx *ctx, const pt_conv_params *p, const float *x,
                                   const float *grad_y, float *grad_w, float *grad_b)
{
    conv_run run;
    pt_status st = prepare(ctx, p, bwd_weight_gemm_first, x, grad_y, grad_w, &run);
    const conv_plan *c = &run.plan;
    for (size_t img0 = 0; st == PT_OK && img0 < (size_t)p->in.n; img0 += c->chunk_imgs) {
        size_t imgs = chunk_len(p, c, img0);
        const float *cols;
        st = im2col(ctx, p, &run, x, img0, imgs, &cols);
        /* chunks after the first add to grad_w: a fixed order of partial sums */
        pt_gemm_params g = bwd_weight_gemm(p, c, imgs * c->img_rows, img0 > 0);
        const float *gy = grad_y + img0 * c->img_rows * (size_t)p->out_c;
        if (st == PT_OK) st = pt_sgemm_f32(&run.gemm_ctx, &g, gy, cols, NULL, grad_w);
    }
    if (st == PT_OK && grad_b)
        st = pt_colsum_f32(ctx, (size_t)p->in.n * c->img_rows, (size_t)p->out_c, grad_y, grad_b);
    return st;
}
