/* SGD with momentum and weight decay, FP32, in place, split over elements. */
#include <math.h>
#include "pulptrain/pt_sgd.h"
#include "pulptrain/internal.h"

typedef struct sgd_job {
    pt_sgd_params p;
    size_t count;
    float *param, *velocity;
    const float *grad;
} sgd_job;

static void sgd_task(void *arg, int core, int ncores)
{
    const sgd_job *j = (const sgd_job *)arg;
    const float lr = j->p.lr, mu = j->p.momentum, wd = j->p.weight_decay;
    float *restrict w = j->param;
    float *restrict v = j->velocity;
    const float *restrict g = j->grad;
    size_t b, e;
    pt_split(j->count, core, ncores, &b, &e);
    for (size_t i = b; i < e; ++i) {
        float step = mu * v[i] + (g[i] + wd * w[i]);
        v[i] = step;
        w[i] = w[i] - lr * step;
    }
}

static int valid_hyper(float v) { return isfinite(v) && v >= 0.0f; }

pt_status pt_sgd_f32_step(const pt_ctx *ctx, const pt_sgd_params *p, size_t count, float *param,
                          const float *grad, float *velocity)
{
    pt_status st = pt_check_ctx(ctx, 0);
    if (st != PT_OK) return st;
    if (!p || !param || !grad || !velocity) return PT_ERR_NULL;
    if (count == 0) return PT_ERR_SHAPE;
    if (!valid_hyper(p->lr) || !valid_hyper(p->momentum) || !valid_hyper(p->weight_decay))
        return PT_ERR_PARAM;
    sgd_job job = {*p, count, param, velocity, grad};
    return pt_fork(pt_threads_for(ctx, count, PT_PARALLEL_MIN_ELEMS), sgd_task, &job);
}
