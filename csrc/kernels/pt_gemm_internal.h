/* pt_gemm_internal.h - GEMM micro-kernels and helpers shared by the GEMM-family
 * kernel sources (gemm, conv2d, pointwise, linear); not public API. */
#ifndef PULPTRAIN_PT_GEMM_INTERNAL_H
#define PULPTRAIN_PT_GEMM_INTERNAL_H

#include <limits.h>
#include "pulptrain/pt_gemm.h"
#include "pulptrain/pt_linear.h"

/* Widest register tile of any variant: bounds the scratch for every ISA;
 * every variant's NR divides it. */
#define PT_GEMM_NR_MAX 32

/* What a micro-kernel does to a finished tile of C on the last K block,
 * before it stores it (NULL: nothing):
 *   clamp_cap > 0: c = pt_act_clamp(c, clamp_cap)     (a fused ReLU / ReLU6)
 *   mask != NULL:  c = pt_act_grad_select(mask, c, mask_cap)  (its backward;
 *                  mask points at the tile's corner, laid out like C)
 * the clamp first, then the mask; the GEMM never asks for both. */
typedef struct pt_gemm_epilogue {
    float clamp_cap;
    const float *mask;
    float mask_cap;
} pt_gemm_epilogue;

/* A micro-kernel computes one MR x NR tile of C from
 *   a: when a_rs == 0, a packed panel kc x MR, a[k*MR + i] (row i of the
 *      tile; zero rows past the edge); otherwise MR rows of A in place,
 *      a[i*a_rs + k] (all MR rows must exist);
 *   b: a packed panel kc x NR, b[k*NR + j], zero columns past the edge.
 * acc[i][j] = sum over k in order of a*b (one multiply-add chain per element,
 * starting from 0). Then, for the m_valid x n_valid corner only:
 *   accumulate: c += acc   otherwise: c = acc (+ bias[j] when bias != NULL),
 * and the epilogue ep on that value. */
typedef void (*pt_gemm_ukernel_fn)(size_t kc, const float *a, size_t a_rs, const float *b,
                                   float *c, size_t ldc, const float *bias, int accumulate,
                                   const pt_gemm_epilogue *ep, int m_valid, int n_valid);

/* Optional vector copies for the two packings on the hot path (NULL: the
 * driver's plain loops). Both copy whole panels, nothing to pad:
 *   pack_a_t: panel p of `panels`: out[p*kc*MR + k*MR + i] = a[k*lda + p*MR + i]
 *             (a transposed A, read row by row)
 *   pack_b_n: panel p of `panels`: out[p*kc*NR + k*NR + j] = b[k*ldb + p*NR + j]
 *             (an untransposed B, read row by row)
 * Reading whole rows of the stored matrix keeps the hardware prefetchers on
 * one sequential stream instead of one strided stream per panel. */
typedef void (*pt_gemm_pack_fn)(size_t kc, size_t panels, const float *src, size_t ld, float *out);

/* Optional vector row sums of `panels` whole packed A panels kc x MR:
 * sums[p*MR + i] = (first ? 0 : sums[p*MR + i]) + the chain over k in order
 * of packed[p*kc*MR + k*MR + i] (NULL: the driver's plain loop). */
typedef void (*pt_gemm_sum_fn)(size_t kc, size_t panels, const float *packed, float *sums, int first);

typedef struct pt_gemm_ukernel {
    int mr, nr;
    pt_gemm_ukernel_fn fn;
    pt_gemm_pack_fn pack_a_t, pack_b_n;
    pt_gemm_sum_fn sum_a;
} pt_gemm_ukernel;

/* The corner of a scalar micro-kernel's finished tile (acc rows acc_nr
 * floats apart) into C, per the accumulate / bias / epilogue rule above. */
static inline void pt_gemm_write_tile(const float *acc, int acc_nr, float *c, size_t ldc, const float *bias,
                                      int accumulate, const pt_gemm_epilogue *ep, int m_valid, int n_valid)
{
    for (int i = 0; i < m_valid; ++i) {
        float *ci = c + (size_t)i * ldc;
        const float *ai = acc + (size_t)i * (size_t)acc_nr;
        if (accumulate)
            for (int j = 0; j < n_valid; ++j) ci[j] += ai[j];
        else if (bias)
            for (int j = 0; j < n_valid; ++j) ci[j] = ai[j] + bias[j];
        else
            for (int j = 0; j < n_valid; ++j) ci[j] = ai[j];
        if (ep && ep->clamp_cap > 0.0f)
            for (int j = 0; j < n_valid; ++j) ci[j] = pt_act_clamp(ci[j], ep->clamp_cap);
        if (ep && ep->mask) {
            const float *mi = ep->mask + (size_t)i * ldc;
            for (int j = 0; j < n_valid; ++j) ci[j] = pt_act_grad_select(mi[j], ci[j], ep->mask_cap);
        }
    }
}

/* Variants compiled into this build (NULL fn when not compiled). */
extern const pt_gemm_ukernel pt_gemm_ukernel_generic;
extern const pt_gemm_ukernel pt_gemm_ukernel_avx2;
extern const pt_gemm_ukernel pt_gemm_ukernel_avx512;
extern const pt_gemm_ukernel pt_gemm_ukernel_riscv;

/* pt_sgemm_f32, then, when mask != NULL, the backward of activation mask_act
 * applied to the final C: c = (0 < mask < cap) ? c : 0, mask laid out like C
 * (row stride ldc). Fused into the last pass over each tile; not with
 * accumulate or a forward act. */
pt_status pt_sgemm_f32_masked(const pt_ctx *ctx, const pt_gemm_params *p, const float *a,
                              const float *b, const float *bias, const float *mask, pt_act mask_act,
                              float *c);

/* pt_sgemm_f32 of a transposed A (trans_a = 1) without bias, plus
 * sums[i] = the sum over k in order of op(A)[i][k], i.e. the column sums of
 * the stored A, bitwise pt_colsum_f32's, taken from A's packed panels rather
 * than by another pass over A (a grad-weight GEMM's grad-bias). */
pt_status pt_sgemm_f32_colsum_a(const pt_ctx *ctx, const pt_gemm_params *p, const float *a,
                                const float *b, float *c, float *sums);

/* out[c] = sum over r = 0..rows-1 in order of x[r*cols + c] (grad-bias), on
 * the ctx's cores split over columns. */
pt_status pt_colsum_f32(const pt_ctx *ctx, size_t rows, size_t cols, const float *x, float *out);

/* Scratch pointer rounded up to a cache line; the *_scratch_bytes functions
 * add PT_SCRATCH_ALIGN so the rounded buffer still fits. */
#define PT_SCRATCH_ALIGN 64
static inline void *pt_align_scratch(void *p)
{
    uintptr_t v = (uintptr_t)p;
    return (void *)((v + PT_SCRATCH_ALIGN - 1) & ~(uintptr_t)(PT_SCRATCH_ALIGN - 1));
}

/* Status of a GEMM's shape and flags (shared with the reference twin). */
static inline pt_status pt_gemm_check(const pt_gemm_params *p, const float *a, const float *b,
                                      const float *bias, const float *c)
{
    if (!p || !a || !b || !c) return PT_ERR_NULL;
    if (p->m <= 0 || p->n <= 0 || p->k <= 0) return PT_ERR_SHAPE;
    if ((p->trans_a != 0 && p->trans_a != 1) || (p->trans_b != 0 && p->trans_b != 1) ||
        (p->accumulate != 0 && p->accumulate != 1) || (p->accumulate && bias) ||
        (p->act != PT_ACT_NONE && p->act != PT_ACT_RELU && p->act != PT_ACT_RELU6) ||
        (p->accumulate && p->act != PT_ACT_NONE))
        return PT_ERR_PARAM;
    if (p->lda < (p->trans_a ? p->m : p->k) || p->ldb < (p->trans_b ? p->k : p->n) || p->ldc < p->n)
        return PT_ERR_SHAPE;
    return PT_OK;
}

/* The linear-layer shape of a pointwise conv (batch = N*H*W pixels), with the
 * status a pointwise kernel returns for bad params. */
static inline pt_status pt_pointwise_as_linear(const pt_conv_params *p, pt_linear_params *lp)
{
    if (!p) return PT_ERR_NULL;
    if (p->in.n <= 0 || p->in.h <= 0 || p->in.w <= 0 || p->in.c <= 0 || p->out_c <= 0)
        return PT_ERR_SHAPE;
    if (p->kh != 1 || p->kw != 1 || p->stride_h != 1 || p->stride_w != 1 || p->pad_top ||
        p->pad_bottom || p->pad_left || p->pad_right)
        return PT_ERR_PARAM;
    long long pixels = (long long)p->in.n * p->in.h * p->in.w;
    if (pixels > INT_MAX) return PT_ERR_OVERFLOW;
    lp->batch = (int)pixels;
    lp->in_features = p->in.c;
    lp->out_features = p->out_c;
    return PT_OK;
}

/* Output extent and im2col width of a dense conv, or the status its kernels
 * return for bad params (shared by the kernels and their reference twins). */
typedef struct pt_conv2d_geom {
    size_t oh, ow;      /* output height, width */
    size_t patch;       /* KH * KW * Cin: one im2col row, one weight row */
} pt_conv2d_geom;

static inline pt_status pt_conv2d_geometry(const pt_conv_params *p, pt_conv2d_geom *g)
{
    if (!p) return PT_ERR_NULL;
    if (p->in.n <= 0 || p->in.h <= 0 || p->in.w <= 0 || p->in.c <= 0 || p->out_c <= 0)
        return PT_ERR_SHAPE;
    if (p->kh <= 0 || p->kw <= 0 || p->stride_h <= 0 || p->stride_w <= 0 || p->pad_top < 0 ||
        p->pad_bottom < 0 || p->pad_left < 0 || p->pad_right < 0)
        return PT_ERR_PARAM;
    int oh = pt_out_extent(p->in.h, p->kh, p->stride_h, p->pad_top, p->pad_bottom);
    int ow = pt_out_extent(p->in.w, p->kw, p->stride_w, p->pad_left, p->pad_right);
    if (oh <= 0 || ow <= 0) return PT_ERR_SHAPE;
    long long patch = (long long)p->kh * p->kw * p->in.c;
    long long pixels = (long long)p->in.n * oh * ow;
    long long in_pixels = (long long)p->in.n * p->in.h * p->in.w;
    if (patch > INT_MAX || pixels > INT_MAX || in_pixels > INT_MAX ||
        patch * p->out_c > INT_MAX || pixels * p->out_c > INT_MAX || in_pixels * p->in.c > INT_MAX)
        return PT_ERR_OVERFLOW;
    g->oh = (size_t)oh;
    g->ow = (size_t)ow;
    g->patch = (size_t)patch;
    return PT_OK;
}

/* The conv2d kernels' building blocks, shared with the tiled executor
 * (csrc/tile), which runs them on L1 tiles described as smaller convs:
 *   im2col: rows [first, first + count) of p's im2col matrix (output pixel
 *           n * OH * OW + oh * OW + ow), from x, into cols; only the columns
 *           of taps (kh * KW + kw) [tap0, tap1), so cols is count x
 *           ((tap1 - tap0) * Cin);
 *   col2im: grad_x of all p's images from the grad-cols matrix (one row per
 *           output pixel, holding taps [tap0, tap1)), each input pixel
 *           summing those taps in kh, kw order, onto 0 or (accumulate) onto
 *           grad_x: taps in blocks, in order, sum as all of them at once;
 *   chunk_images: images per im2col chunk of the untiled kernels (their
 *           grad-weight adds one GEMM per chunk into grad_w, in chunk order);
 *           0 for bad params. */
pt_status pt_conv2d_im2col(const pt_ctx *ctx, const pt_conv_params *p, const float *x, size_t first,
                           size_t count, int tap0, int tap1, float *cols);
pt_status pt_conv2d_col2im(const pt_ctx *ctx, const pt_conv_params *p, const float *grad_cols, int tap0,
                           int tap1, int accumulate, float *grad_x);
size_t pt_conv2d_chunk_images(const pt_conv_params *p);

#endif
