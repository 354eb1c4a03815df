/* Tiled, double-buffered execution of linear and pointwise layers: every
 * step is C = op(A) op(B) (pt_tile_internal.h), run as a 3-deep loop over
 * tiles in the planner's order. While tile i is computed, the DMA fetches
 * the operand tiles of tile i + 1 into the other buffer of each pair; a C
 * tile is written back as soon as the loop leaves it. */
#include <string.h>
#include "pt_tile_internal.h"
#include "pulptrain/pt_dma.h"
#include "pulptrain/internal.h"

#define NO_DMA ((pt_dma_id)-1)

/* Bytes of the packed B tile and (a transposed A is packed too; an
 * untransposed one is read in place) the packed A tile, each rounded so what
 * follows stays aligned. */
static size_t packed_b_bytes(const pt_gemm_params *g) { return pt_tile_align(pt_sgemm_f32_packed_b_bytes(g)); }
static size_t packed_a_bytes(const pt_gemm_params *g)
{
    return g->trans_a ? pt_tile_align(pt_sgemm_f32_packed_a_bytes(g)) : 0;
}

static void *align_ptr(void *p)
{
    uintptr_t v = (uintptr_t)p;
    return (void *)((v + PT_TILE_ALIGN - 1) & ~(uintptr_t)(PT_TILE_ALIGN - 1));
}

typedef struct tile_coords {
    int m0, m1, n0, n1, k0, k1;
} tile_coords;

typedef struct gemm_run {
    const pt_tile_plan *plan;
    pt_tile_gemm_view v;
    const float *a, *b; /* L2 operands */
    float *c;
    int count[3];       /* tiles along M, N, K */
} gemm_run;

static tile_coords coords_of(const gemm_run *r, uint64_t i)
{
    const int *order = r->plan->order;
    int idx[3];
    idx[order[2]] = (int)(i % (uint64_t)r->count[order[2]]);
    i /= (uint64_t)r->count[order[2]];
    idx[order[1]] = (int)(i % (uint64_t)r->count[order[1]]);
    idx[order[0]] = (int)(i / (uint64_t)r->count[order[1]]);
    const pt_tile_plan *p = r->plan;
    tile_coords t;
    t.m0 = idx[PT_TILE_DIM_M] * p->tile_m;
    t.m1 = pt_tile_min_int(t.m0 + p->tile_m, r->v.m);
    t.n0 = idx[PT_TILE_DIM_N] * p->tile_n;
    t.n1 = pt_tile_min_int(t.n0 + p->tile_n, r->v.n);
    t.k0 = idx[PT_TILE_DIM_K] * p->tile_k;
    t.k1 = pt_tile_min_int(t.k0 + p->tile_k, r->v.k);
    return t;
}

static int same_a(tile_coords x, tile_coords y) { return x.m0 == y.m0 && x.k0 == y.k0; }
static int same_b(tile_coords x, tile_coords y) { return x.k0 == y.k0 && x.n0 == y.n0; }
static int same_c(tile_coords x, tile_coords y) { return x.m0 == y.m0 && x.n0 == y.n0; }

/* Row-major tile of a stored matrix: rows [r0, r1) x columns [c0, c1). */
static pt_dma_id fetch(float *dst, const float *src, int ld, int r0, int r1, int c0, int c1)
{
    size_t width = (size_t)(c1 - c0) * sizeof(float);
    return pt_dma_copy_2d_async(dst, src + (size_t)r0 * ld + c0, width, (size_t)(r1 - r0), width,
                                (size_t)ld * sizeof(float));
}

static pt_dma_id fetch_a(const gemm_run *r, float *dst, tile_coords t)
{
    return r->v.trans_a ? fetch(dst, r->a, r->v.lda, t.k0, t.k1, t.m0, t.m1)
                        : fetch(dst, r->a, r->v.lda, t.m0, t.m1, t.k0, t.k1);
}

static pt_dma_id fetch_b(const gemm_run *r, float *dst, tile_coords t)
{
    return r->v.trans_b ? fetch(dst, r->b, r->v.ldb, t.n0, t.n1, t.k0, t.k1)
                        : fetch(dst, r->b, r->v.ldb, t.k0, t.k1, t.n0, t.n1);
}

static pt_dma_id fetch_c(const gemm_run *r, float *dst, tile_coords t)
{
    return fetch(dst, r->c, r->v.ldc, t.m0, t.m1, t.n0, t.n1);
}

static pt_dma_id store_c(const gemm_run *r, const float *src, tile_coords t)
{
    size_t width = (size_t)(t.n1 - t.n0) * sizeof(float);
    return pt_dma_copy_2d_async(r->c + (size_t)t.m0 * r->v.ldc + t.n0, src, width,
                                (size_t)(t.m1 - t.m0), (size_t)r->v.ldc * sizeof(float), width);
}

static void wait_and_clear(pt_dma_id *id)
{
    if (*id != NO_DMA) pt_dma_wait(*id);
    *id = NO_DMA;
}

/* grad_b[m] += rows of the grad_y tile (stored [k, m]) in row order: the
 * order of the untiled column sum, as long as K tiles come in order. */
static void add_rows(float *grad_b, const float *tile, int rows, int cols)
{
    for (int k = 0; k < rows; ++k)
        for (int j = 0; j < cols; ++j) grad_b[j] += tile[(size_t)k * cols + j];
}

/* A plan as pt_tile_plan_layer() makes them: tiles within the GEMM, K cut
 * only at PT_GEMM_KC multiples, the order a permutation of M, N, K. */
static int plan_valid(const pt_tile_plan *p, const pt_tile_gemm_view *v)
{
    if (p->tile_m < 1 || p->tile_m > v->m || p->tile_n < 1 || p->tile_n > v->n || p->tile_k < 1 ||
        p->tile_k > v->k || (p->tile_k != v->k && p->tile_k % PT_GEMM_KC != 0))
        return 0;
    int seen = 0;
    for (int i = 0; i < 3; ++i) {
        if (p->order[i] < 0 || p->order[i] > 2) return 0;
        seen |= 1 << p->order[i];
    }
    return seen == 7;
}

/* One operand's L1 tiles: `buffers` of them (1 or 2), `cur` the one tile i
 * reads, and the DMA transfers in flight on each. */
typedef struct operand_state {
    float *buf[2];
    int buffers, cur;
    pt_dma_id in[2], out[2];
} operand_state;

static operand_state operand_at(char *l1, const size_t offset[2], int buffers)
{
    operand_state s = {{(float *)(l1 + offset[0]), (float *)(l1 + offset[1])}, buffers, 0,
                       {NO_DMA, NO_DMA}, {NO_DMA, NO_DMA}};
    return s;
}

/* The buffer tile i + 1 will use when the operand changes. */
static int other(const operand_state *s) { return (s->cur + 1) % s->buffers; }

/* mask: bwd_input's x when the layer has an input_act (C's layout). */
static pt_status gemm_execute(const pt_ctx *ctx, const pt_tile_plan *plan, void *l1, size_t l1_bytes,
                              const float *a, const float *b, const float *bias, float *c,
                              float *grad_b, const float *mask)
{
    gemm_run r;
    pt_status st = pt_tile_gemm_view_of(&plan->layer, plan->step, &r.v);
    if (st != PT_OK) return st;
    if (!plan_valid(plan, &r.v)) return PT_ERR_PARAM;
    int buffers[3];
    pt_tile_gemm_buffers(&r.v, plan->tile_m, plan->tile_n, plan->tile_k, plan->order, buffers);
    const pt_tile_gemm_layout lay =
        pt_tile_gemm_layout_of(&r.v, plan->tile_m, plan->tile_n, plan->tile_k, buffers);
    if (lay.total != plan->l1_bytes || l1_bytes < lay.total) return PT_ERR_SCRATCH;
    if ((uintptr_t)l1 % PT_TILE_ALIGN) return PT_ERR_PARAM;
    st = pt_check_ctx(ctx, pt_tile_scratch_bytes(plan, ctx ? ctx->num_threads : 1));
    if (st != PT_OK) return st;
    /* the scratch: the B tile packed once per B tile (reused by every tile
     * that shares it), a transposed A tile likewise (an untransposed one is
     * read in place), then the GEMM's own packing space */
    pt_gemm_params whole = {plan->tile_m, plan->tile_n, plan->tile_k, r.v.trans_a, r.v.trans_b,
                            0, 0, 0, 0, PT_ACT_NONE};
    float *packed_b = (float *)align_ptr(ctx->scratch);
    float *packed_a = r.v.trans_a ? (float *)((char *)packed_b + packed_b_bytes(&whole)) : NULL;
    char *gemm_scratch = (char *)packed_b + packed_b_bytes(&whole) + packed_a_bytes(&whole);
    pt_ctx gemm_ctx = {ctx->num_threads, gemm_scratch,
                       ctx->scratch_bytes - (size_t)(gemm_scratch - (char *)ctx->scratch)};
    const float act_cap = plan->step == PT_TILE_FWD && plan->layer.act != PT_ACT_NONE ? pt_act_cap(plan->layer.act)
                                                                                      : 0.0f;
    r.plan = plan;
    r.a = a;
    r.b = b;
    r.c = c;
    r.count[PT_TILE_DIM_M] = pt_tile_ceil_div(r.v.m, plan->tile_m);
    r.count[PT_TILE_DIM_N] = pt_tile_ceil_div(r.v.n, plan->tile_n);
    r.count[PT_TILE_DIM_K] = pt_tile_ceil_div(r.v.k, plan->tile_k);
    const uint64_t total = (uint64_t)r.count[0] * r.count[1] * r.count[2];

    char *base = (char *)l1;
    operand_state A = operand_at(base, lay.a, buffers[0]);
    operand_state B = operand_at(base, lay.b, buffers[1]);
    operand_state C = operand_at(base, lay.c, buffers[2]);
    float *bias_l1 = (float *)(base + lay.bias);
    float *mask_l1 = (float *)(base + lay.mask);
    const float mask_cap = r.v.mask ? pt_act_cap(plan->layer.input_act) : 0.0f;
    if (bias) pt_dma_wait(pt_dma_copy_1d_async(bias_l1, bias, (size_t)r.v.n * sizeof(float)));
    if (grad_b) memset(bias_l1, 0, (size_t)r.v.m * sizeof(float));

    tile_coords prev = coords_of(&r, 0), cur = prev;
    int a_ready = 0, b_ready = 0, c_ready = 0; /* prefetched during the previous tile */
    for (uint64_t i = 0; i < total; ++i) {
        const int has_next = i + 1 < total;
        const tile_coords next = has_next ? coords_of(&r, i + 1) : cur;
        const int first = i == 0;
        /* 1. what tile i needs and could not be prefetched (single buffers) */
        if ((first || !same_a(prev, cur)) && !a_ready) A.in[A.cur] = fetch_a(&r, A.buf[A.cur], cur);
        if ((first || !same_b(prev, cur)) && !b_ready) B.in[B.cur] = fetch_b(&r, B.buf[B.cur], cur);
        if ((first || !same_c(prev, cur)) && !c_ready) {
            wait_and_clear(&C.out[C.cur]); /* the buffer's last write-back */
            if (cur.k0 > 0) C.in[C.cur] = fetch_c(&r, C.buf[C.cur], cur);
        }
        /* 2. prefetch tile i + 1's operands into the buffers tile i leaves alone */
        a_ready = has_next && !same_a(cur, next) && A.buffers == 2;
        if (a_ready) A.in[other(&A)] = fetch_a(&r, A.buf[other(&A)], next);
        b_ready = has_next && !same_b(cur, next) && B.buffers == 2;
        if (b_ready) B.in[other(&B)] = fetch_b(&r, B.buf[other(&B)], next);
        c_ready = has_next && !same_c(cur, next) && C.buffers == 2;
        if (c_ready) {
            /* a partial C from an earlier K pass: any write-back of it went
             * out from this buffer (or was waited for when we left it) */
            wait_and_clear(&C.out[other(&C)]);
            if (next.k0 > 0) C.in[other(&C)] = fetch_c(&r, C.buf[other(&C)], next);
        }
        /* 3. compute tile i */
        wait_and_clear(&A.in[A.cur]);
        wait_and_clear(&B.in[B.cur]);
        wait_and_clear(&C.in[C.cur]);
        const int tm = cur.m1 - cur.m0, tn = cur.n1 - cur.n0, tk = cur.k1 - cur.k0;
        pt_gemm_params g = {0};
        g.m = tm;
        g.n = tn;
        g.k = tk;
        g.trans_a = r.v.trans_a;
        g.trans_b = r.v.trans_b;
        g.lda = r.v.trans_a ? tm : tk;
        g.ldb = r.v.trans_b ? tk : tn;
        g.ldc = tn;
        g.accumulate = cur.k0 > 0;
        if (first || !same_b(prev, cur)) {
            st = pt_sgemm_f32_pack_b(&g, B.buf[B.cur], packed_b);
            if (st != PT_OK) break;
        }
        if (packed_a && (first || !same_a(prev, cur))) {
            st = pt_sgemm_f32_pack_a(&g, A.buf[A.cur], packed_a);
            if (st != PT_OK) break;
        }
        const float *tile_bias = bias && cur.k0 == 0 ? bias_l1 + cur.n0 : NULL;
        /* the final K tile of a masked C: x's tile arrives while the GEMM runs */
        pt_dma_id mask_dma = NO_DMA;
        if (r.v.mask && cur.k1 == r.v.k) mask_dma = fetch(mask_l1, mask, r.v.ldc, cur.m0, cur.m1, cur.n0, cur.n1);
        st = packed_a ? pt_sgemm_f32_packed_ab(&gemm_ctx, &g, packed_a, packed_b, tile_bias, C.buf[C.cur])
                      : pt_sgemm_f32_packed(&gemm_ctx, &g, A.buf[A.cur], packed_b, tile_bias, C.buf[C.cur]);
        wait_and_clear(&mask_dma);
        if (st != PT_OK) break;
        if (grad_b && cur.n0 == 0) add_rows(bias_l1 + cur.m0, A.buf[A.cur], tk, tm);
        if (act_cap > 0.0f && cur.k1 == r.v.k) /* forward's fused activation, once C is final */
            for (size_t e = 0; e < (size_t)tm * (size_t)tn; ++e) C.buf[C.cur][e] = pt_act_clamp(C.buf[C.cur][e], act_cap);
        if (r.v.mask && cur.k1 == r.v.k) /* grad-input through the input's activation */
            for (size_t e = 0; e < (size_t)tm * (size_t)tn; ++e)
                C.buf[C.cur][e] = pt_act_grad_select(mask_l1[e], C.buf[C.cur][e], mask_cap);
        /* 4. write C back when the loop leaves it */
        if (!has_next || !same_c(cur, next)) C.out[C.cur] = store_c(&r, C.buf[C.cur], cur);
        if (has_next && !same_a(cur, next)) A.cur = other(&A);
        if (has_next && !same_b(cur, next)) B.cur = other(&B);
        if (has_next && !same_c(cur, next)) C.cur = other(&C);
        prev = cur;
        cur = next;
    }
    for (int i = 0; i < 2; ++i) {
        wait_and_clear(&A.in[i]);
        wait_and_clear(&B.in[i]);
        wait_and_clear(&C.in[i]);
        wait_and_clear(&C.out[i]);
    }
    if (st == PT_OK && grad_b)
        pt_dma_wait(pt_dma_copy_1d_async(grad_b, bias_l1, (size_t)r.v.m * sizeof(float)));
    return st;
}

size_t pt_tile_gemm_scratch_bytes(const pt_tile_plan *plan, int num_threads)
{
    pt_tile_gemm_view v;
    if (pt_tile_gemm_view_of(&plan->layer, plan->step, &v) != PT_OK) return 0;
    /* the packed B tile, a packed transposed A tile, then the GEMM's packing
     * scratch (which grows with n and k: the full tile needs most) */
    pt_gemm_params g = {plan->tile_m, plan->tile_n, plan->tile_k, v.trans_a, v.trans_b,
                        0, 0, 0, 0, PT_ACT_NONE};
    return PT_TILE_ALIGN + packed_b_bytes(&g) + packed_a_bytes(&g) + pt_sgemm_f32_scratch_bytes(&g, num_threads);
}

static int is_gemm_plan(const pt_tile_plan *plan)
{
    return plan->layer.kind == PT_TILE_LINEAR || plan->layer.kind == PT_TILE_POINTWISE;
}

pt_status pt_tile_gemm_fwd(const pt_ctx *ctx, const pt_tile_plan *plan, void *l1, size_t l1_bytes,
                           const float *x, const float *w, const float *b, float *y)
{
    if (plan->step != PT_TILE_FWD || !is_gemm_plan(plan)) return PT_ERR_PARAM;
    if (b && !plan->layer.has_bias) return PT_ERR_PARAM;
    return gemm_execute(ctx, plan, l1, l1_bytes, x, w, b, y, NULL, NULL);
}

pt_status pt_tile_gemm_bwd_input(const pt_ctx *ctx, const pt_tile_plan *plan, void *l1,
                                 size_t l1_bytes, const float *w, const float *grad_y, const float *x,
                                 float *grad_x)
{
    if (plan->step != PT_TILE_BWD_INPUT || !is_gemm_plan(plan)) return PT_ERR_PARAM;
    return gemm_execute(ctx, plan, l1, l1_bytes, grad_y, w, NULL, grad_x, NULL, x);
}

pt_status pt_tile_gemm_bwd_weight(const pt_ctx *ctx, const pt_tile_plan *plan, void *l1,
                                  size_t l1_bytes, const float *x, const float *grad_y,
                                  float *grad_w, float *grad_b)
{
    if (plan->step != PT_TILE_BWD_WEIGHT || !is_gemm_plan(plan)) return PT_ERR_PARAM;
    if (grad_b && !plan->layer.has_bias) return PT_ERR_PARAM;
    return gemm_execute(ctx, plan, l1, l1_bytes, grad_y, x, NULL, grad_w, grad_b, NULL);
}
