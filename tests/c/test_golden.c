/* Runtime kernels against golden outputs from the PyTorch float64 reference
 * (tests/c/golden_data.h, written by tests/c/gen_golden.py), on 1 core and
 * on every core the build has. Runs on every build (native, rv32 under QEMU,
 * Zfinx); each output's bit digest is printed ("digest <case> <hex>") so two
 * builds can be compared bit for bit (make riscv-agree).
 *
 * Tolerances, as |got - want| <= atol + rtol * |want|:
 *   relu, relu6   exact (the kernels only select values; equal as numbers:
 *                 PyTorch keeps relu(-0) = -0, the kernels return +0) */
#include "pt_test.h"
#include "pulptrain/pulptrain.h"
#include "golden_data.h"

#define MAX_OUT 4096

static float out[MAX_OUT];

/* 64-bit FNV-1a of the float bit patterns. */
static unsigned long long digest(const float *a, size_t n)
{
    unsigned long long h = 1469598103934665603ull;
    const unsigned char *p = (const unsigned char *)a;
    for (size_t i = 0; i < n * sizeof(float); ++i) h = (h ^ p[i]) * 1099511628211ull;
    return h;
}

/* Compare against the golden output (atol = rtol = 0: equal values); print
 * the digest once (1 core). */
static void expect(const char *name, int threads, const float *want, size_t n, double atol,
                   double rtol)
{
    size_t worst = 0;
    double ratio = 0.0;
    if (atol == 0.0 && rtol == 0.0) {
        for (size_t i = 0; i < n && ratio == 0.0; ++i)
            if (!(out[i] == want[i])) ratio = 2.0, worst = i;
    } else {
        ratio = pt_tol_ratio(out, want, n, atol, rtol, &worst);
    }
    PT_CHECK(ratio <= 1.0, "%s threads=%d: worst index %u got %.9g want %.9g (%.3g x tolerance)",
             name, threads, (unsigned)worst, (double)out[worst], (double)want[worst], ratio);
    if (threads == 1) printf("digest %s %016llx\n", name, digest(out, n));
}

static void test_act(int threads)
{
    pt_ctx ctx = {threads, NULL, 0};
    PT_CHECK(pt_relu_f32_fwd(&ctx, GOLDEN_RELU_COUNT, golden_relu_x, out) == PT_OK, "relu fwd");
    expect("relu.y", threads, golden_relu_y, GOLDEN_RELU_COUNT, 0, 0);
    PT_CHECK(pt_relu_f32_bwd(&ctx, GOLDEN_RELU_COUNT, golden_relu_x, golden_relu_grad_y, out) == PT_OK,
             "relu bwd");
    expect("relu.grad_x", threads, golden_relu_grad_x, GOLDEN_RELU_COUNT, 0, 0);
    PT_CHECK(pt_relu6_f32_fwd(&ctx, GOLDEN_RELU6_COUNT, golden_relu6_x, out) == PT_OK, "relu6 fwd");
    expect("relu6.y", threads, golden_relu6_y, GOLDEN_RELU6_COUNT, 0, 0);
    PT_CHECK(pt_relu6_f32_bwd(&ctx, GOLDEN_RELU6_COUNT, golden_relu6_x, golden_relu6_grad_y, out) == PT_OK,
             "relu6 bwd");
    expect("relu6.grad_x", threads, golden_relu6_grad_x, GOLDEN_RELU6_COUNT, 0, 0);
}

int main(void)
{
    int counts[2] = {1, pt_parallel_max_cores()};
    for (int i = 0; i < (counts[1] > 1 ? 2 : 1); ++i) test_act(counts[i]);
    return pt_test_finish("test_golden");
}
