/* Raw access to the packed code stream (pt_replay_pack / pt_replay_unpack)
 * and the public binary16 conversions. */
#include "pt_replay_codec.h"

static pt_status rp_check_stream(int bits, size_t first, size_t count, const void *a, const void *b)
{
    if (!rp_is_packed(bits)) return PT_ERR_PARAM;
    if (!a || !b) return PT_ERR_NULL;
    if (count == 0) return PT_ERR_SHAPE;
    size_t end_bits;
    if (first > (size_t)-1 - count || !pt_mul_size(first + count, (size_t)bits, &end_bits))
        return PT_ERR_OVERFLOW;
    return PT_OK;
}

/* Codes wider than Q bits keep only their low Q bits. */
pt_status pt_replay_pack(int bits, size_t first, size_t count, const uint8_t *codes, uint8_t *stream)
{
    pt_status st = rp_check_stream(bits, first, count, codes, stream);
    if (st != PT_OK) return st;
#define RP_PACK(Q) rp_pack_span(Q, first, count, codes, stream)
    switch (bits) { RP_CASES(RP_PACK) }
#undef RP_PACK
    return PT_OK;
}

pt_status pt_replay_unpack(int bits, size_t first, size_t count, const uint8_t *stream, uint8_t *codes)
{
    pt_status st = rp_check_stream(bits, first, count, stream, codes);
    if (st != PT_OK) return st;
#define RP_UNPACK(Q) rp_unpack_span(Q, first, count, stream, codes)
    switch (bits) { RP_CASES(RP_UNPACK) }
#undef RP_UNPACK
    return PT_OK;
}

uint16_t pt_replay_f32_to_f16(float value) { return rp_f32_to_f16(value); }

float pt_replay_f16_to_f32(uint16_t half) { return rp_f16_to_f32(half); }
