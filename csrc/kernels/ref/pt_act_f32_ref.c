/* Reference twins of pt_act_f32.c: one core, the plainest loop. */
#include "pulptrain/pt_act.h"

static pt_status check(size_t count, const void *a, const void *b, const void *c)
{
    if (count == 0) return PT_ERR_SHAPE;
    if (!a || !b || !c) return PT_ERR_NULL;
    return PT_OK;
}

pt_status pt_relu_f32_fwd_ref(size_t count, const float *x, float *y)
{
    pt_status st = check(count, x, y, y);
    if (st) return st;
    for (size_t i = 0; i < count; ++i) y[i] = x[i] > 0.0f ? x[i] : 0.0f;
    return PT_OK;
}

pt_status pt_relu_f32_bwd_ref(size_t count, const float *v, const float *gy, float *gx)
{
    pt_status st = check(count, v, gy, gx);
    if (st) return st;
    for (size_t i = 0; i < count; ++i) gx[i] = v[i] > 0.0f ? gy[i] : 0.0f;
    return PT_OK;
}

pt_status pt_relu6_f32_fwd_ref(size_t count, const float *x, float *y)
{
    pt_status st = check(count, x, y, y);
    if (st) return st;
    for (size_t i = 0; i < count; ++i) {
        float v = x[i] > 0.0f ? x[i] : 0.0f;
        y[i] = v < 6.0f ? v : 6.0f;
    }
    return PT_OK;
}

pt_status pt_relu6_f32_bwd_ref(size_t count, const float *v, const float *gy, float *gx)
{
    pt_status st = check(count, v, gy, gx);
    if (st) return st;
    for (size_t i = 0; i < count; ++i) gx[i] = (v[i] > 0.0f && v[i] < 6.0f) ? gy[i] : 0.0f;
    return PT_OK;
}
