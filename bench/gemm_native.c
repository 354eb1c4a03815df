/* Native GEMM benchmark: the adaptive stage's GEMMs (batch 128) through
 * pt_sgemm_f32, as GFLOP/s and as a fraction of the FMA peak measured in the
 * same run (bench/fma_peak.c). Rates use CPU time (the process's, summed over
 * threads) so a busy shared machine shifts them less; wall rates are printed
 * too. Build and run: make bench-gemm  (or: build/bench/gemm_native [threads]
 * [reps per round] Prints one JSON object. */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include "pulptrain/pulptrain.h"
#include "bench_args.h"

double fma_peak_gflops(int isa, int threads, double seconds, int cpu_time);

static double clock_s(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

typedef struct shape {
    const char *name;
    int m, n, k, trans_a, trans_b;
} shape;

/* rows = batch * H * W; fwd: [rows, Cin] x W^T; grad_x: grad_y W; grad_w: grad_y^T x */
#define LAYER(label, rows, cin, cout)                                    \
    {label " fwd", rows, cout, cin, 0, 1},                               \
    {label " grad_x", rows, cin, cout, 0, 0},                            \
    {label " grad_w", cout, cin, rows, 1, 0}

static const shape shapes[] = {
    LAYER("pw 512->512 @8x8", 128 * 64, 512, 512),
    LAYER("pw 512->1024 @4x4", 128 * 16, 512, 1024),
    LAYER("pw 1024->1024 @4x4", 128 * 16, 1024, 1024),
    LAYER("fc 1024->50", 128, 1024, 50),
};

int main(int argc, char **argv)
{
    if (argc > 3) {
        fprintf(stderr, "usage: gemm_native [threads 1..%d] [reps per round 1..1000]\n", PT_MAX_THREADS);
        return 2;
    }
    int threads = argc > 1 ? bench_parse_int("gemm_native", "threads", argv[1], 1, PT_MAX_THREADS)
                           : pt_parallel_max_cores();
    int reps = argc > 2 ? bench_parse_int("gemm_native", "reps", argv[2], 1, 1000) : 5;
    double peak_core = 0.0;
    for (int i = 0; i < 20; ++i) {
        double g = fma_peak_gflops(2, 1, 0.05, 1);
        if (g > peak_core) peak_core = g;
    }
    if (peak_core == 0.0)  /* no AVX-512: the AVX2 peak */
        for (int i = 0; i < 20; ++i) {
            double g = fma_peak_gflops(1, 1, 0.05, 1);
            if (g > peak_core) peak_core = g;
        }
    printf("{\"isa\": \"%s\", \"threads\": %d, \"peak_gflops_per_core_cpu\": %.1f, \"gemms\": [\n",
           pt_gemm_isa_name(pt_gemm_get_isa()), threads, peak_core);
    enum { COUNT = sizeof(shapes) / sizeof(shapes[0]), ROUNDS = 4 };
    double best_cpu[COUNT], best_wall[COUNT];
    for (size_t s = 0; s < COUNT; ++s) best_cpu[s] = best_wall[s] = 1e30;
    /* rounds over all shapes, best of each: a burst of load hits them alike */
    for (int round = 0; round < ROUNDS; ++round)
        for (size_t s = 0; s < COUNT; ++s) {
            const shape *sh = &shapes[s];
            pt_gemm_params p = {sh->m, sh->n, sh->k, sh->trans_a, sh->trans_b,
                                sh->trans_a ? sh->m : sh->k, sh->trans_b ? sh->k : sh->n, sh->n, 0, PT_ACT_NONE};
            size_t a_len = (size_t)sh->m * sh->k, b_len = (size_t)sh->n * sh->k;
            float *a = malloc(a_len * sizeof(float)), *b = malloc(b_len * sizeof(float));
            float *c = malloc((size_t)sh->m * sh->n * sizeof(float));
            for (size_t i = 0; i < a_len; ++i) a[i] = (float)(i % 13) * 0.01f - 0.06f;
            for (size_t i = 0; i < b_len; ++i) b[i] = (float)(i % 7) * 0.01f - 0.03f;
            size_t bytes = pt_sgemm_f32_scratch_bytes(&p, threads);
            void *scratch = malloc(bytes);
            pt_ctx ctx = {threads, scratch, bytes};
            pt_sgemm_f32(&ctx, &p, a, b, NULL, c);
            for (int r = 0; r < reps; ++r) {
                double c0 = clock_s(CLOCK_PROCESS_CPUTIME_ID), w0 = clock_s(CLOCK_MONOTONIC);
                pt_sgemm_f32(&ctx, &p, a, b, NULL, c);
                double dc = clock_s(CLOCK_PROCESS_CPUTIME_ID) - c0, dw = clock_s(CLOCK_MONOTONIC) - w0;
                if (dc < best_cpu[s]) best_cpu[s] = dc;
                if (dw < best_wall[s]) best_wall[s] = dw;
            }
            free(a); free(b); free(c); free(scratch);
        }
    for (size_t s = 0; s < COUNT; ++s) {
        const shape *sh = &shapes[s];
        double flop = 2.0 * sh->m * sh->n * sh->k;
        double per_core = flop / best_cpu[s] / 1e9;  /* CPU time is summed over the threads */
        printf("  {\"gemm\": \"%s\", \"m\": %d, \"n\": %d, \"k\": %d, \"gflops_per_core_cpu\": %.1f, "
               "\"fraction_of_peak\": %.3f, \"gflops_wall\": %.1f}%s\n",
               sh->name, sh->m, sh->n, sh->k, per_core, per_core / peak_core, flop / best_wall[s] / 1e9,
               s + 1 < COUNT ? "," : "");
    }
    printf("]}\n");
    return 0;
}
