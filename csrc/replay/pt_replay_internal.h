/* pt_replay_internal.h - argument checks and the per-value arithmetic shared
 * by the optimised store kernels and their reference twins, so that both
 * quantize every value with the very same float expression. */
#ifndef PULPTRAIN_PT_REPLAY_INTERNAL_H
#define PULPTRAIN_PT_REPLAY_INTERNAL_H

#include <string.h>
#include "pulptrain/pt_replay.h"
#include "pulptrain/internal.h"

static inline int rp_is_packed(int bits) { return bits >= 1 && bits <= PT_REPLAY_MAX_BITS; }

static inline uint32_t rp_qmax(int bits) { return (1u << bits) - 1u; }

/* Quantization parameter arrays hold one entry per channel or a single one. */
static inline size_t rp_param_count(const pt_replay_layout *layout)
{
    return layout->per_channel ? layout->channels : 1;
}

static inline pt_status rp_check_layout(const pt_replay_layout *layout)
{
    if (!layout) return PT_ERR_NULL;
    if (layout->capacity == 0 || layout->slot_elems == 0 || layout->channels == 0)
        return PT_ERR_SHAPE;
    if (layout->slot_elems % layout->channels != 0) return PT_ERR_SHAPE;
    if (!rp_is_packed(layout->bits) && layout->bits != PT_REPLAY_FP16 &&
        layout->bits != PT_REPLAY_FP32)
        return PT_ERR_PARAM;
    if (layout->per_channel != 0 && layout->per_channel != 1) return PT_ERR_PARAM;
    size_t values, bits_total;
    if (!pt_mul_size(layout->capacity, layout->slot_elems, &values)) return PT_ERR_OVERFLOW;
    if (!pt_mul_size(values, (size_t)layout->bits, &bits_total)) return PT_ERR_OVERFLOW;
    if (bits_total > (size_t)-1 - 7) return PT_ERR_OVERFLOW;
    return PT_OK;
}

static inline int rp_is_finite(float v)
{
    uint32_t u;
    memcpy(&u, &v, sizeof u);
    return (u & 0x7f800000u) != 0x7f800000u;
}

static inline pt_status rp_check_quant(const pt_replay_layout *layout, const pt_replay_quant *quant)
{
    if (!rp_is_packed(layout->bits)) return PT_OK;
    if (!quant || !quant->scale || !quant->zero_point) return PT_ERR_NULL;
    const int32_t qmax = (int32_t)rp_qmax(layout->bits);
    for (size_t c = 0; c < rp_param_count(layout); ++c) {
        float s = quant->scale[c];
        if (!rp_is_finite(s) || !(s > 0.0f)) return PT_ERR_PARAM;
        if (quant->zero_point[c] < 0 || quant->zero_point[c] > qmax) return PT_ERR_PARAM;
    }
    return PT_OK;
}

static inline pt_status rp_check_requant(const pt_replay_layout *layout, const pt_replay_requant *rq)
{
    if (!rp_is_packed(layout->bits)) return PT_ERR_PARAM;
    if (!rq || !rq->multiplier || !rq->shift || !rq->zero_point_in) return PT_ERR_NULL;
    for (size_t c = 0; c < rp_param_count(layout); ++c) {
        if (rq->multiplier[c] < (INT32_C(1) << 30)) return PT_ERR_PARAM;
        if (rq->shift[c] < 1 || rq->shift[c] > 62) return PT_ERR_PARAM;
        if (rq->zero_point_in[c] < 0 || rq->zero_point_in[c] > 255) return PT_ERR_PARAM;
    }
    return PT_OK;
}

/* Slots in [0, capacity); for inserts also pairwise distinct (two rows into
 * one slot would make the result depend on the write order). Quadratic, but
 * without allocation, and small next to moving the rows themselves. */
static inline pt_status rp_check_slots(const pt_replay_layout *layout, size_t count,
                                       const int64_t *slots, int distinct)
{
    if (!slots) return PT_ERR_NULL;
    for (size_t i = 0; i < count; ++i) {
        if (slots[i] < 0 || (uint64_t)slots[i] >= (uint64_t)layout->capacity) return PT_ERR_RANGE;
        if (distinct)
            for (size_t j = 0; j < i; ++j)
                if (slots[j] == slots[i]) return PT_ERR_RANGE;
    }
    return PT_OK;
}

/* code = clamp(round_half_up(x / scale + zero_point), 0, qmax). Clamping
 * before the +0.5 keeps the conversion in range (and truncation of a
 * non-negative value is floor). */
static inline uint32_t rp_quantize(float x, float scale, float zero_point, float qmax)
{
    float v = x / scale + zero_point;
    v = v > 0.0f ? v : 0.0f;
    v = v < qmax ? v : qmax;
    return (uint32_t)(int32_t)(v + 0.5f);   /* v + 0.5 <= 255.5: the signed conversion vectorises */
}

static inline float rp_dequantize(uint32_t code, float scale, int32_t zero_point)
{
    return (float)((int32_t)code - zero_point) * scale;
}

/* Integer-only 8-bit -> Q-bit requantization (see pt_replay.h). */
static inline uint32_t rp_requantize(uint32_t q, int32_t zero_point_in, int32_t multiplier,
                                     int32_t shift, int32_t zero_point, int32_t qmax)
{
    int64_t product = (int64_t)((int32_t)q - zero_point_in) * multiplier;
    int64_t magnitude = product < 0 ? -product : product;
    int64_t rounded = (magnitude + ((int64_t)1 << (shift - 1))) >> shift;
    int64_t code = (int64_t)zero_point + (product < 0 ? -rounded : rounded);
    code = code < 0 ? 0 : code;
    return (uint32_t)(code > qmax ? qmax : code);
}

#endif
