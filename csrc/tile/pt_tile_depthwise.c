/* Tiled, double-buffered execution of depthwise convolutions, of the channel
 * affine map (a 1x1 depthwise layer to the tiling) and of average pooling
 * (the same windows without weights). Tiles run channel block by
 * channel block (the weights of a block are fetched once), and inside a
 * block over images and rows. While tile i is computed the DMA
 * fetches tile i + 1's input (and, at a block change, its weights) into the
 * other buffer, and tile i - 1's output drains from the other output buffer.
 * The forward applies the layer's act through the kernel; a grad-input with
 * an input_act fetches x over the tile's rows while the kernel runs and
 * masks the finished tile with it. See pt_tile.h for why every step stays
 * bitwise equal to the untiled kernel. */
#include <string.h>
#include "pt_tile_internal.h"
#include "pulptrain/pt_depthwise.h"
#include "pulptrain/pt_pool.h"
#include "pulptrain/pt_affine.h"
#include "pulptrain/pt_dma.h"
#include "pulptrain/internal.h"

#define NO_DMA ((pt_dma_id)-1)

typedef struct dw_tile {
    int c0, c1, n0, n1, r0, r1;
    pt_tile_dw_rows rows;
} dw_tile;

typedef struct dw_run {
    const pt_tile_plan *plan;
    pt_tile_dw_geom g;
    pt_tile_dw_layout lay;
    int total_rows;            /* rows the row tiles cut: OH (fwd) or H */
    int count_c, count_n, count_r;
} dw_run;

static pt_status dw_setup(dw_run *r, const pt_ctx *ctx, const pt_tile_plan *plan, pt_tile_step step,
                          void *l1, size_t l1_bytes)
{
    const pt_tile_kind kind = plan->layer.kind;
    if (plan->step != step || (kind != PT_TILE_DEPTHWISE && kind != PT_TILE_AFFINE && !pt_tile_is_pool(kind)))
        return PT_ERR_PARAM;
    pt_status st = pt_tile_dw_geom_of(&plan->layer, &r->g);
    if (st != PT_OK) return st;
    if (!r->g.weights && step == PT_TILE_BWD_WEIGHT) return PT_ERR_UNSUPPORTED;
    st = pt_check_ctx(ctx, 0);
    if (st != PT_OK) return st;
    const int total_rows = step == PT_TILE_FWD ? r->g.oh : r->g.h;
    if (plan->tile_images < 1 || plan->tile_images > r->g.n || plan->tile_rows < 1 ||
        plan->tile_rows > total_rows || plan->tile_channels < 1 || plan->tile_channels > r->g.c)
        return PT_ERR_PARAM;
    /* several images per tile only when tiles are whole, contiguous images;
     * rows cut only where the geometry allows it */
    if (plan->tile_images > 1 && (plan->tile_rows != total_rows || !pt_tile_dw_whole_images(&r->g, step)))
        return PT_ERR_PARAM;
    if (plan->tile_rows != total_rows && (step == PT_TILE_BWD_WEIGHT || !r->g.rows_cuttable))
        return PT_ERR_PARAM;
    r->lay = pt_tile_dw_layout_of(&r->g, step, plan->layer.has_bias, plan->tile_images, plan->tile_rows,
                                  plan->tile_channels);
    if (r->lay.total != plan->l1_bytes || l1_bytes < r->lay.total) return PT_ERR_SCRATCH;
    if ((uintptr_t)l1 % PT_TILE_ALIGN) return PT_ERR_PARAM;
    r->plan = plan;
    r->total_rows = total_rows;
    r->count_c = pt_tile_ceil_div(r->g.c, plan->tile_channels);
    r->count_n = pt_tile_ceil_div(r->g.n, plan->tile_images);
    r->count_r = pt_tile_ceil_div(r->total_rows, plan->tile_rows);
    return PT_OK;
}

static dw_tile tile_at(const dw_run *r, uint64_t i)
{
    const pt_tile_plan *p = r->plan;
    dw_tile t;
    int rb = (int)(i % (uint64_t)r->count_r);
    i /= (uint64_t)r->count_r;
    int nb = (int)(i % (uint64_t)r->count_n);
    int cb = (int)(i / (uint64_t)r->count_n);
    t.c0 = cb * p->tile_channels;
    t.c1 = pt_tile_min_int(t.c0 + p->tile_channels, r->g.c);
    t.n0 = nb * p->tile_images;
    t.n1 = pt_tile_min_int(t.n0 + p->tile_images, r->g.n);
    t.r0 = rb * p->tile_rows;
    t.r1 = pt_tile_min_int(t.r0 + p->tile_rows, r->total_rows);
    t.rows = pt_tile_dw_rows_of(&r->g, p->step, t.r0, t.r1);
    return t;
}

static void wait_and_clear(pt_dma_id *id)
{
    if (*id != NO_DMA) pt_dma_wait(*id);
    *id = NO_DMA;
}

/* Pixels [first, first + count) of an NHWC array with C channels, channels
 * [c0, c1), to or from a dense L1 tile. */
static pt_dma_id fetch_pixels(float *dst, const float *src, int C, size_t first, size_t count, int c0,
                              int c1)
{
    if (count == 0) return NO_DMA;
    size_t width = (size_t)(c1 - c0) * sizeof(float);
    return pt_dma_copy_2d_async(dst, src + first * C + c0, width, count, width, (size_t)C * sizeof(float));
}

static pt_dma_id store_pixels(float *dst, const float *src, int C, size_t first, size_t count, int c0,
                              int c1)
{
    size_t width = (size_t)(c1 - c0) * sizeof(float);
    return pt_dma_copy_2d_async(dst + first * C + c0, src, width, count, (size_t)C * sizeof(float), width);
}

/* The kernel's view of a tile: its images, rows and channels, and the
 * padding that makes its windows the untiled ones. */
static pt_conv_params tile_params(const dw_run *r, const dw_tile *t, int in_rows)
{
    pt_conv_params p = r->plan->layer.conv;
    p.in.n = t->n1 - t->n0;
    p.in.h = in_rows;
    p.in.c = p.out_c = t->c1 - t->c0;
    p.pad_top = t->rows.pad_lo;
    p.pad_bottom = t->rows.pad_hi;
    return p;
}

/* The step's kernel on one tile (p: tile_params). */
static pt_status tile_kernel(const pt_ctx *ctx, const dw_run *r, const pt_conv_params *p, const float *in,
                             const float *w, const float *b, float *out)
{
    const int fwd = r->plan->step == PT_TILE_FWD;
    const pt_pool_params pool = {p->in, p->kh, p->kw, p->stride_h, p->stride_w};
    switch (r->plan->layer.kind) {
    case PT_TILE_AVGPOOL:
        return fwd ? pt_avgpool_f32_fwd(ctx, &pool, in, out) : pt_avgpool_f32_bwd(ctx, &pool, in, out);
    case PT_TILE_GLOBAL_AVGPOOL:
        return fwd ? pt_global_avgpool_f32_fwd(ctx, p->in, in, out) : pt_global_avgpool_f32_bwd(ctx, p->in, in, out);
    case PT_TILE_AFFINE:
        return fwd ? pt_channel_affine_f32_fwd(ctx, p->in, in, w, b, out)
                   : pt_channel_affine_f32_bwd_input(ctx, p->in, w, in, out);
    default:
        return fwd ? pt_depthwise_f32_fwd_act(ctx, p, r->plan->layer.act, in, w, b, out)
                   : pt_depthwise_f32_bwd_input(ctx, p, w, in, out);
    }
}

/* fwd and bwd_input: stream source tiles in, result tiles out. mask:
 * bwd_input's x when the layer has an input_act. */
static pt_status dw_stream(const pt_ctx *ctx, const dw_run *r, char *l1, const float *src,
                           const float *w, const float *b, const float *mask, float *dst)
{
    const pt_tile_dw_geom *g = &r->g;
    const int fwd = r->plan->step == PT_TILE_FWD;
    const int src_w = fwd ? g->w : g->ow, src_img_rows = fwd ? g->h : g->oh;
    const int dst_w = fwd ? g->ow : g->w, dst_img_rows = fwd ? g->oh : g->h;
    const size_t taps = (size_t)g->kh * g->kw;
    const uint64_t total = (uint64_t)r->count_c * r->count_n * r->count_r;
    pt_dma_id in_dma[2] = {NO_DMA, NO_DMA}, w_dma[2][2] = {{NO_DMA, NO_DMA}, {NO_DMA, NO_DMA}};
    pt_dma_id out_dma[2] = {NO_DMA, NO_DMA};
    int cur_in = 0, cur_w = 0, cur_out = 0;
    pt_status st = PT_OK;

#define FETCH_SRC(t, buf)                                                                       \
    fetch_pixels((float *)(l1 + r->lay.in[buf]), src, g->c,                                      \
                 ((size_t)(t).n0 * src_img_rows + (size_t)(t).rows.src_lo) * src_w,              \
                 (size_t)((t).n1 - (t).n0) * (size_t)((t).rows.src_hi - (t).rows.src_lo) * src_w, \
                 (t).c0, (t).c1)
#define FETCH_W(t, buf)                                                                         \
    do {                                                                                         \
        size_t width = (size_t)((t).c1 - (t).c0) * sizeof(float);                               \
        w_dma[buf][0] = pt_dma_copy_2d_async(l1 + r->lay.w[buf], w + (t).c0, width, taps, width, \
                                             (size_t)g->c * sizeof(float));                      \
        if (b) w_dma[buf][1] = pt_dma_copy_1d_async(l1 + r->lay.b[buf], b + (t).c0, width);     \
    } while (0)

    dw_tile t = tile_at(r, 0);
    in_dma[0] = FETCH_SRC(t, 0);
    if (g->weights) FETCH_W(t, 0);
    for (uint64_t i = 0; i < total; ++i) {
        const int has_next = i + 1 < total;
        const dw_tile next = has_next ? tile_at(r, i + 1) : t;
        if (has_next) {
            in_dma[cur_in ^ 1] = FETCH_SRC(next, cur_in ^ 1);
            if (g->weights && next.c0 != t.c0) FETCH_W(next, cur_w ^ 1);
        }
        wait_and_clear(&in_dma[cur_in]);
        wait_and_clear(&w_dma[cur_w][0]);
        wait_and_clear(&w_dma[cur_w][1]);
        wait_and_clear(&out_dma[cur_out]); /* this output buffer has drained */

        const float *in = (const float *)(l1 + r->lay.in[cur_in]);
        const float *wt = (const float *)(l1 + r->lay.w[cur_w]);
        float *out = (float *)(l1 + r->lay.out[cur_out]);
        const int images = t.n1 - t.n0, ct = t.c1 - t.c0;
        /* bwd_input with an input_act: x over the tile's rows arrives while the kernel runs */
        pt_dma_id mask_dma = NO_DMA;
        if (!fwd && g->input_act != PT_ACT_NONE)
            mask_dma = fetch_pixels((float *)(l1 + r->lay.mask), mask, g->c,
                                    ((size_t)t.n0 * dst_img_rows + (size_t)t.r0) * dst_w,
                                    (size_t)images * (size_t)(t.r1 - t.r0) * dst_w, t.c0, t.c1);
        /* rows of the output buffer: the tile's rows plus what the kernel
         * computes around them (bwd_input), from buf_lo on */
        const int buf_lo = pt_tile_min_int(t.rows.ext_lo, t.r0);
        const int buf_hi = pt_tile_max_int(t.rows.ext_hi, t.r1);
        const size_t row_floats = (size_t)dst_w * ct;
        if (fwd && t.rows.src_hi <= t.rows.src_lo) {
            /* every window lies in the padding (pads >= kernel): y = act(b), or act(0) */
            const float *bt = b ? (const float *)(l1 + r->lay.b[cur_w]) : NULL;
            const size_t pixels = (size_t)images * (size_t)(t.r1 - t.r0) * (size_t)dst_w;
            const pt_act act = r->plan->layer.act;
            for (size_t px = 0; px < pixels; ++px)
                for (int c = 0; c < ct; ++c) {
                    const float v = bt ? bt[c] : 0.0f;
                    out[px * ct + c] = act == PT_ACT_NONE ? v : pt_act_clamp(v, pt_act_cap(act));
                }
        } else if (fwd) {
            pt_conv_params p = tile_params(r, &t, t.rows.src_hi - t.rows.src_lo);
            st = tile_kernel(ctx, r, &p, in, wt, b ? (const float *)(l1 + r->lay.b[cur_w]) : NULL, out);
        } else {
            const int ext_rows = t.rows.ext_hi - t.rows.ext_lo;
            if (ext_rows < buf_hi - buf_lo) /* rows no window reaches get 0 */
                memset(out, 0, (size_t)images * (buf_hi - buf_lo) * row_floats * sizeof(float));
            if (t.rows.src_hi > t.rows.src_lo) {
                pt_conv_params p = tile_params(r, &t, ext_rows);
                st = tile_kernel(ctx, r, &p, in, wt, NULL, out + (size_t)(t.rows.ext_lo - buf_lo) * row_floats);
            }
        }
        wait_and_clear(&mask_dma);
        if (st != PT_OK) break;
        float *final = out + (size_t)(t.r0 - buf_lo) * row_floats;
        const size_t first_px = ((size_t)t.n0 * dst_img_rows + (size_t)t.r0) * dst_w;
        const size_t pixels = (size_t)images * (size_t)(t.r1 - t.r0) * dst_w;
        if (!fwd && g->input_act != PT_ACT_NONE) { /* grad-input through the input's activation */
            const float *m = (const float *)(l1 + r->lay.mask);
            const float cap = pt_act_cap(g->input_act);
            for (size_t e = 0; e < pixels * (size_t)ct; ++e) final[e] = pt_act_grad_select(m[e], final[e], cap);
        }
        out_dma[cur_out] = store_pixels(dst, final, g->c, first_px, pixels, t.c0, t.c1);
        cur_out ^= 1;
        cur_in ^= 1;
        if (has_next && next.c0 != t.c0) cur_w ^= 1;
        t = next;
    }
#undef FETCH_SRC
#undef FETCH_W
    for (int i = 0; i < 2; ++i) {
        wait_and_clear(&in_dma[i]);
        wait_and_clear(&w_dma[i][0]);
        wait_and_clear(&w_dma[i][1]);
        wait_and_clear(&out_dma[i]);
    }
    return st;
}

pt_status pt_tile_dw_fwd(const pt_ctx *ctx, const pt_tile_plan *plan, void *l1, size_t l1_bytes,
                         const float *x, const float *w, const float *b, float *y)
{
    dw_run r;
    pt_status st = dw_setup(&r, ctx, plan, PT_TILE_FWD, l1, l1_bytes);
    if (st != PT_OK) return st;
    if (b && !plan->layer.has_bias) return PT_ERR_PARAM;
    if (!w && r.g.weights) return PT_ERR_NULL;
    return dw_stream(ctx, &r, (char *)l1, x, w, b, NULL, y);
}

pt_status pt_tile_dw_bwd_input(const pt_ctx *ctx, const pt_tile_plan *plan, void *l1,
                               size_t l1_bytes, const float *w, const float *grad_y, const float *x,
                               float *grad_x)
{
    dw_run r;
    pt_status st = dw_setup(&r, ctx, plan, PT_TILE_BWD_INPUT, l1, l1_bytes);
    if (st != PT_OK) return st;
    if (!w && r.g.weights) return PT_ERR_NULL;
    return dw_stream(ctx, &r, (char *)l1, grad_y, w, NULL, x, grad_x);
}

/* bwd_weight: tiles of whole images, each one kernel call that adds its
 * images' sums to the channel block's running totals in batch order (the
 * block's first tile sets them) - as the kernel does over the whole batch. */
pt_status pt_tile_dw_bwd_weight(const pt_ctx *ctx, const pt_tile_plan *plan, void *l1,
                                size_t l1_bytes, const float *x, const float *grad_y,
                                float *grad_w, float *grad_b)
{
    dw_run r;
    pt_status st = dw_setup(&r, ctx, plan, PT_TILE_BWD_WEIGHT, l1, l1_bytes);
    if (st != PT_OK) return st;
    if (grad_b && !plan->layer.has_bias) return PT_ERR_PARAM;
    const pt_tile_dw_geom *g = &r.g;
    char *base = (char *)l1;
    const size_t taps = (size_t)g->kh * g->kw;
    const size_t x_img = (size_t)g->h * g->w, y_img = (size_t)g->oh * g->ow;
    const uint64_t total = (uint64_t)r.count_c * r.count_n;
    pt_dma_id x_dma[2] = {NO_DMA, NO_DMA}, y_dma[2] = {NO_DMA, NO_DMA};
    pt_dma_id acc_dma[2][2] = {{NO_DMA, NO_DMA}, {NO_DMA, NO_DMA}};
    int cur = 0, cur_acc = 0;

    dw_tile t = tile_at(&r, 0);
    x_dma[0] = fetch_pixels((float *)(base + r.lay.in[0]), x, g->c, (size_t)t.n0 * x_img,
                            (size_t)(t.n1 - t.n0) * x_img, t.c0, t.c1);
    y_dma[0] = fetch_pixels((float *)(base + r.lay.in2[0]), grad_y, g->c, (size_t)t.n0 * y_img,
                            (size_t)(t.n1 - t.n0) * y_img, t.c0, t.c1);
    for (uint64_t i = 0; i < total; ++i) {
        const int has_next = i + 1 < total;
        const dw_tile next = has_next ? tile_at(&r, i + 1) : t;
        if (has_next) {
            x_dma[cur ^ 1] = fetch_pixels((float *)(base + r.lay.in[cur ^ 1]), x, g->c,
                                          (size_t)next.n0 * x_img, (size_t)(next.n1 - next.n0) * x_img,
                                          next.c0, next.c1);
            y_dma[cur ^ 1] = fetch_pixels((float *)(base + r.lay.in2[cur ^ 1]), grad_y, g->c,
                                          (size_t)next.n0 * y_img, (size_t)(next.n1 - next.n0) * y_img,
                                          next.c0, next.c1);
        }
        if (t.n0 == 0) { /* a new channel block: its totals' buffer must have drained */
            wait_and_clear(&acc_dma[cur_acc][0]);
            wait_and_clear(&acc_dma[cur_acc][1]);
        }
        wait_and_clear(&x_dma[cur]);
        wait_and_clear(&y_dma[cur]);

        const int ct = t.c1 - t.c0;
        float *acc_w = (float *)(base + r.lay.w[cur_acc]);
        float *acc_b = grad_b ? (float *)(base + r.lay.b[cur_acc]) : NULL;
        const float *xi = (const float *)(base + r.lay.in[cur]), *yi = (const float *)(base + r.lay.in2[cur]);
        pt_conv_params p = r.plan->layer.conv; /* whole images: the layer's own padding */
        p.in.n = t.n1 - t.n0;
        p.in.c = p.out_c = ct;
        if (r.plan->layer.kind == PT_TILE_AFFINE)
            st = t.n0 == 0 ? pt_channel_affine_f32_bwd_param(ctx, p.in, xi, yi, acc_w, acc_b)
                           : pt_channel_affine_f32_bwd_param_acc(ctx, p.in, xi, yi, acc_w, acc_b);
        else
            st = t.n0 == 0 ? pt_depthwise_f32_bwd_weight(ctx, &p, xi, yi, acc_w, acc_b)
                           : pt_depthwise_f32_bwd_weight_acc(ctx, &p, xi, yi, acc_w, acc_b);
        if (st != PT_OK) break;
        if (t.n1 == g->n) { /* the block's totals are final: drain them */
            size_t width = (size_t)ct * sizeof(float);
            acc_dma[cur_acc][0] = pt_dma_copy_2d_async(grad_w + t.c0, acc_w, width, taps,
                                                       (size_t)g->c * sizeof(float), width);
            if (grad_b) acc_dma[cur_acc][1] = pt_dma_copy_1d_async(grad_b + t.c0, acc_b, width);
            cur_acc ^= 1;
        }
        cur ^= 1;
        t = next;
    }
    for (int i = 0; i < 2; ++i) {
        wait_and_clear(&x_dma[i]);
        wait_and_clear(&y_dma[i]);
        wait_and_clear(&acc_dma[i][0]);
        wait_and_clear(&acc_dma[i][1]);
    }
    return st;
}
