/* Public entry points of the tiled executors: argument checks shared by every
 * layer kind, then dispatch to the GEMM, conv2d or depthwise executor (the
 * last also runs the pools and the channel affine map). The pools have no
 * weights: w may be NULL for them. */
#include "pt_tile_internal.h"

size_t pt_tile_scratch_bytes(const pt_tile_plan *plan, int num_threads)
{
    if (!plan || num_threads < 1) return 0;
    switch (plan->layer.kind) {
    case PT_TILE_LINEAR:
    case PT_TILE_POINTWISE: return pt_tile_gemm_scratch_bytes(plan, num_threads);
    case PT_TILE_CONV2D: return pt_tile_conv_scratch_bytes(plan, num_threads);
    default: return 0;
    }
}

pt_status pt_tile_fwd(const pt_ctx *ctx, const pt_tile_plan *plan, void *l1, size_t l1_bytes,
                      const float *x, const float *w, const float *b, float *y)
{
    if (!ctx || !plan || !l1 || !x || !y) return PT_ERR_NULL;
    if (!w && !pt_tile_is_pool(plan->layer.kind)) return PT_ERR_NULL;
    switch (plan->layer.kind) {
    case PT_TILE_LINEAR:
    case PT_TILE_POINTWISE: return pt_tile_gemm_fwd(ctx, plan, l1, l1_bytes, x, w, b, y);
    case PT_TILE_DEPTHWISE:
    case PT_TILE_AFFINE:
    case PT_TILE_AVGPOOL:
    case PT_TILE_GLOBAL_AVGPOOL: return pt_tile_dw_fwd(ctx, plan, l1, l1_bytes, x, w, b, y);
    case PT_TILE_CONV2D: return pt_tile_conv_fwd(ctx, plan, l1, l1_bytes, x, w, b, y);
    default: return PT_ERR_UNSUPPORTED;
    }
}

pt_status pt_tile_bwd_input(const pt_ctx *ctx, const pt_tile_plan *plan, void *l1, size_t l1_bytes,
                            const float *w, const float *grad_y, float *grad_x)
{
    return pt_tile_bwd_input_act(ctx, plan, l1, l1_bytes, w, grad_y, NULL, grad_x);
}

pt_status pt_tile_bwd_input_act(const pt_ctx *ctx, const pt_tile_plan *plan, void *l1, size_t l1_bytes,
                                const float *w, const float *grad_y, const float *x, float *grad_x)
{
    if (!ctx || !plan || !l1 || !grad_y || !grad_x) return PT_ERR_NULL;
    if (!w && !pt_tile_is_pool(plan->layer.kind)) return PT_ERR_NULL;
    if (!x && plan->layer.input_act != PT_ACT_NONE) return PT_ERR_NULL;
    if (x && plan->layer.input_act == PT_ACT_NONE) return PT_ERR_PARAM;
    switch (plan->layer.kind) {
    case PT_TILE_LINEAR:
    case PT_TILE_POINTWISE: return pt_tile_gemm_bwd_input(ctx, plan, l1, l1_bytes, w, grad_y, x, grad_x);
    case PT_TILE_DEPTHWISE:
    case PT_TILE_AFFINE:
    case PT_TILE_AVGPOOL:
    case PT_TILE_GLOBAL_AVGPOOL: return pt_tile_dw_bwd_input(ctx, plan, l1, l1_bytes, w, grad_y, x, grad_x);
    case PT_TILE_CONV2D: return pt_tile_conv_bwd_input(ctx, plan, l1, l1_bytes, w, grad_y, grad_x);
    default: return PT_ERR_UNSUPPORTED;
    }
}

pt_status pt_tile_bwd_weight(const pt_ctx *ctx, const pt_tile_plan *plan, void *l1, size_t l1_bytes,
                             const float *x, const float *grad_y, float *grad_w, float *grad_b)
{
    if (!ctx || !plan || !l1 || !x || !grad_y || !grad_w) return PT_ERR_NULL;
    switch (plan->layer.kind) {
    case PT_TILE_LINEAR:
    case PT_TILE_POINTWISE:
        return pt_tile_gemm_bwd_weight(ctx, plan, l1, l1_bytes, x, grad_y, grad_w, grad_b);
    case PT_TILE_DEPTHWISE:
    case PT_TILE_AFFINE:
        return pt_tile_dw_bwd_weight(ctx, plan, l1, l1_bytes, x, grad_y, grad_w, grad_b);
    case PT_TILE_CONV2D:
        return pt_tile_conv_bwd_weight(ctx, plan, l1, l1_bytes, x, grad_y, grad_w, grad_b);
    default: return PT_ERR_UNSUPPORTED; /* the pools have no weights */
    }
}
