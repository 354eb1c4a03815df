/* GEMM-family kernels (sgemm, linear, pointwise, conv2d) vs their reference
 * twins, for every ISA variant the CPU has and every thread count, plus
 * bad-argument statuses and the scratch contract. */
#include <stdlib.h>
#include "pt_test.h"
#include "pulptrain/pulptrain.h"

/* Optimised vs reference: mixed tolerance; the absolute part grows with the
 * length of the sums (inputs are uniform in [-1, 1]). */
#define TOL_RTOL 1e-4
static double tol_atol(size_t depth) { return 1e-5 * sqrt((double)depth); }

static float *alloc_floats(size_t n) { return (float *)malloc((n ? n : 1) * sizeof(float)); }

static float *random_floats(pt_rng *r, size_t n)
{
    float *a = alloc_floats(n);
    pt_fill_uniform(r, a, n, -1.0f, 1.0f);
    return a;
}

/* Runs one kernel call with scratch for `threads` cores. */
typedef pt_status (*call_fn)(const pt_ctx *ctx, void *state, float *out);

typedef struct scratch_buf {
    void *mem;
    size_t bytes;
} scratch_buf;

static pt_ctx ctx_for(scratch_buf *s, int threads, size_t need)
{
    if (need > s->bytes) {
        free(s->mem);
        s->mem = malloc(need);
        s->bytes = need;
    }
    pt_ctx ctx = {threads, s->mem, need};
    return ctx;
}

static scratch_buf scratch = {NULL, 0};

/* Compare out (n floats) of every ISA x thread count against ref; outputs of
 * one ISA must be bitwise equal across thread counts. */
static void check_all(const char *what, size_t n, const float *ref, size_t depth,
                      size_t (*need)(void *state, int threads), call_fn call, void *state)
{
    float *out = alloc_floats(n), *first = alloc_floats(n);
    pt_gemm_isa saved = pt_gemm_get_isa();
    for (int isa = 0; isa < PT_GEMM_ISA_COUNT; ++isa) {
        if (pt_gemm_set_isa((pt_gemm_isa)isa) != PT_OK) continue;
        for (int t = 0; t < PT_TEST_NUM_THREADS; ++t) {
            int threads = pt_test_threads[t];
            pt_ctx ctx = ctx_for(&scratch, threads, need(state, threads));
            for (size_t i = 0; i < n; ++i) out[i] = NAN;
            pt_status st = call(&ctx, state, out);
            PT_CHECK(st == PT_OK, "%s isa=%s threads=%d status %d", what, pt_gemm_isa_name(isa), threads, st);
            size_t worst;
            double ratio = pt_tol_ratio(out, ref, n, tol_atol(depth), TOL_RTOL, &worst);
            PT_CHECK(ratio <= 1.0, "%s isa=%s threads=%d: [%zu] %g vs ref %g", what,
                     pt_gemm_isa_name(isa), threads, worst, out[worst], ref[worst]);
            if (t == 0) memcpy(first, out, n * sizeof(float));
            else PT_CHECK(pt_first_bit_diff(out, first, n) < 0, "%s isa=%s threads=%d not bitwise equal to 1 thread",
                          what, pt_gemm_isa_name(isa), threads);
        }
    }
    pt_gemm_set_isa(saved);
    free(out);
    free(first);
}

/* ------------------------------------------------------------------ sgemm */
typedef struct gemm_case {
    pt_gemm_params p;
    const float *a, *b, *bias, *c0;
} gemm_case;

static size_t gemm_need(void *s, int threads) { return pt_sgemm_f32_scratch_bytes(&((gemm_case *)s)->p, threads); }

/* pt_sgemm_f32, and (checked here) the same product from a B packed once by
 * pt_sgemm_f32_pack_b, and from A and B both packed once, which must be
 * bitwise equal. */
static pt_status gemm_call(const pt_ctx *ctx, void *s, float *out)
{
    gemm_case *g = (gemm_case *)s;
    size_t c_len = (size_t)g->p.m * g->p.ldc;
    memcpy(out, g->c0, c_len * sizeof(float));
    pt_status st = pt_sgemm_f32(ctx, &g->p, g->a, g->b, g->bias, out);
    float *packed = alloc_floats(pt_sgemm_f32_packed_b_bytes(&g->p) / sizeof(float));
    float *again = alloc_floats(c_len);
    memcpy(again, g->c0, c_len * sizeof(float));
    PT_CHECK(pt_sgemm_f32_pack_b(&g->p, g->b, packed) == PT_OK, "pack_b");
    PT_CHECK(pt_sgemm_f32_packed(ctx, &g->p, g->a, packed, g->bias, again) == PT_OK, "packed gemm");
    PT_CHECK(pt_first_bit_diff(out, again, c_len) < 0, "m=%d n=%d k=%d ta=%d tb=%d: packed B != packing B",
             g->p.m, g->p.n, g->p.k, g->p.trans_a, g->p.trans_b);
    float *packed_a = alloc_floats(pt_sgemm_f32_packed_a_bytes(&g->p) / sizeof(float));
    memcpy(again, g->c0, c_len * sizeof(float));
    PT_CHECK(pt_sgemm_f32_pack_a(&g->p, g->a, packed_a) == PT_OK, "pack_a");
    PT_CHECK(pt_sgemm_f32_packed_ab(ctx, &g->p, packed_a, packed, g->bias, again) == PT_OK, "packed a, b gemm");
    PT_CHECK(pt_first_bit_diff(out, again, c_len) < 0, "m=%d n=%d k=%d ta=%d tb=%d: packed A, B != packing",
             g->p.m, g->p.n, g->p.k, g->p.trans_a, g->p.trans_b);
    free(packed_a);
    free(packed);
    free(again);
    return st;
}

static void test_sgemm(void)
{
    static const int dims[][3] = {{1, 1, 1}, {5, 7, 3}, {13, 33, 257}, {37, 70, 300},
                                  {64, 513, 31}, {100, 17, 600}};
    pt_rng r = {777u};
    for (size_t d = 0; d < sizeof(dims) / sizeof(dims[0]); ++d)
        for (int variant = 0; variant < 8; ++variant) {
            int m = dims[d][0], n = dims[d][1], k = dims[d][2];
            int ta = variant & 1, tb = (variant >> 1) & 1, acc = (variant >> 2) & 1;
            pt_gemm_params p = {m, n, k, ta, tb, (ta ? m : k) + 1, (tb ? k : n) + 2, n + 3, acc, PT_ACT_NONE};
            size_t a_len = (size_t)(ta ? k : m) * p.lda, b_len = (size_t)(tb ? n : k) * p.ldb;
            size_t c_len = (size_t)m * p.ldc;
            float *a = random_floats(&r, a_len), *b = random_floats(&r, b_len);
            float *bias = random_floats(&r, (size_t)n), *c0 = random_floats(&r, c_len);
            float *ref = alloc_floats(c_len);
            memcpy(ref, c0, c_len * sizeof(float));
            const float *use_bias = acc ? NULL : bias;
            PT_CHECK(pt_sgemm_f32_ref(&p, a, b, use_bias, ref) == PT_OK, "ref");
            gemm_case g = {p, a, b, use_bias, c0};
            char what[96];
            snprintf(what, sizeof what, "sgemm m=%d n=%d k=%d ta=%d tb=%d acc=%d", m, n, k, ta, tb, acc);
            check_all(what, c_len, ref, (size_t)k, gemm_need, gemm_call, &g);
            free(a); free(b); free(bias); free(c0); free(ref);
        }
}

/* ----------------------------------------------------------------- conv2d */
typedef struct conv_case {
    pt_conv_params p;
    int kind;      /* 0 fwd, 1 bwd_input, 2 bwd_weight (grad_w then grad_b in out) */
    int pointwise;
    const float *x, *w, *b, *gy;
    size_t w_len;
} conv_case;

static size_t conv_need(void *s, int threads)
{
    conv_case *c = (conv_case *)s;
    if (c->pointwise)
        return c->kind == 0 ? pt_pointwise_f32_fwd_scratch_bytes(&c->p, threads)
             : c->kind == 1 ? pt_pointwise_f32_bwd_input_scratch_bytes(&c->p, threads)
                            : pt_pointwise_f32_bwd_weight_scratch_bytes(&c->p, threads);
    return c->kind == 0 ? pt_conv2d_f32_fwd_scratch_bytes(&c->p, threads)
         : c->kind == 1 ? pt_conv2d_f32_bwd_input_scratch_bytes(&c->p, threads)
                        : pt_conv2d_f32_bwd_weight_scratch_bytes(&c->p, threads);
}

static pt_status conv_call(const pt_ctx *ctx, void *s, float *out)
{
    conv_case *c = (conv_case *)s;
    if (c->pointwise)
        return c->kind == 0 ? pt_pointwise_f32_fwd(ctx, &c->p, c->x, c->w, c->b, out)
             : c->kind == 1 ? pt_pointwise_f32_bwd_input(ctx, &c->p, c->w, c->gy, out)
                            : pt_pointwise_f32_bwd_weight(ctx, &c->p, c->x, c->gy, out, out + c->w_len);
    return c->kind == 0 ? pt_conv2d_f32_fwd(ctx, &c->p, c->x, c->w, c->b, out)
         : c->kind == 1 ? pt_conv2d_f32_bwd_input(ctx, &c->p, c->w, c->gy, out)
                        : pt_conv2d_f32_bwd_weight(ctx, &c->p, c->x, c->gy, out, out + c->w_len);
}

static pt_status conv_ref(conv_case *c, float *out)
{
    if (c->pointwise)
        return c->kind == 0 ? pt_pointwise_f32_fwd_ref(&c->p, c->x, c->w, c->b, out)
             : c->kind == 1 ? pt_pointwise_f32_bwd_input_ref(&c->p, c->w, c->gy, out)
                            : pt_pointwise_f32_bwd_weight_ref(&c->p, c->x, c->gy, out, out + c->w_len);
    return c->kind == 0 ? pt_conv2d_f32_fwd_ref(&c->p, c->x, c->w, c->b, out)
         : c->kind == 1 ? pt_conv2d_f32_bwd_input_ref(&c->p, c->w, c->gy, out)
                        : pt_conv2d_f32_bwd_weight_ref(&c->p, c->x, c->gy, out, out + c->w_len);
}

static void test_conv_case(pt_rng *r, pt_conv_params p, int pointwise)
{
    int oh = pt_out_extent(p.in.h, p.kh, p.stride_h, p.pad_top, p.pad_bottom);
    int ow = pt_out_extent(p.in.w, p.kw, p.stride_w, p.pad_left, p.pad_right);
    size_t x_len = pt_dims_count(p.in), w_len = (size_t)p.out_c * p.kh * p.kw * p.in.c;
    size_t y_len = (size_t)p.in.n * oh * ow * p.out_c;
    float *x = random_floats(r, x_len), *w = random_floats(r, w_len);
    float *b = random_floats(r, (size_t)p.out_c), *gy = random_floats(r, y_len);
    static const char *kinds[] = {"fwd", "bwd_input", "bwd_weight"};
    for (int kind = 0; kind < 3; ++kind) {
        conv_case c = {p, kind, pointwise, x, w, b, gy, w_len};
        size_t n = kind == 0 ? y_len : kind == 1 ? x_len : w_len + (size_t)p.out_c;
        float *ref = alloc_floats(n);
        PT_CHECK(conv_ref(&c, ref) == PT_OK, "ref");
        char what[160];
        snprintf(what, sizeof what, "%s %s n=%d %dx%dx%d->%d k=%dx%d s=%d,%d pad=%d,%d,%d,%d",
                 pointwise ? "pointwise" : "conv2d", kinds[kind], p.in.n, p.in.h, p.in.w, p.in.c,
                 p.out_c, p.kh, p.kw, p.stride_h, p.stride_w, p.pad_top, p.pad_bottom, p.pad_left,
                 p.pad_right);
        size_t depth = kind == 0 ? w_len / (size_t)p.out_c
                     : kind == 1 ? (size_t)p.out_c * p.kh * p.kw : y_len / (size_t)p.out_c;
        check_all(what, n, ref, depth, conv_need, conv_call, &c);
        free(ref);
    }
    free(x); free(w); free(b); free(gy);
}

/* Side of a 4-image, 32-channel, 3x3 conv whose im2col exceeds the chunk
 * budget (64 for the default 2^22 floats; a build with a smaller
 * PT_CONV2D_COLS_BUDGET_FLOATS sets a smaller side and stays fast). */
#ifndef PT_TEST_CHUNKED_CONV_HW
#define PT_TEST_CHUNKED_CONV_HW 64
#endif

static void test_conv(void)
{
    pt_rng r = {4242u};
    /* in{n,h,w,c}, out_c, kh, kw, sh, sw, pads t,b,l,r */
    static const pt_conv_params cases[] = {
        {{2, 7, 6, 3}, 5, 3, 3, 1, 1, 1, 1, 1, 1},
        {{3, 9, 8, 17}, 33, 3, 3, 2, 2, 0, 1, 0, 1},
        {{1, 5, 5, 4}, 6, 5, 3, 1, 2, 2, 1, 0, 3},
        {{2, 1, 1, 7}, 9, 1, 1, 1, 1, 0, 0, 0, 0},
        {{2, 1, 1, 3}, 4, 3, 3, 1, 1, 1, 1, 1, 1},
        {{4, 4, 3, 40}, 13, 1, 1, 2, 1, 0, 0, 0, 0},
        {{1, 6, 6, 300}, 3, 2, 2, 2, 2, 0, 0, 0, 0},
        /* im2col of 4 images exceeds the chunk budget: several chunks */
        {{4, PT_TEST_CHUNKED_CONV_HW, PT_TEST_CHUNKED_CONV_HW, 32}, 8, 3, 3, 1, 1, 1, 1, 1, 1},
    };
    /* The im2col part of the scratch grows with the images per chunk, the
     * rest does not: fewer than 4 images per chunk means several chunks. */
    pt_conv_params chunked = cases[sizeof(cases) / sizeof(cases[0]) - 1], one_image = chunked;
    one_image.in.n = 1;
    size_t image_cols = (size_t)PT_TEST_CHUNKED_CONV_HW * PT_TEST_CHUNKED_CONV_HW * 9 * 32 * sizeof(float);
    PT_CHECK(pt_conv2d_f32_fwd_scratch_bytes(&chunked, 1) <
                 pt_conv2d_f32_fwd_scratch_bytes(&one_image, 1) + 3 * image_cols,
             "the chunked case really takes several im2col chunks");
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); ++i) test_conv_case(&r, cases[i], 0);
    static const pt_conv_params pw[] = {
        {{2, 3, 5, 7}, 11, 1, 1, 1, 1, 0, 0, 0, 0},
        {{1, 1, 1, 1}, 1, 1, 1, 1, 1, 0, 0, 0, 0},
        {{3, 8, 8, 35}, 70, 1, 1, 1, 1, 0, 0, 0, 0},
    };
    for (size_t i = 0; i < sizeof(pw) / sizeof(pw[0]); ++i) test_conv_case(&r, pw[i], 1);
}

/* ---------------------------------------------------------------- linear */
static void test_linear(void)
{
    pt_rng r = {99u};
    static const pt_linear_params cases[] = {{1, 1, 1}, {7, 19, 5}, {128, 64, 50}, {3, 300, 33}};
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); ++i) {
        /* a linear layer is a pointwise conv over a 1x1 map */
        pt_linear_params lp = cases[i];
        pt_conv_params p = {{lp.batch, 1, 1, lp.in_features}, lp.out_features, 1, 1, 1, 1, 0, 0, 0, 0};
        float *x = random_floats(&r, (size_t)lp.batch * lp.in_features);
        float *w = random_floats(&r, (size_t)lp.out_features * lp.in_features);
        float *b = random_floats(&r, (size_t)lp.out_features);
        size_t y_len = (size_t)lp.batch * lp.out_features;
        float *y = alloc_floats(y_len), *y_pw = alloc_floats(y_len);
        pt_ctx ctx = ctx_for(&scratch, 2, pt_linear_f32_fwd_scratch_bytes(&lp, 2));
        PT_CHECK(pt_linear_f32_fwd(&ctx, &lp, x, w, b, y) == PT_OK, "linear fwd");
        ctx = ctx_for(&scratch, 2, pt_pointwise_f32_fwd_scratch_bytes(&p, 2));
        PT_CHECK(pt_pointwise_f32_fwd(&ctx, &p, x, w, b, y_pw) == PT_OK, "pointwise fwd");
        PT_CHECK(pt_first_bit_diff(y, y_pw, y_len) < 0, "linear == pointwise on a 1x1 map");
        free(x); free(w); free(b); free(y); free(y_pw);
        test_conv_case(&r, p, 1);
    }
}

/* The grad-weight GEMM sums grad-bias from its packed panels of grad_y:
 * bitwise the column sums in row order (pt_colsum_f32's chain), for every ISA
 * and thread count: one or several K blocks, one or two column blocks of C,
 * few rows of C (columns split between cores), ragged panels. */
static void test_linear_grad_bias(void)
{
    static const pt_linear_params cases[] = {
        {1, 1, 1}, {7, 19, 5}, {1100, 40, 50}, {600, 1030, 37}, {130, 700, 1024}, {2048, 64, 13}};
    pt_rng r = {123u};
    pt_gemm_isa saved = pt_gemm_get_isa();
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; ++c) {
        pt_linear_params lp = cases[c];
        const size_t rows = (size_t)lp.batch, outs = (size_t)lp.out_features;
        float *x = random_floats(&r, rows * (size_t)lp.in_features), *gy = random_floats(&r, rows * outs);
        float *gw = alloc_floats(outs * (size_t)lp.in_features), *gb = alloc_floats(outs);
        float *want = alloc_floats(outs);
        for (size_t j = 0; j < outs; ++j) want[j] = 0.0f;
        for (size_t i = 0; i < rows; ++i)
            for (size_t j = 0; j < outs; ++j) want[j] += gy[i * outs + j];
        for (int isa = 0; isa < PT_GEMM_ISA_COUNT; ++isa)
            for (int t = 0; t < PT_TEST_NUM_THREADS; ++t) {
                if (pt_gemm_set_isa((pt_gemm_isa)isa) != PT_OK) continue;
                int threads = pt_test_threads[t];
                pt_ctx ctx = ctx_for(&scratch, threads, pt_linear_f32_bwd_weight_scratch_bytes(&lp, threads));
                for (size_t j = 0; j < outs; ++j) gb[j] = NAN;
                PT_CHECK(pt_linear_f32_bwd_weight(&ctx, &lp, x, gy, gw, gb) == PT_OK, "bwd_weight");
                PT_CHECK(pt_first_bit_diff(want, gb, outs) < 0, "batch %d in %d out %d isa %s threads %d: "
                         "grad_b != the column sums in row order", lp.batch, lp.in_features,
                         lp.out_features, pt_gemm_isa_name((pt_gemm_isa)isa), threads);
            }
        free(x); free(gy); free(gw); free(gb); free(want);
    }
    pt_gemm_set_isa(saved);
}

/* ------------------------------------------------------- bad arguments */
static void test_bad_args(void)
{
    pt_conv_params p = {{2, 6, 6, 4}, 8, 3, 3, 2, 2, 1, 1, 1, 1};
    float x[2 * 6 * 6 * 4], w[8 * 3 * 3 * 4], gy[2 * 3 * 3 * 8], y[2 * 3 * 3 * 8], gb[8];
    memset(x, 0, sizeof x); memset(w, 0, sizeof w); memset(gy, 0, sizeof gy);
    size_t need = pt_conv2d_f32_fwd_scratch_bytes(&p, 2);
    PT_CHECK(need > 0, "fwd scratch > 0");
    pt_ctx ctx = ctx_for(&scratch, 2, need);
    PT_CHECK(pt_conv2d_f32_fwd(NULL, &p, x, w, NULL, y) == PT_ERR_NULL, "NULL ctx");
    pt_ctx zero = {0, scratch.mem, need};
    PT_CHECK(pt_conv2d_f32_fwd(&zero, &p, x, w, NULL, y) == PT_ERR_THREADS, "0 threads");
    PT_CHECK(pt_conv2d_f32_fwd(&ctx, &p, NULL, w, NULL, y) == PT_ERR_NULL, "NULL x");
    PT_CHECK(pt_conv2d_f32_bwd_input(&ctx, &p, w, gy, NULL) == PT_ERR_NULL, "NULL grad_x");
    pt_conv_params bad = p;
    bad.stride_h = 0;
    PT_CHECK(pt_conv2d_f32_fwd(&ctx, &bad, x, w, NULL, y) == PT_ERR_PARAM, "stride 0");
    bad = p; bad.pad_left = -1;
    PT_CHECK(pt_conv2d_f32_fwd(&ctx, &bad, x, w, NULL, y) == PT_ERR_PARAM, "negative pad");
    bad = p; bad.kh = 9;
    PT_CHECK(pt_conv2d_f32_fwd(&ctx, &bad, x, w, NULL, y) == PT_ERR_SHAPE, "kernel > padded input");
    bad = p; bad.in.c = 0;
    PT_CHECK(pt_conv2d_f32_fwd(&ctx, &bad, x, w, NULL, y) == PT_ERR_SHAPE, "zero channels");
    bad = p; bad.in.n = 1 << 20; bad.in.h = 1 << 12;
    PT_CHECK(pt_conv2d_f32_fwd(&ctx, &bad, x, w, NULL, y) == PT_ERR_OVERFLOW, "overflow");
    PT_CHECK(pt_pointwise_f32_fwd(&ctx, &p, x, w, NULL, y) == PT_ERR_PARAM, "pointwise with a 3x3 kernel");

    /* scratch one byte short: PT_ERR_SCRATCH and nothing written */
    for (int kind = 0; kind < 3; ++kind) {
        size_t n = kind == 0 ? pt_conv2d_f32_fwd_scratch_bytes(&p, 2)
                 : kind == 1 ? pt_conv2d_f32_bwd_input_scratch_bytes(&p, 2)
                             : pt_conv2d_f32_bwd_weight_scratch_bytes(&p, 2);
        pt_ctx small = ctx_for(&scratch, 2, n);
        small.scratch_bytes = n - 1;
        float out[2 * 6 * 6 * 4];
        for (size_t i = 0; i < sizeof out / sizeof out[0]; ++i) out[i] = 7.0f;
        for (size_t i = 0; i < 8; ++i) gb[i] = 7.0f;
        pt_status st = kind == 0 ? pt_conv2d_f32_fwd(&small, &p, x, w, NULL, out)
                     : kind == 1 ? pt_conv2d_f32_bwd_input(&small, &p, w, gy, out)
                                 : pt_conv2d_f32_bwd_weight(&small, &p, x, gy, out, gb);
        int untouched = 1;
        for (size_t i = 0; i < sizeof out / sizeof out[0]; ++i) untouched &= out[i] == 7.0f;
        for (size_t i = 0; i < 8; ++i) untouched &= gb[i] == 7.0f;
        PT_CHECK(st == PT_ERR_SCRATCH && untouched, "conv kind %d: short scratch gives %d", kind, st);
        small.scratch = NULL;
        small.scratch_bytes = n;
        PT_CHECK(pt_conv2d_f32_fwd(&small, &p, x, w, NULL, out) == PT_ERR_SCRATCH, "NULL scratch");
    }
    pt_linear_params lp = {4, 300, 50};
    size_t lneed = pt_linear_f32_bwd_weight_scratch_bytes(&lp, 3);
    pt_ctx lctx = ctx_for(&scratch, 3, lneed);
    lctx.scratch_bytes = lneed - 1;
    float *gw = alloc_floats(300 * 50), lx[4 * 300] = {0}, lgy[4 * 50] = {0};
    for (size_t i = 0; i < 300 * 50; ++i) gw[i] = 7.0f;
    PT_CHECK(pt_linear_f32_bwd_weight(&lctx, &lp, lx, lgy, gw, gb) == PT_ERR_SCRATCH, "linear short scratch");
    PT_CHECK(gw[0] == 7.0f && gw[300 * 50 - 1] == 7.0f, "linear grad_w untouched");
    lctx.scratch_bytes = lneed;
    pt_linear_params lbad = {0, 3, 3};
    PT_CHECK(pt_linear_f32_fwd(&lctx, &lbad, lx, gw, NULL, gw) == PT_ERR_SHAPE, "zero batch");
    free(gw);

    pt_gemm_params gp = {4, 4, 4, 0, 0, 4, 4, 4, 1, PT_ACT_NONE};
    float a[16] = {0}, c[16] = {0};
    pt_ctx gctx = ctx_for(&scratch, 1, pt_sgemm_f32_scratch_bytes(&gp, 1));
    PT_CHECK(pt_sgemm_f32(&gctx, &gp, a, a, a, c) == PT_ERR_PARAM, "bias with accumulate");
    gp.accumulate = 0; gp.lda = 3;
    PT_CHECK(pt_sgemm_f32(&gctx, &gp, a, a, NULL, c) == PT_ERR_SHAPE, "lda too small");
    gp.lda = 4; gp.trans_b = 2;
    PT_CHECK(pt_sgemm_f32(&gctx, &gp, a, a, NULL, c) == PT_ERR_PARAM, "trans_b 2");
    PT_CHECK(pt_gemm_set_isa((pt_gemm_isa)PT_GEMM_ISA_COUNT) == PT_ERR_PARAM, "isa out of range");
    PT_CHECK(pt_gemm_isa_supported(PT_GEMM_ISA_GENERIC), "generic always supported");
}

/* C = act(A B^T + bias) fused into the last K block of each tile: bitwise the
 * unfused GEMM followed by pt_relu*_fwd, for every ISA variant and thread
 * count, with K inside one block and across several. */
static void test_fused_act(void)
{
    static const int dims[][3] = {{37, 45, 29}, {70, 530, 17}, {64, 512, 64}, {33, 1100, 40}};
    pt_rng r = {77u};
    pt_gemm_isa saved = pt_gemm_get_isa();
    for (size_t d = 0; d < sizeof dims / sizeof dims[0]; ++d) {
        int m = dims[d][0], k = dims[d][1], n = dims[d][2];
        float *a = random_floats(&r, (size_t)m * k), *b = random_floats(&r, (size_t)n * k);
        float *bias = random_floats(&r, (size_t)n);
        float *plain = alloc_floats((size_t)m * n), *want = alloc_floats((size_t)m * n);
        float *got = alloc_floats((size_t)m * n), *ref = alloc_floats((size_t)m * n);
        for (size_t i = 0; i < (size_t)m * k; ++i) a[i] *= 3.0f;   /* outputs beyond 6 and below 0 */
        pt_gemm_params p = {m, n, k, 0, 1, k, k, n, 0, PT_ACT_NONE};
        for (int act = PT_ACT_RELU; act <= PT_ACT_RELU6; ++act) {
            pt_gemm_params q = p;
            q.act = act;
            PT_CHECK(pt_sgemm_f32_ref(&q, a, b, bias, ref) == PT_OK, "ref with act");
            for (int isa = 0; isa < PT_GEMM_ISA_COUNT; ++isa) {
                if (!pt_gemm_isa_supported((pt_gemm_isa)isa)) continue;
                pt_gemm_set_isa((pt_gemm_isa)isa);
                for (int t = 0; t < PT_TEST_NUM_THREADS; ++t) {
                    int threads = pt_test_threads[t];
                    pt_ctx ctx = ctx_for(&scratch, threads, pt_sgemm_f32_scratch_bytes(&p, threads));
                    PT_CHECK(pt_sgemm_f32(&ctx, &p, a, b, bias, plain) == PT_OK, "plain");
                    pt_ctx ectx = {threads, NULL, 0};
                    pt_status st = act == PT_ACT_RELU6 ? pt_relu6_f32_fwd(&ectx, (size_t)m * n, plain, want)
                                                       : pt_relu_f32_fwd(&ectx, (size_t)m * n, plain, want);
                    PT_CHECK(st == PT_OK, "relu");
                    PT_CHECK(pt_sgemm_f32(&ctx, &q, a, b, bias, got) == PT_OK, "fused");
                    PT_CHECK(pt_first_bit_diff(want, got, (size_t)m * n) < 0,
                             "%dx%dx%d act %d isa %s threads %d: fused != unfused", m, n, k, act,
                             pt_gemm_isa_name((pt_gemm_isa)isa), threads);
                }
            }
            /* backward through the activation: grad_x = (0 < x < cap) ? grad_y w : 0,
             * x being `want` (an activation output, so both ends occur), with
             * a NaN and a -0 among them, for every ISA variant */
            pt_linear_params lp = {m, n, k};      /* grad_x [m, n] = grad_y [m, k] w [k, n] */
            float *gy = a, *wt = b, *gx = plain, *gx_fused = got;
            want[0] = NAN;
            want[(size_t)m * n - 1] = -0.0f;
            for (int isa = 0; isa < PT_GEMM_ISA_COUNT; ++isa)
            for (int t = 0; t < PT_TEST_NUM_THREADS; ++t) {
                if (!pt_gemm_isa_supported((pt_gemm_isa)isa)) continue;
                pt_gemm_set_isa((pt_gemm_isa)isa);
                int threads = pt_test_threads[t];
                pt_ctx ctx = ctx_for(&scratch, threads, pt_linear_f32_bwd_input_scratch_bytes(&lp, threads));
                PT_CHECK(pt_linear_f32_bwd_input(&ctx, &lp, wt, gy, gx) == PT_OK, "bwd_input");
                pt_ctx ectx = {threads, NULL, 0};
                float *masked = alloc_floats((size_t)m * n);
                pt_status st = act == PT_ACT_RELU6 ? pt_relu6_f32_bwd(&ectx, (size_t)m * n, want, gx, masked)
                                                   : pt_relu_f32_bwd(&ectx, (size_t)m * n, want, gx, masked);
                PT_CHECK(st == PT_OK, "relu bwd");
                st = pt_linear_f32_bwd_input_act(&ctx, &lp, (pt_act)act, wt, gy, want, gx_fused);
                PT_CHECK(st == PT_OK, "fused bwd status %d", st);
                PT_CHECK(pt_first_bit_diff(masked, gx_fused, (size_t)m * n) < 0,
                         "%dx%dx%d act %d isa %s threads %d: fused grad_x != unfused", m, n, k, act,
                         pt_gemm_isa_name((pt_gemm_isa)isa), threads);
                free(masked);
            }
            /* the reference twin applies the same clamp */
            size_t outside = 0;
            for (size_t i = 0; i < (size_t)m * n; ++i)
                outside += !(ref[i] >= 0.0f && (act == PT_ACT_RELU || ref[i] <= 6.0f));
            PT_CHECK(outside == 0, "ref: %zu values outside the activation's range", outside);
        }
        free(a); free(b); free(bias); free(plain); free(want); free(got); free(ref);
    }
    pt_gemm_set_isa(saved);
    float a1[4] = {1, 2, 3, 4}, c1[4];
    pt_gemm_params bad = {2, 2, 1, 0, 0, 1, 2, 2, 1, PT_ACT_RELU6};
    pt_ctx ctx = ctx_for(&scratch, 1, pt_sgemm_f32_scratch_bytes(&bad, 1));
    PT_CHECK(pt_sgemm_f32(&ctx, &bad, a1, a1, NULL, c1) == PT_ERR_PARAM, "act with accumulate");
    bad.accumulate = 0;
    bad.act = 3;
    PT_CHECK(pt_sgemm_f32(&ctx, &bad, a1, a1, NULL, c1) == PT_ERR_PARAM, "unknown act");
}

int main(void)
{
    pt_gemm_isa best = pt_gemm_get_isa();
    printf("ISA in use: %s; testing:", pt_gemm_isa_name(best));
    for (int isa = 0; isa < PT_GEMM_ISA_COUNT; ++isa)
        if (pt_gemm_isa_supported((pt_gemm_isa)isa)) printf(" %s", pt_gemm_isa_name((pt_gemm_isa)isa));
    printf("\n");
    test_sgemm();
    test_conv();
    test_linear();
    test_linear_grad_bias();
    test_fused_act();
    test_bad_args();
    free(scratch.mem);
    return pt_test_finish("test_gemm");
}
