/* internal.h - helpers shared by kernel sources; not part of the public API. */
#ifndef PULPTRAIN_INTERNAL_H
#define PULPTRAIN_INTERNAL_H

#include "pt_types.h"
#include "pt_parallel.h"

/* Elementwise kernels below this many elements run on one core: the fork
 * costs more than it saves. Results do not depend on it. */
#define PT_PARALLEL_MIN_ELEMS 32768

/* Validate ctx: non-NULL, thread count in range, scratch present and large
 * enough for need bytes. */
static inline pt_status pt_check_ctx(const pt_ctx *ctx, size_t need)
{
    if (!ctx) return PT_ERR_NULL;
    if (ctx->num_threads < 1 || ctx->num_threads > PT_MAX_THREADS) return PT_ERR_THREADS;
    if (need > 0 && (!ctx->scratch || ctx->scratch_bytes < need)) return PT_ERR_SCRATCH;
    return PT_OK;
}

/* Threads to use for a job of work_items independent items: never more cores
 * than items, and one core for tiny jobs. */
static inline int pt_threads_for(const pt_ctx *ctx, size_t work_items, size_t min_items)
{
    int n = ctx->num_threads;
    if (work_items < min_items) return 1;
    if ((size_t)n > work_items) n = (int)work_items;
    return n < 1 ? 1 : n;
}

/* Checked size arithmetic: returns 0 on overflow. */
static inline int pt_mul_size(size_t a, size_t b, size_t *out)
{
    if (a != 0 && b > (size_t)-1 / a) return 0;
    *out = a * b;
    return 1;
}

static inline int pt_dims_valid(pt_dims d)
{
    return d.n > 0 && d.h > 0 && d.w > 0 && d.c > 0;
}

#endif
