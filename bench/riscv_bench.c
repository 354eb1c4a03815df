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
#define PT_RV_BENCH_SCRATCH_BYTES (256u * 1024u)
#endif
#define BATCH PT_RV_BENCH_BATCH
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
    act.count = BATCH * 8 * 8 * 128;
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

typedef struct bench_case {
    const char *kernel;
    const char *step;
    const char *shape;
    double macs;               /* 0 for elementwise steps */
    double elements;
    int (*prepare)(pt_rng *rng);
    pt_status (*run)(const pt_ctx *ctx);
} bench_case;

static const bench_case cases[] = {
    {"relu", "forward", "N" STR(BATCH) " 8x8x128", 0, BATCH * 8 * 8 * 128, act_prepare, relu_forward},
    {"relu", "grad_input", "N" STR(BATCH) " 8x8x128", 0, BATCH * 8 * 8 * 128, act_prepare, relu_backward},
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
    if (bc->run(&ctx) != PT_OK) return 0;  /* warm-up: first-use set-up stays out */
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
