/* q_internal.h - argument checks and shared pieces of the INT8 kernels. */
#ifndef PULPTRAIN_Q_INTERNAL_H
#define PULPTRAIN_Q_INTERNAL_H

#include "pulptrain/pt_qkernels.h"
#include "pulptrain/internal.h"

/* Largest |input value|: 255 for codes, 255 for pixels mapped to 2p - 255. */
#define PT_Q_MAX_INPUT 255
#define PT_Q_MAX_WEIGHT 128

/* Validate a conv / depthwise / pointwise call; on success *oh, *ow hold the
 * output extent. depthwise: out_c must equal in.c; taps = KH*KW*(Cin or 1). */
static inline pt_status pt_q_check(const pt_conv_params *p, int depthwise, const void *x,
                                   const void *w, const pt_requant *rq, const void *y,
                                   int *oh, int *ow)
{
    if (!p || !x || !w || !rq || !y || !rq->bias || !rq->multiplier || !rq->shift) return PT_ERR_NULL;
    if (!pt_dims_valid(p->in) || p->out_c <= 0 || p->kh <= 0 || p->kw <= 0) return PT_ERR_SHAPE;
    if (depthwise && p->out_c != p->in.c) return PT_ERR_SHAPE;
    if (p->stride_h <= 0 || p->stride_w <= 0 || p->pad_top < 0 || p->pad_bottom < 0 ||
        p->pad_left < 0 || p->pad_right < 0 || p->pad_top >= p->kh || p->pad_bottom >= p->kh ||
        p->pad_left >= p->kw || p->pad_right >= p->kw)
        return PT_ERR_PARAM;
    if (rq->act_max < 1 || rq->act_max > 255) return PT_ERR_PARAM;
    *oh = pt_out_extent(p->in.h, p->kh, p->stride_h, p->pad_top, p->pad_bottom);
    *ow = pt_out_extent(p->in.w, p->kw, p->stride_w, p->pad_left, p->pad_right);
    if (*oh <= 0 || *ow <= 0) return PT_ERR_SHAPE;
    size_t count, taps;
    if (!pt_mul_size((size_t)p->in.n * (size_t)p->in.h, (size_t)p->in.w, &count) ||
        !pt_mul_size(count, (size_t)p->in.c, &count))
        return PT_ERR_OVERFLOW;
    if (!pt_mul_size((size_t)p->kh * (size_t)p->kw, depthwise ? 1 : (size_t)p->in.c, &taps))
        return PT_ERR_OVERFLOW;
    if ((size_t)p->in.n * (size_t)*oh * (size_t)*ow > (size_t)-1 / (size_t)p->out_c) return PT_ERR_OVERFLOW;
    /* every accumulator must fit in int32 */
    int64_t max_bias = 0;
    for (int c = 0; c < p->out_c; ++c) {
        int32_t m = rq->multiplier[c], s = rq->shift[c];
        if (m < (1 << 30) || s < 1 || s > 62) return PT_ERR_PARAM;
        int64_t b = rq->bias[c] < 0 ? -(int64_t)rq->bias[c] : (int64_t)rq->bias[c];
        if (b > max_bias) max_bias = b;
    }
    if (taps > (size_t)(INT32_MAX - max_bias) / (PT_Q_MAX_INPUT * PT_Q_MAX_WEIGHT)) return PT_ERR_OVERFLOW;
    return PT_OK;
}

/* Requantize count accumulators of channels c0..c0+count-1 (generic C). */
static inline void pt_q_requant_row_c(const int32_t *acc, int count, const pt_requant *rq, int c0,
                                      uint8_t *out)
{
    for (int i = 0; i < count; ++i)
        out[i] = pt_requantize(acc[i], rq->multiplier[c0 + i], rq->shift[c0 + i], rq->act_max);
}

/* The path the kernels run (pt_q_isa.c). */
enum { PT_Q_PATH_GENERIC = 0, PT_Q_PATH_AVXVNNI = 1, PT_Q_PATH_AVX512VNNI = 2 };
int pt_q_path(void);
static inline int pt_q_use_avx512vnni(void) { return pt_q_path() == PT_Q_PATH_AVX512VNNI; }

#if defined(__x86_64__) && defined(__GNUC__)
#define PT_Q_HAVE_X86 1
/* pt_q_x86.c: compiled with target attributes, called only after the CPU check. */
void pt_q_gather_inside_avx512(const uint8_t *const *rows, int kh, int span, int pixel_input, int16_t *patch);
void pt_q_conv_pixels_avx512(const int16_t *patches, int npix, size_t kpairs,
                             const int16_t *wt_pairs, int cout, const pt_requant *rq, uint8_t *out);
void pt_q_depthwise_row_avx512(const pt_conv_params *p, int n, int oy, int ow, const uint8_t *x,
                               const int8_t *w, const pt_requant *rq, uint8_t *out_row);
void pt_q_pointwise_rows_avxvnni(const uint8_t *x, size_t rows, int cin, int cout,
                                 const int8_t *w_packed, const pt_requant *rq, uint8_t *y);
void pt_q_pointwise_rows_avx512vnni(const uint8_t *x, size_t rows, int cin, int cout,
                                    const int8_t *w_packed, const pt_requant *rq, uint8_t *y);
#endif

/* Output pixels per pass of the dense conv (patches gathered per core). */
#define PT_Q_CONV_PIXELS 4

/* Depthwise kernels up to this many taps (3x3) keep their weights in registers. */
#define PT_Q_DW_MAX_TAPS 9

/* Pointwise packed-block geometry. */
#define PT_Q_PW_NB 16   /* output channels per block */
#define PT_Q_PW_KB 4    /* inputs per block */

static inline size_t pt_q_pw_kblocks(int cin) { return ((size_t)cin + PT_Q_PW_KB - 1) / PT_Q_PW_KB; }

#endif
