/* Instruction counts of the training kernels on bare-metal RISC-V.
 *
 * Run under QEMU with -icount shift=0 (minstret is then exact, see
 * pt_riscv.h). For every kernel and step, with 1 core and with every core
 * the machine has, prints one JSON object per line inside a JSON document:
 *   instructions     retired by all cores together during the call
 *   macs             multiply-accumulates of the step (elements for
 *                    elementwise steps, where macs is 0)
 *   mac_per_instr_per_core  macs / instructions: what one core achieves per
 *                    instruction, fork and barrier overhead included
 *   core_instructions  per core, instructions it retired inside its tasks
 *   busiest_over_mean  max / mean of core_instructions (1.0 = balanced)
 *
 * Adding a kernel: one prepare function (allocates and fills its buffers)
 * and one run function per step, plus a line in the cases[] table. */
#include <stdio.h>
#include <string.h>
#include "pt_test.h"
#include "pulptrain/pulptrain.h"
#include "pt_riscv.h"

#ifndef PT_RV_PROFILE
#define PT_RV_PROFILE "riscv"
#endif

/* Sizes: adaptive-stage-like layers, scaled down for QEMU. A profile with
 * little memory (pulp-open's L2) lowers the batch and the buffers. */
#ifndef PT_RV_BENCH_BATCH
#define PT_RV_BENCH_BATCH 4
#endif
#ifndef PT_RV_BENCH_ARENA_FLOATS
#define PT_RV_BENCH_ARENA_FLOATS (1u << 19)
#endif
#ifndef PT_RV_BENCH_SCRATCH_BYTES
#define PT_RV_BENCH_SCRATCH_BYTES (4096u * 1024u)
#endif
#define BATCH PT_RV_BENCH_BATCH
#define HW 8     /* feature map height and width */
#define CH 128   /* channels */
#define STR2(x) #x
#define STR(x) STR2(x)

/* ---- a bump arena for the benchmark buffers ------------------------------ */
#define ARENA_FLOATS PT_RV_BENCH_ARENA_FLOATS
static float arena[ARENA_FLOATS] __attribute__((aligned(64)));
static size_t arena_used;

static float *arena_floats(size_t n, pt_rng *rng)
{
    if (arena_used + n > ARENA_FLOATS) {
        printf("riscv_bench: arena too small\n");
        return NULL;
    }
    float *p = arena + arena_used;
    arena_used += (n + 15) & ~(size_t)15;
    pt_fill_uniform(rng, p, n, -1.0f, 1.0f);
    return p;
}

/* ---- kernels ------------------------------------------------------------ */
/* Elementwise activation over an adaptive-stage-sized feature map. */
static struct {
    size_t count;
    float *x, *gy, *y, *gx;
} act;

static int act_prepare(pt_rng *rng)
{
    act.count = (size_t)BATCH * HW * HW * CH;
    act.x = arena_floats(act.count, rng);
    act.gy = arena_floats(act.count, rng);
    act.y = arena_floats(act.count, rng);
    act.gx = arena_floats(act.count, rng);
    return act.x && act.gy && act.y && act.gx;
}

static pt_status relu_forward(const pt_ctx *ctx) { return pt_relu_f32_fwd(ctx, act.count, act.x, act.y); }
static pt_status relu_backward(const pt_ctx *ctx)
{
    return pt_relu_f32_bwd(ctx, act.count, act.x, act.gy, act.gx);
}

/* Convolution layers of an adaptive stage (MobileNet-like, scaled down):
 * pointwise 128 -> 128 and depthwise 3x3 over BATCH x 8x8x128 NHWC. */
static struct {
    pt_conv_params pw, dw;
    float *x, *w_pw, *w_dw, *b, *gy, *y, *gx, *gw, *gb;
} conv;

static int conv_prepare(pt_rng *rng)
{
    pt_conv_params pw = {{BATCH, HW, HW, CH}, CH, 1, 1, 1, 1, 0, 0, 0, 0};
    pt_conv_params dw = {{BATCH, HW, HW, CH}, CH, 3, 3, 1, 1, 1, 1, 1, 1};
    conv.pw = pw;
    conv.dw = dw;
    size_t act_len = (size_t)BATCH * HW * HW * CH;
    conv.x = arena_floats(act_len, rng);
    conv.gy = arena_floats(act_len, rng);
    conv.y = arena_floats(act_len, rng);
    conv.gx = arena_floats(act_len, rng);
    conv.w_pw = arena_floats(CH * CH, rng);
    conv.w_dw = arena_floats(9 * CH, rng);
    conv.b = arena_floats(CH, rng);
    conv.gw = arena_floats(CH * CH, rng);
    conv.gb = arena_floats(CH, rng);
    return conv.x && conv.gy && conv.y && conv.gx && conv.w_pw && conv.w_dw && conv.b && conv.gw &&
           conv.gb;
}

static pt_status pointwise_forward(const pt_ctx *ctx)
{
    return pt_pointwise_f32_fwd(ctx, &conv.pw, conv.x, conv.w_pw, conv.b, conv.y);
}
static pt_status pointwise_grad_input(const pt_ctx *ctx)
{
    return pt_pointwise_f32_bwd_input(ctx, &conv.pw, conv.w_pw, conv.gy, conv.gx);
}
static pt_status pointwise_grad_weight(const pt_ctx *ctx)
{
    return pt_pointwise_f32_bwd_weight(ctx, &conv.pw, conv.x, conv.gy, conv.gw, conv.gb);
}
static pt_status depthwise_forward(const pt_ctx *ctx)
{
    return pt_depthwise_f32_fwd(ctx, &conv.dw, conv.x, conv.w_dw, conv.b, conv.y);
}
static pt_status depthwise_grad_input(const pt_ctx *ctx)
{
    return pt_depthwise_f32_bwd_input(ctx, &conv.dw, conv.w_dw, conv.gy, conv.gx);
}
static pt_status depthwise_grad_weight(const pt_ctx *ctx)
{
    return pt_depthwise_f32_bwd_weight(ctx, &conv.dw, conv.x, conv.gy, conv.gw, conv.gb);
}

/* The classifier: linear 512 -> 50 (CORe50 has 50 classes) over 4 * BATCH
 * samples. */
#ifndef PT_RV_BENCH_LINEAR_BATCH
#define PT_RV_BENCH_LINEAR_BATCH 16
#endif
#define LIN_BATCH PT_RV_BENCH_LINEAR_BATCH
#define LIN_IN 512
#define LIN_OUT 50
static struct {
    pt_linear_params p;
    float *x, *w, *b, *gy, *y, *gx, *gw, *gb;
} lin;

static int linear_prepare(pt_rng *rng)
{
    pt_linear_params p = {LIN_BATCH, LIN_IN, LIN_OUT};
    lin.p = p;
    lin.x = arena_floats(LIN_BATCH * LIN_IN, rng);
    lin.gx = arena_floats(LIN_BATCH * LIN_IN, rng);
    lin.w = arena_floats(LIN_OUT * LIN_IN, rng);
    lin.gw = arena_floats(LIN_OUT * LIN_IN, rng);
    lin.b = arena_floats(LIN_OUT, rng);
    lin.gb = arena_floats(LIN_OUT, rng);
    lin.gy = arena_floats(LIN_BATCH * LIN_OUT, rng);
    lin.y = arena_floats(LIN_BATCH * LIN_OUT, rng);
    return lin.x && lin.gx && lin.w && lin.gw && lin.b && lin.gb && lin.gy && lin.y;
}

static pt_status linear_forward(const pt_ctx *ctx)
{
    return pt_linear_f32_fwd(ctx, &lin.p, lin.x, lin.w, lin.b, lin.y);
}
static pt_status linear_grad_input(const pt_ctx *ctx)
{
    return pt_linear_f32_bwd_input(ctx, &lin.p, lin.w, lin.gy, lin.gx);
}
static pt_status linear_grad_weight(const pt_ctx *ctx)
{
    return pt_linear_f32_bwd_weight(ctx, &lin.p, lin.x, lin.gy, lin.gw, lin.gb);
}

typedef struct bench_case {
    const char *kernel;
    const char *step;
    const char *shape;
    double macs;               /* 0 for elementwise steps */
    double elements;
    int (*prepare)(pt_rng *rng);
    pt_status (*run)(const pt_ctx *ctx);
} bench_case;

#define ACT_SHAPE "N" STR(BATCH) " 8x8x128"
#define ACT_ELEMS ((double)BATCH * HW * HW * CH)
#define PW_MACS (ACT_ELEMS * CH)
#define DW_MACS (ACT_ELEMS * 9)
#define LIN_SHAPE "N" STR(PT_RV_BENCH_LINEAR_BATCH) " 512->50"
#define LIN_MACS ((double)LIN_BATCH * LIN_IN * LIN_OUT)

static const bench_case cases[] = {
    {"pointwise", "forward", ACT_SHAPE " 128->128", PW_MACS, 0, conv_prepare, pointwise_forward},
    {"pointwise", "grad_input", ACT_SHAPE " 128->128", PW_MACS, 0, conv_prepare, pointwise_grad_input},
    {"pointwise", "grad_weight", ACT_SHAPE " 128->128", PW_MACS, 0, conv_prepare, pointwise_grad_weight},
    {"depthwise", "forward", ACT_SHAPE " 3x3 pad 1", DW_MACS, 0, conv_prepare, depthwise_forward},
    {"depthwise", "grad_input", ACT_SHAPE " 3x3 pad 1", DW_MACS, 0, conv_prepare, depthwise_grad_input},
    {"depthwise", "grad_weight", ACT_SHAPE " 3x3 pad 1", DW_MACS, 0, conv_prepare, depthwise_grad_weight},
    {"linear", "forward", LIN_SHAPE, LIN_MACS, 0, linear_prepare, linear_forward},
    {"linear", "grad_input", LIN_SHAPE, LIN_MACS, 0, linear_prepare, linear_grad_input},
    {"linear", "grad_weight", LIN_SHAPE, LIN_MACS, 0, linear_prepare, linear_grad_weight},
    {"relu", "forward", ACT_SHAPE, 0, ACT_ELEMS, act_prepare, relu_forward},
    {"relu", "grad_input", ACT_SHAPE, 0, ACT_ELEMS, act_prepare, relu_backward},
};
#define NUM_CASES ((int)(sizeof cases / sizeof cases[0]))

/* ---- measurement --------------------------------------------------------- */
static unsigned char scratch[PT_RV_BENCH_SCRATCH_BYTES] __attribute__((aligned(64)));

/* Repeats per measurement: counts are deterministic except when QEMU's
 * round-robin scheduler preempts a hart inside a task (every 10^8
 * instructions), which inflates that hart's count; the minimum is exact. */
#define REPEATS 3

static int run_case(const bench_case *bc, int threads, int first)
{
    pt_ctx ctx = {threads, scratch, sizeof scratch};
    int cores = threads < pt_parallel_max_cores() ? threads : pt_parallel_max_cores();
    uint64_t total = UINT64_MAX, core[PT_MAX_THREADS];
    for (int c = 0; c < cores; ++c) core[c] = UINT64_MAX;
    pt_status warm = bc->run(&ctx);  /* warm-up: first-use set-up stays out */
    if (warm != PT_OK) {
        printf("%s    {\"kernel\": \"%s\", \"step\": \"%s\", \"cores\": %d, \"error\": \"%s\"}",
               first ? "" : ",\n", bc->kernel, bc->step, cores, pt_status_str(warm));
        return 0;
    }
    for (int r = 0; r < REPEATS; ++r) {
        pt_riscv_task_count_reset();
        uint64_t t0 = pt_riscv_counter();
        pt_status st = bc->run(&ctx);
        uint64_t t = pt_riscv_counter() - t0;
        if (st != PT_OK) return 0;
        if (t < total) total = t;
        for (int c = 0; c < cores; ++c)
            if (pt_riscv_task_count(c) < core[c]) core[c] = pt_riscv_task_count(c);
    }
    uint64_t busiest = 0, sum = 0;
    for (int c = 0; c < cores; ++c) {
        sum += core[c];
        if (core[c] > busiest) busiest = core[c];
    }
    double mean = (double)sum / cores;
    double work = bc->macs > 0 ? bc->macs : bc->elements;
    printf("%s    {\"kernel\": \"%s\", \"step\": \"%s\", \"shape\": \"%s\", \"cores\": %d, "
           "\"instructions\": %llu, \"macs\": %.0f, \"elements\": %.0f, \"%s\": %.4f, "
           "\"busiest_core_instructions\": %llu, \"mean_core_instructions\": %.0f, "
           "\"busiest_over_mean\": %.4f, \"core_instructions\": [",
           first ? "" : ",\n", bc->kernel, bc->step, bc->shape, cores, (unsigned long long)total,
           bc->macs, bc->elements, bc->macs > 0 ? "mac_per_instr_per_core" : "elem_per_instr_per_core",
           work / (double)total, (unsigned long long)busiest, mean, mean > 0 ? (double)busiest / mean : 0.0);
    for (int c = 0; c < cores; ++c) printf("%s%llu", c ? ", " : "", (unsigned long long)core[c]);
    printf("]}");
    return 1;
}

int main(void)
{
    int max = pt_parallel_max_cores();
    printf("{\"profile\": \"%s\", \"harts\": %d, \"counter\": \"%s\",\n \"results\": [\n",
           PT_RV_PROFILE, max, PT_RISCV_COUNTER_NAME);
    int ok = 1, first = 1;
    for (int i = 0; i < NUM_CASES; ++i) {
        pt_rng rng = {2024u + (uint32_t)i};
        arena_used = 0;
        if (!cases[i].prepare(&rng)) { ok = 0; break; }
        int thread_counts[2] = {1, max};
        for (int t = 0; t < (max > 1 ? 2 : 1); ++t) {
            ok &= run_case(&cases[i], thread_counts[t], first);
            first = 0;
        }
    }
    printf("\n]}\n");
    return ok ? 0 : 1;
}
