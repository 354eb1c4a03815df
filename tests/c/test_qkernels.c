/* INT8 kernels vs their reference twins: random shapes (odd sizes, stride 2,
 * TF "SAME" asymmetric padding, channel counts off the vector widths), every
 * thread count and every instruction-set path; the rounding rule on known
 * values; bad arguments. */
#include <stdlib.h>
#include "pt_test.h"
#include "pulptrain/pulptrain.h"

#define MAXC 160

static int32_t bias[MAXC], mult[MAXC], shift[MAXC];

static void random_requant(pt_rng *r, int cout, pt_requant *rq)
{
    for (int c = 0; c < cout; ++c) {
        bias[c] = (int32_t)(pt_rng_next(r) % 20001) - 10000;
        mult[c] = (int32_t)((1u << 30) + (pt_rng_next(r) % (1u << 30)));
        shift[c] = 38 + (int32_t)(pt_rng_next(r) % 8);
    }
    rq->bias = bias; rq->multiplier = mult; rq->shift = shift;
    rq->act_max = 1 + (int32_t)(pt_rng_next(r) % 255);
}

static void fill_u8(pt_rng *r, uint8_t *a, size_t n, int zero_every)
{
    for (size_t i = 0; i < n; ++i) a[i] = (zero_every && i % (size_t)zero_every == 0) ? 0 : (uint8_t)pt_rng_next(r);
}

static void fill_s8(pt_rng *r, int8_t *a, size_t n)
{
    for (size_t i = 0; i < n; ++i) {
        int v = (int)(pt_rng_next(r) % 255) - 127;
        a[i] = (int8_t)v;
    }
}

static void test_requantize(void)
{
    /* 3 * 2^30 / 2^31 = 1.5 -> 2 (half up); -1.5 -> -1 -> clamped to 0 */
    PT_CHECK(pt_requantize(3, 1 << 30, 31, 255) == 2, "1.5 rounds up");
    PT_CHECK(pt_requantize(5, 1 << 30, 31, 255) == 3, "2.5 rounds up");
    PT_CHECK(pt_requantize(-3, 1 << 30, 31, 255) == 0, "negative clamps to 0");
    PT_CHECK(pt_requantize(1000, 1 << 30, 31, 100) == 100, "act_max clamps");
    PT_CHECK(pt_requantize(2147483647, 2147483647, 62, 255) == 1, "extreme product");
}

/* one conv / depthwise / pointwise case, all paths vs the reference */
static void check_case(pt_rng *r, int kind, int n, int h, int w, int cin, int cout, int k, int stride)
{
    pt_conv_params p = {{n, h, w, cin}, kind == 1 ? cin : cout, k, k, stride, stride, 0, 0, 0, 0};
    if (kind != 2) {   /* TF "SAME": the extra pixel at the bottom / right */
        int oh = (h + stride - 1) / stride, ow = (w + stride - 1) / stride;
        int th = (oh - 1) * stride + k - h, tw = (ow - 1) * stride + k - w;
        th = th < 0 ? 0 : th; tw = tw < 0 ? 0 : tw;
        p.pad_top = th / 2; p.pad_bottom = th - th / 2; p.pad_left = tw / 2; p.pad_right = tw - tw / 2;
    }
    int oh = pt_out_extent(h, k, stride, p.pad_top, p.pad_bottom);
    int ow = pt_out_extent(w, k, stride, p.pad_left, p.pad_right);
    size_t nx = (size_t)n * h * w * cin, ny = (size_t)n * oh * ow * p.out_c;
    size_t nw = kind == 1 ? (size_t)k * k * cin : (size_t)p.out_c * k * k * cin;
    uint8_t *x = malloc(nx), *y = malloc(ny), *y_ref = malloc(ny);
    int8_t *wt = malloc(nw);
    size_t packed_bytes = pt_q_pointwise_packed_bytes(cin, p.out_c);
    int8_t *packed = malloc(packed_bytes);
    fill_u8(r, x, nx, 7);
    fill_s8(r, wt, nw);
    pt_requant rq;
    random_requant(r, p.out_c, &rq);
    int pixel_input = kind == 0 && (pt_rng_next(r) & 1);
    pt_status st = kind == 0 ? pt_q_conv2d_fwd_ref(&p, pixel_input, x, wt, &rq, y_ref)
                 : kind == 1 ? pt_q_depthwise_fwd_ref(&p, x, wt, &rq, y_ref)
                             : pt_q_pointwise_fwd_ref(&p, x, wt, &rq, y_ref);
    PT_CHECK(st == PT_OK, "ref status %d", st);
    if (kind == 2) PT_CHECK(pt_q_pointwise_pack(cin, p.out_c, wt, packed, packed_bytes) == PT_OK, "pack");
    const char *isas[3] = {"generic", "avx-vnni", "avx512-vnni"};
    for (int i = 0; i < 3; ++i) {
        if (pt_q_select_isa(isas[i]) != PT_OK) continue;
        for (int t = 0; t < PT_TEST_NUM_THREADS; ++t) {
            int threads = pt_test_threads[t];
            size_t sb = kind == 0 ? pt_q_conv2d_scratch_bytes(&p, threads) : 0;
            void *scratch = sb ? malloc(sb) : NULL;
            pt_ctx ctx = {threads, scratch, sb};
            memset(y, 0xAB, ny);
            st = kind == 0 ? pt_q_conv2d_fwd(&ctx, &p, pixel_input, x, wt, &rq, y)
               : kind == 1 ? pt_q_depthwise_fwd(&ctx, &p, x, wt, &rq, y)
                           : pt_q_pointwise_fwd(&ctx, &p, x, packed, &rq, y);
            long diff = -1;
            for (size_t j = 0; j < ny && diff < 0; ++j) if (y[j] != y_ref[j]) diff = (long)j;
            PT_CHECK(st == PT_OK && diff < 0,
                     "kind %d isa %s threads %d n%d h%d w%d cin%d cout%d k%d s%d: status %d, first diff at %ld (%d vs %d)",
                     kind, isas[i], threads, n, h, w, cin, p.out_c, k, stride, st, diff,
                     diff >= 0 ? y[diff] : 0, diff >= 0 ? y_ref[diff] : 0);
            free(scratch);
        }
    }
    pt_q_select_isa("auto");
    free(x); free(y); free(y_ref); free(wt); free(packed);
}

static void test_random_shapes(void)
{
    pt_rng r = {2024u};
    for (int trial = 0; trial < 24; ++trial) {
        int kind = trial % 3;
        int n = 1 + (int)(pt_rng_next(&r) % 3);
        int h = 1 + (int)(pt_rng_next(&r) % 13), w = 1 + (int)(pt_rng_next(&r) % 13);
        int cin = kind == 0 ? 1 + (int)(pt_rng_next(&r) % 5) : 1 + (int)(pt_rng_next(&r) % 150);
        int cout = 1 + (int)(pt_rng_next(&r) % 70);
        int k = kind == 2 ? 1 : (trial % 2 ? 3 : 1 + (int)(pt_rng_next(&r) % 4));
        int stride = kind == 2 ? 1 : 1 + (int)(pt_rng_next(&r) % 2);
        check_case(&r, kind, n, h, w, cin, cout, k, stride);
    }
    /* the MobileNet shapes: first conv, a stride-2 depthwise, a wide pointwise */
    check_case(&r, 0, 2, 33, 31, 3, 32, 3, 2);
    check_case(&r, 1, 2, 16, 15, 128, 128, 3, 2);
    check_case(&r, 2, 3, 8, 7, 512, 144, 1, 1);
    /* the dense conv's patch gather: vector up to 7 kernel rows of <= 32 bytes, scalar beyond */
    check_case(&r, 0, 1, 12, 11, 4, 9, 7, 2);
    check_case(&r, 0, 1, 11, 12, 12, 20, 3, 1);
    check_case(&r, 0, 1, 10, 10, 2, 5, 8, 1);
}

static void test_bad_arguments(void)
{
    uint8_t x[64] = {0}, y[64];
    int8_t w[64] = {0};
    int32_t b[4] = {0}, m[4] = {1 << 30, 1 << 30, 1 << 30, 1 << 30}, s[4] = {31, 31, 31, 31};
    pt_requant rq = {b, m, s, 255};
    pt_ctx ctx = {2, NULL, 0};
    pt_conv_params p = {{1, 2, 2, 4}, 4, 1, 1, 1, 1, 0, 0, 0, 0};
    PT_CHECK(pt_q_depthwise_fwd(&ctx, &p, x, w, &rq, y) == PT_OK, "valid call");
    PT_CHECK(pt_q_depthwise_fwd(NULL, &p, x, w, &rq, y) == PT_ERR_NULL, "NULL ctx");
    PT_CHECK(pt_q_depthwise_fwd(&ctx, &p, NULL, w, &rq, y) == PT_ERR_NULL, "NULL x");
    pt_conv_params bad = p; bad.out_c = 3;
    PT_CHECK(pt_q_depthwise_fwd(&ctx, &bad, x, w, &rq, y) == PT_ERR_SHAPE, "depthwise out_c != in.c");
    bad = p; bad.stride_h = 0;
    PT_CHECK(pt_q_depthwise_fwd(&ctx, &bad, x, w, &rq, y) == PT_ERR_PARAM, "stride 0");
    bad = p; bad.kh = 3; bad.in.h = 1;
    PT_CHECK(pt_q_depthwise_fwd(&ctx, &bad, x, w, &rq, y) == PT_ERR_SHAPE, "window larger than input");
    pt_requant bad_rq = rq; bad_rq.act_max = 0;
    PT_CHECK(pt_q_depthwise_fwd(&ctx, &p, x, w, &bad_rq, y) == PT_ERR_PARAM, "act_max 0");
    int32_t small_m[4] = {5, 5, 5, 5};
    bad_rq = rq; bad_rq.multiplier = small_m;
    PT_CHECK(pt_q_depthwise_fwd(&ctx, &p, x, w, &bad_rq, y) == PT_ERR_PARAM, "multiplier below 2^30");
    pt_conv_params conv = {{1, 2, 2, 4}, 4, 1, 1, 1, 1, 0, 0, 0, 0};
    PT_CHECK(pt_q_conv2d_fwd(&ctx, &conv, 0, x, w, &rq, y) == PT_ERR_SCRATCH, "conv without scratch");
    pt_conv_params huge = {{1, 2, 2, 100000}, 4, 3, 3, 1, 1, 1, 1, 1, 1};
    PT_CHECK(pt_q_conv2d_fwd_ref(&huge, 0, x, w, &rq, y) == PT_ERR_OVERFLOW, "int32 accumulator overflow");
    pt_conv_params pw3 = p; pw3.kh = pw3.kw = 3; pw3.pad_top = pw3.pad_bottom = pw3.pad_left = pw3.pad_right = 1;
    PT_CHECK(pt_q_pointwise_fwd(&ctx, &pw3, x, w, &rq, y) == PT_ERR_PARAM, "pointwise with 3x3");
    PT_CHECK(pt_q_pointwise_pack(4, 4, w, (int8_t *)y, 8) == PT_ERR_SCRATCH, "pack into a short buffer");
    PT_CHECK(pt_q_select_isa("sse9") == PT_ERR_PARAM, "unknown isa");
    PT_CHECK(pt_q_select_isa("auto") == PT_OK, "auto isa");
}

int main(void)
{
    printf("INT8 path on this machine: %s\n", pt_q_isa());
    test_requantize();
    test_random_shapes();
    test_bad_arguments();
    return pt_test_finish("test_qkernels");
}
