/* entry.S - first instructions of every hart (QEMU virt) or core (pulp-open).
 *
 * All harts start here. Each one gets its own stack slot below __stack
 * (slot i spans [__stack - (i+1) << PT_RV_STACK_SHIFT, __stack - i << ...));
 * the linker reserves (PT_RV_MAX_HARTS + 1) slots through __stack_size.
 *
 *   virt:      hart 0 runs the C start-up (pt_rv_boot) and main; harts
 *              1..PT_RV_MAX_HARTS-1 sleep until hart 0 wakes them with a
 *              software interrupt (CLINT msip), then enter the dispatch loop;
 *              harts beyond that sleep for ever.
 *   pulp-open: the fabric controller (mhartid 0x3E0) boots and runs main on
 *              the spare slot PT_RV_MAX_HARTS; cluster cores are started by it
 *              later (boot address = _start) and enter the dispatch loop with
 *              core id mhartid & 0x1f.
 *
 * Machine mode throughout; interrupts stay globally disabled (mstatus.MIE =
 * 0): wfi only needs mie.MSIE to wake on a pending msip. */
#include "board.h"

    .section .text.init.enter, "ax", @progbits
    .globl _start
    .type _start, @function
_start:
    .option push
    .option norelax
    la      gp, __global_pointer$
    .option pop
    la      t0, pt_rv_trap_entry
    csrw    mtvec, t0
#ifdef __riscv_flen
    li      t0, 0x2000              /* mstatus.FS = initial: enable the FPU */
    csrs    mstatus, t0
#endif
    csrr    a0, mhartid
#ifdef PT_RV_PULP
    li      t0, PT_RV_PULP_FC_HARTID
    beq     a0, t0, 1f
    andi    a0, a0, 0x1f            /* cluster core id */
    li      t0, PT_RV_MAX_HARTS
    bgeu    a0, t0, park_forever
    jal     t1, set_stack
    tail    pt_rv_worker_entry
1:  li      a0, PT_RV_MAX_HARTS     /* the fabric controller's stack slot */
    jal     t1, set_stack
    li      a0, 0                   /* no boot information */
    tail    pt_rv_boot
#else
    li      t0, PT_RV_MAX_HARTS
    bgeu    a0, t0, park_forever
    jal     t1, set_stack
    li      t0, 8                   /* mie.MSIE: a software interrupt ends wfi */
    csrs    mie, t0
    bnez    a0, 2f
    mv      a0, a1                  /* QEMU passes the device tree in a1 */
    tail    pt_rv_boot
2:  wfi                             /* wait for hart 0's wake-up call */
    csrr    t0, mip
    andi    t0, t0, 8
    beqz    t0, 2b
    tail    pt_rv_worker_entry
#endif

/* sp = __stack - (a0 << PT_RV_STACK_SHIFT), 16-byte aligned; returns via t1. */
set_stack:
    la      sp, __stack
    andi    sp, sp, -16
    slli    t0, a0, PT_RV_STACK_SHIFT
    sub     sp, sp, t0
    jr      t1

park_forever:
    wfi
    j       park_forever
    .size _start, . - _start

/* Any trap is a bug here (nothing enables interrupts): report and exit. */
    .text
    .balign 4
    .globl pt_rv_trap_entry
pt_rv_trap_entry:
    csrr    a0, mcause
    csrr    a1, mepc
    csrr    a2, mtval
    csrr    a3, mhartid
    tail    pt_rv_trap
