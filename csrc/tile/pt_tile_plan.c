/* The tile planner: for one step of one layer and an L1 budget, the tile
 * sizes (and, for GEMMs, the loop order) that fit and move the fewest bytes
 * between L2 and L1. The search is exhaustive over the tile sizes that give
 * distinct tile counts, so it is exact for the cost model below, which is
 * also exactly what the executors do (the tests compare the two).
 *
 * GEMM cost model. With loop order (outer, middle, inner) over tile counts,
 * an operand is re-fetched whenever one of its tile indices changes; a loop
 * it does not depend on, running outside its innermost varying index, makes
 * it stream once more per iteration. C tiles visited again because K is
 * outside M/N are read back (accumulate) and written again. */
#include "pt_tile_internal.h"
#include "pulptrain/internal.h"

#define FLOAT_BYTES ((uint64_t)sizeof(float))

/* ------------------------------------------------------------ GEMM view */
static pt_status layer_check(const pt_tile_layer *layer)
{
    if (!layer) return PT_ERR_NULL;
    const pt_conv_params *p = &layer->conv;
    if (!pt_dims_valid(p->in) || p->out_c <= 0) return PT_ERR_SHAPE;
    if (layer->has_bias != 0 && layer->has_bias != 1) return PT_ERR_PARAM;
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
        g = (pt_tile_gemm_view){batch, out, in, 0, 1, in, in, out, layer->has_bias ? out : 0, 0};
        break;
    case PT_TILE_BWD_INPUT: /* grad_x[batch, in] = grad_y[batch, out] w[out, in] */
        g = (pt_tile_gemm_view){batch, in, out, 0, 0, out, in, in, 0, 0};
        break;
    case PT_TILE_BWD_WEIGHT: /* grad_w[out, in] = grad_y[batch, out]^T x[batch, in] */
        g = (pt_tile_gemm_view){out, in, batch, 1, 0, out, in, in, 0, layer->has_bias ? out : 0};
        break;
    default:
        return PT_ERR_PARAM;
    }
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
          (uint64_t)v->bias_n * FLOAT_BYTES;
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

/* Better = fewer bytes, then fewer tiles (fewer DMA and kernel calls). */
static int better(uint64_t bytes, uint64_t tiles, const pt_tile_plan *best, int have_best)
{
    if (!have_best) return 1;
    uint64_t best_bytes = best->bytes_in + best->bytes_out;
    return bytes < best_bytes || (bytes == best_bytes && tiles < best->num_tiles);
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
    best.lower_bound_bytes = ((uint64_t)v.m * v.k + (uint64_t)v.k * v.n + (uint64_t)v.m * v.n +
                              (uint64_t)v.bias_n + (uint64_t)v.grad_bias_m) * FLOAT_BYTES;
    *plan = best;
    return PT_OK;
}

/* ------------------------------------------------------------- depthwise */
pt_status pt_tile_dw_geom_of(const pt_tile_layer *layer, pt_tile_dw_geom *g)
{
    pt_status st = layer_check(layer);
    if (st != PT_OK) return st;
    const pt_conv_params *p = &layer->conv;
    if (p->out_c != p->in.c) return PT_ERR_SHAPE;
    if (p->kh < 1 || p->kw < 1 || p->stride_h < 1 || p->stride_w < 1 || p->pad_top < 0 ||
        p->pad_bottom < 0 || p->pad_left < 0 || p->pad_right < 0)
        return PT_ERR_PARAM;
    pt_tile_dw_geom r = {p->in.n, p->in.h, p->in.w, p->in.c, p->kh, p->kw, p->stride_h, p->stride_w,
                         p->pad_top, p->pad_bottom, p->pad_left, p->pad_right, 0, 0, 0};
    r.oh = pt_out_extent(r.h, r.kh, r.sh, r.pt, r.pb);
    r.ow = pt_out_extent(r.w, r.kw, r.sw, r.pl, r.pr);
    if (r.oh < 1 || r.ow < 1) return PT_ERR_SHAPE;
    if ((long long)r.n * r.h * r.w * r.c > INT32_MAX) return PT_ERR_OVERFLOW;
    r.rows_cuttable = r.sh <= r.kh && r.pt < r.kh && r.pb < r.kh;
    *g = r;
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

/* Largest source-row count and L1 output-row count over the row tiles. */
static void dw_row_extents(const pt_tile_dw_geom *g, pt_tile_step step, int rows, int *src_max,
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
    size_t in = 0, out = 0, in2 = 0, w = pt_tile_align(taps * ch * f);
    size_t b = has_bias ? pt_tile_align(ch * f) : 0, partial = 0;
    if (step == PT_TILE_BWD_WEIGHT) {
        in = pt_tile_align((size_t)images * g->h * g->w * ch * f);
        in2 = pt_tile_align((size_t)images * g->oh * g->ow * ch * f);
        partial = pt_tile_align((taps + 1) * ch * f);
    } else {
        int src_max, buf_max;
        uint64_t src_sum;
        dw_row_extents(g, step, rows, &src_max, &buf_max, &src_sum);
        int src_w = step == PT_TILE_FWD ? g->w : g->ow, out_w = step == PT_TILE_FWD ? g->ow : g->w;
        in = pt_tile_align((size_t)images * src_max * src_w * ch * f);
        out = pt_tile_align((size_t)images * buf_max * out_w * ch * f);
    }
    size_t at = 0;
    for (int i = 0; i < 2; ++i) { l.in[i] = at; at += in; }
    for (int i = 0; i < 2; ++i) { l.in2[i] = at; at += in2; }
    for (int i = 0; i < 2; ++i) { l.out[i] = at; at += out; }
    for (int i = 0; i < 2; ++i) { l.w[i] = at; at += w; }
    for (int i = 0; i < 2; ++i) { l.b[i] = at; at += b; }
    l.partial = at;
    l.total = at + partial;
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
    const uint64_t f = FLOAT_BYTES, taps = (uint64_t)g.kh * g.kw, C = (uint64_t)g.c;
    const uint64_t x_bytes = (uint64_t)g.n * g.h * g.w * C * f;
    const uint64_t y_bytes = (uint64_t)g.n * g.oh * g.ow * C * f;
    const uint64_t w_bytes = taps * C * f, b_bytes = layer->has_bias ? C * f : 0;
    const int total_rows = step == PT_TILE_FWD ? g.oh : g.h;
    const int min_rows = step == PT_TILE_BWD_WEIGHT || !g.rows_cuttable ? total_rows : 1;
    pt_tile_plan best;
    int have_best = 0, best_rank = 2;
    for (int rows = total_rows; rows >= min_rows; --rows) {
        int src_max, buf_max;
        uint64_t src_sum = 0;
        if (step != PT_TILE_BWD_WEIGHT) dw_row_extents(&g, step, rows, &src_max, &buf_max, &src_sum);
        uint64_t in, out;
        if (step == PT_TILE_FWD) {
            in = (uint64_t)g.n * src_sum * g.w * C * f + w_bytes + b_bytes;
            out = y_bytes;
        } else if (step == PT_TILE_BWD_INPUT) {
            in = (uint64_t)g.n * src_sum * g.ow * C * f + w_bytes;
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
    if (layer->kind == PT_TILE_DEPTHWISE) return plan_depthwise(layer, step, l1_budget, plan);
    return plan_gemm(layer, step, l1_budget, plan);
}

size_t pt_tile_min_l1_bytes(const pt_tile_layer *layer, pt_tile_step step)
{
    if (!layer) return 0;
    if (layer->kind == PT_TILE_DEPTHWISE) {
        pt_tile_dw_geom g;
        if (pt_tile_dw_geom_of(layer, &g) != PT_OK) return 0;
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
