/* The latent-replay store kernels: insert (quantize + pack), insert of 8-bit
 * codes (integer requantize + pack) and gather (unpack + dequantize), split
 * over rows with one core per row. Format and rules: pt_replay.h. */
#include "pt_replay_codec.h"

/* Rows per call below which one core does everything (the fork costs more). */
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

/* Quantization parameters of the 8 values starting at channel c. */
static inline void rp_group_params(const pt_replay_layout *layout, const pt_replay_quant *quant,
                                   size_t c, float *scale8, float *zero_point8)
{
    if (!layout->per_channel) {
        for (int j = 0; j < PT_REPLAY_GROUP_CODES; ++j) {
            scale8[j] = quant->scale[0];
            zero_point8[j] = (float)quant->zero_point[0];
        }
        return;
    }
    for (int j = 0; j < PT_REPLAY_GROUP_CODES; ++j) {
        scale8[j] = quant->scale[c];
        zero_point8[j] = (float)quant->zero_point[c];
        c = c + 1 == layout->channels ? 0 : c + 1;
    }
}

static inline size_t rp_param_index(const pt_replay_layout *layout, size_t e)
{
    return layout->per_channel ? e % layout->channels : 0;
}

/* ---------------------------------------------------------------- insert */
RP_INLINE void insert_row_packed(int bits, const pt_replay_layout *layout,
                                 const pt_replay_quant *quant, size_t slot, const float *x,
                                 uint8_t *payload)
{
    const size_t n = layout->slot_elems;
    const size_t first = slot * n;
    const float qmax = (float)rp_qmax(bits);
    size_t e = 0;
    for (size_t head = rp_head_codes(first, n); e < head; ++e) {
        size_t c = rp_param_index(layout, e);
        rp_put_code(bits, payload, first + e,
                    rp_quantize(x[e], quant->scale[c], (float)quant->zero_point[c], qmax));
    }
    float scale8[PT_REPLAY_GROUP_CODES], zero_point8[PT_REPLAY_GROUP_CODES];
    uint32_t code[PT_REPLAY_GROUP_CODES];
    rp_group_params(layout, quant, rp_param_index(layout, e), scale8, zero_point8);
    for (; e + PT_REPLAY_GROUP_CODES <= n; e += PT_REPLAY_GROUP_CODES) {
        if (layout->per_channel) rp_group_params(layout, quant, e % layout->channels, scale8, zero_point8);
        for (int j = 0; j < PT_REPLAY_GROUP_CODES; ++j)
            code[j] = rp_quantize(x[e + j], scale8[j], zero_point8[j], qmax);
        rp_put_group(bits, payload + (first + e) / 8 * (size_t)bits, code);
    }
    for (; e < n; ++e) {
        size_t c = rp_param_index(layout, e);
        rp_put_code(bits, payload, first + e,
                    rp_quantize(x[e], quant->scale[c], (float)quant->zero_point[c], qmax));
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
    const size_t n = layout->slot_elems;
    const size_t first = slot * n;
    const int32_t qmax = (int32_t)rp_qmax(bits);
    size_t e = 0;
    uint32_t code[PT_REPLAY_GROUP_CODES];
#define RP_REQUANT(idx, c) rp_requantize(q[idx], rq->zero_point_in[c], rq->multiplier[c], \
                                         rq->shift[c], quant->zero_point[c], qmax)
    for (size_t head = rp_head_codes(first, n); e < head; ++e)
        rp_put_code(bits, payload, first + e, RP_REQUANT(e, rp_param_index(layout, e)));
    for (; e + PT_REPLAY_GROUP_CODES <= n; e += PT_REPLAY_GROUP_CODES) {
        size_t c = rp_param_index(layout, e);
        for (int j = 0; j < PT_REPLAY_GROUP_CODES; ++j) {
            code[j] = RP_REQUANT(e + (size_t)j, c);
            if (layout->per_channel) c = c + 1 == layout->channels ? 0 : c + 1;
        }
        rp_put_group(bits, payload + (first + e) / 8 * (size_t)bits, code);
    }
    for (; e < n; ++e)
        rp_put_code(bits, payload, first + e, RP_REQUANT(e, rp_param_index(layout, e)));
#undef RP_REQUANT
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

pt_status pt_replay_insert_f32(const pt_ctx *ctx, const pt_replay_layout *layout,
                               const pt_replay_quant *quant, size_t count, const int64_t *slots,
                               const float *latents, uint8_t *payload)
{
    pt_status st = rp_check_common(ctx, layout, quant, count, slots, latents, payload, 1);
    if (st != PT_OK) return st;
    rp_job job;
    memset(&job, 0, sizeof job);
    job.layout = layout;
    job.quant = quant;
    job.count = count;
    job.slots = slots;
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
    memset(&job, 0, sizeof job);
    job.layout = layout;
    job.quant = quant;
    job.requant = requant;
    job.count = count;
    job.slots = slots;
    job.codes = codes;
    job.payload = payload;
    return pt_fork(rp_threads(ctx, layout, count, 1), insert_task, &job);
}

/* ---------------------------------------------------------------- gather */
RP_INLINE void gather_row_packed(int bits, const pt_replay_layout *layout,
                                 const pt_replay_quant *quant, size_t slot, const uint8_t *payload,
                                 float *y)
{
    const size_t n = layout->slot_elems;
    const size_t first = slot * n;
    size_t e = 0;
    for (size_t head = rp_head_codes(first, n); e < head; ++e) {
        size_t c = rp_param_index(layout, e);
        y[e] = rp_dequantize(rp_get_code(bits, payload, first + e), quant->scale[c],
                             quant->zero_point[c]);
    }
    float scale8[PT_REPLAY_GROUP_CODES], zero_point8[PT_REPLAY_GROUP_CODES];
    uint32_t code[PT_REPLAY_GROUP_CODES];
    rp_group_params(layout, quant, rp_param_index(layout, e), scale8, zero_point8);
    for (; e + PT_REPLAY_GROUP_CODES <= n; e += PT_REPLAY_GROUP_CODES) {
        if (layout->per_channel) rp_group_params(layout, quant, e % layout->channels, scale8, zero_point8);
        rp_get_group(bits, payload + (first + e) / 8 * (size_t)bits, code);
        /* zero_point8 holds exact small integers, so this equals rp_dequantize. */
        for (int j = 0; j < PT_REPLAY_GROUP_CODES; ++j)
            y[e + j] = ((float)code[j] - zero_point8[j]) * scale8[j];
    }
    for (; e < n; ++e) {
        size_t c = rp_param_index(layout, e);
        y[e] = rp_dequantize(rp_get_code(bits, payload, first + e), quant->scale[c],
                             quant->zero_point[c]);
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
    memset(&job, 0, sizeof job);
    job.layout = layout;
    job.quant = quant;
    job.count = count;
    job.slots = slots;
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
