/* Reference twins of the store kernels: one value, one code and one bit at a
 * time on one core, written straight from the format description in
 * pt_replay.h. The tests require the optimised kernels to match them bit for
 * bit. */
#include "pt_replay_internal.h"

static void ref_put_code(int bits, uint8_t *stream, size_t index, uint32_t code)
{
    for (int j = 0; j < bits; ++j) {
        size_t bit = index * (size_t)bits + (size_t)j;
        uint8_t mask = (uint8_t)(1u << (bit % 8));
        if ((code >> j) & 1u)
            stream[bit / 8] |= mask;
        else
            stream[bit / 8] &= (uint8_t)~mask;
    }
}

static uint32_t ref_get_code(int bits, const uint8_t *stream, size_t index)
{
    uint32_t code = 0;
    for (int j = 0; j < bits; ++j) {
        size_t bit = index * (size_t)bits + (size_t)j;
        code |= (uint32_t)((stream[bit / 8] >> (bit % 8)) & 1u) << j;
    }
    return code;
}

static pt_status ref_check_stream(int bits, size_t first, size_t count, const void *a, const void *b)
{
    if (!rp_is_packed(bits)) return PT_ERR_PARAM;
    if (!a || !b) return PT_ERR_NULL;
    if (count == 0) return PT_ERR_SHAPE;
    size_t end_bits;
    if (first > (size_t)-1 - count || !pt_mul_size(first + count, (size_t)bits, &end_bits))
        return PT_ERR_OVERFLOW;
    return PT_OK;
}

pt_status pt_replay_pack_ref(int bits, size_t first, size_t count, const uint8_t *codes,
                             uint8_t *stream)
{
    pt_status st = ref_check_stream(bits, first, count, codes, stream);
    if (st != PT_OK) return st;
    for (size_t i = 0; i < count; ++i) ref_put_code(bits, stream, first + i, codes[i] & rp_qmax(bits));
    return PT_OK;
}

pt_status pt_replay_unpack_ref(int bits, size_t first, size_t count, const uint8_t *stream,
                               uint8_t *codes)
{
    pt_status st = ref_check_stream(bits, first, count, stream, codes);
    if (st != PT_OK) return st;
    for (size_t i = 0; i < count; ++i) codes[i] = (uint8_t)ref_get_code(bits, stream, first + i);
    return PT_OK;
}

static pt_status ref_check(const pt_replay_layout *layout, const pt_replay_quant *quant, size_t count,
                           const int64_t *slots, const void *in, const void *out, int distinct)
{
    pt_status st = rp_check_layout(layout);
    if (st != PT_OK) return st;
    if (count == 0) return PT_ERR_SHAPE;
    if (!in || !out) return PT_ERR_NULL;
    size_t values;
    if (!pt_mul_size(count, layout->slot_elems, &values)) return PT_ERR_OVERFLOW;
    if ((st = rp_check_quant(layout, quant)) != PT_OK) return st;
    return rp_check_slots(layout, count, slots, distinct);
}

pt_status pt_replay_insert_f32_ref(const pt_replay_layout *layout, const pt_replay_quant *quant,
                                   size_t count, const int64_t *slots, const float *latents,
                                   uint8_t *payload)
{
    pt_status st = ref_check(layout, quant, count, slots, latents, payload, 1);
    if (st != PT_OK) return st;
    const size_t n = layout->slot_elems;
    for (size_t i = 0; i < count * n; ++i)
        if (!rp_is_finite(latents[i])) return PT_ERR_NONFINITE;
    for (size_t r = 0; r < count; ++r) {
        size_t slot = (size_t)slots[r];
        for (size_t e = 0; e < n; ++e) {
            float x = latents[r * n + e];
            size_t index = slot * n + e;
            if (layout->bits == PT_REPLAY_FP32) {
                memcpy(payload + index * 4, &x, 4);   /* the byte order of the host */
            } else if (layout->bits == PT_REPLAY_FP16) {
                uint16_t h = pt_replay_f32_to_f16(x);
                payload[index * 2] = (uint8_t)h;
                payload[index * 2 + 1] = (uint8_t)(h >> 8);
            } else {
                size_t c = layout->per_channel ? e % layout->channels : 0;
                uint32_t code = rp_quantize(x, quant->scale[c], (float)quant->zero_point[c],
                                            (float)rp_qmax(layout->bits));
                ref_put_code(layout->bits, payload, index, code);
            }
        }
    }
    return PT_OK;
}

pt_status pt_replay_insert_codes_u8_ref(const pt_replay_layout *layout, const pt_replay_quant *quant,
                                        const pt_replay_requant *requant, size_t count,
                                        const int64_t *slots, const uint8_t *codes,
                                        uint8_t *payload)
{
    pt_status st = ref_check(layout, quant, count, slots, codes, payload, 1);
    if (st != PT_OK) return st;
    if ((st = rp_check_requant(layout, requant)) != PT_OK) return st;
    const size_t n = layout->slot_elems;
    for (size_t r = 0; r < count; ++r) {
        for (size_t e = 0; e < n; ++e) {
            size_t c = layout->per_channel ? e % layout->channels : 0;
            uint32_t code = rp_requantize(codes[r * n + e], requant->zero_point_in[c],
                                          requant->multiplier[c], requant->shift[c],
                                          quant->zero_point[c], (int32_t)rp_qmax(layout->bits));
            ref_put_code(layout->bits, payload, (size_t)slots[r] * n + e, code);
        }
    }
    return PT_OK;
}

pt_status pt_replay_gather_f32_ref(const pt_replay_layout *layout, const pt_replay_quant *quant,
                                   size_t count, const int64_t *slots, const uint8_t *payload,
                                   float *out)
{
    pt_status st = ref_check(layout, quant, count, slots, payload, out, 0);
    if (st != PT_OK) return st;
    const size_t n = layout->slot_elems;
    for (size_t r = 0; r < count; ++r) {
        for (size_t e = 0; e < n; ++e) {
            size_t index = (size_t)slots[r] * n + e;
            float *y = &out[r * n + e];
            if (layout->bits == PT_REPLAY_FP32) {
                memcpy(y, payload + index * 4, 4);
            } else if (layout->bits == PT_REPLAY_FP16) {
                *y = pt_replay_f16_to_f32((uint16_t)(payload[index * 2] | (payload[index * 2 + 1] << 8)));
            } else {
                size_t c = layout->per_channel ? e % layout->channels : 0;
                *y = rp_dequantize(ref_get_code(layout->bits, payload, index), quant->scale[c],
                                   quant->zero_point[c]);
            }
        }
    }
    return PT_OK;
}
