/* pt_riscv.h - target services of the bare-metal RISC-V builds, for
 * benchmarks and the tile layer (not used by the kernels themselves).
 *
 * Performance counter: on QEMU virt, minstret. Under -icount shift=0 it is
 * exact but machine-wide: QEMU runs the harts one after another and every
 * hart's minstret reads the same global count of retired instructions. So
 * the caller's delta around a kernel call is the instructions of all cores
 * together, and the backend measures each core's own share as its delta
 * around every task it runs minus the deltas around its sleeps (wfi, while
 * the others run). On pulp-open the counter is mcycle (GVSoC's modelled
 * cycles, per core; the cluster sleeps are polling loops there).
 *
 * L1: on pulp-open the tile buffer of the tiled executor (pt_tile.h) is the
 * cluster TCDM; on QEMU virt it is a static buffer. Copies between L2 and L1
 * go through the DMA seam of pt_dma.h: pulp-open installs its backend at
 * boot (a memcpy placeholder until a cluster-DMA driver fills it in), virt
 * keeps the default memcpy backend. */
#ifndef PT_RISCV_H
#define PT_RISCV_H

#include <stddef.h>
#include <stdint.h>

#ifdef PT_RV_PULP
#define PT_RISCV_COUNTER_NAME "mcycle"
static inline uint64_t pt_riscv_counter(void)
{
    uint32_t lo;
    __asm__ volatile("csrr %0, mcycle" : "=r"(lo));
    return lo;  /* deltas of one kernel call fit in 32 bits */
}
#else
#define PT_RISCV_COUNTER_NAME "minstret"
static inline uint64_t pt_riscv_counter(void)
{
    uint32_t hi, lo, hi2;
    do {
        __asm__ volatile("csrr %0, minstreth" : "=r"(hi));
        __asm__ volatile("csrr %0, minstret" : "=r"(lo));
        __asm__ volatile("csrr %0, minstreth" : "=r"(hi2));
    } while (hi != hi2);
    return ((uint64_t)hi << 32) | lo;
}
#endif

/* Zero every core's task counter. */
void pt_riscv_task_count_reset(void);

/* Counter ticks core `core` spent inside tasks, sleeps excluded, since the
 * last reset. */
uint64_t pt_riscv_task_count(int core);

/* The tile buffer: base address and size in bytes. */
void *pt_riscv_l1_buffer(size_t *bytes);

#endif
