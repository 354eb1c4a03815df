/* Runtime kernels against golden outputs from the PyTorch float64 reference
 * (tests/c/golden_data.h, written by tests/c/gen_golden.py), on 1 core and
 * on every core the build has. Runs on every build (native, rv32 under QEMU,
 * Zfinx); each output's bit digest is printed ("digest <case> <hex>") so two
 * builds can be compared bit for bit (make riscv-agree).
 *
 * Tolerances, as |got - want| <= atol + rtol * |want|:
 *   relu, relu6   exact (the kernels only select values; equal as numbers:
 *                 PyTorch keeps relu(-0) = -0, the kernels return +0)
 *   linear, depthwise   rtol 1e-4, atol 1e-5 * sqrt(terms summed per output)
 *                 (float32 sums of products of values in [-1, 1]; the
 *                 largest error seen is printed as "max_abs_err")
 * Every GEMM ISA variant the build has is checked; digests come from the
 * portable "generic" variant, the one every target shares. */
#include "pt_test.h"
#include "pulptrain/pulptrain.h"
#include "golden_data.h"

#define MAX_OUT 4096
#define SCRATCH_BYTES (512 * 1024)

static float out[MAX_OUT];
static unsigned char scratch[SCRATCH_BYTES];

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
    if (threads == 1 && pt_gemm_get_isa() == PT_GEMM_ISA_GENERIC) {
        double err = 0.0;
        for (size_t i = 0; i < n; ++i) err = fmax(err, fabs((double)out[i] - (double)want[i]));
        printf("digest %s %016llx max_abs_err %.3g\n", name, digest(out, n), err);
    }
}

/* Tolerance of a sum of `terms` products (see the top of the file). */
static double sum_atol(int terms) { return 1e-5 * sqrt((double)terms); }
#define SUM_RTOL 1e-4

static void test_linear(int threads)
{
    pt_linear_params p = {GOLDEN_LINEAR_BATCH, GOLDEN_LINEAR_IN, GOLDEN_LINEAR_OUT};
    pt_ctx ctx = {threads, scratch, sizeof scratch};
    size_t need = pt_linear_f32_fwd_scratch_bytes(&p, threads);
    size_t need_input = pt_linear_f32_bwd_input_scratch_bytes(&p, threads);
    size_t need_weight = pt_linear_f32_bwd_weight_scratch_bytes(&p, threads);
    if (need_input > need) need = need_input;
    if (need_weight > need) need = need_weight;
    PT_CHECK(need <= sizeof scratch, "linear scratch %u bytes", (unsigned)need);
    if (need > sizeof scratch) return;
    PT_CHECK(pt_linear_f32_fwd(&ctx, &p, golden_linear_x, golden_linear_w, golden_linear_b, out) == PT_OK,
             "linear fwd");
    expect("linear.y", threads, golden_linear_y, GOLDEN_LINEAR_BATCH * GOLDEN_LINEAR_OUT,
           sum_atol(GOLDEN_LINEAR_IN), SUM_RTOL);
    PT_CHECK(pt_linear_f32_bwd_input(&ctx, &p, golden_linear_w, golden_linear_grad_y, out) == PT_OK,
             "linear bwd_input");
    expect("linear.grad_x", threads, golden_linear_grad_x, GOLDEN_LINEAR_BATCH * GOLDEN_LINEAR_IN,
           sum_atol(GOLDEN_LINEAR_OUT), SUM_RTOL);
    float *grad_b = out + GOLDEN_LINEAR_OUT * GOLDEN_LINEAR_IN;
    PT_CHECK(pt_linear_f32_bwd_weight(&ctx, &p, golden_linear_x, golden_linear_grad_y, out, grad_b) == PT_OK,
             "linear bwd_weight");
    expect("linear.grad_w", threads, golden_linear_grad_w, GOLDEN_LINEAR_OUT * GOLDEN_LINEAR_IN,
           sum_atol(GOLDEN_LINEAR_BATCH), SUM_RTOL);
    memmove(out, grad_b, GOLDEN_LINEAR_OUT * sizeof(float));
    expect("linear.grad_b", threads, golden_linear_grad_b, GOLDEN_LINEAR_OUT,
           sum_atol(GOLDEN_LINEAR_BATCH), SUM_RTOL);
}

static void test_depthwise(int threads)
{
    pt_conv_params p = {{GOLDEN_DEPTHWISE_N, GOLDEN_DEPTHWISE_H, GOLDEN_DEPTHWISE_W, GOLDEN_DEPTHWISE_C},
                        GOLDEN_DEPTHWISE_C, 3, 3, 1, 1, 1, 1, 1, 1};
    pt_ctx ctx = {threads, NULL, 0};
    const int count = GOLDEN_DEPTHWISE_N * GOLDEN_DEPTHWISE_H * GOLDEN_DEPTHWISE_W * GOLDEN_DEPTHWISE_C;
    const int pixels = GOLDEN_DEPTHWISE_N * GOLDEN_DEPTHWISE_H * GOLDEN_DEPTHWISE_W;
    PT_CHECK(pt_depthwise_f32_fwd(&ctx, &p, golden_depthwise_x, golden_depthwise_w, golden_depthwise_b,
                                  out) == PT_OK, "depthwise fwd");
    expect("depthwise.y", threads, golden_depthwise_y, count, sum_atol(9), SUM_RTOL);
    PT_CHECK(pt_depthwise_f32_bwd_input(&ctx, &p, golden_depthwise_w, golden_depthwise_grad_y, out) == PT_OK,
             "depthwise bwd_input");
    expect("depthwise.grad_x", threads, golden_depthwise_grad_x, count, sum_atol(9), SUM_RTOL);
    float *grad_b = out + 9 * GOLDEN_DEPTHWISE_C;
    PT_CHECK(pt_depthwise_f32_bwd_weight(&ctx, &p, golden_depthwise_x, golden_depthwise_grad_y, out,
                                         grad_b) == PT_OK, "depthwise bwd_weight");
    expect("depthwise.grad_w", threads, golden_depthwise_grad_w, 9 * GOLDEN_DEPTHWISE_C,
           sum_atol(pixels), SUM_RTOL);
    memmove(out, grad_b, GOLDEN_DEPTHWISE_C * sizeof(float));
    expect("depthwise.grad_b", threads, golden_depthwise_grad_b, GOLDEN_DEPTHWISE_C, sum_atol(pixels),
           SUM_RTOL);
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
    for (int isa = PT_GEMM_ISA_COUNT - 1; isa >= 0; --isa) {
        if (pt_gemm_set_isa((pt_gemm_isa)isa) != PT_OK) continue;
        for (int i = 0; i < (counts[1] > 1 ? 2 : 1); ++i) {
            test_act(counts[i]);
            test_linear(counts[i]);
            test_depthwise(counts[i]);
        }
    }
    return pt_test_finish("test_golden");
}
