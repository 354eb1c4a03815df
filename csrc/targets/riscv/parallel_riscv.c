/* Bare-metal RISC-V backend of the parallel seam (QEMU virt harts or the
 * pulp-open cluster cores; see board.h).
 *
 * fork: the caller publishes {fn, arg, n}, then bumps each participant's
 * start mailbox and wakes it; participants run their share and post the
 * fork's generation in their own done mailbox. Every shared word has one
 * writer, so fork and join need only fences. A fork with more cores than
 * the board has is clamped (kernels give bitwise identical results for any
 * core count); a fork from inside a task runs serially on its core.
 *
 * barrier: with the A extension, a sense-reversing counter (amoadd; the
 * last core in flips the sense and wakes the others). Without it (rv32imc
 * with Zfinx, like the PULP cores), core 0 of the fork collects per-core
 * arrival epochs and then publishes a release epoch.
 *
 * Each core's counter ticks inside tasks, minus its sleeps, are accumulated
 * for the benchmarks (pt_riscv.h). */
#include "pulptrain/pt_parallel.h"
#include "board.h"
#include "pt_riscv.h"

#define PT_RV_SLOTS (PT_RV_MAX_HARTS + 1)

static struct {
    pt_task_fn fn;
    void *arg;
    int num_cores;
} job;

static volatile uint32_t start_gen[PT_RV_SLOTS];
static volatile uint32_t done_gen[PT_RV_SLOTS];
static volatile uint32_t online[PT_RV_SLOTS];
static uint32_t fork_gen;
static int cores_available = 1;

/* Per-slot task state, written only by its own core. */
static volatile int in_task[PT_RV_SLOTS];
static volatile int serial_task[PT_RV_SLOTS];
static volatile uint64_t task_count[PT_RV_SLOTS];
static volatile uint64_t sleep_count[PT_RV_SLOTS];

static int current_core(void)
{
    /* Slots of a fork's cores are their core ids (board.h). */
    return pt_rv_board_slot();
}

/* Sleep until woken, keeping the sleep out of this core's task count. */
static void idle(int slot)
{
    uint64_t t0 = pt_riscv_counter();
    pt_rv_board_idle();
    sleep_count[slot] += pt_riscv_counter() - t0;
}

/* The slot that forks: hart 0 on virt, the fabric controller on pulp-open. */
static int caller_slot(void) { return pt_rv_board_caller_computes() ? 0 : PT_RV_MAX_HARTS; }

/* ---- barrier ---------------------------------------------------------- */
#ifdef __riscv_atomic
static volatile int bar_count;
static volatile int bar_sense;
static int local_sense[PT_RV_SLOTS];

static void barrier_reset(int slot) { local_sense[slot] = bar_sense; }

static void barrier_wait(int slot, int num_cores)
{
    int sense = !local_sense[slot];
    local_sense[slot] = sense;
    if (__atomic_fetch_add(&bar_count, 1, __ATOMIC_ACQ_REL) == num_cores - 1) {
        bar_count = 0;
        __atomic_store_n(&bar_sense, sense, __ATOMIC_RELEASE);
        for (int c = 0; c < num_cores; ++c)
            if (c != slot) pt_rv_board_wake(c);
        return;
    }
    for (;;) {
        pt_rv_board_clear_wake();
        if (__atomic_load_n(&bar_sense, __ATOMIC_ACQUIRE) == sense) return;
        idle(slot);
    }
}
#else
static volatile uint32_t arrived[PT_RV_SLOTS];
static volatile uint32_t release_epoch;
static uint32_t local_epoch[PT_RV_SLOTS];

static void barrier_reset(int slot) { local_epoch[slot] = release_epoch; }

static void barrier_wait(int slot, int num_cores)
{
    uint32_t epoch = ++local_epoch[slot];
    pt_rv_fence();
    if (slot == 0) {
        for (int c = 1; c < num_cores; ++c)
            for (;;) {
                pt_rv_board_clear_wake();
                pt_rv_fence();
                if (arrived[c] == epoch) break;
                idle(slot);
            }
        pt_rv_fence();
        release_epoch = epoch;
        pt_rv_fence();
        for (int c = 1; c < num_cores; ++c) pt_rv_board_wake(c);
        return;
    }
    arrived[slot] = epoch;
    pt_rv_fence();
    pt_rv_board_wake(0);
    for (;;) {
        pt_rv_board_clear_wake();
        pt_rv_fence();
        if (release_epoch == epoch) break;
        idle(slot);
    }
    pt_rv_fence();
}
#endif

/* ---- fork / join -------------------------------------------------------- */
static void run_task(int slot, int core, int num_cores, int serial)
{
    int was_in = in_task[slot], was_serial = serial_task[slot];
    in_task[slot] = 1;
    serial_task[slot] = serial;
    if (!serial) barrier_reset(slot);
    uint64_t t0 = pt_riscv_counter(), slept = sleep_count[slot];
    job.fn(job.arg, core, num_cores);
    task_count[slot] += pt_riscv_counter() - t0 - (sleep_count[slot] - slept);
    in_task[slot] = was_in;
    serial_task[slot] = was_serial;
}

pt_status pt_fork(int num_cores, pt_task_fn fn, void *arg)
{
    if (!fn) return PT_ERR_NULL;
    if (num_cores < 1 || num_cores > PT_MAX_THREADS) return PT_ERR_THREADS;
    if (num_cores > cores_available) num_cores = cores_available;
    int self = current_core();
    int computes = pt_rv_board_caller_computes();
    if (in_task[self] || (computes && num_cores == 1)) {
        /* serial: one core, barriers are no-ops */
        int was_in = in_task[self], was_serial = serial_task[self];
        in_task[self] = 1;
        serial_task[self] = 1;
        uint64_t t0 = pt_riscv_counter();
        fn(arg, 0, 1);
        task_count[self] += pt_riscv_counter() - t0;
        in_task[self] = was_in;
        serial_task[self] = was_serial;
        return PT_OK;
    }
    job.fn = fn;
    job.arg = arg;
    job.num_cores = num_cores;
    uint32_t gen = ++fork_gen;
    pt_rv_fence();
    int first_worker = computes ? 1 : 0;
    for (int c = first_worker; c < num_cores; ++c) {
        start_gen[c] = gen;
        pt_rv_fence();
        pt_rv_board_wake(c);
    }
    if (computes) run_task(0, 0, num_cores, 0);
    for (int c = first_worker; c < num_cores; ++c)
        for (;;) {
            pt_rv_board_clear_wake();
            pt_rv_fence();
            if (done_gen[c] == gen) break;
            idle(self);
        }
    pt_rv_fence();
    return PT_OK;
}

void pt_rv_worker_loop(int slot)
{
    uint32_t seen = 0;
    for (;;) {
        pt_rv_board_clear_wake();
        pt_rv_fence();
        uint32_t gen = start_gen[slot];
        if (gen == seen) {
            idle(slot);
            continue;
        }
        seen = gen;
        pt_rv_fence();
        run_task(slot, slot, job.num_cores, 0);
        pt_rv_fence();
        done_gen[slot] = gen;
        pt_rv_fence();
        pt_rv_board_wake(caller_slot());
    }
}

void pt_barrier(void)
{
    int slot = current_core();
    if (!in_task[slot] || serial_task[slot]) return;
    barrier_wait(slot, job.num_cores);
}

int pt_parallel_max_cores(void) { return cores_available; }

void pt_rv_parallel_init(int cores) { cores_available = cores < 1 ? 1 : cores; }

void pt_rv_mark_online(int slot)
{
    online[slot] = 1;
    pt_rv_board_wake(caller_slot());
}

int pt_rv_is_online(int slot)
{
    pt_rv_fence();
    return online[slot] != 0;
}

/* ---- benchmark hooks (pt_riscv.h) ---------------------------------------- */
void pt_riscv_task_count_reset(void)
{
    for (int s = 0; s < PT_RV_SLOTS; ++s) task_count[s] = 0;
    pt_rv_fence();
}

uint64_t pt_riscv_task_count(int core)
{
    pt_rv_fence();
    return (core >= 0 && core < PT_RV_MAX_HARTS) ? task_count[core] : 0;
}
