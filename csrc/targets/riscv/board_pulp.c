/* pulp-open board (GVSoC's PULP model): the fabric controller (mhartid
 * 0x3E0) boots, enables the cluster instruction cache and starts the 8
 * cluster cores through the cluster control unit; forks run on the cluster
 * cores while the fabric controller waits. Waiting is a polling loop here
 * (the cluster event unit could put cores to sleep instead).
 *
 * The tile buffer is the cluster L1 TCDM; the DMA backend (pt_dma.h) is a
 * memcpy placeholder until a cluster-DMA driver replaces it. */
#include <stdint.h>
#include <string.h>
#include "board.h"
#include "pt_riscv.h"
#include "pulptrain/pt_dma.h"

#define PULP_CLUSTER_CORES 8
#define PULP_CLUSTER_FETCH_ENABLE ((volatile uint32_t *)0x10200008u)
#define PULP_CLUSTER_BOOT_ADDR ((volatile uint32_t *)0x10200040u)  /* + 4 * core */
#define PULP_CLUSTER_ICACHE_ENABLE ((volatile uint32_t *)0x10201400u)
#define PULP_L1_BASE ((void *)0x10000000u)

/* pulp-open's TCDM is 64 KiB (VEGA: 128 KiB); a board build may override. */
#ifndef PT_RV_L1_BYTES
#define PT_RV_L1_BYTES (64 * 1024)
#endif

extern void _start(void);

/* The cluster DMA backend of pt_dma.h. Placeholder: the copy is done at
 * issue time with memcpy; a driver for the cluster DMA (mchan) replaces
 * these two functions and nothing else. */
static pt_dma_id pulp_dma_copy_2d(void *ctx, void *dst, const void *src, size_t row_bytes,
                                  size_t rows, size_t dst_stride, size_t src_stride)
{
    (void)ctx;
    for (size_t r = 0; r < rows; ++r)
        memcpy((uint8_t *)dst + r * dst_stride, (const uint8_t *)src + r * src_stride, row_bytes);
    return 0;
}

static void pulp_dma_wait(void *ctx, pt_dma_id id)
{
    (void)ctx;
    (void)id;
    pt_rv_fence();  /* the copy's writes reach every cluster core */
}

static const pt_dma_backend pulp_dma = {pulp_dma_copy_2d, pulp_dma_wait, NULL};

int pt_rv_board_start(const void *boot_info)
{
    (void)boot_info;
    int cores = PULP_CLUSTER_CORES < PT_RV_MAX_HARTS ? PULP_CLUSTER_CORES : PT_RV_MAX_HARTS;
    pt_dma_set_backend(&pulp_dma);
    *PULP_CLUSTER_ICACHE_ENABLE = 0xffffffffu;
    for (int c = 0; c < cores; ++c) PULP_CLUSTER_BOOT_ADDR[c] = (uint32_t)(uintptr_t)_start;
    pt_rv_fence();
    *PULP_CLUSTER_FETCH_ENABLE = (1u << cores) - 1u;
    for (int c = 0; c < cores; ++c)
        while (!pt_rv_is_online(c)) {
        }
    return cores;
}

int pt_rv_board_slot(void)
{
    uint32_t hartid;
    __asm__ volatile("csrr %0, mhartid" : "=r"(hartid));
    return hartid == PT_RV_PULP_FC_HARTID ? PT_RV_MAX_HARTS : (int)(hartid & 0x1f);
}

int pt_rv_board_caller_computes(void) { return 0; }

void pt_rv_board_wake(int slot) { (void)slot; }
void pt_rv_board_clear_wake(void) {}
void pt_rv_board_idle(void) { __asm__ volatile("nop; nop; nop; nop" ::: "memory"); }

void *pt_riscv_l1_buffer(size_t *bytes)
{
    *bytes = PT_RV_L1_BYTES;
    return PULP_L1_BASE;
}
