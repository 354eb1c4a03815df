/* pt_replay.h - the quantized latent-replay (LR) store: dense Q-bit packing,
 * affine quantization, batched insert and gather-with-dequantize.
 *
 * The store is a flat byte array (the payload) owned by the caller, holding
 * `capacity` slots of `slot_elems` values each (one latent, NHWC flattened,
 * channels last). Labels, policies and persistence live in the caller (the
 * Python wrapper pulptrain/replay.py); this layer only moves values.
 *
 * Element modes (layout.bits):
 *   1..8   unsigned codes of Q = bits bits, densely packed: the payload is
 *          exactly ceil(capacity * slot_elems * Q / 8) bytes (7-bit codes
 *          take 7 bits, not a byte). Slot s holds codes
 *          [s * slot_elems, (s + 1) * slot_elems) of one code stream.
 *   16     IEEE binary16, 2 bytes little-endian per value (finite values
 *          beyond +-65504 saturate to +-65504; rounding to nearest even).
 *   32     IEEE binary32, 4 bytes per value (the uncompressed baseline).
 *
 * Packed code stream (Q = 1..8), little-endian bit order: bit j of code i is
 * bit (i*Q + j) % 8 of byte (i*Q + j) / 8. A group of 8 consecutive codes
 * starting at a code index that is a multiple of 8 occupies exactly Q whole
 * bytes; the kernels move whole groups with one 64-bit word each.
 *
 * Worked example, Q = 7, one group (codes 0..7 of the stream):
 *   codes (hex):  01 7F 00 55 2A 40 03 7E
 *   bytes (hex):  81 3F A0 AA 02 0E FC           (7 bytes for 8 codes)
 *   byte 0 = 0x81: bits 0-6 = code 0 (0x01), bit 7 = bit 0 of code 1 (1)
 *   byte 1 = 0x3F: bits 0-5 = bits 1-6 of code 1 (0x3F), bits 6-7 = bits 0-1 of code 2 (0)
 *   byte 2 = 0xA0: bits 0-4 = bits 2-6 of code 2 (0), bits 5-7 = bits 0-2 of code 3 (0x55 & 7 = 5)
 * With Q = 4 the first code of a byte sits in its low nibble: codes 3 A F 0 -> bytes A3 0F.
 *
 * Quantization (uniform affine, per tensor or per channel = last axis):
 *   code = clamp(round_half_up(x * (1 / scale) + zero_point), 0, 2^Q - 1)
 *   x'   = (code - zero_point) * scale
 * so |x' - x| <= scale / 2 (plus float rounding) for x inside
 * [(0 - zero_point) * scale, (2^Q - 1 - zero_point) * scale]; values outside
 * are clamped to the nearest end. zero_point is an integer in [0, 2^Q - 1],
 * so 0.0 is stored exactly when it lies in the range.
 *
 * Requantizing 8-bit codes of the INT8 frozen stage (integer only):
 *   code = clamp(zero_point + rshift_round((q - zero_point_in) * multiplier, shift), 0, 2^Q - 1)
 * with multiplier a Q31 fixed-point value in [2^30, 2^31) and shift in
 * [1, 62]: scale_in / scale = multiplier * 2^-shift. rshift_round rounds
 * half away from zero. For scale = scale_in * 2^(8-Q) the multiplier is
 * exactly 2^30 and the step is a pure rounding shift.
 *
 * Parallelism: work is split over the rows (slots) of a call with pt_split;
 * every row is written by one core. When a slot does not start on a byte
 * boundary (slot_elems * Q not a multiple of 8) neighbouring slots share a
 * byte and inserts run on one core. Output is identical for any core count.
 *
 * Validation (before anything is written): layout valid, quantization
 * parameters valid (scale finite > 0, zero point in range), slot indices in
 * [0, capacity) and, for inserts, pairwise distinct, and inputs finite
 * (PT_ERR_NONFINITE). No scratch memory is needed. */
#ifndef PULPTRAIN_PT_REPLAY_H
#define PULPTRAIN_PT_REPLAY_H

#include "pt_types.h"

#ifdef __cplusplus
extern "C" {
#endif

#define PT_REPLAY_MAX_BITS 8      /* widest packed code */
#define PT_REPLAY_FP16 16         /* layout.bits value for binary16 storage */
#define PT_REPLAY_FP32 32         /* layout.bits value for binary32 storage */
#define PT_REPLAY_GROUP_CODES 8   /* codes per packing group: a group is Q bytes */

/* A group of the widest codes must fit the 64-bit word the kernels pack into. */
typedef char pt_replay_group_fits_u64[
    (PT_REPLAY_GROUP_CODES * PT_REPLAY_MAX_BITS <= 64) ? 1 : -1];
/* ...and is a whole number of bytes for every Q. */
typedef char pt_replay_group_whole_bytes[(PT_REPLAY_GROUP_CODES % 8 == 0) ? 1 : -1];

typedef struct pt_replay_layout {
    size_t capacity;      /* slots, >= 1 */
    size_t slot_elems;    /* values per slot (H * W * C of one latent), >= 1 */
    size_t channels;      /* C, the last axis; slot_elems % channels == 0 */
    int bits;             /* 1..8, PT_REPLAY_FP16 or PT_REPLAY_FP32 */
    int per_channel;      /* 0: one scale / zero point; 1: one per channel */
} pt_replay_layout;

/* Quantization parameters (ignored for FP16 / FP32): arrays of `channels`
 * entries when per_channel, else of 1. */
typedef struct pt_replay_quant {
    const float *scale;           /* > 0, finite */
    const int32_t *zero_point;    /* in [0, 2^Q - 1] */
} pt_replay_quant;

/* Integer requantization of uint8 codes into the store's Q-bit codes: arrays
 * shaped like pt_replay_quant's. */
typedef struct pt_replay_requant {
    const int32_t *multiplier;    /* Q31, in [2^30, 2^31) */
    const int32_t *shift;         /* total right shift of the product, in [1, 62] */
    const int32_t *zero_point_in; /* zero point of the incoming codes, in [0, 255] */
} pt_replay_requant;

/* PT_OK when the layout is usable (sizes, bits, channels, no overflow). */
pt_status pt_replay_check_layout(const pt_replay_layout *layout);

/* Payload size in bytes; 0 when the layout is invalid. Exactly
 * ceil(capacity * slot_elems * bits / 8). */
size_t pt_replay_payload_bytes(const pt_replay_layout *layout);

/* Quantize (or convert) latents [count, slot_elems] and store row r in slot
 * slots[r]. */
pt_status pt_replay_insert_f32(const pt_ctx *ctx, const pt_replay_layout *layout,
                               const pt_replay_quant *quant, size_t count, const int64_t *slots,
                               const float *latents, uint8_t *payload);

/* Requantize uint8 codes [count, slot_elems] (bits 1..8 only) into slots. */
pt_status pt_replay_insert_codes_u8(const pt_ctx *ctx, const pt_replay_layout *layout,
                                    const pt_replay_quant *quant, const pt_replay_requant *requant,
                                    size_t count, const int64_t *slots, const uint8_t *codes,
                                    uint8_t *payload);

/* Dequantize slots[r] into row r of out [count, slot_elems]. Slots may repeat. */
pt_status pt_replay_gather_f32(const pt_ctx *ctx, const pt_replay_layout *layout,
                               const pt_replay_quant *quant, size_t count, const int64_t *slots,
                               const uint8_t *payload, float *out);

/* Raw code stream access (bits 1..8): write / read codes [first, first + count)
 * of the stream. The building blocks of the store, exposed for tests. */
pt_status pt_replay_pack(int bits, size_t first, size_t count, const uint8_t *codes,
                         uint8_t *stream);
pt_status pt_replay_unpack(int bits, size_t first, size_t count, const uint8_t *stream,
                           uint8_t *codes);

/* binary16 conversions used by the FP16 mode (saturating, round to nearest even). */
uint16_t pt_replay_f32_to_f16(float value);
float pt_replay_f16_to_f32(uint16_t half);

/* Plain single-core reference twins: one code and one bit at a time. */
pt_status pt_replay_pack_ref(int bits, size_t first, size_t count, const uint8_t *codes,
                             uint8_t *stream);
pt_status pt_replay_unpack_ref(int bits, size_t first, size_t count, const uint8_t *stream,
                               uint8_t *codes);
pt_status pt_replay_insert_f32_ref(const pt_replay_layout *layout, const pt_replay_quant *quant,
                                   size_t count, const int64_t *slots, const float *latents,
                                   uint8_t *payload);
pt_status pt_replay_insert_codes_u8_ref(const pt_replay_layout *layout, const pt_replay_quant *quant,
                                        const pt_replay_requant *requant, size_t count,
                                        const int64_t *slots, const uint8_t *codes,
                                        uint8_t *payload);
pt_status pt_replay_gather_f32_ref(const pt_replay_layout *layout, const pt_replay_quant *quant,
                                   size_t count, const int64_t *slots, const uint8_t *payload,
                                   float *out);

#ifdef __cplusplus
}
#endif
#endif
