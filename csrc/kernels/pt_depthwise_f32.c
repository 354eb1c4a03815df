/* Depthwise convolution, FP32 NHWC: forward, grad-input, grad-weight/bias.
 *
 * Work split: forward over output rows (n, oh), grad-input over input rows
 * (n, ih), grad-weight over channel groups; no core ever reduces another
 * core's values, so the thread count never changes a result.
 *
 * Speed: NHWC makes the channel loop contiguous. Each output is a chain of
 * dependent adds (its taps, or its pixels for grad-weight), so a block of
 * `wide` channels is accumulated at once: wide / vector-width independent
 * chains keep the adder busy while the accumulators stay in registers. The
 * AVX-512 build uses wide = 128 (8 zmm chains), the portable one 32. Blocks
 * of 16 and single channels finish the tail; the per-channel order of
 * operations never depends on the block, so every build is bitwise equal.
 * For 3x3 kernels the AVX-512 build goes further (the *_3x3 and row3_*
 * functions): forward and stride-1 grad-input hold the nine weights in
 * registers across a row's pixels and, at unit column step, load each source
 * column once for the up to three outputs that read it; grad-weight holds
 * the nine taps' sums in registers across the pixels. */
#include "pulptrain/pt_depthwise.h"
#include "elem_common.h"

#define DW_MAX_BLOCK 128     /* largest channel block (accumulator array size) */
#define DW_TAIL_BLOCK 16
#define DW_SPLIT_UNIT 16     /* grad-weight channel groups are multiples of this */

typedef struct dw_job {
    const pt_conv_params *p;
    int out_h, out_w;
    const float *x, *w, *b, *grad_y;
    float *out;              /* y, grad_x or grad_w */
    float *grad_b;
    float act_cap;           /* forward: fused activation's clamp, 0 for none */
    int accumulate;          /* grad-weight: grad_w / grad_b already hold earlier images' sums */
} dw_job;

static inline int clamp_lo(int v) { return v > 0 ? v : 0; }

/* On x86 (GCC/clang) a channel block that is a multiple of 16 keeps its
 * accumulators in 16-float vector registers (GCC vector extensions): a
 * float array of 128 accumulators would live on the stack, one load and one
 * store per tap. Lane-wise the arithmetic is the scalar code's (a multiply,
 * then an add, in the same order), so the results are bitwise the same. */
#if PT_HAVE_AVX512_DISPATCH
#include <immintrin.h>
#define DW_VEC 1
#define DW_VL 16
typedef float dw_vec __attribute__((vector_size(64)));
/* acc += a[0..16) * b[0..16), unaligned loads (macros: no vector-valued calls) */
#define DW_MAC(acc, a, b)                                \
    do {                                                 \
        dw_vec a_, b_;                                   \
        __builtin_memcpy(&a_, (a), sizeof a_);           \
        __builtin_memcpy(&b_, (b), sizeof b_);           \
        (acc) = (acc) + a_ * b_;                         \
    } while (0)
#define DW_STORE(p, v) __builtin_memcpy((p), &(v), sizeof(dw_vec))
/* g where 0 < x < cap (x read from xp), else +0, lane by lane: the select
 * of pt_act_grad_select with AVX-512 mask compares (ordered: NaN is dropped). */
PT_TARGET_AVX512 static inline dw_vec dw_select_active(const float *xp, float cap, dw_vec g)
{
    const __m512 x = _mm512_loadu_ps(xp);
    const __mmask16 keep = (__mmask16)(_mm512_cmp_ps_mask(x, _mm512_setzero_ps(), _CMP_GT_OQ) &
                                       _mm512_cmp_ps_mask(x, _mm512_set1_ps(cap), _CMP_LT_OQ));
    return (dw_vec)_mm512_maskz_mov_ps(keep, (__m512)g);
}
#else
#define DW_VEC 0
#endif
static inline int min_int(int a, int b) { return a < b ? a : b; }

/* ---------------------------------------------------------------- forward */
/* Channels [c, c + block) of one output pixel: bias, then the taps in
 * (kh, kw) order. block is a constant after inlining. */
PT_ALWAYS_INLINE void fwd_block(const dw_job *j, const float *x_img, int ih0, int iw0, int kh_lo, int kh_hi,
                                int kw_lo, int kw_hi, int c, int block, float *restrict y_px)
{
    const int C = j->p->in.c, W = j->p->in.w, KW = j->p->kw;
#if DW_VEC
    if (block % DW_VL == 0) {
        dw_vec vacc[DW_MAX_BLOCK / DW_VL];
        const int nv = block / DW_VL;
#pragma GCC unroll 8
        for (int v = 0; v < nv; ++v) {
            vacc[v] = (dw_vec){0};
            if (j->b) __builtin_memcpy(&vacc[v], j->b + c + v * DW_VL, sizeof(dw_vec));
        }
        for (int kh = kh_lo; kh < kh_hi; ++kh)
            for (int kw = kw_lo; kw < kw_hi; ++kw) {
                const float *xp = x_img + ((size_t)(ih0 + kh) * W + (size_t)(iw0 + kw)) * C + c;
                const float *wp = j->w + (size_t)(kh * KW + kw) * C + c;
#pragma GCC unroll 8
                for (int v = 0; v < nv; ++v)
                    DW_MAC(vacc[v], xp + v * DW_VL, wp + v * DW_VL);
            }
#pragma GCC unroll 8
        for (int v = 0; v < nv; ++v) DW_STORE(y_px + c + v * DW_VL, vacc[v]);
        if (j->act_cap > 0.0f)
            for (int i = 0; i < block; ++i) y_px[c + i] = pt_act_clamp(y_px[c + i], j->act_cap);
        return;
    }
#endif
    float acc[DW_MAX_BLOCK];
    if (j->b) for (int i = 0; i < block; ++i) acc[i] = j->b[c + i];
    else for (int i = 0; i < block; ++i) acc[i] = 0.0f;
    for (int kh = kh_lo; kh < kh_hi; ++kh)
        for (int kw = kw_lo; kw < kw_hi; ++kw) {
            const float *restrict xp = x_img + ((size_t)(ih0 + kh) * W + (size_t)(iw0 + kw)) * C + c;
            const float *restrict wp = j->w + (size_t)(kh * KW + kw) * C + c;
            for (int i = 0; i < block; ++i) acc[i] += xp[i] * wp[i];
        }
    if (j->act_cap > 0.0f)
        for (int i = 0; i < block; ++i) y_px[c + i] = pt_act_clamp(acc[i], j->act_cap);
    else
        for (int i = 0; i < block; ++i) y_px[c + i] = acc[i];
}

#if DW_VEC
/* The nine taps' weights of channels [c, c + nv * DW_VL), into registers. */
PT_ALWAYS_INLINE void load_taps_3x3(const dw_job *j, int c, const int nv, dw_vec wv[9][2])
{
#pragma GCC unroll 9
    for (int t = 0; t < 9; ++t)
        for (int v = 0; v < nv; ++v)
            __builtin_memcpy(&wv[t][v], j->w + (size_t)t * j->p->in.c + c + v * DW_VL, sizeof(dw_vec));
}

/* One output row of a 3x3 kernel, for forward and stride-1 grad-input alike:
 * output o of the row is init + sum over the valid taps, in ascending
 * (kh, kw) order, of src[kh][column o * step + off + sign * kw] * w[kh][kw].
 * Forward: src[kh] = input row oh * stride - pad + kh, step = stride,
 * off = -pad_left, sign = +1, init = bias. Grad-input: src[kh] = grad_y row
 * ih + pad - kh, step 1, off = pad_left, sign = -1, init = 0. Channels
 * [c, c + nv * DW_VL) (nv <= 2) at a time, the nine taps' weights in
 * registers; the outputs whose three columns are all inside the source are
 * computed DW_PX at a time, so DW_PX * nv chains of adds run side by side
 * (one output's taps form a chain of dependent adds: one output at a time
 * waits on the adder's latency). The per-output order never changes, so the
 * results are bitwise those of fwd_block / bwd_input_block. row3_range is the
 * general path (the forward at stride 2); row3_unit, below, the one for unit
 * column step, whose edge outputs use row3_outputs too. */
#define DW_PX 4
typedef struct dw_row3 {
    const float *src[3];     /* each kh's source row at channel 0, NULL where that tap row is outside */
    int src_w, n_out;        /* source columns, outputs in the row */
    int step, off, sign;     /* source column of output o and tap kw: o * step + off + sign * kw */
    const float *ahead;      /* the output row DW_AHEAD_ROWS rows on (at channel 0), or NULL: see row3_unit */
} dw_row3;

/* Output rows ahead whose lines row3_unit prefetches. The hardware does not
 * fetch ahead for a row's stores (8 pixels x 32 lines on the MobileNetV1
 * 8x8x512 layer), each of which otherwise waits for its line (read for
 * ownership). That forward at batch 128, one thread, took 0.70-0.87x the
 * time with this prefetch (both builds in turns in one process); two rows on
 * did better than the next row in an earlier trial (0.63x against 0.77x). */
#define DW_AHEAD_ROWS 2

/* out_row + DW_AHEAD_ROWS rows of row_floats each, if that row lies inside
 * [out_row, out_end), else NULL */
static const float *row_ahead(const float *out_row, size_t row_floats, const float *out_end)
{
    return (size_t)(out_end - out_row) >= (DW_AHEAD_ROWS + 1) * row_floats
               ? out_row + DW_AHEAD_ROWS * row_floats : NULL;
}

PT_TARGET_AVX512 static inline dw_vec dw_clamp(dw_vec v, float cap)
{
    return (dw_vec)_mm512_min_ps(_mm512_max_ps((__m512)v, _mm512_setzero_ps()), _mm512_set1_ps(cap));
}

/* acc[q] += the taps kw in [kw_lo, kw_hi) of outputs o0 + q, q < np */
PT_TARGET_AVX512 PT_ALWAYS_INLINE void row3_taps(const dw_row3 *r, int C, int c, const dw_vec wv[9][2], int o0,
                                                 const int np, const int nv, int kw_lo, int kw_hi,
                                                 dw_vec acc[DW_PX][2])
{
#pragma GCC unroll 3
    for (int kh = 0; kh < 3; ++kh) {
        if (!r->src[kh]) continue;
#pragma GCC unroll 3
        for (int kw = 0; kw < 3; ++kw) {
            if (kw < kw_lo || kw >= kw_hi) continue;
#pragma GCC unroll 4
            for (int q = 0; q < np; ++q) {
                const float *sp = r->src[kh] + (size_t)((o0 + q) * r->step + r->off + r->sign * kw) * C + c;
#pragma GCC unroll 2
                for (int v = 0; v < nv; ++v) {
                    dw_vec sv;
                    __builtin_memcpy(&sv, sp + v * DW_VL, sizeof sv);
                    acc[q][v] = acc[q][v] + sv * wv[kh * 3 + kw][v];
                }
            }
        }
    }
}

/* Outputs [o0, o0 + np) of channels [c, c + nv * DW_VL): init, taps, then
 * the forward's clamp or grad-input's mask by x (x_row: the input row of
 * out_row, at channel 0), and the store. */
PT_TARGET_AVX512 PT_ALWAYS_INLINE void row3_outputs(const dw_job *j, const dw_row3 *r, int c, const dw_vec wv[9][2],
                                                    const dw_vec init[2], int o0, const int np, const int nv,
                                                    int kw_lo, int kw_hi, const int grad, const float *x_row,
                                                    float *restrict out_row)
{
    const int C = j->p->in.c;
    dw_vec acc[DW_PX][2];
#pragma GCC unroll 4
    for (int q = 0; q < np; ++q)
        for (int v = 0; v < nv; ++v) acc[q][v] = init[v];
    row3_taps(r, C, c, wv, o0, np, nv, kw_lo, kw_hi, acc);
#pragma GCC unroll 4
    for (int q = 0; q < np; ++q) {
        const size_t px = (size_t)(o0 + q) * C + c;
        for (int v = 0; v < nv; ++v) {
            if (j->act_cap > 0.0f)
                acc[q][v] = grad ? dw_select_active(x_row + px + v * DW_VL, j->act_cap, acc[q][v])
                                 : dw_clamp(acc[q][v], j->act_cap);
            DW_STORE(out_row + px + v * DW_VL, acc[q][v]);
        }
    }
}

/* Outputs [o0, o0 + np) of the channel blocks of 32, then 16, in [c_begin, c_end) */
PT_TARGET_AVX512 PT_ALWAYS_INLINE void row3_pixels(const dw_job *j, const dw_row3 *r, int c_begin, int c_end,
                                                   int o0, const int np, int kw_lo, int kw_hi, const int grad,
                                                   const float *x_row, float *out_row)
{
    dw_vec wv[9][2], init[2];
    int c = c_begin;
    for (; c + 2 * DW_VL <= c_end; c += 2 * DW_VL) {
        load_taps_3x3(j, c, 2, wv);
        for (int v = 0; v < 2; ++v) {
            init[v] = (dw_vec){0};
            if (!grad && j->b) __builtin_memcpy(&init[v], j->b + c + v * DW_VL, sizeof(dw_vec));
        }
        row3_outputs(j, r, c, wv, init, o0, np, 2, kw_lo, kw_hi, grad, x_row, out_row);
    }
    for (; c + DW_VL <= c_end; c += DW_VL) {
        load_taps_3x3(j, c, 1, wv);
        init[0] = (dw_vec){0};
        if (!grad && j->b) __builtin_memcpy(&init[0], j->b + c, sizeof(dw_vec));
        row3_outputs(j, r, c, wv, init, o0, np, 1, kw_lo, kw_hi, grad, x_row, out_row);
    }
}

/* The row's outputs, channels [c_begin, c_end) rounded down to whole
 * vectors (the caller does the rest). Pixels outer, channels inner: the
 * source is read as contiguous runs of whole pixels, which the hardware
 * prefetchers follow (channel blocks outer read 128 of every 2048 bytes and
 * ran at half the speed); the weights are reloaded from L1 per pixel group. */
PT_TARGET_AVX512 PT_ALWAYS_INLINE void row3_range(const dw_job *j, const dw_row3 *r, int c_begin, int c_end,
                                                  const int grad, const float *x_row, float *out_row)
{
    /* interior outputs [o_lo, o_hi): columns base + sign * {0, 1, 2} all in [0, src_w) */
    const int first = r->off + (r->sign > 0 ? 0 : -2), last = r->off + (r->sign > 0 ? 2 : 0);
    int o_lo = first >= 0 ? 0 : (-first + r->step - 1) / r->step;
    int o_hi = r->src_w - 1 - last < 0 ? 0 : (r->src_w - 1 - last) / r->step + 1;
    if (o_hi > r->n_out) o_hi = r->n_out;
    if (o_lo > o_hi) o_lo = o_hi;
    for (int o = 0; o < r->n_out;) {
        if (o >= o_lo && o + DW_PX <= o_hi) {
            row3_pixels(j, r, c_begin, c_end, o, DW_PX, 0, 3, grad, x_row, out_row);
            o += DW_PX;
            continue;
        }
        const int base = o * r->step + r->off;
        const int kw_lo = r->sign > 0 ? clamp_lo(-base) : clamp_lo(base - r->src_w + 1);
        const int kw_hi = r->sign > 0 ? min_int(3, r->src_w - base) : min_int(3, base + 1);
        row3_pixels(j, r, c_begin, c_end, o, 1, kw_lo, kw_hi, grad, x_row, out_row);
        ++o;
    }
}

/* Unit column step (forward at stride 1, and grad-input), interior outputs
 * (all three columns inside the source): outputs [o0, o0 + np) of 16
 * channels read, for each kh, the source columns b0 + [0, np + 2) only (b0:
 * the column of output o0's first tap in reading order), so each is loaded
 * once into a register and serves up to three outputs' taps: output q's tap
 * kw is column q + kw (forward) or q + 2 - kw (grad-input, which reads
 * grad_y backwards). The per-output order is still the taps in ascending
 * (kh, kw): bitwise row3_outputs'. np is a constant (one copy per value), so
 * nothing is tested per tap; at np = 8: 8 accumulators, 10 columns and 9
 * weights in registers. */
#define DW_ROW_PX 8
/* DW_GROUP(N, EDGES) with the group size np (1..DW_ROW_PX) as a constant:
 * one copy of the group per size, so nothing is tested per tap. The caller
 * defines DW_GROUP. */
#define DW_SWITCH_NP(np, EDGES)                                        \
    switch (np) {                                                      \
    case 8: DW_GROUP(8, EDGES); break;                                 \
    case 7: DW_GROUP(7, EDGES); break;                                 \
    case 6: DW_GROUP(6, EDGES); break;                                 \
    case 5: DW_GROUP(5, EDGES); break;                                 \
    case 4: DW_GROUP(4, EDGES); break;                                 \
    case 3: DW_GROUP(3, EDGES); break;                                 \
    case 2: DW_GROUP(2, EDGES); break;                                 \
    default: DW_GROUP(1, EDGES); break;                                \
    }
typedef char dw_switch_np_covers_dw_row_px[DW_ROW_PX == 8 ? 1 : -1];
PT_TARGET_AVX512 PT_ALWAYS_INLINE void row3_unit_group(const dw_job *j, const dw_row3 *r, int c, const dw_vec wv[9][2],
                                                       dw_vec init, int o0, const int np, const int edges,
                                                       const int grad, const float *x_row, float *restrict out_row)
{
    const int C = j->p->in.c;
    const int b0 = o0 + r->off - (grad ? 2 : 0);
    /* edges (a whole row padded by one column each side): column 0 and
     * column np + 1 lie outside the source, and the taps reading them are
     * skipped, which makes outputs 0 and np - 1 the row's edge outputs */
    const int jlo = edges ? 1 : 0, jhi = edges ? np + 1 : np + 2;
    dw_vec acc[DW_ROW_PX];
#pragma GCC unroll 8
    for (int q = 0; q < np; ++q) acc[q] = init;
#pragma GCC unroll 3
    for (int kh = 0; kh < 3; ++kh) {
        if (!r->src[kh]) continue;
        const float *src = r->src[kh] + c;
        dw_vec col[DW_ROW_PX + 2];
#pragma GCC unroll 10
        for (int jj = jlo; jj < jhi; ++jj)
            __builtin_memcpy(&col[jj], src + (size_t)(b0 + jj) * C, sizeof(dw_vec));
#pragma GCC unroll 3
        for (int kw = 0; kw < 3; ++kw)
#pragma GCC unroll 8
            for (int q = 0; q < np; ++q) {
                const int jj = q + (grad ? 2 - kw : kw);
                if (jj >= jlo && jj < jhi) acc[q] = acc[q] + col[jj] * wv[kh * 3 + kw][0];
            }
    }
#pragma GCC unroll 8
    for (int q = 0; q < np; ++q) {
        const size_t px = (size_t)(o0 + q) * C + c;
        if (j->act_cap > 0.0f)
            acc[q] = grad ? dw_select_active(x_row + px, j->act_cap, acc[q]) : dw_clamp(acc[q], j->act_cap);
        DW_STORE(out_row + px, acc[q]);
    }
}

/* The row's outputs for channels [c_begin, c_end) rounded down to blocks of
 * 16 (the caller does the rest), at unit column step: per channel block, the
 * edge outputs one at a time (row3_outputs, which skips the taps outside),
 * the interior ones in groups of up to DW_ROW_PX. */
PT_TARGET_AVX512 PT_ALWAYS_INLINE void row3_unit(const dw_job *j, const dw_row3 *r, int c_begin, int c_end,
                                                 const int grad, const float *x_row, float *out_row)
{
    const int first = r->off - (grad ? 2 : 0);            /* column of output 0's first tap */
    const int o_lo = min_int(clamp_lo(-first), r->n_out);
    const int o_hi = r->src_w - 3 - first < 0 ? o_lo : min_int(r->src_w - 2 - first, r->n_out);
    /* a whole row of 3..8 outputs padded by one column each side (3x3
     * "same" at stride 1): one group, its two edge outputs included */
    const int whole = o_lo == 1 && o_hi == r->n_out - 1 && r->n_out >= 3 && r->n_out <= DW_ROW_PX;
    dw_vec wv[9][2], init[2] = {{0}, {0}};
    const int C = j->p->in.c;
    int ahead_px = 0, ahead_c = c_begin;   /* the next line of the row ahead to prefetch, in address order */
    for (int c = c_begin; c + DW_VL <= c_end; c += DW_VL) {
        /* into L2, the lines of this channel block in the row ahead: its
         * stores then find them there */
        if (r->ahead)
            for (int o = 0; o < r->n_out; ++o) {
                __builtin_prefetch(r->ahead + (size_t)ahead_px * C + ahead_c, 0, 2);
                ahead_c += DW_VL;
                if (ahead_c + DW_VL > c_end) ahead_c = c_begin, ++ahead_px;
            }
        load_taps_3x3(j, c, 1, wv);
        init[0] = (dw_vec){0};
        if (!grad && j->b) __builtin_memcpy(&init[0], j->b + c, sizeof(dw_vec));
#define DW_GROUP(N, EDGES) row3_unit_group(j, r, c, wv, init[0], o, N, EDGES, grad, x_row, out_row)
        for (int o = 0; o < r->n_out;) {
            if (whole) {
                DW_SWITCH_NP(r->n_out, 1);
                break;
            }
            if (o >= o_lo && o < o_hi) {
                const int np = min_int(DW_ROW_PX, o_hi - o);
                DW_SWITCH_NP(np, 0);
                o += np;
                continue;
            }
            const int base = o + first;       /* tap kw reads column base + kw (grad: base + 2 - kw) */
            const int kw_lo = grad ? clamp_lo(base + 2 - r->src_w + 1) : clamp_lo(-base);
            const int kw_hi = grad ? min_int(3, base + 3) : min_int(3, r->src_w - base);
            row3_outputs(j, r, c, wv, init, o, 1, 1, kw_lo, kw_hi, grad, x_row, out_row);
            ++o;
        }
#undef DW_GROUP
    }
}

/* Forward, channels [c_begin, c_end) of output row oh of image x_img: whole
 * vectors (row3_unit at stride 1, row3_range otherwise), then single
 * channels. Called, not inlined
 * (it needs the AVX-512 target): the portable build compiles the call but
 * never makes it. */
PT_TARGET_AVX512 static void fwd_row_3x3(const dw_job *j, const float *x_img, int oh, int c_begin, int c_end,
                                         float *y_row)
{
    const pt_conv_params *p = j->p;
    const int C = p->in.c, H = p->in.h, W = p->in.w;
    const int ih0 = oh * p->stride_h - p->pad_top;
    const size_t row_floats = (size_t)j->out_w * C;
    dw_row3 r = {{NULL, NULL, NULL}, W, j->out_w, p->stride_w, -p->pad_left, 1,
                 row_ahead(y_row, row_floats, j->out + (size_t)p->in.n * j->out_h * row_floats)};
    for (int kh = 0; kh < 3; ++kh)
        if (ih0 + kh >= 0 && ih0 + kh < H) r.src[kh] = x_img + (size_t)(ih0 + kh) * W * C;
    if (p->stride_w == 1) row3_unit(j, &r, c_begin, c_end, 0, NULL, y_row);
    else row3_range(j, &r, c_begin, c_end, 0, NULL, y_row);
    int c = c_begin + (c_end - c_begin) / DW_VL * DW_VL;
    const int kh_lo = clamp_lo(-ih0), kh_hi = min_int(3, H - ih0);
    for (int ow = 0; c < c_end && ow < j->out_w; ++ow) {
        const int iw0 = ow * p->stride_w - p->pad_left;
        const int kw_lo = clamp_lo(-iw0), kw_hi = min_int(3, W - iw0);
        for (int ci = c; ci < c_end; ++ci)
            fwd_block(j, x_img, ih0, iw0, kh_lo, kh_hi, kw_lo, kw_hi, ci, 1, y_row + (size_t)ow * C);
    }
}
#endif

PT_ALWAYS_INLINE void dw_fwd_rows(const dw_job *j, size_t row_begin, size_t row_end, int wide, int avx512)
{
    const pt_conv_params *p = j->p;
    const int C = p->in.c, H = p->in.h, W = p->in.w;
#if DW_VEC
    if (avx512 && p->kh == 3 && p->kw == 3 && C >= DW_VL) {
        for (size_t row = row_begin; row < row_end; ++row) {
            const int n = (int)(row / (size_t)j->out_h), oh = (int)(row % (size_t)j->out_h);
            fwd_row_3x3(j, j->x + (size_t)n * H * W * C, oh, 0, C, j->out + row * (size_t)j->out_w * C);
        }
        return;
    }
#else
    (void)avx512;
#endif
    for (size_t row = row_begin; row < row_end; ++row) {
        const int n = (int)(row / (size_t)j->out_h), oh = (int)(row % (size_t)j->out_h);
        const int ih0 = oh * p->stride_h - p->pad_top;
        const int kh_lo = clamp_lo(-ih0), kh_hi = min_int(p->kh, H - ih0);
        const float *x_img = j->x + (size_t)n * H * W * C;
        float *y_row = j->out + row * (size_t)j->out_w * C;
        for (int ow = 0; ow < j->out_w; ++ow) {
            const int iw0 = ow * p->stride_w - p->pad_left;
            const int kw_lo = clamp_lo(-iw0), kw_hi = min_int(p->kw, W - iw0);
            float *y_px = y_row + (size_t)ow * C;
            int c = 0;
            for (; c + wide <= C; c += wide)
                fwd_block(j, x_img, ih0, iw0, kh_lo, kh_hi, kw_lo, kw_hi, c, wide, y_px);
            for (; c + DW_TAIL_BLOCK <= C; c += DW_TAIL_BLOCK)
                fwd_block(j, x_img, ih0, iw0, kh_lo, kh_hi, kw_lo, kw_hi, c, DW_TAIL_BLOCK, y_px);
            for (; c < C; ++c)
                fwd_block(j, x_img, ih0, iw0, kh_lo, kh_hi, kw_lo, kw_hi, c, 1, y_px);
        }
    }
}

/* ------------------------------------------------------------- grad-input */
/* Through the activation that produced x: keep grad_x where 0 < x < cap. */
PT_ALWAYS_INLINE void dw_mask_block(const dw_job *j, float *gx_px, int c, int block)
{
    const float *x_px = j->x + (gx_px - j->out);
    for (int i = 0; i < block; ++i) gx_px[c + i] = pt_act_grad_select(x_px[c + i], gx_px[c + i], j->act_cap);
}

#if DW_VEC
/* dw_mask_block for blocks of whole vectors, with AVX-512 mask compares
 * (GCC does not vectorise the select above). Called only by the AVX-512
 * build; the portable one compiles the call but never makes it. */
PT_TARGET_AVX512 static void dw_mask_vectors(const dw_job *j, float *gx_px, int c, int block)
{
    const float *x_px = j->x + (gx_px - j->out) + c;
    for (int i = 0; i < block; i += DW_VL) {
        dw_vec g;
        __builtin_memcpy(&g, gx_px + c + i, sizeof g);
        g = dw_select_active(x_px + i, j->act_cap, g);
        DW_STORE(gx_px + c + i, g);
    }
}
#endif

/* Channels [c, c + block) of one input pixel: the taps that reached it, in
 * ascending (kh, kw) order. */
PT_ALWAYS_INLINE void bwd_input_block(const dw_job *j, const float *gy_img, int ih, int iw, int kh_first,
                                      int kh_last, int kw_first, int kw_last, int c, int block,
                                      float *restrict gx_px, int avx512)
{
    const pt_conv_params *p = j->p;
    const int C = p->in.c, KW = p->kw, OW = j->out_w, sh = p->stride_h, sw = p->stride_w;
#if DW_VEC
    if (block % DW_VL == 0) {
        dw_vec vacc[DW_MAX_BLOCK / DW_VL];
        const int nv = block / DW_VL;
#pragma GCC unroll 8
        for (int v = 0; v < nv; ++v) vacc[v] = (dw_vec){0};
        for (int kh = kh_first; kh <= kh_last; kh += sh) {
            const int oh = (ih + p->pad_top - kh) / sh;
            for (int kw = kw_first; kw <= kw_last; kw += sw) {
                const int ow = (iw + p->pad_left - kw) / sw;
                const float *gp = gy_img + ((size_t)oh * OW + (size_t)ow) * C + c;
                const float *wp = j->w + (size_t)(kh * KW + kw) * C + c;
#pragma GCC unroll 8
                for (int v = 0; v < nv; ++v)
                    DW_MAC(vacc[v], gp + v * DW_VL, wp + v * DW_VL);
            }
        }
#pragma GCC unroll 8
        for (int v = 0; v < nv; ++v) DW_STORE(gx_px + c + v * DW_VL, vacc[v]);
        if (j->act_cap > 0.0f) {
            if (avx512) dw_mask_vectors(j, gx_px, c, block);
            else dw_mask_block(j, gx_px, c, block);
        }
        return;
    }
#endif
    float acc[DW_MAX_BLOCK];
    for (int i = 0; i < block; ++i) acc[i] = 0.0f;
    for (int kh = kh_first; kh <= kh_last; kh += sh) {
        const int oh = (ih + p->pad_top - kh) / sh;
        for (int kw = kw_first; kw <= kw_last; kw += sw) {
            const int ow = (iw + p->pad_left - kw) / sw;
            const float *restrict gp = gy_img + ((size_t)oh * OW + (size_t)ow) * C + c;
            const float *restrict wp = j->w + (size_t)(kh * KW + kw) * C + c;
            for (int i = 0; i < block; ++i) acc[i] += gp[i] * wp[i];
        }
    }
    for (int i = 0; i < block; ++i) gx_px[c + i] = acc[i];
    if (j->act_cap > 0.0f) dw_mask_block(j, gx_px, c, block);
    (void)avx512;
}

#if DW_VEC
/* Channels [c_begin, c_end) of input row ih (3x3, stride 1): blocks of 16
 * (row3_unit), then single channels. Called, not inlined (it needs the AVX-512
 * target for its mask compares): the portable build compiles the call but
 * never makes it. */
PT_TARGET_AVX512 static void bwd_input_row_3x3(const dw_job *j, const float *gy_img, int ih, int kh_first,
                                               int kh_last, int c_begin, int c_end, float *gx_row)
{
    const pt_conv_params *p = j->p;
    const int C = p->in.c, OW = j->out_w;
    const size_t row_floats = (size_t)p->in.w * C;
    dw_row3 r = {{NULL, NULL, NULL}, OW, p->in.w, 1, p->pad_left, -1,
                 row_ahead(gx_row, row_floats, j->out + (size_t)p->in.n * p->in.h * row_floats)};
    for (int kh = kh_first; kh <= kh_last; ++kh) r.src[kh] = gy_img + (size_t)(ih + p->pad_top - kh) * OW * C;
    const float *x_row = j->x ? j->x + (gx_row - j->out) : NULL;
    row3_unit(j, &r, c_begin, c_end, 1, x_row, gx_row);
    int c = c_begin + (c_end - c_begin) / DW_VL * DW_VL;
    for (int iw = 0; c < c_end && iw < j->p->in.w; ++iw) {
        int kw_first, kw_last;
        pt_taps_reaching(iw, j->p->pad_left, 1, 3, j->out_w, &kw_first, &kw_last);
        for (int ci = c; ci < c_end; ++ci)
            bwd_input_block(j, gy_img, ih, iw, kh_first, kh_last, kw_first, kw_last, ci, 1,
                            gx_row + (size_t)iw * j->p->in.c, 1);
    }
}
#endif

PT_ALWAYS_INLINE void dw_bwd_input_rows(const dw_job *j, size_t row_begin, size_t row_end, int wide, int avx512)
{
    const pt_conv_params *p = j->p;
    const int C = p->in.c, H = p->in.h, W = p->in.w;
#if DW_VEC
    if (avx512 && p->kh == 3 && p->kw == 3 && p->stride_h == 1 && p->stride_w == 1 && C >= DW_VL) {
        for (size_t row = row_begin; row < row_end; ++row) {
            const int n = (int)(row / (size_t)H), ih = (int)(row % (size_t)H);
            int kh_first, kh_last;
            pt_taps_reaching(ih, p->pad_top, p->stride_h, 3, j->out_h, &kh_first, &kh_last);
            const float *gy_img = j->grad_y + (size_t)n * j->out_h * j->out_w * C;
            bwd_input_row_3x3(j, gy_img, ih, kh_first, kh_last, 0, C, j->out + row * (size_t)W * C);
        }
        return;
    }
#else
    (void)avx512;
#endif
    for (size_t row = row_begin; row < row_end; ++row) {
        const int n = (int)(row / (size_t)H), ih = (int)(row % (size_t)H);
        int kh_first, kh_last;
        pt_taps_reaching(ih, p->pad_top, p->stride_h, p->kh, j->out_h, &kh_first, &kh_last);
        const float *gy_img = j->grad_y + (size_t)n * j->out_h * j->out_w * C;
        float *gx_row = j->out + row * (size_t)W * C;
        for (int iw = 0; iw < W; ++iw) {
            int kw_first, kw_last;
            pt_taps_reaching(iw, p->pad_left, p->stride_w, p->kw, j->out_w, &kw_first, &kw_last);
            float *gx_px = gx_row + (size_t)iw * C;
            int c = 0;
            for (; c + wide <= C; c += wide)
                bwd_input_block(j, gy_img, ih, iw, kh_first, kh_last, kw_first, kw_last, c, wide, gx_px, avx512);
            for (; c + DW_TAIL_BLOCK <= C; c += DW_TAIL_BLOCK)
                bwd_input_block(j, gy_img, ih, iw, kh_first, kh_last, kw_first, kw_last, c, DW_TAIL_BLOCK, gx_px,
                                avx512);
            for (; c < C; ++c)
                bwd_input_block(j, gy_img, ih, iw, kh_first, kh_last, kw_first, kw_last, c, 1, gx_px, avx512);
        }
    }
}

/* ------------------------------------------------------------ grad-weight */
/* Channels [c, c + block) of image n: for each tap, the sum over the output
 * pixels it reaches (a rectangle, in raster order), added to the running
 * batch total; likewise grad_y's sum for the bias. */
PT_ALWAYS_INLINE void bwd_weight_block(const dw_job *j, int n, int c, int block)
{
    const pt_conv_params *p = j->p;
    const int C = p->in.c, H = p->in.h, W = p->in.w, OH = j->out_h, OW = j->out_w;
    const float *x_img = j->x + (size_t)n * H * W * C + c;
    const float *gy_img = j->grad_y + (size_t)n * OH * OW * C + c;
    float acc[DW_MAX_BLOCK];
    for (int kh = 0; kh < p->kh; ++kh) {
        int oh_lo, oh_hi;
        pt_tap_out_range(kh, p->pad_top, p->stride_h, H, OH, &oh_lo, &oh_hi);
        for (int kw = 0; kw < p->kw; ++kw) {
            int ow_lo, ow_hi;
            pt_tap_out_range(kw, p->pad_left, p->stride_w, W, OW, &ow_lo, &ow_hi);
#if DW_VEC
            if (block % DW_VL == 0) {
                dw_vec vacc[DW_MAX_BLOCK / DW_VL];
                const int nv = block / DW_VL;
#pragma GCC unroll 8
                for (int v = 0; v < nv; ++v) vacc[v] = (dw_vec){0};
                for (int oh = oh_lo; oh < oh_hi; ++oh) {
                    const int ih = oh * p->stride_h - p->pad_top + kh;
                    for (int ow = ow_lo; ow < ow_hi; ++ow) {
                        const int iw = ow * p->stride_w - p->pad_left + kw;
                        const float *xp = x_img + ((size_t)ih * W + (size_t)iw) * C;
                        const float *gp = gy_img + ((size_t)oh * OW + (size_t)ow) * C;
#pragma GCC unroll 8
                        for (int v = 0; v < nv; ++v)
                            DW_MAC(vacc[v], xp + v * DW_VL, gp + v * DW_VL);
                    }
                }
#pragma GCC unroll 8
                for (int v = 0; v < nv; ++v) DW_STORE(acc + v * DW_VL, vacc[v]);
            } else
#endif
            {
                for (int i = 0; i < block; ++i) acc[i] = 0.0f;
                for (int oh = oh_lo; oh < oh_hi; ++oh) {
                    const int ih = oh * p->stride_h - p->pad_top + kh;
                    for (int ow = ow_lo; ow < ow_hi; ++ow) {
                        const int iw = ow * p->stride_w - p->pad_left + kw;
                        const float *restrict xp = x_img + ((size_t)ih * W + (size_t)iw) * C;
                        const float *restrict gp = gy_img + ((size_t)oh * OW + (size_t)ow) * C;
                        for (int i = 0; i < block; ++i) acc[i] += xp[i] * gp[i];
                    }
                }
            }
            float *restrict gw = j->out + (size_t)(kh * p->kw + kw) * C + c;
            if (n == 0 && !j->accumulate) for (int i = 0; i < block; ++i) gw[i] = acc[i];
            else for (int i = 0; i < block; ++i) gw[i] += acc[i];
        }
    }
    if (j->grad_b) {
        for (int i = 0; i < block; ++i) acc[i] = 0.0f;
        for (size_t px = 0; px < (size_t)OH * OW; ++px) {
            const float *restrict gp = gy_img + px * C;
            for (int i = 0; i < block; ++i) acc[i] += gp[i];
        }
        float *restrict gb = j->grad_b + c;
        if (n == 0 && !j->accumulate) for (int i = 0; i < block; ++i) gb[i] = acc[i];
        else for (int i = 0; i < block; ++i) gb[i] += acc[i];
    }
}

#if DW_VEC
/* 3x3 kernels, channels [c, c + nv * DW_VL) of image n (nv <= 2): one pass
 * over the image's pixels feeds all nine taps' accumulators (and the bias's)
 * from registers, so grad_y is loaded once per pixel instead of once per tap.
 * Each tap still sums the pixels it reaches in raster order, starting from
 * 0, so the result is bitwise bwd_weight_block's. */
/* One output pixel of grad-weight (3x3): its grad_y (gp, nv vectors) into
 * the bias sum, and times each input pixel its taps read, inside the input,
 * into that tap's sum, in (kh, kw) order. */
PT_ALWAYS_INLINE void bwd_weight_pixel_3x3(const dw_job *j, const float *x_img, const float *gp, int ih0, int iw0,
                                           const int nv, dw_vec acc[9][2], dw_vec bacc[2])
{
    const pt_conv_params *p = j->p;
    const int C = p->in.c, H = p->in.h, W = p->in.w;
    dw_vec g[2];
#pragma GCC unroll 2
    for (int v = 0; v < nv; ++v) {
        __builtin_memcpy(&g[v], gp + v * DW_VL, sizeof(dw_vec));
        bacc[v] = bacc[v] + g[v];
    }
#pragma GCC unroll 3
    for (int kh = 0; kh < 3; ++kh) {
        const int ih = ih0 + kh;
        if ((unsigned)ih >= (unsigned)H) continue;
#pragma GCC unroll 3
        for (int kw = 0; kw < 3; ++kw) {
            const int iw = iw0 + kw;
            if ((unsigned)iw >= (unsigned)W) continue;
            const float *xp = x_img + ((size_t)ih * W + (size_t)iw) * C;
#pragma GCC unroll 2
            for (int v = 0; v < nv; ++v) {
                dw_vec xv;
                __builtin_memcpy(&xv, xp + v * DW_VL, sizeof xv);
                acc[kh * 3 + kw][v] = acc[kh * 3 + kw][v] + xv * g[v];
            }
        }
    }
}

/* Image n's tap and bias sums of channels [c, c + nv * DW_VL) into the
 * batch totals: the first image sets them, later ones add, in batch order. */
PT_ALWAYS_INLINE void bwd_weight_flush_3x3(const dw_job *j, int n, int c, const int nv, dw_vec acc[9][2],
                                           dw_vec bacc[2])
{
    const int C = j->p->in.c, block = nv * DW_VL;
    float sums[2 * DW_VL];
#pragma GCC unroll 9
    for (int t = 0; t < 9; ++t) {
        for (int v = 0; v < nv; ++v) DW_STORE(sums + v * DW_VL, acc[t][v]);
        float *restrict gw = j->out + (size_t)t * C + c;
        if (n == 0 && !j->accumulate) for (int i = 0; i < block; ++i) gw[i] = sums[i];
        else for (int i = 0; i < block; ++i) gw[i] += sums[i];
    }
    if (j->grad_b) {
        for (int v = 0; v < nv; ++v) DW_STORE(sums + v * DW_VL, bacc[v]);
        float *restrict gb = j->grad_b + c;
        if (n == 0 && !j->accumulate) for (int i = 0; i < block; ++i) gb[i] = sums[i];
        else for (int i = 0; i < block; ++i) gb[i] += sums[i];
    }
}

PT_ALWAYS_INLINE void bwd_weight_block_3x3(const dw_job *j, int n, int c, const int nv)
{
    const pt_conv_params *p = j->p;
    const int C = p->in.c, H = p->in.h, W = p->in.w, OH = j->out_h, OW = j->out_w;
    const float *x_img = j->x + (size_t)n * H * W * C + c;
    const float *gy_img = j->grad_y + (size_t)n * OH * OW * C + c;
    dw_vec acc[9][2], bacc[2];
#pragma GCC unroll 9
    for (int t = 0; t < 9; ++t) acc[t][0] = acc[t][1] = (dw_vec){0};
    bacc[0] = bacc[1] = (dw_vec){0};
    for (int oh = 0; oh < OH; ++oh) {
        const int ih0 = oh * p->stride_h - p->pad_top;
        for (int ow = 0; ow < OW; ++ow)
            bwd_weight_pixel_3x3(j, x_img, gy_img + ((size_t)oh * OW + (size_t)ow) * C, ih0,
                                 ow * p->stride_w - p->pad_left, nv, acc, bacc);
    }
    bwd_weight_flush_3x3(j, n, c, nv, acc, bacc);
}
#endif

#if DW_VEC
/* grad-weight at unit column step, 16 channels [c, c + 16) of image n: as
 * bwd_weight_block_3x3, but a row's interior outputs (all three input
 * columns inside) go up to DW_ROW_PX at a time: for each kernel row their
 * grad_y vectors and the np + 2 input columns they read are loaded once, and
 * output q's tap kw takes column q + kw. Each tap's sum still adds the
 * outputs in raster order (the edge outputs one at a time, in their place
 * in the row), so the sums are bitwise bwd_weight_block_3x3's. np is a
 * constant; at 8: 9 + 1 sums, 8 grad_y and 10 columns in registers. */
PT_ALWAYS_INLINE void bwd_weight_unit_group(const dw_job *j, const float *x_img, const float *gy_row, int ih0,
                                            int o0, const int np, const int edges, dw_vec acc[9][2],
                                            dw_vec bacc[2])
{
    /* edges: a whole row padded by one column each side, as in
     * row3_unit_group: columns 0 and np + 1 are outside, their taps skipped */
    const int jlo = edges ? 1 : 0, jhi = edges ? np + 1 : np + 2;
    const pt_conv_params *p = j->p;
    const int C = p->in.c, H = p->in.h, W = p->in.w;
    dw_vec g[DW_ROW_PX];
#pragma GCC unroll 8
    for (int q = 0; q < np; ++q) {
        __builtin_memcpy(&g[q], gy_row + (size_t)(o0 + q) * C, sizeof(dw_vec));
        bacc[0] = bacc[0] + g[q];
    }
    const int b0 = o0 - p->pad_left;
#pragma GCC unroll 3
    for (int kh = 0; kh < 3; ++kh) {
        const int ih = ih0 + kh;
        if ((unsigned)ih >= (unsigned)H) continue;
        const float *src = x_img + (size_t)ih * W * C;
        dw_vec col[DW_ROW_PX + 2];
#pragma GCC unroll 10
        for (int jj = jlo; jj < jhi; ++jj) __builtin_memcpy(&col[jj], src + (size_t)(b0 + jj) * C, sizeof(dw_vec));
#pragma GCC unroll 8
        for (int q = 0; q < np; ++q)
#pragma GCC unroll 3
            for (int kw = 0; kw < 3; ++kw)
                if (q + kw >= jlo && q + kw < jhi) acc[kh * 3 + kw][0] = acc[kh * 3 + kw][0] + col[q + kw] * g[q];
    }
}

PT_ALWAYS_INLINE void bwd_weight_unit_3x3(const dw_job *j, int n, int c)
{
    const pt_conv_params *p = j->p;
    const int C = p->in.c, H = p->in.h, W = p->in.w, OH = j->out_h, OW = j->out_w;
    const float *x_img = j->x + (size_t)n * H * W * C + c;
    const float *gy_img = j->grad_y + (size_t)n * OH * OW * C + c;
    /* interior outputs [o_lo, o_hi): input columns o - pad + {0, 1, 2} inside [0, W) */
    const int o_lo = min_int(p->pad_left, OW);
    const int o_hi = W - 3 + p->pad_left < 0 ? o_lo : min_int(W - 2 + p->pad_left, OW);
    dw_vec acc[9][2], bacc[2] = {{0}, {0}};
#pragma GCC unroll 9
    for (int t = 0; t < 9; ++t) acc[t][0] = acc[t][1] = (dw_vec){0};
    const int whole = o_lo == 1 && o_hi == OW - 1 && OW >= 3 && OW <= DW_ROW_PX;   /* as in row3_unit */
    for (int oh = 0; oh < OH; ++oh) {
        const int ih0 = oh * p->stride_h - p->pad_top;
        const float *gy_row = gy_img + (size_t)oh * OW * C;
#define DW_GROUP(N, EDGES) bwd_weight_unit_group(j, x_img, gy_row, ih0, o, N, EDGES, acc, bacc)
        for (int o = 0; o < OW;) {
            if (whole) {
                DW_SWITCH_NP(OW, 1);
                break;
            }
            if (o >= o_lo && o < o_hi) {
                const int np = min_int(DW_ROW_PX, o_hi - o);
                DW_SWITCH_NP(np, 0);
                o += np;
                continue;
            }
            /* an edge output: its taps inside the input, in (kh, kw) order */
            bwd_weight_pixel_3x3(j, x_img, gy_row + (size_t)o * C, ih0, o - p->pad_left, 1, acc, bacc);
            ++o;
        }
#undef DW_GROUP
    }
    bwd_weight_flush_3x3(j, n, c, 1, acc, bacc);
}

/* Channels [c_begin, c_end) of image n (3x3): blocks of 16 at unit column
 * step, else of 32 and 16; then single channels. */
PT_ALWAYS_INLINE void bwd_weight_3x3(const dw_job *j, int n, int c_begin, int c_end)
{
    int c = c_begin;
    if (j->p->stride_w == 1) {
        for (; c + DW_VL <= c_end; c += DW_VL) bwd_weight_unit_3x3(j, n, c);
    } else {
        for (; c + 2 * DW_VL <= c_end; c += 2 * DW_VL) bwd_weight_block_3x3(j, n, c, 2);
        for (; c + DW_VL <= c_end; c += DW_VL) bwd_weight_block_3x3(j, n, c, 1);
    }
    for (; c < c_end; ++c) bwd_weight_block(j, n, c, 1);
}
#endif

/* Channels [c_begin, c_end), image by image (each image's slice stays in cache
 * while its taps are summed). avx512 (the AVX-512 build, a constant after
 * inlining): 3x3 kernels take bwd_weight_block_3x3, whose 18 + 2
 * accumulators fit the 32 vector registers. */
PT_ALWAYS_INLINE void dw_bwd_weight_channels(const dw_job *j, int c_begin, int c_end, int wide, int avx512)
{
#if DW_VEC
    if (avx512 && j->p->kh == 3 && j->p->kw == 3) {
        for (int n = 0; n < j->p->in.n; ++n) bwd_weight_3x3(j, n, c_begin, c_end);
        return;
    }
#else
    (void)avx512;
#endif
    for (int n = 0; n < j->p->in.n; ++n) {
        int c = c_begin;
        for (; c + wide <= c_end; c += wide) bwd_weight_block(j, n, c, wide);
        for (; c + DW_TAIL_BLOCK <= c_end; c += DW_TAIL_BLOCK) bwd_weight_block(j, n, c, DW_TAIL_BLOCK);
        for (; c < c_end; ++c) bwd_weight_block(j, n, c, 1);
    }
}

/* ------------------------------------------------ ISA builds and dispatch */
#define DW_WIDE_PORTABLE 32
#define DW_WIDE_AVX512 128
static void fwd_rows_portable(const dw_job *j, size_t b, size_t e) { dw_fwd_rows(j, b, e, DW_WIDE_PORTABLE, 0); }
static void bwd_input_rows_portable(const dw_job *j, size_t b, size_t e)
{
    dw_bwd_input_rows(j, b, e, DW_WIDE_PORTABLE, 0);
}
static void bwd_weight_portable(const dw_job *j, int b, int e) { dw_bwd_weight_channels(j, b, e, DW_WIDE_PORTABLE, 0); }
#if PT_HAVE_AVX512_DISPATCH
PT_TARGET_AVX512 static void fwd_rows_avx512(const dw_job *j, size_t b, size_t e)
{
    dw_fwd_rows(j, b, e, DW_WIDE_AVX512, 1);
}
PT_TARGET_AVX512 static void bwd_input_rows_avx512(const dw_job *j, size_t b, size_t e)
{
    dw_bwd_input_rows(j, b, e, DW_WIDE_AVX512, 1);
}
PT_TARGET_AVX512 static void bwd_weight_avx512(const dw_job *j, int b, int e)
{
    dw_bwd_weight_channels(j, b, e, DW_WIDE_AVX512, 1);
}
#define DW_PICK(name) (pt_cpu_has_avx512() ? name##_avx512 : name##_portable)
#else
#define DW_PICK(name) (name##_portable)
#endif

static void fwd_task(void *arg, int core, int ncores)
{
    const dw_job *j = (const dw_job *)arg;
    size_t b, e;
    pt_split((size_t)j->p->in.n * (size_t)j->out_h, core, ncores, &b, &e);
    if (b < e) DW_PICK(fwd_rows)(j, b, e);
}

static void bwd_input_task(void *arg, int core, int ncores)
{
    const dw_job *j = (const dw_job *)arg;
    size_t b, e;
    pt_split((size_t)j->p->in.n * (size_t)j->p->in.h, core, ncores, &b, &e);
    if (b < e) DW_PICK(bwd_input_rows)(j, b, e);
}

/* This core's channels [*b, *e) out of C, split in groups of DW_SPLIT_UNIT. */
static void split_channels(int C, int core, int ncores, int *b, int *e)
{
    size_t gb, ge;
    pt_split(((size_t)C + DW_SPLIT_UNIT - 1) / DW_SPLIT_UNIT, core, ncores, &gb, &ge);
    *b = (int)gb * DW_SPLIT_UNIT;
    *e = min_int((int)ge * DW_SPLIT_UNIT, C);
}

static void bwd_weight_task(void *arg, int core, int ncores)
{
    const dw_job *j = (const dw_job *)arg;
    int b, e;
    split_channels(j->p->in.c, core, ncores, &b, &e);
    if (b < e) DW_PICK(bwd_weight)(j, b, e);
}

/* -------------------------------------------- grad-input and grad-weight */
/* Both gradients in one pass over grad_y, split over channel groups: per
 * image, grad-input's rows of this core's channels and then their
 * grad-weight sums, while that image's grad_y is still in L2 (per block of
 * 32 channels instead, the pass read 128 of every 2048 bytes of each pixel
 * and ran slower than the two kernels apart). Every output's arithmetic is
 * the separate kernels', so the results are bitwise theirs. Built for the
 * AVX-512 3x3 stride-1 paths; other shapes call the two kernels. */
typedef struct dw_bwd_job {
    dw_job in, weight;
} dw_bwd_job;

#if DW_VEC
PT_TARGET_AVX512 static void bwd_both_avx512(const dw_bwd_job *b, int c_begin, int c_end)
{
    const dw_job *jx = &b->in, *jw = &b->weight;
    const pt_conv_params *p = jx->p;
    const int C = p->in.c, H = p->in.h, W = p->in.w;
    for (int n = 0; n < p->in.n; ++n) {
        const float *gy_img = jx->grad_y + (size_t)n * jx->out_h * jx->out_w * C;
        float *gx_img = jx->out + (size_t)n * H * W * C;
        for (int ih = 0; ih < H; ++ih) {
            int kh_first, kh_last;
            pt_taps_reaching(ih, p->pad_top, 1, 3, jx->out_h, &kh_first, &kh_last);
            bwd_input_row_3x3(jx, gy_img, ih, kh_first, kh_last, c_begin, c_end, gx_img + (size_t)ih * W * C);
        }
        bwd_weight_3x3(jw, n, c_begin, c_end);
    }
}

static void bwd_both_task(void *arg, int core, int ncores)
{
    const dw_bwd_job *b = (const dw_bwd_job *)arg;
    int cb, ce;
    split_channels(b->in.p->in.c, core, ncores, &cb, &ce);
    if (cb < ce) bwd_both_avx512(b, cb, ce);
}
#endif

/* ------------------------------------------------------------- public API */
pt_status pt_depthwise_f32_fwd_act(const pt_ctx *ctx, const pt_conv_params *p, pt_act act,
                                   const float *x, const float *w, const float *b, float *y)
{
    pt_status st = pt_check_ctx(ctx, 0);
    int oh, ow;
    if (st == PT_OK) st = pt_check_depthwise(p, &oh, &ow);
    if (st != PT_OK) return st;
    if (act != PT_ACT_NONE && act != PT_ACT_RELU && act != PT_ACT_RELU6) return PT_ERR_PARAM;
    if (!x || !w || !y) return PT_ERR_NULL;
    dw_job job = {p, oh, ow, x, w, b, NULL, y, NULL, act == PT_ACT_NONE ? 0.0f : pt_act_cap(act), 0};
    size_t rows = (size_t)p->in.n * (size_t)oh;
    size_t work = rows * (size_t)ow * (size_t)p->in.c * (size_t)p->kh * (size_t)p->kw;
    return pt_fork(pt_threads_for_work(ctx, rows, work), fwd_task, &job);
}

pt_status pt_depthwise_f32_fwd(const pt_ctx *ctx, const pt_conv_params *p, const float *x,
                               const float *w, const float *b, float *y)
{
    return pt_depthwise_f32_fwd_act(ctx, p, PT_ACT_NONE, x, w, b, y);
}

pt_status pt_depthwise_f32_bwd_input(const pt_ctx *ctx, const pt_conv_params *p, const float *w,
                                     const float *grad_y, float *grad_x)
{
    return pt_depthwise_f32_bwd_input_act(ctx, p, PT_ACT_NONE, w, grad_y, NULL, grad_x);
}

pt_status pt_depthwise_f32_bwd_input_act(const pt_ctx *ctx, const pt_conv_params *p, pt_act act,
                                         const float *w, const float *grad_y, const float *x, float *grad_x)
{
    pt_status st = pt_check_ctx(ctx, 0);
    int oh, ow;
    if (st == PT_OK) st = pt_check_depthwise(p, &oh, &ow);
    if (st != PT_OK) return st;
    if (act != PT_ACT_NONE && act != PT_ACT_RELU && act != PT_ACT_RELU6) return PT_ERR_PARAM;
    if (!w || !grad_y || !grad_x || (act != PT_ACT_NONE && !x)) return PT_ERR_NULL;
    dw_job job = {p, oh, ow, x, w, NULL, grad_y, grad_x, NULL, act == PT_ACT_NONE ? 0.0f : pt_act_cap(act), 0};
    size_t rows = (size_t)p->in.n * (size_t)p->in.h;
    size_t work = pt_dims_count(p->in) * (size_t)p->kh * (size_t)p->kw;
    return pt_fork(pt_threads_for_work(ctx, rows, work), bwd_input_task, &job);
}

static pt_status bwd_weight(const pt_ctx *ctx, const pt_conv_params *p, const float *x, const float *grad_y,
                            float *grad_w, float *grad_b, int accumulate)
{
    pt_status st = pt_check_ctx(ctx, 0);
    int oh, ow;
    if (st == PT_OK) st = pt_check_depthwise(p, &oh, &ow);
    if (st != PT_OK) return st;
    if (!x || !grad_y || !grad_w) return PT_ERR_NULL;
    dw_job job = {p, oh, ow, x, NULL, NULL, grad_y, grad_w, grad_b, 0.0f, accumulate};
    size_t units = ((size_t)p->in.c + DW_SPLIT_UNIT - 1) / DW_SPLIT_UNIT;
    size_t work = (size_t)p->in.n * (size_t)oh * (size_t)ow * (size_t)p->in.c * (size_t)p->kh * (size_t)p->kw;
    return pt_fork(pt_threads_for_work(ctx, units, work), bwd_weight_task, &job);
}

pt_status pt_depthwise_f32_bwd_weight(const pt_ctx *ctx, const pt_conv_params *p, const float *x,
                                      const float *grad_y, float *grad_w, float *grad_b)
{
    return bwd_weight(ctx, p, x, grad_y, grad_w, grad_b, 0);
}

pt_status pt_depthwise_f32_bwd_weight_acc(const pt_ctx *ctx, const pt_conv_params *p, const float *x,
                                          const float *grad_y, float *grad_w, float *grad_b)
{
    return bwd_weight(ctx, p, x, grad_y, grad_w, grad_b, 1);
}

pt_status pt_depthwise_f32_bwd(const pt_ctx *ctx, const pt_conv_params *p, pt_act act, const float *w,
                               const float *x, const float *grad_y, float *grad_x, float *grad_w,
                               float *grad_b)
{
    pt_status st = pt_check_ctx(ctx, 0);
    int oh, ow;
    if (st == PT_OK) st = pt_check_depthwise(p, &oh, &ow);
    if (st != PT_OK) return st;
    if (act != PT_ACT_NONE && act != PT_ACT_RELU && act != PT_ACT_RELU6) return PT_ERR_PARAM;
    if (!w || !x || !grad_y || !grad_x || !grad_w) return PT_ERR_NULL;
#if DW_VEC
    if (pt_cpu_has_avx512() && p->kh == 3 && p->kw == 3 && p->stride_h == 1 && p->stride_w == 1 &&
        p->in.c >= DW_VL) {
        dw_bwd_job job = {{p, oh, ow, x, w, NULL, grad_y, grad_x, NULL, act == PT_ACT_NONE ? 0.0f : pt_act_cap(act), 0},
                          {p, oh, ow, x, NULL, NULL, grad_y, grad_w, grad_b, 0.0f, 0}};
        size_t units = ((size_t)p->in.c + DW_SPLIT_UNIT - 1) / DW_SPLIT_UNIT;
        size_t work = 2 * pt_dims_count(p->in) * (size_t)p->kh * (size_t)p->kw;
        return pt_fork(pt_threads_for_work(ctx, units, work), bwd_both_task, &job);
    }
#endif
    st = pt_depthwise_f32_bwd_input_act(ctx, p, act, w, grad_y, x, grad_x);
    return st != PT_OK ? st : pt_depthwise_f32_bwd_weight(ctx, p, x, grad_y, grad_w, grad_b);
}
