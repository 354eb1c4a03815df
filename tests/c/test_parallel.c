/* The parallel seam on whatever backend the build links (pthread pool
 * natively, harts on RISC-V): every core runs its share once per fork,
 * barriers hold across many rounds, nested forks run serially, and forks
 * larger than the machine still cover all the work. */
#if !defined(__riscv)
#define _POSIX_C_SOURCE 200809L
#include <sys/wait.h>
#include <unistd.h>
#endif
#include "pt_test.h"
#include "pulptrain/pulptrain.h"

#define ROUNDS 200

typedef struct round_job {
    int counts[PT_MAX_THREADS];
    int ids_seen[PT_MAX_THREADS];
    int errors;
    int nested_cores;
} round_job;

static void rounds_task(void *arg, int core, int ncores)
{
    round_job *job = (round_job *)arg;
    job->ids_seen[core] += 1;
    for (int r = 0; r < ROUNDS; ++r) {
        job->counts[core] = r + 1;
        pt_barrier();
        /* every core has finished round r before anyone starts round r+1 */
        for (int c = 0; c < ncores; ++c)
            if (job->counts[c] != r + 1) job->errors = 1;
        pt_barrier();
    }
}

static void inner_task(void *arg, int core, int ncores)
{
    round_job *job = (round_job *)arg;
    job->nested_cores = ncores;
    pt_barrier();  /* a no-op in a serial fork */
}

static void nested_task(void *arg, int core, int ncores)
{
    round_job *job = (round_job *)arg;
    if (core == 0) pt_fork(ncores, inner_task, job);
}

/* Sum of 0..n-1 over a pt_split, one partial per core, combined in order. */
typedef struct split_job {
    size_t n;
    unsigned long long partial[PT_MAX_THREADS];
} split_job;

static void split_task(void *arg, int core, int ncores)
{
    split_job *job = (split_job *)arg;
    size_t b, e;
    pt_split(job->n, core, ncores, &b, &e);
    unsigned long long s = 0;
    for (size_t i = b; i < e; ++i) s += i;
    job->partial[core] = s;
}

#if !defined(__riscv)
/* A process forked after the pool (and the DMA thread) started: the child's
 * forks and copies must still work (fork() copies only the calling thread;
 * a child waiting for workers it does not have would hang; alarm() turns a
 * hang into a failure). */
static void test_fork_child(void)
{
    static split_job before;
    before.n = 100;
    if (pt_fork(PT_MAX_THREADS, split_task, &before) != PT_OK) return;   /* workers now exist */
    PT_CHECK(pt_dma_thread_start() == PT_OK, "DMA thread start");
    /* let the engine thread finish starting (a copy through it): a fork while
     * a thread is still being created can leave a sanitizer's thread
     * registry locked in the child, which is the sanitizer's limit, not ours */
    float warm_src[4] = {1, 2, 3, 4}, warm_dst[4];
    pt_dma_wait(pt_dma_copy_1d_async(warm_dst, warm_src, sizeof warm_src));
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        alarm(20);
        static split_job sj;
        sj.n = 1000;
        int ok = pt_fork(PT_MAX_THREADS, split_task, &sj) == PT_OK;
        unsigned long long total = 0;
        for (int c = 0; c < PT_MAX_THREADS; ++c) total += sj.partial[c];
        float src[64], dst[64];
        for (int i = 0; i < 64; ++i) src[i] = (float)i;
        pt_dma_wait(pt_dma_copy_1d_async(dst, src, sizeof src));
        ok &= total == 999ull * 1000ull / 2ull && dst[63] == 63.0f && !pt_dma_thread_running();
        _exit(ok ? 0 : 1);
    }
    int status = 0;
    PT_CHECK(pid > 0 && waitpid(pid, &status, 0) == pid, "fork / waitpid");
    PT_CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0,
             "a forked child's pt_fork and DMA work (status %d%s)", status,
             WIFSIGNALED(status) ? ", killed: it hung" : "");
    PT_CHECK(pt_dma_thread_stop() == PT_OK, "DMA thread stop");
    /* the parent's pool still works */
    static split_job after;
    after.n = 10;
    PT_CHECK(pt_fork(PT_MAX_THREADS, split_task, &after) == PT_OK, "parent fork after the child");
}
#endif

int main(void)
{
    int max = pt_parallel_max_cores();
    printf("parallel backend: %d cores\n", max);
    PT_CHECK(max >= 1 && max <= PT_MAX_THREADS, "max cores %d", max);

    for (int n = 1; n <= max; ++n) {
        static round_job job;
        memset(&job, 0, sizeof job);
        PT_CHECK(pt_fork(n, rounds_task, &job) == PT_OK, "fork(%d)", n);
        int once = 1;
        for (int c = 0; c < n; ++c) once &= job.ids_seen[c] == 1;
        PT_CHECK(once && job.errors == 0, "%d cores ran once each and %d barrier rounds held", n,
                 ROUNDS);

        memset(&job, 0, sizeof job);
        PT_CHECK(pt_fork(n, nested_task, &job) == PT_OK && job.nested_cores == 1,
                 "nested fork inside a %d-core fork ran serially (%d)", n, job.nested_cores);
    }

    /* More cores than the machine has: the work is still fully covered. */
    static split_job sj;
    memset(&sj, 0, sizeof sj);
    sj.n = 1000;
    PT_CHECK(pt_fork(PT_MAX_THREADS, split_task, &sj) == PT_OK, "fork(PT_MAX_THREADS)");
    unsigned long long total = 0;
    for (int c = 0; c < PT_MAX_THREADS; ++c) total += sj.partial[c];
    PT_CHECK(total == 999ull * 1000ull / 2ull, "split covered everything (%llu)", total);
#if !defined(__riscv)
    test_fork_child();
#endif
    return pt_test_finish("test_parallel");
}
