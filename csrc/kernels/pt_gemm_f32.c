/* The shared FP32 GEMM: ISA dispatch, packing, cache blocking and the split of
 * C over cores (see pt_gemm.h for the numerical contract).
 *
 * For each column block of PT_GEMM_NC and each K block of PT_GEMM_KC, the
 * cores pack op(B) together into NR-wide panels (shared, kept in L2), then
 * take units of up to PT_GEMM_MC rows as they come free: each packs its rows of
 * op(A) when it must (kept in L1) and runs the micro-kernel over the block. */
#include "pulptrain/pt_gemm.h"
#include "pulptrain/internal.h"
#include "pt_gemm_internal.h"

/* Columns of C per packed B block: KC x NC floats should sit in one core's L2. */
#define PT_GEMM_NC 512
/* Column blocks then start on panel boundaries (every NR divides NR_MAX),
 * which the reuse of a wholly packed B relies on. */
typedef char pt_gemm_nc_is_a_multiple_of_nr[(PT_GEMM_NC % PT_GEMM_NR_MAX) == 0 ? 1 : -1];
/* Rows of a transposed A packed at once (a multiple of every MR): the packing
 * then reads MC contiguous floats of each row of the stored A. */
#define PT_GEMM_MC 96
/* Below this many multiply-adds one core is faster than a fork. */
#define PT_GEMM_PARALLEL_MIN_MACS 65536

/* ------------------------------------------------------------ ISA dispatch */
static const pt_gemm_ukernel *const ukernels[PT_GEMM_ISA_COUNT] = {
    &pt_gemm_ukernel_generic, &pt_gemm_ukernel_avx2, &pt_gemm_ukernel_avx512, &pt_gemm_ukernel_riscv};

static const char *const isa_names[PT_GEMM_ISA_COUNT] = {
#define PT_GEMM_ISA_NAME(id, name) name,
    PT_GEMM_ISA_LIST(PT_GEMM_ISA_NAME)
#undef PT_GEMM_ISA_NAME
};

static int current_isa = -1; /* chosen on first use */

int pt_gemm_isa_supported(pt_gemm_isa isa)
{
    if ((int)isa < 0 || isa >= PT_GEMM_ISA_COUNT || !ukernels[isa]->fn) return 0;
#if defined(__x86_64__) && defined(__GNUC__)
    __builtin_cpu_init();
    if (isa == PT_GEMM_ISA_AVX2)
        return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    if (isa == PT_GEMM_ISA_AVX512)
        return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("fma");
#endif
    if (isa == PT_GEMM_ISA_RISCV) return 1;  /* compiled only where it runs */
    return isa == PT_GEMM_ISA_GENERIC;
}

/* Callers on several threads may race to the first choice; they all store
 * the same value, atomically where the compiler offers it lock-free (not
 * on cores without atomics, e.g. rv32imc: there an aligned int access is
 * already indivisible and the calls would need a missing libatomic). */
#if defined(__GNUC__) && __GCC_ATOMIC_INT_LOCK_FREE == 2
#define LOAD_ISA() __atomic_load_n(&current_isa, __ATOMIC_RELAXED)
#define STORE_ISA(v) __atomic_store_n(&current_isa, (v), __ATOMIC_RELAXED)
#else
#define LOAD_ISA() current_isa
#define STORE_ISA(v) (current_isa = (v))
#endif

pt_gemm_isa pt_gemm_get_isa(void)
{
    int isa = LOAD_ISA();
    if (isa < 0) {
        isa = PT_GEMM_ISA_GENERIC;
        for (int i = PT_GEMM_ISA_COUNT - 1; i > PT_GEMM_ISA_GENERIC; --i)
            if (pt_gemm_isa_supported((pt_gemm_isa)i)) { isa = i; break; }
        STORE_ISA(isa);
    }
    return (pt_gemm_isa)isa;
}

pt_status pt_gemm_set_isa(pt_gemm_isa isa)
{
    if ((int)isa < 0 || isa >= PT_GEMM_ISA_COUNT) return PT_ERR_PARAM;
    if (!pt_gemm_isa_supported(isa)) return PT_ERR_UNSUPPORTED;
    STORE_ISA((int)isa);
    return PT_OK;
}

const char *pt_gemm_isa_name(pt_gemm_isa isa)
{
    return ((int)isa >= 0 && isa < PT_GEMM_ISA_COUNT) ? isa_names[isa] : "?";
}

/* ------------------------------------------------------------------ sizes */
static size_t min_size(size_t a, size_t b) { return a < b ? a : b; }
static size_t round_up(size_t v, size_t to) { return (v + to - 1) / to * to; }

/* Floats of one packed B block: kc x (at most) nc. */
static size_t b_block_floats(size_t k, size_t n)
{
    return min_size(PT_GEMM_KC, k) * min_size(PT_GEMM_NC, round_up(n, PT_GEMM_NR_MAX));
}

static size_t aligned_bytes(size_t floats) { return round_up(floats * sizeof(float), PT_SCRATCH_ALIGN); }

/* B blocks in flight: two on several cores (the next block is packed while
 * slow cores still read the last one), one on a single core. */
static int b_buffers(int num_threads) { return num_threads > 1 ? 2 : 1; }

size_t pt_sgemm_f32_scratch_bytes(const pt_gemm_params *p, int num_threads)
{
    if (!p || p->m <= 0 || p->n <= 0 || p->k <= 0 || num_threads < 1) return 0;
    const size_t k = (size_t)p->k;
    return (size_t)b_buffers(num_threads) * aligned_bytes(b_block_floats(k, (size_t)p->n)) +
           (size_t)num_threads * aligned_bytes(min_size(PT_GEMM_KC, k) * PT_GEMM_MC) + PT_SCRATCH_ALIGN;
}

/* --------------------------------------------------------------- packing */
/* rows [row0, row0 + rows) x k [k0, k0 + kc) of op(A) -> ceil(rows / mr)
 * panels kc x mr, one after the other (rows <= PT_GEMM_MC). */
static void pack_a(const pt_gemm_params *p, const pt_gemm_ukernel *uk, const float *a,
                   size_t row0, size_t rows, size_t k0, size_t kc, float *out)
{
    const size_t lda = (size_t)p->lda, mr = (size_t)uk->mr, panel = kc * mr;
    size_t full = rows / mr;
    if (p->trans_a && full && uk->pack_a_t) {
        uk->pack_a_t(kc, full, a + k0 * lda + row0, lda, out);
        row0 += full * mr;
        rows -= full * mr;
        out += full * panel;
    }
    for (size_t i0 = 0; i0 < rows; i0 += mr) {
        size_t h = min_size(mr, rows - i0);
        float *dst = out + (i0 / mr) * panel;
        if (p->trans_a) {
            const float *src = a + k0 * lda + row0 + i0;
            for (size_t k = 0; k < kc; ++k, src += lda) {
                for (size_t i = 0; i < h; ++i) dst[k * mr + i] = src[i];
                for (size_t i = h; i < mr; ++i) dst[k * mr + i] = 0.0f;
            }
        } else {
            for (size_t i = 0; i < h; ++i) {
                const float *src = a + (row0 + i0 + i) * lda + k0;
                for (size_t k = 0; k < kc; ++k) dst[k * mr + i] = src[k];
            }
            for (size_t i = h; i < mr; ++i)
                for (size_t k = 0; k < kc; ++k) dst[k * mr + i] = 0.0f;
        }
    }
}

/* columns [col0, col0 + cols) x k [k0, k0 + kc) of op(B) -> ceil(cols / nr)
 * panels kc x nr, one after the other. */
static void pack_b(const pt_gemm_params *p, const pt_gemm_ukernel *uk, const float *b,
                   size_t col0, size_t cols, size_t k0, size_t kc, float *out)
{
    const size_t ldb = (size_t)p->ldb, nr = (size_t)uk->nr, panel = kc * nr;
    size_t j0 = 0;
    if (!p->trans_b && uk->pack_b_n && cols >= nr) {
        size_t full = cols / nr;
        uk->pack_b_n(kc, full, b + k0 * ldb + col0, ldb, out);
        j0 = full * nr;
    }
    for (; j0 < cols; j0 += nr) {
        size_t w = min_size(nr, cols - j0);
        float *dst = out + (j0 / nr) * panel;
        if (p->trans_b) {
            for (size_t j = 0; j < w; ++j) {
                const float *src = b + (col0 + j0 + j) * ldb + k0;
                for (size_t k = 0; k < kc; ++k) dst[k * nr + j] = src[k];
            }
            for (size_t j = w; j < nr; ++j)
                for (size_t k = 0; k < kc; ++k) dst[k * nr + j] = 0.0f;
        } else {
            for (size_t k = 0; k < kc; ++k) {
                const float *src = b + (k0 + k) * ldb + col0 + j0;
                float *d = dst + k * nr;
                for (size_t j = 0; j < w; ++j) d[j] = src[j];
                for (size_t j = w; j < nr; ++j) d[j] = 0.0f;
            }
        }
    }
}

/* ------------------------------------------------------------ the driver */
/* Work units go to cores as they come free: with atomics, through a shared
 * counter (a core slowed by anything else on the machine then takes fewer
 * units); without them (rv32imc), round robin. A unit is computed the same
 * way whichever core takes it, so the result never depends on the split. */
#if defined(__GNUC__) && __GCC_ATOMIC_INT_LOCK_FREE == 2
#define PT_GEMM_DYNAMIC 1
#else
#define PT_GEMM_DYNAMIC 0
#endif

typedef struct gemm_job {
    const pt_gemm_params *p;
    const float *a, *b, *bias;
    float *c;
    const float *packed_a;         /* op(A) packed whole by pt_sgemm_f32_pack_a, or NULL */
    const float *packed_b;         /* op(B) packed whole by pt_sgemm_f32_pack_b, or NULL */
    const float *mask;             /* backward of an activation: C masked by it, or NULL */
    float mask_cap;
    float *a_sums;                 /* row sums of op(A) (trans_a), taken from its packed panels, or NULL */
    const pt_gemm_ukernel *uk;
    float *bbuf[2];                /* shared packed B blocks (alternating) */
    int b_buffers;
    char *abuf;                    /* per-core packed A, abuf_bytes each */
    size_t abuf_bytes;
    size_t m_panels, n_panels;     /* register tiles along M and N */
    size_t mc;                     /* rows of C per unit: a multiple of mr, at most PT_GEMM_MC */
    size_t m_chunks, n_groups;     /* units of a block: mc rows x a group of panels */
    int next_unit[2];              /* claim counters, by block parity */
} gemm_job;

/* sums[i] (+)= the k chain of packed row i, for the `rows` rows of panels
 * kc x mr: starting from 0 when first. Called for the k blocks in order,
 * this is pt_colsum_f32's chain over the stored A's rows, bitwise. */
static void add_packed_rows(const pt_gemm_ukernel *uk, const float *packed, size_t rows, size_t kc,
                            float *sums, int first)
{
    const size_t mr = (size_t)uk->mr, full = uk->sum_a ? rows / mr : 0;
    if (full) uk->sum_a(kc, full, packed, sums, first);
    for (size_t i0 = full * mr; i0 < rows; i0 += mr) {
        const float *panel = packed + i0 / mr * kc * mr;
        float *s = sums + i0;
        const size_t h = min_size(mr, rows - i0);
        if (first)
            for (size_t i = 0; i < h; ++i) s[i] = 0.0f;
        for (size_t k = 0; k < kc; ++k)
            for (size_t i = 0; i < h; ++i) s[i] += panel[k * mr + i];
    }
}

/* Rows [ic, ic + mc) x columns [jc + j0, jc + j1) of C for the k block
 * [pc, pc + kc), with that block of op(B) packed in bp (panels from jc). */
static void gemm_unit(const gemm_job *job, size_t ic, size_t mc, size_t jc, size_t j0, size_t j1,
                      size_t pc, size_t kc, const float *bp, float *abuf)
{
    const pt_gemm_params *p = job->p;
    const size_t mr = (size_t)job->uk->mr, nr = (size_t)job->uk->nr, ldc = (size_t)p->ldc;
    const int accumulate = p->accumulate || pc > 0, last = pc + kc == (size_t)p->k;
    const float act_cap = p->act ? pt_act_cap((pt_act)p->act) : 0.0f;
    /* an untransposed A is read in place, but for a ragged last panel; a
     * prepacked A is read from its panels (ic is a multiple of mr) */
    size_t in_place = p->trans_a || job->packed_a ? 0 : mc / mr * mr;
    const float *a_packed = abuf;
    if (job->packed_a)
        a_packed = job->packed_a + pc * job->m_panels * mr + ic / mr * kc * mr;
    else if (in_place < mc) {
        pack_a(p, job->uk, job->a, ic + in_place, mc - in_place, pc, kc, abuf);
        /* once per row: A is packed again for each column block and group */
        if (job->a_sums && jc + j0 == 0) add_packed_rows(job->uk, abuf, mc, kc, job->a_sums + ic, pc == 0);
    }
    for (size_t ir = 0; ir < mc; ir += mr) {
        int rows = (int)min_size(mr, mc - ir);
        const float *a_panel;
        size_t a_rs;
        if (ir < in_place) {
            a_panel = job->a + (ic + ir) * (size_t)p->lda + pc;
            a_rs = (size_t)p->lda;
        } else {
            a_panel = a_packed + (ir - in_place) / mr * kc * mr;
            a_rs = 0;
        }
        for (size_t jr = j0; jr < j1; jr += nr) {
            float *c_tile = job->c + (ic + ir) * ldc + jc + jr;
            int cols = (int)min_size(nr, j1 - jr);
            /* the fused activation, or its backward, as the tile is stored */
            pt_gemm_epilogue ep = {act_cap, job->mask ? job->mask + (c_tile - job->c) : NULL, job->mask_cap};
            job->uk->fn(kc, a_panel, a_rs, bp + jr / nr * kc * nr, c_tile, ldc,
                        job->bias ? job->bias + jc + jr : NULL, accumulate,
                        last && (act_cap > 0.0f || job->mask) ? &ep : NULL, rows, cols);
        }
    }
}

/* Blocks of PT_GEMM_NC columns (outer) and PT_GEMM_KC of k (inner), in the
 * same order on every core. Per block the cores pack op(B) together (each a
 * run of panels), meet at a barrier, then take units of MC rows by a group
 * of panels until none is left. The barrier also orders the k blocks of each
 * C tile; two B buffers let a fast core pack the next block while a slow one
 * still reads this one (it cannot get further: the next barrier waits). */
static void gemm_task(void *arg, int core, int ncores)
{
    gemm_job *job = (gemm_job *)arg;
    const pt_gemm_params *p = job->p;
    const size_t m = (size_t)p->m, n = (size_t)p->n, k = (size_t)p->k, nr = (size_t)job->uk->nr;
    float *abuf = (float *)(job->abuf + (size_t)core * job->abuf_bytes);
    const size_t units = job->m_chunks * job->n_groups;
    unsigned block = 0;
    for (size_t jc = 0; jc < n; jc += PT_GEMM_NC) {
        const size_t nc = min_size(PT_GEMM_NC, n - jc), panels = (nc + nr - 1) / nr;
        for (size_t pc = 0; pc < k; pc += PT_GEMM_KC, ++block) {
            const size_t kc = min_size(PT_GEMM_KC, k - pc);
            const float *bp;
            if (job->packed_b) {   /* panels of this k block, from column jc (a multiple of nr) */
                bp = job->packed_b + pc * job->n_panels * nr + jc / nr * kc * nr;
            } else {
                float *buf = job->bbuf[block % (unsigned)job->b_buffers];
                size_t pb, pe;
                pt_split(panels, core, ncores, &pb, &pe);
                if (pb < pe)
                    pack_b(p, job->uk, job->b, jc + pb * nr, min_size(pe * nr, nc) - pb * nr, pc, kc,
                           buf + pb * kc * nr);
                bp = buf;
            }
            pt_barrier();
#if PT_GEMM_DYNAMIC
            int *counter = &job->next_unit[block & 1u];
            /* the other counter was last used by the previous block, which
             * every core has left (it passed the barrier above) */
            if (core == 0) __atomic_store_n(&job->next_unit[(block + 1u) & 1u], 0, __ATOMIC_RELAXED);
            for (size_t u = (size_t)__atomic_fetch_add(counter, 1, __ATOMIC_RELAXED); u < units;
                 u = (size_t)__atomic_fetch_add(counter, 1, __ATOMIC_RELAXED)) {
#else
            for (size_t u = (size_t)core; u < units; u += (size_t)ncores) {
#endif
                size_t chunk = u / job->n_groups, gb, ge;
                pt_split(panels, (int)(u % job->n_groups), (int)job->n_groups, &gb, &ge);
                if (gb >= ge) continue;
                size_t ic = chunk * job->mc;
                gemm_unit(job, ic, min_size(job->mc, m - ic), jc, gb * nr, min_size(ge * nr, nc), pc,
                          kc, bp, abuf);
            }
        }
    }
}

/* What some entry points add to a plain GEMM (all zero: nothing). */
typedef struct gemm_extras {
    const float *packed_a, *packed_b;   /* op(A) / op(B) packed whole */
    const float *mask;                  /* the activation backward's mask, and its activation */
    pt_act mask_act;
    float *a_sums;                      /* row sums of op(A); needs trans_a */
} gemm_extras;

static pt_status gemm_run(const pt_ctx *ctx, const pt_gemm_params *p, const float *a, const float *b,
                          const float *bias, float *c, gemm_extras x);

pt_status pt_sgemm_f32(const pt_ctx *ctx, const pt_gemm_params *p, const float *a,
                       const float *b, const float *bias, float *c)
{
    return gemm_run(ctx, p, a, b, bias, c, (gemm_extras){0});
}

pt_status pt_sgemm_f32_masked(const pt_ctx *ctx, const pt_gemm_params *p, const float *a,
                              const float *b, const float *bias, const float *mask, pt_act mask_act,
                              float *c)
{
    return gemm_run(ctx, p, a, b, bias, c, (gemm_extras){.mask = mask, .mask_act = mask_act});
}

pt_status pt_sgemm_f32_colsum_a(const pt_ctx *ctx, const pt_gemm_params *p, const float *a,
                                const float *b, float *c, float *sums)
{
    if (!sums) return PT_ERR_NULL;
    return gemm_run(ctx, p, a, b, NULL, c, (gemm_extras){.a_sums = sums});
}

size_t pt_sgemm_f32_packed_b_bytes(const pt_gemm_params *p)
{
    if (!p || p->n <= 0 || p->k <= 0) return 0;
    const size_t nr = (size_t)ukernels[pt_gemm_get_isa()]->nr;
    return (size_t)p->k * round_up((size_t)p->n, nr) * sizeof(float);
}

pt_status pt_sgemm_f32_pack_b(const pt_gemm_params *p, const float *b, float *packed)
{
    if (!p || !b || !packed) return PT_ERR_NULL;
    if (p->n <= 0 || p->k <= 0) return PT_ERR_SHAPE;
    if (p->trans_b != 0 && p->trans_b != 1) return PT_ERR_PARAM;
    if (p->ldb < (p->trans_b ? p->k : p->n)) return PT_ERR_SHAPE;
    const pt_gemm_ukernel *uk = ukernels[pt_gemm_get_isa()];
    const size_t n = (size_t)p->n, k = (size_t)p->k, panels = (n + (size_t)uk->nr - 1) / (size_t)uk->nr;
    for (size_t pc = 0; pc < k; pc += PT_GEMM_KC)
        pack_b(p, uk, b, 0, n, pc, min_size(PT_GEMM_KC, k - pc), packed + pc * panels * (size_t)uk->nr);
    return PT_OK;
}

pt_status pt_sgemm_f32_packed(const pt_ctx *ctx, const pt_gemm_params *p, const float *a,
                              const float *packed_b, const float *bias, float *c)
{
    return gemm_run(ctx, p, a, packed_b, bias, c, (gemm_extras){.packed_b = packed_b});
}

size_t pt_sgemm_f32_packed_a_bytes(const pt_gemm_params *p)
{
    if (!p || p->m <= 0 || p->k <= 0) return 0;
    const size_t mr = (size_t)ukernels[pt_gemm_get_isa()]->mr;
    return (size_t)p->k * round_up((size_t)p->m, mr) * sizeof(float);
}

pt_status pt_sgemm_f32_pack_a(const pt_gemm_params *p, const float *a, float *packed)
{
    if (!p || !a || !packed) return PT_ERR_NULL;
    if (p->m <= 0 || p->k <= 0) return PT_ERR_SHAPE;
    if (p->trans_a != 0 && p->trans_a != 1) return PT_ERR_PARAM;
    if (p->lda < (p->trans_a ? p->m : p->k)) return PT_ERR_SHAPE;
    const pt_gemm_ukernel *uk = ukernels[pt_gemm_get_isa()];
    const size_t m = (size_t)p->m, k = (size_t)p->k, panels = (m + (size_t)uk->mr - 1) / (size_t)uk->mr;
    for (size_t pc = 0; pc < k; pc += PT_GEMM_KC)
        pack_a(p, uk, a, 0, m, pc, min_size(PT_GEMM_KC, k - pc), packed + pc * panels * (size_t)uk->mr);
    return PT_OK;
}

pt_status pt_sgemm_f32_packed_ab(const pt_ctx *ctx, const pt_gemm_params *p, const float *packed_a,
                                 const float *packed_b, const float *bias, float *c)
{
    gemm_extras x = {.packed_a = packed_a, .packed_b = packed_b};
    return gemm_run(ctx, p, packed_a, packed_b, bias, c, x);
}

/* Rows per unit: the multiple of mr up to PT_GEMM_MC (and no less than half
 * of it, which keeps the reads of each packed B panel few) whose units,
 * dealt to equally fast cores in turn, leave the busiest core the fewest
 * panels; the larger on a tie. With PT_GEMM_MC rows a 512-row C on two cores
 * splits 288 / 224; with 84, 264 / 252. Only which core computes a tile
 * changes, never how, so the result is the same for every choice. */
static size_t chunk_rows(size_t m_panels, size_t mr, int threads)
{
    const size_t most = PT_GEMM_MC / mr, t = (size_t)threads;
    size_t best = most, best_load = (size_t)-1;
    for (size_t per = most; per >= 1 && 2 * per >= most; --per) {
        size_t units = (m_panels + per - 1) / per, rounds = units / t, rest = units % t;
        size_t last = m_panels - (units - 1) * per;   /* panels of the ragged last unit */
        /* cores below `rest` take rounds + 1 units; the last unit goes to core rest - 1 */
        size_t load = rest > 1 ? (rounds + 1) * per : rest == 1 ? rounds * per + last
                    : t == 1 ? (rounds - 1) * per + last : rounds * per;
        if (load < best_load) { best_load = load; best = per; }
    }
    return best * mr;
}

static pt_status gemm_run(const pt_ctx *ctx, const pt_gemm_params *p, const float *a, const float *b,
                          const float *bias, float *c, gemm_extras x)
{
    pt_status st = pt_check_ctx(ctx, 0);
    if (st == PT_OK) st = pt_gemm_check(p, a, b, bias, c);
    if (st == PT_OK && x.mask && (p->accumulate || p->act != PT_ACT_NONE ||
                                  (x.mask_act != PT_ACT_RELU && x.mask_act != PT_ACT_RELU6)))
        st = PT_ERR_PARAM;
    if (st == PT_OK && x.a_sums && (!p->trans_a || x.packed_a)) st = PT_ERR_PARAM;
    if (st == PT_OK) st = pt_check_ctx(ctx, pt_sgemm_f32_scratch_bytes(p, ctx->num_threads));
    if (st != PT_OK) return st;

    double macs = (double)p->m * p->n * p->k;
    int threads = macs < PT_GEMM_PARALLEL_MIN_MACS ? 1 : ctx->num_threads;
    gemm_job job;
    job.p = p;
    job.a = a;
    job.b = b;
    job.bias = bias;
    job.c = c;
    job.packed_a = x.packed_a;
    job.packed_b = x.packed_b;
    job.mask = x.mask;
    job.mask_cap = pt_act_cap(x.mask_act);
    job.a_sums = x.a_sums;
    job.uk = ukernels[pt_gemm_get_isa()];
    /* the layout pt_sgemm_f32_scratch_bytes counted for ctx->num_threads */
    char *scratch = (char *)pt_align_scratch(ctx->scratch);
    const size_t b_bytes = aligned_bytes(b_block_floats((size_t)p->k, (size_t)p->n));
    job.b_buffers = b_buffers(threads);
    job.bbuf[0] = (float *)scratch;
    job.bbuf[1] = (float *)(scratch + b_bytes);
    job.abuf = scratch + (size_t)b_buffers(ctx->num_threads) * b_bytes;
    job.abuf_bytes = aligned_bytes(min_size(PT_GEMM_KC, (size_t)p->k) * PT_GEMM_MC);
    job.m_panels = ((size_t)p->m + job.uk->mr - 1) / (size_t)job.uk->mr;
    job.n_panels = ((size_t)p->n + job.uk->nr - 1) / (size_t)job.uk->nr;
    job.mc = chunk_rows(job.m_panels, (size_t)job.uk->mr, threads);
    job.m_chunks = ((size_t)p->m + job.mc - 1) / job.mc;
    /* enough units to balance the cores; columns are split only when the
     * rows alone give too few (a split repacks A once per group) */
    size_t block_panels = min_size(job.n_panels, PT_GEMM_NC / (size_t)job.uk->nr);
    size_t want = 2 * (size_t)threads;
    job.n_groups = threads > 1 && job.m_chunks < want
                       ? min_size(block_panels, (want + job.m_chunks - 1) / job.m_chunks) : 1;
    job.next_unit[0] = job.next_unit[1] = 0;
    return pt_fork(threads, gemm_task, &job);
}

/* ------------------------------------------------------ column sums (bias) */
typedef struct colsum_job {
    size_t rows, cols;
    const float *x;
    float *out;
} colsum_job;

/* Columns go to cores in groups of this many, so rows stream contiguously. */
#define COLSUM_GROUP 64

static void colsum_task(void *arg, int core, int ncores)
{
    const colsum_job *job = (const colsum_job *)arg;
    size_t gb, ge;
    pt_split((job->cols + COLSUM_GROUP - 1) / COLSUM_GROUP, core, ncores, &gb, &ge);
    size_t cb = gb * COLSUM_GROUP, ce = min_size(ge * COLSUM_GROUP, job->cols);
    if (cb >= ce) return;
    float *out = job->out;
    for (size_t c = cb; c < ce; ++c) out[c] = 0.0f;
    for (size_t r = 0; r < job->rows; ++r) {
        const float *row = job->x + r * job->cols;
        for (size_t c = cb; c < ce; ++c) out[c] += row[c];
    }
}

pt_status pt_colsum_f32(const pt_ctx *ctx, size_t rows, size_t cols, const float *x, float *out)
{
    colsum_job job = {rows, cols, x, out};
    size_t groups = (cols + COLSUM_GROUP - 1) / COLSUM_GROUP;
    int threads = rows * cols < PT_PARALLEL_MIN_ELEMS ? 1 : pt_threads_for(ctx, groups, 1);
    return pt_fork(threads, colsum_task, &job);
}
