/* The latent-replay store kernels: insert (quantize + pack), insert of 8-bit
 * codes (integer requantize + pack) and gather (unpack + dequantize), split
 * over rows with one core per row. Format and rules: pt_replay.h. */
#include "pt_replay_codec.h"

/* Values per call below which one core does everything (the fork costs more). */
#define RP_PARALLEL_MIN_VALUES 16384

typedef struct rp_job {
    const pt_replay_layout *layout;
    const pt_replay_quant *quant;
    const pt_replay_requant *requant;
    size_t count;
    const int64_t *slots;
    const float *latents;        /* insert_f32 */
    const uint8_t *codes;        /* insert_codes_u8 */
    const uint8_t *payload_in;   /* gather */
    uint8_t *payload;            /* inserts */
    float *out;                  /* gather */
    int nonfinite[PT_MAX_THREADS];
} rp_job;

/* Codes per chunk: a row is quantized into a small stack buffer, which is
 * then packed (and unpacked before dequantization); both loops are simple
 * enough for the compiler to vectorise. */
#define RP_CHUNK 512

/* Length of the chunk at value e of a row whose first code is `first`: it
 * ends on a group boundary of the stream unless it ends the row. */
static inline size_t rp_chunk_len(size_t first, size_t e, size_t n)
{
    size_t len = RP_CHUNK - (first + e) % PT_REPLAY_GROUP_CODES;
    return len < n - e ? len : n - e;
}

/* Channel of value e (0 per tensor) and how many values follow before the
 * channel index wraps. */
static inline size_t rp_run(const pt_replay_layout *layout, size_t e, size_t *c)
{
    if (!layout->per_channel) {
        *c = 0;
        return (size_t)-1;
    }
    *c = e % layout->channels;
    return layout->channels - *c;
}

/* codes[k] = quantized x[k] for values [e, e + len) of a row. */
static void quantize_span(const pt_replay_layout *layout, const pt_replay_quant *quant, float qmax,
                          size_t e, size_t len, const float *x, uint8_t *codes)
{
    size_t k = 0, c;
    while (k < len) {
        size_t run = rp_run(layout, e + k, &c);
        size_t end = run < len - k ? k + run : len;
        const float *scale = quant->scale + c;
        const int32_t *zero_point = quant->zero_point + c;
        if (layout->per_channel) {
            for (size_t j = k; j < end; ++j)
                codes[j] = (uint8_t)rp_quantize(x[j], scale[j - k], (float)zero_point[j - k], qmax);
        } else {
            const float s = scale[0], z = (float)zero_point[0];
            for (size_t j = k; j < end; ++j) codes[j] = (uint8_t)rp_quantize(x[j], s, z, qmax);
        }
        k = end;
    }
}

static void dequantize_span(const pt_replay_layout *layout, const pt_replay_quant *quant, size_t e,
                            size_t len, const uint8_t *codes, float *y)
{
    size_t k = 0, c;
    while (k < len) {
        size_t run = rp_run(layout, e + k, &c);
        size_t end = run < len - k ? k + run : len;
        const float *scale = quant->scale + c;
        const int32_t *zero_point = quant->zero_point + c;
        if (layout->per_channel) {
            for (size_t j = k; j < end; ++j) y[j] = rp_dequantize(codes[j], scale[j - k], zero_point[j - k]);
        } else {
            const float s = scale[0];
            const int32_t z = zero_point[0];
            for (size_t j = k; j < end; ++j) y[j] = rp_dequantize(codes[j], s, z);
        }
        k = end;
    }
}

static void requantize_span(const pt_replay_layout *layout, const pt_replay_quant *quant,
                            const pt_replay_requant *rq, int32_t qmax, size_t e, size_t len,
                            const uint8_t *q, uint8_t *codes)
{
    size_t k = 0, c;
    while (k < len) {
        size_t run = rp_run(layout, e + k, &c);
        size_t end = run < len - k ? k + run : len;
        const size_t step = layout->per_channel ? 1 : 0;
        for (size_t j = k, p = c; j < end; ++j, p += step)
            codes[j] = (uint8_t)rp_requantize(q[j], rq->zero_point_in[p], rq->multiplier[p], rq->shift[p],
                                              quant->zero_point[p], qmax);
        k = end;
    }
}

/* ---------------------------------------------------------------- insert */
RP_INLINE void insert_row_packed(int bits, const pt_replay_layout *layout,
                                 const pt_replay_quant *quant, size_t slot, const float *x,
                                 uint8_t *payload)
{
    const size_t n = layout->slot_elems, first = slot * n;
    uint8_t codes[RP_CHUNK];
    for (size_t e = 0, len; e < n; e += len) {
        len = rp_chunk_len(first, e, n);
        quantize_span(layout, quant, (float)rp_qmax(bits), e, len, x + e, codes);
        rp_pack_span(bits, first + e, len, codes, payload);
    }
}

static void insert_row(const pt_replay_layout *layout, const pt_replay_quant *quant, size_t slot,
                       const float *x, uint8_t *payload)
{
    const size_t n = layout->slot_elems;
    if (layout->bits == PT_REPLAY_FP32) {
        memcpy(payload + slot * n * 4, x, n * 4);
    } else if (layout->bits == PT_REPLAY_FP16) {
        uint8_t *dst = payload + slot * n * 2;
        for (size_t e = 0; e < n; ++e) {
            uint16_t h = rp_f32_to_f16(x[e]);
            dst[2 * e] = (uint8_t)h;
            dst[2 * e + 1] = (uint8_t)(h >> 8);
        }
    } else {
#define RP_INSERT(Q) insert_row_packed(Q, layout, quant, slot, x, payload)
        switch (layout->bits) { RP_CASES(RP_INSERT) }
#undef RP_INSERT
    }
}

RP_INLINE void insert_codes_row_packed(int bits, const pt_replay_layout *layout,
                                       const pt_replay_quant *quant, const pt_replay_requant *rq,
                                       size_t slot, const uint8_t *q, uint8_t *payload)
{
    const size_t n = layout->slot_elems, first = slot * n;
    uint8_t codes[RP_CHUNK];
    for (size_t e = 0, len; e < n; e += len) {
        len = rp_chunk_len(first, e, n);
        requantize_span(layout, quant, rq, (int32_t)rp_qmax(bits), e, len, q + e, codes);
        rp_pack_span(bits, first + e, len, codes, payload);
    }
}

static void insert_codes_row(const pt_replay_layout *layout, const pt_replay_quant *quant,
                             const pt_replay_requant *rq, size_t slot, const uint8_t *q,
                             uint8_t *payload)
{
#define RP_INSERT_CODES(Q) insert_codes_row_packed(Q, layout, quant, rq, slot, q, payload)
    switch (layout->bits) { RP_CASES(RP_INSERT_CODES) }
#undef RP_INSERT_CODES
}

static void insert_task(void *arg, int core, int ncores)
{
    rp_job *job = (rp_job *)arg;
    const size_t n = job->layout->slot_elems;
    size_t b, e;
    pt_split(job->count, core, ncores, &b, &e);
    if (job->latents) {
        /* Every core checks its rows; nobody writes unless all rows are finite. */
        int bad = 0;
        const float *x = job->latents + b * n;
        for (size_t i = 0; i < (e - b) * n; ++i) bad |= !rp_is_finite(x[i]);
        job->nonfinite[core] = bad;
        pt_barrier();
        for (int k = 0; k < ncores; ++k)
            if (job->nonfinite[k]) return;
    }
    for (size_t r = b; r < e; ++r) {
        size_t slot = (size_t)job->slots[r];
        if (job->latents)
            insert_row(job->layout, job->quant, slot, job->latents + r * n, job->payload);
        else
            insert_codes_row(job->layout, job->quant, job->requant, slot, job->codes + r * n,
                             job->payload);
    }
}

/* Cores for a call: rows may only go to different cores when no two slots
 * share a byte. */
static int rp_threads(const pt_ctx *ctx, const pt_replay_layout *layout, size_t count, int writes)
{
    if (writes && rp_is_packed(layout->bits) && (layout->slot_elems * (size_t)layout->bits) % 8 != 0)
        return 1;
    size_t values = count * layout->slot_elems;
    if (values < RP_PARALLEL_MIN_VALUES) return 1;
    return pt_threads_for(ctx, count, 1);
}

static pt_status rp_check_common(const pt_ctx *ctx, const pt_replay_layout *layout,
                                 const pt_replay_quant *quant, size_t count, const int64_t *slots,
                                 const void *in, const void *out, int distinct)
{
    pt_status st = pt_check_ctx(ctx, 0);
    if (st != PT_OK) return st;
    if ((st = rp_check_layout(layout)) != PT_OK) return st;
    if (count == 0) return PT_ERR_SHAPE;
    if (!in || !out) return PT_ERR_NULL;
    size_t values;
    if (!pt_mul_size(count, layout->slot_elems, &values)) return PT_ERR_OVERFLOW;
    if ((st = rp_check_quant(layout, quant)) != PT_OK) return st;
    return rp_check_slots(layout, count, slots, distinct);
}

static void rp_job_init(rp_job *job, const pt_replay_layout *layout, const pt_replay_quant *quant,
                        size_t count, const int64_t *slots)
{
    memset(job, 0, sizeof *job);
    job->layout = layout;
    job->quant = quant;
    job->count = count;
    job->slots = slots;
}

pt_status pt_replay_insert_f32(const pt_ctx *ctx, const pt_replay_layout *layout,
                               const pt_replay_quant *quant, size_t count, const int64_t *slots,
                               const float *latents, uint8_t *payload)
{
    pt_status st = rp_check_common(ctx, layout, quant, count, slots, latents, payload, 1);
    if (st != PT_OK) return st;
    rp_job job;
    rp_job_init(&job, layout, quant, count, slots);
    job.latents = latents;
    job.payload = payload;
    int threads = rp_threads(ctx, layout, count, 1);
    if ((st = pt_fork(threads, insert_task, &job)) != PT_OK) return st;
    for (int k = 0; k < threads; ++k)
        if (job.nonfinite[k]) return PT_ERR_NONFINITE;
    return PT_OK;
}

pt_status pt_replay_insert_codes_u8(const pt_ctx *ctx, const pt_replay_layout *layout,
                                    const pt_replay_quant *quant, const pt_replay_requant *requant,
                                    size_t count, const int64_t *slots, const uint8_t *codes,
                                    uint8_t *payload)
{
    pt_status st = rp_check_common(ctx, layout, quant, count, slots, codes, payload, 1);
    if (st != PT_OK) return st;
    if ((st = rp_check_requant(layout, requant)) != PT_OK) return st;
    rp_job job;
    rp_job_init(&job, layout, quant, count, slots);
    job.requant = requant;
    job.codes = codes;
    job.payload = payload;
    return pt_fork(rp_threads(ctx, layout, count, 1), insert_task, &job);
}

/* ---------------------------------------------------------------- gather */
RP_INLINE void gather_row_packed(int bits, const pt_replay_layout *layout,
                                 const pt_replay_quant *quant, size_t slot, const uint8_t *payload,
                                 float *y)
{
    const size_t n = layout->slot_elems, first = slot * n;
    uint8_t codes[RP_CHUNK];
    for (size_t e = 0, len; e < n; e += len) {
        len = rp_chunk_len(first, e, n);
        rp_unpack_span(bits, first + e, len, payload, codes);
        dequantize_span(layout, quant, e, len, codes, y + e);
    }
}

static void gather_row(const pt_replay_layout *layout, const pt_replay_quant *quant, size_t slot,
                       const uint8_t *payload, float *y)
{
    const size_t n = layout->slot_elems;
    if (layout->bits == PT_REPLAY_FP32) {
        memcpy(y, payload + slot * n * 4, n * 4);
    } else if (layout->bits == PT_REPLAY_FP16) {
        const uint8_t *src = payload + slot * n * 2;
        for (size_t e = 0; e < n; ++e)
            y[e] = rp_f16_to_f32((uint16_t)(src[2 * e] | (src[2 * e + 1] << 8)));
    } else {
#define RP_GATHER(Q) gather_row_packed(Q, layout, quant, slot, payload, y)
        switch (layout->bits) { RP_CASES(RP_GATHER) }
#undef RP_GATHER
    }
}

static void gather_task(void *arg, int core, int ncores)
{
    const rp_job *job = (const rp_job *)arg;
    const size_t n = job->layout->slot_elems;
    size_t b, e;
    pt_split(job->count, core, ncores, &b, &e);
    for (size_t r = b; r < e; ++r)
        gather_row(job->layout, job->quant, (size_t)job->slots[r], job->payload_in, job->out + r * n);
}

pt_status pt_replay_gather_f32(const pt_ctx *ctx, const pt_replay_layout *layout,
                               const pt_replay_quant *quant, size_t count, const int64_t *slots,
                               const uint8_t *payload, float *out)
{
    pt_status st = rp_check_common(ctx, layout, quant, count, slots, payload, out, 0);
    if (st != PT_OK) return st;
    rp_job job;
    rp_job_init(&job, layout, quant, count, slots);
    job.payload_in = payload;
    job.out = out;
    return pt_fork(rp_threads(ctx, layout, count, 0), gather_task, &job);
}

/* ---------------------------------------------------------------- layout */
pt_status pt_replay_check_layout(const pt_replay_layout *layout)
{
    return rp_check_layout(layout);
}

size_t pt_replay_payload_bytes(const pt_replay_layout *layout)
{
    if (rp_check_layout(layout) != PT_OK) return 0;
    size_t bits_total = layout->capacity * layout->slot_elems * (size_t)layout->bits;
    return bits_total / 8 + (bits_total % 8 != 0);
}
