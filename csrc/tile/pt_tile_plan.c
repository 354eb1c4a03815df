/* The tile planner: for one step of one layer and an L1 budget, the tile
 * sizes (and, for GEMMs, the loop order) that fit at the lowest cost: bytes
 * moved between L2 and L1 plus PT_TILE_CALL_BYTES per tile. The search is exhaustive over the tile sizes that give
 * distinct tile counts, so it is exact for the cost model below, which is
 * also exactly what the executors do (the tests compare the two).
 *
 * GEMM cost model. With loop order (outer, middle, inner) over tile counts,
 * an operand is re-fetched whenever one of its tile indices changes; a loop
 * it does not depend on, running outside its innermost varying index, makes
 * it stream once more per iteration. C tiles visited again because K is
 * outside M/N are read back (accumulate) and written again. */
#include <string.h>
#include "pt_tile_internal.h"
#include "pulptrain/internal.h"
#include "../kernels/pt_gemm_internal.h"

#define FLOAT_BYTES ((uint64_t)sizeof(float))

/* ------------------------------------------------------------ GEMM view */
static pt_status layer_check(const pt_tile_layer *layer)
{
    if (!layer) return PT_ERR_NULL;
    const pt_conv_params *p = &layer->conv;
    if (!pt_dims_valid(p->in) || p->out_c <= 0) return PT_ERR_SHAPE;
    if (layer->has_bias != 0 && layer->has_bias != 1) return PT_ERR_PARAM;
    if (layer->act != PT_ACT_NONE && layer->act != PT_ACT_RELU && layer->act != PT_ACT_RELU6) return PT_ERR_PARAM;
    if (layer->act != PT_ACT_NONE && (layer->kind == PT_TILE_AFFINE || pt_tile_is_pool(layer->kind)))
        return PT_ERR_PARAM;
    if (layer->input_act != PT_ACT_NONE && layer->input_act != PT_ACT_RELU && layer->input_act != PT_ACT_RELU6)
        return PT_ERR_PARAM;
    if (layer->input_act != PT_ACT_NONE && (layer->kind == PT_TILE_CONV2D || layer->kind == PT_TILE_AFFINE))
        return PT_ERR_PARAM;
    return PT_OK;
}

pt_status pt_tile_gemm_view_of(const pt_tile_layer *layer, pt_tile_step step, pt_tile_gemm_view *v)
{
    pt_status st = layer_check(layer);
    if (st != PT_OK) return st;
    const pt_conv_params *p = &layer->conv;
    if (layer->kind == PT_TILE_LINEAR) {
        if (p->in.h != 1 || p->in.w != 1) return PT_ERR_SHAPE;
    } else if (layer->kind == PT_TILE_POINTWISE) {
        if (p->kh != 1 || p->kw != 1 || p->stride_h != 1 || p->stride_w != 1 || p->pad_top ||
            p->pad_bottom || p->pad_left || p->pad_right)
            return PT_ERR_PARAM;
    } else {
        return PT_ERR_UNSUPPORTED;
    }
    long long rows = (long long)p->in.n * p->in.h * p->in.w;
    if (rows > INT32_MAX || rows * p->in.c > INT32_MAX || rows * p->out_c > INT32_MAX)
        return PT_ERR_OVERFLOW;
    const int batch = (int)rows, in = p->in.c, out = p->out_c;
    pt_tile_gemm_view g = {0};
    switch (step) {
    case PT_TILE_FWD: /* y[batch, out] = x[batch, in] w[out, in]^T */
        g = (pt_tile_gemm_view){batch, out, in, 0, 1, in, in, out, layer->has_bias ? out : 0, 0, 0};
        break;
    case PT_TILE_BWD_INPUT: /* grad_x[batch, in] = grad_y[batch, out] w[out, in] */
        g = (pt_tile_gemm_view){batch, in, out, 0, 0, out, in, in, 0, 0, 0};
        break;
    case PT_TILE_BWD_WEIGHT: /* grad_w[out, in] = grad_y[batch, out]^T x[batch, in] */
        g = (pt_tile_gemm_view){out, in, batch, 1, 0, out, in, in, 0, layer->has_bias ? out : 0, 0};
        break;
    default:
        return PT_ERR_PARAM;
    }
    g.mask = step == PT_TILE_BWD_INPUT && layer->input_act != PT_ACT_NONE;
    *v = g;
    return PT_OK;
}

/* Dims each operand's tile index depends on (bit masks over PT_TILE_DIM_*). */
static const int operand_uses[3] = {1 << PT_TILE_DIM_M | 1 << PT_TILE_DIM_K,
                                    1 << PT_TILE_DIM_K | 1 << PT_TILE_DIM_N,
                                    1 << PT_TILE_DIM_M | 1 << PT_TILE_DIM_N};

static void tile_counts(const pt_tile_gemm_view *v, int tm, int tn, int tk, int count[3])
{
    count[PT_TILE_DIM_M] = pt_tile_ceil_div(v->m, tm);
    count[PT_TILE_DIM_N] = pt_tile_ceil_div(v->n, tn);
    count[PT_TILE_DIM_K] = pt_tile_ceil_div(v->k, tk);
}

/* Loop position of the innermost loop that changes the operand's tile, or -1. */
static int innermost_use(int uses, const int order[3], const int count[3])
{
    int innermost = -1;
    for (int pos = 0; pos < 3; ++pos)
        if ((uses >> order[pos] & 1) && count[order[pos]] > 1) innermost = pos;
    return innermost;
}

void pt_tile_gemm_buffers(const pt_tile_gemm_view *v, int tm, int tn, int tk, const int order[3],
                          int buffers[3])
{
    int count[3];
    tile_counts(v, tm, tn, tk, count);
    for (int op = 0; op < 3; ++op) {
        /* consecutive tiles during which the operand's tile stays */
        uint64_t run = 1;
        for (int pos = innermost_use(operand_uses[op], order, count) + 1; pos < 3; ++pos)
            run *= (uint64_t)count[order[pos]];
        buffers[op] = run >= PT_TILE_STATIONARY_RUN ? 1 : 2;
    }
}

pt_tile_gemm_layout pt_tile_gemm_layout_of(const pt_tile_gemm_view *v, int tm, int tn, int tk,
                                           const int buffers[3])
{
    pt_tile_gemm_layout l;
    size_t a = pt_tile_align((size_t)tm * tk * sizeof(float));
    size_t b = pt_tile_align((size_t)tk * tn * sizeof(float));
    size_t c = pt_tile_align((size_t)tm * tn * sizeof(float));
    size_t at = 0;
    l.a[0] = at;
    at += a;
    l.a[1] = buffers[0] == 2 ? at : l.a[0];
    at += buffers[0] == 2 ? a : 0;
    l.b[0] = at;
    at += b;
    l.b[1] = buffers[1] == 2 ? at : l.b[0];
    at += buffers[1] == 2 ? b : 0;
    l.c[0] = at;
    at += c;
    l.c[1] = buffers[2] == 2 ? at : l.c[0];
    at += buffers[2] == 2 ? c : 0;
    l.mask = at; /* one buffer: fetched while the final K tile's GEMM runs */
    at += v->mask ? c : 0;
    l.bias = at;
    l.total = at + pt_tile_align((size_t)(v->bias_n + v->grad_bias_m) * sizeof(float));
    return l;
}

/* Byte traffic of one GEMM plan (tile counts per loop in loop order). */
static void gemm_traffic(const pt_tile_gemm_view *v, int tm, int tn, int tk, const int order[3],
                         uint64_t *in, uint64_t *out)
{
    int count[3];
    tile_counts(v, tm, tn, tk, count);
    uint64_t passes[3];
    for (int op = 0; op < 3; ++op) {
        int innermost = innermost_use(operand_uses[op], order, count);
        passes[op] = 1;
        for (int pos = 0; pos < innermost; ++pos)
            if (!(operand_uses[op] >> order[pos] & 1)) passes[op] *= (uint64_t)count[order[pos]];
    }
    const uint64_t a_bytes = (uint64_t)v->m * v->k * FLOAT_BYTES;
    const uint64_t b_bytes = (uint64_t)v->k * v->n * FLOAT_BYTES;
    const uint64_t c_bytes = (uint64_t)v->m * v->n * FLOAT_BYTES;
    *in = a_bytes * passes[0] + b_bytes * passes[1] + c_bytes * (passes[2] - 1) +
          (uint64_t)v->bias_n * FLOAT_BYTES + (v->mask ? c_bytes : 0);
    *out = c_bytes * passes[2] + (uint64_t)v->grad_bias_m * FLOAT_BYTES;
}

/* Next smaller tile size with a different tile count: iterates the distinct
 * values of ceil(total / count), largest first. */
static int next_tile(int total, int tile)
{
    for (int count = pt_tile_ceil_div(total, tile) + 1;; ++count) {
        int smaller = pt_tile_ceil_div(total, count);
        if (smaller < tile) return smaller;
    }
}

static const int loop_orders[6][3] = {
    {PT_TILE_DIM_M, PT_TILE_DIM_N, PT_TILE_DIM_K}, {PT_TILE_DIM_N, PT_TILE_DIM_M, PT_TILE_DIM_K},
    {PT_TILE_DIM_M, PT_TILE_DIM_K, PT_TILE_DIM_N}, {PT_TILE_DIM_N, PT_TILE_DIM_K, PT_TILE_DIM_M},
    {PT_TILE_DIM_K, PT_TILE_DIM_M, PT_TILE_DIM_N}, {PT_TILE_DIM_K, PT_TILE_DIM_N, PT_TILE_DIM_M}};

/* Better = a lower cost (bytes moved plus PT_TILE_CALL_BYTES per tile),
 * then fewer tiles. */
static uint64_t plan_cost(uint64_t bytes, uint64_t tiles) { return bytes + PT_TILE_CALL_BYTES * tiles; }

static int better(uint64_t bytes, uint64_t tiles, const pt_tile_plan *best, int have_best)
{
    if (!have_best) return 1;
    uint64_t cost = plan_cost(bytes, tiles);
    uint64_t best_cost = plan_cost(best->bytes_in + best->bytes_out, best->num_tiles);
    return cost < best_cost || (cost == best_cost && tiles < best->num_tiles);
}

static pt_status plan_gemm(const pt_tile_layer *layer, pt_tile_step step, size_t budget,
                           pt_tile_plan *plan)
{
    pt_tile_gemm_view v;
    pt_status st = pt_tile_gemm_view_of(layer, step, &v);
    if (st != PT_OK) return st;
    pt_tile_plan best;
    int have_best = 0;
    for (int tk = v.k;; ) {
        for (int tm = v.m; tm >= 1; tm = tm == 1 ? 0 : next_tile(v.m, tm)) {
            for (int tn = v.n; tn >= 1; tn = tn == 1 ? 0 : next_tile(v.n, tn)) {
                uint64_t tiles = (uint64_t)pt_tile_ceil_div(v.m, tm) * pt_tile_ceil_div(v.n, tn) *
                                 pt_tile_ceil_div(v.k, tk);
                for (int o = 0; o < 6; ++o) {
                    int buffers[3];
                    pt_tile_gemm_buffers(&v, tm, tn, tk, loop_orders[o], buffers);
                    size_t l1 = pt_tile_gemm_layout_of(&v, tm, tn, tk, buffers).total;
                    if (l1 > budget) continue;
                    uint64_t in, out;
                    gemm_traffic(&v, tm, tn, tk, loop_orders[o], &in, &out);
                    if (!better(in + out, tiles, &best, have_best)) continue;
                    have_best = 1;
                    best.tile_m = tm;
                    best.tile_n = tn;
                    best.tile_k = tk;
                    for (int i = 0; i < 3; ++i) {
                        best.order[i] = loop_orders[o][i];
                        best.buffers[i] = buffers[i];
                    }
                    best.bytes_in = in;
                    best.bytes_out = out;
                    best.num_tiles = tiles;
                    best.l1_bytes = l1;
                }
            }
        }
        /* K is cut only at multiples of the GEMM's K block */
        int next_k = (tk - 1) / PT_GEMM_KC * PT_GEMM_KC;
        if (next_k <= 0) break;
        tk = next_k;
    }
    if (!have_best) return PT_ERR_BUDGET;
    best.layer = *layer;
    best.step = step;
    best.gemm_m = v.m;
    best.gemm_n = v.n;
    best.gemm_k = v.k;
    best.tile_images = best.tile_rows = best.tile_channels = 0;
    best.macs = (uint64_t)v.m * v.n * v.k;
    best.lower_bound_bytes = ((uint64_t)v.m * v.k + (uint64_t)v.k * v.n + (uint64_t)v.m * v.n * (v.mask ? 2 : 1) +
                              (uint64_t)v.bias_n + (uint64_t)v.grad_bias_m) * FLOAT_BYTES;
    *plan = best;
    return PT_OK;
}

/* ------------------------------------------------------------- depthwise */
/* The window geometry of a depthwise or conv2d layer (c = Cin). */
static pt_status window_geom(const pt_tile_layer *layer, pt_tile_dw_geom *g)
{
    pt_status st = layer_check(layer);
    if (st != PT_OK) return st;
    const pt_conv_params *p = &layer->conv;
    if (p->kh < 1 || p->kw < 1 || p->stride_h < 1 || p->stride_w < 1 || p->pad_top < 0 ||
        p->pad_bottom < 0 || p->pad_left < 0 || p->pad_right < 0)
        return PT_ERR_PARAM;
    pt_tile_dw_geom r = {p->in.n, p->in.h, p->in.w, p->in.c, p->kh, p->kw, p->stride_h, p->stride_w,
                         p->pad_top, p->pad_bottom, p->pad_left, p->pad_right, 0, 0, 0, 1, layer->input_act};
    r.oh = pt_out_extent(r.h, r.kh, r.sh, r.pt, r.pb);
    r.ow = pt_out_extent(r.w, r.kw, r.sw, r.pl, r.pr);
    if (r.oh < 1 || r.ow < 1) return PT_ERR_SHAPE;
    if ((long long)r.n * r.h * r.w * r.c > INT32_MAX) return PT_ERR_OVERFLOW;
    r.rows_cuttable = r.sh <= r.kh && r.pt < r.kh && r.pb < r.kh;
    *g = r;
    return PT_OK;
}

pt_status pt_tile_dw_geom_of(const pt_tile_layer *layer, pt_tile_dw_geom *g)
{
    pt_status st = layer_check(layer);
    if (st != PT_OK) return st;
    if (layer->conv.out_c != layer->conv.in.c) return PT_ERR_SHAPE;
    const pt_conv_params *p = &layer->conv;
    if (layer->kind == PT_TILE_AFFINE && (p->kh != 1 || p->kw != 1 || p->stride_h != 1 || p->stride_w != 1 ||
                                          p->pad_top || p->pad_bottom || p->pad_left || p->pad_right ||
                                          !layer->has_bias))
        return PT_ERR_PARAM;
    if (!pt_tile_is_pool(layer->kind)) return window_geom(layer, g);
    if (layer->has_bias || p->pad_top || p->pad_bottom || p->pad_left || p->pad_right) return PT_ERR_PARAM;
    st = window_geom(layer, g);
    if (st != PT_OK) return st;
    if (layer->kind == PT_TILE_GLOBAL_AVGPOOL && (p->kh != p->in.h || p->kw != p->in.w)) return PT_ERR_SHAPE;
    /* a global pool's every output reads the whole map: whole images only */
    if (layer->kind == PT_TILE_GLOBAL_AVGPOOL) g->rows_cuttable = 0;
    g->weights = 0;
    return PT_OK;
}

pt_tile_dw_rows pt_tile_dw_rows_of(const pt_tile_dw_geom *g, pt_tile_step step, int r0, int r1)
{
    pt_tile_dw_rows t = {0, 0, 0, 0, 0, 0};
    if (step == PT_TILE_FWD) {
        int first = r0 * g->sh - g->pt, end = (r1 - 1) * g->sh - g->pt + g->kh;
        t.src_lo = pt_tile_max_int(first, 0);
        t.src_hi = pt_tile_min_int(end, g->h);
        t.pad_lo = t.src_lo - first;
        t.pad_hi = end - t.src_hi;
        t.ext_lo = r0;
        t.ext_hi = r1;
        return t;
    }
    /* bwd_input: outputs whose window meets [r0, r1) */
    int lo = r0 + g->pt - g->kh + 1;
    int oh_lo = lo <= 0 ? 0 : pt_tile_ceil_div(lo, g->sh);
    int oh_hi = pt_tile_min_int((r1 - 1 + g->pt) / g->sh + 1, g->oh);
    if (oh_lo >= oh_hi) { /* no window reaches these rows */
        t.src_lo = t.src_hi = 0;
        t.ext_lo = t.ext_hi = r0;
        return t;
    }
    int first = oh_lo * g->sh - g->pt, end = (oh_hi - 1) * g->sh - g->pt + g->kh;
    t.src_lo = oh_lo;
    t.src_hi = oh_hi;
    t.ext_lo = pt_tile_max_int(first, 0);
    t.ext_hi = pt_tile_min_int(end, g->h);
    t.pad_lo = t.ext_lo - first;
    t.pad_hi = end - t.ext_hi;
    return t;
}

int pt_tile_dw_whole_images(const pt_tile_dw_geom *g, pt_tile_step step)
{
    if (step == PT_TILE_BWD_WEIGHT) return 1;
    pt_tile_dw_rows t = pt_tile_dw_rows_of(g, step, 0, step == PT_TILE_FWD ? g->oh : g->h);
    if (step == PT_TILE_FWD) return t.src_lo == 0 && t.src_hi == g->h;
    return t.src_lo == 0 && t.src_hi == g->oh && t.ext_lo == 0 && t.ext_hi == g->h;
}

void pt_tile_dw_row_extents(const pt_tile_dw_geom *g, pt_tile_step step, int rows, int *src_max,
                            int *buf_max, uint64_t *src_sum)
{
    const int total = step == PT_TILE_FWD ? g->oh : g->h;
    *src_max = *buf_max = 0;
    *src_sum = 0;
    for (int r0 = 0; r0 < total; r0 += rows) {
        int r1 = pt_tile_min_int(r0 + rows, total);
        pt_tile_dw_rows t = pt_tile_dw_rows_of(g, step, r0, r1);
        int buf = pt_tile_max_int(t.ext_hi, r1) - pt_tile_min_int(t.ext_lo, r0);
        *src_max = pt_tile_max_int(*src_max, t.src_hi - t.src_lo);
        *buf_max = pt_tile_max_int(*buf_max, buf);
        *src_sum += (uint64_t)(t.src_hi - t.src_lo);
    }
}

pt_tile_dw_layout pt_tile_dw_layout_of(const pt_tile_dw_geom *g, pt_tile_step step, int has_bias,
                                       int images, int rows, int channels)
{
    pt_tile_dw_layout l = {{0}, {0}, {0}, {0}, {0}, 0, 0};
    const size_t f = sizeof(float), ch = (size_t)channels, taps = (size_t)g->kh * g->kw;
    size_t in = 0, out = 0, in2 = 0, w = g->weights ? pt_tile_align(taps * ch * f) : 0;
    size_t b = has_bias ? pt_tile_align(ch * f) : 0, mask = 0;
    if (step == PT_TILE_BWD_WEIGHT) {
        in = pt_tile_align((size_t)images * g->h * g->w * ch * f);
        in2 = pt_tile_align((size_t)images * g->oh * g->ow * ch * f);
    } else {
        int src_max, buf_max;
        uint64_t src_sum;
        pt_tile_dw_row_extents(g, step, rows, &src_max, &buf_max, &src_sum);
        int src_w = step == PT_TILE_FWD ? g->w : g->ow, out_w = step == PT_TILE_FWD ? g->ow : g->w;
        in = pt_tile_align((size_t)images * src_max * src_w * ch * f);
        out = pt_tile_align((size_t)images * buf_max * out_w * ch * f);
        if (step == PT_TILE_BWD_INPUT && g->input_act != PT_ACT_NONE) /* x over the tile's own rows */
            mask = pt_tile_align((size_t)images * rows * g->w * ch * f);
    }
    size_t at = 0;
    for (int i = 0; i < 2; ++i) { l.in[i] = at; at += in; }
    for (int i = 0; i < 2; ++i) { l.in2[i] = at; at += in2; }
    for (int i = 0; i < 2; ++i) { l.out[i] = at; at += out; }
    for (int i = 0; i < 2; ++i) { l.w[i] = at; at += w; }
    for (int i = 0; i < 2; ++i) { l.b[i] = at; at += b; }
    l.mask = at; /* one buffer: fetched while the tile's kernel runs */
    l.total = at + mask;
    return l;
}

/* Channel blocks the depthwise kernel vectorises without a scalar tail. */
#define DW_CHANNEL_ALIGN 16

static pt_status plan_depthwise(const pt_tile_layer *layer, pt_tile_step step, size_t budget,
                                pt_tile_plan *plan)
{
    pt_tile_dw_geom g;
    pt_status st = pt_tile_dw_geom_of(layer, &g);
    if (st != PT_OK) return st;
    if (step != PT_TILE_FWD && step != PT_TILE_BWD_INPUT && step != PT_TILE_BWD_WEIGHT)
        return PT_ERR_PARAM;
    if (!g.weights && step == PT_TILE_BWD_WEIGHT) return PT_ERR_UNSUPPORTED;
    const uint64_t f = FLOAT_BYTES, taps = (uint64_t)g.kh * g.kw, C = (uint64_t)g.c;
    const uint64_t x_bytes = (uint64_t)g.n * g.h * g.w * C * f;
    const uint64_t y_bytes = (uint64_t)g.n * g.oh * g.ow * C * f;
    const uint64_t w_bytes = g.weights ? taps * C * f : 0, b_bytes = layer->has_bias ? C * f : 0;
    const int total_rows = step == PT_TILE_FWD ? g.oh : g.h;
    const int min_rows = step == PT_TILE_BWD_WEIGHT || !g.rows_cuttable ? total_rows : 1;
    pt_tile_plan best;
    int have_best = 0, best_rank = 2;
    for (int rows = total_rows; rows >= min_rows; --rows) {
        int src_max, buf_max;
        uint64_t src_sum = 0;
        if (step != PT_TILE_BWD_WEIGHT)
            pt_tile_dw_row_extents(&g, step, rows, &src_max, &buf_max, &src_sum);
        uint64_t in, out;
        if (step == PT_TILE_FWD) {
            in = (uint64_t)g.n * src_sum * g.w * C * f + w_bytes + b_bytes;
            out = y_bytes;
        } else if (step == PT_TILE_BWD_INPUT) {
            in = (uint64_t)g.n * src_sum * g.ow * C * f + w_bytes + (g.input_act ? x_bytes : 0);
            out = x_bytes;
        } else {
            in = x_bytes + y_bytes;
            out = w_bytes + b_bytes;
        }
        const int row_tiles = pt_tile_ceil_div(total_rows, rows);
        const int batched = rows == total_rows && pt_tile_dw_whole_images(&g, step);
        for (int images = batched ? g.n : 1; images >= 1;
             images = images == 1 ? 0 : next_tile(g.n, images)) {
            for (int ch = g.c; ch >= 1; ch = ch == 1 ? 0 : next_tile(g.c, ch)) {
                size_t l1 = pt_tile_dw_layout_of(&g, step, layer->has_bias, images, rows, ch).total;
                if (l1 > budget) continue;
                uint64_t tiles = (uint64_t)pt_tile_ceil_div(g.n, images) * row_tiles *
                                 pt_tile_ceil_div(g.c, ch);
                /* at equal bytes: all channels first (one contiguous copy
                 * per tile), then vector-friendly blocks (the kernel runs
                 * channels in blocks of 16 and more), then fewer tiles */
                const int rank = ch == g.c ? 0 : ch % DW_CHANNEL_ALIGN == 0 ? 1 : 2;
                if (have_best && in + out == best.bytes_in + best.bytes_out && rank != best_rank) {
                    if (rank > best_rank) continue;
                } else if (!better(in + out, tiles, &best, have_best)) {
                    continue;
                }
                best_rank = rank;
                have_best = 1;
                best.tile_images = images;
                best.tile_rows = rows;
                best.tile_channels = ch;
                best.bytes_in = in;
                best.bytes_out = out;
                best.num_tiles = tiles;
                best.l1_bytes = l1;
            }
        }
    }
    if (!have_best) return PT_ERR_BUDGET;
    best.layer = *layer;
    best.step = step;
    best.gemm_m = best.gemm_n = best.gemm_k = 0;
    best.tile_m = best.tile_n = best.tile_k = 0;
    for (int i = 0; i < 3; ++i) best.order[i] = best.buffers[i] = 0;
    best.macs = (uint64_t)g.n * g.oh * g.ow * C * taps;
    if (step == PT_TILE_FWD) best.lower_bound_bytes = x_bytes + w_bytes + b_bytes + y_bytes;
    else if (step == PT_TILE_BWD_INPUT) best.lower_bound_bytes = y_bytes + w_bytes + x_bytes * (g.input_act ? 2 : 1);
    else best.lower_bound_bytes = x_bytes + y_bytes + w_bytes + b_bytes;
    *plan = best;
    return PT_OK;
}

/* ---------------------------------------------------------------- conv2d */
pt_status pt_tile_conv_geom_of(const pt_tile_layer *layer, pt_tile_conv_geom *cg)
{
    pt_tile_dw_geom g;
    pt_status st = window_geom(layer, &g);
    if (st != PT_OK) return st;
    pt_conv2d_geom kg;
    st = pt_conv2d_geometry(&layer->conv, &kg);
    if (st != PT_OK) return st;
    cg->g = g;
    cg->oc = layer->conv.out_c;
    cg->patch = (int)kg.patch;
    cg->img_px = (size_t)g.oh * (size_t)g.ow;
    cg->pixels = (size_t)g.n * cg->img_px;
    cg->chunk_px = pt_conv2d_chunk_images(&layer->conv) * cg->img_px;
    cg->spans_cuttable = g.pt < g.kh && g.pb < g.kh;
    return PT_OK;
}

size_t pt_tile_conv_span_end(const pt_tile_conv_geom *g, pt_tile_step step, size_t q0, size_t len)
{
    size_t limit = g->pixels;
    if (step == PT_TILE_BWD_WEIGHT) limit = (q0 / g->chunk_px + 1) * g->chunk_px;
    else if (len < (size_t)g->g.ow) limit = (q0 / (size_t)g->g.ow + 1) * (size_t)g->g.ow;
    else if (len < g->img_px) limit = (q0 / g->img_px + 1) * g->img_px;
    if (limit > g->pixels) limit = g->pixels;
    return len < limit - q0 ? q0 + len : limit;
}

pt_tile_conv_piece pt_tile_conv_piece_of(const pt_tile_conv_geom *g, int n, size_t q0, size_t q1)
{
    pt_tile_conv_piece p;
    const size_t base = (size_t)n * g->img_px, end = base + g->img_px;
    p.a = (q0 > base ? q0 : base) - base;
    p.b = (q1 < end ? q1 : end) - base;
    p.oa = (int)(p.a / (size_t)g->g.ow);
    p.ob = (int)((p.b - 1) / (size_t)g->g.ow) + 1;
    p.rows = pt_tile_dw_rows_of(&g->g, PT_TILE_FWD, p.oa, p.ob);
    return p;
}

/* What a tile shape's tiles span: the longest tile (pixels; bwd_input: L1
 * rows of grad_x), the most source rows one tile fetches (input rows; bwd_input:
 * grad_y rows per image), those rows summed over all tiles, and the tiles. */
typedef struct conv_stats {
    size_t max_len;
    int max_rows;
    uint64_t sum_rows, tiles;
} conv_stats;

/* Blocks of the patch's columns tile_n gives: whole taps, or (tile_n < Cin)
 * slices of one tap's channels. */
static uint64_t conv_column_blocks(const pt_tile_conv_geom *cg, int tile_n)
{
    const int taps = cg->g.kh * cg->g.kw;
    return tile_n >= cg->g.c ? (uint64_t)pt_tile_ceil_div(taps, tile_n / cg->g.c)
                             : (uint64_t)taps * (uint64_t)pt_tile_ceil_div(cg->g.c, tile_n);
}

static conv_stats span_stats(const pt_tile_conv_geom *g, pt_tile_step step, size_t len)
{
    conv_stats s = {0, 0, 0, 0};
    /* fwd tiles shorter than an image repeat in every image: count one */
    const int per_image = step == PT_TILE_FWD && len < g->img_px;
    const size_t end = per_image ? g->img_px : g->pixels;
    for (size_t q0 = 0; q0 < end;) {
        size_t q1 = pt_tile_conv_span_end(g, step, q0, len);
        int rows = 0;
        for (int n = (int)(q0 / g->img_px); (size_t)n * g->img_px < q1; ++n) {
            pt_tile_conv_piece p = pt_tile_conv_piece_of(g, n, q0, q1);
            rows += p.rows.src_hi - p.rows.src_lo;
        }
        if (q1 - q0 > s.max_len) s.max_len = q1 - q0;
        if (rows > s.max_rows) s.max_rows = rows;
        s.sum_rows += (uint64_t)rows;
        s.tiles += 1;
        q0 = q1;
    }
    if (per_image) {
        s.sum_rows *= (uint64_t)g->g.n;
        s.tiles *= (uint64_t)g->g.n;
    }
    return s;
}

static conv_stats conv_stats_of(const pt_tile_conv_geom *g, const pt_tile_plan *t)
{
    if (t->step != PT_TILE_BWD_INPUT)
        return span_stats(g, t->step, (size_t)(t->step == PT_TILE_FWD ? t->tile_m : t->tile_k));
    int src_max, buf_max;
    uint64_t src_sum;
    pt_tile_dw_row_extents(&g->g, PT_TILE_BWD_INPUT, t->tile_rows, &src_max, &buf_max, &src_sum);
    conv_stats s = {(size_t)buf_max, src_max, src_sum * (uint64_t)g->g.n,
                    (uint64_t)pt_tile_ceil_div(g->g.n, t->tile_images) *
                        (uint64_t)pt_tile_ceil_div(g->g.h, t->tile_rows)};
    return s;
}

static pt_tile_conv_layout conv_layout(const pt_tile_conv_geom *cg, const pt_tile_plan *t,
                                       const conv_stats *s)
{
    const pt_tile_dw_geom *g = &cg->g;
    const size_t f = sizeof(float), patch = (size_t)cg->patch, oc = (size_t)cg->oc, cin = (size_t)g->c;
    size_t src = 0, gy = 0, w = 0, b = 0, cols = 0, out = 0, acc = 0;
    /* a stream gets two buffers when it has more than one tile, except the
     * input rows of fwd / bwd_weight: the next tile's are fetched once the
     * last im2col has read them, while the GEMMs run */
    const int block = t->step == PT_TILE_FWD ? t->tile_n : t->step == PT_TILE_BWD_WEIGHT ? t->tile_m : cg->oc;
    const uint64_t blocks = (uint64_t)pt_tile_ceil_div(cg->oc, block);
    int src_bufs = s->tiles > 1 ? 2 : 1, out_bufs = src_bufs, w_bufs = 1;
    if (t->step == PT_TILE_FWD) {
        const size_t tn = (size_t)t->tile_n;
        src_bufs = 1;
        w_bufs = blocks > 1 ? 2 : 1;
        out_bufs = s->tiles * blocks > 1 ? 2 : 1;
        src = pt_tile_align((size_t)s->max_rows * g->w * cin * f);
        cols = pt_tile_align(s->max_len * patch * f);
        w = pt_tile_align(tn * patch * f);
        b = t->layer.has_bias ? pt_tile_align(tn * f) : 0;
        out = pt_tile_align(s->max_len * tn * f);
    } else if (t->step == PT_TILE_BWD_INPUT) {
        /* all of w, or two buffers of tile_n of its columns; grad_x one
         * channel slice at a time when tile_n < Cin */
        const size_t images = (size_t)t->tile_images, cb = t->tile_n < g->c ? (size_t)t->tile_n : cin;
        const int whole = conv_column_blocks(cg, t->tile_n) == 1;
        w_bufs = whole ? 1 : 2;
        out_bufs = s->tiles * (cin + cb - 1) / cb > 1 ? 2 : 1;
        src = pt_tile_align(images * s->max_rows * g->ow * oc * f);
        w = pt_tile_align(oc * (whole ? patch : (size_t)t->tile_n) * f);
        cols = pt_tile_align(images * s->max_rows * g->ow * (size_t)t->tile_n * f);
        out = pt_tile_align(images * s->max_len * g->w * cb * f);
    } else {
        /* filter blocks outermost: a block's sums stay in L1 and every
         * block refetches the input; pixel tiles outermost: all of grad_w
         * stays and each input tile comes once */
        const int k_outer = t->order[0] == PT_TILE_DIM_K;
        const size_t tm = (size_t)t->tile_m, acc_rows = k_outer ? oc : tm;
        src_bufs = 1;
        out_bufs = s->tiles * blocks > 1 ? 2 : 1; /* the grad_y tiles */
        /* the input rows of a tile, or one channel slice of them */
        src = pt_tile_align((size_t)s->max_rows * g->w * (t->tile_n < g->c ? (size_t)t->tile_n : cin) * f);
        gy = pt_tile_align(s->max_len * tm * f);
        cols = pt_tile_align(s->max_len * (size_t)t->tile_n * f);
        acc = pt_tile_align((acc_rows * patch + (t->layer.has_bias ? acc_rows : 0)) * f);
    }
    pt_tile_conv_layout l;
    size_t at = 0;
    /* an operand with one buffer has its second at the same offset */
#define PLACE(field, bytes, bufs)                          \
    do {                                                   \
        l.field[0] = at;                                   \
        at += (bytes);                                     \
        l.field[1] = (bufs) == 2 ? at : l.field[0];        \
        at += (bufs) == 2 ? (bytes) : 0;                   \
    } while (0)
    PLACE(src, src, src_bufs);
    PLACE(gy, gy, t->step == PT_TILE_BWD_WEIGHT ? out_bufs : 1);
    PLACE(w, w, w_bufs);
    PLACE(b, b, w_bufs);
    l.cols = at;
    at += cols;
    PLACE(out, out, out_bufs);
#undef PLACE
    l.acc = at;
    l.total = at + acc;
    return l;
}

pt_tile_conv_layout pt_tile_conv_layout_of(const pt_tile_conv_geom *g, const pt_tile_plan *shape,
                                           uint64_t *src_rows_sum)
{
    conv_stats s = conv_stats_of(g, shape);
    if (src_rows_sum) *src_rows_sum = s.sum_rows;
    return conv_layout(g, shape, &s);
}

/* The next smaller column block the planner tries after cols: fewer whole
 * taps down to one, then fewer channels of one tap; 0 after one column. */
static int next_columns(const pt_tile_conv_geom *cg, int cols)
{
    const int c = cg->g.c, taps = cg->g.kh * cg->g.kw;
    if (cols > c) return next_tile(taps, cols / c) * c;
    return cols == 1 ? 0 : next_tile(c, cols);
}

/* Plan a conv2d step; *smallest (if not NULL) receives the smallest L1 of
 * any tile shape considered, fitting or not. */
static pt_status plan_conv2d(const pt_tile_layer *layer, pt_tile_step step, size_t budget,
                             pt_tile_plan *plan, size_t *smallest)
{
    pt_tile_conv_geom cg;
    pt_status st = pt_tile_conv_geom_of(layer, &cg);
    if (st != PT_OK) return st;
    const pt_tile_dw_geom *g = &cg.g;
    const uint64_t f = FLOAT_BYTES, oc = (uint64_t)cg.oc, patch = (uint64_t)cg.patch;
    const uint64_t x_bytes = (uint64_t)g->n * g->h * g->w * g->c * f;
    const uint64_t y_bytes = (uint64_t)cg.pixels * oc * f;
    const uint64_t w_bytes = oc * patch * f, b_bytes = layer->has_bias ? oc * f : 0;
    const uint64_t x_row = (uint64_t)g->w * g->c * f;
    pt_tile_plan t, best;
    memset(&t, 0, sizeof t);
    t.layer = *layer;
    t.step = step;
    int have_best = 0;
    size_t least = (size_t)-1;

/* Keep shape t if it fits and costs less (then: fewer tiles). */
#define CONSIDER(in_bytes, out_bytes, stats, tiles)                                  \
    do {                                                                            \
        size_t l1_ = conv_layout(&cg, &t, &(stats)).total;                          \
        if (l1_ < least) least = l1_;                                               \
        if (l1_ <= budget && better((in_bytes) + (out_bytes), (tiles), &best, have_best)) { \
            best = t;                                                               \
            best.bytes_in = (in_bytes);                                             \
            best.bytes_out = (out_bytes);                                           \
            best.num_tiles = (tiles);                                               \
            best.l1_bytes = l1_;                                                    \
            have_best = 1;                                                          \
        }                                                                           \
    } while (0)

    if (step == PT_TILE_FWD) {
        t.gemm_m = (int)cg.pixels, t.gemm_n = cg.oc, t.gemm_k = cg.patch;
        t.order[2] = PT_TILE_DIM_K;
        /* tiles of whole images, else (pads < kernel) of rows of one image,
         * else of pixels of one row */
        for (int pass = 0; pass < (cg.spans_cuttable ? 3 : 1); ++pass) {
            const int total = pass == 0 ? g->n : pass == 1 ? g->oh : g->ow;
            const size_t unit = pass == 0 ? cg.img_px : pass == 1 ? (size_t)g->ow : 1;
            for (int count = total; count >= 1; count = count == 1 ? 0 : next_tile(total, count)) {
                if (pass > 0 && count == total) continue; /* the previous pass's 1 */
                const conv_stats s = span_stats(&cg, step, (size_t)count * unit);
                for (int tn = cg.oc; tn >= 1; tn = tn == 1 ? 0 : next_tile(cg.oc, tn)) {
                    t.tile_m = (int)((size_t)count * unit), t.tile_n = tn, t.tile_k = cg.patch;
                    const uint64_t blocks = (uint64_t)pt_tile_ceil_div(cg.oc, tn);
                    /* pixel tiles outermost (the filters stream per pixel
                     * tile) or filter blocks outermost (the input streams per
                     * filter block) */
                    for (int n_outer = 0; n_outer < 2; ++n_outer) {
                        t.order[0] = n_outer ? PT_TILE_DIM_N : PT_TILE_DIM_M;
                        t.order[1] = n_outer ? PT_TILE_DIM_M : PT_TILE_DIM_N;
                        const uint64_t x_passes = n_outer && s.tiles > 1 ? blocks : 1;
                        const uint64_t w_passes = !n_outer && blocks > 1 ? s.tiles : 1;
                        CONSIDER(x_passes * s.sum_rows * x_row + w_passes * (w_bytes + b_bytes), y_bytes, s,
                                 s.tiles * blocks);
                    }
                }
            }
        }
    } else if (step == PT_TILE_BWD_INPUT) {
        t.gemm_m = (int)cg.pixels, t.gemm_n = cg.patch, t.gemm_k = cg.oc;
        t.tile_channels = g->c;
        for (int rows = g->h; rows >= (g->rows_cuttable ? 1 : g->h); --rows) {
            t.tile_rows = rows;
            const int batched = rows == g->h && pt_tile_dw_whole_images(g, step);
            for (int images = batched ? g->n : 1; images >= 1;
                 images = images == 1 ? 0 : next_tile(g->n, images)) {
                t.tile_images = images;
                const conv_stats s = conv_stats_of(&cg, &t);
                /* all of w once, or its column blocks streamed for every tile */
                for (int cols = cg.patch; cols >= 1; cols = next_columns(&cg, cols)) {
                    t.tile_n = cols;
                    const uint64_t blocks = conv_column_blocks(&cg, cols);
                    const uint64_t in = s.sum_rows * (uint64_t)g->ow * oc * f + (blocks == 1 ? 1 : s.tiles) * w_bytes;
                    CONSIDER(in, x_bytes, s, s.tiles * blocks);
                }
            }
        }
    } else {
        t.gemm_m = cg.oc, t.gemm_n = cg.patch, t.gemm_k = (int)cg.pixels;
        t.order[2] = PT_TILE_DIM_N;
        /* a whole chunk, or (pads < kernel) a multiple of the GEMM's K block */
        const size_t chunk = cg.chunk_px < cg.pixels ? cg.chunk_px : cg.pixels;
        for (size_t tk = chunk;;) {
            const conv_stats s = span_stats(&cg, step, tk);
            for (int tm = cg.oc; tm >= 1; tm = tm == 1 ? 0 : next_tile(cg.oc, tm)) {
                const int blocks = pt_tile_ceil_div(cg.oc, tm);
                /* columns of the patch per GEMM: whole taps, or fewer channels
                 * than a tap has (the input then comes a channel slice at a
                 * time, for every filter block) */
                for (int cols = cg.patch; cols >= 1; cols = next_columns(&cg, cols)) {
                    t.tile_m = tm, t.tile_n = cols, t.tile_k = (int)tk;
                    const int cblocks = pt_tile_ceil_div(g->c, pt_tile_min_int(cols, g->c));
                    const uint64_t tiles = s.tiles * (uint64_t)blocks * conv_column_blocks(&cg, cols);
                    for (int k_outer = 0; k_outer < 2; ++k_outer) {
                        t.order[0] = k_outer ? PT_TILE_DIM_K : PT_TILE_DIM_M;
                        t.order[1] = k_outer ? PT_TILE_DIM_M : PT_TILE_DIM_K;
                        const uint64_t passes = k_outer && cblocks == 1 ? 1 : (uint64_t)blocks;
                        CONSIDER(passes * s.sum_rows * x_row + y_bytes, w_bytes + b_bytes, s, tiles);
                    }
                }
            }
            size_t next_k = (tk - 1) / PT_GEMM_KC * PT_GEMM_KC;
            if (!cg.spans_cuttable || next_k == 0) break;
            tk = next_k;
        }
    }
#undef CONSIDER
    if (smallest) *smallest = least;
    if (!have_best) return PT_ERR_BUDGET;
    best.macs = (uint64_t)cg.pixels * oc * patch;
    if (step == PT_TILE_FWD) best.lower_bound_bytes = x_bytes + w_bytes + b_bytes + y_bytes;
    else if (step == PT_TILE_BWD_INPUT) best.lower_bound_bytes = y_bytes + w_bytes + x_bytes;
    else best.lower_bound_bytes = x_bytes + y_bytes + w_bytes + b_bytes;
    *plan = best;
    return PT_OK;
}

/* ------------------------------------------------------------ public API */
pt_status pt_tile_plan_layer(const pt_tile_layer *layer, pt_tile_step step, size_t l1_budget,
                             pt_tile_plan *plan)
{
    if (!layer || !plan) return PT_ERR_NULL;
    if (step != PT_TILE_FWD && step != PT_TILE_BWD_INPUT && step != PT_TILE_BWD_WEIGHT)
        return PT_ERR_PARAM;
    if (layer->kind == PT_TILE_DEPTHWISE || layer->kind == PT_TILE_AFFINE || pt_tile_is_pool(layer->kind))
        return plan_depthwise(layer, step, l1_budget, plan);
    if (layer->kind == PT_TILE_CONV2D) return plan_conv2d(layer, step, l1_budget, plan, NULL);
    return plan_gemm(layer, step, l1_budget, plan);
}

size_t pt_tile_min_l1_bytes(const pt_tile_layer *layer, pt_tile_step step)
{
    if (!layer) return 0;
    if (layer->kind == PT_TILE_CONV2D) {
        pt_tile_plan unused;
        size_t smallest = 0;
        if (step != PT_TILE_FWD && step != PT_TILE_BWD_INPUT && step != PT_TILE_BWD_WEIGHT) return 0;
        pt_status st = plan_conv2d(layer, step, 0, &unused, &smallest);
        return st == PT_OK || st == PT_ERR_BUDGET ? smallest : 0;
    }
    if (layer->kind == PT_TILE_DEPTHWISE || layer->kind == PT_TILE_AFFINE || pt_tile_is_pool(layer->kind)) {
        pt_tile_dw_geom g;
        if (pt_tile_dw_geom_of(layer, &g) != PT_OK) return 0;
        if (!g.weights && step == PT_TILE_BWD_WEIGHT) return 0;
        int rows = step == PT_TILE_FWD ? g.oh : g.h;
        if (step != PT_TILE_BWD_WEIGHT && g.rows_cuttable) rows = 1;
        /* more rows never need less L1, so the one-row tile is the smallest */
        return pt_tile_dw_layout_of(&g, step, layer->has_bias, 1, rows, 1).total;
    }
    pt_tile_gemm_view v;
    if (pt_tile_gemm_view_of(layer, step, &v) != PT_OK) return 0;
    /* one-element tiles (one K block) in the order that single-buffers most */
    const int tk = pt_tile_min_int(v.k, PT_GEMM_KC);
    size_t smallest = 0;
    for (int o = 0; o < 6; ++o) {
        int buffers[3];
        pt_tile_gemm_buffers(&v, 1, 1, tk, loop_orders[o], buffers);
        size_t l1 = pt_tile_gemm_layout_of(&v, 1, 1, tk, buffers).total;
        if (o == 0 || l1 < smallest) smallest = l1;
    }
    return smallest;
}
