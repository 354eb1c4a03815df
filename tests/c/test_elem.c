/* Non-GEMM FP32 kernels (depthwise, pooling, channel affine, softmax
 * cross-entropy, SGD) vs their reference twins: bitwise for every thread
 * count, on shapes around the channel-block and window edges; plus the
 * statuses of bad arguments and a direct check of a few hand-computed values. */
#include "pt_test.h"
#include "pulptrain/pulptrain.h"

#define CAP 60000

static float x[CAP], w[CAP], b[CAP], gy[CAP], out_ref[CAP], out_opt[CAP], gb_ref[CAP], gb_opt[CAP];

static void fill(pt_rng *r)
{
    pt_fill_uniform(r, x, CAP, -2.0f, 2.0f);
    pt_fill_uniform(r, w, CAP, -1.0f, 1.0f);
    pt_fill_uniform(r, b, CAP, -1.0f, 1.0f);
    pt_fill_uniform(r, gy, CAP, -1.0f, 1.0f);
}

/* ------------------------------------------------------------- depthwise */
typedef struct dw_case {
    int n, h, w, c, kh, kw, sh, sw, pt, pb, pl, pr;
} dw_case;

static const dw_case dw_cases[] = {
    {2, 8, 8, 64, 3, 3, 1, 1, 1, 1, 1, 1},     /* MobileNet-like, full blocks */
    {3, 7, 9, 45, 3, 3, 2, 2, 0, 1, 0, 1},     /* stride 2, TF "same", block + tail */
    {1, 5, 6, 33, 3, 2, 2, 1, 2, 0, 1, 3},     /* asymmetric everything */
    {2, 1, 1, 17, 3, 3, 1, 1, 1, 1, 1, 1},     /* 1-pixel map, only the centre tap */
    {4, 4, 4, 3, 1, 1, 1, 1, 0, 0, 0, 0},      /* 1x1 kernel, few channels */
    {1, 9, 9, 8, 5, 5, 3, 2, 2, 2, 2, 2},      /* stride > 1 both ways, big window */
    {2, 6, 6, 160, 3, 3, 1, 2, 1, 1, 0, 0},    /* 128-channel block + 32 */
    {1, 3, 4, 275, 2, 3, 1, 1, 0, 1, 2, 0},    /* 2 x 128 + a 16-block + 3 single channels */
    {2, 5, 7, 48, 3, 3, 1, 1, 1, 1, 1, 1},     /* 3x3 grad-weight: a 32-block and a 16-block */
    {2, 6, 13, 48, 3, 3, 1, 1, 1, 1, 1, 1},    /* 3x3 rows: groups of 4 interior pixels, then singles */
    {1, 5, 16, 32, 3, 3, 2, 2, 1, 1, 1, 1},    /* stride 2, symmetric padding, 4-pixel groups */
    {1, 4, 11, 16, 3, 3, 1, 1, 0, 0, 0, 0},    /* 3x3 without padding: every pixel interior */
    {1, 4, 10, 32, 3, 3, 1, 1, 2, 0, 2, 0},    /* 3x3 padded on one side only, by 2 */
    {1, 3, 2, 16, 3, 3, 2, 2, 1, 1, 1, 1},     /* narrower than the window: no interior pixel */
    {1, 4, 3, 16, 3, 3, 1, 1, 1, 1, 1, 1},     /* whole padded rows of 3, 4 and 5 outputs, */
    {2, 3, 4, 32, 3, 3, 1, 1, 1, 1, 1, 1},     /*   each one group with its two edges */
    {1, 5, 5, 48, 3, 3, 1, 1, 1, 1, 1, 1},
};

static pt_conv_params dw_params(const dw_case *k)
{
    pt_conv_params p = {{k->n, k->h, k->w, k->c}, k->c, k->kh, k->kw, k->sh, k->sw,
                        k->pt, k->pb, k->pl, k->pr};
    return p;
}

static void test_depthwise_case(const dw_case *k)
{
    pt_conv_params p = dw_params(k);
    int oh = pt_out_extent(k->h, k->kh, k->sh, k->pt, k->pb);
    int ow = pt_out_extent(k->w, k->kw, k->sw, k->pl, k->pr);
    size_t in_count = (size_t)k->n * k->h * k->w * k->c;
    size_t out_count = (size_t)k->n * oh * ow * k->c;
    size_t w_count = (size_t)k->kh * k->kw * k->c;
    PT_CHECK(in_count <= CAP && out_count <= CAP, "case fits the buffers");
    for (int with_bias = 0; with_bias < 2; ++with_bias) {
        const float *bias = with_bias ? b : NULL;
        PT_CHECK(pt_depthwise_f32_fwd_ref(&p, x, w, bias, out_ref) == PT_OK, "fwd ref");
        for (int t = 0; t < PT_TEST_NUM_THREADS; ++t) {
            pt_ctx ctx = {pt_test_threads[t], NULL, 0};
            PT_CHECK(pt_depthwise_f32_fwd(&ctx, &p, x, w, bias, out_opt) == PT_OK, "fwd");
            PT_CHECK(pt_first_bit_diff(out_opt, out_ref, out_count) < 0,
                     "dw fwd c=%d stride=%d threads=%d bias=%d", k->c, k->sh, ctx.num_threads, with_bias);
        }
    }
    PT_CHECK(pt_depthwise_f32_bwd_input_ref(&p, w, gy, out_ref) == PT_OK, "bwd input ref");
    PT_CHECK(pt_depthwise_f32_bwd_weight_ref(&p, x, gy, gb_ref, gb_ref + w_count) == PT_OK, "bwd w ref");
    for (int t = 0; t < PT_TEST_NUM_THREADS; ++t) {
        pt_ctx ctx = {pt_test_threads[t], NULL, 0};
        PT_CHECK(pt_depthwise_f32_bwd_input(&ctx, &p, w, gy, out_opt) == PT_OK, "bwd input");
        PT_CHECK(pt_first_bit_diff(out_opt, out_ref, in_count) < 0,
                 "dw bwd input c=%d threads=%d", k->c, ctx.num_threads);
        PT_CHECK(pt_depthwise_f32_bwd_weight(&ctx, &p, x, gy, gb_opt, gb_opt + w_count) == PT_OK, "bwd w");
        PT_CHECK(pt_first_bit_diff(gb_opt, gb_ref, w_count + (size_t)k->c) < 0,
                 "dw bwd weight c=%d threads=%d", k->c, ctx.num_threads);
        PT_CHECK(pt_depthwise_f32_bwd_weight(&ctx, &p, x, gy, gb_opt, NULL) == PT_OK, "bwd w, no bias");
        PT_CHECK(pt_first_bit_diff(gb_opt, gb_ref, w_count) < 0, "dw bwd weight without bias");
        /* the batch in two calls, the second continuing the first's sums */
        for (int split = 1; split < k->n; ++split) {
            pt_conv_params lo = p, hi = p;
            lo.in.n = split;
            hi.in.n = k->n - split;
            size_t in_img = (size_t)k->h * k->w * k->c, out_img = (size_t)oh * ow * k->c;
            PT_CHECK(pt_depthwise_f32_bwd_weight(&ctx, &lo, x, gy, gb_opt, gb_opt + w_count) == PT_OK, "first part");
            PT_CHECK(pt_depthwise_f32_bwd_weight_acc(&ctx, &hi, x + split * in_img, gy + split * out_img, gb_opt,
                                                     gb_opt + w_count) == PT_OK, "rest, accumulated");
            PT_CHECK(pt_first_bit_diff(gb_opt, gb_ref, w_count + (size_t)k->c) < 0,
                     "dw bwd weight in two calls split=%d c=%d threads=%d", split, k->c, ctx.num_threads);
        }
        /* both gradients at once: bitwise the two kernels */
        PT_CHECK(pt_depthwise_f32_bwd(&ctx, &p, PT_ACT_NONE, w, x, gy, out_opt, gb_opt, gb_opt + w_count) == PT_OK,
                 "bwd both");
        PT_CHECK(pt_first_bit_diff(out_opt, out_ref, in_count) < 0, "dw bwd both: grad_x c=%d threads=%d", k->c,
                 ctx.num_threads);
        PT_CHECK(pt_first_bit_diff(gb_opt, gb_ref, w_count + (size_t)k->c) < 0, "dw bwd both: grad_w c=%d", k->c);
    }
}

/* A 1-channel 3x3 input, 2x2 kernel, stride 1, no padding, worked by hand. */
static void test_depthwise_by_hand(void)
{
    const float xi[9] = {1, 2, 3, 4, 5, 6, 7, 8, 9};
    const float wi[4] = {1, 0, 0, -1};
    const float bi[1] = {0.5f};
    float y[4];
    pt_conv_params p = {{1, 3, 3, 1}, 1, 2, 2, 1, 1, 0, 0, 0, 0};
    pt_ctx ctx = {2, NULL, 0};
    PT_CHECK(pt_depthwise_f32_fwd(&ctx, &p, xi, wi, bi, y) == PT_OK, "fwd");
    PT_CHECK(y[0] == -3.5f && y[1] == -3.5f && y[2] == -3.5f && y[3] == -3.5f, "x[i] - x[i+4] + 0.5");
}

static void test_depthwise_statuses(void)
{
    pt_conv_params p = dw_params(&dw_cases[0]);
    pt_ctx ctx = {2, NULL, 0};
    PT_CHECK(pt_depthwise_f32_bwd_weight(&ctx, &p, x, gy, NULL, NULL) == PT_ERR_NULL, "NULL grad_w");
    PT_CHECK(pt_depthwise_f32_fwd(NULL, &p, x, w, b, out_opt) == PT_ERR_NULL, "NULL ctx");
    PT_CHECK(pt_depthwise_f32_fwd(&ctx, NULL, x, w, b, out_opt) == PT_ERR_NULL, "NULL params");
    PT_CHECK(pt_depthwise_f32_fwd(&ctx, &p, x, NULL, b, out_opt) == PT_ERR_NULL, "NULL w");
    PT_CHECK(pt_depthwise_f32_bwd_input(&ctx, &p, w, NULL, out_opt) == PT_ERR_NULL, "NULL grad_y");
    pt_ctx no_threads = {0, NULL, 0};
    PT_CHECK(pt_depthwise_f32_fwd(&no_threads, &p, x, w, b, out_opt) == PT_ERR_THREADS, "0 threads");
    pt_conv_params q = p;
    q.stride_h = 0;
    PT_CHECK(pt_depthwise_f32_fwd(&ctx, &q, x, w, b, out_opt) == PT_ERR_PARAM, "stride 0");
    PT_CHECK(pt_depthwise_f32_bwd_weight(&ctx, &q, x, gy, gb_opt, NULL) == PT_ERR_PARAM, "stride 0, grad-weight");
    q = p; q.pad_left = -1;
    PT_CHECK(pt_depthwise_f32_fwd_ref(&q, x, w, b, out_opt) == PT_ERR_PARAM, "negative pad");
    q = p; q.out_c = p.in.c + 1;
    PT_CHECK(pt_depthwise_f32_fwd(&ctx, &q, x, w, b, out_opt) == PT_ERR_SHAPE, "out_c != C");
    q = p; q.kh = 11;
    PT_CHECK(pt_depthwise_f32_bwd_input(&ctx, &q, w, gy, out_opt) == PT_ERR_SHAPE, "window > padded input");
    q = p; q.in.n = 0;
    PT_CHECK(pt_depthwise_f32_fwd(&ctx, &q, x, w, b, out_opt) == PT_ERR_SHAPE, "empty batch");
    q = p; q.in.n = 1 << 30; q.in.h = 1 << 30;
    PT_CHECK(pt_depthwise_f32_fwd(&ctx, &q, x, w, b, out_opt) == PT_ERR_OVERFLOW, "size overflow");
}

/* --------------------------------------------------------------- pooling */
static void test_pool(void)
{
    const pt_pool_params cases[] = {
        {{2, 8, 8, 64}, 2, 2, 2, 2},
        {{3, 7, 5, 19}, 3, 2, 2, 1},     /* overlapping rows, leftover column */
        {{1, 4, 4, 70}, 4, 4, 1, 1},     /* window = map */
        {{2, 9, 9, 5}, 2, 3, 3, 2},      /* pixels no window covers */
    };
    for (size_t ci = 0; ci < sizeof cases / sizeof cases[0]; ++ci) {
        const pt_pool_params *p = &cases[ci];
        int oh = pt_out_extent(p->in.h, p->kh, p->stride_h, 0, 0);
        int ow = pt_out_extent(p->in.w, p->kw, p->stride_w, 0, 0);
        size_t in_count = pt_dims_count(p->in), out_count = (size_t)p->in.n * oh * ow * p->in.c;
        PT_CHECK(pt_avgpool_f32_fwd_ref(p, x, out_ref) == PT_OK, "fwd ref");
        PT_CHECK(pt_avgpool_f32_bwd_ref(p, gy, gb_ref) == PT_OK, "bwd ref");
        for (int t = 0; t < PT_TEST_NUM_THREADS; ++t) {
            pt_ctx ctx = {pt_test_threads[t], NULL, 0};
            PT_CHECK(pt_avgpool_f32_fwd(&ctx, p, x, out_opt) == PT_OK, "fwd");
            PT_CHECK(pt_first_bit_diff(out_opt, out_ref, out_count) < 0, "pool fwd case %zu threads %d", ci, t);
            PT_CHECK(pt_avgpool_f32_bwd(&ctx, p, gy, gb_opt) == PT_OK, "bwd");
            PT_CHECK(pt_first_bit_diff(gb_opt, gb_ref, in_count) < 0, "pool bwd case %zu threads %d", ci, t);
        }
        PT_CHECK(pt_global_avgpool_f32_fwd_ref(p->in, x, out_ref) == PT_OK, "global fwd ref");
        PT_CHECK(pt_global_avgpool_f32_bwd_ref(p->in, gy, gb_ref) == PT_OK, "global bwd ref");
        for (int t = 0; t < PT_TEST_NUM_THREADS; ++t) {
            pt_ctx ctx = {pt_test_threads[t], NULL, 0};
            PT_CHECK(pt_global_avgpool_f32_fwd(&ctx, p->in, x, out_opt) == PT_OK, "global fwd");
            PT_CHECK(pt_first_bit_diff(out_opt, out_ref, (size_t)p->in.n * p->in.c) < 0, "global fwd %zu", ci);
            PT_CHECK(pt_global_avgpool_f32_bwd(&ctx, p->in, gy, gb_opt) == PT_OK, "global bwd");
            PT_CHECK(pt_first_bit_diff(gb_opt, gb_ref, in_count) < 0, "global bwd %zu", ci);
        }
        /* through the activation that made x: bitwise the plain backward
         * followed by pt_relu*_f32_bwd, with x at 0, at 6, NaN and beyond */
        static float act_x[CAP], want[CAP];
        for (size_t i = 0; i < in_count; ++i)
            act_x[i] = i % 7 == 0 ? 0.0f : i % 7 == 1 ? 6.0f : i % 7 == 2 ? NAN : 8.0f * x[i];
        for (int act = PT_ACT_RELU; act <= PT_ACT_RELU6; ++act) {
            pt_ctx one = {1, NULL, 0};
            PT_CHECK((act == PT_ACT_RELU6 ? pt_relu6_f32_bwd(&one, in_count, act_x, gb_ref, want)
                                          : pt_relu_f32_bwd(&one, in_count, act_x, gb_ref, want)) == PT_OK,
                     "relu bwd");
            for (int t = 0; t < PT_TEST_NUM_THREADS; ++t) {
                pt_ctx ctx = {pt_test_threads[t], NULL, 0};
                PT_CHECK(pt_global_avgpool_f32_bwd_input_act(&ctx, p->in, (pt_act)act, gy, act_x, gb_opt) == PT_OK,
                         "global bwd act");
                PT_CHECK(pt_first_bit_diff(gb_opt, want, in_count) < 0, "global bwd act %d case %zu threads %d",
                         act, ci, pt_test_threads[t]);
            }
        }
    }
    /* a 2x2 mean by hand; the uncovered last row/column gets no gradient */
    const float xi[9] = {1, 2, 3, 4, 5, 6, 7, 8, 9};
    const float g1[1] = {4.0f};
    float y[1], gx[9];
    pt_pool_params p = {{1, 3, 3, 1}, 2, 2, 2, 2};
    pt_ctx ctx = {1, NULL, 0};
    PT_CHECK(pt_avgpool_f32_fwd(&ctx, &p, xi, y) == PT_OK && y[0] == 3.0f, "mean of 1 2 4 5");
    PT_CHECK(pt_avgpool_f32_bwd(&ctx, &p, g1, gx) == PT_OK && gx[0] == 1.0f && gx[4] == 1.0f &&
             gx[2] == 0.0f && gx[8] == 0.0f, "spread and uncovered");
    pt_pool_params q = p;
    q.kh = 4;
    PT_CHECK(pt_avgpool_f32_fwd(&ctx, &q, xi, y) == PT_ERR_SHAPE, "window larger than input");
    q = p; q.stride_w = 0;
    PT_CHECK(pt_avgpool_f32_bwd(&ctx, &q, g1, gx) == PT_ERR_PARAM, "stride 0");
    pt_dims empty = {1, 0, 3, 1};
    PT_CHECK(pt_global_avgpool_f32_fwd(&ctx, empty, xi, y) == PT_ERR_SHAPE, "empty map");
    PT_CHECK(pt_global_avgpool_f32_bwd(&ctx, p.in, NULL, gx) == PT_ERR_NULL, "NULL grad_y");
    PT_CHECK(pt_global_avgpool_f32_bwd_input_act(&ctx, p.in, PT_ACT_RELU6, g1, NULL, gx) == PT_ERR_NULL,
             "an activation without x");
    PT_CHECK(pt_global_avgpool_f32_bwd_input_act(&ctx, p.in, (pt_act)3, g1, xi, gx) == PT_ERR_PARAM,
             "unknown activation");
}

/* ---------------------------------------------------------------- affine */
static void test_affine(void)
{
    const pt_dims cases[] = {{2, 8, 8, 64}, {3, 5, 7, 19}, {1, 1, 1, 200}, {5, 3, 3, 1}};
    for (size_t ci = 0; ci < sizeof cases / sizeof cases[0]; ++ci) {
        pt_dims d = cases[ci];
        size_t count = pt_dims_count(d), C = (size_t)d.c;
        PT_CHECK(pt_channel_affine_f32_fwd_ref(d, x, w, b, out_ref) == PT_OK, "fwd ref");
        PT_CHECK(pt_channel_affine_f32_bwd_param_ref(d, x, gy, gb_ref, gb_ref + C) == PT_OK, "param ref");
        for (int t = 0; t < PT_TEST_NUM_THREADS; ++t) {
            pt_ctx ctx = {pt_test_threads[t], NULL, 0};
            PT_CHECK(pt_channel_affine_f32_fwd(&ctx, d, x, w, b, out_opt) == PT_OK, "fwd");
            PT_CHECK(pt_first_bit_diff(out_opt, out_ref, count) < 0, "affine fwd %zu threads %d", ci, t);
            PT_CHECK(pt_channel_affine_f32_bwd_param(&ctx, d, x, gy, gb_opt, gb_opt + C) == PT_OK, "param");
            PT_CHECK(pt_first_bit_diff(gb_opt, gb_ref, 2 * C) < 0, "affine param %zu threads %d", ci, t);
            PT_CHECK(pt_channel_affine_f32_bwd_param(&ctx, d, NULL, gy, NULL, gb_opt + C) == PT_OK, "shift only");
            PT_CHECK(pt_first_bit_diff(gb_opt + C, gb_ref + C, C) < 0, "affine shift-only %zu", ci);
            for (int split = 1; split < d.n; ++split) {   /* the batch in two calls */
                pt_dims lo = d, hi = d;
                lo.n = split;
                hi.n = d.n - split;
                size_t img = (size_t)d.h * d.w * C;
                PT_CHECK(pt_channel_affine_f32_bwd_param(&ctx, lo, x, gy, gb_opt, gb_opt + C) == PT_OK, "first");
                PT_CHECK(pt_channel_affine_f32_bwd_param_acc(&ctx, hi, x + split * img, gy + split * img, gb_opt,
                                                             gb_opt + C) == PT_OK, "rest, accumulated");
                PT_CHECK(pt_first_bit_diff(gb_opt, gb_ref, 2 * C) < 0, "affine param in two calls %zu split %d", ci,
                         split);
            }
        }
        PT_CHECK(pt_channel_affine_f32_bwd_input_ref(d, w, gy, out_ref) == PT_OK, "input ref");
        pt_ctx ctx = {3, NULL, 0};
        PT_CHECK(pt_channel_affine_f32_bwd_input(&ctx, d, w, gy, out_opt) == PT_OK, "input");
        PT_CHECK(pt_first_bit_diff(out_opt, out_ref, count) < 0, "affine grad input %zu", ci);
    }
    pt_ctx ctx = {2, NULL, 0};
    pt_dims d = {1, 2, 2, 0};
    PT_CHECK(pt_channel_affine_f32_fwd(&ctx, d, x, w, b, out_opt) == PT_ERR_SHAPE, "zero channels");
    d.c = 4;
    PT_CHECK(pt_channel_affine_f32_fwd(&ctx, d, x, w, NULL, out_opt) == PT_ERR_NULL, "NULL shift");
    PT_CHECK(pt_channel_affine_f32_bwd_param(&ctx, d, NULL, gy, gb_opt, NULL) == PT_ERR_NULL, "scale needs x");
    PT_CHECK(pt_channel_affine_f32_bwd_param(&ctx, d, x, gy, NULL, NULL) == PT_ERR_NULL, "nothing asked");
}

/* ------------------------------------------------------------------ loss */
static void test_loss(void)
{
    static int32_t labels[600];
    pt_rng r = {777u};
    for (int i = 0; i < 600; ++i) labels[i] = (int32_t)(pt_rng_next(&r) % 10u);
    const int shapes[][2] = {{1, 1}, {7, 3}, {128, 10}, {600, 10}, {5, 1000}};
    for (size_t si = 0; si < sizeof shapes / sizeof shapes[0]; ++si) {
        int n = shapes[si][0], k = shapes[si][1];
        for (int i = 0; i < n; ++i) labels[i] %= k;
        float loss_ref, loss;
        PT_CHECK(pt_softmax_xent_f32_fwd_ref(n, k, x, labels, &loss_ref) == PT_OK, "fwd ref");
        PT_CHECK(pt_softmax_xent_f32_bwd_ref(n, k, x, labels, out_ref) == PT_OK, "bwd ref");
        for (int t = 0; t < PT_TEST_NUM_THREADS; ++t) {
            pt_ctx ctx = {pt_test_threads[t], NULL, 0};
            PT_CHECK(pt_softmax_xent_f32_fwd(&ctx, n, k, x, labels, &loss) == PT_OK, "fwd");
            PT_CHECK(memcmp(&loss, &loss_ref, sizeof loss) == 0, "loss %zu: %g vs %g", si, loss, loss_ref);
            PT_CHECK(pt_softmax_xent_f32_bwd(&ctx, n, k, x, labels, out_opt) == PT_OK, "bwd");
            PT_CHECK(pt_first_bit_diff(out_opt, out_ref, (size_t)n * k) < 0, "xent bwd %zu threads %d", si, t);
        }
    }
    /* two equal logits: loss log 2, gradient +-1/4 */
    const float even[2] = {3.0f, 3.0f};
    int32_t one = 1;
    float loss = 0.0f, g[2];
    pt_ctx ctx = {1, NULL, 0};
    PT_CHECK(pt_softmax_xent_f32_fwd(&ctx, 1, 2, even, &one, &loss) == PT_OK &&
             fabsf(loss - 0.69314718f) < 1e-6f, "log 2, got %g", loss);
    PT_CHECK(pt_softmax_xent_f32_bwd(&ctx, 1, 2, even, &one, g) == PT_OK && g[0] == 0.5f && g[1] == -0.5f,
             "softmax - onehot");
    /* huge logits stay finite (the max is subtracted before exp) */
    const float huge[3] = {1e30f, -1e30f, 0.0f};
    int32_t first = 0;
    PT_CHECK(pt_softmax_xent_f32_fwd(&ctx, 1, 3, huge, &first, &loss) == PT_OK && loss == 0.0f, "no overflow");
    /* out-of-range labels: PT_ERR_RANGE and the output untouched */
    int32_t bad = 2;
    float sentinel = 123.0f;
    g[0] = g[1] = 7.0f;
    PT_CHECK(pt_softmax_xent_f32_fwd(&ctx, 1, 2, even, &bad, &sentinel) == PT_ERR_RANGE && sentinel == 123.0f,
             "label == K");
    bad = -1;
    PT_CHECK(pt_softmax_xent_f32_bwd(&ctx, 1, 2, even, &bad, g) == PT_ERR_RANGE && g[0] == 7.0f, "label < 0");
    PT_CHECK(pt_softmax_xent_f32_bwd_ref(1, 2, even, &bad, g) == PT_ERR_RANGE, "ref: label < 0");
    PT_CHECK(pt_softmax_xent_f32_fwd(&ctx, 0, 2, even, &one, &loss) == PT_ERR_SHAPE, "empty batch");
    PT_CHECK(pt_softmax_xent_f32_fwd(&ctx, 1, 2, even, NULL, &loss) == PT_ERR_NULL, "NULL labels");
}

/* ------------------------------------------------------------------- SGD */
static void test_sgd(void)
{
    const size_t count = 50000;
    static float param_ref[50000], vel_ref[50000], param[50000], vel[50000];
    const pt_sgd_params p = {0.05f, 0.9f, 5e-4f};
    for (int t = 0; t < PT_TEST_NUM_THREADS; ++t) {
        pt_ctx ctx = {pt_test_threads[t], NULL, 0};
        memcpy(param_ref, x, count * sizeof(float));
        memcpy(param, x, count * sizeof(float));
        memset(vel_ref, 0, sizeof vel_ref);
        memset(vel, 0, sizeof vel);
        for (int step = 0; step < 3; ++step) {
            PT_CHECK(pt_sgd_f32_step_ref(&p, count, param_ref, gy, vel_ref) == PT_OK, "ref");
            PT_CHECK(pt_sgd_f32_step(&ctx, &p, count, param, gy, vel) == PT_OK, "step");
        }
        PT_CHECK(pt_first_bit_diff(param, param_ref, count) < 0, "sgd param threads %d", ctx.num_threads);
        PT_CHECK(pt_first_bit_diff(vel, vel_ref, count) < 0, "sgd velocity threads %d", ctx.num_threads);
    }
    /* by hand: w=1, g=0.5, wd=0.5, mu=0.5, lr=0.5: v=1, w=0.5; then v=0.5+0.75=1.25, w=-0.125 */
    float wv = 1.0f, gv = 0.5f, vv = 0.0f;
    const pt_sgd_params h = {0.5f, 0.5f, 0.5f};
    pt_ctx ctx = {1, NULL, 0};
    pt_sgd_f32_step(&ctx, &h, 1, &wv, &gv, &vv);
    PT_CHECK(vv == 1.0f && wv == 0.5f, "first step v=%g w=%g", vv, wv);
    pt_sgd_f32_step(&ctx, &h, 1, &wv, &gv, &vv);
    PT_CHECK(vv == 1.25f && wv == -0.125f, "second step v=%g w=%g", vv, wv);
    pt_sgd_params bad = p;
    bad.lr = NAN;
    PT_CHECK(pt_sgd_f32_step(&ctx, &bad, 1, &wv, &gv, &vv) == PT_ERR_PARAM && wv == -0.125f, "NaN lr");
    bad = p; bad.momentum = -0.1f;
    PT_CHECK(pt_sgd_f32_step_ref(&bad, 1, &wv, &gv, &vv) == PT_ERR_PARAM, "negative momentum");
    PT_CHECK(pt_sgd_f32_step(&ctx, &p, 0, &wv, &gv, &vv) == PT_ERR_SHAPE, "empty");
    PT_CHECK(pt_sgd_f32_step(&ctx, &p, 1, &wv, &gv, NULL) == PT_ERR_NULL, "NULL velocity");
}

/* The fused activation: bitwise the unfused forward followed by pt_relu*_fwd
 * (inputs scaled so ReLU6 clamps at both ends). */
static void test_depthwise_fused_act(void)
{
    static float y_fused[CAP], xs[CAP];
    for (size_t i = 0; i < CAP; ++i) xs[i] = 4.0f * x[i];
    for (size_t i = 0; i < sizeof dw_cases / sizeof dw_cases[0]; ++i) {
        pt_conv_params p = dw_params(&dw_cases[i]);
        int oh = pt_out_extent(p.in.h, p.kh, p.stride_h, p.pad_top, p.pad_bottom);
        int ow = pt_out_extent(p.in.w, p.kw, p.stride_w, p.pad_left, p.pad_right);
        size_t count = (size_t)p.in.n * oh * ow * p.in.c;
        for (int act = PT_ACT_RELU; act <= PT_ACT_RELU6; ++act)
            for (int t = 0; t < PT_TEST_NUM_THREADS; ++t) {
                pt_ctx ctx = {pt_test_threads[t], NULL, 0};
                PT_CHECK(pt_depthwise_f32_fwd(&ctx, &p, xs, w, b, out_opt) == PT_OK, "case %zu", i);
                pt_status st = act == PT_ACT_RELU6 ? pt_relu6_f32_fwd(&ctx, count, out_opt, out_ref)
                                                   : pt_relu_f32_fwd(&ctx, count, out_opt, out_ref);
                PT_CHECK(st == PT_OK, "case %zu relu", i);
                st = pt_depthwise_f32_fwd_act(&ctx, &p, (pt_act)act, xs, w, b, y_fused);
                PT_CHECK(st == PT_OK, "case %zu fused status %d", i, st);
                PT_CHECK(pt_first_bit_diff(out_ref, y_fused, count) < 0,
                         "case %zu act %d threads %d: fused != unfused", i, act, pt_test_threads[t]);
            }
        /* backward through the activation that produced x: grad_x masked by x */
        size_t in_count = pt_dims_count(p.in);
        for (int act = PT_ACT_RELU; act <= PT_ACT_RELU6; ++act)
            for (int t = 0; t < PT_TEST_NUM_THREADS; ++t) {
                pt_ctx ctx = {pt_test_threads[t], NULL, 0};
                PT_CHECK(pt_depthwise_f32_bwd_input(&ctx, &p, w, gy, out_opt) == PT_OK, "case %zu", i);
                pt_status st = act == PT_ACT_RELU6 ? pt_relu6_f32_bwd(&ctx, in_count, xs, out_opt, out_ref)
                                                   : pt_relu_f32_bwd(&ctx, in_count, xs, out_opt, out_ref);
                PT_CHECK(st == PT_OK, "case %zu relu bwd", i);
                st = pt_depthwise_f32_bwd_input_act(&ctx, &p, (pt_act)act, w, gy, xs, y_fused);
                PT_CHECK(st == PT_OK, "case %zu fused bwd status %d", i, st);
                PT_CHECK(pt_first_bit_diff(out_ref, y_fused, in_count) < 0,
                         "case %zu act %d threads %d: fused grad_x != unfused", i, act, pt_test_threads[t]);
                /* and with grad_w in the same pass */
                memset(y_fused, 0, in_count * sizeof(float));
                st = pt_depthwise_f32_bwd(&ctx, &p, (pt_act)act, w, xs, gy, y_fused, gb_opt, NULL);
                PT_CHECK(st == PT_OK, "case %zu bwd both status %d", i, st);
                PT_CHECK(pt_first_bit_diff(out_ref, y_fused, in_count) < 0,
                         "case %zu act %d threads %d: bwd both grad_x != unfused", i, act, pt_test_threads[t]);
            }
        pt_ctx one = {1, NULL, 0};
        PT_CHECK(pt_depthwise_f32_fwd_act(&one, &p, (pt_act)7, xs, w, b, y_fused) == PT_ERR_PARAM,
                 "unknown activation");
        PT_CHECK(pt_depthwise_f32_bwd_input_act(&one, &p, PT_ACT_RELU6, w, gy, NULL, y_fused) == PT_ERR_NULL,
                 "activation backward without x");
        PT_CHECK(pt_depthwise_f32_bwd(&one, &p, PT_ACT_NONE, w, NULL, gy, y_fused, gb_opt, NULL) == PT_ERR_NULL,
                 "both gradients without x");
        PT_CHECK(pt_depthwise_f32_bwd(&one, &p, (pt_act)7, w, xs, gy, y_fused, gb_opt, NULL) == PT_ERR_PARAM,
                 "both gradients, unknown activation");
    }
}

int main(void)
{
    pt_rng r = {2024u};
    fill(&r);
    for (size_t i = 0; i < sizeof dw_cases / sizeof dw_cases[0]; ++i) test_depthwise_case(&dw_cases[i]);
    test_depthwise_by_hand();
    test_depthwise_statuses();
    test_depthwise_fused_act();
    test_pool();
    test_affine();
    test_loss();
    test_sgd();
    return pt_test_finish("test_elem");
}
