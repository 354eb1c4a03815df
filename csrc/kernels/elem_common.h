/* elem_common.h - private helpers of the non-GEMM FP32 kernels (depthwise,
 * pooling, channel affine, loss) and their reference twins: argument checks shared
 * by both, so the twins disagree only in how they compute, and the x86 SIMD
 * dispatch. Not part of the public API. */
#ifndef PULPTRAIN_ELEM_COMMON_H
#define PULPTRAIN_ELEM_COMMON_H

#include "pulptrain/pt_types.h"
#include "pulptrain/internal.h"

#if defined(__GNUC__)
#define PT_ALWAYS_INLINE static inline __attribute__((always_inline))
#else
#define PT_ALWAYS_INLINE static inline
#endif

/* x86-64 with GCC or clang: hot loops are compiled a second time for AVX-512
 * and chosen at run time, so one binary runs on any x86-64. The arithmetic
 * (and with -ffp-contract=off, its rounding) is the same in both builds;
 * -DPT_NO_ISA_DISPATCH keeps only the portable build (tested by make test-c). */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(PT_NO_ISA_DISPATCH)
#define PT_HAVE_AVX512_DISPATCH 1
#if defined(__clang__)
/* clang ignores a whole target attribute that names prefer-vector-width;
 * its 64-byte vector-extension types still compile to zmm registers */
#define PT_TARGET_AVX512 __attribute__((target("avx512f")))
#else
#define PT_TARGET_AVX512 __attribute__((target("avx512f,prefer-vector-width=512")))
#endif
static inline int pt_cpu_has_avx512(void)
{
    static int cached = -1;
    if (cached < 0) {
        __builtin_cpu_init();
        cached = __builtin_cpu_supports("avx512f") ? 1 : 0;
    }
    return cached;
}
#else
#define PT_HAVE_AVX512_DISPATCH 0
#endif

/* Threads for items independent work items totalling work element-ops: one
 * core when the whole job is too small to repay a fork. */
static inline int pt_threads_for_work(const pt_ctx *ctx, size_t items, size_t work)
{
    return work < PT_PARALLEL_MIN_ELEMS ? 1 : pt_threads_for(ctx, items, 1);
}

/* Shape and window checks of a depthwise convolution; on success *oh, *ow
 * hold the output extent. The element count of every tensor must fit size_t. */
static inline pt_status pt_check_depthwise(const pt_conv_params *p, int *oh, int *ow)
{
    if (!p) return PT_ERR_NULL;
    if (!pt_dims_valid(p->in) || p->out_c != p->in.c) return PT_ERR_SHAPE;
    if (p->kh < 1 || p->kw < 1 || p->stride_h < 1 || p->stride_w < 1) return PT_ERR_PARAM;
    if (p->pad_top < 0 || p->pad_bottom < 0 || p->pad_left < 0 || p->pad_right < 0) return PT_ERR_PARAM;
    *oh = pt_out_extent(p->in.h, p->kh, p->stride_h, p->pad_top, p->pad_bottom);
    *ow = pt_out_extent(p->in.w, p->kw, p->stride_w, p->pad_left, p->pad_right);
    if (*oh < 1 || *ow < 1) return PT_ERR_SHAPE;
    size_t a, b;
    if (!pt_mul_size((size_t)p->in.n, (size_t)p->in.h, &a) || !pt_mul_size(a, (size_t)p->in.w, &a) ||
        !pt_mul_size(a, (size_t)p->in.c, &b) ||
        !pt_mul_size((size_t)p->kh, (size_t)p->kw, &a) || !pt_mul_size(a, (size_t)p->in.c, &a))
        return PT_ERR_OVERFLOW;
    return PT_OK;
}

/* Same for an average-pooling window (no padding: the window must fit). */
static inline pt_status pt_check_pool(const pt_pool_params *p, int *oh, int *ow)
{
    if (!p) return PT_ERR_NULL;
    if (!pt_dims_valid(p->in)) return PT_ERR_SHAPE;
    if (p->kh < 1 || p->kw < 1 || p->stride_h < 1 || p->stride_w < 1) return PT_ERR_PARAM;
    *oh = pt_out_extent(p->in.h, p->kh, p->stride_h, 0, 0);
    *ow = pt_out_extent(p->in.w, p->kw, p->stride_w, 0, 0);
    if (*oh < 1 || *ow < 1) return PT_ERR_SHAPE;
    size_t a, b;
    if (!pt_mul_size((size_t)p->in.n, (size_t)p->in.h, &a) || !pt_mul_size(a, (size_t)p->in.w, &a) ||
        !pt_mul_size(a, (size_t)p->in.c, &b))
        return PT_ERR_OVERFLOW;
    return PT_OK;
}

static inline pt_status pt_check_dims(pt_dims d)
{
    if (!pt_dims_valid(d)) return PT_ERR_SHAPE;
    size_t a, b;
    if (!pt_mul_size((size_t)d.n, (size_t)d.h, &a) || !pt_mul_size(a, (size_t)d.w, &a) ||
        !pt_mul_size(a, (size_t)d.c, &b))
        return PT_ERR_OVERFLOW;
    return PT_OK;
}

/* Taps k of a window with output index o = (i + pad - k) / stride in
 * [0, out) for input index i: k runs from *first to *last (inclusive) in steps
 * of stride; *first > *last when no tap reaches i. */
static inline void pt_taps_reaching(int i, int pad, int stride, int k, int out, int *first, int *last)
{
    int t = i + pad;                 /* >= 0 */
    int f = t % stride;
    int lo = t - (out - 1) * stride;  /* smallest k with o <= out - 1 */
    if (lo > f) f += ((lo - f + stride - 1) / stride) * stride;
    *first = f;
    *last = t < k - 1 ? t : k - 1;
}

/* Output indices o in [*lo, *hi) whose tap k lands inside the input:
 * 0 <= o * stride - pad + k < in. */
static inline void pt_tap_out_range(int k, int pad, int stride, int in, int out, int *lo, int *hi)
{
    int first = pad - k;                          /* o * stride >= pad - k */
    int l = first <= 0 ? 0 : (first + stride - 1) / stride;
    int last = in - 1 + pad - k;                  /* o * stride <= in - 1 + pad - k */
    int h = last < 0 ? 0 : last / stride + 1;
    *lo = l;
    *hi = h < out ? h : out;
}

/* Softmax cross-entropy arguments; every label must lie in [0, k). */
static inline pt_status pt_check_xent(int n, int k, const float *logits, const int32_t *labels, const void *out)
{
    if (n < 1 || k < 1) return PT_ERR_SHAPE;
    if (!logits || !labels || !out) return PT_ERR_NULL;
    for (int i = 0; i < n; ++i)
        if (labels[i] < 0 || labels[i] >= k) return PT_ERR_RANGE;
    return PT_OK;
}

#endif
