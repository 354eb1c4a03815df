/* pt_dma.h - asynchronous copies between the large memory (L2, or host RAM
 * natively) and the small scratchpad the cores compute in (L1 / TCDM).
 *
 * The tiled executor (pt_tile.h) moves every tile through these calls and
 * waits for a copy only right before it needs the data, so a real DMA engine
 * overlaps the next tile's transfer with the current tile's compute.
 *
 *   id = pt_dma_copy_2d_async(dst, src, row_bytes, rows, dst_stride, src_stride);
 *   ... compute on other buffers ...
 *   pt_dma_wait(id);   // dst is complete, src may be reused
 *
 * A 2-D copy moves `rows` rows of `row_bytes` bytes; row r goes from
 * src + r*src_stride to dst + r*dst_stride (strides in bytes). Regions must
 * not overlap. Transfers may complete in any order; only pt_dma_wait(id)
 * orders them.
 *
 * Backend seam: the default backend copies with memcpy at issue time (the
 * wait is a no-op), which is how the native build runs. A target with a DMA
 * engine (e.g. the PULP cluster DMA) fills a pt_dma_backend and installs it
 * once at boot with pt_dma_set_backend(); nothing else in the runtime
 * changes. Contract for a backend:
 *   copy_2d  start the transfer and return an id >= 0 that stays valid until
 *            waited on (ids may be reused after that); it may block when the
 *            engine's queue is full. It is only called from one core at a
 *            time (the core that runs the tiled executor).
 *   wait     return when transfer `id` has completed (and its writes are
 *            visible to every core of the cluster).
 *   ctx      passed back unchanged to both callbacks.
 * A 1-D copy is a 2-D copy of one row. */
#ifndef PULPTRAIN_PT_DMA_H
#define PULPTRAIN_PT_DMA_H

#include <stddef.h>
#include <stdint.h>
#include "pt_status.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef int32_t pt_dma_id;

typedef struct pt_dma_backend {
    pt_dma_id (*copy_2d)(void *ctx, void *dst, const void *src, size_t row_bytes, size_t rows,
                         size_t dst_stride, size_t src_stride);
    void (*wait)(void *ctx, pt_dma_id id);
    void *ctx;
} pt_dma_backend;

/* Install a backend (NULL restores the memcpy one). PT_ERR_NULL when a
 * callback is missing. Call it while no copy is in flight. */
pt_status pt_dma_set_backend(const pt_dma_backend *backend);

/* The synchronous memcpy backend (the native default). */
extern const pt_dma_backend pt_dma_memcpy_backend;

/* Native builds (csrc/platform/dma_pthread.c): a backend whose copies run on
 * a helper thread, in issue order, while the cores compute; the way to see
 * the executor's double buffering overlap copies natively. start creates the
 * thread and installs the backend (PT_ERR_THREADS if the thread cannot be
 * made); stop waits for every queued copy, restores the memcpy backend and
 * joins the thread. Both are no-ops when already in that state; call them
 * while no tiled executor runs. Not built for bare-metal targets. */
pt_status pt_dma_thread_start(void);
pt_status pt_dma_thread_stop(void);
int pt_dma_thread_running(void);

pt_dma_id pt_dma_copy_1d_async(void *dst, const void *src, size_t bytes);
pt_dma_id pt_dma_copy_2d_async(void *dst, const void *src, size_t row_bytes, size_t rows,
                               size_t dst_stride, size_t src_stride);
void pt_dma_wait(pt_dma_id id);

/* Bytes issued through this interface since start (or the last reset): the
 * tests check the executor moves exactly what the planner predicted. Not
 * thread-safe, like the copies themselves. */
uint64_t pt_dma_bytes_issued(void);
void pt_dma_reset_bytes_issued(void);

#ifdef __cplusplus
}
#endif
#endif
