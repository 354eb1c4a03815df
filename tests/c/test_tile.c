/* Tile planner and tiled executors: bitwise equal to the untiled kernels for
 * every kind and step, for budgets from the smallest that fits up to
 * everything-fits; the L1 region is fenced by canary bytes; the DMA moves
 * exactly the bytes the planner predicted; too small a budget is
 * PT_ERR_BUDGET. Also run with a DMA backend that completes copies late and
 * out of order, which catches any missing wait, and (natively) on the DMA
 * thread. */
#include <stdlib.h>
#include "pt_test.h"
#include "pulptrain/pulptrain.h"
#include "../../csrc/tile/pt_tile_internal.h"

#define GUARD 64
#define CANARY 0xA5

/* Budgets tried per step: from the smallest that fits, growing by this
 * factor (in thirds) up to everything-fits. Coarser under emulation. */
#ifndef PT_TILE_TEST_GROWTH_THIRDS
#if defined(__riscv)
#define PT_TILE_TEST_GROWTH_THIRDS 12
#else
#define PT_TILE_TEST_GROWTH_THIRDS 5
#endif
#endif

/* ------------------------------------------------ a late, reordering DMA */
typedef struct pending_copy {
    int live;
    pt_dma_id id;
    void *dst;
    const void *src;
    size_t row_bytes, rows, dst_stride, src_stride;
} pending_copy;

#define QUEUE 4
static pending_copy queue[QUEUE];
static pt_dma_id next_id = 0;

static void run_copy(pending_copy *c)
{
    for (size_t r = 0; r < c->rows; ++r)
        memcpy((char *)c->dst + r * c->dst_stride, (const char *)c->src + r * c->src_stride, c->row_bytes);
    c->live = 0;
}

/* Copies wait in a small queue; a full queue completes its newest entry
 * first (so completion order differs from issue order). */
static pt_dma_id late_copy_2d(void *ctx, void *dst, const void *src, size_t row_bytes, size_t rows,
                              size_t dst_stride, size_t src_stride)
{
    int slot = -1;
    for (int i = 0; i < QUEUE; ++i)
        if (!queue[i].live) slot = i;
    if (slot < 0) {
        slot = 0;
        for (int i = 1; i < QUEUE; ++i)
            if (queue[i].id > queue[slot].id) slot = i;
        run_copy(&queue[slot]);
    }
    pending_copy c = {1, next_id++, dst, src, row_bytes, rows, dst_stride, src_stride};
    queue[slot] = c;
    return c.id;
}

static void late_wait(void *ctx, pt_dma_id id)
{
    for (int i = 0; i < QUEUE; ++i)
        if (queue[i].live && queue[i].id == id) run_copy(&queue[i]);
}

static const pt_dma_backend late_backend = {late_copy_2d, late_wait, NULL};

static int queue_empty(void)
{
    for (int i = 0; i < QUEUE; ++i)
        if (queue[i].live) return 0;
    return 1;
}

/* Native builds also run every case on the DMA thread (csrc/platform/
 * dma_pthread.c), whose copies really overlap the compute. */
#if defined(__riscv)
#define HAVE_DMA_THREAD 0
#define NUM_DMA_MODES 2
#else
#define HAVE_DMA_THREAD 1
#define NUM_DMA_MODES 3
#endif

/* ------------------------------------------------------------- helpers */
static float *random_floats(pt_rng *r, size_t n)
{
    float *a = (float *)malloc((n ? n : 1) * sizeof(float));
    pt_fill_uniform(r, a, n, -1.0f, 1.0f);
    return a;
}

static float *nan_floats(size_t n)
{
    float *a = (float *)malloc((n ? n : 1) * sizeof(float));
    for (size_t i = 0; i < n; ++i) a[i] = NAN;
    return a;
}

static void *scratch_mem = NULL;
static size_t scratch_size = 0;

static pt_ctx ctx_with(int threads, size_t need)
{
    if (need > scratch_size) {
        free(scratch_mem);
        scratch_mem = malloc(need);
        scratch_size = need;
    }
    pt_ctx ctx = {threads, scratch_mem, need};
    return ctx;
}

/* Sizes of one layer's arrays, in floats (cols: conv2d's im2col matrix). */
typedef struct layer_arrays {
    size_t x, w, b, y, cols;
} layer_arrays;

static layer_arrays sizes_of(const pt_tile_layer *l)
{
    const pt_conv_params *p = &l->conv;
    layer_arrays s;
    size_t pixels = (size_t)p->in.n * p->in.h * p->in.w;
    int oh = pt_out_extent(p->in.h, p->kh, p->stride_h, p->pad_top, p->pad_bottom);
    int ow = pt_out_extent(p->in.w, p->kw, p->stride_w, p->pad_left, p->pad_right);
    s.cols = 0;
    if (pt_tile_is_pool(l->kind)) {
        s.x = pixels * p->in.c;
        s.w = 0;
        s.y = (size_t)p->in.n * oh * ow * p->in.c;
    } else if (l->kind == PT_TILE_DEPTHWISE || l->kind == PT_TILE_AFFINE) {
        s.x = pixels * p->in.c;
        s.w = (size_t)p->kh * p->kw * p->in.c;
        s.y = (size_t)p->in.n * oh * ow * p->in.c;
    } else if (l->kind == PT_TILE_CONV2D) {
        s.x = pixels * p->in.c;
        s.w = (size_t)p->out_c * p->kh * p->kw * p->in.c;
        s.y = (size_t)p->in.n * oh * ow * p->out_c;
        s.cols = (size_t)p->in.n * oh * ow * p->kh * p->kw * p->in.c;
    } else {
        s.x = pixels * p->in.c;
        s.w = (size_t)p->out_c * p->in.c;
        s.y = pixels * p->out_c;
    }
    s.b = (size_t)p->out_c;
    return s;
}

/* The untiled kernel for one step: out (and out2 = grad_b) from the inputs. */
static pt_status untiled_plain(const pt_tile_layer *l, pt_tile_step step, const float *x, const float *w,
                               const float *b, const float *gy, float *out, float *out2);

/* The untiled kernel for one step; a forward's activation and a grad-input's
 * input activation as passes of their own (bitwise what the fused kernels
 * give, pt_types.h). */
static pt_status untiled(const pt_tile_layer *l, pt_tile_step step, const float *x, const float *w,
                         const float *b, const float *gy, float *out, float *out2)
{
    pt_status st = untiled_plain(l, step, x, w, b, gy, out, out2);
    if (st == PT_OK && step == PT_TILE_FWD && l->act != PT_ACT_NONE) {
        const size_t n = sizes_of(l).y;
        for (size_t i = 0; i < n; ++i) out[i] = pt_act_clamp(out[i], pt_act_cap(l->act));
    }
    if (st == PT_OK && step == PT_TILE_BWD_INPUT && l->input_act != PT_ACT_NONE) {
        const size_t n = sizes_of(l).x;
        for (size_t i = 0; i < n; ++i) out[i] = pt_act_grad_select(x[i], out[i], pt_act_cap(l->input_act));
    }
    return st;
}

static pt_status untiled_plain(const pt_tile_layer *l, pt_tile_step step, const float *x, const float *w,
                               const float *b, const float *gy, float *out, float *out2)
{
    const pt_conv_params *p = &l->conv;
    if (pt_tile_is_pool(l->kind)) {
        pt_ctx ctx = ctx_with(2, 0);
        pt_pool_params q = {p->in, p->kh, p->kw, p->stride_h, p->stride_w};
        if (l->kind == PT_TILE_GLOBAL_AVGPOOL)
            return step == PT_TILE_FWD ? pt_global_avgpool_f32_fwd(&ctx, p->in, x, out)
                                       : pt_global_avgpool_f32_bwd(&ctx, p->in, gy, out);
        return step == PT_TILE_FWD ? pt_avgpool_f32_fwd(&ctx, &q, x, out) : pt_avgpool_f32_bwd(&ctx, &q, gy, out);
    }
    if (l->kind == PT_TILE_AFFINE) {
        pt_ctx ctx = ctx_with(2, 0);
        if (step == PT_TILE_FWD) return pt_channel_affine_f32_fwd(&ctx, p->in, x, w, b, out);
        if (step == PT_TILE_BWD_INPUT) return pt_channel_affine_f32_bwd_input(&ctx, p->in, w, gy, out);
        return pt_channel_affine_f32_bwd_param(&ctx, p->in, x, gy, out, out2);
    }
    if (l->kind == PT_TILE_DEPTHWISE) {
        pt_ctx ctx = ctx_with(2, 0);
        if (step == PT_TILE_FWD) return pt_depthwise_f32_fwd(&ctx, p, x, w, b, out);
        if (step == PT_TILE_BWD_INPUT) return pt_depthwise_f32_bwd_input(&ctx, p, w, gy, out);
        return pt_depthwise_f32_bwd_weight(&ctx, p, x, gy, out, out2);
    }
    if (l->kind == PT_TILE_CONV2D) {
        size_t need = step == PT_TILE_FWD        ? pt_conv2d_f32_fwd_scratch_bytes(p, 2)
                      : step == PT_TILE_BWD_INPUT ? pt_conv2d_f32_bwd_input_scratch_bytes(p, 2)
                                                  : pt_conv2d_f32_bwd_weight_scratch_bytes(p, 2);
        pt_ctx ctx = ctx_with(2, need);
        if (step == PT_TILE_FWD) return pt_conv2d_f32_fwd(&ctx, p, x, w, b, out);
        if (step == PT_TILE_BWD_INPUT) return pt_conv2d_f32_bwd_input(&ctx, p, w, gy, out);
        return pt_conv2d_f32_bwd_weight(&ctx, p, x, gy, out, out2);
    }
    size_t need = 0;
    pt_linear_params lp = {p->in.n * p->in.h * p->in.w, p->in.c, p->out_c};
    if (step == PT_TILE_FWD) need = pt_linear_f32_fwd_scratch_bytes(&lp, 2);
    if (step == PT_TILE_BWD_INPUT) need = pt_linear_f32_bwd_input_scratch_bytes(&lp, 2);
    if (step == PT_TILE_BWD_WEIGHT) need = pt_linear_f32_bwd_weight_scratch_bytes(&lp, 2);
    pt_ctx ctx = ctx_with(2, need);
    if (l->kind == PT_TILE_POINTWISE) {
        if (step == PT_TILE_FWD) return pt_pointwise_f32_fwd(&ctx, p, x, w, b, out);
        if (step == PT_TILE_BWD_INPUT) return pt_pointwise_f32_bwd_input(&ctx, p, w, gy, out);
        return pt_pointwise_f32_bwd_weight(&ctx, p, x, gy, out, out2);
    }
    if (step == PT_TILE_FWD) return pt_linear_f32_fwd(&ctx, &lp, x, w, b, out);
    if (step == PT_TILE_BWD_INPUT) return pt_linear_f32_bwd_input(&ctx, &lp, w, gy, out);
    return pt_linear_f32_bwd_weight(&ctx, &lp, x, gy, out, out2);
}

static pt_status tiled(const pt_tile_plan *plan, int threads, void *l1, size_t l1_bytes,
                       const float *x, const float *w, const float *b, const float *gy, float *out,
                       float *out2)
{
    pt_ctx ctx = ctx_with(threads, pt_tile_scratch_bytes(plan, threads));
    if (plan->step == PT_TILE_FWD) return pt_tile_fwd(&ctx, plan, l1, l1_bytes, x, w, b, out);
    if (plan->step == PT_TILE_BWD_INPUT)
        return plan->layer.input_act ? pt_tile_bwd_input_act(&ctx, plan, l1, l1_bytes, w, gy, x, out)
                                     : pt_tile_bwd_input(&ctx, plan, l1, l1_bytes, w, gy, out);
    return pt_tile_bwd_weight(&ctx, plan, l1, l1_bytes, x, gy, out, out2);
}

static const char *step_names[] = {"fwd", "bwd_input", "bwd_weight"};

/* DMA modes: 0 memcpy, 1 the late, reordering backend, 2 (natively) the
 * DMA thread. */
static void dma_mode_begin(int dma)
{
    pt_dma_set_backend(dma == 1 ? &late_backend : NULL);
#if HAVE_DMA_THREAD
    if (dma == 2) PT_CHECK(pt_dma_thread_start() == PT_OK, "DMA thread start");
#endif
}

static void dma_mode_end(int dma)
{
#if HAVE_DMA_THREAD
    if (dma == 2) PT_CHECK(pt_dma_thread_stop() == PT_OK && !pt_dma_thread_running(), "DMA thread stop");
#endif
    pt_dma_set_backend(NULL);
}

/* Run plan tiled inside a canary-fenced L1 region of budget bytes and
 * compare with the untiled result bit for bit (and, with check_bytes, the
 * bytes the DMA moved with the plan's). */
static void run_fenced(const char *name, const pt_tile_plan *plan, size_t budget, int threads,
                       const float *x, const float *w, const float *b, const float *gy, const float *want,
                       const float *want2, int check_bytes)
{
    const pt_tile_step step = plan->step;
    layer_arrays s = sizes_of(&plan->layer);
    size_t n_out = step == PT_TILE_FWD ? s.y : step == PT_TILE_BWD_INPUT ? s.x : s.w;
    float *out = nan_floats(n_out), *out2 = nan_floats(s.b);
    unsigned char *fence = (unsigned char *)malloc(budget + 2 * GUARD + PT_TILE_ALIGN);
    unsigned char *l1 = fence + GUARD;
    l1 += (PT_TILE_ALIGN - (uintptr_t)l1 % PT_TILE_ALIGN) % PT_TILE_ALIGN;
    memset(fence, CANARY, budget + 2 * GUARD + PT_TILE_ALIGN);
    pt_dma_reset_bytes_issued();
    pt_status st = tiled(plan, threads, l1, budget, x, w, b, gy, out, plan->layer.has_bias ? out2 : NULL);
    PT_CHECK(st == PT_OK, "%s %s budget %zu: run status %d", name, step_names[step], budget, st);
    uint64_t moved = pt_dma_bytes_issued();
    PT_CHECK(!check_bytes || moved == plan->bytes_in + plan->bytes_out,
             "%s %s budget %zu: moved %llu, planned %llu", name, step_names[step], budget,
             (unsigned long long)moved, (unsigned long long)(plan->bytes_in + plan->bytes_out));
    int fenced = 1;
    for (unsigned char *q = fence; q < l1; ++q) fenced &= *q == CANARY;
    for (unsigned char *q = l1 + budget; q < fence + budget + 2 * GUARD; ++q) fenced &= *q == CANARY;
    PT_CHECK(fenced, "%s %s budget %zu: bytes outside the L1 budget were written", name,
             step_names[step], budget);
    long diff = pt_first_bit_diff(out, want, n_out);
    PT_CHECK(diff < 0,
             "%s %s budget %zu threads %d: [%ld] %g vs untiled %g (tiles m%d n%d k%d rows%d order %d%d)",
             name, step_names[step], budget, threads, diff, diff < 0 ? 0.0 : out[diff],
             diff < 0 ? 0.0 : want[diff], plan->tile_m, plan->tile_n, plan->tile_k, plan->tile_rows,
             plan->order[0], plan->order[1]);
    if (want2) {
        diff = pt_first_bit_diff(out2, want2, s.b);
        PT_CHECK(diff < 0, "%s %s budget %zu: grad_b [%ld] differs", name, step_names[step], budget, diff);
    }
    PT_CHECK(queue_empty(), "%s %s: copies still in flight after return", name, step_names[step]);
    free(fence);
    free(out);
    free(out2);
}

/* One layer, one step, one budget: plan, then run_fenced. */
static void check_budget(const char *name, const pt_tile_layer *l, pt_tile_step step, size_t budget,
                         int threads, const float *x, const float *w, const float *b,
                         const float *gy, const float *want, const float *want2)
{
    pt_tile_plan plan;
    pt_status st = pt_tile_plan_layer(l, step, budget, &plan);
    PT_CHECK(st == PT_OK, "%s %s budget %zu: plan status %d", name, step_names[step], budget, st);
    if (st != PT_OK) return;
    PT_CHECK(plan.l1_bytes <= budget, "%s %s: plan uses %zu > budget %zu", name, step_names[step],
             plan.l1_bytes, budget);
    run_fenced(name, &plan, budget, threads, x, w, b, gy, want, want2, 1);
}

static void check_layer(const char *name, const pt_tile_layer *l, pt_rng *rng)
{
    layer_arrays s = sizes_of(l);
    float *x = random_floats(rng, s.x), *w = random_floats(rng, s.w), *b = random_floats(rng, s.b);
    float *gy = random_floats(rng, s.y);
    const int pool = pt_tile_is_pool(l->kind);
    if (pool) {  /* no weights: no grad-weight step */
        pt_tile_plan none;
        PT_CHECK(pt_tile_plan_layer(l, PT_TILE_BWD_WEIGHT, 1 << 30, &none) == PT_ERR_UNSUPPORTED &&
                     pt_tile_min_l1_bytes(l, PT_TILE_BWD_WEIGHT) == 0,
                 "%s: bwd_weight must be PT_ERR_UNSUPPORTED", name);
    }
    for (int step = 0; step < (pool ? 2 : 3); ++step) {
        size_t n_out = step == PT_TILE_FWD ? s.y : step == PT_TILE_BWD_INPUT ? s.x : s.w;
        float *want = nan_floats(n_out), *want2 = nan_floats(s.b);
        int with_b = l->has_bias && step != PT_TILE_BWD_INPUT;
        pt_status st = untiled(l, (pt_tile_step)step, x, w, l->has_bias ? b : NULL, gy, want,
                               with_b ? want2 : NULL);
        PT_CHECK(st == PT_OK, "%s %s untiled status %d", name, step_names[step], st);
        size_t lo = pt_tile_min_l1_bytes(l, (pt_tile_step)step);
        pt_tile_plan all;
        PT_CHECK(lo > 0, "%s: min budget", name);
        if (lo == 0) break;  /* a bad layer: the budget sweep below would not end */
        /* everything fits (every operand, double-buffered, and an im2col
         * matrix): one tile, or one per image for windows that skip edge rows */
        size_t hi = 3 * sizeof(float) * (s.x + s.w + s.y + s.b) + sizeof(float) * s.cols + 1024;
        uint64_t most = l->kind == PT_TILE_LINEAR || l->kind == PT_TILE_POINTWISE ? 1 : (uint64_t)l->conv.in.n;
        PT_CHECK(pt_tile_plan_layer(l, (pt_tile_step)step, hi, &all) == PT_OK && all.num_tiles <= most &&
                     all.bytes_in + all.bytes_out <= all.lower_bound_bytes,
                 "%s %s: a budget holding everything gives %llu tiles", name, step_names[step],
                 (unsigned long long)all.num_tiles);
        pt_tile_plan none;
        PT_CHECK(pt_tile_plan_layer(l, (pt_tile_step)step, lo - 1, &none) == PT_ERR_BUDGET,
                 "%s %s: budget %zu below the minimum must be PT_ERR_BUDGET", name, step_names[step], lo - 1);
        for (size_t budget = lo;; budget = budget * PT_TILE_TEST_GROWTH_THIRDS / 3) {
            if (budget > hi) budget = hi;
            for (int dma = 0; dma < NUM_DMA_MODES; ++dma) {
                dma_mode_begin(dma);
                check_budget(name, l, (pt_tile_step)step, budget, dma ? 3 : 1, x, w,
                             l->has_bias ? b : NULL, gy, want, with_b ? want2 : NULL);
                dma_mode_end(dma);
            }
            if (budget == hi) break;
        }
        free(want);
        free(want2);
    }
    free(x);
    free(w);
    free(b);
    free(gy);
}

static pt_tile_layer linear_layer(int batch, int in, int out, int bias)
{
    pt_tile_layer l;
    memset(&l, 0, sizeof l);
    l.kind = PT_TILE_LINEAR;
    l.conv.in = (pt_dims){batch, 1, 1, in};
    l.conv.out_c = out;
    l.conv.kh = l.conv.kw = l.conv.stride_h = l.conv.stride_w = 1;
    l.has_bias = bias;
    return l;
}

static pt_tile_layer pointwise_layer(int n, int h, int w, int cin, int cout, int bias)
{
    pt_tile_layer l = linear_layer(1, cin, cout, bias);
    l.kind = PT_TILE_POINTWISE;
    l.conv.in = (pt_dims){n, h, w, cin};
    return l;
}

static pt_tile_layer depthwise_layer(int n, int h, int w, int c, int k, int stride, int pt, int pb,
                                     int pl, int pr, int bias)
{
    pt_tile_layer l = linear_layer(1, c, c, bias);
    l.kind = PT_TILE_DEPTHWISE;
    l.conv.in = (pt_dims){n, h, w, c};
    l.conv.kh = l.conv.kw = k;
    l.conv.stride_h = l.conv.stride_w = stride;
    l.conv.pad_top = pt;
    l.conv.pad_bottom = pb;
    l.conv.pad_left = pl;
    l.conv.pad_right = pr;
    return l;
}

/* Average pooling, no padding; global: the window is the whole map. */
static pt_tile_layer pool_layer(pt_tile_kind kind, int n, int h, int w, int c, int k, int stride)
{
    pt_tile_layer l = depthwise_layer(n, h, w, c, k, stride, 0, 0, 0, 0, 0);
    l.kind = kind;
    if (kind == PT_TILE_GLOBAL_AVGPOOL) {
        l.conv.kh = h;
        l.conv.kw = w;
    }
    return l;
}

static pt_tile_layer conv2d_layer(int n, int h, int w, int cin, int cout, int k, int stride, int pt,
                                  int pb, int pl, int pr, int bias)
{
    pt_tile_layer l = depthwise_layer(n, h, w, cin, k, stride, pt, pb, pl, pr, bias);
    l.kind = PT_TILE_CONV2D;
    l.conv.out_c = cout;
    return l;
}

/* Run a hand-made plan p in a fenced L1 of exactly its size on every DMA
 * mode (its byte counts are not the plan's: not compared). */
static void check_forced(const char *name, const pt_tile_plan *p, const float *x, const float *w,
                         const float *gy, const float *want, const float *want_b)
{
    for (int dma = 0; dma < NUM_DMA_MODES; ++dma) {
        dma_mode_begin(dma);
        run_fenced(name, p, p->l1_bytes, 2, x, w, NULL, gy, want, want_b, 0);
        dma_mode_end(dma);
    }
}

/* conv2d's steps in tile shapes the planner rarely picks, made by hand:
 * forward in both loop orders over pixel tiles from part of a row to two
 * images and 1, 3 or all filters; grad-input and grad-weight with the
 * patch's columns a few channels of a tap, one tap or 4 taps at a time,
 * grad-weight with several filter blocks in either loop order, grad-input
 * one input row at a time. */
static void check_conv2d_forced(const char *name, const pt_tile_layer *l, pt_rng *rng)
{
    layer_arrays s = sizes_of(l);
    float *x = random_floats(rng, s.x), *w = random_floats(rng, s.w), *gy = random_floats(rng, s.y);
    float *want_w = nan_floats(s.w), *want_b = nan_floats(s.b), *want_x = nan_floats(s.x);
    PT_CHECK(untiled(l, PT_TILE_BWD_WEIGHT, x, NULL, NULL, gy, want_w, want_b) == PT_OK, "%s untiled", name);
    PT_CHECK(untiled(l, PT_TILE_BWD_INPUT, NULL, w, NULL, gy, want_x, NULL) == PT_OK, "%s untiled", name);
    pt_tile_conv_geom g;
    PT_CHECK(pt_tile_conv_geom_of(l, &g) == PT_OK, "%s geometry", name);
    /* columns per GEMM: some channels of a tap (a ragged last slice), one tap, 4 taps, all */
    const int tns[4] = {(l->conv.in.c + 1) / 2, l->conv.in.c, 4 * l->conv.in.c, g.patch};
    pt_tile_plan plan;
    PT_CHECK(pt_tile_plan_layer(l, PT_TILE_BWD_WEIGHT, (size_t)1 << 30, &plan) == PT_OK, "%s plan", name);
    const int tms[3] = {1, 3, l->conv.out_c}, tks[2] = {PT_GEMM_KC, plan.tile_k};
    for (int k_outer = 0; k_outer < 2; ++k_outer)
        for (int i = 0; i < 3 * 4; ++i)
            for (int j = 0; j < 2; ++j) {
                pt_tile_plan p = plan;
                p.tile_m = pt_tile_min_int(tms[i % 3], l->conv.out_c);
                p.tile_n = pt_tile_min_int(tns[i / 3], g.patch);
                p.tile_k = pt_tile_min_int(tks[j], plan.tile_k);
                p.order[0] = k_outer ? PT_TILE_DIM_K : PT_TILE_DIM_M;
                p.order[1] = k_outer ? PT_TILE_DIM_M : PT_TILE_DIM_K;
                p.l1_bytes = pt_tile_conv_layout_of(&g, &p, NULL).total;
                check_forced(name, &p, x, NULL, gy, want_w, l->has_bias ? want_b : NULL);
            }
    float *want_y = nan_floats(s.y);
    PT_CHECK(untiled(l, PT_TILE_FWD, x, w, NULL, NULL, want_y, NULL) == PT_OK, "%s untiled", name);
    PT_CHECK(pt_tile_plan_layer(l, PT_TILE_FWD, (size_t)1 << 30, &plan) == PT_OK, "%s plan", name);
    const int ow = (int)g.g.ow, img = (int)g.img_px;
    const int tms_f[5] = {(ow + 1) / 2, ow, 2 * ow, img, 2 * img}; /* part of a row .. two images */
    for (int n_outer = 0; n_outer < 2; ++n_outer)
        for (int i = 0; i < 5 * 3; ++i) {
            pt_tile_plan p = plan;
            p.tile_m = tms_f[i % 5];
            p.tile_n = pt_tile_min_int(tms[i / 5], l->conv.out_c);
            if ((size_t)p.tile_m > g.pixels || (p.tile_m >= ow && p.tile_m < img && p.tile_m % ow)) continue;
            p.order[0] = n_outer ? PT_TILE_DIM_N : PT_TILE_DIM_M;
            p.order[1] = n_outer ? PT_TILE_DIM_M : PT_TILE_DIM_N;
            p.l1_bytes = pt_tile_conv_layout_of(&g, &p, NULL).total;
            check_forced(name, &p, x, w, NULL, want_y, NULL);
        }
    free(want_y);
    PT_CHECK(pt_tile_plan_layer(l, PT_TILE_BWD_INPUT, (size_t)1 << 30, &plan) == PT_OK, "%s plan", name);
    for (int i = 0; i < 4; ++i)
        for (int one_row = 0; one_row < 2; ++one_row) {
            pt_tile_plan p = plan;
            p.tile_n = pt_tile_min_int(tns[i], g.patch);
            if (one_row) p.tile_images = p.tile_rows = 1;
            p.l1_bytes = pt_tile_conv_layout_of(&g, &p, NULL).total;
            check_forced(name, &p, NULL, w, gy, want_x, NULL);
        }
    free(x);
    free(w);
    free(gy);
    free(want_w);
    free(want_b);
    free(want_x);
}

static void test_bad_arguments(void)
{
    pt_tile_layer l = linear_layer(5, 7, 3, 1);
    pt_tile_plan plan;
    PT_CHECK(pt_tile_plan_layer(NULL, PT_TILE_FWD, 1 << 20, &plan) == PT_ERR_NULL, "null layer");
    PT_CHECK(pt_tile_plan_layer(&l, (pt_tile_step)7, 1 << 20, &plan) == PT_ERR_PARAM, "bad step");
    PT_CHECK(pt_tile_plan_layer(&l, PT_TILE_FWD, 0, &plan) == PT_ERR_BUDGET, "zero budget");
    pt_tile_layer bad = l;
    bad.conv.in.c = 0;
    PT_CHECK(pt_tile_plan_layer(&bad, PT_TILE_FWD, 1 << 20, &plan) == PT_ERR_SHAPE, "zero features");
    bad = pointwise_layer(1, 2, 2, 3, 4, 0);
    bad.conv.stride_h = 2;
    PT_CHECK(pt_tile_plan_layer(&bad, PT_TILE_FWD, 1 << 20, &plan) == PT_ERR_PARAM, "strided pointwise");
    PT_CHECK(pt_tile_plan_layer(&l, PT_TILE_FWD, 1 << 20, &plan) == PT_OK, "plan");
    float x[35], w[21], y[15];
    static float l1_mem[4096 + PT_TILE_ALIGN];
    char *l1 = (char *)l1_mem + (PT_TILE_ALIGN - (uintptr_t)l1_mem % PT_TILE_ALIGN) % PT_TILE_ALIGN;
    pt_ctx ctx = ctx_with(1, pt_tile_scratch_bytes(&plan, 1));
    PT_CHECK(pt_tile_fwd(&ctx, &plan, l1, plan.l1_bytes - 1, x, w, NULL, y) == PT_ERR_SCRATCH,
             "L1 region smaller than the plan");
    char *misaligned = (char *)l1 + 4;  /* l1 itself is only float-aligned */
    if ((uintptr_t)misaligned % PT_TILE_ALIGN == 0) misaligned += 4;
    PT_CHECK(pt_tile_fwd(&ctx, &plan, misaligned, plan.l1_bytes, x, w, NULL, y) == PT_ERR_PARAM,
             "misaligned L1 region");
    PT_CHECK(pt_tile_bwd_input(&ctx, &plan, l1, plan.l1_bytes, w, y, x) == PT_ERR_PARAM,
             "a fwd plan run as bwd_input");
    pt_tile_plan broken = plan;
    broken.tile_m = 0;
    PT_CHECK(pt_tile_fwd(&ctx, &broken, l1, plan.l1_bytes, x, w, NULL, y) == PT_ERR_PARAM, "zero tile");
    broken = plan;
    broken.order[0] = broken.order[1];
    PT_CHECK(pt_tile_fwd(&ctx, &broken, l1, plan.l1_bytes, x, w, NULL, y) == PT_ERR_PARAM,
             "loop order not a permutation");
    pt_tile_layer dl = depthwise_layer(2, 6, 5, 3, 2, 3, 2, 0, 1, 1, 1); /* rows not cuttable */
    PT_CHECK(pt_tile_plan_layer(&dl, PT_TILE_FWD, 1 << 20, &plan) == PT_OK, "depthwise plan");
    broken = plan;
    broken.tile_rows = 1;
    float dx[180], dw[12], dy[36];
    PT_CHECK(pt_tile_fwd(&ctx, &broken, l1, plan.l1_bytes, dx, dw, NULL, dy) == PT_ERR_PARAM,
             "depthwise rows cut where the geometry does not allow it");
    pt_tile_layer cl = conv2d_layer(2, 6, 5, 3, 4, 2, 3, 2, 0, 1, 1, 1); /* pads >= kernel */
    PT_CHECK(pt_tile_plan_layer(&cl, PT_TILE_FWD, 1 << 20, &plan) == PT_OK, "conv2d plan");
    broken = plan;
    broken.tile_m = 1;
    PT_CHECK(pt_tile_fwd(&ctx, &broken, l1, plan.l1_bytes, dx, dw, NULL, dy) == PT_ERR_PARAM,
             "conv2d pixel tiles where the pads do not allow them");
    PT_CHECK(pt_tile_plan_layer(&cl, PT_TILE_BWD_WEIGHT, 1 << 20, &plan) == PT_OK, "conv2d plan");
    broken = plan;
    broken.tile_k = 3;
    PT_CHECK(pt_tile_bwd_weight(&ctx, &broken, l1, plan.l1_bytes, dx, dy, dw, NULL) == PT_ERR_PARAM,
             "conv2d grad-weight K tile not a K-block multiple");
    cl = conv2d_layer(1, 4, 2048, 4, 512, 3, 1, 1, 1, 1, 1, 0); /* one row of grad_y alone: 4 MiB */
    PT_CHECK(pt_tile_plan_layer(&cl, PT_TILE_BWD_INPUT, 128 * 1024, &plan) == PT_ERR_BUDGET,
             "conv2d too large for the budget");
    PT_CHECK(pt_tile_min_l1_bytes(&cl, PT_TILE_BWD_INPUT) > 128 * 1024, "conv2d min budget");
    PT_CHECK(pt_dma_set_backend(&(pt_dma_backend){NULL, late_wait, NULL}) == PT_ERR_NULL,
             "backend without copy");
    pt_tile_layer pl = pool_layer(PT_TILE_AVGPOOL, 2, 6, 6, 3, 2, 2);
    PT_CHECK(pt_tile_plan_layer(&pl, PT_TILE_FWD, 1 << 20, &plan) == PT_OK, "avgpool plan");
    PT_CHECK(pt_tile_fwd(&ctx, &plan, l1, plan.l1_bytes, NULL, NULL, NULL, dy) == PT_ERR_NULL, "avgpool without x");
    broken = plan;
    broken.step = PT_TILE_BWD_WEIGHT;
    PT_CHECK(pt_tile_bwd_weight(&ctx, &broken, l1, plan.l1_bytes, dx, dy, dw, NULL) == PT_ERR_UNSUPPORTED,
             "a pool's bwd_weight");
    pl.conv.pad_top = 1;
    PT_CHECK(pt_tile_plan_layer(&pl, PT_TILE_FWD, 1 << 20, &plan) == PT_ERR_PARAM, "padded avgpool");
    pl = pool_layer(PT_TILE_AVGPOOL, 2, 6, 6, 3, 2, 2);
    pl.has_bias = 1;
    PT_CHECK(pt_tile_plan_layer(&pl, PT_TILE_FWD, 1 << 20, &plan) == PT_ERR_PARAM, "avgpool with a bias");
    pl = pool_layer(PT_TILE_GLOBAL_AVGPOOL, 2, 6, 6, 3, 1, 1);
    pl.conv.kh = 5;
    PT_CHECK(pt_tile_plan_layer(&pl, PT_TILE_FWD, 1 << 20, &plan) == PT_ERR_SHAPE,
             "global pool whose window is not the map");
    pl = depthwise_layer(2, 6, 6, 3, 3, 1, 1, 1, 1, 1, 1);
    pl.kind = PT_TILE_AFFINE;
    PT_CHECK(pt_tile_plan_layer(&pl, PT_TILE_FWD, 1 << 20, &plan) == PT_ERR_PARAM, "affine with a 3x3 window");
}

int main(void)
{
    pt_rng rng = {12345};
    test_bad_arguments();
    pt_tile_layer l;
    pt_tile_plan plan_unused;
    l = linear_layer(37, 45, 29, 1);
    check_layer("linear 37x45->29", &l, &rng);
    l = linear_layer(70, 530, 17, 1);  /* K > PT_GEMM_KC (512) for fwd */
    check_layer("linear 70x530->17", &l, &rng);
    l = linear_layer(3, 11, 530, 0);   /* K > PT_GEMM_KC for bwd_input, no bias */
    check_layer("linear 3x11->530", &l, &rng);
    l = linear_layer(8300, 5, 3, 1);   /* bwd_weight: 17 K tiles, C single-buffered */
    check_layer("linear 8300x5->3", &l, &rng);
    l = pointwise_layer(3, 5, 7, 19, 13, 1);
    check_layer("pointwise 3x5x7 19->13", &l, &rng);
    l = pointwise_layer(2, 23, 12, 6, 10, 0); /* 552 pixels: bwd_weight K cut */
    check_layer("pointwise 2x23x12 6->10", &l, &rng);
    l = depthwise_layer(2, 7, 9, 20, 3, 1, 1, 1, 1, 1, 1);
    check_layer("depthwise 2x7x9x20 k3 s1 p1", &l, &rng);
    l = depthwise_layer(3, 8, 8, 19, 3, 2, 0, 1, 0, 1, 1); /* TF 'same' at stride 2 */
    check_layer("depthwise 3x8x8x19 k3 s2 same", &l, &rng);
    l = depthwise_layer(2, 8, 7, 5, 3, 2, 0, 0, 0, 0, 0); /* last input row reached by no window */
    check_layer("depthwise 2x8x7x5 k3 s2 valid", &l, &rng);
    l = depthwise_layer(2, 6, 5, 3, 2, 3, 2, 0, 1, 1, 1); /* stride > kernel: whole images only */
    check_layer("depthwise 2x6x5x3 k2 s3", &l, &rng);
    l = depthwise_layer(4, 1, 2, 9, 3, 3, 3, 0, 3, 2, 1); /* windows that read only padding */
    check_layer("depthwise 4x1x2x9 k3 s3 pads 3,0,3,2", &l, &rng);
    l = depthwise_layer(2, 5, 6, 17, 5, 1, 2, 2, 2, 2, 1);
    check_layer("depthwise 2x5x6x17 k5 s1 p2", &l, &rng);
    l = conv2d_layer(3, 9, 7, 3, 10, 3, 2, 0, 1, 0, 1, 1); /* MobileNet's conv1: TF 'same' at stride 2 */
    check_layer("conv2d 3x9x7 3->10 k3 s2 same", &l, &rng);
    l = conv2d_layer(2, 6, 5, 4, 6, 3, 1, 1, 1, 1, 1, 1);
    check_layer("conv2d 2x6x5 4->6 k3 s1 p1", &l, &rng);
    l = conv2d_layer(3, 24, 24, 2, 5, 3, 1, 1, 1, 1, 1, 0); /* 1728 pixels: K tiles across images */
    check_layer("conv2d 3x24x24 2->5 k3 s1 p1", &l, &rng);
    l.has_bias = 1;
    check_conv2d_forced("conv2d 3x24x24 2->5 k3 s1 p1", &l, &rng);
    l = conv2d_layer(3, 13, 11, 7, 6, 3, 1, 1, 1, 1, 1, 1); /* 7 channels: slices of 4 and 3 */
    check_layer("conv2d 3x13x11 7->6 k3 s1 p1", &l, &rng);
    check_conv2d_forced("conv2d 3x13x11 7->6 k3 s1 p1", &l, &rng);
    l = conv2d_layer(2, 8, 7, 3, 4, 3, 2, 0, 0, 0, 0, 1); /* last input row reached by no window */
    check_layer("conv2d 2x8x7 3->4 k3 s2 valid", &l, &rng);
    l = conv2d_layer(2, 7, 8, 3, 5, 2, 3, 2, 0, 1, 1, 1); /* pads >= kernel: whole images only */
    check_layer("conv2d 2x7x8 3->5 k2 s3", &l, &rng);
    l = conv2d_layer(3, 1, 10, 1, 16, 3, 3, 3, 1, 0, 1, 0); /* windows that read only padding */
    check_layer("conv2d 3x1x10 1->16 k3 s3 pads 3,1", &l, &rng);
    l = conv2d_layer(2, 4, 5, 6, 7, 1, 1, 0, 0, 0, 0, 1); /* 1x1: im2col is a copy */
    check_layer("conv2d 2x4x5 6->7 k1", &l, &rng);
    l = conv2d_layer(9, 9, 9, 3, 10, 3, 2, 0, 1, 0, 1, 1); /* 6 images per chunk when built small */
    check_layer("conv2d 9x9x9 3->10 k3 s2 same", &l, &rng);
    /* the forward's fused activation, applied to each finished tile in L1 */
    l = linear_layer(70, 530, 17, 1);
    l.act = PT_ACT_RELU6;
    check_layer("linear 70x530->17 relu6", &l, &rng);
    l = pointwise_layer(3, 5, 7, 19, 13, 1);
    l.act = PT_ACT_RELU;
    check_layer("pointwise 3x5x7 19->13 relu", &l, &rng);
    l = depthwise_layer(4, 1, 2, 9, 3, 3, 3, 0, 3, 2, 1); /* windows that read only padding: act(b) */
    l.act = PT_ACT_RELU6;
    check_layer("depthwise 4x1x2x9 k3 s3 pads 3,0,3,2 relu6", &l, &rng);
    l = depthwise_layer(3, 8, 8, 19, 3, 2, 0, 1, 0, 1, 1);
    l.act = PT_ACT_RELU6;
    check_layer("depthwise 3x8x8x19 k3 s2 same relu6", &l, &rng);
    l = conv2d_layer(3, 9, 7, 3, 10, 3, 2, 0, 1, 0, 1, 1);
    l.act = PT_ACT_RELU6;
    check_layer("conv2d 3x9x7 3->10 k3 s2 same relu6", &l, &rng);
    /* grad-input through the input's activation, x's tile fetched beside it */
    l = linear_layer(3, 11, 530, 0); /* K > PT_GEMM_KC: masked after the last K tile */
    l.input_act = PT_ACT_RELU6;
    check_layer("linear 3x11->530 input relu6", &l, &rng);
    l = pointwise_layer(2, 23, 12, 6, 10, 0);
    l.input_act = PT_ACT_RELU;
    check_layer("pointwise 2x23x12 6->10 input relu", &l, &rng);
    l = depthwise_layer(2, 7, 9, 20, 3, 1, 1, 1, 1, 1, 1);
    l.act = l.input_act = PT_ACT_RELU6;
    check_layer("depthwise 2x7x9x20 k3 s1 p1 relu6 both", &l, &rng);
    l = depthwise_layer(2, 8, 7, 5, 3, 2, 0, 0, 0, 0, 0); /* a last input row no window reaches */
    l.input_act = PT_ACT_RELU6;
    check_layer("depthwise 2x8x7x5 k3 s2 valid input relu6", &l, &rng);
    l = depthwise_layer(3, 5, 7, 21, 1, 1, 0, 0, 0, 0, 1);
    l.kind = PT_TILE_AFFINE;
    check_layer("affine 3x5x7x21", &l, &rng);
    l.conv.in = (pt_dims){70, 1, 1, 33}; /* [N, C] activations */
    l.conv.out_c = 33;
    check_layer("affine 70x33", &l, &rng);
    l.has_bias = 0;
    PT_CHECK(pt_tile_plan_layer(&l, PT_TILE_FWD, 1 << 20, &plan_unused) == PT_ERR_PARAM, "affine without a shift");
    l.has_bias = 1;
    l.act = PT_ACT_RELU;
    PT_CHECK(pt_tile_plan_layer(&l, PT_TILE_FWD, 1 << 20, &plan_unused) == PT_ERR_PARAM, "affine with an activation");
    l = pool_layer(PT_TILE_AVGPOOL, 2, 6, 6, 3, 2, 2);
    l.act = PT_ACT_RELU6;
    PT_CHECK(pt_tile_plan_layer(&l, PT_TILE_FWD, 1 << 20, &plan_unused) == PT_ERR_PARAM, "pool with an activation");
    l = linear_layer(5, 7, 3, 1);
    l.act = (pt_act)7;
    PT_CHECK(pt_tile_plan_layer(&l, PT_TILE_FWD, 1 << 20, &plan_unused) == PT_ERR_PARAM, "unknown activation");
    l.act = PT_ACT_NONE;
    l.input_act = (pt_act)3;
    PT_CHECK(pt_tile_plan_layer(&l, PT_TILE_FWD, 1 << 20, &plan_unused) == PT_ERR_PARAM, "unknown input activation");
    l = conv2d_layer(2, 6, 5, 4, 6, 3, 1, 1, 1, 1, 1, 1);
    l.input_act = PT_ACT_RELU6;
    PT_CHECK(pt_tile_plan_layer(&l, PT_TILE_BWD_INPUT, 1 << 20, &plan_unused) == PT_ERR_PARAM,
             "conv2d with an input activation");
    l = pointwise_layer(2, 3, 3, 4, 5, 0);
    l.input_act = PT_ACT_RELU6;
    PT_CHECK(pt_tile_plan_layer(&l, PT_TILE_BWD_INPUT, 1 << 20, &plan_unused) == PT_OK, "masked plan");
    {
        static float l1m[8192 + PT_TILE_ALIGN];
        char *l1a = (char *)l1m + (PT_TILE_ALIGN - (uintptr_t)l1m % PT_TILE_ALIGN) % PT_TILE_ALIGN;
        float xs[72], ws[20], gys[90], gxs[72];
        pt_ctx c1 = ctx_with(1, pt_tile_scratch_bytes(&plan_unused, 1));
        PT_CHECK(pt_tile_bwd_input(&c1, &plan_unused, l1a, plan_unused.l1_bytes, ws, gys, gxs) == PT_ERR_NULL,
                 "a masked grad-input without x");
        l.input_act = PT_ACT_NONE;
        PT_CHECK(pt_tile_plan_layer(&l, PT_TILE_BWD_INPUT, 1 << 20, &plan_unused) == PT_OK, "plain plan");
        c1 = ctx_with(1, pt_tile_scratch_bytes(&plan_unused, 1));
        PT_CHECK(pt_tile_bwd_input_act(&c1, &plan_unused, l1a, plan_unused.l1_bytes, ws, gys, xs, gxs) ==
                     PT_ERR_PARAM, "x given for a layer without an input activation");
    }
    l = pool_layer(PT_TILE_AVGPOOL, 2, 7, 9, 20, 2, 2); /* last input row reached by no window */
    check_layer("avgpool 2x7x9x20 k2 s2", &l, &rng);
    l = pool_layer(PT_TILE_AVGPOOL, 3, 8, 8, 19, 3, 1); /* overlapping windows */
    check_layer("avgpool 3x8x8x19 k3 s1", &l, &rng);
    l = pool_layer(PT_TILE_AVGPOOL, 2, 6, 5, 3, 2, 3); /* stride > kernel: whole images only */
    check_layer("avgpool 2x6x5x3 k2 s3", &l, &rng);
    l = pool_layer(PT_TILE_AVGPOOL, 5, 4, 4, 33, 4, 4); /* MobileNet's pool6 as a 4x4 window */
    check_layer("avgpool 5x4x4x33 k4 s4", &l, &rng);
    l = pool_layer(PT_TILE_GLOBAL_AVGPOOL, 3, 5, 3, 37, 1, 1);
    check_layer("global avgpool 3x5x3x37", &l, &rng);
    l = pool_layer(PT_TILE_GLOBAL_AVGPOOL, 4, 1, 1, 8, 1, 1);
    check_layer("global avgpool 4x1x1x8", &l, &rng);
    /* the pools' grad-input through the activation that made their input */
    l = pool_layer(PT_TILE_GLOBAL_AVGPOOL, 5, 4, 4, 70, 1, 1); /* pool6's kind: ReLU6 before it */
    l.input_act = PT_ACT_RELU6;
    check_layer("global avgpool 5x4x4x70 input relu6", &l, &rng);
    l = pool_layer(PT_TILE_AVGPOOL, 2, 7, 9, 20, 2, 2); /* a last input row no window reaches */
    l.input_act = PT_ACT_RELU;
    check_layer("avgpool 2x7x9x20 k2 s2 input relu", &l, &rng);
    l = pool_layer(PT_TILE_AVGPOOL, 3, 8, 8, 19, 3, 1); /* overlapping windows */
    l.input_act = PT_ACT_RELU6;
    check_layer("avgpool 3x8x8x19 k3 s1 input relu6", &l, &rng);
    l = depthwise_layer(3, 5, 7, 21, 1, 1, 0, 0, 0, 0, 1);
    l.kind = PT_TILE_AFFINE;
    l.input_act = PT_ACT_RELU6;
    PT_CHECK(pt_tile_plan_layer(&l, PT_TILE_BWD_INPUT, 1 << 20, &plan_unused) == PT_ERR_PARAM,
             "affine with an input activation");
    free(scratch_mem);
    return pt_test_finish("tile");
}
