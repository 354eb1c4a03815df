/* pt_parallel.h - the only platform seam of the runtime.
 *
 * pt_fork(n, fn, arg) runs fn(arg, core_id, n) on n cores (core 0 is the
 * caller) and returns when all of them have finished. Inside a task,
 * pt_barrier() synchronises the n cores of the current fork.
 *
 * Backends (csrc/platform/): a persistent pthread pool natively, a serial one
 * (n is clamped to 1) and bare-metal harts on RISC-V. Kernels split their work
 * by (core_id, num_cores) with pt_split() and never depend on n for the order
 * of any floating-point reduction, so results are bitwise identical for any
 * thread count. */
#ifndef PULPTRAIN_PT_PARALLEL_H
#define PULPTRAIN_PT_PARALLEL_H

#include <stddef.h>
#include "pt_status.h"

#ifdef __cplusplus
extern "C" {
#endif

#define PT_MAX_THREADS 64

typedef void (*pt_task_fn)(void *arg, int core_id, int num_cores);

/* Run fn on num_cores cores and wait. num_cores outside [1, PT_MAX_THREADS]
 * gives PT_ERR_THREADS and runs nothing. A fork from inside a task runs the
 * nested task serially on the calling core (num_cores becomes 1). */
pt_status pt_fork(int num_cores, pt_task_fn fn, void *arg);

/* Wait until every core of the current fork has reached the barrier. */
void pt_barrier(void);

/* Cores the backend can run at once (1 for the serial backend). */
int pt_parallel_max_cores(void);

/* Split [0, total) into num_cores contiguous chunks: core core_id gets
 * [*begin, *end). Chunks are ceil(total / num_cores) long, the last ones
 * shorter or empty. */
static inline void pt_split(size_t total, int core_id, int num_cores,
                            size_t *begin, size_t *end)
{
    size_t chunk = (total + (size_t)num_cores - 1) / (size_t)num_cores;
    size_t b = chunk * (size_t)core_id;
    size_t e = b + chunk;
    if (b > total) b = total;
    if (e > total) e = total;
    *begin = b;
    *end = e;
}

#ifdef __cplusplus
}
#endif
#endif
