/* libFuzzer target: the C decoding of a replay store's payload (the bytes a
 * store file holds), with a layout and quantization parameters taken from
 * the input as a file's header would give them.
 *
 * Input: bits selector, per_channel, channels, elems per channel, capacity,
 * thread count, slot count K, K slot bytes (slot = byte - 4, so some are out
 * of range), then per parameter a float32 scale and a zero-point byte, then
 * the payload (exactly pt_replay_payload_bytes, copied to its own heap block
 * so AddressSanitizer sees any read past it).
 *
 * Checked: pt_replay_gather_f32 (pooled threads) and its reference twin
 * return the same status and, on success, bitwise the same output; the raw
 * stream reader pt_replay_unpack agrees with pt_replay_unpack_ref on a
 * window of the stream. Build: make fuzz-c (clang, -fsanitize=fuzzer,address,undefined). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "pulptrain/pulptrain.h"

static const int BITS[] = {1, 2, 3, 4, 5, 6, 7, 8, PT_REPLAY_FP16, PT_REPLAY_FP32};

typedef struct reader { const uint8_t *p; size_t left; } reader;

static int take(reader *r, void *out, size_t n)
{
    if (r->left < n) return 0;
    memcpy(out, r->p, n);
    r->p += n;
    r->left -= n;
    return 1;
}

static int take_byte(reader *r, uint8_t *out) { return take(r, out, 1); }

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    reader r = {data, size};
    uint8_t h[7];
    if (!take(&r, h, sizeof h)) return 0;
    pt_replay_layout layout;
    layout.bits = BITS[h[0] % 10];
    layout.per_channel = h[1] & 1;
    layout.channels = 1 + h[2] % 16;
    layout.slot_elems = layout.channels * (1 + h[3] % 8);
    layout.capacity = 1 + h[4] % 32;
    pt_ctx ctx = {1 + h[5] % 3, NULL, 0};
    size_t count = 1 + h[6] % 16;

    int64_t slots[16];
    for (size_t i = 0; i < count; ++i) {
        uint8_t b;
        if (!take_byte(&r, &b)) return 0;
        slots[i] = (int64_t)b - 4;
    }
    size_t params = layout.per_channel ? layout.channels : 1;
    float scale[16];
    int32_t zero_point[16];
    for (size_t c = 0; c < params; ++c) {
        uint8_t zp;
        if (!take(&r, &scale[c], sizeof scale[c]) || !take_byte(&r, &zp)) return 0;
        zero_point[c] = zp;
    }
    pt_replay_quant quant = {scale, zero_point};

    size_t payload_bytes = pt_replay_payload_bytes(&layout);
    if (payload_bytes == 0 || pt_replay_check_layout(&layout) != PT_OK) __builtin_trap();
    if (r.left < payload_bytes) return 0;
    uint8_t *payload = malloc(payload_bytes);
    float *out = malloc(count * layout.slot_elems * sizeof(float));
    float *out_ref = malloc(count * layout.slot_elems * sizeof(float));
    if (!payload || !out || !out_ref) abort();
    memcpy(payload, r.p, payload_bytes);

    pt_status st = pt_replay_gather_f32(&ctx, &layout, &quant, count, slots, payload, out);
    pt_status st_ref = pt_replay_gather_f32_ref(&layout, &quant, count, slots, payload, out_ref);
    if (st != st_ref) __builtin_trap();
    if (st == PT_OK && memcmp(out, out_ref, count * layout.slot_elems * sizeof(float)) != 0)
        __builtin_trap();

    if (layout.bits <= PT_REPLAY_MAX_BITS) {
        size_t codes_total = payload_bytes * 8 / (size_t)layout.bits;
        size_t first = (size_t)h[3] * 7 % codes_total;
        size_t n = codes_total - first;
        uint8_t *codes = malloc(n), *codes_ref = malloc(n);
        if (!codes || !codes_ref) abort();
        if (pt_replay_unpack(layout.bits, first, n, payload, codes) != PT_OK ||
            pt_replay_unpack_ref(layout.bits, first, n, payload, codes_ref) != PT_OK ||
            memcmp(codes, codes_ref, n) != 0)
            __builtin_trap();
        free(codes);
        free(codes_ref);
    }
    free(payload);
    free(out);
    free(out_ref);
    return 0;
}
