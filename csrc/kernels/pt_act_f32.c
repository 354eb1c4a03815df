/* ReLU and ReLU6, forward and backward, split over elements. */
#include "pulptrain/pt_act.h"
#include "pulptrain/internal.h"

typedef struct act_job {
    size_t count;
    float cap;                 /* upper clamp; HUGE for plain ReLU */
    const float *in;           /* x (forward) or x_or_y (backward) */
    const float *grad_y;       /* NULL for forward */
    float *out;
} act_job;

static void act_fwd_task(void *arg, int core, int ncores)
{
    const act_job *job = (const act_job *)arg;
    size_t b, e;
    pt_split(job->count, core, ncores, &b, &e);
    const float cap = job->cap;
    for (size_t i = b; i < e; ++i) job->out[i] = pt_act_clamp(job->in[i], cap);
}

static void act_bwd_task(void *arg, int core, int ncores)
{
    const act_job *job = (const act_job *)arg;
    size_t b, e;
    pt_split(job->count, core, ncores, &b, &e);
    const float cap = job->cap;
    const float *in = job->in, *grad_y = job->grad_y;
    float *out = job->out;
    for (size_t i = b; i < e; ++i) {
        /* read grad_y unconditionally: a select vectorises, a branch on the
         * sign of the activation mispredicts half the time */
        out[i] = pt_act_grad_select(in[i], grad_y[i], cap);
    }
}

static pt_status act_run(const pt_ctx *ctx, size_t count, float cap, const float *in,
                         const float *grad_y, int backward, float *out)
{
    pt_status st = pt_check_ctx(ctx, 0);
    if (st != PT_OK) return st;
    if (count == 0) return PT_ERR_SHAPE;
    if (!in || !out || (backward && !grad_y)) return PT_ERR_NULL;
    act_job job = {count, cap, in, grad_y, out};
    return pt_fork(pt_threads_for(ctx, count, PT_PARALLEL_MIN_ELEMS),
                   backward ? act_bwd_task : act_fwd_task, &job);
}

pt_status pt_relu_f32_fwd(const pt_ctx *ctx, size_t count, const float *x, float *y)
{
    return act_run(ctx, count, PT_ACT_NO_CAP, x, NULL, 0, y);
}

pt_status pt_relu_f32_bwd(const pt_ctx *ctx, size_t count, const float *x_or_y,
                          const float *grad_y, float *grad_x)
{
    return act_run(ctx, count, PT_ACT_NO_CAP, x_or_y, grad_y, 1, grad_x);
}

pt_status pt_relu6_f32_fwd(const pt_ctx *ctx, size_t count, const float *x, float *y)
{
    return act_run(ctx, count, 6.0f, x, NULL, 0, y);
}

pt_status pt_relu6_f32_bwd(const pt_ctx *ctx, size_t count, const float *x_or_y,
                           const float *grad_y, float *grad_x)
{
    return act_run(ctx, count, 6.0f, x_or_y, grad_y, 1, grad_x);
}
