/* Linear layer forward / grad-input / grad-weight as GEMMs (pt_gemm.h). */
#include "pulptrain/pt_linear.h"
#include "pulptrain/pt_gemm.h"
#include "pulptrain/internal.h"
#include "pt_gemm_internal.h"

static int params_valid(const pt_linear_params *p)
{
    return p->batch > 0 && p->in_features > 0 && p->out_features > 0;
}

/* y[batch, out] = x[batch, in] w[out, in]^T */
static pt_gemm_params fwd_gemm(const pt_linear_params *p)
{
    pt_gemm_params g = {p->batch, p->out_features, p->in_features, 0, 1,
                        p->in_features, p->in_features, p->out_features, 0, PT_ACT_NONE};
    return g;
}

/* grad_x[batch, in] = grad_y[batch, out] w[out, in] */
static pt_gemm_params bwd_input_gemm(const pt_linear_params *p)
{
    pt_gemm_params g = {p->batch, p->in_features, p->out_features, 0, 0,
                        p->out_features, p->in_features, p->in_features, 0, PT_ACT_NONE};
    return g;
}

/* grad_w[out, in] = grad_y[batch, out]^T x[batch, in] */
static pt_gemm_params bwd_weight_gemm(const pt_linear_params *p)
{
    pt_gemm_params g = {p->out_features, p->in_features, p->batch, 1, 0,
                        p->out_features, p->in_features, p->in_features, 0, PT_ACT_NONE};
    return g;
}

size_t pt_linear_f32_fwd_scratch_bytes(const pt_linear_params *p, int num_threads)
{
    if (!p || !params_valid(p)) return 0;
    pt_gemm_params g = fwd_gemm(p);
    return pt_sgemm_f32_scratch_bytes(&g, num_threads);
}

size_t pt_linear_f32_bwd_input_scratch_bytes(const pt_linear_params *p, int num_threads)
{
    if (!p || !params_valid(p)) return 0;
    pt_gemm_params g = bwd_input_gemm(p);
    return pt_sgemm_f32_scratch_bytes(&g, num_threads);
}

size_t pt_linear_f32_bwd_weight_scratch_bytes(const pt_linear_params *p, int num_threads)
{
    if (!p || !params_valid(p)) return 0;
    pt_gemm_params g = bwd_weight_gemm(p);
    return pt_sgemm_f32_scratch_bytes(&g, num_threads);
}

/* ctx first, then the params (the GEMM checks pointers and scratch). */
static pt_status check(const pt_ctx *ctx, const pt_linear_params *p)
{
    pt_status st = pt_check_ctx(ctx, 0);
    if (st != PT_OK) return st;
    if (!p) return PT_ERR_NULL;
    return params_valid(p) ? PT_OK : PT_ERR_SHAPE;
}

pt_status pt_linear_f32_fwd_act(const pt_ctx *ctx, const pt_linear_params *p, pt_act act,
                                const float *x, const float *w, const float *b, float *y)
{
    pt_status st = check(ctx, p);
    if (st != PT_OK) return st;
    if (!x || !w || !y) return PT_ERR_NULL;
    pt_gemm_params g = fwd_gemm(p);
    g.act = (int)act;
    return pt_sgemm_f32(ctx, &g, x, w, b, y);
}

pt_status pt_linear_f32_fwd(const pt_ctx *ctx, const pt_linear_params *p, const float *x,
                            const float *w, const float *b, float *y)
{
    return pt_linear_f32_fwd_act(ctx, p, PT_ACT_NONE, x, w, b, y);
}

pt_status pt_linear_f32_bwd_input_act(const pt_ctx *ctx, const pt_linear_params *p, pt_act act,
                                      const float *w, const float *grad_y, const float *x, float *grad_x)
{
    pt_status st = check(ctx, p);
    if (st != PT_OK) return st;
    if (act != PT_ACT_NONE && act != PT_ACT_RELU && act != PT_ACT_RELU6) return PT_ERR_PARAM;
    if (!w || !grad_y || !grad_x || (act != PT_ACT_NONE && !x)) return PT_ERR_NULL;
    pt_gemm_params g = bwd_input_gemm(p);
    return pt_sgemm_f32_masked(ctx, &g, grad_y, w, NULL, act != PT_ACT_NONE ? x : NULL, act, grad_x);
}

pt_status pt_linear_f32_bwd_input(const pt_ctx *ctx, const pt_linear_params *p, const float *w,
                                  const float *grad_y, float *grad_x)
{
    return pt_linear_f32_bwd_input_act(ctx, p, PT_ACT_NONE, w, grad_y, NULL, grad_x);
}

pt_status pt_linear_f32_bwd_weight(const pt_ctx *ctx, const pt_linear_params *p, const float *x,
                                   const float *grad_y, float *grad_w, float *grad_b)
{
    pt_status st = check(ctx, p);
    if (st != PT_OK) return st;
    if (!x || !grad_y || !grad_w) return PT_ERR_NULL;
    pt_gemm_params g = bwd_weight_gemm(p);
    /* grad_b: the column sums of grad_y, summed as the GEMM packs it */
    return grad_b ? pt_sgemm_f32_colsum_a(ctx, &g, grad_y, x, grad_w, grad_b)
                  : pt_sgemm_f32(ctx, &g, grad_y, x, NULL, grad_w);
}
