/* DMA dispatch and the memcpy backend. Plain C99 with only <string.h>, so the
 * bare-metal RISC-V builds compile this same file and install their cluster
 * DMA backend on top of it. */
#include <string.h>
#include "pulptrain/pt_dma.h"

static pt_dma_id memcpy_copy_2d(void *ctx, void *dst, const void *src, size_t row_bytes,
                                size_t rows, size_t dst_stride, size_t src_stride)
{
    (void)ctx;
    unsigned char *d = (unsigned char *)dst;
    const unsigned char *s = (const unsigned char *)src;
    if (dst_stride == row_bytes && src_stride == row_bytes) {
        memcpy(d, s, row_bytes * rows);
    } else {
        for (size_t r = 0; r < rows; ++r) memcpy(d + r * dst_stride, s + r * src_stride, row_bytes);
    }
    return 0; /* complete already: every id is done */
}

static void memcpy_wait(void *ctx, pt_dma_id id)
{
    (void)ctx;
    (void)id;
}

const pt_dma_backend pt_dma_memcpy_backend = {memcpy_copy_2d, memcpy_wait, NULL};

static pt_dma_backend active = {memcpy_copy_2d, memcpy_wait, NULL};
static uint64_t bytes_issued = 0;

pt_status pt_dma_set_backend(const pt_dma_backend *backend)
{
    if (!backend) {
        active = pt_dma_memcpy_backend;
        return PT_OK;
    }
    if (!backend->copy_2d || !backend->wait) return PT_ERR_NULL;
    active = *backend;
    return PT_OK;
}

pt_dma_id pt_dma_copy_2d_async(void *dst, const void *src, size_t row_bytes, size_t rows,
                               size_t dst_stride, size_t src_stride)
{
    bytes_issued += (uint64_t)row_bytes * rows;
    return active.copy_2d(active.ctx, dst, src, row_bytes, rows, dst_stride, src_stride);
}

pt_dma_id pt_dma_copy_1d_async(void *dst, const void *src, size_t bytes)
{
    return pt_dma_copy_2d_async(dst, src, bytes, 1, bytes, bytes);
}

void pt_dma_wait(pt_dma_id id) { active.wait(active.ctx, id); }

uint64_t pt_dma_bytes_issued(void) { return bytes_issued; }

void pt_dma_reset_bytes_issued(void) { bytes_issued = 0; }
