# Bindings of the latent-replay store kernels (csrc/replay, pt_replay.h).
# Arrays arrive validated and C-contiguous; the layout is passed as
# (capacity, slot_elems, channels, bits, per_channel).
from libc.stdint cimport uint8_t, int32_t, int64_t
from pulptrain._common cimport pt_status, pt_ctx, check_status, make_ctx

cdef extern from "pulptrain/pt_replay.h" nogil:
    ctypedef struct pt_replay_layout:
        size_t capacity
        size_t slot_elems
        size_t channels
        int bits
        int per_channel
    ctypedef struct pt_replay_quant:
        const float *scale
        const int32_t *zero_point
    ctypedef struct pt_replay_requant:
        const int32_t *multiplier
        const int32_t *shift
        const int32_t *zero_point_in
    pt_status pt_replay_check_layout(const pt_replay_layout *layout)
    size_t pt_replay_payload_bytes(const pt_replay_layout *layout)
    pt_status pt_replay_insert_f32(const pt_ctx *ctx, const pt_replay_layout *layout,
                                   const pt_replay_quant *quant, size_t count, const int64_t *slots,
                                   const float *latents, uint8_t *payload)
    pt_status pt_replay_insert_codes_u8(const pt_ctx *ctx, const pt_replay_layout *layout,
                                        const pt_replay_quant *quant, const pt_replay_requant *requant,
                                        size_t count, const int64_t *slots, const uint8_t *codes,
                                        uint8_t *payload)
    pt_status pt_replay_gather_f32(const pt_ctx *ctx, const pt_replay_layout *layout,
                                   const pt_replay_quant *quant, size_t count, const int64_t *slots,
                                   const uint8_t *payload, float *out)
    pt_status pt_replay_pack(int bits, size_t first, size_t count, const uint8_t *codes, uint8_t *stream)
    pt_status pt_replay_unpack(int bits, size_t first, size_t count, const uint8_t *stream, uint8_t *codes)
    pt_status pt_replay_pack_ref(int bits, size_t first, size_t count, const uint8_t *codes, uint8_t *stream)
    pt_status pt_replay_unpack_ref(int bits, size_t first, size_t count, const uint8_t *stream, uint8_t *codes)
    pt_status pt_replay_insert_f32_ref(const pt_replay_layout *layout, const pt_replay_quant *quant,
                                       size_t count, const int64_t *slots, const float *latents,
                                       uint8_t *payload)
    pt_status pt_replay_insert_codes_u8_ref(const pt_replay_layout *layout, const pt_replay_quant *quant,
                                            const pt_replay_requant *requant, size_t count,
                                            const int64_t *slots, const uint8_t *codes, uint8_t *payload)
    pt_status pt_replay_gather_f32_ref(const pt_replay_layout *layout, const pt_replay_quant *quant,
                                       size_t count, const int64_t *slots, const uint8_t *payload,
                                       float *out)


cdef pt_replay_layout make_layout(tuple layout) except *:
    cdef pt_replay_layout out
    out.capacity, out.slot_elems, out.channels, out.bits, out.per_channel = layout
    return out


cdef pt_replay_quant make_quant(const float[::1] scale, const int32_t[::1] zero_point):
    cdef pt_replay_quant quant
    quant.scale = &scale[0]
    quant.zero_point = &zero_point[0]
    return quant


def payload_bytes(tuple layout):
    """Payload bytes of a layout; ValueError (StatusError) when it is invalid."""
    cdef pt_replay_layout lay = make_layout(layout)
    check_status(pt_replay_check_layout(&lay), "pt_replay_check_layout")
    return pt_replay_payload_bytes(&lay)


def insert_f32(tuple layout, const float[::1] scale, const int32_t[::1] zero_point,
               const int64_t[::1] slots, const float[::1] latents, uint8_t[::1] payload,
               int num_threads, bint ref=False):
    cdef pt_replay_layout lay = make_layout(layout)
    cdef pt_replay_quant quant = make_quant(scale, zero_point)
    cdef pt_ctx ctx = make_ctx(num_threads, NULL, 0)
    cdef size_t count = slots.shape[0]
    cdef pt_status st
    with nogil:
        if ref:
            st = pt_replay_insert_f32_ref(&lay, &quant, count, &slots[0], &latents[0], &payload[0])
        else:
            st = pt_replay_insert_f32(&ctx, &lay, &quant, count, &slots[0], &latents[0], &payload[0])
    check_status(st, "pt_replay_insert_f32")


def insert_codes_u8(tuple layout, const float[::1] scale, const int32_t[::1] zero_point,
                    const int32_t[::1] multiplier, const int32_t[::1] shift,
                    const int32_t[::1] zero_point_in, const int64_t[::1] slots,
                    const uint8_t[::1] codes, uint8_t[::1] payload, int num_threads, bint ref=False):
    cdef pt_replay_layout lay = make_layout(layout)
    cdef pt_replay_quant quant = make_quant(scale, zero_point)
    cdef pt_replay_requant rq
    rq.multiplier = &multiplier[0]
    rq.shift = &shift[0]
    rq.zero_point_in = &zero_point_in[0]
    cdef pt_ctx ctx = make_ctx(num_threads, NULL, 0)
    cdef size_t count = slots.shape[0]
    cdef pt_status st
    with nogil:
        if ref:
            st = pt_replay_insert_codes_u8_ref(&lay, &quant, &rq, count, &slots[0], &codes[0], &payload[0])
        else:
            st = pt_replay_insert_codes_u8(&ctx, &lay, &quant, &rq, count, &slots[0], &codes[0], &payload[0])
    check_status(st, "pt_replay_insert_codes_u8")


def gather_f32(tuple layout, const float[::1] scale, const int32_t[::1] zero_point,
               const int64_t[::1] slots, const uint8_t[::1] payload, float[::1] out,
               int num_threads, bint ref=False):
    cdef pt_replay_layout lay = make_layout(layout)
    cdef pt_replay_quant quant = make_quant(scale, zero_point)
    cdef pt_ctx ctx = make_ctx(num_threads, NULL, 0)
    cdef size_t count = slots.shape[0]
    cdef pt_status st
    with nogil:
        if ref:
            st = pt_replay_gather_f32_ref(&lay, &quant, count, &slots[0], &payload[0], &out[0])
        else:
            st = pt_replay_gather_f32(&ctx, &lay, &quant, count, &slots[0], &payload[0], &out[0])
    check_status(st, "pt_replay_gather_f32")


def pack(int bits, size_t first, const uint8_t[::1] codes, uint8_t[::1] stream, bint ref=False):
    """Write codes at code positions [first, first + len(codes)) of stream."""
    cdef size_t count = codes.shape[0]
    if (first + count) * bits > <size_t>stream.shape[0] * 8:
        raise ValueError("stream is too short for the codes")
    cdef pt_status st
    with nogil:
        if ref:
            st = pt_replay_pack_ref(bits, first, count, &codes[0], &stream[0])
        else:
            st = pt_replay_pack(bits, first, count, &codes[0], &stream[0])
    check_status(st, "pt_replay_pack")


def unpack(int bits, size_t first, const uint8_t[::1] stream, uint8_t[::1] codes, bint ref=False):
    """Read codes [first, first + len(codes)) of stream."""
    cdef size_t count = codes.shape[0]
    if (first + count) * bits > <size_t>stream.shape[0] * 8:
        raise ValueError("stream is too short for the codes")
    cdef pt_status st
    with nogil:
        if ref:
            st = pt_replay_unpack_ref(bits, first, count, &stream[0], &codes[0])
        else:
            st = pt_replay_unpack(bits, first, count, &stream[0], &codes[0])
    check_status(st, "pt_replay_unpack")
