/* Native backend of the parallel seam: a persistent pthread pool.
 *
 * Workers are started lazily on the first fork that needs them and then
 * wait on a condition variable for the next generation of work. Core 0 is
 * the calling thread. Forks from different caller threads are serialised by
 * fork_lock; a fork from inside a task runs serially on the caller. A child
 * process (fork()) starts with an empty pool (atfork handlers below). */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <unistd.h>
#include "pulptrain/pt_parallel.h"

typedef struct pool_state {
    pthread_mutex_t lock;
    pthread_cond_t work_cv;       /* workers wait here for a new generation */
    pthread_cond_t done_cv;       /* the caller waits here for workers to finish */
    pthread_mutex_t fork_lock;    /* one fork at a time */
    int started;                  /* worker threads running (cores 1..started) */
    unsigned long generation;
    pt_task_fn fn;
    void *arg;
    int num_cores;                /* cores in the current fork */
    int pending;                  /* workers of this generation still running */
    /* barrier */
    pthread_mutex_t bar_lock;
    pthread_cond_t bar_cv;
    int bar_count;
    unsigned long bar_phase;
} pool_state;

static pool_state pool = {
    PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, PTHREAD_COND_INITIALIZER,
    PTHREAD_MUTEX_INITIALIZER, 0, 0, 0, 0, 0, 0,
    PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0};

/* Generation each worker was created at: a worker must not miss a fork
 * published between its creation and its first look at the pool. */
static unsigned long start_generation[PT_MAX_THREADS];

static __thread int in_task = 0;       /* set while this thread runs a task */
static __thread int serial_fork = 0;   /* the current task is a nested, serial one */

static void *worker_main(void *p)
{
    int core = (int)(size_t)p;
    pthread_mutex_lock(&pool.lock);
    unsigned long seen = start_generation[core];
    for (;;) {
        while (pool.generation == seen) pthread_cond_wait(&pool.work_cv, &pool.lock);
        seen = pool.generation;
        if (core < pool.num_cores) {
            pt_task_fn fn = pool.fn;
            void *arg = pool.arg;
            int n = pool.num_cores;
            pthread_mutex_unlock(&pool.lock);
            in_task = 1;
            fn(arg, core, n);
            in_task = 0;
            pthread_mutex_lock(&pool.lock);
            if (--pool.pending == 0) pthread_cond_signal(&pool.done_cv);
        }
    }
    return NULL;
}

/* fork(): the child gets only the calling thread, so a pool with workers
 * would wait for them forever. Around fork() the pool's locks are held (no
 * fork, barrier or worker is half-way through them); the child then starts
 * with no workers (the next fork makes them anew), its locks released and
 * its condition variables fresh. */
static void atfork_prepare(void)
{
    pthread_mutex_lock(&pool.fork_lock);
    pthread_mutex_lock(&pool.lock);
    pthread_mutex_lock(&pool.bar_lock);
}

static void atfork_parent(void)
{
    pthread_mutex_unlock(&pool.bar_lock);
    pthread_mutex_unlock(&pool.lock);
    pthread_mutex_unlock(&pool.fork_lock);
}

static void atfork_child(void)
{
    pool.started = 0;
    pool.pending = 0;
    pool.bar_count = 0;
    pthread_cond_init(&pool.work_cv, NULL);
    pthread_cond_init(&pool.done_cv, NULL);
    pthread_cond_init(&pool.bar_cv, NULL);
    atfork_parent();
}

static pthread_once_t atfork_once = PTHREAD_ONCE_INIT;
static void register_atfork(void) { pthread_atfork(atfork_prepare, atfork_parent, atfork_child); }

static int ensure_workers(int num_cores)
{
    /* called with fork_lock held */
    if (pool.started < num_cores - 1) pthread_once(&atfork_once, register_atfork);
    while (pool.started < num_cores - 1) {
        pthread_t tid;
        pthread_attr_t attr;
        int core = pool.started + 1;
        if (pthread_attr_init(&attr) != 0) return -1;
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        pthread_mutex_lock(&pool.lock);
        start_generation[core] = pool.generation;
        int rc = pthread_create(&tid, &attr, worker_main, (void *)(size_t)core);
        if (rc == 0) pool.started++;
        pthread_mutex_unlock(&pool.lock);
        pthread_attr_destroy(&attr);
        if (rc != 0) return -1;
    }
    return 0;
}

pt_status pt_fork(int num_cores, pt_task_fn fn, void *arg)
{
    if (!fn) return PT_ERR_NULL;
    if (num_cores < 1 || num_cores > PT_MAX_THREADS) return PT_ERR_THREADS;
    if (num_cores == 1 || in_task) {
        int was_in = in_task, was_serial = serial_fork;
        in_task = 1;
        serial_fork = 1;
        fn(arg, 0, 1);
        in_task = was_in;
        serial_fork = was_serial;
        return PT_OK;
    }
    pthread_mutex_lock(&pool.fork_lock);
    if (ensure_workers(num_cores) != 0) {
        pthread_mutex_unlock(&pool.fork_lock);
        return PT_ERR_THREADS;
    }
    pthread_mutex_lock(&pool.lock);
    pool.fn = fn;
    pool.arg = arg;
    pool.num_cores = num_cores;
    pool.pending = num_cores - 1;
    pool.bar_count = 0;
    pool.generation++;
    pthread_cond_broadcast(&pool.work_cv);
    pthread_mutex_unlock(&pool.lock);

    in_task = 1;
    serial_fork = 0;
    fn(arg, 0, num_cores);
    in_task = 0;

    pthread_mutex_lock(&pool.lock);
    while (pool.pending > 0) pthread_cond_wait(&pool.done_cv, &pool.lock);
    pthread_mutex_unlock(&pool.lock);
    pthread_mutex_unlock(&pool.fork_lock);
    return PT_OK;
}

void pt_barrier(void)
{
    if (serial_fork || !in_task) return;
    pthread_mutex_lock(&pool.bar_lock);
    unsigned long phase = pool.bar_phase;
    if (++pool.bar_count == pool.num_cores) {
        pool.bar_count = 0;
        pool.bar_phase++;
        pthread_cond_broadcast(&pool.bar_cv);
    } else {
        while (phase == pool.bar_phase) pthread_cond_wait(&pool.bar_cv, &pool.bar_lock);
    }
    pthread_mutex_unlock(&pool.bar_lock);
}

int pt_parallel_max_cores(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    if (n < 1) n = 1;
    if (n > PT_MAX_THREADS) n = PT_MAX_THREADS;
    return (int)n;
}
