/* A DMA engine emulated by one POSIX thread (native builds only).
 *
 * The memcpy backend copies when a transfer is issued, so the tiled
 * executor's double buffering overlaps nothing natively. This backend queues
 * each transfer and returns; a helper thread performs the copies in issue
 * order while the cores compute, as the cluster DMA of a PULP target does.
 * pt_dma_wait(id) blocks until transfer id (and so every earlier one) has
 * been copied. The queue holds DMA_QUEUE transfers; issuing into a full
 * queue blocks until the engine frees a slot.
 *
 * A child process (fork()) starts on the memcpy backend.
 *
 * Ids are the low 31 bits of a 64-bit issue counter; a wait reconstructs the
 * counter value as the latest one issued with those bits, which is exact as
 * long as fewer than 2^31 transfers are in flight (at most DMA_QUEUE are). */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include "pulptrain/pt_dma.h"

#define DMA_QUEUE 64
#define ID_MASK 0x7fffffffu

typedef struct dma_job {
    void *dst;
    const void *src;
    size_t row_bytes, rows, dst_stride, src_stride;
} dma_job;

static struct {
    pthread_mutex_t mu;
    pthread_cond_t work, done_cv;
    dma_job queue[DMA_QUEUE];
    uint64_t issued, done;   /* transfers issued / completed, in order */
    int running, stopping;
    pthread_t thread;
} eng = {.mu = PTHREAD_MUTEX_INITIALIZER, .work = PTHREAD_COND_INITIALIZER, .done_cv = PTHREAD_COND_INITIALIZER};

static void *engine(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&eng.mu);
    for (;;) {
        while (eng.done == eng.issued && !eng.stopping) pthread_cond_wait(&eng.work, &eng.mu);
        if (eng.done == eng.issued) break;            /* stopping, queue drained */
        const dma_job job = eng.queue[eng.done % DMA_QUEUE];
        pthread_mutex_unlock(&eng.mu);
        /* the copy itself is the memcpy backend's */
        pt_dma_memcpy_backend.copy_2d(NULL, job.dst, job.src, job.row_bytes, job.rows, job.dst_stride,
                                      job.src_stride);
        pthread_mutex_lock(&eng.mu);
        ++eng.done;
        pthread_cond_broadcast(&eng.done_cv);
    }
    pthread_mutex_unlock(&eng.mu);
    return NULL;
}

static pt_dma_id thread_copy_2d(void *ctx, void *dst, const void *src, size_t row_bytes, size_t rows,
                                size_t dst_stride, size_t src_stride)
{
    (void)ctx;
    pthread_mutex_lock(&eng.mu);
    while (eng.issued - eng.done >= DMA_QUEUE) pthread_cond_wait(&eng.done_cv, &eng.mu);
    const dma_job job = {dst, src, row_bytes, rows, dst_stride, src_stride};
    eng.queue[eng.issued % DMA_QUEUE] = job;
    const pt_dma_id id = (pt_dma_id)(eng.issued & ID_MASK);
    ++eng.issued;
    pthread_cond_signal(&eng.work);
    pthread_mutex_unlock(&eng.mu);
    return id;
}

static void thread_wait(void *ctx, pt_dma_id id)
{
    (void)ctx;
    pthread_mutex_lock(&eng.mu);
    if (eng.issued > 0) {
        const uint64_t last = eng.issued - 1;
        const uint64_t seq = last - ((((uint64_t)last & ID_MASK) - (uint64_t)(uint32_t)id) & ID_MASK);
        while (eng.done <= seq) pthread_cond_wait(&eng.done_cv, &eng.mu);
    }
    pthread_mutex_unlock(&eng.mu);
}

/* fork(): the child has no engine thread. The queue lock is held around
 * fork(); the child goes back to the memcpy backend with an empty queue
 * (copies queued by the parent are the parent's). */
static void atfork_prepare(void) { pthread_mutex_lock(&eng.mu); }
static void atfork_parent(void) { pthread_mutex_unlock(&eng.mu); }
static void atfork_child(void)
{
    if (eng.running) pt_dma_set_backend(NULL);
    eng.running = eng.stopping = 0;
    eng.issued = eng.done = 0;
    pthread_cond_init(&eng.work, NULL);
    pthread_cond_init(&eng.done_cv, NULL);
    pthread_mutex_unlock(&eng.mu);
}

static pthread_once_t atfork_once = PTHREAD_ONCE_INIT;
static void register_atfork(void) { pthread_atfork(atfork_prepare, atfork_parent, atfork_child); }

pt_status pt_dma_thread_start(void)
{
    if (eng.running) return PT_OK;
    pthread_once(&atfork_once, register_atfork);
    eng.stopping = 0;
    if (pthread_create(&eng.thread, NULL, engine, NULL) != 0) return PT_ERR_THREADS;
    eng.running = 1;
    const pt_dma_backend backend = {thread_copy_2d, thread_wait, NULL};
    return pt_dma_set_backend(&backend);
}

pt_status pt_dma_thread_stop(void)
{
    if (!eng.running) return PT_OK;
    pt_dma_set_backend(NULL);
    pthread_mutex_lock(&eng.mu);
    eng.stopping = 1;
    pthread_cond_signal(&eng.work);
    pthread_mutex_unlock(&eng.mu);
    pthread_join(eng.thread, NULL);    /* the engine drains the queue first */
    eng.running = 0;
    return PT_OK;
}

int pt_dma_thread_running(void) { return eng.running; }
