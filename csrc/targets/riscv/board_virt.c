/* QEMU virt board: harts are woken through the CLINT's machine software
 * interrupt registers (msip, one 32-bit word per hart at 0x02000000) and
 * the hart count comes from the device tree QEMU hands to hart 0. */
#include <stdint.h>
#include <string.h>
#include "board.h"
#include "pt_riscv.h"

#define CLINT_MSIP ((volatile uint32_t *)0x02000000u)

#define FDT_MAGIC 0xd00dfeedu
#define FDT_BEGIN_NODE 1u
#define FDT_END_NODE 2u
#define FDT_PROP 3u
#define FDT_NOP 4u

static uint32_t be32(const uint8_t *p)
{
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

/* Number of /cpus/cpu@N nodes in a flattened device tree (0 if it is not
 * one). */
static int fdt_count_cpus(const uint8_t *fdt)
{
    if (!fdt || be32(fdt) != FDT_MAGIC) return 0;
    const uint8_t *p = fdt + be32(fdt + 8);
    const uint8_t *end = p + be32(fdt + 36);
    int depth = 0, in_cpus = 0, cpus = 0;
    while (p < end) {
        uint32_t token = be32(p);
        p += 4;
        if (token == FDT_BEGIN_NODE) {
            const char *name = (const char *)p;
            size_t len = strlen(name);
            ++depth;
            if (depth == 2) in_cpus = strcmp(name, "cpus") == 0;
            else if (depth == 3 && in_cpus && strncmp(name, "cpu@", 4) == 0) ++cpus;
            p += (len + 4) & ~(size_t)3;
        } else if (token == FDT_END_NODE) {
            if (depth == 2) in_cpus = 0;
            --depth;
        } else if (token == FDT_PROP) {
            p += 8 + ((be32(p) + 3) & ~(uint32_t)3);
        } else if (token != FDT_NOP) {
            break;  /* FDT_END or garbage */
        }
    }
    return cpus;
}

int pt_rv_board_start(const void *boot_info)
{
    int harts = fdt_count_cpus((const uint8_t *)boot_info);
    if (harts < 1) harts = 1;
    if (harts > PT_RV_MAX_HARTS) harts = PT_RV_MAX_HARTS;
    for (int h = 1; h < harts; ++h) {
        pt_rv_board_wake(h);
        for (;;) {
            pt_rv_board_clear_wake();
            if (pt_rv_is_online(h)) break;
            pt_rv_board_idle();
        }
    }
    return harts;
}

int pt_rv_board_slot(void)
{
    uint32_t hartid;
    __asm__ volatile("csrr %0, mhartid" : "=r"(hartid));
    return (int)hartid;
}

int pt_rv_board_caller_computes(void) { return 1; }

void pt_rv_board_wake(int slot)
{
    pt_rv_fence();
    CLINT_MSIP[slot] = 1;
}

void pt_rv_board_clear_wake(void)
{
    CLINT_MSIP[pt_rv_board_slot()] = 0;
    pt_rv_fence();
}

void pt_rv_board_idle(void) { __asm__ volatile("wfi" ::: "memory"); }

/* QEMU's virt machine has no scratchpad: the "L1" is ordinary RAM. */
#ifndef PT_RV_L1_BYTES
#define PT_RV_L1_BYTES (128 * 1024)
#endif
static uint8_t l1_buffer[PT_RV_L1_BYTES] __attribute__((aligned(64)));

void *pt_riscv_l1_buffer(size_t *bytes)
{
    *bytes = sizeof l1_buffer;
    return l1_buffer;
}
