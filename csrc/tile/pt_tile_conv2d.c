/* Tiled, double-buffered execution of dense (im2col) convolutions. The
 * im2col matrix of a tile is built in L1 from the input rows its windows
 * read, by the untiled kernel's own im2col / col2im run on the tile as a
 * smaller conv (its rows and the padding that makes its windows the untiled
 * ones); the GEMMs are the untiled kernel's with the same K, their N cut
 * into blocks of columns. See pt_tile.h for the tile shapes and why each
 * step stays bitwise equal to pt_conv2d_f32_*. While a tile is computed the
 * DMA fetches the next one's operands (the input rows as soon as the last
 * im2col has read the current ones) and the last one's result drains. */
#include <string.h>
#include "pt_tile_internal.h"
#include "pulptrain/pt_dma.h"
#include "pulptrain/internal.h"
#include "../kernels/pt_gemm_internal.h"

#define NO_DMA ((pt_dma_id)-1)

static void wait_and_clear(pt_dma_id *id)
{
    if (*id != NO_DMA) pt_dma_wait(*id);
    *id = NO_DMA;
}

typedef struct conv_run {
    const pt_tile_plan *plan;
    pt_tile_conv_geom g;
    pt_tile_conv_layout lay;
    char *l1;
    pt_ctx gemm_ctx;       /* ctx with the whole scratch, for the GEMMs */
} conv_run;

/* A plan as plan_conv2d() makes them (see pt_tile.h for the tile shapes). */
static int plan_valid(const pt_tile_plan *p, const pt_tile_conv_geom *g)
{
    const size_t ow = (size_t)g->g.ow;
    if (p->step == PT_TILE_FWD) {
        const size_t m = (size_t)p->tile_m;
        if (p->tile_m < 1 || m > g->pixels || p->tile_n < 1 || p->tile_n > g->oc) return 0;
        if (p->order[0] != PT_TILE_DIM_M && p->order[0] != PT_TILE_DIM_N) return 0;
        if (m >= g->img_px || !g->spans_cuttable) return m % g->img_px == 0 || m == g->pixels;
        return m < ow || m % ow == 0;
    }
    if (p->step == PT_TILE_BWD_INPUT) {
        if (p->tile_images < 1 || p->tile_images > g->g.n || p->tile_rows < 1 || p->tile_rows > g->g.h)
            return 0;
        if (p->tile_images > 1 && (p->tile_rows != g->g.h || !pt_tile_dw_whole_images(&g->g, p->step)))
            return 0;
        if (p->tile_n < 1 || p->tile_n > g->patch || (p->tile_n > g->g.c && p->tile_n % g->g.c)) return 0;
        return p->tile_rows == g->g.h || g->g.rows_cuttable;
    }
    const size_t chunk = g->chunk_px < g->pixels ? g->chunk_px : g->pixels, k = (size_t)p->tile_k;
    /* tile_n: whole taps, or fewer channels than one tap has */
    if (p->tile_m < 1 || p->tile_m > g->oc || p->tile_k < 1 || p->tile_n < 1 || p->tile_n > g->patch ||
        (p->tile_n > g->g.c && p->tile_n % g->g.c))
        return 0;
    if (!(p->order[0] == PT_TILE_DIM_M && p->order[1] == PT_TILE_DIM_K) &&
        !(p->order[0] == PT_TILE_DIM_K && p->order[1] == PT_TILE_DIM_M))
        return 0;
    return k == chunk || (g->spans_cuttable && k < chunk && k % PT_GEMM_KC == 0);
}

static pt_status conv_setup(conv_run *r, const pt_ctx *ctx, const pt_tile_plan *plan, pt_tile_step step,
                            void *l1, size_t l1_bytes)
{
    if (plan->step != step || plan->layer.kind != PT_TILE_CONV2D) return PT_ERR_PARAM;
    pt_status st = pt_tile_conv_geom_of(&plan->layer, &r->g);
    if (st != PT_OK) return st;
    if (!plan_valid(plan, &r->g)) return PT_ERR_PARAM;
    r->lay = pt_tile_conv_layout_of(&r->g, plan, NULL);
    if (r->lay.total != plan->l1_bytes || l1_bytes < r->lay.total) return PT_ERR_SCRATCH;
    if ((uintptr_t)l1 % PT_TILE_ALIGN) return PT_ERR_PARAM;
    st = pt_check_ctx(ctx, pt_tile_scratch_bytes(plan, ctx ? ctx->num_threads : 1));
    if (st != PT_OK) return st;
    r->plan = plan;
    r->l1 = (char *)l1;
    r->gemm_ctx = *ctx;
    return PT_OK;
}

/* The kernel's view of image piece p of a span: one image, the input rows
 * it reads, the padding that makes its windows the untiled ones, and the cn
 * channels fetched of them. */
static pt_conv_params piece_params(const conv_run *r, const pt_tile_conv_piece *p, int cn)
{
    pt_conv_params c = r->plan->layer.conv;
    c.in.n = 1;
    c.in.h = p->rows.src_hi - p->rows.src_lo;
    c.in.c = cn;
    c.pad_top = p->rows.pad_lo;
    c.pad_bottom = p->rows.pad_hi;
    return c;
}

/* The copies that fill one L1 buffer, waited for together. A buffer filled
 * by more copies than this waits for its oldest (the issuing core stalls,
 * results do not change). */
#define SPAN_IDS 8
typedef struct span_dma {
    pt_dma_id id[SPAN_IDS];
    int n;
} span_dma;

static void span_issue(span_dma *d, pt_dma_id id)
{
    if (d->n == SPAN_IDS) {
        pt_dma_wait(d->id[0]);
        memmove(d->id, d->id + 1, (SPAN_IDS - 1) * sizeof(pt_dma_id));
        d->n--;
    }
    d->id[d->n++] = id;
}

static void wait_span(span_dma *d)
{
    for (int i = 0; i < d->n; ++i) pt_dma_wait(d->id[i]);
    d->n = 0;
}

/* Fetch channels [c0, c1) of the input rows span [q0, q1) reads, image
 * piece after image piece, densely. All channels: whole rows, a run of whole
 * images (they read the same rows) in one 2-D copy. Some: one 2-D copy of
 * the pixels' channel slices per piece. */
static void fetch_span(const conv_run *r, float *dst, const float *x, size_t q0, size_t q1, int c0, int c1,
                       span_dma *ids)
{
    const size_t cin = (size_t)r->g.g.c, cn = (size_t)(c1 - c0), img_px = r->g.img_px;
    const size_t w = (size_t)r->g.g.w, h = (size_t)r->g.g.h;
    for (int n = (int)(q0 / img_px); (size_t)n * img_px < q1;) {
        pt_tile_conv_piece p = pt_tile_conv_piece_of(&r->g, n, q0, q1);
        const size_t rows = (size_t)(p.rows.src_hi - p.rows.src_lo);
        const float *src = x + ((size_t)n * h + (size_t)p.rows.src_lo) * w * cin + (size_t)c0;
        size_t images = 1;
        if (cn == cin) {
            const size_t bytes = rows * w * cin * sizeof(float);
            if (p.a == 0 && p.b == img_px) /* whole images, up to the span's end */
                while ((size_t)(n + images + 1) * img_px <= q1) ++images;
            if (rows > 0)
                span_issue(ids, pt_dma_copy_2d_async(dst, src, bytes, images, bytes, h * w * cin * sizeof(float)));
        } else if (rows > 0) {
            span_issue(ids, pt_dma_copy_2d_async(dst, src, cn * sizeof(float), rows * w, cn * sizeof(float),
                                                 cin * sizeof(float)));
        }
        dst += images * rows * w * cn;
        n += (int)images;
    }
}

/* im2col of span [q0, q1) from its fetched rows (src, cn channels) into
 * cols, the columns of taps [tap0, tap1). */
static pt_status im2col_span(const conv_run *r, const pt_ctx *ctx, const float *src, size_t q0, size_t q1,
                             int tap0, int tap1, int cn, float *cols)
{
    pt_status st = PT_OK;
    for (int n = (int)(q0 / r->g.img_px); st == PT_OK && (size_t)n * r->g.img_px < q1; ++n) {
        pt_tile_conv_piece p = pt_tile_conv_piece_of(&r->g, n, q0, q1);
        pt_conv_params c = piece_params(r, &p, cn);
        const size_t first = p.a - (size_t)p.oa * (size_t)r->g.g.ow;
        const size_t floats = (p.b - p.a) * (size_t)(tap1 - tap0) * (size_t)cn;
        if (c.in.h > 0)
            st = pt_conv2d_im2col(ctx, &c, src, first, p.b - p.a, tap0, tap1, cols);
        else /* windows entirely in the padding (pads >= kernel) */
            memset(cols, 0, floats * sizeof(float));
        src += (size_t)c.in.h * (size_t)r->g.g.w * (size_t)cn;
        cols += floats;
    }
    return st;
}

/* A tile of the forward or grad-weight loops: filter block blk x output
 * pixels [q0, q1). */
typedef struct span_tile {
    int blk;
    size_t q0, q1;
} span_tile;

/* The tile after t, filter blocks innermost (blocks_inner) or outermost;
 * *done when t was the last. Pixel tiles are `span` long, cut as
 * pt_tile_conv_span_end does for `step`. */
static span_tile span_tile_next(const conv_run *r, span_tile t, pt_tile_step step, size_t span,
                                int blocks_inner, int blocks, int *done)
{
    const pt_tile_conv_geom *g = &r->g;
    *done = 0;
    if (blocks_inner && t.blk + 1 < blocks) {
        t.blk += 1;
        return t;
    }
    if (blocks_inner) t.blk = 0;
    if (t.q1 < g->pixels) {
        t.q0 = t.q1;
    } else if (!blocks_inner && t.blk + 1 < blocks) {
        t.blk += 1;
        t.q0 = 0;
    } else {
        *done = 1;
        return t;
    }
    t.q1 = pt_tile_conv_span_end(g, step, t.q0, span);
    return t;
}

/* ------------------------------------------------------------------ fwd */
/* Tiles of tile_m output pixels x tile_n filters. order[0] == M: pixel
 * tiles outermost, a tile's im2col built once and multiplied by every filter
 * block (the filters stream once per pixel tile); order[0] == N: filter
 * blocks outermost, each block's filters fetched once while every pixel tile
 * streams past (the input, and its im2col, once per filter block). */
pt_status pt_tile_conv_fwd(const pt_ctx *ctx, const pt_tile_plan *plan, void *l1, size_t l1_bytes,
                           const float *x, const float *w, const float *b, float *y)
{
    conv_run r;
    pt_status st = conv_setup(&r, ctx, plan, PT_TILE_FWD, l1, l1_bytes);
    if (st != PT_OK) return st;
    if (b && !plan->layer.has_bias) return PT_ERR_PARAM;
    const pt_tile_conv_geom *g = &r.g;
    const int oc = g->oc, patch = g->patch, cin = g->g.c, tn = plan->tile_n, blocks = pt_tile_ceil_div(oc, tn);
    const int n_outer = plan->order[0] == PT_TILE_DIM_N;
    const int two_w = r.lay.w[1] != r.lay.w[0], two_out = r.lay.out[1] != r.lay.out[0];
    float *cols = (float *)(r.l1 + r.lay.cols);
    float *x_l1 = (float *)(r.l1 + r.lay.src[0]);
    span_dma x_dma = {{0}, 0};
    pt_dma_id w_dma[2][2] = {{NO_DMA, NO_DMA}, {NO_DMA, NO_DMA}}, out_dma[2] = {NO_DMA, NO_DMA};
    int cur_w = 0, cur_out = 0;

#define FETCH_W(block, buf)                                                                        \
    do {                                                                                            \
        const int c0_ = (block) * tn, c1_ = pt_tile_min_int(c0_ + tn, oc);                          \
        w_dma[buf][0] = pt_dma_copy_1d_async(r.l1 + r.lay.w[buf], w + (size_t)c0_ * patch,          \
                                             (size_t)(c1_ - c0_) * patch * sizeof(float));          \
        if (b) w_dma[buf][1] = pt_dma_copy_1d_async(r.l1 + r.lay.b[buf], b + c0_,                   \
                                                    (size_t)(c1_ - c0_) * sizeof(float));           \
    } while (0)

    const size_t span = (size_t)plan->tile_m, first_end = pt_tile_conv_span_end(g, PT_TILE_FWD, 0, span);
    const int one_span = first_end == g->pixels;
    span_tile t = {0, 0, first_end};
    size_t in_cols = g->pixels; /* the pixel tile whose im2col cols holds (none yet) */
    fetch_span(&r, x_l1, x, t.q0, t.q1, 0, cin, &x_dma);
    FETCH_W(0, 0);
    for (int done = 0; !done && st == PT_OK;) {
        const span_tile next = span_tile_next(&r, t, PT_TILE_FWD, span, !n_outer, blocks, &done);
        /* the next tile's filters, when they change */
        if (!done && next.blk != t.blk) FETCH_W(next.blk, cur_w ^ two_w);
        if (t.q0 != in_cols) {
            wait_span(&x_dma);
            st = im2col_span(&r, ctx, x_l1, t.q0, t.q1, 0, g->g.kh * g->g.kw, cin, cols);
            if (st != PT_OK) break;
            in_cols = t.q0;
            /* the rows are in cols now: the next pixel tile's come while the
             * GEMMs run (filters outermost: the first again, for the next block) */
            size_t n0 = t.q1;
            if (n0 == g->pixels) n0 = n_outer && t.blk + 1 < blocks && !one_span ? 0 : g->pixels;
            if (n0 < g->pixels)
                fetch_span(&r, x_l1, x, n0, pt_tile_conv_span_end(g, PT_TILE_FWD, n0, span), 0, cin, &x_dma);
        }
        wait_and_clear(&w_dma[cur_w][0]);
        wait_and_clear(&w_dma[cur_w][1]);
        wait_and_clear(&out_dma[cur_out]);
        const int c0 = t.blk * tn, cn = pt_tile_min_int(c0 + tn, oc) - c0;
        float *out = (float *)(r.l1 + r.lay.out[cur_out]);
        /* the patch is never cut: C is final, so the GEMM applies the activation */
        pt_gemm_params gp = {(int)(t.q1 - t.q0), cn, patch, 0, 1, patch, patch, cn, 0, (int)plan->layer.act};
        st = pt_sgemm_f32(&r.gemm_ctx, &gp, cols, (const float *)(r.l1 + r.lay.w[cur_w]),
                          b ? (const float *)(r.l1 + r.lay.b[cur_w]) : NULL, out);
        if (st != PT_OK) break;
        const size_t width = (size_t)cn * sizeof(float);
        out_dma[cur_out] = pt_dma_copy_2d_async(y + t.q0 * (size_t)oc + c0, out, width, t.q1 - t.q0,
                                                (size_t)oc * sizeof(float), width);
        cur_out ^= two_out;
        if (!done && next.blk != t.blk) cur_w ^= two_w;
        t = next;
    }
#undef FETCH_W
    wait_span(&x_dma);
    for (int i = 0; i < 2; ++i) {
        wait_and_clear(&w_dma[i][0]);
        wait_and_clear(&w_dma[i][1]);
        wait_and_clear(&out_dma[i]);
    }
    return st;
}

/* ------------------------------------------------------------ bwd_input */
/* A block of the patch's columns: taps [t0, t1) x channels [c0, c0 + cn)
 * (all channels of several taps, or some channels of one tap). */
typedef struct col_block {
    int t0, t1, c0, cn;
} col_block;

typedef struct col_blocks {
    int cb, cblocks, tap_block, tblocks;
} col_blocks;

static col_blocks col_blocks_of(const pt_tile_conv_geom *g, int tile_n)
{
    col_blocks b;
    const int taps = g->g.kh * g->g.kw;
    b.cb = pt_tile_min_int(tile_n, g->g.c);
    b.cblocks = pt_tile_ceil_div(g->g.c, b.cb);
    b.tap_block = b.cblocks > 1 ? 1 : tile_n / g->g.c;
    b.tblocks = pt_tile_ceil_div(taps, b.tap_block);
    return b;
}

static col_block col_block_at(const pt_tile_conv_geom *g, const col_blocks *b, int j)
{
    col_block c;
    const int ch = j / b->tblocks, tb = j % b->tblocks;
    c.c0 = ch * b->cb;
    c.cn = pt_tile_min_int(b->cb, g->g.c - c.c0);
    c.t0 = tb * b->tap_block;
    c.t1 = pt_tile_min_int(c.t0 + b->tap_block, g->g.kh * g->g.kw);
    return c;
}

/* (images, input rows) tiles, and inside a tile the patch's columns a block
 * at a time (tile_n of them): the grad_y rows that reach the tile times those
 * columns of w give that block's grad-cols, which col2im of the tile as a
 * smaller conv adds, taps in order, to the tile's grad_x (one channel slice
 * at a time when a block holds fewer channels than a tap). With one block,
 * all of w stays in L1; with more, w's blocks stream through two buffers. */
pt_status pt_tile_conv_bwd_input(const pt_ctx *ctx, const pt_tile_plan *plan, void *l1,
                                 size_t l1_bytes, const float *w, const float *grad_y, float *grad_x)
{
    conv_run r;
    pt_status st = conv_setup(&r, ctx, plan, PT_TILE_BWD_INPUT, l1, l1_bytes);
    if (st != PT_OK) return st;
    const pt_tile_dw_geom *g = &r.g.g;
    const int oc = r.g.oc, patch = r.g.patch, cin = g->c;
    const col_blocks cbs = col_blocks_of(&r.g, plan->tile_n);
    const int nblocks = cbs.cblocks * cbs.tblocks, streamed = nblocks > 1;
    const int count_r = pt_tile_ceil_div(g->h, plan->tile_rows);
    const uint64_t total = (uint64_t)pt_tile_ceil_div(g->n, plan->tile_images) * (uint64_t)count_r;
    const size_t gy_row = (size_t)g->ow * oc;
    const int two_in = r.lay.src[1] != r.lay.src[0], two_out = r.lay.out[1] != r.lay.out[0];
    float *gcols = (float *)(r.l1 + r.lay.cols);
    pt_dma_id in_dma[2] = {NO_DMA, NO_DMA}, out_dma[2] = {NO_DMA, NO_DMA}, w_dma[2] = {NO_DMA, NO_DMA};
    int cur_in = 0, cur_out = 0, cur_w = 0;

#define FETCH_W(j, buf)                                                                            \
    do {                                                                                            \
        const col_block b_ = col_block_at(&r.g, &cbs, (j));                                         \
        const size_t width_ = (size_t)(b_.t1 - b_.t0) * (size_t)b_.cn * sizeof(float);              \
        w_dma[buf] = pt_dma_copy_2d_async(r.l1 + r.lay.w[buf], w + (size_t)b_.t0 * cin + b_.c0,     \
                                          width_, (size_t)oc, width_, (size_t)patch * sizeof(float)); \
    } while (0)

    typedef struct { int n0, n1, r0, r1; pt_tile_dw_rows rows; } in_tile;
#define TILE_AT(i, t)                                                                 \
    do {                                                                              \
        (t).r0 = (int)((i) % (uint64_t)count_r) * plan->tile_rows;                    \
        (t).r1 = pt_tile_min_int((t).r0 + plan->tile_rows, g->h);                     \
        (t).n0 = (int)((i) / (uint64_t)count_r) * plan->tile_images;                  \
        (t).n1 = pt_tile_min_int((t).n0 + plan->tile_images, g->n);                   \
        (t).rows = pt_tile_dw_rows_of(g, PT_TILE_BWD_INPUT, (t).r0, (t).r1);          \
    } while (0)
#define FETCH_GY(t, buf)                                                                          \
    ((t).rows.src_hi > (t).rows.src_lo                                                            \
         ? pt_dma_copy_1d_async(r.l1 + r.lay.src[buf],                                            \
                                grad_y + ((size_t)(t).n0 * g->oh + (size_t)(t).rows.src_lo) * gy_row, \
                                (size_t)((t).n1 - (t).n0) *                                       \
                                    (size_t)((t).rows.src_hi - (t).rows.src_lo) * gy_row * sizeof(float)) \
         : NO_DMA)

    in_tile t, next;
    TILE_AT(0, t);
    in_dma[0] = FETCH_GY(t, 0);
    FETCH_W(0, 0);
    for (uint64_t i = 0; i < total && st == PT_OK; ++i) {
        const int has_next = i + 1 < total;
        next = t;
        if (has_next) {
            TILE_AT(i + 1, next);
            in_dma[cur_in ^ two_in] = FETCH_GY(next, cur_in ^ two_in);
        }
        wait_and_clear(&in_dma[cur_in]);
        const int images = t.n1 - t.n0, gy_rows = t.rows.src_hi - t.rows.src_lo;
        const int buf_lo = pt_tile_min_int(t.rows.ext_lo, t.r0);
        const int buf_hi = pt_tile_max_int(t.rows.ext_hi, t.r1);
        const int ext_rows = t.rows.ext_hi - t.rows.ext_lo;
        for (int j = 0; j < nblocks && st == PT_OK; ++j) {
            const col_block b = col_block_at(&r.g, &cbs, j);
            const size_t slice_row = (size_t)g->w * (size_t)b.cn; /* one row of the slice's grad_x */
            float *out = (float *)(r.l1 + r.lay.out[cur_out]);
            if (b.t0 == 0) { /* a new channel slice: its buffer has drained */
                wait_and_clear(&out_dma[cur_out]);
                if (ext_rows < buf_hi - buf_lo) /* rows no window reaches get 0 */
                    memset(out, 0, (size_t)images * (size_t)(buf_hi - buf_lo) * slice_row * sizeof(float));
            }
            if (streamed && (j + 1 < nblocks || has_next)) FETCH_W((j + 1) % nblocks, cur_w ^ 1);
            wait_and_clear(&w_dma[cur_w]);
            if (gy_rows > 0) {
                const int ncols = (b.t1 - b.t0) * b.cn;
                pt_gemm_params gp = {images * gy_rows * g->ow, ncols, oc, 0, 0, oc, ncols, ncols, 0, PT_ACT_NONE};
                st = pt_sgemm_f32(&r.gemm_ctx, &gp, (const float *)(r.l1 + r.lay.src[cur_in]),
                                  (const float *)(r.l1 + r.lay.w[cur_w]), NULL, gcols);
                if (st != PT_OK) break;
                pt_conv_params c = plan->layer.conv;
                c.in.n = images;
                c.in.h = ext_rows;
                c.in.c = b.cn;
                c.pad_top = t.rows.pad_lo;
                c.pad_bottom = t.rows.pad_hi;
                st = pt_conv2d_col2im(ctx, &c, gcols, b.t0, b.t1, b.t0 > 0,
                                      out + (size_t)(t.rows.ext_lo - buf_lo) * slice_row);
                if (st != PT_OK) break;
            }
            if (streamed) cur_w ^= 1;
            if (b.t1 == g->kh * g->kw) { /* the slice is complete: drain it */
                const size_t width = (size_t)b.cn * sizeof(float);
                out_dma[cur_out] = pt_dma_copy_2d_async(
                    grad_x + ((size_t)t.n0 * g->h + (size_t)t.r0) * (size_t)g->w * cin + b.c0,
                    out + (size_t)(t.r0 - buf_lo) * slice_row, width,
                    (size_t)images * (size_t)(t.r1 - t.r0) * (size_t)g->w, (size_t)cin * sizeof(float), width);
                cur_out ^= two_out;
            }
        }
        cur_in ^= two_in;
        t = next;
    }
#undef FETCH_W
#undef TILE_AT
#undef FETCH_GY
    for (int i = 0; i < 2; ++i) {
        wait_and_clear(&in_dma[i]);
        wait_and_clear(&out_dma[i]);
        wait_and_clear(&w_dma[i]);
    }
    return st;
}

/* ----------------------------------------------------------- bwd_weight */
/* Tiles of tile_m filters x tile_k pixels, pixels in chunk order for each
 * filter. order[0] == M: filter blocks outermost, a block's sums stay in L1
 * while all pixel tiles stream (each block refetches the input). order[0] ==
 * K: pixel tiles outermost, all of grad_w stays in L1. Inside a tile the
 * patch's columns go tile_n at a time: whole taps, or, when tile_n is less
 * than Cin, tile_n channels of one tap, the input rows then fetched one
 * channel slice at a time (and by every tile). Each block of columns: its
 * im2col, then its columns of grad_w - the GEMM's N, cut freely. */
pt_status pt_tile_conv_bwd_weight(const pt_ctx *ctx, const pt_tile_plan *plan, void *l1,
                                  size_t l1_bytes, const float *x, const float *grad_y,
                                  float *grad_w, float *grad_b)
{
    conv_run r;
    pt_status st = conv_setup(&r, ctx, plan, PT_TILE_BWD_WEIGHT, l1, l1_bytes);
    if (st != PT_OK) return st;
    if (grad_b && !plan->layer.has_bias) return PT_ERR_PARAM;
    const pt_tile_conv_geom *g = &r.g;
    const int oc = g->oc, patch = g->patch, tm = plan->tile_m, blocks = pt_tile_ceil_div(oc, tm);
    const int k_outer = plan->order[0] == PT_TILE_DIM_K;
    const int cin = g->g.c, taps = g->g.kh * g->g.kw;
    /* column blocks: tap_block whole taps, or (channel blocks) cb channels of one tap */
    const int cb = pt_tile_min_int(plan->tile_n, cin), cblocks = pt_tile_ceil_div(cin, cb);
    const int tap_block = cblocks > 1 ? 1 : plan->tile_n / cin;
    const int two_y = r.lay.gy[1] != r.lay.gy[0];
    float *x_l1 = (float *)(r.l1 + r.lay.src[0]);
    float *cols = (float *)(r.l1 + r.lay.cols);
    float *acc_w = (float *)(r.l1 + r.lay.acc);
    float *acc_b = acc_w + (size_t)(k_outer ? oc : tm) * patch;
    span_dma x_dma = {{0}, 0};
    pt_dma_id y_dma[2] = {NO_DMA, NO_DMA}, acc_dma[2] = {NO_DMA, NO_DMA};
    int cur_y = 0;

#define FETCH_GY(t, buf)                                                                            \
    do {                                                                                             \
        const int c0_ = (t).blk * tm, c1_ = pt_tile_min_int(c0_ + tm, oc);                           \
        const size_t width_ = (size_t)(c1_ - c0_) * sizeof(float);                                   \
        y_dma[buf] = pt_dma_copy_2d_async(r.l1 + r.lay.gy[buf], grad_y + (t).q0 * (size_t)oc + c0_,  \
                                          width_, (t).q1 - (t).q0, width_, (size_t)oc * sizeof(float)); \
    } while (0)
#define STORE(c0, rows)                                                                             \
    do {                                                                                             \
        acc_dma[0] = pt_dma_copy_1d_async(grad_w + (size_t)(c0) * patch, acc_w,                      \
                                          (size_t)(rows) * patch * sizeof(float));                   \
        if (grad_b) acc_dma[1] = pt_dma_copy_1d_async(grad_b + (c0), acc_b, (size_t)(rows) * sizeof(float)); \
    } while (0)

    const size_t span = (size_t)plan->tile_k;
    span_tile t = {0, 0, pt_tile_conv_span_end(g, PT_TILE_BWD_WEIGHT, 0, span)};
    fetch_span(&r, x_l1, x, t.q0, t.q1, 0, cb, &x_dma);
    FETCH_GY(t, 0);
    for (int done = 0; !done && st == PT_OK;) {
        const span_tile next = span_tile_next(&r, t, PT_TILE_BWD_WEIGHT, span, k_outer, blocks, &done);
        /* the span's input rows are needed (with channel blocks, every tile
         * fetches its slices anew) */
        const int new_span = !k_outer || t.blk == 0 || cblocks > 1;
        /* the tile that reads the span's rows last (then the next span's
         * rows come while the GEMMs run), and the next span */
        const int last_read = !k_outer || (tap_block == taps ? t.blk == 0 : t.blk == blocks - 1);
        size_t s0 = next.q0;
        int has_next_span = !done && (!k_outer || next.blk == 0);
        if (k_outer && last_read) {
            s0 = t.q1;
            has_next_span = t.q1 < g->pixels;
        }
        if (!done) FETCH_GY(next, cur_y ^ two_y);
        const int c0 = t.blk * tm, cm = pt_tile_min_int(c0 + tm, oc) - c0;
        float *blk_w = acc_w + (k_outer ? (size_t)c0 * patch : 0);
        float *blk_b = acc_b + (k_outer ? c0 : 0);
        if (t.q0 == 0 && (!k_outer || t.blk == 0)) { /* new sums: the last ones have drained */
            wait_and_clear(&acc_dma[0]);
            wait_and_clear(&acc_dma[1]);
        }
        wait_and_clear(&y_dma[cur_y]);
        const float *gy = (const float *)(r.l1 + r.lay.gy[cur_y]);
        const int rows = (int)(t.q1 - t.q0);
        for (int ch = 0; ch < cblocks && st == PT_OK; ++ch) {
            const int c0 = ch * cb, cn = pt_tile_min_int(cb, cin - c0);
            if (new_span) wait_span(&x_dma);
            for (int tap0 = 0; tap0 < taps && st == PT_OK; tap0 += tap_block) {
                const int tap1 = pt_tile_min_int(tap0 + tap_block, taps), n = (tap1 - tap0) * cn;
                /* all taps' columns stay from the last filter block */
                if (new_span || tap_block < taps)
                    st = im2col_span(&r, ctx, x_l1, t.q0, t.q1, tap0, tap1, cn, cols);
                if (st != PT_OK) break;
                /* the slice's last im2col: the next slice (or span) comes
                 * while the GEMMs run */
                if (tap1 == taps && cblocks > 1 && ch + 1 < cblocks)
                    fetch_span(&r, x_l1, x, t.q0, t.q1, c0 + cb, pt_tile_min_int(c0 + 2 * cb, cin), &x_dma);
                else if (tap1 == taps && cblocks > 1 && !done)
                    fetch_span(&r, x_l1, x, next.q0, next.q1, 0, cb, &x_dma);
                else if (tap1 == taps && cblocks == 1 && last_read && has_next_span)
                    fetch_span(&r, x_l1, x, s0,
                               pt_tile_conv_span_end(g, PT_TILE_BWD_WEIGHT, s0, span), 0, cin,
                               &x_dma);
                /* accumulate from the second pixel tile on: the same K-block
                 * sums, added in the same order, as the untiled chunks' GEMMs */
                pt_gemm_params gp = {cm, n, rows, 1, 0, cm, n, patch, t.q0 > 0, PT_ACT_NONE};
                st = pt_sgemm_f32(&r.gemm_ctx, &gp, gy, cols, NULL, blk_w + (size_t)tap0 * cin + c0);
            }
        }
        if (st != PT_OK) break;
        if (grad_b) { /* column sums of grad_y in row order, as pt_colsum_f32 */
            if (t.q0 == 0) memset(blk_b, 0, (size_t)cm * sizeof(float));
            for (int k = 0; k < rows; ++k)
                for (int j = 0; j < cm; ++j) blk_b[j] += gy[(size_t)k * cm + j];
        }
        if (!k_outer && t.q1 == g->pixels) STORE(c0, cm); /* the block is final */
        if (k_outer && done) STORE(0, oc);
        cur_y ^= two_y;
        t = next;
    }
#undef FETCH_GY
#undef STORE
    wait_span(&x_dma);
    for (int i = 0; i < 2; ++i) {
        wait_and_clear(&y_dma[i]);
        wait_and_clear(&acc_dma[i]);
    }
    return st;
}

/* The GEMMs' packing scratch for the largest tile (it grows with m, n, k). */
size_t pt_tile_conv_scratch_bytes(const pt_tile_plan *plan, int num_threads)
{
    pt_tile_conv_geom g;
    if (pt_tile_conv_geom_of(&plan->layer, &g) != PT_OK) return 0;
    pt_gemm_params gp = {0};
    if (plan->step == PT_TILE_FWD) {
        pt_gemm_params f = {plan->tile_m, plan->tile_n, g.patch, 0, 1, 0, 0, 0, 0, PT_ACT_NONE};
        gp = f;
    } else if (plan->step == PT_TILE_BWD_INPUT) {
        int src_max, buf_max;
        uint64_t src_sum;
        pt_tile_dw_row_extents(&g.g, PT_TILE_BWD_INPUT, plan->tile_rows, &src_max, &buf_max, &src_sum);
        pt_gemm_params bi = {plan->tile_images * pt_tile_max_int(src_max, 1) * g.g.ow, plan->tile_n, g.oc,
                             0, 0, 0, 0, 0, 0, PT_ACT_NONE};
        gp = bi;
    } else {
        const size_t chunk = g.chunk_px < g.pixels ? g.chunk_px : g.pixels;
        const int k = (size_t)plan->tile_k < chunk ? plan->tile_k : (int)chunk;
        pt_gemm_params bw = {plan->tile_m, plan->tile_n, k, 1, 0, 0, 0, 0, 0, PT_ACT_NONE};
        gp = bw;
    }
    return pt_sgemm_f32_scratch_bytes(&gp, num_threads);
}
