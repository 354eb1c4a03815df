/* INT8 dense and depthwise convolutions, split over output rows. The inner
 * loops run over contiguous output channels; on x86-64 they are compiled for
 * several vector widths and the loader picks one (target_clones), with the
 * same integer results. */
#include "q_internal.h"

#if defined(PT_Q_HAVE_X86) && !defined(__clang__) && !defined(__SANITIZE_ADDRESS__)
#define PT_Q_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define PT_Q_CLONES
#endif

#define ALIGN64(n) (((n) + (size_t)63) & ~(size_t)63)

/* ------------------------------------------------------------ dense conv */
typedef struct conv_job {
    const pt_conv_params *p;
    int oh, ow, pixel_input;
    const uint8_t *x;
    const int16_t *wt;          /* [K][Cout], K = KH*KW*Cin */
    const pt_requant *rq;
    uint8_t *y;
    unsigned char *thread_scratch;
    size_t thread_bytes;
    pt_q_requant_row_fn requant;
} conv_job;

static size_t conv_taps(const pt_conv_params *p)
{
    return (size_t)p->kh * (size_t)p->kw * (size_t)p->in.c;
}

size_t pt_q_conv2d_scratch_bytes(const pt_conv_params *p, int num_threads)
{
    if (!p || num_threads < 1 || p->kh <= 0 || p->kw <= 0 || p->in.c <= 0 || p->out_c <= 0) return 0;
    size_t k = conv_taps(p), cout = (size_t)p->out_c;
    return ALIGN64(k * cout * sizeof(int16_t)) +
           (size_t)num_threads * (ALIGN64(k * sizeof(int16_t)) + ALIGN64(cout * sizeof(int32_t)));
}

PT_Q_CLONES
static void conv_accumulate(const int16_t *patch, size_t taps, const int16_t *wt, int cout, int32_t *acc)
{
    for (size_t k = 0; k < taps; ++k) {
        const int32_t v = patch[k];
        if (v == 0) continue;   /* padding and zero activations */
        const int16_t *wk = wt + k * (size_t)cout;
        for (int co = 0; co < cout; ++co) acc[co] += v * (int32_t)wk[co];
    }
}

static void conv_task(void *arg, int core, int ncores)
{
    const conv_job *job = (const conv_job *)arg;
    const pt_conv_params *p = job->p;
    const int cin = p->in.c, cout = p->out_c;
    const size_t taps = conv_taps(p);
    int16_t *patch = (int16_t *)(job->thread_scratch + (size_t)core * job->thread_bytes);
    int32_t *acc = (int32_t *)((unsigned char *)patch + ALIGN64(taps * sizeof(int16_t)));
    size_t b, e;
    pt_split((size_t)p->in.n * (size_t)job->oh, core, ncores, &b, &e);
    for (size_t row = b; row < e; ++row) {
        const int n = (int)(row / (size_t)job->oh), oy = (int)(row % (size_t)job->oh);
        for (int ox = 0; ox < job->ow; ++ox) {
            size_t k = 0;
            for (int ky = 0; ky < p->kh; ++ky) {
                const int iy = oy * p->stride_h - p->pad_top + ky;
                for (int kx = 0; kx < p->kw; ++kx) {
                    const int ix = ox * p->stride_w - p->pad_left + kx;
                    if (iy < 0 || iy >= p->in.h || ix < 0 || ix >= p->in.w) {
                        for (int ci = 0; ci < cin; ++ci) patch[k++] = 0;
                        continue;
                    }
                    const uint8_t *xp = job->x + (((size_t)n * p->in.h + iy) * p->in.w + ix) * cin;
                    for (int ci = 0; ci < cin; ++ci)
                        patch[k++] = (int16_t)(job->pixel_input ? 2 * (int)xp[ci] - 255 : (int)xp[ci]);
                }
            }
            for (int co = 0; co < cout; ++co) acc[co] = job->rq->bias[co];
            conv_accumulate(patch, taps, job->wt, cout, acc);
            job->requant(acc, cout, job->rq, 0, job->y + (row * job->ow + ox) * (size_t)cout);
        }
    }
}

pt_status pt_q_conv2d_fwd(const pt_ctx *ctx, const pt_conv_params *p, int pixel_input,
                          const uint8_t *x, const int8_t *w, const pt_requant *rq, uint8_t *y)
{
    pt_status st = pt_check_ctx(ctx, 0);
    if (st != PT_OK) return st;
    int oh, ow;
    st = pt_q_check(p, 0, x, w, rq, y, &oh, &ow);
    if (st != PT_OK) return st;
    st = pt_check_ctx(ctx, pt_q_conv2d_scratch_bytes(p, ctx->num_threads));
    if (st != PT_OK) return st;
    const size_t taps = conv_taps(p), cout = (size_t)p->out_c;
    int16_t *wt = (int16_t *)ctx->scratch;
    for (size_t co = 0; co < cout; ++co)
        for (size_t k = 0; k < taps; ++k) wt[k * cout + co] = w[co * taps + k];
    conv_job job = {p, oh, ow, pixel_input != 0, x, wt, rq, y,
                    (unsigned char *)ctx->scratch + ALIGN64(taps * cout * sizeof(int16_t)),
                    ALIGN64(taps * sizeof(int16_t)) + ALIGN64(cout * sizeof(int32_t)),
                    pt_q_requant_row_impl()};
    return pt_fork(pt_threads_for(ctx, (size_t)p->in.n * (size_t)oh, 2), conv_task, &job);
}

/* ------------------------------------------------------------ depthwise */
/* Channels per accumulator block (kept on the stack). */
#define DW_BLOCK 64

typedef struct dw_job {
    const pt_conv_params *p;
    int oh, ow;
    const uint8_t *x;
    const int8_t *w;
    const pt_requant *rq;
    uint8_t *y;
    pt_q_requant_row_fn requant;
} dw_job;

PT_Q_CLONES
static void dw_accumulate(const uint8_t *xp, const int8_t *wp, int n, int32_t *acc)
{
    for (int j = 0; j < n; ++j) acc[j] += (int16_t)((int16_t)xp[j] * (int16_t)wp[j]);
}

static void dw_task(void *arg, int core, int ncores)
{
    const dw_job *job = (const dw_job *)arg;
    const pt_conv_params *p = job->p;
    const int c = p->in.c;
    size_t b, e;
    pt_split((size_t)p->in.n * (size_t)job->oh, core, ncores, &b, &e);
    int32_t acc[DW_BLOCK];
    for (size_t row = b; row < e; ++row) {
        const int n = (int)(row / (size_t)job->oh), oy = (int)(row % (size_t)job->oh);
        for (int ox = 0; ox < job->ow; ++ox) {
            uint8_t *out = job->y + (row * job->ow + ox) * (size_t)c;
            for (int c0 = 0; c0 < c; c0 += DW_BLOCK) {
                const int nc = c - c0 < DW_BLOCK ? c - c0 : DW_BLOCK;
                for (int j = 0; j < nc; ++j) acc[j] = job->rq->bias[c0 + j];
                for (int ky = 0; ky < p->kh; ++ky) {
                    const int iy = oy * p->stride_h - p->pad_top + ky;
                    if (iy < 0 || iy >= p->in.h) continue;
                    for (int kx = 0; kx < p->kw; ++kx) {
                        const int ix = ox * p->stride_w - p->pad_left + kx;
                        if (ix < 0 || ix >= p->in.w) continue;
                        dw_accumulate(job->x + (((size_t)n * p->in.h + iy) * p->in.w + ix) * c + c0,
                                      job->w + ((size_t)ky * p->kw + kx) * c + c0, nc, acc);
                    }
                }
                job->requant(acc, nc, job->rq, c0, out + c0);
            }
        }
    }
}

pt_status pt_q_depthwise_fwd(const pt_ctx *ctx, const pt_conv_params *p, const uint8_t *x,
                             const int8_t *w, const pt_requant *rq, uint8_t *y)
{
    pt_status st = pt_check_ctx(ctx, 0);
    if (st != PT_OK) return st;
    int oh, ow;
    st = pt_q_check(p, 1, x, w, rq, y, &oh, &ow);
    if (st != PT_OK) return st;
    dw_job job = {p, oh, ow, x, w, rq, y, pt_q_requant_row_impl()};
    return pt_fork(pt_threads_for(ctx, (size_t)p->in.n * (size_t)oh, 2), dw_task, &job);
}
