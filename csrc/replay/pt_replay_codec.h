/* pt_replay_codec.h - moving Q-bit codes in and out of the packed stream
 * (format in pt_replay.h), and binary16 conversion. Internal to csrc/replay.
 *
 * Fast path: a group of 8 codes whose first code index is a multiple of 8
 * lives in Q whole bytes; it is assembled in one 64-bit word with constant
 * shifts (the row kernels are instantiated once per Q) and written byte by
 * byte, so the result does not depend on the host's endianness. Codes before
 * the first such group of a row, and after its last one, go one at a time. */
#ifndef PULPTRAIN_PT_REPLAY_CODEC_H
#define PULPTRAIN_PT_REPLAY_CODEC_H

#include "pt_replay_internal.h"

#if defined(__GNUC__) || defined(__clang__)
#define RP_INLINE static inline __attribute__((always_inline))
#else
#define RP_INLINE static inline
#endif

/* Dispatch on Q to one instance of a kernel per Q, so that every shift and
 * byte count in it is a constant. */
#define RP_CASES(CALL) \
    case 1: CALL(1); break; case 2: CALL(2); break; case 3: CALL(3); break; \
    case 4: CALL(4); break; case 5: CALL(5); break; case 6: CALL(6); break; \
    case 7: CALL(7); break; case 8: CALL(8); break; default: break;

/* One code at any position: it spans at most two bytes (offset <= 7, Q <= 8);
 * the bits of its neighbours are kept. */
static inline void rp_put_code(int bits, uint8_t *stream, size_t index, uint32_t code)
{
    size_t bit = index * (size_t)bits;
    size_t byte = bit >> 3;
    unsigned offset = (unsigned)(bit & 7u);
    uint32_t mask = rp_qmax(bits) << offset;
    uint32_t value = code << offset;
    stream[byte] = (uint8_t)((stream[byte] & ~mask) | value);
    if (offset + (unsigned)bits > 8u)
        stream[byte + 1] = (uint8_t)((stream[byte + 1] & ~(mask >> 8)) | (value >> 8));
}

static inline uint32_t rp_get_code(int bits, const uint8_t *stream, size_t index)
{
    size_t bit = index * (size_t)bits;
    size_t byte = bit >> 3;
    unsigned offset = (unsigned)(bit & 7u);
    uint32_t value = stream[byte];
    if (offset + (unsigned)bits > 8u) value |= (uint32_t)stream[byte + 1] << 8;
    return (value >> offset) & rp_qmax(bits);
}

/* Codes of a row [first, first + count) before its first whole group. */
static inline size_t rp_head_codes(size_t first, size_t count)
{
    size_t head = (PT_REPLAY_GROUP_CODES - first % PT_REPLAY_GROUP_CODES) % PT_REPLAY_GROUP_CODES;
    return head < count ? head : count;
}

#if defined(__BYTE_ORDER__) && defined(__ORDER_LITTLE_ENDIAN__) && \
    __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define RP_LITTLE_ENDIAN 1
#else
#define RP_LITTLE_ENDIAN 0
#endif

/* Groups of a span of `groups` groups that can be moved as whole 64-bit
 * words without touching bytes outside the span (group g starts at byte
 * g * Q; its 8-byte word must end by groups * Q). Little-endian hosts only:
 * the word's byte order is then the stream's. */
static inline size_t rp_wide_groups(int bits, size_t groups)
{
    size_t span = groups * (size_t)bits;
    return (RP_LITTLE_ENDIAN && span >= 8) ? (span - 8) / (size_t)bits + 1 : 0;
}

/* The 8 code bytes of a group as one little-endian 64-bit value, and back. */
RP_INLINE uint64_t rp_load_codes(const uint8_t *codes)
{
    uint64_t v = 0;
#if RP_LITTLE_ENDIAN
    memcpy(&v, codes, 8);
#else
    for (int j = 0; j < PT_REPLAY_GROUP_CODES; ++j) v |= (uint64_t)codes[j] << (8 * j);
#endif
    return v;
}

RP_INLINE void rp_store_codes(uint64_t v, uint8_t *codes)
{
#if RP_LITTLE_ENDIAN
    memcpy(codes, &v, 8);
#else
    for (int j = 0; j < PT_REPLAY_GROUP_CODES; ++j) codes[j] = (uint8_t)(v >> (8 * j));
#endif
}

/* Code j of a group moves between bits [8j, 8j + Q) of the code bytes and
 * bits [jQ, jQ + Q) of the packed word; all in 64-bit registers. */
RP_INLINE uint64_t rp_group_word(int bits, const uint8_t *codes)
{
    const uint64_t mask = rp_qmax(bits), bytes = rp_load_codes(codes);
    uint64_t word = 0;
    for (int j = 0; j < PT_REPLAY_GROUP_CODES; ++j) word |= ((bytes >> (8 * j)) & mask) << (j * bits);
    return word;
}

RP_INLINE void rp_word_codes(int bits, uint64_t word, uint8_t *codes)
{
    const uint64_t mask = rp_qmax(bits);
    uint64_t bytes = 0;
    for (int j = 0; j < PT_REPLAY_GROUP_CODES; ++j) bytes |= ((word >> (j * bits)) & mask) << (8 * j);
    rp_store_codes(bytes, codes);
}

/* Whole groups: count (a multiple of 8) codes to / from bytes starting at a
 * group boundary. Codes keep only their low Q bits. A wide store also writes
 * zeros into the next group's bytes, which the next iteration overwrites. */
RP_INLINE void rp_pack_groups(int bits, const uint8_t *codes, size_t count, uint8_t *dst)
{
    const size_t groups = count / PT_REPLAY_GROUP_CODES, wide = rp_wide_groups(bits, groups);
    size_t g = 0;
    for (; g < wide; ++g, dst += bits, codes += PT_REPLAY_GROUP_CODES) {
        uint64_t word = rp_group_word(bits, codes);
        memcpy(dst, &word, 8);
    }
    for (; g < groups; ++g, dst += bits, codes += PT_REPLAY_GROUP_CODES) {
        uint64_t word = rp_group_word(bits, codes);
        for (int k = 0; k < bits; ++k) dst[k] = (uint8_t)(word >> (8 * k));
    }
}

RP_INLINE void rp_unpack_groups(int bits, const uint8_t *src, size_t count, uint8_t *codes)
{
    const size_t groups = count / PT_REPLAY_GROUP_CODES, wide = rp_wide_groups(bits, groups);
    size_t g = 0;
    for (; g < wide; ++g, src += bits, codes += PT_REPLAY_GROUP_CODES) {
        uint64_t word;
        memcpy(&word, src, 8);
        rp_word_codes(bits, word, codes);
    }
    for (; g < groups; ++g, src += bits, codes += PT_REPLAY_GROUP_CODES) {
        uint64_t word = 0;
        for (int k = 0; k < bits; ++k) word |= (uint64_t)src[k] << (8 * k);
        rp_word_codes(bits, word, codes);
    }
}

/* Codes [first, first + count) of the stream: the ones before the first
 * group boundary and after the last one go one at a time, the rest in groups. */
RP_INLINE void rp_pack_span(int bits, size_t first, size_t count, const uint8_t *codes, uint8_t *stream)
{
    if (bits == 8) {   /* one code per byte */
        memcpy(stream + first, codes, count);
        return;
    }
    const size_t head = rp_head_codes(first, count);
    const size_t body = (count - head) / PT_REPLAY_GROUP_CODES * PT_REPLAY_GROUP_CODES;
    for (size_t i = 0; i < head; ++i) rp_put_code(bits, stream, first + i, codes[i] & rp_qmax(bits));
    rp_pack_groups(bits, codes + head, body, stream + (first + head) / 8 * (size_t)bits);
    for (size_t i = head + body; i < count; ++i) rp_put_code(bits, stream, first + i, codes[i] & rp_qmax(bits));
}

RP_INLINE void rp_unpack_span(int bits, size_t first, size_t count, const uint8_t *stream, uint8_t *codes)
{
    if (bits == 8) {
        memcpy(codes, stream + first, count);
        return;
    }
    const size_t head = rp_head_codes(first, count);
    const size_t body = (count - head) / PT_REPLAY_GROUP_CODES * PT_REPLAY_GROUP_CODES;
    for (size_t i = 0; i < head; ++i) codes[i] = (uint8_t)rp_get_code(bits, stream, first + i);
    rp_unpack_groups(bits, stream + (first + head) / 8 * (size_t)bits, body, codes + head);
    for (size_t i = head + body; i < count; ++i) codes[i] = (uint8_t)rp_get_code(bits, stream, first + i);
}

/* float -> binary16, round to nearest even, saturating at +-65504 (the
 * store only takes finite values, and a finite latent must stay finite). */
static inline uint16_t rp_f32_to_f16(float value)
{
    uint32_t u;
    memcpy(&u, &value, sizeof u);
    const uint32_t sign = (u >> 16) & 0x8000u;
    uint32_t mag = u & 0x7fffffffu;
    if (mag >= 0x477fe000u) return (uint16_t)(sign | 0x7bffu);   /* >= 65504 (or not finite) */
    if (mag < 0x38800000u) {
        /* Below the smallest normal half (2^-14): adding 0.5 makes the float
         * unit in the last place 2^-24, the half subnormal step, so the FPU
         * rounds to the nearest even subnormal for us. */
        float f;
        memcpy(&f, &mag, sizeof f);
        f += 0.5f;
        uint32_t r;
        memcpy(&r, &f, sizeof r);
        return (uint16_t)(sign | (r - 0x3f000000u));
    }
    /* Normal: rebias the exponent (127 -> 15) and round the 13 dropped
     * mantissa bits to nearest, ties to even (the carry may bump the exponent,
     * which is the correct result). */
    const uint32_t odd = (mag >> 13) & 1u;
    mag += ((uint32_t)(15 - 127) << 23) + 0xfffu + odd;
    return (uint16_t)(sign | (mag >> 13));
}

static inline float rp_f16_to_f32(uint16_t half)
{
    const uint32_t sign = (uint32_t)(half & 0x8000u) << 16;
    const uint32_t exponent = (half >> 10) & 0x1fu;
    const uint32_t mantissa = half & 0x3ffu;
    uint32_t u;
    if (exponent == 0) {
        float f = (float)mantissa * (1.0f / 16777216.0f);   /* subnormal: m * 2^-24, exact */
        memcpy(&u, &f, sizeof u);
        u |= sign;
    } else if (exponent == 31) {
        u = sign | 0x7f800000u | (mantissa << 13);
    } else {
        u = sign | ((exponent + 127 - 15) << 23) | (mantissa << 13);
    }
    float out;
    memcpy(&out, &u, sizeof out);
    return out;
}

#endif
