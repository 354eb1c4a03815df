/* Per-channel affine map, FP32 NHWC. The elementwise passes split over
 * pixels; the parameter gradients split over channel groups, each group
 * reduced by one core through AFFINE_BLOCK-channel partials kept on the stack. */
#include "pulptrain/pt_affine.h"
#include "elem_common.h"

#define AFFINE_BLOCK 64      /* channels whose per-image partials live on the stack */
#define AFFINE_SPLIT_UNIT 16 /* channel groups handed to cores are multiples of this */

typedef struct affine_job {
    pt_dims in;
    const float *x, *scale, *shift, *grad_y;
    float *out, *grad_scale, *grad_shift;
    int accumulate;      /* bwd_param: grad_scale / grad_shift already hold earlier images' sums */
} affine_job;

static void fwd_task(void *arg, int core, int ncores)
{
    const affine_job *j = (const affine_job *)arg;
    const int C = j->in.c;
    size_t b, e;
    pt_split(pt_dims_count(j->in) / (size_t)C, core, ncores, &b, &e);
    for (size_t px = b; px < e; ++px) {
        const float *x = j->x + px * (size_t)C;
        float *y = j->out + px * (size_t)C;
        if (j->shift)
            for (int c = 0; c < C; ++c) y[c] = x[c] * j->scale[c] + j->shift[c];
        else
            for (int c = 0; c < C; ++c) y[c] = x[c] * j->scale[c];
    }
}

static void param_task(void *arg, int core, int ncores)
{
    const affine_job *j = (const affine_job *)arg;
    const int C = j->in.c;
    const size_t pixels = (size_t)j->in.h * (size_t)j->in.w;
    size_t b, e;
    pt_split(((size_t)C + AFFINE_SPLIT_UNIT - 1) / AFFINE_SPLIT_UNIT, core, ncores, &b, &e);
    const int c_begin = (int)(b * AFFINE_SPLIT_UNIT);
    const int c_end = e * AFFINE_SPLIT_UNIT < (size_t)C ? (int)(e * AFFINE_SPLIT_UNIT) : C;
    for (int c0 = c_begin; c0 < c_end; c0 += AFFINE_BLOCK) {
        const int len = c_end - c0 < AFFINE_BLOCK ? c_end - c0 : AFFINE_BLOCK;
        for (int n = 0; n < j->in.n; ++n) {
            float part_scale[AFFINE_BLOCK], part_shift[AFFINE_BLOCK];
            for (int i = 0; i < len; ++i) part_scale[i] = part_shift[i] = 0.0f;
            for (size_t px = 0; px < pixels; ++px) {
                const size_t base = ((size_t)n * pixels + px) * (size_t)C + (size_t)c0;
                const float *restrict gy = j->grad_y + base;
                const float *restrict x = j->x + base;
                for (int i = 0; i < len; ++i) {
                    part_scale[i] += gy[i] * x[i];
                    part_shift[i] += gy[i];
                }
            }
            if (j->grad_scale) {
                float *gs = j->grad_scale + c0;
                for (int i = 0; i < len; ++i) gs[i] = n == 0 && !j->accumulate ? part_scale[i] : gs[i] + part_scale[i];
            }
            if (j->grad_shift) {
                float *gb = j->grad_shift + c0;
                for (int i = 0; i < len; ++i) gb[i] = n == 0 && !j->accumulate ? part_shift[i] : gb[i] + part_shift[i];
            }
        }
    }
}

static pt_status check(const pt_ctx *ctx, pt_dims in)
{
    pt_status st = pt_check_ctx(ctx, 0);
    return st != PT_OK ? st : pt_check_dims(in);
}

pt_status pt_channel_affine_f32_fwd(const pt_ctx *ctx, pt_dims in, const float *x, const float *scale,
                                    const float *shift, float *y)
{
    pt_status st = check(ctx, in);
    if (st != PT_OK) return st;
    if (!x || !scale || !shift || !y) return PT_ERR_NULL;
    affine_job job = {in, x, scale, shift, NULL, y, NULL, NULL, 0};
    size_t pixels = pt_dims_count(in) / (size_t)in.c;
    return pt_fork(pt_threads_for_work(ctx, pixels, pt_dims_count(in)), fwd_task, &job);
}

pt_status pt_channel_affine_f32_bwd_input(const pt_ctx *ctx, pt_dims in, const float *scale,
                                          const float *grad_y, float *grad_x)
{
    pt_status st = check(ctx, in);
    if (st != PT_OK) return st;
    if (!scale || !grad_y || !grad_x) return PT_ERR_NULL;
    /* the forward map without shift */
    affine_job job = {in, grad_y, scale, NULL, NULL, grad_x, NULL, NULL, 0};
    size_t pixels = pt_dims_count(in) / (size_t)in.c;
    return pt_fork(pt_threads_for_work(ctx, pixels, pt_dims_count(in)), fwd_task, &job);
}

static pt_status bwd_param(const pt_ctx *ctx, pt_dims in, const float *x, const float *grad_y,
                           float *grad_scale, float *grad_shift, int accumulate)
{
    pt_status st = check(ctx, in);
    if (st != PT_OK) return st;
    if (!grad_y || (!grad_scale && !grad_shift) || (grad_scale && !x)) return PT_ERR_NULL;
    /* without x only grad_shift is wanted: read grad_y in its place */
    affine_job job = {in, x ? x : grad_y, NULL, NULL, grad_y, NULL, grad_scale, grad_shift, accumulate};
    size_t units = ((size_t)in.c + AFFINE_SPLIT_UNIT - 1) / AFFINE_SPLIT_UNIT;
    return pt_fork(pt_threads_for_work(ctx, units, pt_dims_count(in)), param_task, &job);
}

pt_status pt_channel_affine_f32_bwd_param(const pt_ctx *ctx, pt_dims in, const float *x,
                                          const float *grad_y, float *grad_scale, float *grad_shift)
{
    return bwd_param(ctx, in, x, grad_y, grad_scale, grad_shift, 0);
}

pt_status pt_channel_affine_f32_bwd_param_acc(const pt_ctx *ctx, pt_dims in, const float *x,
                                              const float *grad_y, float *grad_scale, float *grad_shift)
{
    return bwd_param(ctx, in, x, grad_y, grad_scale, grad_shift, 1);
}
