/* Depthwise convolution, FP32 NHWC: forward, grad-input, grad-weight/bias.
 *
 * Work split: forward over output rows (n, oh), grad-input over input rows
 * (n, ih), grad-weight over channel groups; no core ever reduces another
 * core's values, so the thread count never changes a result. The channel loop
 * is innermost and contiguous, blocked in DW_BLOCK channels so a pixel's
 * accumulators stay in vector registers while its taps are summed. */
#include "pulptrain/pt_depthwise.h"
#include "elem_common.h"

#define DW_BLOCK 32          /* channels accumulated together per pixel */
#define DW_SPLIT_UNIT 16     /* grad-weight channel groups are multiples of this */
#define DW_WEIGHT_BLOCK 128  /* channels per pass of grad-weight over the batch */

typedef struct dw_job {
    const pt_conv_params *p;
    int out_h, out_w;
    const float *x, *w, *b, *grad_y;
    float *out;              /* y, grad_x or grad_w */
    float *grad_b;
    float *partial;          /* grad-weight: per-image partial sums, (KH*KW + 1) * C */
} dw_job;

static inline int clamp_lo(int v) { return v > 0 ? v : 0; }
static inline int min_int(int a, int b) { return a < b ? a : b; }

/* ---------------------------------------------------------------- forward */
PT_ALWAYS_INLINE void dw_fwd_rows(const dw_job *j, size_t row_begin, size_t row_end)
{
    const pt_conv_params *p = j->p;
    const int C = p->in.c, H = p->in.h, W = p->in.w, KW = p->kw;
    for (size_t row = row_begin; row < row_end; ++row) {
        const int n = (int)(row / (size_t)j->out_h), oh = (int)(row % (size_t)j->out_h);
        const int ih0 = oh * p->stride_h - p->pad_top;
        const int kh_lo = clamp_lo(-ih0), kh_hi = min_int(p->kh, H - ih0);
        const float *x_img = j->x + (size_t)n * H * W * C;
        float *y_row = j->out + row * (size_t)j->out_w * C;
        for (int ow = 0; ow < j->out_w; ++ow) {
            const int iw0 = ow * p->stride_w - p->pad_left;
            const int kw_lo = clamp_lo(-iw0), kw_hi = min_int(KW, W - iw0);
            float *restrict y_px = y_row + (size_t)ow * C;
            int c = 0;
            for (; c + DW_BLOCK <= C; c += DW_BLOCK) {
                float acc[DW_BLOCK];
                if (j->b) for (int i = 0; i < DW_BLOCK; ++i) acc[i] = j->b[c + i];
                else for (int i = 0; i < DW_BLOCK; ++i) acc[i] = 0.0f;
                for (int kh = kh_lo; kh < kh_hi; ++kh)
                    for (int kw = kw_lo; kw < kw_hi; ++kw) {
                        const float *restrict xp = x_img + ((size_t)(ih0 + kh) * W + (size_t)(iw0 + kw)) * C + c;
                        const float *restrict wp = j->w + (size_t)(kh * KW + kw) * C + c;
                        for (int i = 0; i < DW_BLOCK; ++i) acc[i] += xp[i] * wp[i];
                    }
                for (int i = 0; i < DW_BLOCK; ++i) y_px[c + i] = acc[i];
            }
            for (; c < C; ++c) {
                float acc = j->b ? j->b[c] : 0.0f;
                for (int kh = kh_lo; kh < kh_hi; ++kh)
                    for (int kw = kw_lo; kw < kw_hi; ++kw)
                        acc += x_img[((size_t)(ih0 + kh) * W + (size_t)(iw0 + kw)) * C + c] *
                               j->w[(size_t)(kh * KW + kw) * C + c];
                y_px[c] = acc;
            }
        }
    }
}

/* ------------------------------------------------------------- grad-input */
PT_ALWAYS_INLINE void dw_bwd_input_rows(const dw_job *j, size_t row_begin, size_t row_end)
{
    const pt_conv_params *p = j->p;
    const int C = p->in.c, H = p->in.h, W = p->in.w, KW = p->kw;
    const int OH = j->out_h, OW = j->out_w, sh = p->stride_h, sw = p->stride_w;
    for (size_t row = row_begin; row < row_end; ++row) {
        const int n = (int)(row / (size_t)H), ih = (int)(row % (size_t)H);
        int kh_first, kh_last;
        pt_taps_reaching(ih, p->pad_top, sh, p->kh, OH, &kh_first, &kh_last);
        const float *gy_img = j->grad_y + (size_t)n * OH * OW * C;
        float *gx_row = j->out + row * (size_t)W * C;
        for (int iw = 0; iw < W; ++iw) {
            int kw_first, kw_last;
            pt_taps_reaching(iw, p->pad_left, sw, KW, OW, &kw_first, &kw_last);
            float *restrict gx_px = gx_row + (size_t)iw * C;
            int c = 0;
            for (; c + DW_BLOCK <= C; c += DW_BLOCK) {
                float acc[DW_BLOCK];
                for (int i = 0; i < DW_BLOCK; ++i) acc[i] = 0.0f;
                for (int kh = kh_first; kh <= kh_last; kh += sh) {
                    const int oh = (ih + p->pad_top - kh) / sh;
                    for (int kw = kw_first; kw <= kw_last; kw += sw) {
                        const int ow = (iw + p->pad_left - kw) / sw;
                        const float *restrict gp = gy_img + ((size_t)oh * OW + (size_t)ow) * C + c;
                        const float *restrict wp = j->w + (size_t)(kh * KW + kw) * C + c;
                        for (int i = 0; i < DW_BLOCK; ++i) acc[i] += gp[i] * wp[i];
                    }
                }
                for (int i = 0; i < DW_BLOCK; ++i) gx_px[c + i] = acc[i];
            }
            for (; c < C; ++c) {
                float acc = 0.0f;
                for (int kh = kh_first; kh <= kh_last; kh += sh) {
                    const int oh = (ih + p->pad_top - kh) / sh;
                    for (int kw = kw_first; kw <= kw_last; kw += sw) {
                        const int ow = (iw + p->pad_left - kw) / sw;
                        acc += gy_img[((size_t)oh * OW + (size_t)ow) * C + c] * j->w[(size_t)(kh * KW + kw) * C + c];
                    }
                }
                gx_px[c] = acc;
            }
        }
    }
}

/* ------------------------------------------------------------ grad-weight */
/* Channels [c_begin, c_end), every image, in DW_WEIGHT_BLOCK slices so the
 * slice's partial sums stay in L1. */
PT_ALWAYS_INLINE void dw_bwd_weight_channels(const dw_job *j, int c_begin, int c_end)
{
    const pt_conv_params *p = j->p;
    const int C = p->in.c, H = p->in.h, W = p->in.w, N = p->in.n, KH = p->kh, KW = p->kw;
    const int OH = j->out_h, OW = j->out_w;
    const int taps = KH * KW;
    float *grad_w = j->out;
    float *part_b = j->partial + (size_t)taps * C;
    for (int c0 = c_begin; c0 < c_end; c0 += DW_WEIGHT_BLOCK) {
        const int c1 = min_int(c0 + DW_WEIGHT_BLOCK, c_end);
        for (int n = 0; n < N; ++n) {
            for (int t = 0; t <= taps; ++t)
                for (int c = c0; c < c1; ++c) j->partial[(size_t)t * C + c] = 0.0f;
            const float *x_img = j->x + (size_t)n * H * W * C;
            const float *gy_img = j->grad_y + (size_t)n * OH * OW * C;
            for (int oh = 0; oh < OH; ++oh) {
                const int ih0 = oh * p->stride_h - p->pad_top;
                const int kh_lo = clamp_lo(-ih0), kh_hi = min_int(KH, H - ih0);
                for (int ow = 0; ow < OW; ++ow) {
                    const int iw0 = ow * p->stride_w - p->pad_left;
                    const int kw_lo = clamp_lo(-iw0), kw_hi = min_int(KW, W - iw0);
                    const float *restrict gp = gy_img + ((size_t)oh * OW + (size_t)ow) * C;
                    if (j->grad_b)
                        for (int c = c0; c < c1; ++c) part_b[c] += gp[c];
                    for (int kh = kh_lo; kh < kh_hi; ++kh)
                        for (int kw = kw_lo; kw < kw_hi; ++kw) {
                            const float *restrict xp = x_img + ((size_t)(ih0 + kh) * W + (size_t)(iw0 + kw)) * C;
                            float *restrict pp = j->partial + (size_t)(kh * KW + kw) * C;
                            for (int c = c0; c < c1; ++c) pp[c] += xp[c] * gp[c];
                        }
                }
            }
            for (int t = 0; t < taps; ++t) {
                float *restrict gw = grad_w + (size_t)t * C;
                const float *restrict pp = j->partial + (size_t)t * C;
                if (n == 0) for (int c = c0; c < c1; ++c) gw[c] = pp[c];
                else for (int c = c0; c < c1; ++c) gw[c] += pp[c];
            }
            if (j->grad_b) {
                if (n == 0) for (int c = c0; c < c1; ++c) j->grad_b[c] = part_b[c];
                else for (int c = c0; c < c1; ++c) j->grad_b[c] += part_b[c];
            }
        }
    }
}

/* ------------------------------------------------ ISA builds and dispatch */
static void fwd_rows_generic(const dw_job *j, size_t b, size_t e) { dw_fwd_rows(j, b, e); }
static void bwd_input_rows_generic(const dw_job *j, size_t b, size_t e) { dw_bwd_input_rows(j, b, e); }
static void bwd_weight_generic(const dw_job *j, int b, int e) { dw_bwd_weight_channels(j, b, e); }
#if PT_HAVE_AVX512_DISPATCH
PT_TARGET_AVX512 static void fwd_rows_avx512(const dw_job *j, size_t b, size_t e) { dw_fwd_rows(j, b, e); }
PT_TARGET_AVX512 static void bwd_input_rows_avx512(const dw_job *j, size_t b, size_t e) { dw_bwd_input_rows(j, b, e); }
PT_TARGET_AVX512 static void bwd_weight_avx512(const dw_job *j, int b, int e) { dw_bwd_weight_channels(j, b, e); }
#define DW_PICK(name) (pt_cpu_has_avx512() ? name##_avx512 : name##_generic)
#else
#define DW_PICK(name) (name##_generic)
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

static void bwd_weight_task(void *arg, int core, int ncores)
{
    const dw_job *j = (const dw_job *)arg;
    const size_t C = (size_t)j->p->in.c;
    size_t b, e;
    pt_split((C + DW_SPLIT_UNIT - 1) / DW_SPLIT_UNIT, core, ncores, &b, &e);
    b *= DW_SPLIT_UNIT;
    e *= DW_SPLIT_UNIT;
    if (e > C) e = C;
    if (b < e) DW_PICK(bwd_weight)(j, (int)b, (int)e);
}

/* ------------------------------------------------------------- public API */
pt_status pt_depthwise_f32_fwd(const pt_ctx *ctx, const pt_conv_params *p, const float *x,
                               const float *w, const float *b, float *y)
{
    pt_status st = pt_check_ctx(ctx, 0);
    int oh, ow;
    if (st == PT_OK) st = pt_check_depthwise(p, &oh, &ow);
    if (st != PT_OK) return st;
    if (!x || !w || !y) return PT_ERR_NULL;
    dw_job job = {p, oh, ow, x, w, b, NULL, y, NULL, NULL};
    size_t rows = (size_t)p->in.n * (size_t)oh;
    size_t work = rows * (size_t)ow * (size_t)p->in.c;
    return pt_fork(pt_threads_for_work(ctx, rows, work), fwd_task, &job);
}

pt_status pt_depthwise_f32_bwd_input(const pt_ctx *ctx, const pt_conv_params *p, const float *w,
                                     const float *grad_y, float *grad_x)
{
    pt_status st = pt_check_ctx(ctx, 0);
    int oh, ow;
    if (st == PT_OK) st = pt_check_depthwise(p, &oh, &ow);
    if (st != PT_OK) return st;
    if (!w || !grad_y || !grad_x) return PT_ERR_NULL;
    dw_job job = {p, oh, ow, NULL, w, NULL, grad_y, grad_x, NULL, NULL};
    size_t rows = (size_t)p->in.n * (size_t)p->in.h;
    size_t work = rows * (size_t)p->in.w * (size_t)p->in.c;
    return pt_fork(pt_threads_for_work(ctx, rows, work), bwd_input_task, &job);
}

size_t pt_depthwise_f32_bwd_weight_scratch_bytes(const pt_conv_params *p)
{
    int oh, ow;
    if (pt_check_depthwise(p, &oh, &ow) != PT_OK) return 0;
    return ((size_t)p->kh * (size_t)p->kw + 1) * (size_t)p->in.c * sizeof(float);
}

pt_status pt_depthwise_f32_bwd_weight(const pt_ctx *ctx, const pt_conv_params *p, const float *x,
                                      const float *grad_y, float *grad_w, float *grad_b)
{
    int oh, ow;
    if (!ctx) return PT_ERR_NULL;
    pt_status st = pt_check_depthwise(p, &oh, &ow);
    if (st == PT_OK) st = pt_check_ctx(ctx, pt_depthwise_f32_bwd_weight_scratch_bytes(p));
    if (st != PT_OK) return st;
    if (!x || !grad_y || !grad_w) return PT_ERR_NULL;
    dw_job job = {p, oh, ow, x, NULL, NULL, grad_y, grad_w, grad_b, (float *)ctx->scratch};
    size_t units = ((size_t)p->in.c + DW_SPLIT_UNIT - 1) / DW_SPLIT_UNIT;
    size_t work = pt_dims_count(p->in) * (size_t)p->kh * (size_t)p->kw;
    return pt_fork(pt_threads_for_work(ctx, units, work), bwd_weight_task, &job);
}
