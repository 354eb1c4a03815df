/* Serial backend of the parallel seam: every fork runs on the caller.
 * Used by single-core targets; results equal the pthread backend's bit for
 * bit because kernels never let the core count change a reduction order. */
#include "pulptrain/pt_parallel.h"

pt_status pt_fork(int num_cores, pt_task_fn fn, void *arg)
{
    if (!fn) return PT_ERR_NULL;
    if (num_cores < 1 || num_cores > PT_MAX_THREADS) return PT_ERR_THREADS;
    /* One core does all the work: kernels are correct for any core count,
     * and barriers inside a task are then no-ops. */
    fn(arg, 0, 1);
    return PT_OK;
}

void pt_barrier(void) {}

int pt_parallel_max_cores(void) { return 1; }
