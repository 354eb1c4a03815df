/* INT8 dense and depthwise convolutions, split over output rows (integer
 * sums: any split gives the same bits). AVX-512 VNNI rows on x86-64 CPUs that
 * have it (pt_q_x86.c), plain C otherwise. */
#include "q_internal.h"

#define ALIGN64(n) (((n) + (size_t)63) & ~(size_t)63)
#define PT_Q_GATHER_MAX_ROWS 7   /* kernel heights the vector gather takes */

/* ------------------------------------------------------------ dense conv */
/* Weights are re-laid in scratch as int16 pairs of taps, [KP][Cout][2] with
 * KP = ceil(K / 2), K = KH*KW*Cin (the odd last tap paired with a zero); each
 * core gathers the patches of a few pixels (2*KP int16 each, zero for
 * padding) and scatters them over the output channels. */
typedef struct conv_job {
    const pt_conv_params *p;
    int oh, ow, pixel_input;
    const uint8_t *x;
    const int16_t *wt_pairs;
    const pt_requant *rq;
    uint8_t *y;
    unsigned char *thread_scratch;
    size_t thread_bytes;
    int avx512;
} conv_job;

static size_t conv_kpairs(const pt_conv_params *p)
{
    return ((size_t)p->kh * (size_t)p->kw * (size_t)p->in.c + 1) / 2;
}

static size_t conv_thread_bytes(const pt_conv_params *p)
{
    return ALIGN64(PT_Q_CONV_PIXELS * conv_kpairs(p) * 2 * sizeof(int16_t)) +
           ALIGN64((size_t)p->out_c * sizeof(int32_t));
}

size_t pt_q_conv2d_scratch_bytes(const pt_conv_params *p, int num_threads)
{
    if (!p || num_threads < 1 || p->kh <= 0 || p->kw <= 0 || p->in.c <= 0 || p->out_c <= 0) return 0;
    return ALIGN64(conv_kpairs(p) * (size_t)p->out_c * 2 * sizeof(int16_t)) +
           (size_t)num_threads * conv_thread_bytes(p);
}

/* v of one input byte: pixels map to 2p - 255, activation codes stay. */
static inline int16_t input_value(uint8_t byte, int pixel_input)
{
    return (int16_t)(pixel_input ? 2 * (int)byte - 255 : (int)byte);
}

static void gather_patch(const conv_job *job, int n, int oy, int ox, int16_t *patch)
{
    const pt_conv_params *p = job->p;
    const int cin = p->in.c, pixel_input = job->pixel_input;
    const int iy0 = oy * p->stride_h - p->pad_top, ix0 = ox * p->stride_w - p->pad_left;
    const size_t span = (size_t)p->kw * (size_t)cin;   /* one kernel row of the patch */
    size_t k = 0;
    if (iy0 >= 0 && iy0 + p->kh <= p->in.h && ix0 >= 0 && ix0 + p->kw <= p->in.w) {
        /* inside the input: each kernel row is one contiguous run of bytes */
#ifdef PT_Q_HAVE_X86
        if (job->avx512 && span <= 32 && p->kh <= PT_Q_GATHER_MAX_ROWS) {
            const uint8_t *rows[PT_Q_GATHER_MAX_ROWS];
            for (int ky = 0; ky < p->kh; ++ky)
                rows[ky] = job->x + (((size_t)n * p->in.h + iy0 + ky) * p->in.w + ix0) * cin;
            pt_q_gather_inside_avx512(rows, p->kh, (int)span, pixel_input, patch);
            k = (size_t)p->kh * span;
            if (k % 2) patch[k] = 0;
            return;
        }
#endif
        for (int ky = 0; ky < p->kh; ++ky) {
            const uint8_t *src = job->x + (((size_t)n * p->in.h + iy0 + ky) * p->in.w + ix0) * cin;
            for (size_t j = 0; j < span; ++j) patch[k++] = input_value(src[j], pixel_input);
        }
    } else {
        for (int ky = 0; ky < p->kh; ++ky) {
            const int iy = iy0 + ky;
            for (int kx = 0; kx < p->kw; ++kx) {
                const int ix = ix0 + kx;
                if (iy < 0 || iy >= p->in.h || ix < 0 || ix >= p->in.w) {
                    for (int ci = 0; ci < cin; ++ci) patch[k++] = 0;
                    continue;
                }
                const uint8_t *xp = job->x + (((size_t)n * p->in.h + iy) * p->in.w + ix) * cin;
                for (int ci = 0; ci < cin; ++ci) patch[k++] = input_value(xp[ci], pixel_input);
            }
        }
    }
    if (k % 2) patch[k] = 0;
}

static void conv_pixel_c(const int16_t *patch, size_t kpairs, const int16_t *wt_pairs, int cout,
                         const pt_requant *rq, int32_t *acc, uint8_t *out)
{
    for (int co = 0; co < cout; ++co) acc[co] = rq->bias[co];
    for (size_t kp = 0; kp < kpairs; ++kp) {
        const int32_t v0 = patch[2 * kp], v1 = patch[2 * kp + 1];
        if ((v0 | v1) == 0) continue;   /* padding and zero activations */
        const int16_t *wk = wt_pairs + kp * (size_t)cout * 2;
        for (int co = 0; co < cout; ++co) acc[co] += v0 * wk[2 * co] + v1 * wk[2 * co + 1];
    }
    pt_q_requant_row_c(acc, cout, rq, 0, out);
}

static void conv_task(void *arg, int core, int ncores)
{
    const conv_job *job = (const conv_job *)arg;
    const pt_conv_params *p = job->p;
    const size_t kpairs = conv_kpairs(p), patch_len = 2 * kpairs;
    int16_t *patches = (int16_t *)(job->thread_scratch + (size_t)core * job->thread_bytes);
    int32_t *acc = (int32_t *)((unsigned char *)patches +
                               ALIGN64(PT_Q_CONV_PIXELS * patch_len * sizeof(int16_t)));
    size_t b, e;
    pt_split((size_t)p->in.n * (size_t)job->oh, core, ncores, &b, &e);
    for (size_t row = b; row < e; ++row) {
        const int n = (int)(row / (size_t)job->oh), oy = (int)(row % (size_t)job->oh);
        for (int ox0 = 0; ox0 < job->ow; ox0 += PT_Q_CONV_PIXELS) {
            const int npix = job->ow - ox0 < PT_Q_CONV_PIXELS ? job->ow - ox0 : PT_Q_CONV_PIXELS;
            uint8_t *out = job->y + (row * (size_t)job->ow + (size_t)ox0) * (size_t)p->out_c;
            for (int i = 0; i < npix; ++i) gather_patch(job, n, oy, ox0 + i, patches + (size_t)i * patch_len);
#ifdef PT_Q_HAVE_X86
            if (job->avx512) {
                pt_q_conv_pixels_avx512(patches, npix, kpairs, job->wt_pairs, p->out_c, job->rq, out);
                continue;
            }
#endif
            for (int i = 0; i < npix; ++i)
                conv_pixel_c(patches + (size_t)i * patch_len, kpairs, job->wt_pairs, p->out_c, job->rq, acc,
                             out + (size_t)i * p->out_c);
        }
    }
}

pt_status pt_q_conv2d_fwd(const pt_ctx *ctx, const pt_conv_params *p, int pixel_input,
                          const uint8_t *x, const int8_t *w, const pt_requant *rq, uint8_t *y)
{
    pt_status st = pt_check_ctx(ctx, 0);
    if (st != PT_OK) return st;
    int oh, ow;
    st = pt_q_check(p, 0, x, w, rq, y, &oh, &ow);
    if (st != PT_OK) return st;
    st = pt_check_ctx(ctx, pt_q_conv2d_scratch_bytes(p, ctx->num_threads));
    if (st != PT_OK) return st;
    const size_t taps = (size_t)p->kh * (size_t)p->kw * (size_t)p->in.c, cout = (size_t)p->out_c;
    const size_t kpairs = conv_kpairs(p);
    int16_t *wt_pairs = (int16_t *)ctx->scratch;
    for (size_t kp = 0; kp < kpairs; ++kp)
        for (size_t co = 0; co < cout; ++co)
            for (size_t j = 0; j < 2; ++j) {
                size_t k = 2 * kp + j;
                wt_pairs[(kp * cout + co) * 2 + j] = k < taps ? w[co * taps + k] : 0;
            }
    conv_job job = {p, oh, ow, pixel_input != 0, x, wt_pairs, rq, y,
                    (unsigned char *)ctx->scratch + ALIGN64(kpairs * cout * 2 * sizeof(int16_t)),
                    conv_thread_bytes(p), pt_q_use_avx512vnni()};
    return pt_fork(pt_threads_for(ctx, (size_t)p->in.n * (size_t)oh, 2), conv_task, &job);
}

/* ------------------------------------------------------------ depthwise */
/* Channels per accumulator block of the portable path (kept on the stack). */
#define DW_BLOCK 64

typedef struct dw_job {
    const pt_conv_params *p;
    int oh, ow;
    const uint8_t *x;
    const int8_t *w;
    const pt_requant *rq;
    uint8_t *y;
    int avx512;
} dw_job;

static void dw_row_c(const dw_job *job, int n, int oy, uint8_t *out_row)
{
    const pt_conv_params *p = job->p;
    const int c = p->in.c;
    int32_t acc[DW_BLOCK];
    for (int ox = 0; ox < job->ow; ++ox) {
        for (int c0 = 0; c0 < c; c0 += DW_BLOCK) {
            const int nc = c - c0 < DW_BLOCK ? c - c0 : DW_BLOCK;
            for (int j = 0; j < nc; ++j) acc[j] = job->rq->bias[c0 + j];
            for (int ky = 0; ky < p->kh; ++ky) {
                const int iy = oy * p->stride_h - p->pad_top + ky;
                if (iy < 0 || iy >= p->in.h) continue;
                for (int kx = 0; kx < p->kw; ++kx) {
                    const int ix = ox * p->stride_w - p->pad_left + kx;
                    if (ix < 0 || ix >= p->in.w) continue;
                    const uint8_t *xp = job->x + (((size_t)n * p->in.h + iy) * p->in.w + ix) * c + c0;
                    const int8_t *wp = job->w + ((size_t)ky * p->kw + kx) * c + c0;
                    for (int j = 0; j < nc; ++j) acc[j] += (int32_t)xp[j] * (int32_t)wp[j];
                }
            }
            pt_q_requant_row_c(acc, nc, job->rq, c0, out_row + (size_t)ox * c + c0);
        }
    }
}

static void dw_task(void *arg, int core, int ncores)
{
    const dw_job *job = (const dw_job *)arg;
    size_t b, e;
    pt_split((size_t)job->p->in.n * (size_t)job->oh, core, ncores, &b, &e);
    for (size_t row = b; row < e; ++row) {
        const int n = (int)(row / (size_t)job->oh), oy = (int)(row % (size_t)job->oh);
        uint8_t *out_row = job->y + row * (size_t)job->ow * (size_t)job->p->in.c;
#ifdef PT_Q_HAVE_X86
        if (job->avx512) {
            pt_q_depthwise_row_avx512(job->p, n, oy, job->ow, job->x, job->w, job->rq, out_row);
            continue;
        }
#endif
        dw_row_c(job, n, oy, out_row);
    }
}

pt_status pt_q_depthwise_fwd(const pt_ctx *ctx, const pt_conv_params *p, const uint8_t *x,
                             const int8_t *w, const pt_requant *rq, uint8_t *y)
{
    pt_status st = pt_check_ctx(ctx, 0);
    if (st != PT_OK) return st;
    int oh, ow;
    st = pt_q_check(p, 1, x, w, rq, y, &oh, &ow);
    if (st != PT_OK) return st;
    dw_job job = {p, oh, ow, x, w, rq, y,
                  pt_q_use_avx512vnni() && p->kh * p->kw <= PT_Q_DW_MAX_TAPS};
    return pt_fork(pt_threads_for(ctx, (size_t)p->in.n * (size_t)oh, 2), dw_task, &job);
}
