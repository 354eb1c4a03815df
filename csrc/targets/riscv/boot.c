/* boot.c - C start-up for the bare-metal RISC-V targets (picolibc).
 *
 * The boot core copies .data, clears .bss, sets up its thread-local block
 * (picolibc keeps errno there), starts the other cores and calls main; the
 * exit status reaches the host through semihosting. Every other core gets
 * its own thread-local block before entering the dispatch loop. */
#include <picolibc.h> /* defines PICOLIBC_TLS for picotls.h */
#include <picotls.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "board.h"

/* Per-core thread-local block; picolibc's own data need far less. */
#define PT_RV_TLS_BYTES 256

extern char __data_start[], __data_source[], __data_size[];
extern char __bss_start[], __bss_size[];
extern char __tls_base[];
extern void __libc_init_array(void);
extern int main(void);

static char worker_tls[PT_RV_MAX_HARTS][PT_RV_TLS_BYTES] __attribute__((aligned(16)));

void pt_rv_boot(const void *boot_info)
{
    memcpy(__data_start, __data_source, (size_t)(uintptr_t)__data_size);
    memset(__bss_start, 0, (size_t)(uintptr_t)__bss_size);
    _set_tls(__tls_base);
    if (_tls_size() > PT_RV_TLS_BYTES || _tls_align() > 16) {
        printf("pulptrain boot: thread-local data (%u bytes) exceed PT_RV_TLS_BYTES\n",
               (unsigned)_tls_size());
        _exit(70);
    }
    pt_rv_parallel_init(pt_rv_board_start(boot_info));
    __libc_init_array();
    exit(main());
}

void pt_rv_worker_entry(int slot)
{
    _init_tls(worker_tls[slot]);
    _set_tls(worker_tls[slot]);
    pt_rv_mark_online(slot);
    pt_rv_worker_loop(slot);
}

/* Called by entry.S on any exception: nothing here expects one. */
void pt_rv_trap(uint32_t cause, uint32_t pc, uint32_t tval, uint32_t hartid)
{
    printf("pulptrain: trap on hart 0x%x: mcause=0x%x mepc=0x%x mtval=0x%x\n",
           (unsigned)hartid, (unsigned)cause, (unsigned)pc, (unsigned)tval);
    _exit(71);
}
