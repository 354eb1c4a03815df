/* Activation kernels vs their reference twins, for every thread count,
 * plus the parallel seam and bad-argument statuses. */
#include "pt_test.h"
#include "pulptrain/pulptrain.h"

#define N 40000

static float x[N], gy[N], y_ref[N], y[N], g_ref[N], g[N];

static void counter_task(void *arg, int core, int ncores)
{
    int *hits = (int *)arg;
    hits[core] += 1;
    pt_barrier();
    /* after the barrier every core has counted itself */
    int total = 0;
    for (int i = 0; i < ncores; ++i) total += hits[i];
    if (total != ncores) hits[PT_MAX_THREADS] = 1;
    pt_barrier();
}

static void test_parallel(void)
{
    for (int t = 0; t < PT_TEST_NUM_THREADS; ++t) {
        int hits[PT_MAX_THREADS + 1] = {0};
        int n = pt_test_threads[t];
        PT_CHECK(pt_fork(n, counter_task, hits) == PT_OK, "fork(%d)", n);
        int ok = 1;
        int cores = pt_parallel_max_cores() == 1 ? 1 : n;
        for (int i = 0; i < cores; ++i) ok &= hits[i] == 1;
        PT_CHECK(ok && hits[PT_MAX_THREADS] == 0, "each of %d cores ran once and barriers held", n);
    }
    PT_CHECK(pt_fork(0, counter_task, NULL) == PT_ERR_THREADS, "zero cores refused");
    PT_CHECK(pt_fork(PT_MAX_THREADS + 1, counter_task, NULL) == PT_ERR_THREADS, "too many cores refused");
    PT_CHECK(pt_fork(2, NULL, NULL) == PT_ERR_NULL, "NULL task refused");
}

static void test_act(int six)
{
    pt_rng r = {12345u + (uint32_t)six};
    pt_fill_uniform(&r, x, N, -8.0f, 8.0f);
    pt_fill_uniform(&r, gy, N, -1.0f, 1.0f);
    x[0] = 0.0f; x[1] = 6.0f;  /* the mask's edges */
    if (six) { pt_relu6_f32_fwd_ref(N, x, y_ref); pt_relu6_f32_bwd_ref(N, x, gy, g_ref); }
    else { pt_relu_f32_fwd_ref(N, x, y_ref); pt_relu_f32_bwd_ref(N, x, gy, g_ref); }
    PT_CHECK(g_ref[0] == 0.0f, "no gradient at 0");
    PT_CHECK(!six || g_ref[1] == 0.0f, "no relu6 gradient at 6");
    for (int t = 0; t < PT_TEST_NUM_THREADS; ++t) {
        pt_ctx ctx = {pt_test_threads[t], NULL, 0};
        pt_status s1 = six ? pt_relu6_f32_fwd(&ctx, N, x, y) : pt_relu_f32_fwd(&ctx, N, x, y);
        pt_status s2 = six ? pt_relu6_f32_bwd(&ctx, N, x, gy, g) : pt_relu_f32_bwd(&ctx, N, x, gy, g);
        PT_CHECK(s1 == PT_OK && s2 == PT_OK, "status %d %d", s1, s2);
        PT_CHECK(pt_first_bit_diff(y, y_ref, N) < 0, "fwd six=%d threads=%d", six, ctx.num_threads);
        PT_CHECK(pt_first_bit_diff(g, g_ref, N) < 0, "bwd six=%d threads=%d", six, ctx.num_threads);
    }
    pt_ctx bad = {0, NULL, 0};
    PT_CHECK(pt_relu_f32_fwd(&bad, N, x, y) == PT_ERR_THREADS, "zero threads");
    PT_CHECK(pt_relu_f32_fwd(NULL, N, x, y) == PT_ERR_NULL, "NULL ctx");
    pt_ctx one = {1, NULL, 0};
    PT_CHECK(pt_relu_f32_fwd(&one, 0, x, y) == PT_ERR_SHAPE, "empty");
    PT_CHECK(pt_relu_f32_bwd(&one, N, x, NULL, g) == PT_ERR_NULL, "NULL grad_y");
}

int main(void)
{
    test_parallel();
    test_act(0);
    test_act(1);
    return pt_test_finish("test_act");
}
