/* Measured FP32 fused-multiply-add peak of this machine, so benchmarks report
 * "fraction of peak" from a number taken in the same run, not from a data
 * sheet. Built as a shared library by bench/bench_gemm.py (no -march flags:
 * the loops carry their own target attributes, like the runtime's kernels).
 *
 *   double fma_peak_gflops(int isa, int threads, double seconds, int cpu_time)
 *   isa: 0 = SSE2 multiply + add baseline, 1 = AVX2+FMA, 2 = AVX-512F
 *   Returns GFLOP/s summed over the threads (2 FLOP per lane per FMA), 0 if
 *   the CPU lacks the ISA. cpu_time = 1 divides each thread's work by its own
 *   CPU time instead of the wall time: on a shared machine that is the rate
 *   of a core while the thread actually runs on it. Each thread runs 16
 *   independent FMA chains, enough to hide the FMA latency on two ports. */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <time.h>

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>

#define CHAINS 16
#define INNER 1000

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static double thread_cpu(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

typedef struct peak_job {
    int isa, cpu_time;
    double seconds;
    double flops;
    float sink;
} peak_job;

__attribute__((target("avx512f,fma"))) static double run_avx512(double seconds, int cpu_time, float *sink)
{
    __m512 acc[CHAINS];
    const __m512 a = _mm512_set1_ps(0.999999f), b = _mm512_set1_ps(1e-7f);
    for (int i = 0; i < CHAINS; ++i) acc[i] = _mm512_set1_ps((float)i);
    double flops = 0.0, t0 = now(), c0 = thread_cpu();
    do {
        for (int r = 0; r < INNER; ++r)
#pragma GCC unroll 16
            for (int i = 0; i < CHAINS; ++i) acc[i] = _mm512_fmadd_ps(acc[i], a, b);
        flops += (double)INNER * CHAINS * 16 * 2;
    } while (now() - t0 < seconds);
    double dt = cpu_time ? thread_cpu() - c0 : now() - t0;
    __m512 s = acc[0];
    for (int i = 1; i < CHAINS; ++i) s = _mm512_add_ps(s, acc[i]);
    *sink = _mm512_reduce_add_ps(s);
    return flops / dt;
}

__attribute__((target("avx2,fma"))) static double run_avx2(double seconds, int cpu_time, float *sink)
{
    __m256 acc[CHAINS];
    const __m256 a = _mm256_set1_ps(0.999999f), b = _mm256_set1_ps(1e-7f);
    for (int i = 0; i < CHAINS; ++i) acc[i] = _mm256_set1_ps((float)i);
    double flops = 0.0, t0 = now(), c0 = thread_cpu();
    do {
        for (int r = 0; r < INNER; ++r)
#pragma GCC unroll 16
            for (int i = 0; i < CHAINS; ++i) acc[i] = _mm256_fmadd_ps(acc[i], a, b);
        flops += (double)INNER * CHAINS * 8 * 2;
    } while (now() - t0 < seconds);
    double dt = cpu_time ? thread_cpu() - c0 : now() - t0;
    float out[8];
    __m256 s = acc[0];
    for (int i = 1; i < CHAINS; ++i) s = _mm256_add_ps(s, acc[i]);
    _mm256_storeu_ps(out, s);
    *sink = out[0];
    return flops / dt;
}

static double run_sse2(double seconds, int cpu_time, float *sink)
{
    __m128 acc[CHAINS];
    const __m128 a = _mm_set1_ps(0.999999f), b = _mm_set1_ps(1e-7f);
    for (int i = 0; i < CHAINS; ++i) acc[i] = _mm_set1_ps((float)i);
    double flops = 0.0, t0 = now(), c0 = thread_cpu();
    do {
        for (int r = 0; r < INNER; ++r)
            for (int i = 0; i < CHAINS; ++i) acc[i] = _mm_add_ps(_mm_mul_ps(acc[i], a), b);
        flops += (double)INNER * CHAINS * 4 * 2;
    } while (now() - t0 < seconds);
    double dt = cpu_time ? thread_cpu() - c0 : now() - t0;
    float out[4];
    __m128 s = acc[0];
    for (int i = 1; i < CHAINS; ++i) s = _mm_add_ps(s, acc[i]);
    _mm_storeu_ps(out, s);
    *sink = out[0];
    return flops / dt;
}

static void *peak_thread(void *arg)
{
    peak_job *job = (peak_job *)arg;
    job->flops = job->isa == 2 ? run_avx512(job->seconds, job->cpu_time, &job->sink)
               : job->isa == 1 ? run_avx2(job->seconds, job->cpu_time, &job->sink)
                               : run_sse2(job->seconds, job->cpu_time, &job->sink);
    return NULL;
}

double fma_peak_gflops(int isa, int threads, double seconds, int cpu_time)
{
    __builtin_cpu_init();
    if ((isa == 2 && !__builtin_cpu_supports("avx512f")) ||
        (isa == 1 && !(__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))))
        return 0.0;
    if (threads < 1 || threads > 64) return 0.0;
    peak_job jobs[64];
    pthread_t tids[64];
    for (int t = 0; t < threads; ++t) {
        jobs[t].isa = isa;
        jobs[t].cpu_time = cpu_time;
        jobs[t].seconds = seconds;
        jobs[t].flops = 0.0;
        if (t > 0 && pthread_create(&tids[t], NULL, peak_thread, &jobs[t]) != 0) return 0.0;
    }
    peak_thread(&jobs[0]);
    double total = jobs[0].flops;
    for (int t = 1; t < threads; ++t) {
        pthread_join(tids[t], NULL);
        total += jobs[t].flops;
    }
    return total * 1e-9;
}

#else

double fma_peak_gflops(int isa, int threads, double seconds, int cpu_time)
{
    (void)isa; (void)threads; (void)seconds; (void)cpu_time;
    return 0.0;
}

#endif
