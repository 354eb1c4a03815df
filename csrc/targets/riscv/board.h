/* board.h - what the RISC-V parallel backend needs from a board.
 *
 * Two boards: QEMU's virt machine (harts woken by CLINT software interrupts,
 * hart count read from the device tree) and the PULP cluster of pulp-open
 * (the fabric controller starts the cluster cores through the cluster
 * control unit). A "slot" is a per-core index for stacks and flags: the
 * cores of a fork are slots 0..n-1; slot PT_RV_MAX_HARTS is the pulp-open
 * fabric controller, which forks but does not compute. */
#ifndef PT_RISCV_BOARD_H
#define PT_RISCV_BOARD_H

/* Cores a fork can use (virt: harts; pulp-open: cluster cores). */
#ifndef PT_RV_MAX_HARTS
#define PT_RV_MAX_HARTS 8
#endif

/* log2 of each slot's stack size (set by the Makefile profile). */
#ifndef PT_RV_STACK_SHIFT
#define PT_RV_STACK_SHIFT 15
#endif

#define PT_RV_PULP_FC_HARTID 0x3E0

#ifndef __ASSEMBLER__
#include <stdint.h>

/* Start the other cores; returns how many cores forks may use. boot_info
 * is the device tree on virt, unused on pulp-open. Called once by the boot
 * core after memory is initialised. */
int pt_rv_board_start(const void *boot_info);

/* Slot of the calling core. */
int pt_rv_board_slot(void);

/* 1 when the forking core computes as core 0 (virt), 0 when the cores of
 * a fork are all workers (pulp-open: the fabric controller only waits). */
int pt_rv_board_caller_computes(void);

/* Wake slot (it may be awake already), clear the caller's own pending
 * wake-up, and sleep until woken (may return early: callers re-check). A
 * waiter must clear, then check its condition, then idle, so that a wake
 * sent after the check is never lost. */
void pt_rv_board_wake(int slot);
void pt_rv_board_clear_wake(void);
void pt_rv_board_idle(void);

/* Entry of the C code on each core (called from entry.S). */
void pt_rv_boot(const void *boot_info);
void pt_rv_worker_entry(int slot);

/* Run by a worker core for ever: wait for forks and run them. */
void pt_rv_worker_loop(int slot);

/* The boot core marks the backend ready with the number of cores. */
void pt_rv_parallel_init(int cores);

/* Workers report in once (pt_rv_board_start waits for them). */
void pt_rv_mark_online(int slot);
int pt_rv_is_online(int slot);

/* Full memory fence between harts. */
static inline void pt_rv_fence(void) { __asm__ volatile("fence rw, rw" ::: "memory"); }
#endif

#endif
