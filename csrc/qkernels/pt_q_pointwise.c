/* INT8 pointwise conv: a u8 x s8 GEMM over the N*H*W pixels with packed
 * weights, split over pixel blocks. */
#include "q_internal.h"

size_t pt_q_pointwise_packed_bytes(int cin, int cout)
{
    if (cin <= 0 || cout <= 0) return 0;
    size_t nblocks = ((size_t)cout + PT_Q_PW_NB - 1) / PT_Q_PW_NB, bytes;
    if (!pt_mul_size(nblocks * PT_Q_PW_NB * PT_Q_PW_KB, pt_q_pw_kblocks(cin), &bytes)) return 0;
    return bytes;
}

pt_status pt_q_pointwise_pack(int cin, int cout, const int8_t *w, int8_t *w_packed, size_t packed_bytes)
{
    if (!w || !w_packed) return PT_ERR_NULL;
    size_t need = pt_q_pointwise_packed_bytes(cin, cout);
    if (need == 0) return PT_ERR_SHAPE;
    if (packed_bytes < need) return PT_ERR_SCRATCH;
    const size_t kblocks = pt_q_pw_kblocks(cin);
    for (size_t i = 0; i < need; ++i) w_packed[i] = 0;
    for (int co = 0; co < cout; ++co) {
        int8_t *block = w_packed + (size_t)(co / PT_Q_PW_NB) * kblocks * PT_Q_PW_NB * PT_Q_PW_KB;
        for (int ci = 0; ci < cin; ++ci)
            block[((size_t)(ci / PT_Q_PW_KB) * PT_Q_PW_NB + (size_t)(co % PT_Q_PW_NB)) * PT_Q_PW_KB +
                  (size_t)(ci % PT_Q_PW_KB)] = w[(size_t)co * (size_t)cin + (size_t)ci];
    }
    return PT_OK;
}

/* Portable path: one pixel at a time, 16 channels (one packed block) at a
 * time, with the packed layout's zero padding making the k loop uniform. */
static void pointwise_rows_c(const uint8_t *x, size_t rows, int cin, int cout,
                             const int8_t *w_packed, const pt_requant *rq, uint8_t *y)
{
    const size_t kblocks = pt_q_pw_kblocks(cin);
    const size_t block_bytes = kblocks * PT_Q_PW_NB * PT_Q_PW_KB;
    for (size_t r = 0; r < rows; ++r) {
        const uint8_t *xr = x + r * (size_t)cin;
        for (int c0 = 0; c0 < cout; c0 += PT_Q_PW_NB) {
            const int8_t *wb = w_packed + (size_t)(c0 / PT_Q_PW_NB) * block_bytes;
            int32_t acc[PT_Q_PW_NB];
            int n = cout - c0 < PT_Q_PW_NB ? cout - c0 : PT_Q_PW_NB;
            for (int j = 0; j < PT_Q_PW_NB; ++j) acc[j] = j < n ? rq->bias[c0 + j] : 0;
            for (int ci = 0; ci < cin; ++ci) {
                const int32_t v = xr[ci];
                const int8_t *wk = wb + (size_t)(ci / PT_Q_PW_KB) * PT_Q_PW_NB * PT_Q_PW_KB + ci % PT_Q_PW_KB;
                for (int j = 0; j < PT_Q_PW_NB; ++j) acc[j] += v * (int32_t)wk[j * PT_Q_PW_KB];
            }
            pt_q_requant_row_c(acc, n, rq, c0, y + r * (size_t)cout + c0);
        }
    }
}

typedef struct pw_job {
    const uint8_t *x;
    size_t pixels;
    int cin, cout;
    const int8_t *w_packed;
    const pt_requant *rq;
    uint8_t *y;
    int path;
} pw_job;

/* Pixels per unit of parallel work (a multiple of the register block). */
#define PW_CHUNK 48

static void pw_task(void *arg, int core, int ncores)
{
    const pw_job *job = (const pw_job *)arg;
    size_t b, e;
    pt_split((job->pixels + PW_CHUNK - 1) / PW_CHUNK, core, ncores, &b, &e);
    b *= PW_CHUNK;
    e = e * PW_CHUNK < job->pixels ? e * PW_CHUNK : job->pixels;
    if (b >= e) return;
    const uint8_t *x = job->x + b * (size_t)job->cin;
    uint8_t *y = job->y + b * (size_t)job->cout;
#ifdef PT_Q_HAVE_X86
    if (job->path == PT_Q_PATH_AVX512VNNI) {
        pt_q_pointwise_rows_avx512vnni(x, e - b, job->cin, job->cout, job->w_packed, job->rq, y);
        return;
    }
    if (job->path == PT_Q_PATH_AVXVNNI) {
        pt_q_pointwise_rows_avxvnni(x, e - b, job->cin, job->cout, job->w_packed, job->rq, y);
        return;
    }
#endif
    pointwise_rows_c(x, e - b, job->cin, job->cout, job->w_packed, job->rq, y);
}

pt_status pt_q_pointwise_fwd(const pt_ctx *ctx, const pt_conv_params *p, const uint8_t *x,
                             const int8_t *w_packed, const pt_requant *rq, uint8_t *y)
{
    pt_status st = pt_check_ctx(ctx, 0);
    if (st != PT_OK) return st;
    int oh, ow;
    st = pt_q_check(p, 0, x, w_packed, rq, y, &oh, &ow);
    if (st != PT_OK) return st;
    if (p->kh != 1 || p->kw != 1 || p->stride_h != 1 || p->stride_w != 1) return PT_ERR_PARAM;
    pw_job job = {x, (size_t)p->in.n * (size_t)p->in.h * (size_t)p->in.w, p->in.c, p->out_c,
                  w_packed, rq, y, pt_q_path()};
    size_t chunks = (job.pixels + PW_CHUNK - 1) / PW_CHUNK;
    return pt_fork(pt_threads_for(ctx, chunks, 2), pw_task, &job);
}
