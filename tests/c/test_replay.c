/* Replay store kernels vs their reference twins: packing for every Q at every
 * code position, insert / gather for every mode, thread count and alignment,
 * integer requantization, binary16, and refused arguments. */
#include "pt_test.h"
#include "pulptrain/pulptrain.h"

#define MAX_SLOTS 6
#define MAX_ELEMS 160
#define MAX_VALUES (MAX_SLOTS * MAX_ELEMS)
#define MAX_BYTES (MAX_VALUES * 4 + 8)

static uint8_t codes[256], codes_back[256], stream_fast[256], stream_ref[256];
static uint8_t pay_fast[MAX_BYTES], pay_ref[MAX_BYTES], pay_before[MAX_BYTES];
static float latents[MAX_VALUES], out_fast[MAX_VALUES], out_ref[MAX_VALUES];
static uint8_t in_codes[256 + MAX_VALUES];

static void test_pack(void)
{
    pt_rng r = {2024u};
    for (int bits = 1; bits <= 8; ++bits) {
        int bad = 0;
        for (size_t first = 0; first < 19; ++first) {
            for (size_t count = 1; count <= 160; count += count < 41 ? 1 : 7) {
                for (size_t i = 0; i < sizeof stream_fast; ++i) stream_fast[i] = (uint8_t)pt_rng_next(&r);
                memcpy(stream_ref, stream_fast, sizeof stream_fast);
                for (size_t i = 0; i < count; ++i) codes[i] = (uint8_t)(pt_rng_next(&r) & ((1u << bits) - 1));
                bad |= pt_replay_pack(bits, first, count, codes, stream_fast) != PT_OK;
                bad |= pt_replay_pack_ref(bits, first, count, codes, stream_ref) != PT_OK;
                /* same bytes, neighbours of the written codes untouched */
                bad |= memcmp(stream_fast, stream_ref, sizeof stream_fast) != 0;
                bad |= pt_replay_unpack(bits, first, count, stream_fast, codes_back) != PT_OK;
                bad |= memcmp(codes, codes_back, count) != 0;
                bad |= pt_replay_unpack_ref(bits, first, count, stream_ref, codes_back) != PT_OK;
                bad |= memcmp(codes, codes_back, count) != 0;
            }
        }
        PT_CHECK(!bad, "pack/unpack Q=%d at every offset", bits);
    }
    /* the worked example of pt_replay.h */
    const uint8_t ex_codes[8] = {0x01, 0x7F, 0x00, 0x55, 0x2A, 0x40, 0x03, 0x7E};
    const uint8_t ex_bytes[7] = {0x81, 0x3F, 0xA0, 0xAA, 0x02, 0x0E, 0xFC};
    memset(stream_fast, 0, 8);
    pt_replay_pack(7, 0, 8, ex_codes, stream_fast);
    PT_CHECK(memcmp(stream_fast, ex_bytes, 7) == 0 && stream_fast[7] == 0, "Q=7 worked example");
    const uint8_t nib_codes[4] = {0x3, 0xA, 0xF, 0x0};
    pt_replay_pack(4, 0, 4, nib_codes, stream_fast);
    PT_CHECK(stream_fast[0] == 0xA3 && stream_fast[1] == 0x0F, "Q=4 nibble order");
    PT_CHECK(pt_replay_pack(0, 0, 1, codes, stream_fast) == PT_ERR_PARAM, "Q=0 refused");
    PT_CHECK(pt_replay_pack(9, 0, 1, codes, stream_fast) == PT_ERR_PARAM, "Q=9 refused");
    PT_CHECK(pt_replay_unpack(3, 0, 1, NULL, codes) == PT_ERR_NULL, "NULL stream refused");
}

static void test_f16(void)
{
    PT_CHECK(pt_replay_f32_to_f16(1.0f) == 0x3c00, "1.0");
    PT_CHECK(pt_replay_f32_to_f16(-2.0f) == 0xc000, "-2.0");
    PT_CHECK(pt_replay_f32_to_f16(65504.0f) == 0x7bff, "max half");
    PT_CHECK(pt_replay_f32_to_f16(1.0e6f) == 0x7bff && pt_replay_f32_to_f16(-1.0e6f) == 0xfbff, "saturates");
    PT_CHECK(pt_replay_f32_to_f16(5.9604645e-8f) == 0x0001, "smallest subnormal");
    PT_CHECK(pt_replay_f32_to_f16(1.0f + 1.0f / 2048.0f) == 0x3c00, "tie rounds to even (down)");
    PT_CHECK(pt_replay_f32_to_f16(1.0f + 3.0f / 2048.0f) == 0x3c02, "tie rounds to even (up)");
    int bad = 0;
    for (uint32_t h = 0; h < 0x7c00; ++h) {   /* every finite non-negative half round-trips */
        float f = pt_replay_f16_to_f32((uint16_t)h);
        bad |= pt_replay_f32_to_f16(f) != h;
        bad |= pt_replay_f32_to_f16(-f) != (h | 0x8000u);
    }
    PT_CHECK(!bad, "binary16 round trip");
}

typedef struct layout_case { size_t elems, channels; } layout_case;

static void test_store(void)
{
    /* 24 x 8: every slot byte-aligned; 15 x 5 and 13 x 13: unaligned for odd Q */
    const layout_case cases[] = {{24, 8}, {15, 5}, {13, 13}, {40, 4}, {160, 16}, {153, 17}};
    const int modes[] = {1, 2, 3, 4, 5, 6, 7, 8, PT_REPLAY_FP16, PT_REPLAY_FP32};
    const int64_t slots[4] = {4, 0, 5, 2};
    const int64_t gather_slots[5] = {2, 2, 5, 0, 4};
    float scale[MAX_ELEMS];
    int32_t zero_point[MAX_ELEMS], multiplier[MAX_ELEMS], shift[MAX_ELEMS], zp_in[MAX_ELEMS];
    pt_rng r = {77u};
    for (size_t lc = 0; lc < sizeof cases / sizeof cases[0]; ++lc) {
        for (size_t m = 0; m < sizeof modes / sizeof modes[0]; ++m) {
            for (int per_channel = 0; per_channel <= 1; ++per_channel) {
                int bits = modes[m];
                pt_replay_layout layout = {MAX_SLOTS, cases[lc].elems, cases[lc].channels, bits, per_channel};
                size_t bytes = pt_replay_payload_bytes(&layout);
                size_t expect = (MAX_SLOTS * cases[lc].elems * (size_t)bits + 7) / 8;
                PT_CHECK(bytes == expect, "payload bytes %zu != %zu", bytes, expect);
                uint32_t qmax = bits <= 8 ? (1u << bits) - 1 : 255;
                for (size_t c = 0; c < cases[lc].channels; ++c) {
                    scale[c] = pt_rng_uniform(&r, 0.01f, 0.2f);
                    zero_point[c] = (int32_t)(pt_rng_next(&r) % (qmax + 1));
                    /* scale_in / scale = 2^-(8-Q) * (0.75 .. 1.5) */
                    multiplier[c] = (int32_t)((1u << 30) + (pt_rng_next(&r) % (1u << 30)));
                    shift[c] = 31 + (8 - (bits <= 8 ? bits : 8)) + (int32_t)(pt_rng_next(&r) % 2);
                    zp_in[c] = (int32_t)(pt_rng_next(&r) % 256);
                }
                pt_replay_quant quant = {scale, zero_point};
                pt_replay_requant requant = {multiplier, shift, zp_in};
                size_t n = 4 * cases[lc].elems;
                pt_fill_uniform(&r, latents, n, -3.0f, 3.0f);
                for (size_t i = 0; i < n; ++i) in_codes[i] = (uint8_t)pt_rng_next(&r);
                for (size_t i = 0; i < bytes; ++i) pay_before[i] = (uint8_t)pt_rng_next(&r);

                memcpy(pay_ref, pay_before, bytes);
                PT_CHECK(pt_replay_insert_f32_ref(&layout, &quant, 4, slots, latents, pay_ref) == PT_OK, "ref insert");
                PT_CHECK(pt_replay_gather_f32_ref(&layout, &quant, 5, gather_slots, pay_ref, out_ref) == PT_OK, "ref gather");
                for (int t = 0; t < PT_TEST_NUM_THREADS; ++t) {
                    pt_ctx ctx = {pt_test_threads[t], NULL, 0};
                    memcpy(pay_fast, pay_before, bytes);
                    PT_CHECK(pt_replay_insert_f32(&ctx, &layout, &quant, 4, slots, latents, pay_fast) == PT_OK, "insert");
                    PT_CHECK(memcmp(pay_fast, pay_ref, bytes) == 0, "insert payload E=%zu bits=%d pc=%d t=%d",
                             cases[lc].elems, bits, per_channel, ctx.num_threads);
                    PT_CHECK(pt_replay_gather_f32(&ctx, &layout, &quant, 5, gather_slots, pay_fast, out_fast) == PT_OK, "gather");
                    PT_CHECK(pt_first_bit_diff(out_fast, out_ref, 5 * cases[lc].elems) < 0,
                             "gather E=%zu bits=%d pc=%d t=%d", cases[lc].elems, bits, per_channel, ctx.num_threads);
                }
                /* stored values: within half a step (in range), exact for fp32 */
                double worst = 0.0;
                for (size_t i = 0; i < cases[lc].elems; ++i) {
                    size_t c = per_channel ? i % cases[lc].channels : 0;
                    float x = latents[3 * cases[lc].elems + i];   /* row 3 went to slot 2 = gathered row 0 */
                    float y = out_ref[i];
                    if (bits == PT_REPLAY_FP32) { worst = fmax(worst, x == y ? 0.0 : 1.0); continue; }
                    if (bits == PT_REPLAY_FP16) { worst = fmax(worst, fabs(x - y) / (fabs(x) * 0x1p-11 + 0x1p-25)); continue; }
                    double lo = (0.0 - zero_point[c]) * (double)scale[c];
                    double hi = ((double)qmax - zero_point[c]) * (double)scale[c];
                    double clamped = x < lo ? lo : (x > hi ? hi : x);
                    worst = fmax(worst, fabs(clamped - y) / (0.5 * scale[c] * (1 + 1e-5) + 1e-7));
                }
                PT_CHECK(worst <= 1.0, "error bound bits=%d pc=%d: ratio %g", bits, per_channel, worst);

                if (bits <= 8) {
                    memcpy(pay_ref, pay_before, bytes);
                    PT_CHECK(pt_replay_insert_codes_u8_ref(&layout, &quant, &requant, 4, slots, in_codes, pay_ref) == PT_OK, "ref codes");
                    for (int t = 0; t < PT_TEST_NUM_THREADS; ++t) {
                        pt_ctx ctx = {pt_test_threads[t], NULL, 0};
                        memcpy(pay_fast, pay_before, bytes);
                        PT_CHECK(pt_replay_insert_codes_u8(&ctx, &layout, &quant, &requant, 4, slots, in_codes, pay_fast) == PT_OK, "codes");
                        PT_CHECK(memcmp(pay_fast, pay_ref, bytes) == 0, "insert_codes bits=%d pc=%d t=%d", bits, per_channel, ctx.num_threads);
                    }
                }
            }
        }
    }
}

/* scale = scale_in * 2^(8-Q) makes requantization a rounding shift. */
static void test_requant_shift(void)
{
    for (int bits = 1; bits <= 8; ++bits) {
        int s = 8 - bits;
        float scale = 0.05f * (float)(1 << s);
        int32_t zp_in = 37, zp = (zp_in + (s ? 1 << (s - 1) : 0)) >> s;
        int32_t multiplier = 1 << 30, shift = 30 + s;
        pt_replay_layout layout = {1, 256, 1, bits, 0};
        pt_replay_quant quant = {&scale, &zp};
        pt_replay_requant rq = {&multiplier, &shift, &zp_in};
        int64_t slot = 0;
        for (int q = 0; q < 256; ++q) in_codes[q] = (uint8_t)q;
        pt_ctx ctx = {1, NULL, 0};
        memset(pay_fast, 0, 256);
        PT_CHECK(pt_replay_insert_codes_u8(&ctx, &layout, &quant, &rq, 1, &slot, in_codes, pay_fast) == PT_OK, "insert");
        pt_replay_unpack(bits, 0, 256, pay_fast, codes_back);
        int bad = 0;
        for (int q = 0; q < 256; ++q) {
            int d = q - zp_in;
            int mag = d < 0 ? -d : d;
            int r = s ? (mag + (1 << (s - 1))) >> s : mag;
            int code = zp + (d < 0 ? -r : r);
            code = code < 0 ? 0 : (code > (1 << bits) - 1 ? (1 << bits) - 1 : code);
            bad |= codes_back[q] != code;
        }
        PT_CHECK(!bad, "power-of-two requantization is a rounding shift, Q=%d", bits);
    }
}

static void test_refused(void)
{
    float scale = 0.1f;
    int32_t zp = 3;
    pt_replay_layout layout = {4, 8, 8, 5, 0};
    pt_replay_quant quant = {&scale, &zp};
    pt_ctx ctx = {2, NULL, 0};
    int64_t slots[2] = {1, 3};
    size_t bytes = pt_replay_payload_bytes(&layout);
    for (size_t i = 0; i < 16; ++i) latents[i] = (float)i;
    memset(pay_fast, 0xAB, bytes);
    memcpy(pay_before, pay_fast, bytes);
    latents[13] = NAN;
    PT_CHECK(pt_replay_insert_f32(&ctx, &layout, &quant, 2, slots, latents, pay_fast) == PT_ERR_NONFINITE, "NaN");
    latents[13] = INFINITY;
    PT_CHECK(pt_replay_insert_f32(&ctx, &layout, &quant, 2, slots, latents, pay_fast) == PT_ERR_NONFINITE, "Inf");
    latents[13] = 1.0f;
    PT_CHECK(pt_replay_insert_f32_ref(&layout, &quant, 2, slots, latents, pay_fast) == PT_OK, "finite ok");
    memcpy(pay_fast, pay_before, bytes);
    int64_t dup[2] = {2, 2}, out_of_range[2] = {0, 4}, negative[2] = {-1, 0};
    PT_CHECK(pt_replay_insert_f32(&ctx, &layout, &quant, 2, dup, latents, pay_fast) == PT_ERR_RANGE, "duplicate slots");
    PT_CHECK(pt_replay_insert_f32(&ctx, &layout, &quant, 2, out_of_range, latents, pay_fast) == PT_ERR_RANGE, "slot >= capacity");
    PT_CHECK(pt_replay_insert_f32(&ctx, &layout, &quant, 2, negative, latents, pay_fast) == PT_ERR_RANGE, "negative slot");
    PT_CHECK(pt_replay_gather_f32(&ctx, &layout, &quant, 2, out_of_range, pay_fast, out_fast) == PT_ERR_RANGE, "gather range");
    PT_CHECK(pt_replay_gather_f32(&ctx, &layout, &quant, 2, dup, pay_fast, out_fast) == PT_OK, "gather may repeat");
    scale = 0.0f;
    PT_CHECK(pt_replay_insert_f32(&ctx, &layout, &quant, 2, slots, latents, pay_fast) == PT_ERR_PARAM, "zero scale");
    scale = NAN;
    PT_CHECK(pt_replay_insert_f32(&ctx, &layout, &quant, 2, slots, latents, pay_fast) == PT_ERR_PARAM, "NaN scale");
    scale = 0.1f;
    zp = 32;
    PT_CHECK(pt_replay_insert_f32(&ctx, &layout, &quant, 2, slots, latents, pay_fast) == PT_ERR_PARAM, "zero point > qmax");
    zp = 3;
    PT_CHECK(memcmp(pay_fast, pay_before, bytes) == 0, "refused calls wrote nothing");
    pt_replay_layout bad = layout;
    bad.bits = 9;
    PT_CHECK(pt_replay_check_layout(&bad) == PT_ERR_PARAM && pt_replay_payload_bytes(&bad) == 0, "bits 9");
    bad.bits = 0;
    PT_CHECK(pt_replay_check_layout(&bad) == PT_ERR_PARAM, "bits 0");
    bad = layout;
    bad.capacity = 0;
    PT_CHECK(pt_replay_check_layout(&bad) == PT_ERR_SHAPE, "capacity 0");
    bad = layout;
    bad.channels = 3;
    PT_CHECK(pt_replay_check_layout(&bad) == PT_ERR_SHAPE, "channels do not divide the slot");
    bad = layout;
    bad.capacity = (size_t)-1 / 4;
    PT_CHECK(pt_replay_check_layout(&bad) == PT_ERR_OVERFLOW, "size overflow");
    PT_CHECK(pt_replay_insert_f32(NULL, &layout, &quant, 2, slots, latents, pay_fast) == PT_ERR_NULL, "NULL ctx");
    PT_CHECK(pt_replay_insert_f32(&ctx, &layout, NULL, 2, slots, latents, pay_fast) == PT_ERR_NULL, "NULL quant");
    PT_CHECK(pt_replay_insert_f32(&ctx, &layout, &quant, 0, slots, latents, pay_fast) == PT_ERR_SHAPE, "count 0");
    pt_replay_requant rq = {NULL, NULL, NULL};
    PT_CHECK(pt_replay_insert_codes_u8(&ctx, &layout, &quant, &rq, 2, slots, in_codes, pay_fast) == PT_ERR_NULL, "NULL requant");
    bad = layout;
    bad.bits = PT_REPLAY_FP32;
    PT_CHECK(pt_replay_insert_codes_u8(&ctx, &bad, &quant, &rq, 2, slots, in_codes, pay_fast) == PT_ERR_PARAM, "codes into fp32");
}

/* Rows go to different cores: a NaN in the last row must stop every core,
 * including the ones whose rows are finite, before any of them writes. */
#define BIG_SLOTS 8
#define BIG_ELEMS 4096
static float big_latents[BIG_SLOTS * BIG_ELEMS];
static uint8_t big_payload[BIG_SLOTS * BIG_ELEMS], big_before[BIG_SLOTS * BIG_ELEMS];

static void test_nonfinite_parallel(void)
{
    float scale = 0.05f;
    int32_t zp = 10;
    pt_replay_layout layout = {BIG_SLOTS, BIG_ELEMS, 64, 6, 0};
    pt_replay_quant quant = {&scale, &zp};
    int64_t slots[BIG_SLOTS] = {7, 6, 5, 4, 3, 2, 1, 0};
    size_t bytes = pt_replay_payload_bytes(&layout);
    pt_rng r = {99u};
    pt_fill_uniform(&r, big_latents, BIG_SLOTS * BIG_ELEMS, -1.0f, 1.0f);
    for (size_t i = 0; i < bytes; ++i) big_before[i] = (uint8_t)pt_rng_next(&r);
    for (int t = 0; t < PT_TEST_NUM_THREADS; ++t) {
        pt_ctx ctx = {pt_test_threads[t], NULL, 0};
        for (int bad_row = 0; bad_row < BIG_SLOTS; bad_row += BIG_SLOTS - 1) {
            memcpy(big_payload, big_before, bytes);
            big_latents[bad_row * BIG_ELEMS + 17] = NAN;
            pt_status st = pt_replay_insert_f32(&ctx, &layout, &quant, BIG_SLOTS, slots, big_latents, big_payload);
            PT_CHECK(st == PT_ERR_NONFINITE, "threads=%d bad row %d: status %d", ctx.num_threads, bad_row, st);
            PT_CHECK(memcmp(big_payload, big_before, bytes) == 0, "threads=%d bad row %d: payload untouched",
                     ctx.num_threads, bad_row);
            big_latents[bad_row * BIG_ELEMS + 17] = 0.5f;
        }
        PT_CHECK(pt_replay_insert_f32(&ctx, &layout, &quant, BIG_SLOTS, slots, big_latents, big_payload) == PT_OK,
                 "finite batch accepted");
    }
}

int main(void)
{
    test_pack();
    test_f16();
    test_store();
    test_requant_shift();
    test_refused();
    test_nonfinite_parallel();
    return pt_test_finish("test_replay");
}
